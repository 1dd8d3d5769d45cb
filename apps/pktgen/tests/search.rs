//! `pktgen --search ndr|pdr` against a device under test whose capacity is known by
//! construction: pktgen's RX side with `--fixture-capacity-pps C`, on a net_ring loopback,
//! drops what exceeds C packets per second (with 10 ms of buffer, each frame taken at its TX
//! stamp), as a device of that capacity would. The search must land within its resolution of
//! C (NDR) or of the rate at which C is the tolerated loss (PDR), and its report must add up.

use apps_common::testing::*;
use serde_json::Value;
use std::sync::Mutex;

const PKTGEN: &str = env!("CARGO_BIN_EXE_pktgen");

/// Each search keeps one CPU busy for its trials: one at a time.
static ONE: Mutex<()> = Mutex::new(());

/// Runs pktgen on a net_ring port: the exit status, what it printed, and its report (Null
/// when it wrote none).
fn run(name: &str, args: &[&str]) -> (Option<i32>, String, Value) {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let mut eal = eal_base();
    eal.push("--vdev=net_ring0".into());
    pktgen_run(PKTGEN, name, &eal, 100, args)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Checks what every search report must hold: each trial's counts add up and its verdict
/// follows from them, the rate found is the highest judged rate that passed, the latency
/// points are at 10/50/90% of it and lost nothing; returns the rate found.
fn check_report(r: &Value, out: &str, loss_ratio: f64) -> f64 {
    let trials = r["search"]["trials"].as_array().unwrap();
    assert!(trials.len() >= 2, "{out}");
    let mut best_pass: Option<f64> = None;
    for t in trials {
        let (sent, received, lost) = (u(&t["sent"]), u(&t["received"]), u(&t["lost"]));
        assert!(sent > 0, "{t}");
        assert_eq!(lost, sent - received, "{t}");
        let passed = t["passed"].as_bool().unwrap();
        assert_eq!(passed, lost as f64 <= loss_ratio * sent as f64, "{t}");
        if passed {
            let j = f(&t["judged_pps"]);
            best_pass = Some(best_pass.map_or(j, |b: f64| b.max(j)));
        }
    }
    let found = f(&r["rate_pps"]);
    assert_eq!(Some(found), best_pass, "{out}");
    // On the wire: frame, FCS, preamble and gap (64 + 20 bytes).
    let bps = f(&r["rate_bps"]);
    assert!((bps - found * 84.0 * 8.0).abs() < 1.0, "{bps} vs {found}");
    let points = r["latency_points"].as_array().unwrap();
    let pcts: Vec<u64> = points.iter().map(|p| u(&p["percent"])).collect();
    assert_eq!(pcts, [10, 50, 90]);
    for p in points {
        let want = found * u(&p["percent"]) as f64 / 100.0;
        assert!((f(&p["rate_pps"]) - want).abs() < 1e-6 * want, "{p}");
        assert_eq!(u(&p["lost"]), 0, "below capacity nothing is lost: {p}");
        assert_eq!(u(&p["latency_ns"]["samples"]), u(&p["received"]), "{p}");
    }
    assert_eq!(
        u(&r["stale"]),
        0,
        "a net_ring loses nothing in flight: {out}"
    );
    found
}

#[test]
fn ndr_search_finds_the_capacity_within_its_resolution() {
    let capacity = 50_000.0;
    let (code, out, r) = run(
        "search-ndr",
        &[
            "--search",
            "ndr",
            "--trial-s",
            "1",
            "--rate",
            "100Kpps",
            "--search-resolution",
            "2",
            "--fixture-capacity-pps",
            "50000",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("found: "), "{out}");
    let found = check_report(&r, &out, 0.0);
    // Within the resolution (2% of the 100 Kpps upper bound) below the capacity; above it at
    // most by what the fixture's buffer absorbs in a trial (1%).
    assert!(
        found >= capacity - 2_000.0 && found <= capacity * 1.01,
        "found {found} for a capacity of {capacity}:\n{out}"
    );
    assert_eq!(r["search"]["criterion"]["kind"], "ndr");
    assert_eq!(r["search"]["limited_by_generator"], false, "{out}");
    // The fixture dropped what exceeded the capacity in the failed trials, and those were
    // counted lost.
    assert!(u(&r["fixture_dropped"]) > 0);
}

#[test]
fn pdr_search_tolerates_its_loss() {
    // With 10% loss allowed, a device of capacity C passes up to C / 0.9.
    let capacity = 45_000.0;
    let (code, out, r) = run(
        "search-pdr",
        &[
            "--search",
            "pdr",
            "--search-loss",
            "10%",
            "--trial-s",
            "1",
            "--rate",
            "100Kpps",
            "--search-resolution",
            "2",
            "--fixture-capacity-pps",
            "45000",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    let found = check_report(&r, &out, 0.1);
    let limit = capacity / 0.9;
    assert!(
        found >= limit - 2_000.0 && found <= limit * 1.01,
        "found {found}, expected about {limit}:\n{out}"
    );
    assert!((f(&r["search"]["criterion"]["loss_ratio"]) - 0.1).abs() < 1e-12);
}

#[test]
fn a_device_that_keeps_up_is_reported_as_such() {
    let (code, out, r) = run(
        "search-keeps-up",
        &["--search", "ndr", "--trial-s", "0.5", "--rate", "20Kpps"],
    );
    assert_eq!(code, Some(0), "{out}");
    let trials = r["search"]["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 1, "the upper bound passed: nothing to search");
    assert_eq!(r["search"]["limited_by_generator"], true);
    assert!(out.contains("its limit is higher"), "{out}");
}

#[test]
fn bad_search_options_are_refused_before_anything_runs() {
    for (args, says) in [
        (&["--search", "fast"][..], "expected ndr or pdr"),
        (
            &["--search", "ndr", "--count", "10"][..],
            "leave out --count and --duration",
        ),
        (
            &["--search", "ndr", "--search-loss", "1%"][..],
            "give --search pdr with it",
        ),
        (
            &["--search", "pdr", "--search-loss", "0%"][..],
            "more than 0%",
        ),
        (&["--search", "ndr", "--trial-s", "0"][..], "trial"),
        (
            &["--search", "ndr", "--search-resolution", "0.01"][..],
            "0.1 to 50",
        ),
        (&["--search", "ndr", "--search-min", "1G"][..], "of what?"),
        (
            &["--trial-s", "1", "--count", "5"][..],
            "only applies with --search",
        ),
        (&["--search", "ndr", "--max-loss", "5"][..], "--search-loss"),
        (
            &["--search", "ndr", "--max-latency-us", "5"][..],
            "judge a single run",
        ),
        (
            &[
                "--search",
                "ndr",
                "--rxq",
                "2",
                "--fixture-capacity-pps",
                "1000",
            ][..],
            "give one TX queue and one RX queue",
        ),
        (
            &[
                "--search",
                "ndr",
                "--txq",
                "2",
                "--flows",
                "2",
                "--fixture-capacity-pps",
                "1000",
            ][..],
            "give one TX queue and one RX queue",
        ),
    ] {
        let (code, out, r) = run("search-bad", args);
        assert_eq!(code, Some(1), "{args:?}: {out}");
        assert!(out.contains(says), "{args:?} should say {says:?}:\n{out}");
        assert_eq!(r, Value::Null, "{args:?} wrote a report");
    }
}
