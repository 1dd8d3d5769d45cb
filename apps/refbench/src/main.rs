//! refbench: what hot-remove safety costs the fast path, scheme by scheme.
//!
//! `refbench [EAL options] -- [--schemes LIST] [--readers LIST] [--duration S] [--rounds N]
//!  [--interval-us US] [--level micro|forwarding|both] [--report FILE.json] [--plot FILE.svg]
//!  [--dpdk-autotest] [--dpdk-test PATH] [--dpdk-timeout S]`
//!
//! Exit status: 0 when every measurement ran and no protected scheme touched a retired
//! channel; 1 on an error (a usage error, a bad value, an output that cannot be written, a
//! failed EAL) and when a protected scheme touched a retired channel (after the report).
//!
//! * micro: N reader threads (`--readers`) pinned to N cores touch a DMA channel in the worker's shape
//!   (bursts of 32, a touch per packet, the scheme's per-burst work) while a control thread
//!   removes and re-adds the channel every `--interval-us`; reports TSC cycles per touch (mean
//!   and 95% confidence interval over `--rounds`) and the grace-period latency (p50/p99/max
//!   from the writer's unpublish to the retirement of the old channel).
//! * forwarding: the l2fwd loop on a net_null pair (one worker lcore) with each scheme's touch
//!   per packet, monomorphised per scheme (no per-packet branch on the scheme); reports Mpps.
//! * `--dpdk-autotest`: DPDK's own `rcu_qsbr_perf_autotest` (dpdk-test) on the same box, next
//!   to refbench's timing of the same operations (see `refbench::dpdk_test`).
//!
//! Schemes: none, atomic, percpu, qsbr, rte_qsbr, crossbeam_epoch, crossbeam_epoch_burst,
//! arc_swap (see `refbench::protect`).

use anyhow::{bail, Context, Result};
use clap::Parser;
use dataplane::ether::rewrite_macs;
use pmd::{Burst, Eal, MacAddr, Mempool, Port, PortConfig, RxQueue, TxQueue};
use refbench::dpdk_test;
use refbench::protect::{
    micro, ArcSwapScheme, Arena, AtomicRef, Epoch, EpochBurst, MicroResult, PerCpu, Qsbr, RteQsbr,
    Scheme, Unprotected,
};
use refbench::stats::{Ci, Latency};
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
        $m!($($extra)*; Unprotected, AtomicRef, PerCpu, Qsbr, RteQsbr, Epoch, EpochBurst,
            ArcSwapScheme)
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
    /// Measurements per (scheme, readers), alternating schemes: the mean and its 95% confidence
    /// interval are reported.
    #[arg(long, default_value_t = 5)]
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
    /// Also run DPDK's rcu_qsbr_perf_autotest (dpdk-test) and refbench's timing of the same
    /// operations, and print them side by side.
    #[arg(long = "dpdk-autotest")]
    dpdk_autotest: bool,
    /// The dpdk-test binary.
    #[arg(long = "dpdk-test", default_value = "dpdk-test")]
    dpdk_test: String,
    /// Most seconds dpdk-test may run; the sections it finished by then are shown.
    #[arg(long = "dpdk-timeout", default_value_t = 900.0)]
    dpdk_timeout: f64,
}

#[derive(Serialize, Clone)]
struct Row {
    level: &'static str,
    scheme: String,
    /// Reader threads (micro), or forwarding lcores (1).
    readers: usize,
    /// More reader threads plus the writer than cores: they take turns.
    oversubscribed: bool,
    /// TSC cycles per touch per reader (forwarding: per packet): the mean over rounds and its
    /// 95% confidence interval.
    cycles_per_touch: Ci,
    /// Each round's cycles per touch.
    cycles_samples: Vec<f64>,
    /// The mean in ns (cycles / TSC Hz).
    ns_per_touch: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    mpps: Option<f64>,
    /// Mean relative to `none` at the same level and readers.
    vs_none: f64,
    /// Whether the 95% intervals of this scheme and `none` overlap (the difference is then
    /// within noise); absent for `none` itself or without a `none` row.
    #[serde(skip_serializing_if = "Option::is_none")]
    within_noise_of_none: Option<bool>,
    replacements: u64,
    violations: u64,
}

/// Grace-period latency of one scheme at one reader count, over all its rounds.
#[derive(Serialize, Clone)]
struct GraceRow {
    scheme: String,
    readers: usize,
    oversubscribed: bool,
    #[serde(flatten)]
    latency: Latency,
}

#[derive(Serialize)]
struct Report {
    machine: String,
    cores: usize,
    tsc_hz: u64,
    duration_s: f64,
    rounds: usize,
    interval_us: u64,
    results: Vec<Row>,
    grace_periods: Vec<GraceRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dpdk_autotest: Option<Comparison>,
}

fn main() -> ExitCode {
    apps_common::main_with("refbench", run)
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
    // The micro level runs before the EAL (which pins this thread); its cycles are converted
    // with the EAL's TSC rate afterwards.
    let micro_samples = if plan.micro {
        micro_runs(&plan)?
    } else {
        Vec::new()
    };
    let eal = Eal::init(&forwarding_eal_args(eal_cmdline))?;
    let tsc_hz = pmd::tsc_hz();
    if tsc_hz == 0 {
        bail!("the EAL reports no TSC rate");
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut graces: Vec<GraceRow> = Vec::new();
    for (n, samples) in &micro_samples {
        let s: Vec<Vec<Sample>> = samples
            .iter()
            .map(|v| {
                v.iter()
                    .map(|r| Sample {
                        cycles: r.cycles_per_touch(),
                        mpps: None,
                        replacements: r.replacements,
                        violations: r.violations,
                    })
                    .collect()
            })
            .collect();
        let over = n + 1 > plan.ncores;
        push_rows(&mut rows, "micro", *n, over, &plan.schemes, &s, tsc_hz);
        for (i, name) in plan.schemes.iter().enumerate() {
            if name == "none" {
                continue; // waits for nothing
            }
            let all: Vec<u64> = samples[i]
                .iter()
                .flat_map(|r| r.grace_cycles.iter().copied())
                .collect();
            if let Some(latency) = Latency::of(&all, tsc_hz) {
                graces.push(GraceRow {
                    scheme: name.clone(),
                    readers: *n,
                    oversubscribed: over,
                    latency,
                });
            }
        }
    }
    if plan.forwarding {
        let samples = forwarding(&eal, &plan.schemes, plan.rounds, plan.dur, plan.interval)?;
        push_rows(
            &mut rows,
            "forwarding",
            1,
            plan.ncores < 2,
            &plan.schemes,
            &samples,
            tsc_hz,
        );
    }
    print_table(&rows, tsc_hz);
    print_graces(&graces, plan.ncores);
    let comparison = if cli.dpdk_autotest {
        let c = compare_with_dpdk(&cli, &plan)?;
        print_comparison(&c);
        Some(c)
    } else {
        None
    };
    let report = Report {
        machine,
        cores: plan.ncores,
        tsc_hz,
        duration_s: cli.duration,
        rounds: cli.rounds,
        interval_us: cli.interval_us,
        results: rows.clone(),
        grace_periods: graces,
        dpdk_autotest: comparison,
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
        if !(cli.dpdk_timeout > 0.0 && cli.dpdk_timeout <= 86_400.0) {
            bail!(
                "invalid --dpdk-timeout {}: give more than 0 and at most 86400 s",
                cli.dpdk_timeout
            );
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

/// The micro level's runs: for each reader-thread count, every round of every scheme,
/// alternating; indexed [scheme][round].
type MicroRuns = Vec<(usize, Vec<Vec<MicroResult>>)>;

fn micro_runs(plan: &Plan) -> Result<MicroRuns> {
    let (cores, dur, interval) = (&plan.cores, plan.dur, plan.interval);
    let mut out = Vec::new();
    for &n in &plan.readers {
        let mut samples: Vec<Vec<MicroResult>> = vec![Vec::new(); plan.schemes.len()];
        for _ in 0..plan.rounds {
            for (i, s) in plan.schemes.iter().enumerate() {
                let r = with_scheme!(s.as_str(), micro(n, cores, dur, interval))?;
                apps_common::errln!(
                    "  micro {s:<21} readers {n}: {:>8.3} cycles/touch",
                    r.cycles_per_touch()
                );
                samples[i].push(r);
            }
        }
        out.push((n, samples));
    }
    Ok(out)
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

/// One round of one scheme: TSC cycles per touch (forwarding: per packet).
#[derive(Clone, Copy)]
struct Sample {
    cycles: f64,
    mpps: Option<f64>,
    replacements: u64,
    violations: u64,
}

/// Means and intervals of the samples into rows, with ratios to `none`.
fn push_rows(
    rows: &mut Vec<Row>,
    level: &'static str,
    readers: usize,
    oversubscribed: bool,
    schemes: &[String],
    samples: &[Vec<Sample>],
    tsc_hz: u64,
) {
    let cis: Vec<Ci> = samples
        .iter()
        .map(|v| Ci::of(&v.iter().map(|s| s.cycles).collect::<Vec<_>>()))
        .collect();
    let base = schemes.iter().position(|s| s == "none").map(|i| cis[i]);
    for (i, s) in schemes.iter().enumerate() {
        let ci = cis[i];
        let mpps: Vec<f64> = samples[i].iter().filter_map(|s| s.mpps).collect();
        rows.push(Row {
            level,
            scheme: s.clone(),
            readers,
            oversubscribed,
            cycles_per_touch: ci,
            cycles_samples: samples[i].iter().map(|s| s.cycles).collect(),
            ns_per_touch: ci.mean * 1e9 / tsc_hz as f64,
            mpps: (!mpps.is_empty()).then(|| mpps.iter().sum::<f64>() / mpps.len() as f64),
            vs_none: base.map_or(f64::NAN, |b| ci.mean / b.mean),
            within_noise_of_none: base.filter(|_| s != "none").map(|b| ci.overlaps(&b)),
            replacements: samples[i].iter().map(|s| s.replacements).sum(),
            violations: samples[i].iter().map(|s| s.violations).sum(),
        });
    }
}

fn print_table(rows: &[Row], tsc_hz: u64) {
    let rounds = rows.first().map_or(0, |r| r.cycles_per_touch.n);
    apps_common::outln!(
        "\nTSC {:.3} GHz; cycles per touch (forwarding: per packet) as the mean ± the half-width \
         of its 95% confidence interval over {rounds} rounds (Student's t)",
        tsc_hz as f64 / 1e9
    );
    apps_common::outln!(
        "{:<11} {:<21} {:>8} {:>19} {:>9} {:>7} {:>8} {:>7} {:>12} {:>10}",
        "level",
        "scheme",
        "readers",
        "cycles/touch",
        "ns/touch",
        "Mpps",
        "vs none",
        "differs",
        "replacements",
        "violations"
    );
    for r in rows {
        apps_common::outln!(
            "{:<11} {:<21} {:>8} {:>19} {:>9.3} {:>7} {:>8.2} {:>7} {:>12} {:>10}",
            r.level,
            r.scheme,
            format!("{}{}", r.readers, if r.oversubscribed { "*" } else { "" }),
            r.cycles_per_touch.show(2),
            r.ns_per_touch,
            r.mpps
                .map(|m| format!("{m:.2}"))
                .unwrap_or_else(|| "-".into()),
            r.vs_none,
            match r.within_noise_of_none {
                None => "-",
                Some(true) => "noise",
                Some(false) => "yes",
            },
            r.replacements,
            r.violations
        );
    }
    apps_common::outln!(
        "(vs none: mean cost relative to the unprotected baseline; differs: `yes` when the 95% \
         intervals of the scheme and `none` are disjoint, `noise` when they overlap; `none` is \
         not safe under removal: its violations show why)"
    );
    if rows.iter().any(|r| r.oversubscribed) {
        apps_common::outln!(
            "(* oversubscribed: the reader threads and the writer outnumber the cores, so they \
             take turns on them)"
        );
    }
}

/// The grace-period table: p50/p99/max against the number of readers, per scheme.
fn print_graces(rows: &[GraceRow], ncores: usize) {
    if rows.is_empty() {
        return;
    }
    apps_common::outln!(
        "\nGrace-period latency: from the writer's publish (the swap that unpublishes the old \
         channel) to its retirement (every reader past it), TSC cycles and us, over all rounds"
    );
    apps_common::outln!(
        "{:<21} {:>8} {:>6} {:>11} {:>11} {:>11} {:>10} {:>10} {:>10}",
        "scheme",
        "readers",
        "count",
        "p50 cycles",
        "p99 cycles",
        "max cycles",
        "p50 us",
        "p99 us",
        "max us"
    );
    for r in rows {
        let l = &r.latency;
        apps_common::outln!(
            "{:<21} {:>8} {:>6} {:>11} {:>11} {:>11} {:>10.2} {:>10.2} {:>10.2}",
            r.scheme,
            format!("{}{}", r.readers, if r.oversubscribed { "*" } else { "" }),
            l.count,
            l.p50_cycles,
            l.p99_cycles,
            l.max_cycles,
            l.p50_us,
            l.p99_us,
            l.max_us
        );
    }
    if rows.iter().any(|r| r.oversubscribed) {
        apps_common::outln!(
            "(* oversubscribed: with {ncores} cores, more than {} reader(s) share cores with each \
             other and the writer; a grace period then waits for a descheduled reader to run \
             again, and the scheduler's time slice shows in p99 and max)",
            ncores.saturating_sub(1).max(1)
        );
    }
    apps_common::outln!(
        "(crossbeam_epoch and crossbeam_epoch_burst retire in a deferred function that runs at a \
         later collection: their latency includes that wait; arc_swap retires on the last drop)"
    );
}

/// The forwarding level: for each scheme and round, the l2fwd loop on the first two ports.
fn forwarding(
    eal: &Eal,
    schemes: &[String],
    rounds: usize,
    dur: Duration,
    interval: Duration,
) -> Result<Vec<Vec<Sample>>> {
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
            apps_common::errln!("  forwarding {s:<21}: {:>7.2} Mpps", r.0);
            out[i].push(Sample {
                cycles: pmd::tsc_hz() as f64 / (r.0 * 1e6).max(1.0),
                mpps: Some(r.0),
                replacements: r.1,
                violations: r.2,
            });
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
    let (replacements, _) = eal.run_on_lcores(
        vec![(worker, job)],
        || {
            let mut k = 0u64;
            while started.elapsed() < dur {
                std::thread::sleep(interval);
                if scheme.replace() {
                    k += 1;
                }
            }
            quit.store(true, Ordering::Relaxed);
            k
        },
        || (),
    )?;
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

/// DPDK's rcu_qsbr_perf_autotest next to refbench's timing of the same operations.
#[derive(Serialize)]
struct Comparison {
    /// dpdk-test's worker lcores (the autotest's `num_cores`).
    workers: usize,
    rows: Vec<CompareRow>,
    dpdk_test: dpdk_test::Run,
}

/// One operation: TSC cycles per operation on each side.
#[derive(Serialize)]
struct CompareRow {
    operation: String,
    /// From dpdk-test's output; None when it did not get that far.
    dpdk_test: Option<f64>,
    /// refbench through `pmd::RcuQsbr` (the same `rte_rcu_qsbr` calls).
    refbench_rte_qsbr: Option<Ci>,
    /// refbench's `dataplane::qsbr` doing the same job.
    refbench_qsbr: Option<Ci>,
}

fn compare_with_dpdk(cli: &Cli, plan: &Plan) -> Result<Comparison> {
    // The autotest's lcores: a main lcore and `workers` workers (at least 2).
    let workers = plan.ncores.max(3) - 1;
    let (cores, dur) = (&plan.cores, plan.dur);
    apps_common::errln!(
        "refbench: the autotest's operations, {} round(s) of {} s each",
        plan.rounds,
        cli.duration
    );
    let mut s: [Vec<f64>; 7] = Default::default();
    for _ in 0..plan.rounds {
        s[0].push(dpdk_test::rte_readers(workers, cores, dur)?.per_op());
        s[1].push(dpdk_test::qsbr_readers(workers, cores, dur).per_op());
        let (r, w) = dpdk_test::rte_reader_writer(workers - 1, cores, dur)?;
        s[2].push(r.per_op());
        s[3].push(w.per_op());
        let (r, w) = dpdk_test::qsbr_reader_writer(workers - 1, cores, dur);
        s[4].push(r.per_op());
        s[5].push(w.per_op());
        s[6].push(dpdk_test::rte_writers(workers, cores, dur)?.per_op());
    }
    let ci = |v: &Vec<f64>| Some(Ci::of(v));
    apps_common::errln!(
        "refbench: running `{} {}` (at most {} s) ...",
        cli.dpdk_test,
        dpdk_test::AUTOTEST,
        cli.dpdk_timeout
    );
    let run = dpdk_test::run(
        &cli.dpdk_test,
        cores,
        Duration::from_secs_f64(cli.dpdk_timeout),
        |line| apps_common::errln!("  dpdk-test| {line}"),
    )?;
    dpdk_test::check_ran(&run)?;
    let a = &run.output;
    let rw = a.section(&format!("{} Readers/1 Writer", workers - 1));
    let ro = a.section(&format!("{workers} Readers"));
    let wo = a.section(&format!("{workers} Writers"));
    let hb = a
        .section("1 writer")
        .filter(|s| s.title.contains("Blocking QSBR Check"));
    let hn = a
        .section("1 writer")
        .and(a.sections.iter().find(|s| s.title.contains("Non-Blocking")));
    let f = |s: Option<&dpdk_test::Section>, what: &str| s.and_then(|s| s.cycles_for(what));
    let rows = vec![
        CompareRow {
            operation: format!("quiescent-state report, {workers} readers, no writer"),
            dpdk_test: f(ro, "quiescent state updates"),
            refbench_rte_qsbr: ci(&s[0]),
            refbench_qsbr: ci(&s[1]),
        },
        CompareRow {
            operation: format!(
                "quiescent-state report, {} reader(s) + 1 waiting writer",
                workers - 1
            ),
            dpdk_test: f(rw, "quiescent state updates"),
            refbench_rte_qsbr: ci(&s[2]),
            refbench_qsbr: ci(&s[4]),
        },
        CompareRow {
            operation: format!(
                "grace period (start + blocking check), {} reader(s)",
                workers - 1
            ),
            dpdk_test: f(rw, "checks"),
            refbench_rte_qsbr: ci(&s[3]),
            refbench_qsbr: ci(&s[5]),
        },
        CompareRow {
            operation: format!("non-blocking check, {workers} writers, no readers"),
            dpdk_test: f(wo, "checks"),
            refbench_rte_qsbr: ci(&s[6]),
            refbench_qsbr: None,
        },
        CompareRow {
            operation: format!("rte_hash reader pass, {workers} readers (blocking writer)"),
            dpdk_test: f(hb, "quiescent state update"),
            refbench_rte_qsbr: None,
            refbench_qsbr: None,
        },
        CompareRow {
            operation: "rte_hash delete + grace period (blocking check)".into(),
            dpdk_test: f(hb, "check("),
            refbench_rte_qsbr: None,
            refbench_qsbr: None,
        },
        CompareRow {
            operation: "rte_hash delete + grace period (non-blocking check)".into(),
            dpdk_test: f(hn, "check("),
            refbench_rte_qsbr: None,
            refbench_qsbr: None,
        },
    ];
    Ok(Comparison {
        workers,
        rows,
        dpdk_test: run,
    })
}

fn print_comparison(c: &Comparison) {
    let run = &c.dpdk_test;
    apps_common::outln!(
        "\nDPDK's {} next to refbench, TSC cycles per operation (refbench: mean ± 95% CI)",
        dpdk_test::AUTOTEST
    );
    apps_common::outln!(
        "dpdk-test: `{}`, {:.0} s{}",
        run.command,
        run.seconds,
        if run.timed_out {
            ", stopped at --dpdk-timeout: later sections not reached"
        } else {
            ""
        }
    );
    apps_common::outln!(
        "{:<58} {:>12} {:>20} {:>20}",
        "operation",
        "dpdk-test",
        "refbench rte_qsbr",
        "refbench qsbr"
    );
    let show = |c: &Option<Ci>| c.map_or_else(|| "-".to_owned(), |c| c.show(1));
    for r in &c.rows {
        apps_common::outln!(
            "{:<58} {:>12} {:>20} {:>20}",
            r.operation,
            r.dpdk_test.map_or_else(
                || if run.timed_out { "not reached" } else { "-" }.to_owned(),
                |v| format!("{v:.1}")
            ),
            show(&r.refbench_rte_qsbr),
            show(&r.refbench_qsbr)
        );
    }
    apps_common::outln!(
        "(the same rte_rcu_qsbr calls on both sides, so dpdk-test and refbench rte_qsbr should \
         agree; refbench qsbr is the data plane's own QSBR doing the same job: a poll of its slot \
         per report, a publish and a wait per grace period. With {} workers on this box's cores \
         the autotest and refbench's threads share cores as its --lcores map says.)",
        c.workers
    );
}
