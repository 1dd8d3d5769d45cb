//! TOML configuration files.
//!
//! One file may configure several apps: a top-level `eal` array holds the EAL arguments (so
//! that `APP --config FILE` alone runs), and a table per app (`[l2fwd]`, `[pktgen]`, ...) holds
//! that app's options under the names of its command-line options. Unknown keys are errors, so
//! a typo is reported instead of silently ignored.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {msg}")]
    Parse { path: PathBuf, msg: String },
}

/// A parsed config file: the EAL arguments and the per-app tables, checked when an app asks
/// for its own.
#[derive(Debug, Default)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub eal: Vec<String>,
    tables: toml::Table,
}

#[derive(Deserialize)]
struct Top {
    #[serde(default)]
    eal: Vec<String>,
    #[serde(flatten)]
    rest: toml::Table,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let err = |msg: String| ConfigError::Parse {
            path: path.to_owned(),
            msg,
        };
        let top: Top = toml::from_str(text).map_err(|e| err(e.to_string().trim().to_owned()))?;
        for (k, v) in &top.rest {
            if !v.is_table() {
                return Err(err(format!(
                    "unknown top-level key `{k}` (expected `eal = [...]` and app tables such as [l2fwd])"
                )));
            }
        }
        Ok(ConfigFile {
            path: path.to_owned(),
            eal: top.eal,
            tables: top.rest,
        })
    }

    /// The `[l2fwd]` table, with every value checked as on the command line
    /// ([`L2fwdSection::check`]).
    pub fn l2fwd(&self) -> Result<L2fwdSection, ConfigError> {
        let s: L2fwdSection = self.section("l2fwd")?;
        s.check().map_err(|e| ConfigError::Parse {
            path: self.path.clone(),
            msg: format!("[l2fwd] {}", e.for_config()),
        })?;
        Ok(s)
    }

    /// The `[name]` table as `T` (its default when absent).
    pub fn section<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T, ConfigError> {
        match self.tables.get(name) {
            None => Ok(T::default()),
            Some(v) => v
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: self.path.clone(),
                    msg: format!("[{name}]: {}", e.to_string().trim()),
                }),
        }
    }
}

/// A port mask written as a hexadecimal string ("0x3") or an integer (3).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum PortMaskValue {
    Text(String),
    Number(u64),
}

impl PortMaskValue {
    pub fn to_text(&self) -> String {
        match self {
            PortMaskValue::Text(s) => s.clone(),
            PortMaskValue::Number(n) => format!("{n:#x}"),
        }
    }
}

/// The `[l2fwd]` table: each key is the command-line option of the same name.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct L2fwdSection {
    pub portmask: Option<PortMaskValue>,
    pub stats_period: Option<u64>,
    pub mac_updating: Option<bool>,
    pub duration: Option<f64>,
    pub report: Option<PathBuf>,
    pub copy: Option<String>,
    pub copybreak: Option<u32>,
    /// DMA devices to use (names as the EAL knows them, for example `dma_skeleton0`).
    pub dma: Option<Vec<String>>,
    pub dma_timeout_ms: Option<u64>,
    pub control: Option<PathBuf>,
    pub allow_fault_injection: Option<bool>,
    pub grace_ms: Option<u64>,
}

/// The bounds of l2fwd's numeric options, the same on the command line and in `[l2fwd]`.
pub mod l2fwd_limits {
    use std::ops::RangeInclusive;
    /// `-T`: seconds between statistics prints, 0 for none; at most a day.
    pub const STATS_PERIOD_S: RangeInclusive<u64> = 0..=86_400;
    /// `--duration`: seconds, at least a millisecond (a smaller positive value would round to
    /// no time at all) and at most a year.
    pub const DURATION_MIN_S: f64 = 0.001;
    /// See [`DURATION_MIN_S`].
    pub const DURATION_MAX_S: f64 = 31_536_000.0;
    /// `--copybreak`: bytes, as `dpctl copybreak` takes them (a frame is at most 64 KiB).
    pub const COPYBREAK: RangeInclusive<u32> = 1..=65_535;
    /// `--dma-timeout-ms`: 0 would retire every channel at its first burst; a minute is
    /// already far past any live engine's latency.
    pub const DMA_TIMEOUT_MS: RangeInclusive<u64> = 1..=60_000;
    /// `--grace-ms`: a hot-remove waits this long for a worker, and SIGINT waits for it.
    pub const GRACE_MS: RangeInclusive<u64> = 1..=60_000;
}

/// Why an `[l2fwd]` value (or the command-line option of the same name) is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum InvalidOption {
    /// A number outside its bounds: `key` is the config key, `expected` says the bounds.
    Range {
        key: &'static str,
        value: String,
        expected: String,
    },
    /// A value its own parser refused (portmask, copy mode); the message says why.
    Value(String),
}

impl InvalidOption {
    /// As the command line spells it: `invalid --grace-ms 0: expected 1..=60000 milliseconds`.
    pub fn for_option(&self) -> String {
        match self {
            InvalidOption::Range {
                key,
                value,
                expected,
            } => {
                let opt = match *key {
                    "stats_period" => "-T/--stats-period".to_owned(),
                    k => format!("--{}", k.replace('_', "-")),
                };
                format!("invalid {opt} {value}: expected {expected}")
            }
            InvalidOption::Value(m) => m.clone(),
        }
    }

    /// As a config file spells it: `invalid grace_ms = 0: expected 1..=60000 milliseconds`.
    pub fn for_config(&self) -> String {
        match self {
            InvalidOption::Range {
                key,
                value,
                expected,
            } => format!("invalid {key} = {value}: expected {expected}"),
            InvalidOption::Value(m) => m.clone(),
        }
    }
}

fn in_range<T: PartialOrd + std::fmt::Display>(
    key: &'static str,
    value: Option<T>,
    range: std::ops::RangeInclusive<T>,
    unit: &str,
) -> Result<(), InvalidOption> {
    match value {
        Some(v) if !range.contains(&v) => Err(InvalidOption::Range {
            key,
            value: v.to_string(),
            expected: format!("{}..={} {unit}", range.start(), range.end()),
        }),
        _ => Ok(()),
    }
}

impl L2fwdSection {
    /// Checks every value that is set against [`l2fwd_limits`] and its parser: the one check
    /// for both the command line (l2fwd builds a section from its options) and the file.
    pub fn check(&self) -> Result<(), InvalidOption> {
        use l2fwd_limits::*;
        if let Some(m) = &self.portmask {
            crate::ports::parse_portmask(&m.to_text())
                .map_err(|e| InvalidOption::Value(e.to_string()))?;
        }
        in_range(
            "stats_period",
            self.stats_period,
            STATS_PERIOD_S,
            "seconds (0 = quiet)",
        )?;
        if let Some(d) = self.duration {
            if !(d.is_finite() && (DURATION_MIN_S..=DURATION_MAX_S).contains(&d)) {
                return Err(InvalidOption::Range {
                    key: "duration",
                    value: format!("{d:?}"),
                    expected: format!("{DURATION_MIN_S} to {DURATION_MAX_S} seconds"),
                });
            }
        }
        if let Some(c) = &self.copy {
            c.parse::<crate::copy::CopyMode>()
                .map_err(InvalidOption::Value)?;
        }
        in_range("copybreak", self.copybreak, COPYBREAK, "bytes")?;
        in_range(
            "dma_timeout_ms",
            self.dma_timeout_ms,
            DMA_TIMEOUT_MS,
            "milliseconds",
        )?;
        in_range("grace_ms", self.grace_ms, GRACE_MS, "milliseconds")?;
        Ok(())
    }
}

/// The `[pktgen]` table: each key is the command-line option of the same name.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PktgenSection {
    pub tx_port: Option<u16>,
    pub rx_port: Option<u16>,
    pub rate: Option<String>,
    pub size: Option<String>,
    pub flows: Option<u16>,
    pub count: Option<u64>,
    pub duration: Option<f64>,
    pub drain_ms: Option<u64>,
    pub dst_mac: Option<String>,
    pub stats_period: Option<u64>,
    pub report: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(Path::new("t.toml"), s)
    }

    #[test]
    fn eal_and_section() {
        let c = parse(
            r#"
            eal = ["-l", "0-1", "--no-huge"]
            [l2fwd]
            portmask = "0x3"
            stats_period = 2
            mac_updating = false
            [pktgen]
            anything = 1
            "#,
        )
        .unwrap();
        assert_eq!(c.eal, ["-l", "0-1", "--no-huge"]);
        let s: L2fwdSection = c.section("l2fwd").unwrap();
        assert_eq!(s.portmask, Some(PortMaskValue::Text("0x3".into())));
        assert_eq!(s.stats_period, Some(2));
        assert_eq!(s.mac_updating, Some(false));
        let absent: L2fwdSection = c.section("nothing").unwrap();
        assert_eq!(absent, L2fwdSection::default());
    }

    #[test]
    fn bounds_are_inclusive() {
        let ok = L2fwdSection {
            stats_period: Some(86_400),
            duration: Some(l2fwd_limits::DURATION_MAX_S),
            copybreak: Some(65_535),
            dma_timeout_ms: Some(1),
            grace_ms: Some(60_000),
            ..Default::default()
        };
        assert_eq!(ok.check(), Ok(()));
        let zero_t = L2fwdSection {
            stats_period: Some(0),
            ..Default::default()
        };
        assert_eq!(zero_t.check(), Ok(()));
        let e = L2fwdSection {
            grace_ms: Some(60_001),
            ..Default::default()
        }
        .check()
        .unwrap_err();
        assert_eq!(
            e.for_option(),
            "invalid --grace-ms 60001: expected 1..=60000 milliseconds"
        );
        let e = L2fwdSection {
            stats_period: Some(u64::MAX),
            ..Default::default()
        }
        .check()
        .unwrap_err();
        assert_eq!(
            e.for_option(),
            "invalid -T/--stats-period 18446744073709551615: expected 0..=86400 seconds (0 = quiet)"
        );
    }

    #[test]
    fn integer_portmask() {
        let c = parse("[l2fwd]\nportmask = 5\n").unwrap();
        let s: L2fwdSection = c.section("l2fwd").unwrap();
        assert_eq!(s.portmask.unwrap().to_text(), "0x5");
    }

    #[test]
    fn errors_are_clear() {
        let e = parse("eal = \"-l 0\"").unwrap_err().to_string();
        assert!(e.contains("t.toml") && e.contains("eal"), "{e}");
        let e = parse("portmask = 3").unwrap_err().to_string();
        assert!(e.contains("unknown top-level key `portmask`"), "{e}");
        let sec = |t: &str| {
            parse(t)
                .unwrap()
                .section::<L2fwdSection>("l2fwd")
                .unwrap_err()
                .to_string()
        };
        let e = sec("[l2fwd]\nportmsk = 3");
        assert!(e.contains("portmsk") && e.contains("[l2fwd]"), "{e}");
        let e = sec("[l2fwd]\nstats_period = \"x\"");
        assert!(e.contains("stats_period"), "{e}");
        let e = parse("this is not toml").unwrap_err().to_string();
        assert!(e.starts_with("invalid config t.toml"), "{e}");
        let l2 = |t: &str| parse(t).unwrap().l2fwd().unwrap_err().to_string();
        let e = l2("[l2fwd]\ndma_timeout_ms = 0");
        assert!(
            e.contains("[l2fwd] invalid dma_timeout_ms = 0: expected 1..=60000 milliseconds"),
            "{e}"
        );
        let e = l2("[l2fwd]\ngrace_ms = 9223372036854775807");
        assert!(e.contains("invalid grace_ms = 9223372036854775807"), "{e}");
        let e = l2("[l2fwd]\nstats_period = 86401");
        assert!(e.contains("0..=86400 seconds"), "{e}");
        let e = l2("[l2fwd]\ncopybreak = 0");
        assert!(e.contains("invalid copybreak = 0"), "{e}");
        let e = l2("[l2fwd]\nduration = inf");
        assert!(e.contains("invalid duration = inf"), "{e}");
        let e = l2("[l2fwd]\nduration = nan");
        assert!(e.contains("invalid duration = NaN"), "{e}");
        let e = l2("[l2fwd]\nportmask = 0");
        assert!(e.contains("no port enabled"), "{e}");
        let e = l2("[l2fwd]\ncopy = \"fast\"");
        assert!(e.contains("invalid copy mode"), "{e}");
        let e = ConfigFile::load(Path::new("/nonexistent/x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read config /nonexistent/x.toml"), "{e}");
    }
}
