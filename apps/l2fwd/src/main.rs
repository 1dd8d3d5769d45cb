//! l2fwd: DPDK's layer-2 forwarder, in Rust, with net_dma-style copy offload.
//!
//! `l2fwd [EAL options] -- -p PORTMASK [-T STATS_S] [--[no-]mac-updating] [--duration S]
//!  [--copy none|cpu|dma|auto] [--copybreak BYTES] [--dma NAME]... [--report FILE.json]
//!  [--config FILE.toml]`
//!
//! Ports pair as in DPDK's l2fwd (first<->second enabled port, third<->fourth, an odd last one
//! to itself). Worker lcores (the EAL's `-l` cores after the main one) each own the RX queue of
//! the ports they were dealt and, with `--copy dma|auto`, one DMA channel; the main lcore
//! prints stats every `-T` seconds, handles SIGINT/SIGTERM and writes the report.

use anyhow::{bail, Context, Result};
use apps_common::units;
use apps_common::{errln, outln};
use clap::Parser;
use dataplane::config::{L2fwdSection, PortMaskValue};
use dataplane::copy::CopyMode;
use dataplane::engine::{Engine, EngineConfig, Event, PortSummary, StatsSnapshot};
use dataplane::ports::parse_portmask;
use dataplane::report::L2fwdReport;
use dataplane::stats::PortTotals;
use pmd::{Eal, PortStats};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "l2fwd",
    about = "Layer-2 forwarder on DPDK ports: l2fwd [EAL options] -- [options]",
    after_help = "EAL options (-l, --vdev, --no-huge, -a, ...) go before `--`; with --config they may \
                  come from the file's `eal` list instead."
)]
struct Cli {
    /// Hexadecimal mask of the ports to forward between.
    #[arg(short = 'p', long = "portmask")]
    portmask: Option<String>,
    /// Seconds between statistics prints, 0..=86400 (0 = quiet).
    #[arg(short = 'T', long = "stats-period")]
    stats_period: Option<u64>,
    /// Rewrite source and destination MACs (the default).
    #[arg(long = "mac-updating", overrides_with = "no_mac_updating")]
    mac_updating: bool,
    /// Forward frames unchanged.
    #[arg(long = "no-mac-updating", overrides_with = "mac_updating")]
    no_mac_updating: bool,
    /// Stop after this many seconds, at most 31536000 (a year; default: run until
    /// SIGINT/SIGTERM).
    #[arg(long, allow_negative_numbers = true)]
    duration: Option<f64>,
    /// Copy every packet into a fresh mbuf: none (plain l2fwd), cpu, dma, or auto.
    #[arg(long)]
    copy: Option<String>,
    /// With --copy dma: packets of at least this many bytes have their payload copied by DMA
    /// (1..=65535).
    #[arg(long)]
    copybreak: Option<u32>,
    /// DMA device to use (repeatable; default with --copy dma|auto: every dmadev found).
    #[arg(long = "dma")]
    dma: Vec<String>,
    /// Milliseconds a DMA channel may hold copies without completing any before the worker
    /// gives up on it (a surprise removal or a hung engine) and re-copies them on the CPU
    /// (1..=60000).
    #[arg(long = "dma-timeout-ms")]
    dma_timeout_ms: Option<u64>,
    /// Write the JSON report here at exit.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Control socket for dpctl (default: l2fwd.sock in DPDK's runtime directory).
    #[arg(long)]
    control: Option<PathBuf>,
    /// Accept `dma fault NAME stall` on the control socket (surprise-removal drills).
    #[arg(long = "allow-fault-injection")]
    allow_fault_injection: bool,
    /// Milliseconds a hot-remove waits for a worker to release the channel before failing
    /// (1..=60000).
    #[arg(long = "grace-ms")]
    grace_ms: Option<u64>,
    /// TOML config; command-line options override it.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Default copybreak: below this a CPU copy is cheaper than a descriptor on any engine.
const DEFAULT_COPYBREAK: u32 = 256;

/// Options after merging the command line over the config file.
#[derive(Debug)]
struct Options {
    portmask: u64,
    stats_period: u64,
    mac_updating: bool,
    duration: Option<Duration>,
    copy: CopyMode,
    copybreak: u32,
    dma: Vec<String>,
    dma_timeout: Duration,
    report: Option<PathBuf>,
    control: Option<PathBuf>,
    allow_faults: bool,
    grace_timeout: Duration,
}

impl Cli {
    /// The options given on the command line, as an `[l2fwd]` table: checked by the same
    /// function, against the same bounds, as the config file.
    fn as_section(&self) -> L2fwdSection {
        L2fwdSection {
            portmask: self.portmask.clone().map(PortMaskValue::Text),
            stats_period: self.stats_period,
            duration: self.duration,
            copy: self.copy.clone(),
            copybreak: self.copybreak,
            dma_timeout_ms: self.dma_timeout_ms,
            grace_ms: self.grace_ms,
            ..Default::default()
        }
    }
}

/// The command line over the config file's `[l2fwd]` table (already checked), every value
/// checked before anything starts.
fn merge(cli: Cli, file: L2fwdSection) -> Result<Options> {
    cli.as_section()
        .check()
        .map_err(|e| anyhow::anyhow!(e.for_option()))?;
    let mask_text = cli
        .portmask
        .or_else(|| file.portmask.map(|m| m.to_text()))
        .context(
            "no portmask given: use -p PORTMASK (for example -p 0x3) or `portmask` in [l2fwd]",
        )?;
    let portmask = parse_portmask(&mask_text)?;
    let mac_updating = if cli.no_mac_updating {
        false
    } else if cli.mac_updating {
        true
    } else {
        file.mac_updating.unwrap_or(true)
    };
    // Checked above: finite, positive and at most a year, so the conversion cannot fail.
    let duration = match cli.duration.or(file.duration) {
        None => None,
        Some(d) => Some(Duration::try_from_secs_f64(d).context("invalid --duration")?),
    };
    let copy: CopyMode = match cli.copy.or(file.copy) {
        None => CopyMode::None,
        Some(s) => s.parse().map_err(anyhow::Error::msg)?,
    };
    let dma = if cli.dma.is_empty() {
        file.dma.unwrap_or_default()
    } else {
        cli.dma
    };
    Ok(Options {
        portmask,
        stats_period: cli.stats_period.or(file.stats_period).unwrap_or(10),
        mac_updating,
        duration,
        copy,
        copybreak: cli
            .copybreak
            .or(file.copybreak)
            .unwrap_or(DEFAULT_COPYBREAK),
        dma,
        dma_timeout: Duration::from_millis(
            cli.dma_timeout_ms.or(file.dma_timeout_ms).unwrap_or(10),
        ),
        report: cli.report.or(file.report),
        control: cli.control.or(file.control),
        allow_faults: cli.allow_fault_injection || file.allow_fault_injection.unwrap_or(false),
        grace_timeout: Duration::from_millis(cli.grace_ms.or(file.grace_ms).unwrap_or(2000)),
    })
}

fn main() -> ExitCode {
    apps_common::main_with("l2fwd", run)
}

/// Parse, build, run, report: the shape of DPDK's `examples/l2fwd/main.c`.
fn run() -> Result<()> {
    let cmd = apps_common::parse_cmdline::<Cli>(|c| c.config.as_deref())?;
    let section = cmd.file.l2fwd()?;
    let opts = merge(cmd.cli, section)?;
    if let Some(path) = &opts.report {
        apps_common::outfile::check_writable("--report", path)?;
    }
    let eal = Eal::init(&cmd.eal)?;
    let engine = Engine::new(&eal, opts.engine_config())?;
    let quit = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&quit))
            .context("cannot install signal handler")?;
    }
    let mut console = Console::default();
    let report = engine.run(&quit, &mut |ev| console.print(ev))?;
    console.print_final(&report);
    if let Some(path) = &opts.report {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write report {}", path.display()))?;
    }
    if !report.balances() {
        bail!(
            "accounting does not balance: {} received, {} sent, {} dropped",
            report.rx_packets,
            report.tx_packets,
            report.dropped_total()
        );
    }
    Ok(())
}

impl Options {
    /// What the engine needs of the options (the rest is the app's: the report path).
    fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            portmask: self.portmask,
            mac_updating: self.mac_updating,
            copy: self.copy,
            copybreak: self.copybreak,
            dma: self.dma.clone(),
            dma_timeout: self.dma_timeout,
            allow_faults: self.allow_faults,
            grace_timeout: self.grace_timeout,
            control_socket: self.control.clone(),
            stats_period: (self.stats_period > 0).then(|| Duration::from_secs(self.stats_period)),
            duration: self.duration,
        }
    }
}

/// Prints the run's events as DPDK's l2fwd prints its own: the ports and lcores at start,
/// a statistics table every `-T` seconds, the final statistics.
#[derive(Default)]
struct Console {
    /// The ports at the last periodic print, and when it was.
    last: Vec<PortSummary>,
    last_at: Duration,
}

impl Console {
    fn print(&mut self, ev: Event) {
        match ev {
            Event::PortStarted {
                port,
                name,
                mac,
                link,
            } => outln!(
                "Port {port} ({name}): MAC {mac}, link {} {} Mbps",
                if link.up { "up" } else { "down" },
                link.speed_mbps
            ),
            Event::LcorePlan {
                lcore,
                rules,
                dma_devs,
            } => outln!(
                "Lcore {lcore}: {}{}",
                rules
                    .iter()
                    .map(|(rx, tx)| format!("RX port {rx} -> TX port {tx}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                dma_devs
                    .iter()
                    .map(|dev| format!(", DMA dev {dev}"))
                    .collect::<String>()
            ),
            Event::ControlSocket(path) => outln!("Control socket: {}", path.display()),
            Event::NoDeviceEvents(e) => {
                outln!("note: no device-event monitor ({e}); hot-remove by dpctl only")
            }
            Event::DeviceRemoved {
                device,
                channel,
                outcome,
            } => match outcome {
                Ok(r) => outln!(
                    "device event: {device} removed; DMA channel {channel} released in {:.0} us",
                    r.latency_us
                ),
                Err(e) => {
                    errln!("device event: {device} removed; releasing {channel} failed: {e}")
                }
            },
            Event::Stats(s) => self.print_periodic(s),
            Event::Stopping { elapsed } => {
                outln!("\nStopping: forwarded for {:.2} s", elapsed.as_secs_f64())
            }
        }
    }

    fn print_periodic(&mut self, s: &StatsSnapshot) {
        let dt = (s.at - self.last_at).as_secs_f64();
        self.last_at = s.at;
        self.last.resize(s.ports.len(), PortSummary::default());
        let mut out = format!(
            "\nPort statistics at {:.1} s ====================================\n",
            s.at.as_secs_f64()
        );
        let mut sum = PortTotals::default();
        for (p, prev) in s.ports.iter().zip(self.last.iter_mut()) {
            let (t, d) = (&p.totals, &p.device);
            let pkts = |now: u64, before: u64| units::pps(now.saturating_sub(before) as f64 / dt);
            let bits = |now: u64, before: u64| {
                units::bits_per_s(now.saturating_sub(before) as f64 * 8.0 / dt)
            };
            out.push_str(&format!(
                "Port {:>2} {:<16} rx {:>14} ({:>12}, {:>14})  tx {:>14} ({:>12}, {:>14})  \
                 dropped {:>10}{}\n",
                p.id,
                p.name,
                t.rx,
                pkts(t.rx, prev.totals.rx),
                bits(d.ibytes, prev.device.ibytes),
                t.tx,
                pkts(t.tx, prev.totals.tx),
                bits(d.obytes, prev.device.obytes),
                t.dropped_total(),
                device_drops(d)
            ));
            sum.rx += t.rx;
            sum.tx += t.tx;
            for (s, d) in sum.dropped.iter_mut().zip(t.dropped) {
                *s += d;
            }
            *prev = p.clone();
        }
        for (i, c) in s.copies.iter().enumerate() {
            out.push_str(&format!(
                "Worker {i} copies: cpu {:>14}  dma {:>14}  dma_errors {:>8}  recopied {:>8}\n",
                c.cpu, c.dma, c.dma_errors, c.recopied
            ));
        }
        for d in &s.dma_channels {
            out.push_str(&format!(
                "DMA {:<20} {:<8}{:<8} submitted {:>14}  completed {:>14}  failed {:>8}\n",
                d.name,
                d.state,
                if d.stalled { "stalled" } else { "" },
                d.submitted,
                d.completed,
                d.failed
            ));
        }
        // As DPDK's l2fwd prints them (benchmark scripts read "Total packets sent").
        out.push_str(&format!("Total packets sent:     {:>14}\n", sum.tx));
        out.push_str(&format!("Total packets received: {:>14}\n", sum.rx));
        out.push_str(&format!(
            "Total packets dropped:  {:>14}\n",
            sum.dropped_total()
        ));
        apps_common::out!("{out}");
    }

    fn print_final(&self, r: &L2fwdReport) {
        outln!("Final statistics ===================================");
        for p in &r.ports {
            outln!(
                "Port {:>2} {:<16} rx {:>14}{}  tx {:>14}{}  dropped {:>10}{}",
                p.port,
                p.name,
                p.rx_packets,
                byte_count(p.rx_bytes),
                p.tx_packets,
                byte_count(p.tx_bytes),
                p.dropped,
                device_drops(&PortStats {
                    imissed: p.imissed,
                    ierrors: p.ierrors,
                    rx_nombuf: p.rx_nombuf,
                    ..Default::default()
                })
            );
        }
        outln!("Total packets sent:     {:>14}", r.tx_packets);
        outln!("Total packets received: {:>14}", r.rx_packets);
        outln!(
            "Total packets dropped:  {:>14} ({})",
            r.dropped_total(),
            r.dropped
                .iter()
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let c = &r.copies;
        outln!(
            "Copies:                 cpu {} dma {} dma_errors {} recopied {}",
            c.cpu,
            c.dma,
            c.dma_errors,
            c.recopied
        );
        for d in &r.dma_channels {
            outln!(
                "DMA channel {}: {}{}, submitted {} completed {} failed {}",
                d.name,
                d.state,
                if d.stalls > 0 {
                    format!(" (stalled {} times)", d.stalls)
                } else {
                    String::new()
                },
                d.submitted,
                d.completed,
                d.failed
            );
        }
        for h in &r.hot_removes {
            outln!(
                "Hot-remove {}: {:.0} us, {} drained, {} re-copied",
                h.channel,
                h.latency_us,
                h.drained,
                h.recopied
            );
        }
        outln!("Mbufs in use at exit:   {:>14}", r.mbufs_in_use_at_exit);
        outln!("====================================================");
    }
}

/// ` (1.50 MB)`, or nothing where the driver keeps no byte counter.
fn byte_count(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({})", units::bytes(n))
    }
}

/// What the device dropped before a worker saw it, when it dropped anything.
fn device_drops(d: &PortStats) -> String {
    if d.imissed + d.ierrors + d.rx_nombuf == 0 {
        String::new()
    } else {
        format!(
            "  (device: missed {} errors {} nombuf {})",
            d.imissed, d.ierrors, d.rx_nombuf
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Instant;

    fn parse(args: &[String]) -> std::result::Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("l2fwd".to_owned()).chain(args.iter().cloned()))
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::sample::select(
                &[
                    "-p", "--portmask", "-T", "--stats-period", "--duration", "--copy",
                    "--copybreak", "--dma", "--dma-timeout-ms", "--grace-ms", "--report",
                    "--control", "--config", "--mac-updating", "--no-mac-updating",
                    "--allow-fault-injection", "0x3", "3", "0", "1", "-1", "60000", "60001",
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

        /// Any argument vector: options, or a usage error on one line; options merge into a
        /// run's settings or give a one-line reason. Never a panic.
        #[test]
        fn any_argv_parses_or_errs(args in prop::collection::vec(word(), 0..8)) {
            match parse(&args) {
                Ok(cli) => {
                    if let Err(e) = merge(cli, L2fwdSection::default()) {
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
            t in number(), cb in number(), dto in number(), grace in number(),
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
                && dur.is_finite()
                && (0.001..=31_536_000.0).contains(&dur)
                && ["none", "cpu", "dma", "auto"].contains(&copy.as_str());
            let got = merge(cli, L2fwdSection::default());
            prop_assert_eq!(got.is_ok(), expect_ok, "{:?} => {:?}", args, got);
            if let Ok(o) = got {
                prop_assert!(o.duration.is_some_and(|d| d > Duration::ZERO));
                prop_assert!(Instant::now().checked_add(o.grace_timeout).is_some());
            }
        }
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn file_values_are_checked_and_command_line_wins() {
        let file = L2fwdSection {
            portmask: Some(PortMaskValue::Number(3)),
            grace_ms: Some(500),
            ..Default::default()
        };
        let o = merge(parse(&["--grace-ms".into(), "7".into()]).unwrap(), file).unwrap();
        assert_eq!(o.grace_timeout, Duration::from_millis(7));
        let e = merge(
            parse(&["-p".into(), "3".into(), "--grace-ms".into(), "0".into()]).unwrap(),
            L2fwdSection::default(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid --grace-ms 0: expected 1..=60000 milliseconds"
        );
    }
}
