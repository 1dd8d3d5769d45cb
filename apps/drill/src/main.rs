//! drill: runs a hot-remove drill file against an l2fwd and a pktgen, prints a line per step
//! and a verdict table, and exits 0 (PASS), 2 (a criterion failed) or 1 (an error: a step
//! that could not run, a target that died, a bad drill file).
//!
//! ```text
//! drill --config configs/drill-vdev.toml [--report FILE.json] [--plot FILE.svg] [--allow-exec]
//! ```

use anyhow::Result;
use apps_common::{errln, outln};
use clap::Parser;
use drill::run::Outcome;
use drill::verdict::{self, Verdict};
use drill::{spec, Interrupt};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "drill",
    version,
    about = "Run a hot-remove drill: a timeline of DMA removals, additions and faults against l2fwd and pktgen, judged by pass criteria"
)]
struct Cli {
    /// The drill file (TOML): targets, steps, criteria.
    #[arg(long)]
    config: PathBuf,
    /// Write the JSON report here: steps, removals, verdict, pktgen's series, both final reports.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Draw the run here (SVG): rate over time with the steps, removal latencies, loop gaps.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Allow `exec` steps (shell commands: PCI removal, rescan, rebinding in the lab).
    #[arg(long = "allow-exec")]
    allow_exec: bool,
}

fn main() -> ExitCode {
    match drill_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            errln!("drill: error: {}", apps_common::one_line(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// Whether the drill passed.
fn drill_main() -> Result<bool> {
    let cli = Cli::try_parse().map_err(|e| {
        if matches!(
            e.kind(),
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
        ) {
            let _ = e.print();
            std::process::exit(0);
        }
        apps_common::usage_error(e)
    })?;
    for (opt, p) in [("--report", &cli.report), ("--plot", &cli.plot)] {
        if let Some(p) = p {
            apps_common::outfile::check_writable(opt, p)?;
        }
    }
    let d = spec::load(&cli.config)?;
    let intr = Interrupt::install()?;
    outln!("drill: {} ({} steps)", cli.config.display(), d.steps.len());
    let o = drill::run::run(&d, cli.allow_exec, &intr)?;
    let v = verdict::evaluate(&d.criteria, &o);
    let s = verdict::removal_summary(&o);
    if let Some(p) = s.latency_us {
        outln!(
            "removals: {}  latency us p50 {:.1} p99 {:.1} max {:.1}",
            p.count,
            p.p50,
            p.p99,
            p.max
        );
    }
    for (name, p) in [
        ("grace", s.grace_us),
        ("stop", s.stop_us),
        ("unplug", s.unplug_us),
    ] {
        if let Some(p) = p {
            outln!(
                "  {name:<7} us p50 {:.1} p99 {:.1} max {:.1}",
                p.p50,
                p.p99,
                p.max
            );
        }
    }
    apps_common::out!("{}", v.table());
    if let Some(path) = &cli.report {
        write_report(path, &cli, &o, &v)?;
    }
    if let Some(path) = &cli.plot {
        let title = format!(
            "drill {}: {}",
            cli.config.display(),
            if v.pass { "PASS" } else { "FAIL" }
        );
        drill::plot::plot(path, &o, &title)?;
    }
    if !v.pass {
        errln!("drill: FAIL: {}", v.failed().join(", "));
    }
    Ok(v.pass)
}

fn write_report(path: &PathBuf, cli: &Cli, o: &Outcome, v: &Verdict) -> Result<()> {
    let r = json!({
        "drill": cli.config.display().to_string(),
        "mode": o.mode,
        "verdict": v,
        "steps": o.steps,
        "removals": o.removals,
        "removal_summary": verdict::removal_summary(o),
        "series": {"source": o.series_source, "samples": o.series},
        "worker_gaps": o.worker_gaps,
        "pktgen": o.pktgen,
        "l2fwd": o.l2fwd,
    });
    let text = serde_json::to_string_pretty(&r)?;
    std::fs::write(path, text + "\n")
        .map_err(|e| anyhow::anyhow!("cannot write --report {}: {e}", path.display()))
}
