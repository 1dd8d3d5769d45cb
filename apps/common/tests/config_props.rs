//! Random input to the TOML config parser and to an app's table read as its options: never a
//! panic, whatever the text. (Each app's own table is checked against an oracle of its
//! documented bounds in its options module: `l2fwd::options`, `pktgen::options`.)

use apps_common::config::{ConfigError, ConfigFile};
use apps_common::options::{in_range, AppOptions, InvalidOption};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
    ConfigFile::parse(Path::new("prop.toml"), text)
}

/// An options type with a value of each kind the apps use.
#[derive(clap::Parser, serde::Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct Demo {
    #[arg(short = 'T', long = "stats-period")]
    stats_period: Option<u64>,
    #[arg(long)]
    duration: Option<f64>,
    #[arg(long)]
    copy: Option<String>,
    #[arg(long)]
    copybreak: Option<u32>,
    #[arg(long = "dma")]
    dma: Option<Vec<String>>,
    #[arg(long = "mac-updating", num_args = 0, default_missing_value = "true")]
    mac_updating: Option<bool>,
    #[arg(long)]
    report: Option<PathBuf>,
    #[arg(long)]
    #[serde(skip)]
    config: Option<PathBuf>,
}

impl AppOptions for Demo {
    const TABLE: &'static str = "l2fwd";
    fn config_path(&self) -> Option<&Path> {
        self.config.as_deref()
    }
    fn check(&self) -> Result<(), InvalidOption> {
        in_range("stats_period", self.stats_period, 0..=86_400, "seconds")?;
        in_range("copybreak", self.copybreak, 1..=65_535, "bytes")
    }
}

/// Every way the file can be read: none of them may panic.
fn read_all_ways(text: &str) {
    if let Ok(c) = parse(text) {
        let _ = c.section::<toml::Table>("l2fwd");
        let _ = c.section::<toml::Table>("pktgen");
        let _ = c.options::<Demo>();
    }
}

const KEYS: &[&str] = &[
    "portmask",
    "stats_period",
    "mac_updating",
    "duration",
    "report",
    "copy",
    "copybreak",
    "dma",
    "dma_timeout_ms",
    "control",
    "allow_fault_injection",
    "grace_ms",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-z_]{1,16}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(text in ".*") {
        read_all_ways(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        read_all_ways(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn toml_shaped_text_never_panics(
        lines in prop::collection::vec(
            prop_oneof![
                Just("[l2fwd]".to_owned()),
                Just("[pktgen]".to_owned()),
                Just("eal = [\"-l\", \"0\"]".to_owned()),
                (key(), "[-+0-9a-zA-Z_.\"\\[\\], ]{0,24}").prop_map(|(k, v)| format!("{k} = {v}")),
            ],
            0..8,
        )
    ) {
        read_all_ways(&lines.join("\n"));
    }
}
