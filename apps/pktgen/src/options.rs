//! pktgen's options: one type for its command line and the `[pktgen]` table of a config file
//! (see `apps_common::options`), and the settings of a run they resolve to, defaults applied.

use crate::frames::{
    check_drain_ms, check_stats_period, parse_duration_s, parse_mac, Rate, SizeSpec,
};
use anyhow::bail;
use apps_common::options::{AppOptions, InvalidOption};
use clap::{CommandFactory, Parser};
use pmd::MacAddr;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// pktgen's options: on the command line, and under the same names (`tx_port`, `drain_ms`,
/// ...) in `[pktgen]`. None: not given there.
#[derive(Parser, Deserialize, Debug, Default)]
#[command(
    name = "pktgen",
    about = "Load generator and analyzer on DPDK ports: pktgen [EAL options] -- [options]"
)]
#[serde(deny_unknown_fields)]
pub struct PktgenOptions {
    /// Port to transmit on.
    #[arg(long = "tx-port")]
    pub tx_port: Option<u16>,
    /// Port whose received frames are analyzed (default: the TX port).
    #[arg(long = "rx-port")]
    pub rx_port: Option<u16>,
    /// max, packets/s (50000, 1.5M, 10kpps; 1 to 10G) or bits/s on the wire (100Mbps, 1Gbps;
    /// 1kbps to 10000Gbps).
    #[arg(long)]
    pub rate: Option<String>,
    /// Frame size with FCS: BYTES (64..1518), MIN-MAX, or imix (64/594/1518 at 7:4:1).
    #[arg(long)]
    pub size: Option<String>,
    /// Number of flows (streams), varying IPv4 addresses and UDP ports.
    #[arg(long)]
    pub flows: Option<u16>,
    /// Frames to send in total.
    #[arg(long)]
    pub count: Option<u64>,
    /// Seconds to send for (at most a year).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Milliseconds to keep receiving after the last frame is sent before counting the rest lost
    /// (at most an hour).
    #[arg(long = "drain-ms")]
    pub drain_ms: Option<u64>,
    /// Destination MAC of the frames (default: the RX port's MAC).
    #[arg(long = "dst-mac")]
    pub dst_mac: Option<String>,
    /// Seconds between stats lines (0 = quiet, at most 86400).
    #[arg(short = 'T', long = "stats-period")]
    pub stats_period: Option<u64>,
    /// Write the JSON report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// TOML config ([pktgen] table, `eal` list); command-line options override it.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

/// The settings of a run: the options resolved, pktgen's defaults applied.
#[derive(Debug)]
pub struct Settings {
    pub tx_port: u16,
    pub rx_port: u16,
    pub rate: Rate,
    pub size: SizeSpec,
    pub flows: u16,
    pub count: Option<u64>,
    pub duration: Option<Duration>,
    pub drain: Duration,
    pub dst_mac: Option<MacAddr>,
    pub stats_period: u64,
    pub report: Option<PathBuf>,
}

/// A value its parser refused, as the parser said it.
fn refused<T>(r: Result<T, String>) -> Result<(), InvalidOption> {
    r.map(drop).map_err(InvalidOption::Value)
}

impl AppOptions for PktgenOptions {
    const TABLE: &'static str = "pktgen";

    fn config_path(&self) -> Option<&Path> {
        self.config.as_deref()
    }

    fn check(&self) -> Result<(), InvalidOption> {
        if let Some(r) = &self.rate {
            refused(r.parse::<Rate>())?;
        }
        if let Some(s) = &self.size {
            refused(s.parse::<SizeSpec>())?;
        }
        if self.flows == Some(0) {
            return Err(InvalidOption::Value(
                "invalid flows 0: give at least 1".into(),
            ));
        }
        if let Some(d) = self.duration {
            refused(parse_duration_s(d))?;
        }
        if self.count == Some(0) {
            return Err(InvalidOption::Value(
                "invalid count 0: give at least 1".into(),
            ));
        }
        if let Some(ms) = self.drain_ms {
            refused(check_drain_ms(ms))?;
        }
        if let Some(m) = &self.dst_mac {
            refused(parse_mac(m))?;
        }
        if let Some(t) = self.stats_period {
            refused(check_stats_period(t))?;
        }
        Ok(())
    }
}

impl PktgenOptions {
    /// The settings of a run: pktgen's defaults (TX port 0, RX port = TX port, rate max,
    /// 64-byte frames, 1 flow, 500 ms drain, stats every second) where nothing was given.
    /// Checks the values again, so that options that did not come through
    /// `apps_common::options::load` are refused too, never taken unchecked.
    pub fn resolve(self) -> anyhow::Result<Settings> {
        self.check()
            .map_err(|e| anyhow::anyhow!(e.for_option(&Self::command())))?;
        let msg = anyhow::Error::msg;
        let tx_port = self.tx_port.unwrap_or(0);
        let duration = self
            .duration
            .map(parse_duration_s)
            .transpose()
            .map_err(msg)?;
        if self.count.is_none() && duration.is_none() {
            bail!(
                "give --count N or --duration S (or both): pktgen needs to know when to stop sending"
            );
        }
        Ok(Settings {
            tx_port,
            rx_port: self.rx_port.unwrap_or(tx_port),
            rate: self.rate.as_deref().unwrap_or("max").parse().map_err(msg)?,
            size: self.size.as_deref().unwrap_or("64").parse().map_err(msg)?,
            flows: self.flows.unwrap_or(1),
            count: self.count,
            duration,
            drain: check_drain_ms(self.drain_ms.unwrap_or(500)).map_err(msg)?,
            dst_mac: self
                .dst_mac
                .map(|m| parse_mac(&m).map(MacAddr))
                .transpose()
                .map_err(msg)?,
            stats_period: check_stats_period(self.stats_period.unwrap_or(1)).map_err(msg)?,
            report: self.report,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apps_common::config::{toml, ConfigFile};
    use apps_common::options::CommandLine;
    use proptest::prelude::*;

    fn file(text: &str) -> ConfigFile {
        ConfigFile::parse(Path::new("t.toml"), text).unwrap()
    }

    fn settings(args: &[&str], text: &str) -> anyhow::Result<Settings> {
        let argv = std::iter::once("pktgen").chain(args.iter().copied());
        CommandLine::<PktgenOptions>::parse_from(argv)?
            .over(&file(text))?
            .resolve()
    }

    #[test]
    fn cli_is_well_formed() {
        PktgenOptions::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let s = settings(&["--count", "1"], "").unwrap();
        assert_eq!((s.tx_port, s.rx_port, s.flows), (0, 0, 1));
        assert_eq!((s.rate, s.size), (Rate::Max, SizeSpec::Fixed(64)));
        assert_eq!(s.drain, Duration::from_millis(500));
        assert_eq!((s.stats_period, s.count, s.duration), (1, Some(1), None));
        assert!(s.dst_mac.is_none() && s.report.is_none());
    }

    #[test]
    fn command_line_over_the_file() {
        let text = "[pktgen]\ntx_port = 1\nrate = \"1000\"\nflows = 4\ncount = 10\ndst_mac = \"02:00:00:00:00:01\"";
        let s = settings(&["--flows", "2", "--drain-ms", "0"], text).unwrap();
        assert_eq!((s.tx_port, s.rx_port, s.flows), (1, 1, 2));
        assert_eq!((s.rate, s.count), (Rate::Pps(1000.0), Some(10)));
        assert_eq!(s.drain, Duration::ZERO);
        assert_eq!(s.dst_mac, Some(MacAddr([2, 0, 0, 0, 0, 1])));
        // More than TOML can hold, from the command line.
        let s = settings(&["--count", "18446744073709551615"], text).unwrap();
        assert_eq!(s.count, Some(u64::MAX));
    }

    #[test]
    fn refusals_in_each_source_s_words() {
        let err = |args: &[&str], text: &str| settings(args, text).unwrap_err().to_string();
        assert_eq!(
            err(&["--count", "1", "--flows", "0"], ""),
            "invalid flows 0: give at least 1"
        );
        assert_eq!(
            err(&[], "[pktgen]\ncount = 0"),
            "invalid config t.toml: [pktgen] invalid count 0: give at least 1"
        );
        assert!(err(&["--count", "1", "--size", "10"], "").starts_with("invalid size 10"));
        assert!(err(&[], "[pktgen]\nrate = \"fast\"").contains("[pktgen] invalid rate \"fast\""));
        assert!(err(&["--rate", "1000"], "").starts_with("give --count N or --duration S"));
        assert!(err(&["--count", "1"], "[pktgen]\nflow = 2").contains("unknown field `flow`"));
        let e = err(&["--count", "1"], "[pktgen]\nconfig = \"x.toml\"");
        assert!(e.contains("unknown field `config`"), "{e}");
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::sample::select(
                &[
                    "--tx-port", "--rx-port", "--rate", "--size", "--flows", "--count",
                    "--duration", "--drain-ms", "--dst-mac", "-T", "--stats-period", "--report",
                    "--config", "0", "1", "-1", "64", "1518", "64-1518", "imix", "max", "1.5M",
                    "1Gbps", "1e300", "NaN", "inf", "86401", "3600001", "18446744073709551615",
                    "02:00:00:00:00:01", "zz", "", "--", "--help",
                ][..]
            )
            .prop_map(str::to_owned),
            1 => ".*",
        ]
    }

    /// A `[pktgen]` key and a value of any type.
    fn entry() -> impl Strategy<Value = (String, toml::Value)> {
        let key = prop_oneof![
            4 => prop::sample::select(
                &[
                    "tx_port", "rx_port", "rate", "size", "flows", "count", "duration",
                    "drain_ms", "dst_mac", "stats_period", "report",
                ][..]
            )
            .prop_map(str::to_owned),
            1 => "[a-z_]{1,12}",
        ];
        let value = prop_oneof![
            any::<i64>().prop_map(toml::Value::Integer),
            (-2i64..70_000).prop_map(toml::Value::Integer),
            any::<f64>().prop_map(toml::Value::Float),
            any::<bool>().prop_map(toml::Value::Boolean),
            word().prop_map(toml::Value::String),
        ];
        (key, value)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Any command line and any `[pktgen]` table: settings, or a one-line reason. Never a
        /// panic.
        #[test]
        fn any_options_resolve_or_err(
            args in prop::collection::vec(word(), 0..8),
            entries in prop::collection::vec(entry(), 0..5),
        ) {
            let table: toml::Table = entries.into_iter().collect();
            let mut top = toml::Table::new();
            top.insert("pktgen".into(), toml::Value::Table(table));
            let text = toml::to_string(&top).expect("a table serialises");
            let argv = std::iter::once("pktgen".to_owned()).chain(args);
            match CommandLine::<PktgenOptions>::parse_from(argv) {
                Ok(cli) => {
                    if let Err(e) = cli.over(&file(&text)).and_then(PktgenOptions::resolve) {
                        // As main_with prints it (the TOML parser's messages span lines).
                        let m = apps_common::one_line(&format!("{e:#}"));
                        prop_assert!(!m.is_empty());
                    }
                }
                Err(e) => {
                    if let Some(m) = apps_common::usage_message(&e) {
                        prop_assert!(!m.contains('\n') && !m.is_empty());
                    }
                }
            }
        }
    }
}
