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
            "0.2",
            "--rounds",
            "1",
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
        "arc_swap",
    ];
    for s in schemes {
        for (level, readers) in [("micro", 1), ("micro", 2), ("forwarding", 1)] {
            let row = rows
                .iter()
                .find(|x| x["scheme"] == s && x["level"] == level && x["readers"] == readers)
                .unwrap_or_else(|| panic!("no {level} row for {s} at {readers} readers"));
            assert!(row["ns_per_touch"].as_f64().unwrap() > 0.0, "{row}");
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
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(
        svg.starts_with("<svg") && schemes.iter().all(|s| svg.contains(s)),
        "the plot names every scheme"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ns/touch") && stdout.contains("qsbr"));
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
