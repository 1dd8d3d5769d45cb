//! A drill file: what to run (`[targets]`), a timeline of steps (`[[step]]`) and the pass
//! criteria (`[criteria]`), parsed with serde into typed [`Drill`]s. Unknown keys and unknown
//! step kinds are errors that name their line (toml's error carries the span).
//!
//! ```toml
//! [targets.start]                 # or [targets.attach] with l2fwd_control and pktgen_control
//! l2fwd = ["-l", "1", "--no-huge", "--no-pci", "-m", "512", "--vdev=dma_skeleton0,lcore=0",
//!          "--", "-p", "0x1", "-T", "0", "--copy", "dma", "--copybreak", "256"]
//! pktgen = ["-l", "0-1", "--main-lcore", "1", "--no-huge", "--no-pci", "-m", "512",
//!           "--", "--rate", "20000", "--size", "64-1518"]
//!
//! [[step]]
//! after_ms = 500
//! remove = "dma_skeleton0"
//!
//! [[step]]
//! repeat = 20
//! [[step.step]]
//! add = "dma_skeleton0,lcore=0"
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// Most steps a drill may expand to (repeats multiplied out).
pub const MAX_STEPS: usize = 1_000_000;

/// A parsed, checked drill: its targets, its steps with `repeat`s expanded, its criteria.
#[derive(Debug, Clone, PartialEq)]
pub struct Drill {
    pub targets: Targets,
    pub steps: Vec<Step>,
    pub criteria: Criteria,
}

/// What the drill runs against.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Targets {
    /// The drill starts l2fwd and pktgen itself, on the two ends of a veth pair it creates in
    /// a private network namespace (and removes on every exit path).
    Start(Start),
    /// An l2fwd and a pktgen that are already running, by their control sockets.
    Attach(Attach),
}

/// `[targets.start]`: the two command lines, `EAL options -- app options`, as l2fwd and pktgen
/// take them (an app's `--config FILE` included). The drill adds the veth end (an
/// `net_af_packet0` vdev), a `--file-prefix`, `--control` and `--report` to each, and
/// `--duration` to pktgen (the drill ends the run).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    pub l2fwd: Vec<String>,
    pub pktgen: Vec<String>,
    /// The l2fwd binary (default: `l2fwd` next to the drill's own binary).
    #[serde(default)]
    pub l2fwd_bin: Option<PathBuf>,
    /// The pktgen binary (default: `pktgen` next to the drill's own binary).
    #[serde(default)]
    pub pktgen_bin: Option<PathBuf>,
}

/// `[targets.attach]`: the control sockets of a running l2fwd and pktgen.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Attach {
    pub l2fwd_control: PathBuf,
    pub pktgen_control: PathBuf,
}

/// `[criteria]`: what a drill must meet to pass. Counts are upper bounds.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Criteria {
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub corrupted: u64,
    pub mbufs_in_use_at_exit: u64,
    /// l2fwd's books balance: rx = tx + dropped + in flight.
    pub balanced: bool,
    /// The 99th percentile of the drill's hot-remove latencies, microseconds.
    pub removal_latency_p99_us: f64,
    /// The longest gap between two loop iterations of any worker, microseconds.
    pub worker_stall_us: f64,
    /// The deepest dip of the received rate during the steps, in percent of the median rate.
    pub rate_dip_pct: f64,
}

impl Default for Criteria {
    fn default() -> Self {
        Criteria {
            lost: 0,
            duplicated: 0,
            reordered: 0,
            corrupted: 0,
            mbufs_in_use_at_exit: 0,
            balanced: true,
            removal_latency_p99_us: 50_000.0,
            worker_stall_us: 100_000.0,
            rate_dip_pct: 90.0,
        }
    }
}

/// When a step starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// Milliseconds after the drill's start (the moment traffic flowed).
    At(u64),
    /// Milliseconds after the previous step ended.
    After(u64),
}

/// One step of the timeline, `repeat`s expanded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub when: When,
    pub action: Action,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Hot-remove the DMA channel named.
    Remove(String),
    /// Hot-add a DMA device by its devargs.
    Add(String),
    /// Inject a fault on a channel (l2fwd needs `--allow-fault-injection`).
    Fault { channel: String, fault: Fault },
    /// Set every worker's copybreak (bytes).
    Copybreak(u32),
    /// Set pktgen's rate (as `--rate` takes it).
    Rate(String),
    /// Do nothing for this many milliseconds.
    Wait(u64),
    /// Run a shell command (only with `--allow-exec`); it must exit 0.
    Exec(String),
}

/// A fault l2fwd can inject: the names of `dataplane::control::Fault`, which l2fwd parses
/// (kept apart here: the drill talks to l2fwd over its socket and does not link DPDK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// The engine stops completing: a surprise removal, as the worker sees it.
    Stall,
    /// The channel's next `rte_dma_stop` fails (the engine is left running).
    Stop,
    /// Clears the fault.
    None,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Stall => "stall",
            Fault::Stop => "stop",
            Fault::None => "none",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Remove(c) => write!(f, "remove {c}"),
            Action::Add(d) => write!(f, "add {d}"),
            Action::Fault { channel, fault } => write!(f, "fault {channel} {}", fault.as_str()),
            Action::Copybreak(n) => write!(f, "copybreak {n}"),
            Action::Rate(r) => write!(f, "rate {r}"),
            Action::Wait(ms) => write!(f, "wait {ms} ms"),
            Action::Exec(c) => write!(f, "exec {c:?}"),
        }
    }
}

impl Action {
    /// The step's kind, as the drill file names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Remove(_) => "remove",
            Action::Add(_) => "add",
            Action::Fault { .. } => "fault",
            Action::Copybreak(_) => "copybreak",
            Action::Rate(_) => "rate",
            Action::Wait(_) => "wait",
            Action::Exec(_) => "exec",
        }
    }
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDrill {
    targets: Targets,
    #[serde(default)]
    step: Vec<RawStep>,
    #[serde(default)]
    criteria: Criteria,
}

/// One `[[step]]` as written: a time and exactly one action.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    at_ms: Option<u64>,
    after_ms: Option<u64>,
    remove: Option<String>,
    add: Option<String>,
    /// `"CHANNEL stall"`, `"CHANNEL stop"`, `"CHANNEL none"` or `"CHANNEL errors N"`.
    fault: Option<String>,
    copybreak: Option<u32>,
    rate: Option<String>,
    wait: Option<u64>,
    exec: Option<String>,
    repeat: Option<u64>,
    /// The steps a `repeat` runs.
    step: Option<Vec<RawStep>>,
}

/// Reads and checks the drill file at `path`.
pub fn load(path: &Path) -> anyhow::Result<Drill> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read drill file {}: {e}", path.display()))?;
    parse(&text).map_err(|e| anyhow::anyhow!("invalid drill file {}: {e}", path.display()))
}

/// Parses and checks a drill file's text.
pub fn parse(text: &str) -> Result<Drill, String> {
    let raw: RawDrill = toml::from_str(text).map_err(|e| apps_common::one_line(&e.to_string()))?;
    let mut steps = Vec::new();
    expand(&raw.step, "step", false, &mut steps)?;
    if let Targets::Start(s) = &raw.targets {
        for (name, args) in [("l2fwd", &s.l2fwd), ("pktgen", &s.pktgen)] {
            if !args.iter().any(|a| a == "--") {
                return Err(format!(
                    "[targets.start] {name}: give its command line as EAL options, \"--\", app options"
                ));
            }
        }
    }
    let c = &raw.criteria;
    for (k, v) in [
        ("removal_latency_p99_us", c.removal_latency_p99_us),
        ("worker_stall_us", c.worker_stall_us),
        ("rate_dip_pct", c.rate_dip_pct),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(format!(
                "[criteria] {k} = {v}: expected a number of 0 or more"
            ));
        }
    }
    Ok(Drill {
        targets: raw.targets,
        steps,
        criteria: raw.criteria,
    })
}

/// Appends `raw`'s steps to `out`, `repeat`s multiplied out; `at` names them in errors
/// (`step 3`, `step 2.1`).
fn expand(raw: &[RawStep], at: &str, in_repeat: bool, out: &mut Vec<Step>) -> Result<(), String> {
    for (i, s) in raw.iter().enumerate() {
        let name = format!("{at} {}", i + 1);
        let when = match (s.at_ms, s.after_ms) {
            (Some(_), Some(_)) => return Err(format!("{name}: give at_ms or after_ms, not both")),
            (Some(_), None) if in_repeat => {
                return Err(format!(
                "{name}: at_ms inside a repeat would be the same moment every round: use after_ms"
            ))
            }
            (Some(t), None) => When::At(t),
            (None, t) => When::After(t.unwrap_or(0)),
        };
        if let Some(n) = s.repeat {
            if s.at_ms.is_some() || s.after_ms.is_some() {
                return Err(format!(
                    "{name}: a repeat has no time of its own: give its steps after_ms"
                ));
            }
            let actions = action_count(s);
            if actions != 0 {
                return Err(format!("{name}: a repeat holds only [[step.step]] tables"));
            }
            let inner = s.step.as_deref().unwrap_or_default();
            if inner.is_empty() {
                return Err(format!("{name}: repeat {n} has no steps ([[step.step]])"));
            }
            let mut body = Vec::new();
            expand(inner, &name, true, &mut body)?;
            if body.len().saturating_mul(n as usize) > MAX_STEPS.saturating_sub(out.len()) {
                return Err(format!(
                    "{name}: repeat {n} makes more than {MAX_STEPS} steps"
                ));
            }
            for _ in 0..n {
                out.extend(body.iter().cloned());
            }
            continue;
        }
        if s.step.is_some() {
            return Err(format!("{name}: nested steps need repeat = N"));
        }
        let action = action(s, &name)?;
        out.push(Step { when, action });
        if out.len() > MAX_STEPS {
            return Err(format!("more than {MAX_STEPS} steps"));
        }
    }
    Ok(())
}

fn action_count(s: &RawStep) -> usize {
    [
        s.remove.is_some(),
        s.add.is_some(),
        s.fault.is_some(),
        s.copybreak.is_some(),
        s.rate.is_some(),
        s.wait.is_some(),
        s.exec.is_some(),
    ]
    .iter()
    .filter(|&&b| b)
    .count()
}

fn action(s: &RawStep, name: &str) -> Result<Action, String> {
    match action_count(s) {
        0 => {
            return Err(format!(
                "{name}: no action (remove, add, fault, copybreak, rate, wait, exec or repeat)"
            ))
        }
        1 => {}
        _ => return Err(format!("{name}: one action per step")),
    }
    let nonempty = |what: &str, v: &str| -> Result<String, String> {
        let v = v.trim();
        if v.is_empty() {
            Err(format!("{name}: {what} needs a value"))
        } else {
            Ok(v.to_owned())
        }
    };
    Ok(if let Some(c) = &s.remove {
        Action::Remove(nonempty("remove", c)?)
    } else if let Some(d) = &s.add {
        Action::Add(nonempty("add", d)?)
    } else if let Some(f) = &s.fault {
        parse_fault(f).map_err(|e| format!("{name}: fault {f:?}: {e}"))?
    } else if let Some(n) = s.copybreak {
        Action::Copybreak(n)
    } else if let Some(r) = &s.rate {
        Action::Rate(nonempty("rate", r)?)
    } else if let Some(ms) = s.wait {
        Action::Wait(ms)
    } else if let Some(c) = &s.exec {
        Action::Exec(nonempty("exec", c)?)
    } else {
        unreachable!("one action counted")
    })
}

/// `"CHANNEL stall|stop|none"`; `"CHANNEL errors N"` is refused with the reason.
fn parse_fault(text: &str) -> Result<Action, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let fault = match words.as_slice() {
        [_, "stall"] => Fault::Stall,
        [_, "stop"] => Fault::Stop,
        [_, "none"] => Fault::None,
        [_, "errors", n] => {
            return Err(match n.parse::<u64>() {
                Ok(_) => "error completions cannot be injected: dma_skeleton, the engine \
                          double, completes every copy it accepts and has no error path; \
                          use \"CHANNEL stall\" for a surprise removal"
                    .to_owned(),
                Err(_) => format!("errors {n}: expected a count"),
            })
        }
        _ => return Err("expected \"CHANNEL stall\", \"CHANNEL stop\" or \"CHANNEL none\"".into()),
    };
    Ok(Action::Fault {
        channel: words[0].to_owned(),
        fault,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ATTACH: &str = "[targets.attach]\nl2fwd_control = \"/a\"\npktgen_control = \"/b\"\n";

    fn steps(text: &str) -> Result<Vec<Step>, String> {
        parse(&format!("{ATTACH}{text}")).map(|d| d.steps)
    }

    #[test]
    fn every_step_kind_parses() {
        let s = steps(
            r#"
[[step]]
at_ms = 100
remove = "dma_skeleton0"
[[step]]
after_ms = 50
add = "dma_skeleton0,lcore=0"
[[step]]
fault = "dma_skeleton0 stall"
[[step]]
fault = "dma_skeleton0 none"
[[step]]
copybreak = 512
[[step]]
rate = "10Kpps"
[[step]]
wait = 250
[[step]]
exec = "echo 1 > /sys/bus/pci/rescan"
"#,
        )
        .unwrap();
        assert_eq!(s.len(), 8);
        assert_eq!(s[0].when, When::At(100));
        assert_eq!(s[0].action, Action::Remove("dma_skeleton0".into()));
        assert_eq!(s[1].when, When::After(50));
        assert_eq!(s[2].when, When::After(0));
        assert_eq!(
            s[2].action,
            Action::Fault {
                channel: "dma_skeleton0".into(),
                fault: Fault::Stall
            }
        );
        assert_eq!(s[4].action, Action::Copybreak(512));
        assert_eq!(s[5].action, Action::Rate("10Kpps".into()));
        assert_eq!(s[6].action, Action::Wait(250));
        assert_eq!(s[7].action.kind(), "exec");
    }

    #[test]
    fn repeat_expands_in_order_and_nests() {
        let s = steps(
            r#"
[[step]]
remove = "a"
[[step]]
repeat = 3
[[step.step]]
after_ms = 10
add = "a"
[[step.step]]
repeat = 2
[[step.step.step]]
wait = 1
[[step]]
remove = "b"
"#,
        )
        .unwrap();
        let kinds: Vec<String> = s.iter().map(|s| s.action.to_string()).collect();
        let mut want = vec!["remove a".to_string()];
        for _ in 0..3 {
            want.push("add a".into());
            want.push("wait 1 ms".into());
            want.push("wait 1 ms".into());
        }
        want.push("remove b".into());
        assert_eq!(kinds, want);
        assert_eq!(s[1].when, When::After(10));
        // repeat = 0 runs nothing.
        let s = steps("[[step]]\nrepeat = 0\n[[step.step]]\nwait = 1\n").unwrap();
        assert!(s.is_empty());
    }

    #[test]
    fn bad_steps_say_what_and_where() {
        let e = steps("[[step]]\nreboot = \"now\"\n").unwrap_err();
        assert!(
            e.contains("unknown field `reboot`") && e.contains("line 5"),
            "{e}"
        );
        assert!(!e.contains('\n'));
        let e = steps("[[step]]\nremove = \"a\"\nadd = \"b\"\n").unwrap_err();
        assert_eq!(e, "step 1: one action per step");
        let e = steps("[[step]]\nafter_ms = 1\n").unwrap_err();
        assert!(e.starts_with("step 1: no action"), "{e}");
        let e = steps("[[step]]\nat_ms = 1\nafter_ms = 1\nwait = 1\n").unwrap_err();
        assert_eq!(e, "step 1: give at_ms or after_ms, not both");
        let e = steps("[[step]]\nrepeat = 2\n[[step.step]]\nat_ms = 5\nwait = 1\n").unwrap_err();
        assert!(e.starts_with("step 1 1: at_ms inside a repeat"), "{e}");
        let e = steps("[[step]]\nrepeat = 2\n").unwrap_err();
        assert!(e.contains("has no steps"), "{e}");
        let e = steps("[[step]]\nfault = \"dma_skeleton0 errors 5\"\n").unwrap_err();
        assert!(
            e.contains("cannot be injected") && e.contains("dma_skeleton"),
            "{e}"
        );
        let e = steps("[[step]]\nfault = \"dma_skeleton0 melt\"\n").unwrap_err();
        assert!(e.contains("expected \"CHANNEL stall\""), "{e}");
        let e = steps("[[step]]\nremove = \" \"\n").unwrap_err();
        assert_eq!(e, "step 1: remove needs a value");
        let e = steps("[[step]]\nrepeat = 1000001\n[[step.step]]\nwait = 1\n").unwrap_err();
        assert!(e.contains("more than 1000000 steps"), "{e}");
        let e = parse("[targets.start]\nl2fwd = []\npktgen = []\n").unwrap_err();
        assert!(e.contains("\"--\""), "{e}");
        let e = parse("this is not toml").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        let e = parse(&format!("{ATTACH}[criteria]\nlosst = 1\n")).unwrap_err();
        assert!(e.contains("unknown field `losst`"), "{e}");
        let e = parse("[targets.both]\n").unwrap_err();
        assert!(e.contains("unknown variant `both`"), "{e}");
    }

    #[test]
    fn criteria_have_defaults_and_can_be_set() {
        let d = parse(ATTACH).unwrap();
        assert_eq!(d.criteria, Criteria::default());
        assert_eq!(d.criteria.lost, 0);
        assert!(d.criteria.balanced);
        let d = parse(&format!(
            "{ATTACH}[criteria]\nlost = 5\nremoval_latency_p99_us = 1\n"
        ))
        .unwrap();
        assert_eq!(d.criteria.lost, 5);
        assert_eq!(d.criteria.removal_latency_p99_us, 1.0);
        assert_eq!(d.criteria.duplicated, 0);
        let e = parse(&format!("{ATTACH}[criteria]\nrate_dip_pct = -1\n")).unwrap_err();
        assert!(e.contains("rate_dip_pct"), "{e}");
    }

    #[test]
    fn start_targets_parse() {
        let d = parse(
            "[targets.start]\nl2fwd = [\"-l\", \"1\", \"--\", \"-p\", \"0x1\"]\npktgen = [\"--\", \"--rate\", \"1000\"]\n",
        )
        .unwrap();
        let Targets::Start(s) = d.targets else {
            panic!("not start")
        };
        assert_eq!(s.l2fwd[2], "--");
        assert!(s.l2fwd_bin.is_none());
    }
}

#[cfg(test)]
mod config_files {
    use super::*;

    /// Every drill in configs/ parses, and says what it promises.
    #[test]
    fn the_shipped_drills_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let load = |n: &str| load(&dir.join(n)).unwrap_or_else(|e| panic!("{n}: {e:#}"));
        let count =
            |d: &Drill, kind: &str| d.steps.iter().filter(|s| s.action.kind() == kind).count();
        let vdev = load("drill-vdev.toml");
        assert!(matches!(vdev.targets, Targets::Start(_)));
        assert_eq!(count(&vdev, "remove"), 20);
        assert_eq!(count(&vdev, "add"), 20);
        assert!(vdev.steps.iter().any(|s| matches!(
            s.action,
            Action::Fault {
                fault: Fault::Stall,
                ..
            }
        )));
        let soak = load("drill-soak.toml");
        assert_eq!(count(&soak, "remove"), 1000);
        for lab in ["drill-lab-ioat.toml", "drill-lab-dsa.toml"] {
            let d = load(lab);
            assert!(matches!(d.targets, Targets::Attach(_)), "{lab}");
            assert!(
                count(&d, "exec") >= 3,
                "{lab}: sysfs remove, rescan, rebind"
            );
        }
        // A removal unplugs the DSA function and DPDK forgets its devargs: each add probes it
        // again whole, with its max_queues (without, idxd would make every work queue).
        let dsa = load("drill-lab-dsa.toml");
        let adds: Vec<&str> = dsa
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Add(d) => Some(d.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(adds.len(), count(&dsa, "remove") + 1, "{adds:?}");
        assert!(
            adds.iter().all(|d| *d == "0000:6a:01.0,max_queues=2"),
            "{adds:?}"
        );
    }
}
