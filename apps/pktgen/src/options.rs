//! pktgen's options: one type for its command line and the `[pktgen]` table of a config file
//! (see `apps_common::options`), and the settings of a run they resolve to, defaults applied.

use crate::frames::{
    check_drain_ms, check_stats_period, parse_duration_s, parse_mac, FrameKind, Rate, SizeSpec, L4,
    MAX_DRAIN_MS, MAX_DURATION_S, MAX_STATS_PERIOD_S, MAX_VLAN_ID,
};
use crate::search::Criterion;
use crate::verdict::{Criteria, LossLimit, MAX_LATENCY_US};
use anyhow::bail;
use apps_common::options::{in_range, AppOptions, InvalidOption};
use clap::{CommandFactory, Parser};
use dataplane::ports::parse_portmask;
use pmd::MacAddr;
use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The most flows (streams) a run may have: the stream id is 16 bits on the wire.
pub const MAX_FLOWS: u64 = u16::MAX as u64;

/// pktgen's options: on the command line, and under the same names (`tx_port`, `drain_ms`,
/// ...) in `[pktgen]`. None: not given there.
#[derive(Parser, Deserialize, Debug, Default)]
#[command(
    name = "pktgen",
    version,
    about = "Load generator and analyzer on DPDK ports: pktgen [EAL options] -- [options]",
    after_help = "Exit status: 0 when every pass criterion holds, 2 when one fails (each \
                  printed on stderr after the summary), 1 on an error."
)]
#[serde(deny_unknown_fields)]
pub struct PktgenOptions {
    /// Port to transmit on.
    #[arg(long = "tx-port")]
    pub tx_port: Option<u16>,
    /// Port whose received frames are analyzed (default: the TX port).
    #[arg(long = "rx-port")]
    pub rx_port: Option<u16>,
    /// Hexadecimal mask of the ports to transmit and receive on, all of them (0x3: ports 0
    /// and 1), instead of --tx-port/--rx-port. Port p's frames go to port p^1's MAC when that
    /// port is enabled too (as l2fwd pairs them), else to its own.
    #[arg(short = 'p', long)]
    pub portmask: Option<String>,
    /// TX queues per transmitting port, 1..=16 (default 1); each is a TX side owning its
    /// share of the streams (stream s on TX side s % sides) and of the rate.
    #[arg(long)]
    pub txq: Option<u16>,
    /// RX queues per receiving port, 1..=16 (default 1), spread by RSS; each is an RX side
    /// with its own analyzer, merged exactly at the end.
    #[arg(long)]
    pub rxq: Option<u16>,
    /// Worker lcores that run the TX sides, e.g. 1,2 or 1-2 (default: the first half of the
    /// worker lcores, at least one; all of them when there is one).
    #[arg(long = "tx-lcores", value_name = "LIST")]
    pub tx_lcores: Option<String>,
    /// Worker lcores that run the RX sides (default: the other worker lcores); an lcore in both
    /// lists runs both kinds of side in one loop.
    #[arg(long = "rx-lcores", value_name = "LIST")]
    pub rx_lcores: Option<String>,
    /// max, packets/s (50000, 10Kpps, 1.5Mpps; 1pps to 10Gpps) or bits/s on the wire (100Mbps,
    /// 1Gbps; 1Kbps to 10000Gbps). Units are case-insensitive; a bare 1M or 1G is refused.
    #[arg(long)]
    pub rate: Option<String>,
    /// Frame size with FCS: BYTES (64..1518), MIN-MAX, or imix (64/594/1518 at 7:4:1).
    #[arg(long)]
    pub size: Option<String>,
    /// Number of flows (streams), varying IPv4 addresses and UDP ports: 1..=65535.
    #[arg(long)]
    pub flows: Option<u64>,
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
    /// Milliseconds each sample of the report's time series covers (10..=60000, default 100).
    #[arg(long = "sample-ms")]
    pub sample_ms: Option<u64>,
    /// Write the JSON report here (checked writable before the run starts).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Pass criterion: lost frames allowed, N or P% of those sent (default 0, for --count and
    /// --duration runs alike).
    #[arg(long = "max-loss")]
    #[serde(default, deserialize_with = "frames_or_text")]
    pub max_loss: Option<String>,
    /// Pass criterion: the highest one-way latency allowed, in microseconds (default: none).
    #[arg(long = "max-latency-us")]
    pub max_latency_us: Option<f64>,
    /// Pass criterion: the 99th-percentile one-way latency allowed, in microseconds (default:
    /// none).
    #[arg(long = "max-p99-latency-us")]
    pub max_p99_latency_us: Option<f64>,
    // Frame kind (issue 13 item 7): what carries the test payload.
    /// Tag the frames with this 802.1Q VLAN id, 0..=4095 (priority 0) [default: untagged].
    #[arg(long, value_name = "ID")]
    pub vlan: Option<u64>,
    /// IPv6 frames (addresses 2001:2::198.18.x.y -> 2001:2::198.19.x.y) instead of IPv4.
    #[arg(long, num_args = 0, default_missing_value = "true")]
    pub ipv6: Option<bool>,
    /// Layer 4: udp or tcp (SYN-less data segments) [default: udp].
    #[arg(long, value_name = "udp|tcp")]
    pub proto: Option<String>,
    /// TOML config (`[pktgen]` table, `eal` list); command-line options override it.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    // Runtime control (see `pktgen::control`).
    /// Serve a control socket here (mode 0600; JSON lines: start, stop, rate R, stats; see
    /// dpctl).
    #[arg(long)]
    pub control: Option<PathBuf>,
    /// Start with transmission paused, until `start` on the control socket (needs --control).
    #[arg(long, num_args = 0, default_missing_value = "true")]
    pub paused: Option<bool>,

    // RFC 2544 throughput search (see `pktgen::search`).
    /// Search the highest rate the device under test forwards without loss (ndr) or within
    /// --search-loss (pdr), by trials of --trial-s each; --rate is the upper bound.
    #[arg(long, value_name = "ndr|pdr")]
    pub search: Option<String>,
    /// PDR's loss tolerance, a percentage of the frames sent in a trial (default 0.1%).
    #[arg(long = "search-loss", value_name = "P%")]
    pub search_loss: Option<String>,
    /// Seconds each trial sends for (default 10; RFC 2544 says 60), at most an hour.
    #[arg(long = "trial-s")]
    pub trial_s: Option<f64>,
    /// Stop when the rates that passed and failed are within this percentage of the upper
    /// bound (0.1..=50, default 1).
    #[arg(long = "search-resolution", value_name = "PERCENT")]
    pub search_resolution: Option<f64>,
    /// The lowest rate a search tries (default: none, bisect from 0).
    #[arg(long = "search-min", value_name = "RATE")]
    pub search_min: Option<String>,
    /// Test fixture, not for users: the RX side drops what exceeds this many packets per
    /// second before analysis, as a device under test of known capacity would (the search's
    /// tests need one whose capacity is known by construction).
    #[arg(long = "fixture-capacity-pps", hide = true)]
    pub fixture_capacity_pps: Option<f64>,
}

/// `max_loss = 10` or `max_loss = "0.1%"` in a config file: the text the command line would
/// give.
fn frames_or_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number of frames (10) or a percentage (\"0.1%\")")
        }
        fn visit_u64<E>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
            match u64::try_from(v) {
                Ok(v) => Ok(v.to_string()),
                Err(_) => Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self)),
            }
        }
        fn visit_str<E>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
    }
    d.deserialize_any(V).map(Some)
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
    /// Milliseconds per sample of the report's time series.
    pub sample_ms: u64,
    pub report: Option<PathBuf>,
    /// What the run must show to pass (exit 0).
    pub criteria: Criteria,
    /// VLAN tag, IP version and L4 protocol of the frames.
    pub frame: FrameKind,
    /// `--search`: trials instead of one run.
    pub search: Option<SearchSettings>,
    /// `--portmask`: the ports that transmit and receive (None: `tx_port` and `rx_port`).
    pub ports: Option<Vec<u16>>,
    /// Queues per port.
    pub txq: u16,
    pub rxq: u16,
    /// Lcores for the TX and RX sides (None: the default placement).
    pub tx_lcores: Option<Vec<u32>>,
    pub rx_lcores: Option<Vec<u32>>,
    /// `--fixture-capacity-pps` (tests only).
    pub fixture_capacity_pps: Option<f64>,
}

/// The most queues per port (`--txq`, `--rxq`).
pub const MAX_QUEUES: u64 = 16;

/// An lcore list: `1,2`, `1-3`, `0,2-3` (ids below 1024, each once).
pub fn parse_lcore_list(text: &str) -> Result<Vec<u32>, String> {
    let bad = || format!("invalid lcore list {text:?}: expected ids such as 1,2 or 1-3");
    let mut out = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if a > b || b >= 1024 {
            return Err(bad());
        }
        for l in a..=b {
            if out.contains(&l) {
                return Err(format!(
                    "invalid lcore list {text:?}: lcore {l} is listed twice"
                ));
            }
            out.push(l);
        }
    }
    Ok(out)
}

/// The longest trial of a search, in seconds: an hour.
pub const MAX_TRIAL_S: f64 = 3600.0;

/// A search's settings (`--search` and its options).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchSettings {
    pub criterion: Criterion,
    /// How long each trial sends.
    pub trial: Duration,
    /// A fraction of the upper bound (0.01: 1%).
    pub resolution: f64,
    /// The lowest rate tried (None: from 0).
    pub min: Option<Rate>,
}

/// `ndr`, or `pdr` with its tolerance (a percentage, `0.1%` or `0.1`).
fn parse_criterion(kind: &str, loss: Option<&str>) -> Result<Criterion, String> {
    match kind.trim().to_ascii_lowercase().as_str() {
        "ndr" => match loss {
            Some(_) => Err("--search-loss is PDR's tolerance: give --search pdr with it".into()),
            None => Ok(Criterion::Ndr),
        },
        "pdr" => {
            let text = loss.unwrap_or("0.1%").trim();
            let pct: f64 = text
                .strip_suffix('%')
                .unwrap_or(text)
                .trim()
                .parse()
                .map_err(|_| {
                    format!("invalid --search-loss {text:?}: expected a percentage such as 0.1%")
                })?;
            if !(pct > 0.0 && pct < 100.0) {
                return Err(format!(
                    "invalid --search-loss {text:?}: expected more than 0% and less than 100%"
                ));
            }
            Ok(Criterion::Pdr {
                loss_ratio: pct / 100.0,
            })
        }
        other => Err(format!("invalid --search {other:?}: expected ndr or pdr")),
    }
}

/// A value its parser refused, as the parser said it.
fn refused<T>(r: Result<T, String>) -> Result<(), InvalidOption> {
    r.map(drop).map_err(InvalidOption::Value)
}

/// Refuses a `value` (when set) that is not above 0 and at most `max` (NaN included).
fn positive_up_to(
    key: &'static str,
    value: Option<f64>,
    max: f64,
    unit: &str,
) -> Result<(), InvalidOption> {
    match value {
        Some(v) if !(v > 0.0 && v <= max) => Err(InvalidOption::Range {
            key,
            // 1e300, not three hundred digits.
            value: if v.is_finite() && (v == 0.0 || (1e-6..1e15).contains(&v.abs())) {
                v.to_string()
            } else {
                format!("{v:e}")
            },
            expected: format!("more than 0 and at most {max} {unit}"),
        }),
        _ => Ok(()),
    }
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
        in_range("flows", self.flows, 1..=MAX_FLOWS, "flows")?;
        if self.count == Some(0) {
            return Err(InvalidOption::Range {
                key: "count",
                value: "0".into(),
                expected: "1 frame or more".into(),
            });
        }
        positive_up_to(
            "duration",
            self.duration,
            MAX_DURATION_S,
            "seconds (a year)",
        )?;
        in_range("drain_ms", self.drain_ms, 0..=MAX_DRAIN_MS, "milliseconds")?;
        if let Some(m) = &self.dst_mac {
            refused(parse_mac(m))?;
        }
        in_range(
            "stats_period",
            self.stats_period,
            0..=MAX_STATS_PERIOD_S,
            "seconds (0 = quiet)",
        )?;
        in_range("sample_ms", self.sample_ms, 10..=60_000, "milliseconds")?;
        if let Some(l) = &self.max_loss {
            refused(l.parse::<LossLimit>())?;
        }
        for (key, v) in [
            ("max_latency_us", self.max_latency_us),
            ("max_p99_latency_us", self.max_p99_latency_us),
        ] {
            positive_up_to(key, v, MAX_LATENCY_US, "microseconds (an hour)")?;
        }
        in_range(
            "vlan",
            self.vlan,
            0..=MAX_VLAN_ID as u64,
            "(802.1Q VLAN id)",
        )?;
        if let Some(p) = &self.proto {
            refused(p.parse::<L4>())?;
        }
        if let Some(k) = &self.search {
            refused(parse_criterion(k, self.search_loss.as_deref()))?;
        }
        if let Some(m) = &self.portmask {
            refused(parse_portmask(m).map_err(|e| e.to_string()))?;
        }
        in_range("txq", self.txq.map(u64::from), 1..=MAX_QUEUES, "queues")?;
        in_range("rxq", self.rxq.map(u64::from), 1..=MAX_QUEUES, "queues")?;
        for l in [&self.tx_lcores, &self.rx_lcores].into_iter().flatten() {
            refused(parse_lcore_list(l))?;
        }
        positive_up_to("trial_s", self.trial_s, MAX_TRIAL_S, "seconds (an hour)")?;
        if let Some(r) = self.search_resolution {
            if !(0.1..=50.0).contains(&r) {
                return Err(InvalidOption::Range {
                    key: "search_resolution",
                    value: format!("{r}"),
                    expected: "0.1 to 50 (percent of the upper rate)".into(),
                });
            }
        }
        if let Some(r) = &self.search_min {
            refused(r.parse::<Rate>())?;
        }
        positive_up_to(
            "fixture_capacity_pps",
            self.fixture_capacity_pps,
            1e10,
            "packets per second",
        )?;
        Ok(())
    }
}

impl PktgenOptions {
    /// The settings of a run: pktgen's defaults (TX port 0, RX port = TX port, rate max,
    /// 64-byte frames, 1 flow, 500 ms drain, stats every second, no loss allowed, no latency
    /// bound) where nothing was given. Checks the values again, so that options that did not
    /// come through `apps_common::options::load` are refused too, never taken unchecked.
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
        if self.paused == Some(true) && self.control.is_none() {
            bail!("--paused needs --control PATH: nothing else could start the run");
        }
        let search = match &self.search {
            None => {
                for (given, what) in [
                    (self.search_loss.is_some(), "--search-loss"),
                    (self.trial_s.is_some(), "--trial-s"),
                    (self.search_resolution.is_some(), "--search-resolution"),
                    (self.search_min.is_some(), "--search-min"),
                ] {
                    if given {
                        bail!("{what} only applies with --search ndr|pdr");
                    }
                }
                None
            }
            Some(kind) => {
                if self.count.is_some() || duration.is_some() {
                    bail!(
                        "--search runs trials of --trial-s seconds each: leave out --count and --duration"
                    );
                }
                if self.max_latency_us.is_some() || self.max_p99_latency_us.is_some() {
                    bail!("--max-latency-us and --max-p99-latency-us judge a single run: a search reports latency at 10/50/90% of the rate it finds");
                }
                if self.max_loss.is_some() {
                    bail!("--max-loss judges a single run: a search's tolerance is --search pdr --search-loss P%");
                }
                if self.paused == Some(true) {
                    bail!("--paused does not apply to --search: a search runs its trials at once");
                }
                Some(SearchSettings {
                    criterion: parse_criterion(kind, self.search_loss.as_deref()).map_err(msg)?,
                    trial: parse_duration_s(self.trial_s.unwrap_or(10.0)).map_err(msg)?,
                    resolution: self.search_resolution.unwrap_or(1.0) / 100.0,
                    min: self
                        .search_min
                        .as_deref()
                        .map(str::parse)
                        .transpose()
                        .map_err(msg)?,
                })
            }
        };
        if search.is_none() && self.count.is_none() && duration.is_none() {
            bail!(
                "give --count N or --duration S (or both): pktgen needs to know when to stop sending"
            );
        }
        let ports = match &self.portmask {
            None => None,
            Some(m) => {
                if self.tx_port.is_some() || self.rx_port.is_some() {
                    bail!("--portmask names the ports: leave out --tx-port and --rx-port");
                }
                let mask = parse_portmask(m)?;
                Some(
                    (0..64u16)
                        .filter(|p| mask & (1 << p) != 0)
                        .collect::<Vec<_>>(),
                )
            }
        };
        let tx_sides = ports.as_ref().map_or(1, Vec::len) as u64 * u64::from(self.txq.unwrap_or(1));
        if self.flows.unwrap_or(1) < tx_sides {
            bail!(
                "--flows {} is fewer than the {tx_sides} TX queues: each TX queue sends its own streams, give --flows {tx_sides} or more",
                self.flows.unwrap_or(1)
            );
        }
        let frame = FrameKind {
            vlan: self.vlan.map(u16::try_from).transpose()?,
            ipv6: self.ipv6.unwrap_or(false),
            l4: self
                .proto
                .as_deref()
                .unwrap_or("udp")
                .parse()
                .map_err(msg)?,
        };
        let size: SizeSpec = self.size.as_deref().unwrap_or("64").parse().map_err(msg)?;
        frame.check_sizes(&size).map_err(msg)?;
        Ok(Settings {
            frame,
            tx_port,
            rx_port: self.rx_port.unwrap_or(tx_port),
            rate: self.rate.as_deref().unwrap_or("max").parse().map_err(msg)?,
            size,
            flows: u16::try_from(self.flows.unwrap_or(1))?,
            count: self.count,
            duration,
            drain: check_drain_ms(self.drain_ms.unwrap_or(500)).map_err(msg)?,
            dst_mac: self
                .dst_mac
                .map(|m| parse_mac(&m).map(MacAddr))
                .transpose()
                .map_err(msg)?,
            stats_period: check_stats_period(self.stats_period.unwrap_or(1)).map_err(msg)?,
            sample_ms: self.sample_ms.unwrap_or(100),
            report: self.report,
            criteria: Criteria {
                max_loss: self
                    .max_loss
                    .as_deref()
                    .unwrap_or("0")
                    .parse()
                    .map_err(msg)?,
                max_latency_us: self.max_latency_us,
                max_p99_latency_us: self.max_p99_latency_us,
            },
            search,
            fixture_capacity_pps: self.fixture_capacity_pps,
            ports,
            txq: self.txq.unwrap_or(1),
            rxq: self.rxq.unwrap_or(1),
            tx_lcores: self
                .tx_lcores
                .as_deref()
                .map(parse_lcore_list)
                .transpose()
                .map_err(msg)?,
            rx_lcores: self
                .rx_lcores
                .as_deref()
                .map(parse_lcore_list)
                .transpose()
                .map_err(msg)?,
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
        // EAL options given without `--` are told apart by name.
        apps_common::eal::assert_no_clash_with_eal(&PktgenOptions::command());
    }

    #[test]
    fn defaults() {
        let s = settings(&["--count", "1"], "").unwrap();
        assert_eq!((s.tx_port, s.rx_port, s.flows), (0, 0, 1));
        assert_eq!((s.rate, s.size), (Rate::Max, SizeSpec::Fixed(64)));
        assert_eq!(s.drain, Duration::from_millis(500));
        assert_eq!((s.stats_period, s.count, s.duration), (1, Some(1), None));
        assert!(s.dst_mac.is_none() && s.report.is_none());
        assert_eq!(s.criteria, Criteria::default());
        assert_eq!(s.criteria.max_loss, LossLimit::Frames(0));
        // A duration run allows no loss either (see crate::verdict).
        let s = settings(&["--duration", "1"], "").unwrap();
        assert_eq!(s.criteria.max_loss, LossLimit::Frames(0));
    }

    #[test]
    fn criteria_from_either_source() {
        let s = settings(
            &[
                "--count",
                "1",
                "--max-loss",
                "0.5%",
                "--max-latency-us",
                "20",
            ],
            "",
        )
        .unwrap();
        assert_eq!(s.criteria.max_loss, LossLimit::Percent(0.5));
        assert_eq!(s.criteria.max_latency_us, Some(20.0));
        let text = "[pktgen]\ncount = 1\nmax_loss = 10\nmax_p99_latency_us = 7.5";
        let s = settings(&[], text).unwrap();
        assert_eq!(s.criteria.max_loss, LossLimit::Frames(10));
        assert_eq!(s.criteria.max_p99_latency_us, Some(7.5));
        let s = settings(
            &["--max-loss", "3"],
            "[pktgen]\ncount = 1\nmax_loss = \"1%\"",
        )
        .unwrap();
        assert_eq!(s.criteria.max_loss, LossLimit::Frames(3));
        let err = |args: &[&str], text: &str| settings(args, text).unwrap_err().to_string();
        assert!(err(&["--count", "1", "--max-loss", "lots"], "").starts_with("invalid max loss"));
        assert_eq!(
            err(&["--count", "1", "--max-latency-us", "0"], ""),
            "invalid --max-latency-us 0: expected more than 0 and at most 3600000000 \
             microseconds (an hour)"
        );
        let e = err(&[], "[pktgen]\ncount = 1\nmax_loss = -1");
        assert!(
            e.contains("max_loss") && e.contains("a number of frames"),
            "{e}"
        );
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
        // Both ends of a range in the same words.
        assert_eq!(
            err(&["--count", "1", "--flows", "0"], ""),
            "invalid --flows 0: expected 1..=65535 flows"
        );
        assert_eq!(
            err(&["--count", "1", "--flows", "100000"], ""),
            "invalid --flows 100000: expected 1..=65535 flows"
        );
        assert_eq!(
            err(&[], "[pktgen]\ncount = 1\nflows = 100000"),
            "invalid config t.toml: [pktgen] invalid flows = 100000: expected 1..=65535 flows"
        );
        assert_eq!(
            err(&[], "[pktgen]\ncount = 0"),
            "invalid config t.toml: [pktgen] invalid count = 0: expected 1 frame or more"
        );
        assert_eq!(
            err(&["--duration", "1e300"], ""),
            "invalid --duration 1e300: expected more than 0 and at most 31536000 seconds (a year)"
        );
        assert_eq!(
            err(&["--count", "1", "-T", "86401"], ""),
            "invalid -T/--stats-period 86401: expected 0..=86400 seconds (0 = quiet)"
        );
        assert_eq!(
            err(&["--count", "1", "--drain-ms", "3600001"], ""),
            "invalid --drain-ms 3600001: expected 0..=3600000 milliseconds"
        );
        assert!(err(&["--count", "1", "--rate", "1G"], "").contains("say 1Gbps"));
        assert!(err(&["--count", "1", "--size", "10"], "").starts_with("invalid size 10"));
        assert!(err(&[], "[pktgen]\nrate = \"fast\"").contains("[pktgen] invalid rate \"fast\""));
        assert!(err(&["--rate", "1000"], "").starts_with("give --count N or --duration S"));
        assert!(err(&["--count", "1"], "[pktgen]\nflow = 2").contains("unknown field `flow`"));
        let e = err(&["--count", "1"], "[pktgen]\nconfig = \"x.toml\"");
        assert!(e.contains("unknown field `config`"), "{e}");
    }

    #[test]
    fn frame_kinds_from_either_source() {
        let s = settings(&["--count", "1"], "").unwrap();
        assert_eq!(s.frame, FrameKind::default());
        assert_eq!(s.frame.to_string(), "IPv4/UDP");
        let s = settings(
            &[
                "--count", "1", "--vlan", "4095", "--ipv6", "--proto", "TCP", "--size", "100",
            ],
            "",
        )
        .unwrap();
        assert_eq!(
            s.frame,
            FrameKind {
                vlan: Some(4095),
                ipv6: true,
                l4: L4::Tcp
            }
        );
        assert_eq!(s.frame.to_string(), "VLAN 4095 IPv6/TCP");
        // The file's, and the command line over it.
        let text = "[pktgen]\ncount = 1\nsize = \"128\"\nvlan = 10\nipv6 = true\nproto = \"tcp\"";
        let s = settings(&[], text).unwrap();
        assert_eq!(
            (s.frame.vlan, s.frame.ipv6, s.frame.l4),
            (Some(10), true, L4::Tcp)
        );
        let s = settings(&["--vlan", "0", "--proto", "udp"], text).unwrap();
        assert_eq!((s.frame.vlan, s.frame.l4), (Some(0), L4::Udp));
        let err = |args: &[&str], text: &str| settings(args, text).unwrap_err().to_string();
        assert_eq!(
            err(&["--count", "1", "--vlan", "4096"], ""),
            "invalid --vlan 4096: expected 0..=4095 (802.1Q VLAN id)"
        );
        assert_eq!(
            err(&[], "[pktgen]\ncount = 1\nvlan = 5000"),
            "invalid config t.toml: [pktgen] invalid vlan = 5000: expected 0..=4095 (802.1Q VLAN id)"
        );
        assert_eq!(
            err(&["--count", "1", "--proto", "sctp"], ""),
            "invalid protocol \"sctp\": expected udp or tcp"
        );
        assert!(err(&[], "[pktgen]\ncount = 1\nipv6 = 1").contains("ipv6"));
        // Sizes too small for the headers: refused, saying the smallest that fits.
        assert_eq!(
            err(
                &["--count", "1", "--ipv6", "--proto", "tcp", "--vlan", "1"],
                ""
            ),
            "invalid size 64: VLAN 1 IPv6/TCP frames need 100 bytes or more (FCS included) \
             to hold their headers and the test header"
        );
        assert!(err(&["--count", "1", "--vlan", "1", "--size", "imix"], "")
            .starts_with("invalid size imix: VLAN 1 IPv4/UDP frames need 68 bytes"));
        assert!(settings(&["--count", "1", "--vlan", "1", "--size", "68-1518"], "").is_ok());
        assert!(settings(&["--count", "1", "--vlan", "1", "--size", "67-1518"], "").is_err());
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::sample::select(
                &[
                    "--tx-port", "--rx-port", "--rate", "--size", "--flows", "--count",
                    "--duration", "--drain-ms", "--dst-mac", "-T", "--stats-period", "--report",
                    "--config", "--max-loss", "--max-latency-us", "--max-p99-latency-us", "0",
                    "1", "-1", "64", "1518", "64-1518", "imix", "max", "1.5M", "1Mpps", "5%",
                    "1Gbps", "1e300", "NaN", "inf", "86401", "3600001", "18446744073709551615",
                    "02:00:00:00:00:01", "zz", "", "--", "--help", "--vlan", "--ipv6",
                    "--proto", "udp", "tcp", "4095", "4096", "--sample-ms", "10", "60001",
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
                    "drain_ms", "dst_mac", "stats_period", "report", "max_loss",
                    "max_latency_us", "max_p99_latency_us", "vlan", "ipv6", "proto",
                    "sample_ms", "portmask", "txq", "rxq", "tx_lcores", "rx_lcores",
                    "search", "trial_s",
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
