//! pktgen: what it writes (read back from net_pcap and checked independently), what it
//! rejects, and end to end through a forwarder in another process over a veth pair: our l2fwd,
//! and DPDK's own dpdk-testpmd as a cross-check.

use apps_common::testing::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::LazyLock;
use std::sync::Mutex;

const PKTGEN: &str = env!("CARGO_BIN_EXE_pktgen");
static L2FWD: LazyLock<String> = LazyLock::new(|| workspace_bin("l2fwd"));

/// Runs pktgen on a net_pcap port (no input) and returns the frames it wrote and its report.
fn generate(name: &str, args: &[&str]) -> (Vec<Vec<u8>>, Value) {
    let dir = scratch(name);
    let empty = dir.join("empty.pcap");
    write_pcap(&empty, &[]);
    let out = dir.join("out.pcap");
    let report = dir.join("report.json");
    let mut eal = eal_base();
    eal.push(format!(
        "--vdev=net_pcap0,rx_pcap={},tx_pcap={}",
        empty.display(),
        out.display()
    ));
    // Nothing comes back from a pcap file: all lost, which these runs allow.
    let mut app = vec![
        "--drain-ms",
        "0",
        "-T",
        "0",
        "--max-loss",
        "100%",
        "--report",
        report.to_str().unwrap(),
    ];
    app.extend_from_slice(args);
    let o = run_app(PKTGEN, &eal, &app);
    assert_success("pktgen", &o);
    let frames = read_pcap(&out);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    if std::process::Command::new("tcpdump")
        .arg("--version")
        .output()
        .is_ok()
    {
        // tcpdump checks the IPv4 and UDP checksums itself with -vv.
        let t = Command::new("tcpdump")
            .args(["-nn", "-vv", "-r", out.to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&t.stdout);
        let ok = text.lines().filter(|l| l.contains("[udp sum ok]")).count();
        assert_eq!(
            ok,
            frames.len(),
            "tcpdump verified every UDP checksum:\n{text}"
        );
        assert!(
            !text.contains("bad"),
            "tcpdump found bad checksums:\n{text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    (frames, report)
}

/// RFC 1071 checksum, written independently of the generator's.
fn inet_sum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for p in parts {
        for c in p.chunks(2) {
            sum += (c[0] as u32) << 8 | *c.get(1).unwrap_or(&0) as u32;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Checks one frame's headers and checksums; returns its flow (src ip, dst ip, sport, dport).
fn check_frame(f: &[u8]) -> ([u8; 4], [u8; 4], u16, u16) {
    assert_eq!(&f[12..14], &[0x08, 0x00], "IPv4 EtherType");
    let ip = &f[14..34];
    assert_eq!(ip[0], 0x45);
    assert_eq!(ip[9], 17, "UDP");
    assert_eq!(
        u16::from_be_bytes([ip[2], ip[3]]) as usize,
        f.len() - 14,
        "IP total length"
    );
    assert_eq!(inet_sum(&[ip]), 0, "IPv4 header checksum");
    let udp = &f[34..];
    assert_eq!(
        u16::from_be_bytes([udp[4], udp[5]]) as usize,
        udp.len(),
        "UDP length"
    );
    let pseudo = [&ip[12..20], &[0, 17], &(udp.len() as u16).to_be_bytes()[..]].concat();
    assert_eq!(inet_sum(&[&pseudo, udp]), 0, "UDP checksum");
    (
        ip[12..16].try_into().unwrap(),
        ip[16..20].try_into().unwrap(),
        u16::from_be_bytes([udp[0], udp[1]]),
        u16::from_be_bytes([udp[2], udp[3]]),
    )
}

#[test]
fn imix_frames_flows_and_checksums() {
    let (frames, report) = generate(
        "imix",
        &["--count", "1200", "--size", "imix", "--flows", "4"],
    );
    assert_eq!(frames.len(), 1200);
    assert_eq!(report["sent"], 1200);
    let mut sizes = BTreeMap::new();
    let mut flows = BTreeMap::new();
    for f in &frames {
        *sizes.entry(f.len() + 4).or_insert(0) += 1;
        *flows.entry(check_frame(f)).or_insert(0) += 1;
    }
    assert_eq!(sizes, BTreeMap::from([(64, 700), (594, 400), (1518, 100)]));
    assert_eq!(flows.len(), 4, "{flows:?}");
    assert!(flows.values().all(|&n| n == 300), "{flows:?}");
    // Every flow differs in both addresses and both ports, so that RSS spreads them.
    let keys: Vec<_> = flows.keys().collect();
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            assert!(
                a.0 != b.0 && a.1 != b.1 && a.2 != b.2 && a.3 != b.3,
                "{a:?} {b:?}"
            );
        }
    }
}

#[test]
fn fixed_and_range_sizes() {
    let (frames, _) = generate("fixed", &["--count", "500", "--size", "1518"]);
    assert_eq!(frames.len(), 500);
    assert!(frames.iter().all(|f| f.len() == 1514));
    let (frames, _) = generate(
        "range",
        &["--count", "2000", "--size", "100-200", "--flows", "3"],
    );
    assert_eq!(frames.len(), 2000);
    let lens: std::collections::BTreeSet<usize> = frames.iter().map(|f| f.len() + 4).collect();
    assert_eq!(*lens.first().unwrap(), 100);
    assert_eq!(*lens.last().unwrap(), 200);
    assert!(
        lens.len() > 90,
        "sizes spread over the range: {}",
        lens.len()
    );
    for f in &frames {
        check_frame(f);
    }
}

#[test]
fn nothing_came_back_is_all_lost() {
    let (_, r) = generate("lost", &["--count", "300", "--flows", "3"]);
    assert_eq!(r["sent"], 300);
    assert_eq!(r["received"], 0);
    assert_eq!(r["lost"], 300);
    assert_eq!(r["streams"].as_array().unwrap().len(), 3);
    assert_eq!(r["streams"][1]["lost"], 100);
    // The TX lcore's time went on frames; the RX side moved none.
    assert!(
        r["lcore_cost"]["tx_ns_per_frame"].as_f64().unwrap() > 0.0,
        "{r:#}"
    );
    assert_eq!(r["lcore_cost"]["rx_ns_per_frame"], 0.0, "{r:#}");
}

#[test]
fn bad_options_are_refused() {
    let mut eal = eal_base();
    eal.push("--vdev=net_null0".into());
    for (args, needle) in [
        (&["--count", "1", "--size", "10"][..], "invalid size 10"),
        (
            &["--count", "1", "--rate", "fast"][..],
            "invalid rate \"fast\"",
        ),
        (&["--rate", "1000"][..], "give --count N or --duration S"),
        (
            &["--count", "1", "--tx-port", "3"][..],
            "--tx-port 3 does not exist",
        ),
        (&["--count", "1", "--flows", "0"][..], "invalid --flows 0"),
        (
            &["--count", "1", "--dst-mac", "zz"][..],
            "invalid MAC address",
        ),
    ] {
        let o = run_app(PKTGEN, &eal, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            err.contains(needle),
            "{args:?}: expected {needle:?} in:\n{err}"
        );
    }
}

/// The veth tests each use both CPUs: run them one at a time.
static VETH: Mutex<()> = Mutex::new(());

fn veth_run(dut: &str) -> Value {
    veth_run_with(dut, 4, &[]).0
}

/// pktgen's report, and l2fwd's (Null for testpmd), of a veth run with `flows` flows and
/// `extra` options to veth-demo.sh.
fn veth_run_with(dut: &str, flows: u32, extra: &[&str]) -> (Value, Value) {
    require_root(&format!("pktgen over a veth pair through {dut}"));
    let _one = VETH.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch(&format!("veth-{dut}"));
    let report = dir.join("report.json");
    let dut_report = dir.join("dut.json");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let mut cmd = Command::new("bash");
    cmd.arg(format!("{root}/apps/scripts/veth-demo.sh"))
        .args(["--dut", dut, "--count", "20000", "--rate", "20000"])
        .args(["--flows", &flows.to_string()])
        .args(["--size", "64-1518", "--report", report.to_str().unwrap()])
        .args(extra);
    if dut == "l2fwd" {
        cmd.args(["--dut-report", dut_report.to_str().unwrap()]);
    }
    let out = cmd
        .env("L2FWD", &*L2FWD)
        .env("PKTGEN", PKTGEN)
        .output()
        .unwrap();
    assert_success(&format!("veth-demo.sh --dut {dut}"), &out);
    let read = |p: &std::path::Path| -> Value {
        std::fs::read_to_string(p)
            .map(|s| serde_json::from_str(&s).unwrap())
            .unwrap_or(Value::Null)
    };
    let r = (read(&report), read(&dut_report));
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn check_clean(r: &Value) {
    check_clean_flows(r, 4);
}

fn check_clean_flows(r: &Value, flows: u64) {
    assert_eq!(r["sent"], 20000, "{r:#}");
    assert_eq!(r["received"], 20000, "{r:#}");
    for side in ["tx_ns_per_frame", "rx_ns_per_frame"] {
        assert!(
            r["lcore_cost"][side].as_f64().unwrap() > 0.0,
            "{side}: {r:#}"
        );
    }
    for k in ["lost", "duplicated", "reordered", "corrupted"] {
        assert_eq!(r[k], 0, "{k}: {r:#}");
    }
    let l = &r["latency_ns"];
    assert_eq!(l["samples"], 20000);
    let (p50, p99, max) = (
        l["p50"].as_u64().unwrap(),
        l["p99"].as_u64().unwrap(),
        l["max"].as_u64().unwrap(),
    );
    assert!(p50 > 0 && p50 <= p99 && p99 <= max, "{l}");
    let streams = r["streams"].as_array().unwrap();
    assert_eq!(streams.len() as u64, flows);
    for s in streams {
        assert_eq!(s["sent"], 20000 / flows);
        assert_eq!(s["received"], 20000 / flows);
        assert_eq!(s["reordered"], 0, "a flow reordered: {s:#}");
    }
}

#[test]
fn two_queue_pairs_on_two_l2fwd_lcores_keep_every_flow_in_order() {
    // net_af_packet with two queue pairs: the kernel's fanout hashes each flow to one queue;
    // l2fwd deals the two RX queues to lcores 0 and 1, each sending on its own TX queue.
    let (pg, dut) = veth_run_with("l2fwd", 16, &["--dut-lcores", "0-1", "--dut-qpairs", "2"]);
    check_clean_flows(&pg, 16);
    let lcores = dut["lcores"].as_array().expect("l2fwd's report");
    assert_eq!(lcores.len(), 2, "{dut:#}");
    for l in lcores {
        assert!(
            l["rx_packets"].as_u64().unwrap() > 0,
            "lcore {} carried nothing: {dut:#}",
            l["lcore"]
        );
    }
    assert_eq!(dut["rx_packets"], dut["tx_packets"]);
    assert_eq!(dut["mbufs_in_use_at_exit"], 0);
}

#[test]
fn end_to_end_through_our_l2fwd_over_veth() {
    check_clean(&veth_run("l2fwd"));
}

#[test]
fn end_to_end_through_dpdk_testpmd_over_veth() {
    check_clean(&veth_run("testpmd"));
}

/// Runs pktgen with `args` and expects exit status 1 with exactly one line on stderr,
/// `pktgen: error: ...` containing `needle`.
fn expect_one_line_error(args: &[&str], needle: &str) {
    let mut eal = eal_base();
    eal.push("--vdev=net_null0".into());
    let o = run_app(PKTGEN, &eal, args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {}\n{err}", o.status);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: one line:\n{err}");
    assert!(lines[0].starts_with("pktgen: error: "), "{err}");
    assert!(lines[0].contains(needle), "{args:?}: {needle:?} in:\n{err}");
}

/// Issue 9: `--rate 1e300` overflowed the token bucket.
#[test]
fn out_of_range_rates_are_refused() {
    for rate in ["1e300", "1e11", "0.001", "1e14bps", "10bps"] {
        expect_one_line_error(&["--count", "1", "--rate", rate], "invalid rate");
    }
}

/// Issue 9: `-T 18446744073709551615` panicked (Instant + Duration overflow) after the ports
/// had started; huge durations and drain waits are refused the same way.
#[test]
fn huge_periods_and_durations_are_refused() {
    expect_one_line_error(
        &["--count", "1", "-T", "18446744073709551615"],
        "invalid -T/--stats-period 18446744073709551615: expected 0..=86400 seconds",
    );
    expect_one_line_error(
        &["--count", "1", "-T", "86401"],
        "invalid -T/--stats-period 86401",
    );
    expect_one_line_error(&["--duration", "1e300"], "invalid --duration 1e300");
    expect_one_line_error(&["--duration", "inf"], "invalid --duration inf");
    expect_one_line_error(
        &["--count", "1", "--drain-ms", "18446744073709551615"],
        "invalid --drain-ms 18446744073709551615: expected 0..=3600000 milliseconds",
    );
}

/// Issue 9: on net_null (which hands back buffers it never wrote) pktgen counted millions of
/// `corrupted` frames, more than it sent, and no foreign ones. What net_null delivers is not
/// ours: foreign; what pktgen sent never came back: lost.
#[test]
fn net_null_frames_are_foreign_not_corrupted() {
    let dir = scratch("null-foreign");
    let report = dir.join("report.json");
    let mut eal = eal_base();
    eal.push("--vdev=net_null0".into());
    let o = run_app(
        PKTGEN,
        &eal,
        &[
            "--count",
            "2000",
            "--rate",
            "200000",
            "--drain-ms",
            "50",
            "-T",
            "0",
            "--max-loss",
            "100%",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_success("pktgen on net_null", &o);
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["sent"], 2000, "{r:#}");
    assert_eq!(r["corrupted"], 0, "{r:#}");
    assert_eq!(r["received"], 0, "{r:#}");
    assert_eq!(r["lost"], 2000, "{r:#}");
    assert_eq!(r["late"], 0, "{r:#}");
    assert!(r["foreign"].as_u64().unwrap() > 0, "{r:#}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("none of the 2000 frames sent came back"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 9: `pktgen ... | head -3` aborted (println! panics on EPIPE, and panic = "abort")
/// before the ports were stopped and the report written. With stdout's read end closed from
/// the start, the run must still finish normally and write its report.
#[test]
fn closed_stdout_does_not_abort_the_run() {
    let dir = scratch("epipe");
    let report = dir.join("report.json");
    let mut eal = eal_base();
    eal.push("--vdev=net_null0".into());
    let mut child = Command::new(PKTGEN)
        .args(&eal)
        .arg("--")
        .args(["--count", "20000", "--rate", "100000", "--drain-ms", "10"])
        .args(["--max-loss", "100%"])
        .args(["-T", "1", "--report", report.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // like `head` exiting: every write to stdout gets EPIPE
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{}: {err}", o.status);
    assert!(!err.contains("panicked"), "{err}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["sent"], 20000, "{r:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// EAL arguments for a net_ring port: what pktgen sends comes straight back.
fn ring_eal() -> Vec<String> {
    let mut eal = eal_base();
    eal.push("--vdev=net_ring0".into());
    eal
}

/// Runs pktgen with stdout and stderr into one file, as a terminal shows them: the exit
/// status, everything printed in order, and the report.
fn run_judged(name: &str, eal: &[String], args: &[&str]) -> (Option<i32>, String, Value) {
    let dir = scratch(name);
    let report = dir.join("report.json");
    let log = dir.join("out.log");
    let f = std::fs::File::create(&log).unwrap();
    let status = Command::new(PKTGEN)
        .args(eal)
        .arg("--")
        .args([
            "-T",
            "0",
            "--drain-ms",
            "50",
            "--report",
            report.to_str().unwrap(),
        ])
        .args(args)
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .status()
        .unwrap();
    let out = std::fs::read_to_string(&log).unwrap();
    let r = serde_json::from_str(&std::fs::read_to_string(&report).unwrap())
        .unwrap_or_else(|e| panic!("no report ({e}):\n{out}"));
    let _ = std::fs::remove_dir_all(&dir);
    (status.code(), out, r)
}

/// Tracker: pktgen exited 0 with 100% loss. Now 0 only when every criterion holds.
#[test]
fn a_clean_run_passes_with_exit_0() {
    let (code, out, r) = run_judged(
        "pass",
        &ring_eal(),
        &["--count", "2000", "--rate", "100Kpps"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        (r["verdict"].as_str(), r["lost"].as_u64()),
        (Some("pass"), Some(0)),
        "{r:#}"
    );
    assert_eq!(r["failed"], serde_json::json!([]));
    assert!(
        out.contains("\nverdict: pass\n") && !out.contains("fail"),
        "{out}"
    );
}

/// All lost (net_null hands back only frames of its own): exit 2, each failed criterion on
/// its own line after the summary, and in the report.
#[test]
fn loss_fails_with_exit_2_after_the_summary_and_the_report() {
    let mut eal = eal_base();
    eal.push("--vdev=net_null0".into());
    let (code, out, r) = run_judged(
        "fail-loss",
        &eal,
        &[
            "--count",
            "2000",
            "--rate",
            "200Kpps",
            "--max-latency-us",
            "50",
        ],
    );
    assert_eq!(code, Some(2), "{out}");
    assert_eq!(r["verdict"], "fail", "{r:#}");
    let failed: Vec<&str> = r["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["criterion"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["max_loss", "max_latency_us"], "{r:#}");
    let lines: Vec<&str> = out.lines().collect();
    let fails: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("pktgen: fail: "))
        .collect();
    assert_eq!(fails.len(), 2, "{out}");
    assert_eq!(
        lines[fails[0]],
        "pktgen: fail: lost 2000 of 2000 frames (100.00%), more than --max-loss 0 allows"
    );
    let end = lines.iter().rposition(|l| l.starts_with("=====")).unwrap();
    assert!(fails.iter().all(|&i| i > end), "after the summary:\n{out}");
    assert!(
        out.contains("verdict: fail (max_loss, max_latency_us)"),
        "{out}"
    );
    assert!(!out.contains("pktgen: error"), "{out}");
}

/// The same run passes when the loss is allowed, as a count or a percentage; a latency bound
/// no clock can meet fails it.
#[test]
fn criteria_decide_the_exit_status() {
    let mut null = eal_base();
    null.push("--vdev=net_null0".into());
    for allow in ["2000", "100%"] {
        let (code, out, r) = run_judged("allow", &null, &["--count", "2000", "--max-loss", allow]);
        assert_eq!(
            (code, r["verdict"].as_str()),
            (Some(0), Some("pass")),
            "{out}"
        );
    }
    let (code, out, r) = run_judged(
        "allow-some",
        &null,
        &["--count", "2000", "--max-loss", "99%"],
    );
    assert_eq!(
        (code, r["verdict"].as_str()),
        (Some(2), Some("fail")),
        "{out}"
    );
    let (code, out, r) = run_judged(
        "p99",
        &ring_eal(),
        &[
            "--count",
            "2000",
            "--rate",
            "100Kpps",
            "--max-p99-latency-us",
            "0.001",
        ],
    );
    assert_eq!(code, Some(2), "{out}");
    assert_eq!(r["failed"][0]["criterion"], "max_p99_latency_us", "{r:#}");
    let line = out
        .lines()
        .find(|l| l.starts_with("pktgen: fail: "))
        .unwrap();
    assert!(
        line.starts_with("pktgen: fail: latency p99 ")
            && line.ends_with(" us, above --max-p99-latency-us 0.001"),
        "{line}"
    );
    // From the config file too.
    let dir = scratch("criteria-config");
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, "[pktgen]\ncount = 500\nmax_loss = \"100%\"\n").unwrap();
    let (code, out, _) = run_judged("cfg", &null, &["--config", cfg.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Tracker: a rate the run could not reach must say so. 10 Gpps is out of any vdev's reach.
#[test]
fn a_rate_not_reached_is_reported() {
    let (code, out, r) = run_judged(
        "short",
        &ring_eal(),
        &["--count", "20000", "--rate", "10Gpps"],
    );
    assert_eq!(
        code,
        Some(0),
        "falling short is reported, not a failed criterion: {out}"
    );
    let rate = &r["rate"];
    assert_eq!(rate["requested"], "10.00 Gpps", "{r:#}");
    assert_eq!(rate["requested_pps"], 1e10, "{r:#}");
    assert_eq!(rate["reached"], false, "{r:#}");
    let sent = rate["sent_pps"].as_f64().unwrap();
    assert!(sent > 0.0 && sent < 1e10, "{r:#}");
    let line = out
        .lines()
        .find(|l| l.starts_with("requested "))
        .expect(&out);
    assert!(
        line.starts_with("requested 10.00 Gpps, sent ") && line.ends_with("(0%)"),
        "{line}"
    );
    // A slow rate, in bits per second: its frame rate is said, and whether it was held is
    // judged by the run itself. A box busy with other tests can hold the lcore up near the end
    // of a 0.2 s run for longer than the 1% the judgement allows (CI once saw 98.3%), so the
    // test does not judge the timing: it holds the report's verdict to its own numbers and the
    // shortfall line to the verdict.
    let (code, out, r) = run_judged(
        "reached",
        &ring_eal(),
        &["--count", "200", "--rate", "672Kbps"],
    );
    assert_eq!(code, Some(0), "{out}");
    let rate = &r["rate"];
    assert_eq!(rate["requested"], "672.00 kbit/s", "{r:#}");
    assert_eq!(rate["requested_pps"], 1000.0, "{r:#}");
    let reached = rate["reached"].as_bool().expect("a rate was asked: judged");
    let (sent, tx_s) = (r["sent"].as_f64().unwrap(), r["tx_s"].as_f64().unwrap());
    // Paced: the token bucket starts empty, so the 200th frame leaves 200 ms after the first
    // step at the earliest (a busy box can only make it later).
    assert!(sent == 200.0 && tx_s >= 0.19, "{r:#}");
    // One frame of slack, as the report allows a slow run that ends before its next frame;
    // the report's tx_s is rounded to the microsecond, so a run right at the bound is not
    // judged here.
    let judged = (sent + 1.0) / tx_s;
    if (judged - 990.0).abs() > 0.01 {
        assert_eq!(reached, judged >= 990.0, "{r:#}");
    }
    assert_eq!(
        out.lines()
            .any(|l| l.starts_with("requested 672.00 kbit/s = 1.00 Kpps, sent ")),
        !reached,
        "the shortfall line is printed exactly when the rate was not reached: {out}"
    );
    assert!(
        out.contains("rate 672.00 kbit/s on the wire = 1.00 Kpps"),
        "{out}"
    );
}

/// Tracker: no Debug output (`Pps(1000000.0)`), counts and rates in units, latencies in us
/// with at most two decimals.
#[test]
fn output_reads_in_units_not_debug() {
    let (code, out, r) = run_judged(
        "units",
        &ring_eal(),
        &["--count", "2000", "--rate", "1Mpps", "--size", "128"],
    );
    assert_eq!(code, Some(0), "{out}");
    let json = r.to_string();
    for text in [&out, &json] {
        for debug in ["Pps(", "Bps(", "Max", "Some("] {
            assert!(!text.contains(debug), "{debug} in {text}");
        }
    }
    assert!(out.contains("rate 1.00 Mpps, size 128"), "{out}");
    let tx = out.lines().find(|l| l.starts_with("tx: ")).expect(&out);
    assert!(
        tx.starts_with("tx: 2000 frames, 256.00 kB in ") && tx.ends_with(" on the wire"),
        "{tx}"
    );
    let lat = out
        .lines()
        .find(|l| l.starts_with("latency (us): "))
        .expect(&out);
    for v in lat.split_whitespace().filter(|w| w.contains('.')) {
        assert!(v.split('.').nth(1).unwrap().len() <= 2, "{v} in {lat}");
    }
    assert_eq!(r["tx_bytes"], 2000 * 128);
    assert_eq!(r["rx_bytes"], 2000 * 128);
    assert!(r["latency_ns"]["mean"].is_u64(), "{r:#}");
}

/// Tracker: `--rate 1G` could mean either. Refused at once, naming both.
#[test]
fn ambiguous_rates_are_refused_with_a_hint() {
    for (rate, hint) in [
        (
            "1G",
            "say 1Gbps (bits per second) or 1Gpps (packets per second)",
        ),
        (
            "1M",
            "say 1Mbps (bits per second) or 1Mpps (packets per second)",
        ),
        (
            "1K",
            "say 1Kbps (bits per second) or 1Kpps (packets per second)",
        ),
    ] {
        expect_one_line_error(&["--count", "1", "--rate", rate], hint);
    }
}

/// Tracker: both ends of `--flows` in the same words; the report's directory checked before
/// anything starts; a mistyped option names the right one.
#[test]
fn validation_before_anything_starts() {
    for flows in ["0", "100000"] {
        expect_one_line_error(
            &["--count", "1", "--flows", flows],
            &format!("invalid --flows {flows}: expected 1..=65535 flows"),
        );
    }
    let mut eal = eal_base();
    eal.push("--vdev=net_null0".into());
    let o = run_app(
        PKTGEN,
        &eal,
        &["--count", "1", "--report", "/nonexistent/dir/r.json"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        o.stdout.is_empty(),
        "nothing ran: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).lines().last(),
        Some("pktgen: error: --report /nonexistent/dir/r.json: the directory /nonexistent/dir does not exist")
    );
    expect_one_line_error(
        &["--count", "1", "--max-los", "5"],
        "unexpected argument '--max-los' found (tip: a similar argument exists: '--max-loss'; see --help)",
    );
}

/// `veth-demo.sh` with `args` and pktgen's binary; its exit status and output.
fn veth_demo(args: &[&str]) -> (Option<i32>, String) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let o = Command::new("bash")
        .arg(format!("{root}/apps/scripts/veth-demo.sh"))
        .args(args)
        .env("L2FWD", &*L2FWD)
        .env("PKTGEN", PKTGEN)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code(), text)
}

/// Tracker: veth-demo.sh's exit status is pktgen's, as its usage text says: a failed
/// criterion (2) comes through `set -e`, as does the drill's failure when pktgen passed; its
/// own bad options are 2 and a set-up error 1.
#[test]
fn veth_demo_passes_the_exit_status_through() {
    let (code, out) = veth_demo(&["--bogus"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("veth-demo: unknown option --bogus"), "{out}");
    let (code, out) = veth_demo(&["--count"]);
    assert_eq!(code, Some(2), "{out}");
    let (code, out) = veth_demo(&["--help"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Exit status: pktgen's (0 pass, 2 a pass criterion failed, 1 error)"));
    require_root("veth-demo.sh over a veth pair");
    let _one = VETH.lock().unwrap_or_else(|e| e.into_inner());
    let small = ["--count", "1000", "--rate", "20Kpps"];
    let (code, out) =
        veth_demo(&[&small[..], &["--pktgen-args", "--max-latency-us 0.001"]].concat());
    assert_eq!(code, Some(2), "pktgen's 2:\n{out}");
    assert!(out.contains("pktgen: fail: latency max "), "{out}");
    assert!(
        out.contains("--- l2fwd's last lines:"),
        "the script went on to the end:\n{out}"
    );
    let (code, out) = veth_demo(&[&small[..], &["--drill", "exit 3"]].concat());
    assert_eq!(code, Some(3), "the drill's:\n{out}");
    let (code, out) = veth_demo(&small);
    assert_eq!(code, Some(0), "{out}");
}
