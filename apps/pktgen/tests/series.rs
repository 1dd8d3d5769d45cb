//! The report's time series (`--sample-ms`), from the real pktgen on a net_ring loopback: its
//! samples add up to the run's totals, come one period apart, and end with nothing missing.

use apps_common::testing::*;
use serde_json::Value;
use std::process::Command;

const PKTGEN: &str = env!("CARGO_BIN_EXE_pktgen");

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not an unsigned integer: {v}"))
}

/// Runs pktgen on a net_ring port with `args`; its report.
fn ring_run(name: &str, args: &[&str]) -> Value {
    let dir = scratch(name);
    let report = dir.join("report.json");
    let mut eal = eal_base();
    eal.push("--vdev=net_ring0".into());
    let o = Command::new(PKTGEN)
        .args(&eal)
        .arg("--")
        .args(["-T", "0", "--drain-ms", "50", "--report"])
        .arg(&report)
        .args(args)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let r = serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_default())
        .unwrap_or_else(|e| panic!("no report ({e}):\n{out}"));
    let _ = std::fs::remove_dir_all(&dir);
    r
}

#[test]
fn the_time_series_adds_up_to_the_run() {
    // 40000 frames at 100 Kpps: about 0.4 s, some 20 samples of 20 ms (however slow the
    // machine, at least one).
    let r = ring_run(
        "series",
        &["--count", "40000", "--rate", "100Kpps", "--sample-ms", "20"],
    );
    let s = &r["series"];
    let period = u(&s["period_ms"]);
    assert!(period >= 20 && (period / 20).is_power_of_two(), "{s}");
    let samples = s["samples"].as_array().unwrap();
    assert!(!samples.is_empty(), "{r:#}");
    let tx: u64 = samples.iter().map(|x| u(&x["tx"])).sum();
    let rx: u64 = samples.iter().map(|x| u(&x["rx"])).sum();
    assert_eq!(tx, u(&r["sent"]), "{s}");
    assert_eq!(rx, u(&r["received"]), "{s}");
    assert_eq!(tx, 40000);
    for w in samples.windows(2) {
        assert!(u(&w[1]["t_ms"]) >= u(&w[0]["t_ms"]), "{s}");
    }
    // All back at the end.
    assert_eq!(u(&samples[samples.len() - 1]["missing"]), 0, "{s}");
}

#[test]
fn sample_periods_out_of_range_are_refused() {
    for bad in ["0", "9", "60001", "x"] {
        let o = Command::new(PKTGEN)
            .args(eal_base())
            .arg("--vdev=net_ring0")
            .args(["--", "--count", "10", "--sample-ms", bad])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{bad}: {err}");
        assert!(err.contains("sample"), "{bad}: {err}");
    }
}
