//! refbench: what hot-remove safety costs the fast path, scheme by scheme.
//!
//! `refbench [EAL options] -- [--schemes LIST] [--readers LIST] [--duration S] [--rounds N]
//!  [--interval-us US] [--level micro|forwarding|both] [--report FILE.json] [--plot FILE.svg]`
//!
//! Exit status: 0 when every measurement ran and no protected scheme touched a retired
//! channel; 1 on an error (a usage error, a bad value, an output that cannot be written, a
//! failed EAL) and when a protected scheme touched a retired channel (after the report).
//!
//! * micro: N reader threads (`--readers`) pinned to N cores touch a DMA channel in the worker's shape
//!   (bursts of 32, a touch per packet, the scheme's per-burst work) while a control thread
//!   removes and re-adds the channel every `--interval-us`; reports ns per touch.
//! * forwarding: the l2fwd loop on a net_null pair (one worker lcore) with each scheme's touch
//!   per packet, monomorphised per scheme (no per-packet branch on the scheme); reports Mpps.
//!
//! Schemes: none, atomic, percpu, qsbr, rte_qsbr, crossbeam_epoch, arc_swap
//! (see `dataplane::protect`).

use anyhow::{bail, Context, Result};
use clap::Parser;
use dataplane::ether::rewrite_macs;
use pmd::{Burst, Eal, MacAddr, Mempool, Port, PortConfig, RxQueue, TxQueue};
use refbench::protect::{
    micro, ArcSwapScheme, Arena, AtomicRef, Epoch, PerCpu, Qsbr, RteQsbr, Scheme, Unprotected,
};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The one registry of protection schemes: each scheme type once, in report order; its name is
/// its `Scheme::NAME`. `schemes!(m; ARGS)` expands to `m!(ARGS; Type, Type, ...)`.
macro_rules! schemes {
    ($m:ident; $($extra:tt)*) => {
        $m!($($extra)*; Unprotected, AtomicRef, PerCpu, Qsbr, RteQsbr, Epoch, ArcSwapScheme)
    };
}

/// The names of the registry's schemes.
macro_rules! scheme_names {
    (; $($t:ty),*) => {
        [$(<$t as Scheme>::NAME),*]
    };
}

/// `Some($run::<S> $args)` with `S` the registry's scheme named `$name` (None for no such
/// scheme): one monomorphised copy per scheme, chosen once per measurement, so the measured
/// loop has no branch on the scheme.
macro_rules! dispatch {
    ($name:expr, $run:ident $args:tt; $($t:ty),*) => {{
        let name: &str = $name;
        let mut out = None;
        $(
            if out.is_none() && name == <$t as Scheme>::NAME {
                out = Some($run::<$t> $args);
            }
        )*
        out
    }};
}

/// Runs `$run::<S>(args)` for the scheme named `$name`; an error for an unknown name.
macro_rules! with_scheme {
    ($name:expr, $run:ident $args:tt) => {
        schemes!(dispatch; $name, $run $args)
            .ok_or_else(|| anyhow::anyhow!("unknown scheme {:?}", $name))
    };
}

/// Every scheme, in report order.
const ALL: &[&str] = &schemes!(scheme_names;);

/// Most reader threads one measurement may run (pinned round-robin to the cores).
const MAX_READERS: usize = 256;

#[derive(Parser, Debug)]
#[command(
    name = "refbench",
    version,
    about = "Fast-path cost of hot-remove protection schemes: refbench [EAL options] -- [options]",
    after_help = "Exit status: 0 on success, 1 on an error (including a protected scheme that \
                  touched a retired channel)."
)]
struct Cli {
    /// Comma-separated schemes (default: all).
    #[arg(long, value_delimiter = ',')]
    schemes: Option<Vec<String>>,
    /// Comma-separated counts of reader threads for the micro level, one measurement each
    /// (default: 1,2,4,... up to the cores there are).
    #[arg(long, value_delimiter = ',')]
    readers: Option<Vec<usize>>,
    /// Was the count of reader threads; EAL's --lcores (before --) is another thing.
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "")]
    lcores: Option<String>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 1.0)]
    duration: f64,
    /// Measurements per (scheme, readers), alternating schemes; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Microseconds between channel replacements by the control thread.
    #[arg(long = "interval-us", default_value_t = 1000)]
    interval_us: u64,
    /// micro, forwarding or both.
    #[arg(long, default_value = "both")]
    level: String,
    /// Write the JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write an SVG plot of ns per touch against reader threads here.
    #[arg(long)]
    plot: Option<PathBuf>,
}

#[derive(Serialize, Clone)]
struct Row {
    level: &'static str,
    scheme: String,
    /// Reader threads (micro), or forwarding lcores (1).
    readers: usize,
    ns_per_touch: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    mpps: Option<f64>,
    /// Relative to `none` at the same level and readers.
    vs_none: f64,
    replacements: u64,
    violations: u64,
}

#[derive(Serialize)]
struct Report {
    machine: String,
    cores: usize,
    duration_s: f64,
    rounds: usize,
    interval_us: u64,
    results: Vec<Row>,
}

fn main() -> ExitCode {
    apps_common::main_with("refbench", run)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn run() -> Result<()> {
    let (eal_cmdline, app_args) = apps_common::split_args(std::env::args_os());
    let cli = Cli::try_parse_from(app_args).map_err(apps_common::usage_error)?;
    let plan = Plan::new(&cli)?;
    // Before an hour of measurements: outputs that cannot be written are an error now.
    for (option, path) in [("--report", &cli.report), ("--plot", &cli.plot)] {
        if let Some(p) = path {
            apps_common::outfile::check_writable(option, p)?;
        }
    }
    let machine = machine_name();
    apps_common::outln!(
        "refbench: {machine}, {} cores; {} s x {} rounds per point, replacement every {} us",
        plan.ncores,
        cli.duration,
        cli.rounds,
        cli.interval_us
    );
    let mut rows: Vec<Row> = Vec::new();
    if plan.micro {
        micro_rows(&plan, &mut rows)?;
    }
    if plan.forwarding {
        let eal = Eal::init(&forwarding_eal_args(eal_cmdline))?;
        let samples = forwarding(&eal, &plan.schemes, plan.rounds, plan.dur, plan.interval)?;
        push_rows(&mut rows, "forwarding", 1, &plan.schemes, &samples, true);
    }
    print_table(&rows);
    let report = Report {
        machine,
        cores: plan.ncores,
        duration_s: cli.duration,
        rounds: cli.rounds,
        interval_us: cli.interval_us,
        results: rows.clone(),
    };
    write_outputs(&cli, &report, &rows)?;
    if let Some(r) = rows.iter().find(|r| r.scheme != "none" && r.violations > 0) {
        bail!(
            "{} touched a retired channel {} times",
            r.scheme,
            r.violations
        );
    }
    Ok(())
}

/// What to measure: the command line checked, defaults filled in from the machine.
struct Plan {
    schemes: Vec<String>,
    /// The cores reader threads are pinned to, round-robin.
    cores: Vec<usize>,
    ncores: usize,
    /// Reader-thread counts for the micro level.
    readers: Vec<usize>,
    rounds: usize,
    dur: Duration,
    interval: Duration,
    micro: bool,
    forwarding: bool,
}

impl Plan {
    fn new(cli: &Cli) -> Result<Plan> {
        let schemes = cli
            .schemes
            .clone()
            .unwrap_or_else(|| ALL.iter().map(|s| s.to_string()).collect());
        for s in &schemes {
            if !ALL.contains(&s.as_str()) {
                bail!("unknown scheme {s:?}: expected some of {}", ALL.join(","));
            }
        }
        let cores: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        let ncores = cores.len().max(1);
        if cli.lcores.is_some() {
            bail!(
                "refbench has no --lcores: give --readers N,... for the counts of reader \
                 threads (EAL's --lcores, the lcore map, goes before --)"
            );
        }
        let readers = cli
            .readers
            .clone()
            .unwrap_or_else(|| default_readers(ncores));
        // Each count is that many reader threads: bounded, so that a typo cannot start a million.
        if let Some(&n) = readers.iter().find(|&&n| !(1..=MAX_READERS).contains(&n)) {
            bail!("invalid --readers {n}: expected 1..={MAX_READERS} reader threads");
        }
        if !(cli.duration > 0.0 && cli.duration < 3600.0) {
            bail!(
                "invalid --duration {}: give more than 0 and less than 3600 s",
                cli.duration
            );
        }
        if !(1..=1000).contains(&cli.rounds) {
            bail!("invalid --rounds {}: give 1..=1000", cli.rounds);
        }
        if !(1..=10_000_000).contains(&cli.interval_us) {
            bail!(
                "invalid --interval-us {}: give 1..=10000000",
                cli.interval_us
            );
        }
        let (micro, forwarding) = match cli.level.as_str() {
            "micro" => (true, false),
            "forwarding" => (false, true),
            "both" => (true, true),
            l => bail!("invalid level {l:?}: micro, forwarding or both"),
        };
        Ok(Plan {
            schemes,
            cores,
            ncores,
            readers,
            rounds: cli.rounds,
            dur: Duration::from_secs_f64(cli.duration),
            interval: Duration::from_micros(cli.interval_us),
            micro,
            forwarding,
        })
    }
}

/// 1, 2, 4, ... up to `ncores`, and `ncores` itself.
fn default_readers(ncores: usize) -> Vec<usize> {
    let mut v = vec![1];
    let mut n = 2;
    while n <= ncores {
        v.push(n);
        n *= 2;
    }
    if *v.last().unwrap() != ncores {
        // cannot fail: v starts as [1]
        v.push(ncores);
    }
    v
}

/// The CPU's model name, for the report.
fn machine_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The micro level: for each reader-thread count, every round of every scheme, alternating.
fn micro_rows(plan: &Plan, rows: &mut Vec<Row>) -> Result<()> {
    let (cores, dur, interval) = (&plan.cores, plan.dur, plan.interval);
    for &n in &plan.readers {
        let mut samples: Vec<Vec<(f64, u64, u64)>> = vec![Vec::new(); plan.schemes.len()];
        for _ in 0..plan.rounds {
            for (i, s) in plan.schemes.iter().enumerate() {
                let r = with_scheme!(s.as_str(), micro(n, cores, dur, interval))?;
                apps_common::errln!(
                    "  micro {s:<16} readers {n}: {:>8.3} ns/touch",
                    r.ns_per_touch(n)
                );
                samples[i].push((r.ns_per_touch(n), r.replacements, r.violations));
            }
        }
        push_rows(rows, "micro", n, &plan.schemes, &samples, false);
    }
    Ok(())
}

/// The EAL arguments of the forwarding level: the command line's, else a net_null pair with
/// one worker lcore that runs anywhere.
fn forwarding_eal_args(eal_cmdline: Vec<String>) -> Vec<String> {
    let mut eal_argv = eal_cmdline;
    if eal_argv.len() == 1 {
        eal_argv.extend(
            [
                "-l",
                "0-1",
                "--no-huge",
                "--no-pci",
                "-m",
                "256",
                "--vdev=net_null0",
                "--vdev=net_null1",
                "--log-level=warning",
                "--file-prefix=refbench",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
    }
    eal_argv
}

/// The JSON report and the plot, where asked for.
fn write_outputs(cli: &Cli, report: &Report, rows: &[Row]) -> Result<()> {
    if let Some(p) = &cli.report {
        std::fs::write(p, serde_json::to_string_pretty(report)? + "\n")
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = &cli.plot {
        plot(p, rows, &report.machine)
            .with_context(|| format!("cannot write the plot {}", p.display()))?;
    }
    Ok(())
}

/// Medians of the samples into rows, with ratios to `none`. For forwarding, samples are Mpps.
fn push_rows(
    rows: &mut Vec<Row>,
    level: &'static str,
    readers: usize,
    schemes: &[String],
    samples: &[Vec<(f64, u64, u64)>],
    mpps: bool,
) {
    let meds: Vec<f64> = samples
        .iter()
        .map(|v| median(v.iter().map(|s| s.0).collect()))
        .collect();
    let base = schemes.iter().position(|s| s == "none").map(|i| meds[i]);
    for (i, s) in schemes.iter().enumerate() {
        let m = meds[i];
        let (ns, mp) = if mpps { (1e3 / m, Some(m)) } else { (m, None) };
        let vs_none = match base {
            Some(b) if mpps => b / m, // cost ratio: time per packet relative to none
            Some(b) => m / b,
            None => f64::NAN,
        };
        rows.push(Row {
            level,
            scheme: s.clone(),
            readers,
            ns_per_touch: ns,
            mpps: mp,
            vs_none,
            replacements: samples[i].iter().map(|s| s.1).sum(),
            violations: samples[i].iter().map(|s| s.2).sum(),
        });
    }
}

fn print_table(rows: &[Row]) {
    apps_common::outln!(
        "\n{:<11} {:<16} {:>7} {:>11} {:>9} {:>9} {:>12} {:>10}",
        "level",
        "scheme",
        "readers",
        "ns/touch",
        "Mpps",
        "vs none",
        "replacements",
        "violations"
    );
    for r in rows {
        apps_common::outln!(
            "{:<11} {:<16} {:>7} {:>11.3} {:>9} {:>9.2} {:>12} {:>10}",
            r.level,
            r.scheme,
            r.readers,
            r.ns_per_touch,
            r.mpps
                .map(|m| format!("{m:.2}"))
                .unwrap_or_else(|| "-".into()),
            r.vs_none,
            r.replacements,
            r.violations
        );
    }
    apps_common::outln!("(vs none: cost per touch, or per forwarded packet, relative to the unprotected baseline; `none` is not safe under removal: its violations show why)");
}

/// The forwarding level: for each scheme and round, the l2fwd loop on the first two ports.
fn forwarding(
    eal: &Eal,
    schemes: &[String],
    rounds: usize,
    dur: Duration,
    interval: Duration,
) -> Result<Vec<Vec<(f64, u64, u64)>>> {
    if Port::count(eal) < 2 {
        bail!(
            "the forwarding level needs two ports (for example --vdev=net_null0 --vdev=net_null1)"
        );
    }
    let worker = *eal
        .worker_lcores()
        .first()
        .context("the forwarding level needs a worker lcore (-l 0-1)")?;
    let pool = Mempool::create(eal, "refbench_pool", 8192, 256, 2048 + 128, eal.socket_id())?;
    let cfg = PortConfig::default();
    let mut p0 = Port::configure(eal, pmd::PortId::new(0), &cfg, &pool)?;
    let mut p1 = Port::configure(eal, pmd::PortId::new(1), &cfg, &pool)?;
    p0.start()?;
    p1.start()?;
    let mac1 = p1.mac_addr()?;
    let mut rx = p0.rx_queue(pmd::QueueId::new(0))?;
    let mut tx = p1.tx_queue(pmd::QueueId::new(0))?;
    let mut out = vec![Vec::new(); schemes.len()];
    for _ in 0..rounds {
        for (i, s) in schemes.iter().enumerate() {
            let r = with_scheme!(
                s.as_str(),
                fwd_once(eal, worker, &mut rx, &mut tx, mac1, dur, interval)
            )??;
            apps_common::errln!("  forwarding {s:<16}: {:>7.2} Mpps", r.0);
            out[i].push(r);
        }
    }
    let _ = (rx, tx); // the queue handles end here, before the ports stop
    p0.stop()?;
    p1.stop()?;
    Ok(out)
}

/// One forwarding run of scheme `S`: returns (Mpps, replacements, violations).
fn fwd_once<'p, S: Scheme>(
    eal: &Eal,
    worker: pmd::LcoreId,
    rx: &mut RxQueue<'_, 'p>,
    tx: &mut TxQueue<'_, 'p>,
    src: MacAddr,
    dur: Duration,
    interval: Duration,
) -> Result<(f64, u64, u64)> {
    let arena =
        Arena::new(((dur.as_secs_f64() / interval.as_secs_f64()) as usize + 16).min(1 << 22));
    let scheme = S::new(Arc::clone(&arena), 1);
    let quit = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let dst = MacAddr([2, 0, 0, 0, 0, 1]);
    let job: Box<dyn FnOnce() -> i32 + Send + '_> = {
        let (scheme, quit, sent) = (&scheme, &quit, &sent);
        Box::new(move || {
            let mut r = scheme.reader(0);
            let mut burst = Burst::new();
            let mut n = 0u64;
            let mut sink = 0u64;
            // Relaxed: a stop flag.
            while !quit.load(Ordering::Relaxed) {
                S::begin_burst(&mut r);
                if rx.rx_burst(&mut burst) > 0 {
                    for m in burst.as_mut_slice() {
                        // The channel touch a copy offload makes per packet.
                        sink = sink.wrapping_add(S::touch(&mut r));
                        let d = m.data_mut();
                        if d.len() >= 12 {
                            rewrite_macs(d, &dst, &src);
                        }
                    }
                    n += tx.tx_burst(&mut burst) as u64;
                    burst.free_all();
                }
                S::end_burst(&mut r);
            }
            S::offline(&mut r);
            std::hint::black_box(sink);
            // Relaxed: read after the lcore is joined.
            sent.store(n, Ordering::Relaxed);
            0
        })
    };
    let started = Instant::now();
    let (replacements, _) = eal.run_on_lcores(vec![(worker, job)], || {
        let mut k = 0u64;
        while started.elapsed() < dur {
            std::thread::sleep(interval);
            if scheme.replace() {
                k += 1;
            }
        }
        quit.store(true, Ordering::Relaxed);
        k
    })?;
    let secs = started.elapsed().as_secs_f64();
    Ok((
        sent.load(Ordering::Relaxed) as f64 / secs / 1e6,
        replacements,
        arena.violations(),
    ))
}

fn plot(path: &std::path::Path, rows: &[Row], machine: &str) -> Result<()> {
    use plotters::prelude::*;
    let micro: Vec<&Row> = rows.iter().filter(|r| r.level == "micro").collect();
    if micro.is_empty() {
        bail!("the plot shows the micro level: run it (--level micro or both)");
    }
    let max_l = micro.iter().map(|r| r.readers).max().unwrap_or(1);
    let max_ns = micro.iter().map(|r| r.ns_per_touch).fold(0.0, f64::max) * 1.1;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("ns per channel touch vs reader threads ({machine})"),
            ("sans-serif", 18),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.5f64..(max_l as f64 + 0.5), 0f64..max_ns.max(1.0))?;
    chart
        .configure_mesh()
        .x_desc("reader threads")
        .y_desc("ns per touch")
        .draw()?;
    let mut schemes: Vec<&str> = micro.iter().map(|r| r.scheme.as_str()).collect();
    schemes.dedup();
    schemes.sort();
    schemes.dedup();
    for (i, s) in schemes.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let pts: Vec<(f64, f64)> = micro
            .iter()
            .filter(|r| r.scheme == *s)
            .map(|r| (r.readers as f64, r.ns_per_touch))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
            .label(*s)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
