//! Latency per stream, RFC 3550 jitter, the HdrHistogram log entry and the time series
//! (`--sample-ms`), from the real pktgen on a net_ring loopback: the report parsed and checked
//! against itself.

use apps_common::testing::*;
use base64::Engine;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use serde_json::Value;
use std::process::Command;

const PKTGEN: &str = env!("CARGO_BIN_EXE_pktgen");

/// Runs pktgen on a net_ring port (what it sends comes straight back): the exit status, what
/// it printed, and its report.
fn ring_run(name: &str, args: &[&str]) -> (Option<i32>, String, Value) {
    let mut eal = eal_base();
    eal.push("--vdev=net_ring0".into());
    let (code, out, r) = pktgen_run(PKTGEN, name, &eal, 50, args);
    assert!(!r.is_null(), "no report:\n{out}");
    (code, out, r)
}

#[test]
fn per_stream_latency_jitter_and_histogram_round_trip() {
    let (code, out, r) = ring_run(
        "latency",
        &["--count", "4000", "--rate", "200Kpps", "--flows", "4"],
    );
    assert_eq!(code, Some(0), "{out}");
    let g = &r["latency_ns"];
    let streams = r["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 4);

    // Per stream: the counts add up to the totals, every frame back is a latency sample.
    let sum = |f: &dyn Fn(&Value) -> u64| streams.iter().map(f).sum::<u64>();
    assert_eq!(sum(&|s| u(&s["received"])), u(&r["received"]));
    assert_eq!(sum(&|s| u(&s["sent"])), u(&r["sent"]));
    assert_eq!(sum(&|s| u(&s["latency_ns"]["samples"])), u(&g["samples"]));
    assert_eq!(u(&g["samples"]), 4000, "{r:#}");
    let mut worst = (0, None);
    for (i, s) in streams.iter().enumerate() {
        let l = &s["latency_ns"];
        assert_eq!(u(&l["samples"]), u(&s["received"]), "stream {i}: {l}");
        assert_eq!(u(&l["samples"]), 1000, "stream {i}: {l}");
        let (min, p50, p99, max, mean) = (
            u(&l["min"]),
            u(&l["p50"]),
            u(&l["p99"]),
            u(&l["max"]),
            u(&l["mean"]),
        );
        assert!(
            min > 0 && min <= p50 && p50 <= p99 && p99 <= max,
            "stream {i}: {l}"
        );
        assert!(min <= mean && mean <= max, "stream {i}: {l}");
        // An integer, so finite; at most the widest swing of transit times seen.
        let jitter = u(&l["jitter"]);
        assert!(jitter <= max - min, "stream {i}: {l}");
        if worst.1.is_none() || jitter > worst.0 {
            worst = (jitter, Some(i as u64));
        }
    }
    // The global jitter is the worst stream's (the first of equals).
    assert_eq!(u(&g["jitter"]), worst.0, "{g}");
    assert_eq!(g["jitter_stream"].as_u64(), worst.1, "{g}");

    // The histogram: an HdrHistogram log entry that decodes to the report's numbers.
    let text = g["histogram"].as_str().unwrap();
    assert!(text.starts_with("HISTFAA"), "{text}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    let h: Histogram<u64> = Deserializer::new().deserialize(&mut &bytes[..]).unwrap();
    assert_eq!(h.len(), u(&g["samples"]));
    assert_eq!(h.min(), u(&g["min"]));
    assert_eq!(h.max(), u(&g["max"]));
    assert_eq!(h.value_at_quantile(0.99), u(&g["p99"]));
    assert_eq!(h.value_at_quantile(0.50), u(&g["p50"]));

    // The summary says the jitter in microseconds, and whose.
    let line = out
        .lines()
        .find(|l| l.starts_with("jitter (us, RFC 3550): "))
        .unwrap_or_else(|| panic!("no jitter line:\n{out}"));
    assert!(
        line.ends_with(&format!(
            "(the worst stream's, stream {})",
            worst.1.unwrap()
        )),
        "{line}"
    );
}

/// Nothing comes back (net_null hands back only frames of its own): no samples, no jitter, and
/// an empty histogram that still decodes.
#[test]
fn no_samples_no_jitter_and_an_empty_histogram() {
    let dir = scratch("latency-null");
    let report = dir.join("report.json");
    let mut eal = eal_base();
    eal.push("--vdev=net_null0".into());
    let o = Command::new(PKTGEN)
        .args(&eal)
        .arg("--")
        .args([
            "-T",
            "0",
            "--drain-ms",
            "0",
            "--count",
            "100",
            "--max-loss",
            "100%",
            "--report",
        ])
        .arg(&report)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{out}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let g = &r["latency_ns"];
    assert_eq!((u(&g["samples"]), u(&g["jitter"])), (0, 0), "{g}");
    assert_eq!(g["jitter_stream"], Value::Null);
    assert_eq!(u(&r["streams"][0]["latency_ns"]["samples"]), 0);
    assert!(!out.contains("jitter"), "{out}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(g["histogram"].as_str().unwrap())
        .unwrap();
    let h: Histogram<u64> = Deserializer::new().deserialize(&mut &bytes[..]).unwrap();
    assert_eq!(h.len(), 0);
}

#[test]
fn the_time_series_adds_up_to_the_run() {
    // 40000 frames at 100 Kpps: about 0.4 s, some 20 samples of 20 ms (however slow the
    // machine, at least one).
    let (code, out, r) = ring_run(
        "series",
        &["--count", "40000", "--rate", "100Kpps", "--sample-ms", "20"],
    );
    assert_eq!(code, Some(0), "{out}");
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
