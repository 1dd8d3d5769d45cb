//! l2fwd's options: one type for its command line and the `[l2fwd]` table of a config file
//! (see `apps_common::options`), their bounds, and the settings of a run they resolve to,
//! defaults applied. main reads them as `apps_common::options::load::<L2fwdOptions>()` and
//! `resolve()`s them.

use anyhow::Context;
use apps_common::options::{in_range, AppOptions, InvalidOption};
use clap::{CommandFactory, Parser};
use dataplane::copy::CopyMode;
use dataplane::placement::parse_queue_map;
use dataplane::ports::{parse_portmap, parse_portmask};
use pmd::{LcoreId, PortId, QueueId};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The bounds of l2fwd's numeric options, the same on the command line and in `[l2fwd]`.
pub mod limits {
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
    /// `-q`: an lcore may take every port (or RX queue).
    pub const PORTS_PER_LCORE: RangeInclusive<u64> = 1..=64;
    /// `--rxq`, `--txq`: queues per port, as many as a port hands out (`pmd::Port::MAX_QUEUES`).
    pub const QUEUES: RangeInclusive<u16> = 1..=pmd::Port::MAX_QUEUES;
}

/// Default copybreak: below this a CPU copy is cheaper than a descriptor on any engine.
pub const DEFAULT_COPYBREAK: u32 = 256;

/// A port mask as written: a hexadecimal string ("0x3", and always on the command line) or,
/// in the file, an integer (3).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum PortMask {
    Text(String),
    Number(u64),
}

impl PortMask {
    /// The mask as `parse_portmask` reads it.
    pub fn to_text(&self) -> String {
        match self {
            PortMask::Text(s) => s.clone(),
            PortMask::Number(n) => format!("{n:#x}"),
        }
    }
}

impl std::str::FromStr for PortMask {
    type Err = std::convert::Infallible;
    /// Any text: it is checked with the other values ([`AppOptions::check`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(PortMask::Text(s.to_owned()))
    }
}

/// l2fwd's options: on the command line, and under the same names (`portmask`,
/// `stats_period`, ...) in `[l2fwd]`. None: not given there.
#[derive(Parser, Deserialize, Debug, Default)]
#[command(
    name = "l2fwd",
    version,
    about = "Layer-2 forwarder on DPDK ports: l2fwd [EAL options] -- [options]",
    after_help = "EAL options (-l, --vdev, --no-huge, -a, ...) go before `--`; with --config they may \
                  come from the file's `eal` list instead."
)]
#[serde(deny_unknown_fields)]
pub struct L2fwdOptions {
    /// Hexadecimal mask of the ports to forward between.
    #[arg(short = 'p', long = "portmask")]
    pub portmask: Option<PortMask>,
    /// Seconds between statistics prints, 0..=86400 (0 = quiet) [default: 10].
    #[arg(short = 'T', long = "stats-period")]
    pub stats_period: Option<u64>,
    /// RX ports (RX queues, with --rxq) each lcore takes in turn, 1..=64, as DPDK's l2fwd -q
    /// [default: the queues dealt to every lcore round-robin].
    #[arg(short = 'q', long = "ports-per-lcore")]
    pub ports_per_lcore: Option<u64>,
    /// RX queues per port, 1..=32, as testpmd's --rxq; flows are spread over them by RSS
    /// where the device has it [default: enough for every lcore to get work, as many as the
    /// device has; 1 with -q].
    #[arg(long)]
    pub rxq: Option<u16>,
    /// TX queues per port, 1..=32, as testpmd's --txq; each lcore sends on a queue of its own
    /// [default: one per lcore that transmits on the port].
    #[arg(long)]
    pub txq: Option<u16>,
    /// Which lcore polls which RX queue, as l3fwd's --config: "(port,queue,lcore),..."; a
    /// port's queues are numbered from 0 and each is listed once [default: dealt
    /// round-robin].
    #[arg(long = "queue-map")]
    pub queue_map: Option<String>,
    /// Port pairs that forward to each other, as DPDK's l2fwd --portmap "(0,1)(2,3)": each
    /// enabled port in one pair [default: consecutive enabled ports pair up].
    #[arg(long)]
    pub portmap: Option<String>,
    /// Rewrite source and destination MACs (the default).
    #[arg(
        long = "mac-updating",
        num_args = 0,
        default_missing_value = "true",
        overrides_with = "no_mac_updating"
    )]
    pub mac_updating: Option<bool>,
    /// Forward frames unchanged.
    #[arg(long = "no-mac-updating", overrides_with = "mac_updating")]
    #[serde(skip)]
    pub no_mac_updating: bool,
    /// Stop after this many seconds, at most 31536000 (a year; default: run until
    /// SIGINT/SIGTERM).
    #[arg(long, allow_negative_numbers = true)]
    pub duration: Option<f64>,
    /// Copy every packet into a fresh mbuf: none (plain l2fwd), cpu, dma, or auto [default:
    /// none].
    #[arg(long)]
    pub copy: Option<String>,
    /// With --copy dma: packets of at least this many bytes have their payload copied by DMA
    /// (1..=65535) [default: 256].
    #[arg(long)]
    pub copybreak: Option<u32>,
    /// DMA device to use (repeatable; default with --copy dma|auto: every dmadev found).
    #[arg(long = "dma")]
    pub dma: Option<Vec<String>>,
    /// Milliseconds a DMA channel may hold copies without completing any before the worker
    /// gives up on it (a surprise removal or a hung engine) and re-copies them on the CPU
    /// (1..=60000) [default: 10].
    #[arg(long = "dma-timeout-ms")]
    pub dma_timeout_ms: Option<u64>,
    /// Write the JSON report here at exit.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Control socket for dpctl (default: l2fwd.sock in DPDK's runtime directory).
    #[arg(long)]
    pub control: Option<PathBuf>,
    /// Accept `dma fault NAME stall` on the control socket (surprise-removal drills).
    #[arg(
        long = "allow-fault-injection",
        num_args = 0,
        default_missing_value = "true"
    )]
    pub allow_fault_injection: Option<bool>,
    /// Milliseconds a hot-remove waits for a worker to release the channel before failing
    /// (1..=60000) [default: 2000, or twice --dma-timeout-ms if that is longer: a worker
    /// waits that long for a stalled engine before it lets go].
    #[arg(long = "grace-ms")]
    pub grace_ms: Option<u64>,
    /// TOML config; command-line options override it.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

/// The settings of a run: the options resolved, l2fwd's defaults applied.
#[derive(Debug)]
pub struct Settings {
    pub portmask: u64,
    pub ports_per_lcore: Option<usize>,
    pub portmap: Option<Vec<(PortId, PortId)>>,
    pub rxq: Option<u16>,
    pub txq: Option<u16>,
    pub queue_map: Option<Vec<(PortId, QueueId, LcoreId)>>,
    pub stats_period: u64,
    pub mac_updating: bool,
    pub duration: Option<Duration>,
    pub copy: CopyMode,
    pub copybreak: u32,
    pub dma: Vec<String>,
    pub dma_timeout: Duration,
    pub report: Option<PathBuf>,
    pub control: Option<PathBuf>,
    pub allow_faults: bool,
    pub grace_timeout: Duration,
}

impl AppOptions for L2fwdOptions {
    const TABLE: &'static str = "l2fwd";

    fn config_path(&self) -> Option<&Path> {
        self.config.as_deref()
    }

    /// Every value that is set, against [`limits`] and its parser.
    fn check(&self) -> Result<(), InvalidOption> {
        use limits::*;
        if let Some(m) = &self.portmask {
            parse_portmask(&m.to_text()).map_err(|e| InvalidOption::Value(e.to_string()))?;
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
            c.parse::<CopyMode>().map_err(InvalidOption::Value)?;
        }
        in_range("copybreak", self.copybreak, COPYBREAK, "bytes")?;
        in_range(
            "dma_timeout_ms",
            self.dma_timeout_ms,
            DMA_TIMEOUT_MS,
            "milliseconds",
        )?;
        in_range("grace_ms", self.grace_ms, GRACE_MS, "milliseconds")?;
        in_range(
            "ports_per_lcore",
            self.ports_per_lcore,
            PORTS_PER_LCORE,
            "ports",
        )?;
        if let Some(m) = &self.portmap {
            parse_portmap(m).map_err(|e| InvalidOption::Value(e.to_string()))?;
        }
        in_range("rxq", self.rxq, QUEUES, "RX queues per port")?;
        in_range("txq", self.txq, QUEUES, "TX queues per port")?;
        if let Some(m) = &self.queue_map {
            parse_queue_map(m).map_err(|e| InvalidOption::Value(e.to_string()))?;
        }
        Ok(())
    }
}

impl L2fwdOptions {
    /// The settings of a run: l2fwd's defaults (stats every 10 s, MAC updating on, no copy,
    /// copybreak 256 bytes, DMA timeout 10 ms, grace 2000 ms or twice the DMA timeout) where
    /// nothing was given; the
    /// port mask is required. Checks the values again, so that options that did not come
    /// through `apps_common::options::load` are refused too, never taken unchecked.
    pub fn resolve(self) -> anyhow::Result<Settings> {
        self.check()
            .map_err(|e| anyhow::anyhow!(e.for_option(&Self::command())))?;
        let mask = self.portmask.map(|m| m.to_text()).context(
            "no portmask given: use -p PORTMASK (for example -p 0x3) or `portmask` in [l2fwd]",
        )?;
        // Checked above: finite, positive and at most a year, so the conversion cannot fail.
        let duration = match self.duration {
            None => None,
            Some(d) => Some(Duration::try_from_secs_f64(d).context("invalid --duration")?),
        };
        let copy = match self.copy {
            None => CopyMode::None,
            Some(s) => s.parse().map_err(anyhow::Error::msg)?,
        };
        let dma_timeout_ms = self.dma_timeout_ms.unwrap_or(10);
        Ok(Settings {
            portmask: parse_portmask(&mask)?,
            // Checked above: 1..=64.
            ports_per_lcore: self.ports_per_lcore.map(|q| q as usize),
            portmap: self.portmap.as_deref().map(parse_portmap).transpose()?,
            rxq: self.rxq,
            txq: self.txq,
            queue_map: self.queue_map.as_deref().map(parse_queue_map).transpose()?,
            stats_period: self.stats_period.unwrap_or(10),
            mac_updating: !self.no_mac_updating && self.mac_updating.unwrap_or(true),
            duration,
            copy,
            copybreak: self.copybreak.unwrap_or(DEFAULT_COPYBREAK),
            dma: self.dma.unwrap_or_default(),
            dma_timeout: Duration::from_millis(dma_timeout_ms),
            report: self.report,
            control: self.control,
            allow_faults: self.allow_fault_injection.unwrap_or(false),
            // A removal waits for a worker, which may wait out a stalled engine first.
            grace_timeout: Duration::from_millis(
                self.grace_ms.unwrap_or(2000.max(2 * dma_timeout_ms)),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apps_common::config::{toml, ConfigFile};
    use apps_common::options::CommandLine;
    use proptest::prelude::*;
    use std::time::Instant;

    fn parse(args: &[String]) -> Result<CommandLine<L2fwdOptions>, clap::Error> {
        CommandLine::parse_from(std::iter::once("l2fwd".to_owned()).chain(args.iter().cloned()))
    }

    fn file(text: &str) -> ConfigFile {
        ConfigFile::parse(Path::new("t.toml"), text).unwrap()
    }

    /// The command line over the file `text`, resolved.
    fn settings(args: &[&str], text: &str) -> anyhow::Result<Settings> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        parse(&args)?.over(&file(text))?.resolve()
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::sample::select(
                &[
                    "-p", "--portmask", "-T", "--stats-period", "--duration", "--copy",
                    "--copybreak", "--dma", "--dma-timeout-ms", "--grace-ms", "--report",
                    "--control", "--config", "--mac-updating", "--no-mac-updating",
                    "--allow-fault-injection", "-q", "--ports-per-lcore", "--portmap", "(0,1)",
                    "--rxq", "--txq", "--queue-map", "(0,0,0)", "(0,0,1),(0,1,0)", "(0,32,0)",
                    "32", "33",
                    "(0,3)(1,2)", "(0,1", "(0,64)", "64", "65", "0x3", "3", "0", "1", "-1",
                    "60000", "60001",
                    "86400", "86401", "65535", "65536", "18446744073709551615",
                    "18446744073709551616", "1e300", "NaN", "inf", "-0", "0.5", "none", "cpu",
                    "dma", "auto", "", "--", "--help", "-h",
                ][..]
            )
            .prop_map(str::to_owned),
            1 => ".*",
        ]
    }

    /// An option value: the bounds' edges, and anything.
    fn number() -> impl Strategy<Value = u64> {
        prop_oneof![
            prop::sample::select(
                &[
                    0u64,
                    1,
                    86_400,
                    86_401,
                    60_000,
                    60_001,
                    65_535,
                    65_536,
                    u32::MAX as u64,
                    u64::MAX
                ][..]
            ),
            0u64..100_000,
            any::<u64>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any argument vector: options, or a usage error on one line; options resolve into a
        /// run's settings or give a one-line reason. Never a panic.
        #[test]
        fn any_argv_parses_or_errs(args in prop::collection::vec(word(), 0..8)) {
            match parse(&args) {
                Ok(cli) => {
                    if let Err(e) = cli.over(&ConfigFile::default()).and_then(L2fwdOptions::resolve) {
                        let m = format!("{e:#}");
                        prop_assert!(!m.contains('\n') && !m.is_empty());
                    }
                }
                Err(e) => {
                    if let Some(m) = apps_common::usage_message(&e) {
                        prop_assert!(!m.contains('\n') && !m.is_empty());
                    }
                }
            }
        }

        /// The numeric options are accepted exactly within their documented bounds.
        #[test]
        fn numeric_options_within_bounds(
            t in number(), cb in number(), dto in number(), grace in number(), q in number(),
            dur in prop_oneof![
                any::<f64>(),
                prop::sample::select(&[0.0, -0.0, 1e-9, 1e-308, 0.001, 31_536_000.0, 31_536_000.5][..]),
            ],
            mask in prop_oneof!["(0[xX])?[0-9a-fA-F]{0,17}", ".{0,8}"],
            copy in prop_oneof![
                prop::sample::select(&["none", "cpu", "dma", "auto"][..]).prop_map(str::to_owned),
                ".{0,6}",
            ],
        ) {
            let args: Vec<String> = [
                format!("-p={mask}"),
                format!("-T={t}"),
                format!("--copybreak={cb}"),
                format!("--dma-timeout-ms={dto}"),
                format!("--grace-ms={grace}"),
                format!("--duration={dur}"),
                format!("--copy={copy}"),
                format!("-q={q}"),
            ]
            .into();
            let cli = match parse(&args) {
                Ok(c) => c,
                // Only a value that is no u32/u64/f64 at all stops clap.
                Err(e) => {
                    prop_assert!(cb > u32::MAX as u64, "{:?}: {}", args, e);
                    return Ok(());
                }
            };
            let digits = mask.trim();
            let digits = digits
                .strip_prefix("0x")
                .or_else(|| digits.strip_prefix("0X"))
                .unwrap_or(digits);
            let mask_ok = u64::from_str_radix(digits, 16).is_ok_and(|m| m != 0);
            let expect_ok = mask_ok
                && t <= 86_400
                && (1..=65_535).contains(&cb)
                && (1..=60_000).contains(&dto)
                && (1..=60_000).contains(&grace)
                && (1..=64).contains(&q)
                && dur.is_finite()
                && (0.001..=31_536_000.0).contains(&dur)
                && ["none", "cpu", "dma", "auto"].contains(&copy.as_str());
            let got = cli.over(&ConfigFile::default()).and_then(L2fwdOptions::resolve);
            prop_assert_eq!(got.is_ok(), expect_ok, "{:?} => {:?}", args, got);
            if let Ok(o) = got {
                prop_assert!(o.duration.is_some_and(|d| d > Duration::ZERO));
                prop_assert!(Instant::now().checked_add(o.grace_timeout).is_some());
            }
        }

        /// A structured [l2fwd] table: accepted exactly when every key is known and every
        /// value has the right type and lies within its bounds.
        #[test]
        fn l2fwd_table_is_accepted_iff_valid(
            mut entries in l2fwd_entries(),
            other in prop::option::weighted(0.1, (key(), value())),
        ) {
            // A second value for a key already there replaces it, as in the table.
            if let Some((k, v)) = other {
                entries.retain(|(e, _)| *e != k);
                entries.push((k, v));
            }
            let mut table = toml::Table::new();
            table.insert(
                "l2fwd".into(),
                toml::Value::Table(entries.clone().into_iter().collect()),
            );
            let text = toml::to_string(&table).expect("a table serialises");
            let expect_ok = entries.iter().all(|(k, v)| valid(k, v));
            let got = ConfigFile::parse(Path::new("prop.toml"), &text)
                .and_then(|c| c.options::<L2fwdOptions>());
            prop_assert_eq!(got.is_ok(), expect_ok, "{}\n=> {:?}", text, got);
        }
    }

    #[test]
    fn cli_is_well_formed() {
        L2fwdOptions::command().debug_assert();
        // EAL options given without `--` are told apart by name.
        apps_common::eal::assert_no_clash_with_eal(&L2fwdOptions::command());
    }

    #[test]
    fn file_values_are_checked_and_command_line_wins() {
        let o = settings(
            &["--grace-ms", "7"],
            "[l2fwd]\nportmask = 3\ngrace_ms = 500",
        )
        .unwrap();
        assert_eq!(o.grace_timeout, Duration::from_millis(7));
        assert_eq!(o.portmask, 3);
        let e = settings(&["-p", "3", "--grace-ms", "0"], "").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid --grace-ms 0: expected 1..=60000 milliseconds"
        );
        let e = settings(&["-p", "3", "--grace-ms", "7"], "[l2fwd]\ngrace_ms = 0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid config t.toml: [l2fwd] invalid grace_ms = 0: expected 1..=60000 milliseconds"
        );
    }

    #[test]
    fn defaults() {
        let o = settings(&["-p", "0x3"], "").unwrap();
        assert_eq!((o.portmask, o.stats_period, o.mac_updating), (3, 10, true));
        assert_eq!((o.copy, o.copybreak), (CopyMode::None, 256));
        assert_eq!(o.dma_timeout, Duration::from_millis(10));
        assert_eq!(o.grace_timeout, Duration::from_millis(2000));
        assert!(o.duration.is_none() && o.dma.is_empty() && !o.allow_faults);
        assert!(o.ports_per_lcore.is_none() && o.portmap.is_none());
        // The grace period outlasts a worker's wait for a stalled engine.
        let o = settings(&["-p", "0x3", "--dma-timeout-ms", "3000"], "").unwrap();
        assert_eq!(o.grace_timeout, Duration::from_millis(6000));
        let o = settings(
            &["-p", "3", "--dma-timeout-ms", "3000", "--grace-ms", "5"],
            "",
        )
        .unwrap();
        assert_eq!(o.grace_timeout, Duration::from_millis(5));
        let o = settings(&["-p", "0xf", "-q", "2", "--portmap", "(0,3)(1,2)"], "").unwrap();
        assert_eq!(o.ports_per_lcore, Some(2));
        let p = PortId::new;
        assert_eq!(o.portmap, Some(vec![(p(0), p(3)), (p(1), p(2))]));
        let e = settings(&["-p", "3", "-q", "0"], "")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "invalid -q/--ports-per-lcore 0: expected 1..=64 ports");
        let e = settings(&["-p", "3"], "[l2fwd]\nportmap = \"(0,1\"").unwrap_err();
        assert!(e.to_string().contains("invalid portmap \"(0,1\""), "{e}");
        assert!(o.report.is_none() && o.control.is_none());
        let e = settings(&["-T", "0"], "").unwrap_err().to_string();
        assert!(e.starts_with("no portmask given"), "{e}");
    }

    /// Flags on the command line over the file's booleans, and lists replaced whole.
    #[test]
    fn flags_and_lists_over_the_file() {
        let text = "[l2fwd]\nportmask = \"0x1\"\nmac_updating = false\ndma = [\"a\", \"b\"]";
        let o = settings(&[], text).unwrap();
        assert!(!o.mac_updating);
        assert_eq!(o.dma, ["a", "b"]);
        let o = settings(&["--mac-updating", "--dma", "c"], text).unwrap();
        assert!(o.mac_updating);
        assert_eq!(o.dma, ["c"]);
        let on = "[l2fwd]\nportmask = 1\nmac_updating = true\nallow_fault_injection = true";
        let o = settings(&["--no-mac-updating"], on).unwrap();
        assert!(!o.mac_updating && o.allow_faults);
        assert!(
            !settings(&["--mac-updating", "--no-mac-updating"], on)
                .unwrap()
                .mac_updating
        );
        assert!(
            settings(&["--no-mac-updating", "--mac-updating"], on)
                .unwrap()
                .mac_updating
        );
        assert!(
            settings(&["-p", "1", "--allow-fault-injection"], "")
                .unwrap()
                .allow_faults
        );
        for key in ["no_mac_updating = true", "config = \"x.toml\""] {
            let e = settings(&["-p", "1"], &format!("[l2fwd]\n{key}"));
            assert!(
                e.unwrap_err().to_string().contains("unknown field"),
                "{key}"
            );
        }
    }

    #[test]
    fn bounds_are_inclusive() {
        let ok = L2fwdOptions {
            stats_period: Some(86_400),
            duration: Some(limits::DURATION_MAX_S),
            copybreak: Some(65_535),
            dma_timeout_ms: Some(1),
            grace_ms: Some(60_000),
            ..Default::default()
        };
        assert_eq!(ok.check(), Ok(()));
        let zero_t = L2fwdOptions {
            stats_period: Some(0),
            ..Default::default()
        };
        assert_eq!(zero_t.check(), Ok(()));
        let cmd = L2fwdOptions::command();
        let e = L2fwdOptions {
            grace_ms: Some(60_001),
            ..Default::default()
        }
        .check()
        .unwrap_err();
        assert_eq!(
            e.for_option(&cmd),
            "invalid --grace-ms 60001: expected 1..=60000 milliseconds"
        );
        let e = L2fwdOptions {
            stats_period: Some(u64::MAX),
            ..Default::default()
        }
        .check()
        .unwrap_err();
        assert_eq!(
            e.for_option(&cmd),
            "invalid -T/--stats-period 18446744073709551615: expected 0..=86400 seconds (0 = quiet)"
        );
    }

    #[test]
    fn file_errors_are_clear() {
        let l2 = |t: &str| file(t).options::<L2fwdOptions>().unwrap_err().to_string();
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
        let e = l2("[l2fwd]\nportmask = true");
        assert!(e.contains("portmask"), "{e}");
        let e = l2("[l2fwd]\nportmask = \"0xq\"");
        assert!(e.contains("invalid portmask"), "{e}");
        let e = l2("[l2fwd]\ncopy = \"fast\"");
        assert!(e.contains("invalid copy mode"), "{e}");
        let e = l2("[l2fwd]\nportmask = \"0x3\"\nstats = 1");
        assert!(e.contains("unknown field `stats`"), "{e}");
        let o: L2fwdOptions = file("[l2fwd]\nportmask = 5\n").options().unwrap();
        assert_eq!(o.portmask.unwrap().to_text(), "0x5");
    }

    /// A TOML value of any type, with the edges of each.
    fn value() -> impl Strategy<Value = toml::Value> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(toml::Value::Integer),
            prop_oneof![
                Just(0i64),
                Just(1),
                Just(-1),
                Just(86_400),
                Just(86_401),
                Just(60_000),
                Just(60_001),
                Just(65_535),
                Just(65_536),
                Just(31_536_000),
                Just(31_536_001),
                Just(i64::MAX),
                Just(i64::MIN),
                Just(u32::MAX as i64 + 1),
            ]
            .prop_map(toml::Value::Integer),
            any::<f64>().prop_map(toml::Value::Float),
            prop_oneof![
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                Just(0.0),
                Just(-0.0),
                Just(1e-300),
                Just(31_536_000.0),
                Just(31_536_000.5),
            ]
            .prop_map(toml::Value::Float),
            any::<bool>().prop_map(toml::Value::Boolean),
            "(0[xX])?[0-9a-fA-F]{0,18}".prop_map(toml::Value::String),
            prop_oneof![
                Just("none"),
                Just("cpu"),
                Just("dma"),
                Just("auto"),
                Just(""),
                Just(" 0x3 ")
            ]
            .prop_map(|s| toml::Value::String(s.into())),
            ".*".prop_map(toml::Value::String),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            prop::collection::vec(inner, 0..4).prop_map(toml::Value::Array)
        })
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
        "ports_per_lcore",
        "portmap",
        "rxq",
        "txq",
        "queue_map",
    ];

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(KEYS).prop_map(str::to_owned),
            1 => "[a-z_]{1,16}",
        ]
    }

    fn int_in(v: &toml::Value, lo: i64, hi: i64) -> bool {
        matches!(v, toml::Value::Integer(i) if (lo..=hi).contains(i))
    }

    fn portmask_ok(v: &toml::Value) -> bool {
        match v {
            toml::Value::Integer(i) => *i > 0,
            toml::Value::String(s) => {
                let t = s.trim();
                let d = t
                    .strip_prefix("0x")
                    .or_else(|| t.strip_prefix("0X"))
                    .unwrap_or(t);
                let d = d.strip_prefix('+').unwrap_or(d);
                !d.is_empty()
                    && d.chars().all(|c| c.is_ascii_hexdigit())
                    && d.trim_start_matches('0').len() <= 16
                    && d.chars().any(|c| c != '0')
            }
            _ => false,
        }
    }

    /// A port number of a portmap: decimal (as Rust reads a u16: an optional `+`, any leading
    /// zeros), below 64 (the ports l2fwd can drive).
    fn port_number_ok(n: &str) -> bool {
        let d = n.strip_prefix('+').unwrap_or(n);
        !d.is_empty()
            && d.bytes().all(|c| c.is_ascii_digit())
            && d.trim_start_matches('0').len() <= 2
            && d.parse::<u32>().is_ok_and(|p| p < 64)
    }

    /// `--portmap` as DPDK's l2fwd takes it: one or more pairs `(A,B)`, blanks allowed around
    /// the pairs and the numbers.
    fn portmap_ok(s: &str) -> bool {
        let Some(body) = s.trim().strip_suffix(')') else {
            return false;
        };
        body.split(')').all(|pair| {
            let Some(pair) = pair.trim_start().strip_prefix('(') else {
                return false;
            };
            let ports: Vec<&str> = pair.split(',').collect();
            ports.len() == 2 && ports.iter().all(|p| port_number_ok(p.trim()))
        })
    }

    /// `(port,queue,lcore)` triples, ports below 64, queues below 32, lcores below DPDK's
    /// RTE_MAX_LCORE; commas between triples optional.
    fn queue_map_ok(s: &str) -> bool {
        let mut rest = s.trim();
        if rest.is_empty() {
            return false;
        }
        while !rest.is_empty() {
            let Some((inner, after)) = rest.strip_prefix('(').and_then(|r| r.split_once(')'))
            else {
                return false;
            };
            let f: Vec<&str> = inner.split(',').map(str::trim).collect();
            let below = |t: &str, n: u32| t.parse::<u32>().is_ok_and(|v| v < n);
            if f.len() != 3
                || !(below(f[0], 64) && below(f[1], 32) && below(f[2], pmd::LcoreId::LIMIT))
            {
                return false;
            }
            rest = after.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
        true
    }

    /// Whether `[l2fwd] key = v` is valid, from the documented types and bounds (an oracle
    /// written from the documentation, not from the code under test).
    fn valid(key: &str, v: &toml::Value) -> bool {
        use toml::Value::*;
        match key {
            "portmask" => portmask_ok(v),
            "stats_period" => int_in(v, 0, 86_400),
            "mac_updating" | "allow_fault_injection" => matches!(v, Boolean(_)),
            "duration" => {
                let d = match v {
                    Integer(i) => *i as f64,
                    Float(f) => *f,
                    _ => return false,
                };
                d.is_finite() && (0.001..=31_536_000.0).contains(&d)
            }
            "report" | "control" => matches!(v, String(_)),
            "copy" => {
                matches!(v, String(s) if ["none", "cpu", "dma", "auto"].contains(&s.as_str()))
            }
            "copybreak" => int_in(v, 1, 65_535),
            "dma" => matches!(v, Array(a) if a.iter().all(|x| matches!(x, String(_)))),
            "dma_timeout_ms" | "grace_ms" => int_in(v, 1, 60_000),
            "ports_per_lcore" => int_in(v, 1, 64),
            "portmap" => matches!(v, String(s) if portmap_ok(s)),
            "rxq" | "txq" => int_in(v, 1, 32),
            "queue_map" => matches!(v, String(s) if queue_map_ok(s)),
            _ => false,
        }
    }

    /// Mostly values of `key`'s type near its bounds, sometimes anything: so that tables with
    /// every value valid, and tables with one value just out of bounds, both come up often.
    fn typed_value(key: &'static str) -> BoxedStrategy<toml::Value> {
        use toml::Value::*;
        let ints = |edges: &'static [i64]| {
            prop_oneof![
                prop::sample::select(edges).prop_map(Integer),
                (-2i64..70_000).prop_map(Integer),
            ]
            .boxed()
        };
        let right: BoxedStrategy<toml::Value> = match key {
            "portmask" => prop_oneof![
                "(0[xX])?[0-9a-fA-F]{0,17}".prop_map(String),
                (-2i64..100).prop_map(Integer),
            ]
            .boxed(),
            "stats_period" => ints(&[0, 1, 86_400, 86_401]),
            "copybreak" => ints(&[0, 1, 65_535, 65_536, 4_294_967_296]),
            "dma_timeout_ms" | "grace_ms" => ints(&[0, 1, 60_000, 60_001]),
            "ports_per_lcore" => ints(&[0, 1, 64, 65, -1]),
            "rxq" | "txq" => ints(&[0, 1, 32, 33, -1]),
            "queue_map" => prop_oneof![
                // Triples near the bounds (ports < 64, queues < 32), comma-separated or not.
                prop::collection::vec((0u32..70, 0u32..40, 0u32..5, ",?"), 0..4)
                    .prop_map(|t| {
                        t.iter()
                            .map(|(p, q, l, sep)| format!("({p},{q},{l}){sep}"))
                            .collect::<std::string::String>()
                    })
                    .prop_map(String),
                "[()0-9, ]{0,14}".prop_map(String),
            ]
            .boxed(),
            "portmap" => prop_oneof![
                // Pairs of port numbers near the bound, blanks here and there.
                prop::collection::vec((0u32..70, 0u32..70, " ?", " ?", " ?"), 0..4)
                    .prop_map(|pairs| {
                        pairs
                            .iter()
                            .map(|(a, b, s1, s2, s3)| format!("{s1}({a}{s2},{s3}{b})"))
                            .collect::<std::string::String>()
                    })
                    .prop_map(String),
                "[()0-9, +]{0,12}".prop_map(String),
            ]
            .boxed(),
            "duration" => prop_oneof![
                prop::sample::select(
                    &[
                        0.5,
                        0.0,
                        1e-308,
                        0.001,
                        -1.0,
                        31_536_000.0,
                        31_536_000.5,
                        f64::NAN
                    ][..]
                )
                .prop_map(Float),
                (-2i64..40_000_000).prop_map(Integer),
            ]
            .boxed(),
            "mac_updating" | "allow_fault_injection" => any::<bool>().prop_map(Boolean).boxed(),
            "copy" => prop::sample::select(&["none", "cpu", "dma", "auto", "fast", ""][..])
                .prop_map(|s| String(s.into()))
                .boxed(),
            "dma" => prop::collection::vec("[a-z_0-9]{0,12}".prop_map(String), 0..3)
                .prop_map(Array)
                .boxed(),
            _ => ".{0,20}".prop_map(String).boxed(),
        };
        prop_oneof![8 => right, 1 => value()].boxed()
    }

    fn l2fwd_entries() -> impl Strategy<Value = Vec<(String, toml::Value)>> {
        let per_key: Vec<_> = KEYS
            .iter()
            .map(|&k| prop::option::weighted(0.4, typed_value(k)).prop_map(move |v| (k, v)))
            .collect();
        per_key.prop_map(|v| {
            v.into_iter()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
                .collect()
        })
    }
}
