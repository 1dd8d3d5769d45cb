//! Running a drill: start or attach to the targets, wait for traffic, run the steps in time
//! order (a line each), stop pktgen, and collect what both targets report.

use crate::ctl::Ctl;
use crate::spec::{Action, Drill, Step, Targets as TargetSpec, When};
use crate::targets::{read_report, Targets};
use crate::Interrupt;
use anyhow::{bail, Context, Result};
use apps_common::outln;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long traffic has to start flowing.
const TRAFFIC_TIMEOUT: Duration = Duration::from_secs(60);
/// After the last step, before pktgen is stopped: the rate recovers in the plot.
const SETTLE: Duration = Duration::from_millis(500);
/// A step's `whole_window` counts only windows at least this long (milliseconds).
const WHOLE_WINDOW_MIN_MS: f64 = 1.0;
/// How often the drill samples pktgen's and l2fwd's stats while it runs.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// One step as it ran.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// 1-based, in the expanded timeline.
    pub index: usize,
    pub kind: &'static str,
    pub action: String,
    /// Milliseconds since the drill's start (the moment traffic flowed).
    pub start_ms: f64,
    pub end_ms: f64,
    /// What the target answered (or the command's output for `exec`).
    pub result: Value,
    /// A removal's latency as l2fwd measured it; otherwise the step's own duration.
    pub latency_us: f64,
    /// The longest gap between two loop iterations of any l2fwd worker during this step: from
    /// its start to the next step's start (the last step: to the end of the settling time),
    /// over the loop-gap windows the drill closed in that time. A gap counts where it ends: a
    /// stall that a step began and that lasted into the next is the next step's. None: l2fwd
    /// keeps no windows (or the request opening this step's window failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loop_gap_us: Option<f64>,
    /// The same per worker lcore.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub loop_gaps: Vec<LcoreGap>,
    /// The first loop-gap window opened at this step's start.
    #[serde(skip)]
    pub first_window: Option<u64>,
}

/// One hot-remove, from l2fwd's answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Removal {
    pub step: usize,
    pub t_ms: f64,
    pub channel: String,
    pub latency_us: f64,
    /// Unpublish to grace period over; device stop; driver removal (when l2fwd reports them).
    pub grace_us: Option<f64>,
    pub stop_us: Option<f64>,
    pub unplug_us: Option<f64>,
    pub drained: u64,
    pub recopied: u64,
}

/// The received and sent rate over one sample period ending at `t_ms` (drill time).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct RatePoint {
    pub t_ms: f64,
    pub rx_pps: f64,
    pub tx_pps: f64,
}

/// One worker's longest loop gap in a window or a step.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct LcoreGap {
    pub lcore: u64,
    pub max_loop_gap_us: f64,
    /// It ended no loop iteration in the window (in a step: in one of its windows), so its gap
    /// is at least the window's length, which is what l2fwd reports.
    pub whole_window: bool,
}

/// One loop-gap window l2fwd closed for the drill (`{"cmd":"loop gaps"}`): each worker's
/// longest gap between two loop iterations that ended while it was open.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GapWindow {
    pub window: u64,
    /// Drill time (ms) the window opened and closed.
    pub start_ms: f64,
    pub end_ms: f64,
    /// The longest of any worker, microseconds.
    pub max_loop_gap_us: f64,
    pub lcores: Vec<LcoreGap>,
}

impl GapWindow {
    /// l2fwd's answer to `loop gaps`, received at drill time `end_ms`; None if it is not one.
    pub fn from_answer(a: &Value, end_ms: f64) -> Option<Self> {
        let lcores: Vec<LcoreGap> = a["lcores"]
            .as_array()?
            .iter()
            .map(|l| {
                Some(LcoreGap {
                    lcore: l["lcore"].as_u64()?,
                    max_loop_gap_us: l["max_loop_gap_us"].as_f64()?,
                    whole_window: l["whole_window"].as_bool()?,
                })
            })
            .collect::<Option<_>>()?;
        Some(GapWindow {
            window: a["window"].as_u64()?,
            start_ms: end_ms - a["open_us"].as_f64()? / 1e3,
            end_ms,
            max_loop_gap_us: lcores.iter().map(|l| l.max_loop_gap_us).fold(0.0, f64::max),
            lcores,
        })
    }
}

/// l2fwd's loop-gap windows, closed by the sampler every [`SAMPLE_EVERY`] and by the step
/// runner at every step's start, so that no window spans two steps.
struct Gaps {
    l2fwd: Ctl,
    t0: Instant,
    windows: Mutex<Vec<GapWindow>>,
    /// l2fwd answers `loop gaps` (an older one, attached to, may not).
    on: AtomicBool,
    /// What went wrong with the windows, said once the drill has run (a drill that fails says
    /// only why, on one line): why there are none, or how many were lost and the last error.
    trouble: Mutex<Option<(u32, String)>>,
}

impl Gaps {
    /// Closes the window open before the drill (at l2fwd's start, or at an earlier drill's
    /// end), not keeping it. An l2fwd that refuses `loop gaps` keeps no windows: the drill
    /// then reports no loop gaps.
    fn start(&self) {
        if let Err(e) = self.request() {
            // Relaxed: set before the sampler starts (the scope's spawn orders it).
            self.on.store(false, Ordering::Relaxed);
            *self.trouble() = Some((0, format!("no loop gaps from l2fwd: {e:#}")));
        }
    }

    /// Closes l2fwd's open window and keeps it; the number of the window that opens. None if
    /// l2fwd keeps no windows, or if this request failed (counted, and said on stderr once the
    /// drill has run: the step it opens then has no loop gap of its own, and its time goes to
    /// the step before).
    fn close(&self) -> Option<u64> {
        // Relaxed: written once before the threads that close windows start.
        if !self.on.load(Ordering::Relaxed) {
            return None;
        }
        match self.request() {
            Ok(w) => {
                let next = w.window + 1;
                self.windows
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(w);
                Some(next)
            }
            Err(e) => {
                let mut t = self.trouble();
                let lost = t.as_ref().map_or(0, |t| t.0) + 1;
                *t = Some((
                    lost,
                    format!("{lost} loop-gap window(s) lost, the last: {e:#}"),
                ));
                None
            }
        }
    }

    fn request(&self) -> Result<GapWindow> {
        let a = self.l2fwd.request(&json!({"cmd": "loop gaps"}))?;
        GapWindow::from_answer(&a, self.t0.elapsed().as_secs_f64() * 1e3)
            .with_context(|| format!("not a loop-gap window: {a}"))
    }

    fn trouble(&self) -> std::sync::MutexGuard<'_, Option<(u32, String)>> {
        self.trouble.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The windows in order, after saying on stderr what went wrong with them, if anything.
    fn into_windows(self) -> Vec<GapWindow> {
        if let Some((_, why)) = self.trouble().as_ref() {
            apps_common::errln!("drill: {why}");
        }
        let mut w = self.windows.into_inner().unwrap_or_else(|e| e.into_inner());
        w.sort_by_key(|w| w.window);
        w
    }
}

/// What a drill run produced, for the verdict, the report and the plot.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// `start` or `attach`.
    pub mode: &'static str,
    pub steps: Vec<StepRecord>,
    pub removals: Vec<Removal>,
    /// When the last step ended (drill time, ms).
    pub steps_end_ms: f64,
    /// Where `series` comes from: pktgen's report (`start`) or its stats, sampled (`attach`).
    pub series_source: &'static str,
    pub series: Vec<RatePoint>,
    /// l2fwd's loop-gap windows from the drill's start (time 0) to the end of the settling
    /// time after the last step, in order; empty if l2fwd keeps none.
    pub worker_gaps: Vec<GapWindow>,
    /// pktgen's final report (`start`) or its last stats (`attach`).
    pub pktgen: Value,
    /// l2fwd's final report (`start`) or its last stats (`attach`).
    pub l2fwd: Value,
}

/// What the sampler thread gathers: (drill ms, tx, rx) from pktgen's stats.
type Samples = Vec<(f64, u64, u64)>;

/// Runs `drill`; `allow_exec` permits `exec` steps.
pub fn run(drill: &Drill, allow_exec: bool, intr: &Interrupt) -> Result<Outcome> {
    if !allow_exec {
        if let Some((i, s)) = drill
            .steps
            .iter()
            .enumerate()
            .find(|(_, s)| matches!(s.action, Action::Exec(_)))
        {
            bail!(
                "step {} ({}) runs a command: allowed only with --allow-exec",
                i + 1,
                s.action
            );
        }
    }
    let mut targets = match &drill.targets {
        TargetSpec::Start(s) => Targets::start(s, intr)?,
        TargetSpec::Attach(a) => Targets::attach(&a.l2fwd_control, &a.pktgen_control)?,
    };
    let mode = if targets.started.is_some() {
        "start"
    } else {
        "attach"
    };
    // In attach mode a paused pktgen is resumed for the drill, and left as it was found.
    let was_paused = targets.pktgen.stats()?["state"] == "paused";
    if was_paused {
        targets.pktgen.request(&json!({"cmd": "start"}))?;
    }
    let (t0, pg_offset_ms) = await_traffic(&mut targets, intr)?;

    let samples = Mutex::new(Samples::default());
    let done = AtomicBool::new(false);
    let gaps = Gaps {
        l2fwd: targets.l2fwd.clone(),
        t0,
        windows: Mutex::new(Vec::new()),
        on: AtomicBool::new(true),
        trouble: Mutex::new(None),
    };
    gaps.start();
    let (records, removals, steps_end) = std::thread::scope(|s| {
        let pg = targets.pktgen.clone();
        let (samples, done, gaps) = (&samples, &done, &gaps);
        s.spawn(move || sample(&pg, gaps, t0, samples, done));
        let r = run_steps(&drill.steps, &mut targets, gaps, t0, intr);
        // Relaxed: a stop flag; the scope's join orders the samples.
        done.store(true, Ordering::Relaxed);
        r
    })?;
    intr.sleep(SETTLE)?;
    gaps.close();
    targets.check_alive()?;

    // Stop sending, and wait for what is in flight.
    targets.pktgen.request(&json!({"cmd": "stop"}))?;
    let mut last = targets.pktgen.stats()?;
    let mut still = Instant::now();
    let t = Instant::now();
    while last["missing_so_far"].as_u64().unwrap_or(0) > 0
        && still.elapsed() < Duration::from_secs(2)
        && t.elapsed() < Duration::from_secs(10)
    {
        intr.sleep(Duration::from_millis(50))?;
        let now = targets.pktgen.stats()?;
        if now["rx"] != last["rx"] {
            still = Instant::now();
        }
        last = now;
    }

    let samples = samples.into_inner().unwrap_or_else(|e| e.into_inner());
    let (pktgen, l2fwd, series, source) = match targets.started.as_mut() {
        Some(st) => {
            st.pktgen.stop(intr)?;
            let pktgen = read_report(&st.pktgen, &st.pktgen_report)?;
            let status = st.l2fwd.stop(intr)?;
            if !status.success() {
                bail!(
                    "l2fwd exited ({status}) at the end: {}",
                    st.l2fwd.last_line()
                );
            }
            let l2fwd = read_report(&st.l2fwd, &st.l2fwd_report)?;
            let series = report_series(&pktgen, pg_offset_ms as f64);
            (pktgen, l2fwd, series, "pktgen report")
        }
        None => {
            let l2fwd = targets.l2fwd.stats()?;
            if !was_paused {
                targets.pktgen.request(&json!({"cmd": "start"}))?;
            }
            (last, l2fwd, sampled_series(&samples), "pktgen stats")
        }
    };
    let worker_gaps = gaps.into_windows();
    let mut records = records;
    attribute_gaps(&mut records, &worker_gaps);
    Ok(Outcome {
        mode,
        steps: records,
        removals,
        steps_end_ms: steps_end,
        series_source: source,
        series,
        worker_gaps,
        pktgen,
        l2fwd,
    })
}

/// Waits until pktgen's receive count grows: the moment the drill's clock starts. Returns it
/// and pktgen's own clock (`elapsed_ms`) then.
fn await_traffic(targets: &mut Targets, intr: &Interrupt) -> Result<(Instant, u64)> {
    let first = targets.pktgen.stats()?["rx"].as_u64().unwrap_or(0);
    let t = Instant::now();
    loop {
        targets.check_alive()?;
        let s = targets.pktgen.stats()?;
        if s["rx"].as_u64().unwrap_or(0) > first {
            return Ok((Instant::now(), s["elapsed_ms"].as_u64().unwrap_or(0)));
        }
        if t.elapsed() > TRAFFIC_TIMEOUT {
            bail!(
                "no traffic: pktgen received nothing back within {} s (sent {})",
                TRAFFIC_TIMEOUT.as_secs(),
                s["tx"]
            );
        }
        intr.sleep(Duration::from_millis(20))?;
    }
}

/// The sampler thread: pktgen's counters, and a loop-gap window closed, every
/// [`SAMPLE_EVERY`], until `done`.
fn sample(pg: &Ctl, gaps: &Gaps, t0: Instant, out: &Mutex<Samples>, done: &AtomicBool) {
    // Relaxed: see run.
    while !done.load(Ordering::Relaxed) {
        let t_ms = t0.elapsed().as_secs_f64() * 1e3;
        if let Ok(s) = pg.stats() {
            if let (Some(tx), Some(rx)) = (s["tx"].as_u64(), s["rx"].as_u64()) {
                let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                o.push((t_ms, tx, rx));
            }
        }
        gaps.close();
        std::thread::sleep(SAMPLE_EVERY);
    }
}

/// Runs the steps in order, each at its time; returns what they did and when the last ended.
fn run_steps(
    steps: &[Step],
    targets: &mut Targets,
    gaps: &Gaps,
    t0: Instant,
    intr: &Interrupt,
) -> Result<(Vec<StepRecord>, Vec<Removal>, f64)> {
    let ms = |t: Instant| (t - t0).as_secs_f64() * 1e3;
    let (mut records, mut removals) = (Vec::new(), Vec::new());
    let mut prev_end = t0;
    let n = steps.len();
    for (i, step) in steps.iter().enumerate() {
        let due = match step.when {
            When::At(t) => t0 + Duration::from_millis(t),
            When::After(t) => prev_end + Duration::from_millis(t),
        };
        loop {
            targets.check_alive()?;
            let now = Instant::now();
            if now >= due {
                break;
            }
            intr.sleep((due - now).min(Duration::from_millis(20)))?;
        }
        // A command may remove a device behind l2fwd's back (a PCI removal through sysfs
        // raises a device event): its removals are the new entries of l2fwd's hot_removes.
        let exec = matches!(step.action, Action::Exec(_));
        let removes_before = if exec {
            hot_removes(&targets.l2fwd)?.len()
        } else {
            0
        };
        // A window of its own for the step: the one open now ends with the previous step.
        let first_window = gaps.close();
        let start = Instant::now();
        let result = run_action(&step.action, targets, intr)
            .with_context(|| format!("step {} ({})", i + 1, step.action))?;
        let end = Instant::now();
        if exec {
            for r in hot_removes(&targets.l2fwd)?.iter().skip(removes_before) {
                let channel = r["channel"].as_str().unwrap_or("?").to_owned();
                removals.push(removal(i + 1, ms(start), &channel, r));
            }
        }
        prev_end = end;
        let mut latency_us = (end - start).as_secs_f64() * 1e6;
        let mut detail = String::new();
        if let Action::Remove(channel) = &step.action {
            let r = removal(i + 1, ms(start), channel, &result);
            latency_us = r.latency_us;
            detail = format!("drained {} recopied {}", r.drained, r.recopied);
            if let (Some(g), Some(s), Some(u)) = (r.grace_us, r.stop_us, r.unplug_us) {
                detail = format!("(grace {g:.1}, stop {s:.1}, unplug {u:.1}) {detail}");
            }
            removals.push(r);
        } else if let Action::Add(_) = &step.action {
            if let Some(w) = result["worker"].as_u64() {
                detail = format!("on worker {w}");
            }
        }
        outln!(
            "[{:>9.3} s] step {:>w$}/{n}  {:<40} ok  {:>10.1} us  {detail}",
            ms(start) / 1e3,
            i + 1,
            step.action.to_string(),
            latency_us,
            w = n.to_string().len()
        );
        records.push(StepRecord {
            index: i + 1,
            kind: step.action.kind(),
            action: step.action.to_string(),
            start_ms: ms(start),
            end_ms: ms(end),
            result,
            latency_us,
            loop_gap_us: None,
            loop_gaps: Vec::new(),
            first_window,
        });
    }
    Ok((records, removals, ms(prev_end)))
}

/// Sets each step's loop gaps from the windows (in window order): step i's are the windows
/// from the one opened at its start up to the one opened at the next step's start.
pub fn attribute_gaps(steps: &mut [StepRecord], windows: &[GapWindow]) {
    let firsts: Vec<Option<u64>> = steps.iter().map(|s| s.first_window).collect();
    for (i, s) in steps.iter_mut().enumerate() {
        let Some(first) = s.first_window else {
            continue;
        };
        let next = firsts[i + 1..].iter().flatten().next().copied();
        let mut per_lcore: Vec<LcoreGap> = Vec::new();
        for w in windows
            .iter()
            .filter(|w| w.window >= first && next.is_none_or(|n| w.window < n))
        {
            // A window shorter than a loop iteration (two requests a moment apart) often sees
            // a healthy worker end none: that says nothing of a stall.
            let short = w.end_ms - w.start_ms < WHOLE_WINDOW_MIN_MS;
            for l in &w.lcores {
                let whole = l.whole_window && !short;
                match per_lcore.iter_mut().find(|p| p.lcore == l.lcore) {
                    Some(p) => {
                        p.max_loop_gap_us = p.max_loop_gap_us.max(l.max_loop_gap_us);
                        p.whole_window |= whole;
                    }
                    None => per_lcore.push(LcoreGap {
                        whole_window: whole,
                        ..*l
                    }),
                }
            }
        }
        s.loop_gap_us = per_lcore.iter().map(|l| l.max_loop_gap_us).reduce(f64::max);
        s.loop_gaps = per_lcore;
    }
}

/// l2fwd's `hot_removes` so far.
fn hot_removes(l2fwd: &Ctl) -> Result<Vec<Value>> {
    let s = l2fwd.stats()?;
    Ok(s["hot_removes"].as_array().cloned().unwrap_or_default())
}

fn removal(step: usize, t_ms: f64, channel: &str, r: &Value) -> Removal {
    Removal {
        step,
        t_ms,
        channel: r["channel"].as_str().unwrap_or(channel).to_owned(),
        latency_us: r["latency_us"].as_f64().unwrap_or(0.0),
        grace_us: r["grace_us"].as_f64(),
        stop_us: r["stop_us"].as_f64(),
        unplug_us: r["unplug_us"].as_f64(),
        drained: r["drained"].as_u64().unwrap_or(0),
        recopied: r["recopied"].as_u64().unwrap_or(0),
    }
}

fn run_action(action: &Action, t: &mut Targets, intr: &Interrupt) -> Result<Value> {
    Ok(match action {
        Action::Remove(c) => t.l2fwd.request(&json!({"cmd": "dma remove", "name": c}))?,
        Action::Add(d) => t.l2fwd.request(&json!({"cmd": "dma add", "devargs": d}))?,
        Action::Fault { channel, fault } => t
            .l2fwd
            .request(&json!({"cmd": "dma fault", "name": channel, "fault": fault.as_str()}))?,
        Action::Copybreak(b) => t.l2fwd.request(&json!({"cmd": "copybreak", "bytes": b}))?,
        Action::Rate(r) => t.pktgen.request(&json!({"cmd": "rate", "rate": r}))?,
        Action::Wait(ms) => {
            // Watching the targets: one that dies ends the drill now, not at the step's end.
            let end = Instant::now() + Duration::from_millis(*ms);
            loop {
                t.check_alive()?;
                let now = Instant::now();
                if now >= end {
                    break;
                }
                intr.sleep((end - now).min(Duration::from_millis(20)))?;
            }
            Value::Null
        }
        Action::Exec(cmd) => {
            let out = std::process::Command::new("sh")
                .args(["-c", cmd])
                .stdin(std::process::Stdio::null())
                .output()
                .context("cannot run sh")?;
            let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_owned();
            if !out.status.success() {
                bail!(
                    "{}: {}",
                    out.status,
                    apps_common::one_line(&text(&out.stderr))
                );
            }
            json!({"stdout": text(&out.stdout), "stderr": text(&out.stderr)})
        }
    })
}

/// pktgen's report's series (`series.samples`: per-period counts, `t_ms` since pktgen's start)
/// as rates in drill time (`offset_ms`: pktgen's clock when the drill's started).
pub fn report_series(report: &Value, offset_ms: f64) -> Vec<RatePoint> {
    let mut prev = 0.0;
    let mut out = Vec::new();
    for s in report["series"]["samples"].as_array().into_iter().flatten() {
        let t = s["t_ms"].as_f64().unwrap_or(0.0);
        let dt = t - prev;
        if dt > 0.0 {
            out.push(RatePoint {
                t_ms: t - offset_ms,
                rx_pps: s["rx"].as_f64().unwrap_or(0.0) * 1e3 / dt,
                tx_pps: s["tx"].as_f64().unwrap_or(0.0) * 1e3 / dt,
            });
        }
        prev = t;
    }
    out
}

/// Rates from sampled cumulative counters `(drill ms, tx, rx)`.
pub fn sampled_series(samples: &[(f64, u64, u64)]) -> Vec<RatePoint> {
    samples
        .windows(2)
        .filter(|w| w[1].0 > w[0].0)
        .map(|w| {
            let dt = (w[1].0 - w[0].0) / 1e3;
            RatePoint {
                t_ms: w[1].0,
                rx_pps: w[1].2.saturating_sub(w[0].2) as f64 / dt,
                tx_pps: w[1].1.saturating_sub(w[0].1) as f64 / dt,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_become_rates_in_drill_time() {
        let r = json!({"series": {"period_ms": 100, "samples": [
            {"t_ms": 100, "tx": 10, "rx": 10, "missing": 0},
            {"t_ms": 200, "tx": 20, "rx": 5, "missing": 15},
            {"t_ms": 400, "tx": 40, "rx": 40, "missing": 0}]}});
        let s = report_series(&r, 50.0);
        assert_eq!(s.len(), 3);
        assert_eq!(
            s[0],
            RatePoint {
                t_ms: 50.0,
                rx_pps: 100.0,
                tx_pps: 100.0
            }
        );
        assert_eq!(s[1].rx_pps, 50.0);
        assert_eq!(s[2].t_ms, 350.0);
        assert_eq!(s[2].tx_pps, 200.0);
        let s = sampled_series(&[(0.0, 0, 0), (500.0, 100, 50), (1000.0, 200, 150)]);
        assert_eq!(
            s[0],
            RatePoint {
                t_ms: 500.0,
                rx_pps: 100.0,
                tx_pps: 200.0
            }
        );
        assert_eq!(s[1].rx_pps, 200.0);
    }

    #[test]
    fn a_step_gets_the_longest_gap_of_its_own_windows() {
        let step = |first_window| StepRecord {
            index: 1,
            kind: "wait",
            action: "wait".into(),
            start_ms: 0.0,
            end_ms: 0.0,
            result: Value::Null,
            latency_us: 0.0,
            loop_gap_us: None,
            loop_gaps: Vec::new(),
            first_window,
        };
        let win = |window, a: f64, b: f64| GapWindow {
            window,
            start_ms: 0.0,
            end_ms: 100.0,
            max_loop_gap_us: a.max(b),
            lcores: vec![
                LcoreGap {
                    lcore: 1,
                    max_loop_gap_us: a,
                    whole_window: false,
                },
                LcoreGap {
                    lcore: 2,
                    max_loop_gap_us: b,
                    whole_window: window == 5,
                },
            ],
        };
        // Step 1: windows 2-3; step 2: 4-5; step 3 (last): 6 and after. Window 1 is before.
        let mut steps = vec![step(Some(2)), step(Some(4)), step(Some(6))];
        let windows = [
            win(1, 900.0, 900.0),
            win(2, 3.0, 4.0),
            win(3, 7.0, 2.0),
            win(4, 1.0, 1.0),
            win(5, 1.0, 100.0),
            win(6, 2.0, 2.0),
            win(7, 5.0, 1.0),
        ];
        attribute_gaps(&mut steps, &windows);
        let got: Vec<Option<f64>> = steps.iter().map(|s| s.loop_gap_us).collect();
        assert_eq!(got, [Some(7.0), Some(100.0), Some(5.0)]);
        let l: Vec<(u64, f64, bool)> = steps[1]
            .loop_gaps
            .iter()
            .map(|g| (g.lcore, g.max_loop_gap_us, g.whole_window))
            .collect();
        assert_eq!(l, [(1, 1.0, false), (2, 100.0, true)]);
        // A window shorter than WHOLE_WINDOW_MIN_MS does not mark a worker as stalled.
        let mut short = vec![step(Some(5))];
        let mut w5 = windows[3..5].to_vec();
        w5[1].end_ms = w5[1].start_ms + 0.2;
        attribute_gaps(&mut short, &w5);
        assert!(short[0].loop_gaps.iter().all(|g| !g.whole_window));
        // Without windows (an l2fwd that keeps none) a step has no loop gap.
        let mut none = vec![step(None)];
        attribute_gaps(&mut none, &windows);
        assert_eq!(none[0].loop_gap_us, None);
    }

    #[test]
    fn a_loop_gaps_answer_is_a_window() {
        let a = json!({"window": 4, "open_us": 100000.0, "lcores": [
            {"lcore": 1, "max_loop_gap_us": 3.5, "whole_window": false},
            {"lcore": 2, "max_loop_gap_us": 9.0, "whole_window": false}]});
        let w = GapWindow::from_answer(&a, 1000.0).unwrap();
        assert_eq!((w.window, w.start_ms, w.end_ms), (4, 900.0, 1000.0));
        assert_eq!(w.max_loop_gap_us, 9.0);
        assert_eq!(w.lcores.len(), 2);
        assert_eq!(GapWindow::from_answer(&json!({"window": 4}), 1.0), None);
    }
}
