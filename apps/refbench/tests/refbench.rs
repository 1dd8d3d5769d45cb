//! refbench runs every scheme at both levels and reports what it measured; protected schemes
//! never touch a retired channel. (How fast each is, is the benchmark's to show, not a test's.)

use apps_common::testing::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_refbench");

#[test]
fn every_scheme_at_both_levels() {
    let dir = scratch("refbench");
    let report = dir.join("r.json");
    let plot = dir.join("p.svg");
    let mut eal = eal_base();
    eal.push("--vdev=net_null0".into());
    eal.push("--vdev=net_null1".into());
    let out = run_app(
        BIN,
        &eal,
        &[
            "--readers",
            "1,2",
            "--duration",
            "0.1",
            "--rounds",
            "2",
            "--interval-us",
            "500",
            "--report",
            report.to_str().unwrap(),
            "--plot",
            plot.to_str().unwrap(),
        ],
    );
    assert_success("refbench", &out);
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let rows = r["results"].as_array().unwrap();
    let schemes = [
        "none",
        "atomic",
        "percpu",
        "qsbr",
        "rte_qsbr",
        "crossbeam_epoch",
        "crossbeam_epoch_burst",
        "arc_swap",
    ];
    let cores = r["cores"].as_u64().unwrap() as usize;
    let tsc_hz = r["tsc_hz"].as_f64().unwrap();
    assert!(tsc_hz > 0.0, "{r}");
    for s in schemes {
        for (level, readers) in [("micro", 1), ("micro", 2), ("forwarding", 1)] {
            let row = rows
                .iter()
                .find(|x| x["scheme"] == s && x["level"] == level && x["readers"] == readers)
                .unwrap_or_else(|| panic!("no {level} row for {s} at {readers} readers"));
            assert!(row["ns_per_touch"].as_f64().unwrap() > 0.0, "{row}");
            // Cycles: the mean of the rounds' samples, an interval around it, ns = cycles / Hz.
            let c = &row["cycles_per_touch"];
            let samples: Vec<f64> = row["cycles_samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(samples.len(), 2, "{row}");
            assert_eq!(c["n"], 2, "{row}");
            let mean = c["mean"].as_f64().unwrap();
            assert!(
                (mean - (samples[0] + samples[1]) / 2.0).abs() <= 1e-9 * mean,
                "{row}"
            );
            assert!(c["half"].as_f64().unwrap() >= 0.0, "{row}");
            let ns = row["ns_per_touch"].as_f64().unwrap();
            assert!((ns - mean * 1e9 / tsc_hz).abs() <= 1e-9 * ns, "{row}");
            assert_eq!(row["within_noise_of_none"].is_null(), s == "none", "{row}");
            if level == "micro" {
                assert_eq!(row["oversubscribed"], readers + 1 > cores, "{row}");
            }
            assert!(
                row["replacements"].as_u64().unwrap() > 0,
                "the channel was replaced: {row}"
            );
            if s != "none" {
                assert_eq!(row["violations"], 0, "{row}");
            }
            if level == "forwarding" {
                assert!(row["mpps"].as_f64().unwrap() > 0.0, "{row}");
            }
        }
    }
    // Grace periods: every protected scheme at each reader count, percentiles in order.
    let graces = r["grace_periods"].as_array().unwrap();
    for s in schemes.iter().filter(|s| **s != "none") {
        for readers in [1, 2] {
            let g = graces
                .iter()
                .find(|g| g["scheme"] == *s && g["readers"] == readers)
                .unwrap_or_else(|| panic!("no grace periods for {s} at {readers} readers"));
            let f = |k: &str| g[k].as_f64().unwrap();
            assert!(f("count") >= 1.0, "{g}");
            assert!(f("p50_cycles") <= f("p99_cycles") && f("p99_cycles") <= f("max_cycles"));
            assert!(
                f("p50_us") <= f("p99_us") && f("p99_us") <= f("max_us"),
                "{g}"
            );
            assert!(f("p50_cycles") >= 1.0, "{g}");
        }
    }
    assert!(
        !graces.iter().any(|g| g["scheme"] == "none"),
        "none waits for nothing"
    );
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(
        svg.starts_with("<svg") && schemes.iter().all(|s| svg.contains(s)),
        "the plot names every scheme"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ns/touch") && stdout.contains("qsbr"));
    assert!(stdout.contains("cycles/touch") && stdout.contains("Grace-period latency"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_options() {
    for (args, needle) in [
        (&["--schemes", "none,rcu"][..], "unknown scheme \"rcu\""),
        (&["--readers", "0"][..], "invalid --readers 0"),
        (&["--level", "macro"][..], "invalid level"),
        (&["--duration", "0"][..], "invalid --duration 0"),
    ] {
        let out = std::process::Command::new(BIN).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(needle) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn out_of_range_options_are_refused_at_once() {
    // Each would have run (a million reader threads, a NaN duration's panic, nothing at all).
    for (args, what) in [
        (
            &["--readers", "1,999999"][..],
            "invalid --readers 999999: expected 1..=256 reader threads",
        ),
        (&["--readers", "0"][..], "invalid --readers 0"),
        (&["--duration", "nan"][..], "invalid --duration NaN"),
        (&["--rounds", "0"][..], "invalid --rounds 0"),
        (&["--interval-us", "0"][..], "invalid --interval-us 0"),
    ] {
        let out = run_app(BIN, &eal_base(), args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        let line = err.lines().last().unwrap_or_default();
        assert!(
            line.starts_with("refbench: error: ") && line.contains(what),
            "{args:?}: {err}"
        );
    }
}

/// Runs refbench with `args` (no EAL part) and expects exit 1 with one line on stderr,
/// `refbench: error: ...` containing `needle`, and nothing measured.
fn expect_one_line_error(args: &[&str], needle: &str) {
    let out = std::process::Command::new(BIN).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: one line:\n{err}");
    assert!(
        lines[0].starts_with("refbench: error: ") && lines[0].contains(needle),
        "{args:?}: {needle:?} in {err}"
    );
    assert!(out.stdout.is_empty(), "{args:?} measured something");
}

/// Tracker: `--lcores` (a count of reader threads) clashed with EAL's `--lcores`. It is
/// `--readers` now; the old name says where to go.
#[test]
fn lcores_is_eal_s_and_readers_is_ours() {
    expect_one_line_error(
        &["--lcores", "1,2"],
        "refbench has no --lcores: give --readers N,... for the counts of reader threads \
         (EAL's --lcores, the lcore map, goes before --)",
    );
    expect_one_line_error(&["--lcores"], "give --readers");
}

/// Tracker: a mistyped option is one `refbench: error:` line with clap's tip and exit 1 (it
/// was clap's usage text and exit 2); outputs that cannot be written are refused before the
/// measurements, not after them.
#[test]
fn usage_errors_and_outputs_are_one_line_at_once() {
    expect_one_line_error(
        &["--reader", "1"],
        "unexpected argument '--reader' found (tip: a similar argument exists: '--readers'; \
         see --help)",
    );
    expect_one_line_error(
        &["--duration", "x"],
        "invalid value 'x' for '--duration <DURATION>'",
    );
    expect_one_line_error(
        &["--report", "/nonexistent/dir/r.json"],
        "--report /nonexistent/dir/r.json: the directory /nonexistent/dir does not exist",
    );
    expect_one_line_error(
        &["--plot", "/nonexistent/p.svg"],
        "--plot /nonexistent/p.svg",
    );
    let help = std::process::Command::new(BIN)
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("--readers") && !text.contains("--lcores"),
        "{text}"
    );
}

/// `refbench ... | head -1`: a reader that goes away does not abort the run (no SIGPIPE death,
/// no panic); it finishes and writes its report.
#[test]
fn a_closed_stdout_does_not_abort_the_run() {
    let dir = std::env::temp_dir().join(format!("refbench-closed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("r.json");
    let mut child = std::process::Command::new(BIN)
        .args([
            "--",
            "--readers",
            "1",
            "--duration",
            "0.05",
            "--rounds",
            "1",
        ])
        .args(["--level", "micro", "--schemes", "none,qsbr", "--report"])
        .arg(&report)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["results"].as_array().map(Vec::len), Some(2), "{r}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stand-in for dpdk-test: prints `body` (after the prompt, as dpdk-test does), then sleeps
/// `sleep` seconds.
fn fake_dpdk_test(dir: &std::path::Path, name: &str, body: &str, sleep: u32) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let script = format!(
        "#!/bin/sh\nread test\necho \"RTE>>$test\"\ncat <<'EOF'\n{body}EOF\nexec sleep {sleep}\n"
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `--dpdk-autotest`: dpdk-test's numbers and refbench's timing of the same operations side by
/// side, in the output and the report; a dpdk-test that overruns `--dpdk-timeout` is stopped
/// and what it finished is kept. (dpdk-test itself is stood in for: its first section alone
/// takes minutes on a shared box.)
#[test]
fn dpdk_autotest_side_by_side() {
    let dir = scratch("refbench-dpdk");
    // The format of DPDK 22.11's output (numbers made up for the stand-in).
    let full = "Number of cores provided = 2\nPerf test with all reader threads registered\n\
        --------------------------------------------\n\n\
        Perf Test: 1 Readers/1 Writer('wait' in qsbr_check == true)\n\
        Total quiescent state updates = 123456789\nCycles per 1000 quiescent state updates: 2500\n\
        Total RCU checks = 20000000\nCycles per 1000 checks: 150000\n\n\
        Perf Test: 2 Readers\nTotal quiescent state updates = 200000000\n\
        Cycles per 1000 quiescent state updates: 1200\n\n\
        Perf test: 2 Writers ('wait' in qsbr_check == false)\nTotal RCU checks = 40000000\n\
        Cycles per 1000 checks: 9000\nTest OK\n";
    let cut = &full[..full.find("Perf Test: 2 Readers").unwrap()];
    for (name, body, sleep, timed_out) in [("full.sh", full, 0, false), ("slow.sh", cut, 30, true)]
    {
        let bin = fake_dpdk_test(&dir, name, body, sleep);
        let report = dir.join(format!("{name}.json"));
        let started = std::time::Instant::now();
        let out = run_app(
            BIN,
            &eal_base(),
            &[
                "--level",
                "micro",
                "--schemes",
                "none,rte_qsbr",
                "--readers",
                "1",
                "--duration",
                "0.05",
                "--rounds",
                "2",
                "--dpdk-autotest",
                "--dpdk-test",
                &bin,
                "--dpdk-timeout",
                "2",
                "--report",
                report.to_str().unwrap(),
            ],
        );
        assert_success("refbench --dpdk-autotest", &out);
        assert!(started.elapsed().as_secs() < 25, "the stand-in was stopped");
        let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let c = &r["dpdk_autotest"];
        assert_eq!(c["dpdk_test"]["timed_out"], timed_out, "{c}");
        assert_eq!(c["workers"], 2, "{c}");
        let rows = c["rows"].as_array().unwrap();
        let row = |op: &str| {
            rows.iter()
                .find(|x| x["operation"].as_str().unwrap().starts_with(op))
                .unwrap_or_else(|| panic!("no row {op}: {c}"))
        };
        // dpdk-test's cycles per 1000 scaled to one operation.
        let gp = row("grace period");
        assert_eq!(gp["dpdk_test"], 150.0, "{gp}");
        assert_eq!(row("quiescent-state report, 1 reader")["dpdk_test"], 2.5);
        let ro = row("quiescent-state report, 2 readers");
        if timed_out {
            assert!(ro["dpdk_test"].is_null(), "not reached: {ro}");
        } else {
            assert_eq!(ro["dpdk_test"], 1.2);
            assert_eq!(row("non-blocking check")["dpdk_test"], 9.0);
            assert_eq!(c["dpdk_test"]["output"]["status"], "Test OK");
        }
        // refbench's side is measured either way.
        for op in ["quiescent-state report, 2", "grace period", "non-blocking"] {
            let m = &row(op)["refbench_rte_qsbr"];
            assert!(
                m["mean"].as_f64().unwrap() > 0.0 && m["n"] == 2,
                "{op}: {m}"
            );
        }
        assert!(
            row("grace period")["refbench_qsbr"]["mean"]
                .as_f64()
                .unwrap()
                > 0.0
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("dpdk-test") && stdout.contains("refbench rte_qsbr"));
        assert_eq!(stdout.contains("not reached"), timed_out, "{stdout}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
