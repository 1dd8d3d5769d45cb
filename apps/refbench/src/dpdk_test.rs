//! DPDK's own `rcu_qsbr_perf_autotest` (in `dpdk-test`, Debian's `dpdk-dev`) next to refbench:
//! running it with a time limit, reading what it prints, and refbench's measurements of the
//! same operations through `pmd::RcuQsbr` and `dataplane::qsbr`, so both sides are TSC cycles
//! on the same box.
//!
//! What DPDK 22.11's test prints (its format strings, as in the Debian binary; each section is
//! run twice: all reader threads registered, then only some):
//!
//! ```text
//! Number of cores provided = %d
//! Perf Test: %d Readers/1 Writer('wait' in qsbr_check == true)
//! Total quiescent state updates = %li
//! Cycles per %d quiescent state updates: %li
//! Total RCU checks = %li
//! Cycles per %d checks: %li
//! Perf Test: %d Readers
//! Perf test: %d Writers ('wait' in qsbr_check == false)
//! Perf test: 1 writer, %d readers, 1 QSBR variable, 1 QSBR Query, Blocking QSBR Check
//! Following numbers include calls to rte_hash functions
//! Cycles per 1 quiescent state update(online/update/offline): %li
//! Cycles per 1 check(start, check): %li
//! Perf test: 1 writer, %d readers, 1 QSBR variable, 1 QSBR Query, Non-Blocking QSBR check
//! ```
//!
//! The first section alone is 20 million grace periods, each a hand-off between a reader and
//! the writer: on a box whose cores are shared (fewer cores than the test's three lcores, or
//! other load) it can take far longer than the rest, hence the time limit.

use anyhow::{bail, Context, Result};
use dataplane::qsbr;
use serde::Serialize;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The autotest's name in dpdk-test.
pub const AUTOTEST: &str = "rcu_qsbr_perf_autotest";

/// One section of the autotest's output: its title and its numbers, each scaled to one
/// operation (`Cycles per 1000 checks: 160508` is `checks` = 160.508).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    /// `all registered` or `some registered` (the test runs its sections under both).
    pub phase: String,
    pub title: String,
    /// Cycles per one operation, by what the line calls the operation.
    pub cycles: Vec<(String, f64)>,
    /// The `Total ... = N` counts, by what they count.
    pub totals: Vec<(String, u64)>,
}

impl Section {
    /// Cycles per operation for the first line whose operation starts with `what`.
    pub fn cycles_for(&self, what: &str) -> Option<f64> {
        self.cycles
            .iter()
            .find(|(k, _)| k.starts_with(what))
            .map(|(_, v)| *v)
    }
}

/// What the autotest printed, parsed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Autotest {
    /// `Number of cores provided`: the worker lcores the test used.
    pub workers: Option<u32>,
    pub sections: Vec<Section>,
    /// `Test OK`, `Test Failed` or `Test Skipped`, when it got that far.
    pub status: Option<String>,
    /// A line saying why it did not run (e.g. too few lcores), if it printed one.
    pub note: Option<String>,
}

impl Autotest {
    /// The first section (of the `all registered` phase) whose title starts with `prefix`,
    /// compared without case.
    pub fn section(&self, prefix: &str) -> Option<&Section> {
        let p = prefix.to_ascii_lowercase();
        self.sections
            .iter()
            .find(|s| s.title.to_ascii_lowercase().starts_with(&p))
    }
}

/// Parses dpdk-test's output of `rcu_qsbr_perf_autotest` (any prefix of it: a run cut short
/// by the time limit yields the sections it finished).
pub fn parse(text: &str) -> Autotest {
    let mut out = Autotest::default();
    let mut phase = String::from("all registered");
    for raw in text.lines() {
        // dpdk-test's prompt may precede the first line of output.
        let line = raw.trim().trim_start_matches("RTE>>").trim();
        let lower = line.to_ascii_lowercase();
        if let Some(n) = line.strip_prefix("Number of cores provided = ") {
            out.workers = n.trim().parse().ok();
        } else if lower.starts_with("perf test with all reader") {
            phase = "all registered".into();
        } else if lower.starts_with("perf test with some of reader") {
            phase = "some registered".into();
        } else if lower.starts_with("perf test:") {
            out.sections.push(Section {
                phase: phase.clone(),
                title: line["perf test:".len()..].trim().to_owned(),
                cycles: Vec::new(),
                totals: Vec::new(),
            });
        } else if let Some(rest) = line.strip_prefix("Cycles per ") {
            // `Cycles per N what: V`, N ops taking V cycles.
            let Some((head, value)) = rest.rsplit_once(':') else {
                continue;
            };
            let Some((n, what)) = head.split_once(' ') else {
                continue;
            };
            if let (Ok(n), Ok(v), Some(s)) = (
                n.parse::<f64>(),
                value.trim().parse::<f64>(),
                out.sections.last_mut(),
            ) {
                if n > 0.0 {
                    s.cycles.push((what.trim().to_owned(), v / n));
                }
            }
        } else if let Some(rest) = line.strip_prefix("Total ") {
            if let (Some((what, n)), Some(s)) = (rest.split_once(" = "), out.sections.last_mut()) {
                if let Ok(n) = n.trim().parse() {
                    s.totals.push((what.trim().to_owned(), n));
                }
            }
        } else if matches!(line, "Test OK" | "Test Failed" | "Test Skipped") {
            out.status = Some(line.to_owned());
        } else if lower.starts_with("not enough cores") {
            out.note = Some(line.to_owned());
        }
    }
    out
}

/// The `--lcores` map for the autotest: `max(3, cores)` lcores (it needs 3: a main lcore and
/// two workers) mapped round-robin onto the cores, so on a 2-core box the main lcore and the
/// second worker share a core.
pub fn lcore_map(cores: &[usize]) -> String {
    let cores: Vec<usize> = if cores.is_empty() {
        vec![0]
    } else {
        cores.to_vec()
    };
    (0..cores.len().max(3))
        .map(|l| format!("{l}@{}", cores[l % cores.len()]))
        .collect::<Vec<_>>()
        .join(",")
}

/// A run of the autotest: what it printed (parsed), whether it finished within the limit.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub command: String,
    pub seconds: f64,
    pub timed_out: bool,
    pub output: Autotest,
}

/// Runs `dpdk-test` (the binary `bin`) with `rcu_qsbr_perf_autotest` on stdin, at most
/// `limit`; its output lines go to `progress` as they come. A run cut short is killed and
/// yields the sections it finished (its stdout is line-buffered through `stdbuf` where there
/// is one, so that they are not lost in a pipe buffer).
pub fn run(bin: &str, cores: &[usize], limit: Duration, progress: impl Fn(&str)) -> Result<Run> {
    let prefix = format!("refbench-dpdk-test-{}", std::process::id());
    let eal = [
        "--no-huge".to_owned(),
        "--no-pci".to_owned(),
        "-m".to_owned(),
        "256".to_owned(),
        "--lcores".to_owned(),
        lcore_map(cores),
        format!("--file-prefix={prefix}"),
        "--log-level=warning".to_owned(),
    ];
    let stdbuf = Command::new("stdbuf")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let mut cmd = if stdbuf {
        let mut c = Command::new("stdbuf");
        c.arg("-oL").arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(&eal)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let command = format!("echo {AUTOTEST} | {bin} {}", eal.join(" "));
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run {bin} (Debian's dpdk-dev package has it)"))?;
    // The test's name, then end of input: dpdk-test runs it and exits.
    let mut stdin = child.stdin.take().context("dpdk-test's stdin")?;
    writeln!(stdin, "{AUTOTEST}").context("writing to dpdk-test")?;
    drop(stdin);
    let text = Arc::new(Mutex::new(String::new()));
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|pipe| {
        let text = Arc::clone(&text);
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let h = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(|l| l.ok()) {
                let _ = tx.send(line.clone());
                let mut t = text.lock().unwrap_or_else(|e| e.into_inner());
                t.push_str(&line);
                t.push('\n');
            }
        });
        (h, rx)
    })
    .collect();
    let started = Instant::now();
    let mut timed_out = false;
    loop {
        for (_, rx) in &readers {
            for line in rx.try_iter() {
                progress(&line);
            }
        }
        if child.try_wait()?.is_some() {
            break;
        }
        if started.elapsed() >= limit {
            let _ = child.kill();
            let _ = child.wait();
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for (h, rx) in readers {
        let _ = h.join();
        for line in rx.try_iter() {
            progress(&line);
        }
    }
    // Its runtime directory (ours alone: the prefix has our pid) would outlive it.
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(std::path::PathBuf::from);
    for base in [Some("/var/run".into()), runtime].into_iter().flatten() {
        let _ = std::fs::remove_dir_all(base.join("dpdk").join(&prefix));
    }
    let text = text.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(Run {
        command,
        seconds: started.elapsed().as_secs_f64(),
        timed_out,
        output: parse(&text),
    })
}

// ---------------------------------------------------------------------------------------------
// refbench's side: the same operations, timed with the TSC.

/// Cycles per operation of one timed run.
#[derive(Debug, Clone, Copy)]
pub struct OpCost {
    pub ops: u64,
    pub cycles: u64,
}

impl OpCost {
    pub fn per_op(&self) -> f64 {
        self.cycles as f64 / self.ops.max(1) as f64
    }

    fn add(&mut self, o: OpCost) {
        self.ops += o.ops;
        self.cycles += o.cycles;
    }
}

/// Runs `op` in a loop on this thread until `stop`, timing it with the TSC (the stop flag is
/// read once per 256 operations).
fn timed_loop(stop: &AtomicBool, mut op: impl FnMut()) -> OpCost {
    let t0 = pmd::rdtsc();
    let mut ops = 0u64;
    // Relaxed: a stop flag.
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..256 {
            op();
        }
        ops += 256;
    }
    OpCost {
        ops,
        cycles: pmd::rdtsc().saturating_sub(t0),
    }
}

fn pin(cores: &[usize], i: usize) {
    if !cores.is_empty() {
        core_affinity::set_for_current(core_affinity::CoreId {
            id: cores[i % cores.len()],
        });
    }
}

/// DPDK's `Perf Test: N Readers`: `readers` threads report quiescent states in a loop, no
/// writer; cycles per report. Thread `i` runs on core `i + 1` (mod the cores), as worker lcore
/// `i + 1` does in the autotest.
pub fn rte_readers(readers: usize, cores: &[usize], dur: Duration) -> Result<OpCost> {
    let rcu = pmd::RcuQsbr::new(readers as u32)?;
    let stop = AtomicBool::new(false);
    let total = std::thread::scope(|s| {
        let hs: Vec<_> = (0..readers)
            .map(|i| {
                let (rcu, stop) = (&rcu, &stop);
                s.spawn(move || {
                    pin(cores, i + 1);
                    let _ = rcu.register_online(i as u32);
                    let c = timed_loop(stop, || rcu.quiescent(i as u32));
                    let _ = rcu.offline_unregister(i as u32);
                    c
                })
            })
            .collect();
        std::thread::sleep(dur);
        stop.store(true, Ordering::Relaxed);
        let mut total = OpCost { ops: 0, cycles: 0 };
        for h in hs {
            total.add(h.join().expect("reader"));
        }
        total
    });
    Ok(total)
}

/// The data plane's QSBR doing what a reader does per burst: `poll` (one acquire load of its
/// slot), with no writer; cycles per poll.
pub fn qsbr_readers(readers: usize, cores: &[usize], dur: Duration) -> OpCost {
    let lcores: Vec<pmd::LcoreId> = (0..readers as u32).map(pmd::LcoreId::new).collect();
    let q = qsbr::Qsbr::new(&lcores, &vec![vec![qsbr::ChannelId::new(0, 0)]; readers]);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..readers)
            .map(|i| {
                let (q, stop) = (&q, &stop);
                s.spawn(move || {
                    pin(cores, i + 1);
                    let mut r = q.reader(i);
                    let c = timed_loop(stop, || {
                        std::hint::black_box(r.poll());
                    });
                    r.offline();
                    c
                })
            })
            .collect();
        std::thread::sleep(dur);
        stop.store(true, Ordering::Relaxed);
        let mut total = OpCost { ops: 0, cycles: 0 };
        for h in hs {
            total.add(h.join().expect("reader"));
        }
        total
    })
}

/// DPDK's `Perf Test: N Readers/1 Writer('wait' in qsbr_check == true)`: `readers` threads
/// report quiescent states while a writer starts a grace period and waits for it
/// (`rte_rcu_qsbr_start`, then a blocking `rte_rcu_qsbr_check`), for `dur`. Returns (cycles
/// per report, cycles per grace period). The writer runs on core `readers + 1` (mod the cores),
/// as the autotest's writer lcore does.
pub fn rte_reader_writer(
    readers: usize,
    cores: &[usize],
    dur: Duration,
) -> Result<(OpCost, OpCost)> {
    let rcu = pmd::RcuQsbr::new(readers as u32)?;
    let stop = AtomicBool::new(false);
    let registered = std::sync::Barrier::new(readers + 1);
    Ok(std::thread::scope(|s| {
        let hs: Vec<_> = (0..readers)
            .map(|i| {
                let (rcu, stop, registered) = (&rcu, &stop, &registered);
                s.spawn(move || {
                    pin(cores, i + 1);
                    let _ = rcu.register_online(i as u32);
                    registered.wait();
                    let c = timed_loop(stop, || rcu.quiescent(i as u32));
                    let _ = rcu.offline_unregister(i as u32);
                    c
                })
            })
            .collect();
        let writer = {
            let (rcu, registered) = (&rcu, &registered);
            s.spawn(move || {
                pin(cores, readers + 1);
                registered.wait();
                let wstop = AtomicBool::new(false);
                let started = Instant::now();
                let mut c = OpCost { ops: 0, cycles: 0 };
                while !wstop.load(Ordering::Relaxed) {
                    let t0 = pmd::rdtsc();
                    for _ in 0..64 {
                        let token = rcu.start();
                        rcu.check(token, true);
                    }
                    c.add(OpCost {
                        ops: 64,
                        cycles: pmd::rdtsc().saturating_sub(t0),
                    });
                    if started.elapsed() >= dur {
                        wstop.store(true, Ordering::Relaxed);
                    }
                }
                c
            })
        };
        let w = writer.join().expect("writer");
        stop.store(true, Ordering::Relaxed);
        let mut r = OpCost { ops: 0, cycles: 0 };
        for h in hs {
            r.add(h.join().expect("reader"));
        }
        (r, w)
    }))
}

/// The data plane's QSBR in the same shape: readers poll their slots (and adopt a new
/// generation) while a writer publishes to every reader and waits until each has adopted it.
/// Returns (cycles per poll, cycles per grace period).
pub fn qsbr_reader_writer(readers: usize, cores: &[usize], dur: Duration) -> (OpCost, OpCost) {
    let lcores: Vec<pmd::LcoreId> = (0..readers as u32).map(pmd::LcoreId::new).collect();
    let chan = [qsbr::ChannelId::new(0, 0)];
    let q = qsbr::Qsbr::new(&lcores, &vec![chan.to_vec(); readers]);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..readers)
            .map(|i| {
                let (q, stop) = (&q, &stop);
                s.spawn(move || {
                    pin(cores, i + 1);
                    let mut r = q.reader(i);
                    let c = timed_loop(stop, || {
                        let (a, changed) = r.poll();
                        let generation = a.generation;
                        if changed {
                            r.adopt(generation);
                        }
                    });
                    r.offline();
                    c
                })
            })
            .collect();
        let writer = {
            let q = &q;
            s.spawn(move || {
                pin(cores, readers + 1);
                let started = Instant::now();
                let mut c = OpCost { ops: 0, cycles: 0 };
                while started.elapsed() < dur {
                    let t0 = pmd::rdtsc();
                    for _ in 0..64 {
                        let gens: Vec<dataplane::qsbr::Generation> =
                            (0..q.workers()).map(|w| q.publish(w, &chan)).collect();
                        for (w, g) in gens.into_iter().enumerate() {
                            while !q.quiescent(w, g) {
                                std::hint::spin_loop();
                            }
                        }
                    }
                    c.add(OpCost {
                        ops: 64,
                        cycles: pmd::rdtsc().saturating_sub(t0),
                    });
                }
                c
            })
        };
        let w = writer.join().expect("writer");
        stop.store(true, Ordering::Relaxed);
        let mut r = OpCost { ops: 0, cycles: 0 };
        for h in hs {
            r.add(h.join().expect("reader"));
        }
        (r, w)
    })
}

/// DPDK's `Perf test: N Writers ('wait' in qsbr_check == false)`: `writers` threads call a
/// non-blocking `rte_rcu_qsbr_check` with no reader registered; cycles per check.
pub fn rte_writers(writers: usize, cores: &[usize], dur: Duration) -> Result<OpCost> {
    let rcu = pmd::RcuQsbr::new(pmd::RcuQsbr::MAX_THREADS.min(128))?;
    let stop = AtomicBool::new(false);
    Ok(std::thread::scope(|s| {
        let hs: Vec<_> = (0..writers)
            .map(|i| {
                let (rcu, stop) = (&rcu, &stop);
                s.spawn(move || {
                    pin(cores, i + 1);
                    timed_loop(stop, || {
                        std::hint::black_box(rcu.check(0, false));
                    })
                })
            })
            .collect();
        std::thread::sleep(dur);
        stop.store(true, Ordering::Relaxed);
        let mut total = OpCost { ops: 0, cycles: 0 };
        for h in hs {
            total.add(h.join().expect("writer"));
        }
        total
    }))
}

/// Checks that a section list came from the autotest at all (for a clear error when the
/// binary is something else).
pub fn check_ran(run: &Run) -> Result<()> {
    if run.output.sections.is_empty() && run.output.workers.is_none() {
        if let Some(n) = &run.output.note {
            bail!("{AUTOTEST} did not run: {n}");
        }
        if !run.timed_out {
            bail!("{} printed nothing of {AUTOTEST}", run.command);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dpdk-test 22.11 (Debian 22.11.11) on this project's 2-vCPU VM under other load,
    /// `--lcores 0@0,1@1,2@0`, as captured when the time limit stopped it in its first section.
    const SAMPLE: &str = include_str!("../tests/data/rcu_qsbr_perf_autotest.txt");

    #[test]
    fn parses_the_captured_output() {
        let a = parse(SAMPLE);
        assert_eq!(a.workers, Some(2));
        assert_eq!(a.sections.len(), 1, "{a:?}");
        let s = &a.sections[0];
        assert_eq!(s.phase, "all registered");
        assert_eq!(s.title, "1 Readers/1 Writer('wait' in qsbr_check == true)");
        assert!(a.section("1 Readers/1 Writer").is_some());
        // Stopped before its numbers: none made up, no status.
        assert!(s.cycles.is_empty() && s.totals.is_empty());
        assert_eq!(a.status, None);
    }

    /// Every line shape, built from the binary's format strings (numbers filled in).
    #[test]
    fn parses_every_shape_of_line() {
        let text = "RTE>>rcu_qsbr_perf_autotest\nNumber of cores provided = 4\n\
            Perf test with all reader threads registered\n\
            --------------------------------------------\n\n\
            Perf Test: 3 Readers/1 Writer('wait' in qsbr_check == true)\n\
            Total quiescent state updates = 5000\nCycles per 1000 quiescent state updates: 2500\n\
            Total RCU checks = 20000000\nCycles per 1000 checks: 150000\n\n\
            Perf Test: 4 Readers\nTotal quiescent state updates = 400000000\n\
            Cycles per 1000 quiescent state updates: 1200\n\n\
            Perf test: 4 Writers ('wait' in qsbr_check == false)\nTotal RCU checks = 80000000\n\
            Cycles per 1000 checks: 9000\n\n\
            Perf test: 1 writer, 4 readers, 1 QSBR variable, 1 QSBR Query, Blocking QSBR Check\n\
            Following numbers include calls to rte_hash functions\n\
            Cycles per 1 quiescent state update(online/update/offline): 2118424\n\
            Cycles per 1 check(start, check): 2340161\n\n\
            Perf test with some of reader threads registered\n\
            ------------------------------------------------\n\n\
            Perf Test: 3 Readers/1 Writer('wait' in qsbr_check == true)\n\
            Cycles per 1000 checks: 99000\nTest OK\nRTE>>";
        let a = parse(text);
        assert_eq!(a.workers, Some(4));
        assert_eq!(a.status.as_deref(), Some("Test OK"));
        assert_eq!(a.sections.len(), 5);
        let titles: Vec<&str> = a.sections.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles[1], "4 Readers");
        assert_eq!(titles[2], "4 Writers ('wait' in qsbr_check == false)");
        assert_eq!(
            a.sections[0].cycles_for("quiescent state updates"),
            Some(2.5)
        );
        assert_eq!(a.sections[0].cycles_for("checks"), Some(150.0));
        assert_eq!(a.sections[2].cycles_for("checks"), Some(9.0));
        let hash = &a.sections[3];
        assert_eq!(
            hash.cycles_for("quiescent state update(online"),
            Some(2118424.0)
        );
        assert_eq!(hash.cycles_for("check(start"), Some(2340161.0));
        // The second phase is told apart; `section` finds the first phase's.
        assert_eq!(a.sections[4].phase, "some registered");
        assert_eq!(
            a.section("3 Readers/1 Writer")
                .unwrap()
                .cycles_for("checks"),
            Some(150.0)
        );
        // A run stopped mid-section keeps what it had.
        let cut = parse(&text[..text.find("Perf Test: 4 Readers").unwrap()]);
        assert_eq!(cut.sections.len(), 1);
        assert_eq!(cut.status, None);
        // Too few lcores: a note, no sections.
        let skip = parse(
            "Not enough cores for rcu_qsbr_perf_autotest, expecting at least 3\nTest Skipped\n",
        );
        assert!(skip.note.is_some() && skip.sections.is_empty());
        assert_eq!(skip.status.as_deref(), Some("Test Skipped"));
    }

    #[test]
    fn lcore_maps() {
        assert_eq!(lcore_map(&[0, 1]), "0@0,1@1,2@0");
        assert_eq!(lcore_map(&[]), "0@0,1@0,2@0");
        assert_eq!(lcore_map(&[2, 3, 5, 7]), "0@2,1@3,2@5,3@7");
    }

    #[test]
    fn mirrors_measure_something() {
        let d = Duration::from_millis(30);
        let c = rte_readers(1, &[], d).unwrap();
        assert!(c.ops > 0 && c.per_op() > 0.0);
        let (r, w) = rte_reader_writer(1, &[], d).unwrap();
        assert!(r.ops > 0 && w.ops > 0);
        let c = rte_writers(1, &[], d).unwrap();
        assert!(c.ops > 0);
        assert!(qsbr_readers(1, &[], d).ops > 0);
        let (r, w) = qsbr_reader_writer(1, &[], d);
        assert!(r.ops > 0 && w.ops > 0);
    }
}
