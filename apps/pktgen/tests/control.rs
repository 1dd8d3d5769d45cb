//! pktgen's control socket (`--control`) and `/pktgen/stats`, driven while a real pktgen runs
//! on a net_ring loopback: start, stop, rate and stats take effect; bad requests get an error
//! and nothing stops; the run still ends with a clean report. Through the socket directly, and
//! through dpctl and DPDK's dpdk-telemetry.py.
//!
//! No assertion is on timing: a paused run's `tx` must not move at all, a running one's must
//! move eventually (polled with a generous limit), and the rate is checked as the setting
//! reported.

use apps_common::testing::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

const PKTGEN: &str = env!("CARGO_BIN_EXE_pktgen");
static DPCTL: LazyLock<String> = LazyLock::new(|| workspace_bin("dpctl"));

/// How long anything that must happen eventually is waited for.
const PATIENCE: Duration = Duration::from_secs(60);

/// Sends one line, returns the answer line parsed.
fn ask_raw(sock: &Path, line: &[u8]) -> Value {
    let mut c = UnixStream::connect(sock).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(line).unwrap();
    let mut answer = String::new();
    BufReader::new(&c).read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer:?}"))
}

/// Sends `req`; the `result` of an `ok` answer (panics on an error answer).
fn ask(sock: &Path, req: Value) -> Value {
    let a = ask_raw(sock, format!("{req}\n").as_bytes());
    assert_eq!(a["ok"], true, "{req} -> {a}");
    a["result"].clone()
}

/// Sends `line`; the error of an `ok: false` answer (panics on success).
fn refused(sock: &Path, line: &str) -> String {
    let a = ask_raw(sock, format!("{line}\n").as_bytes());
    assert_eq!(a["ok"], false, "{line} -> {a}");
    a["error"].as_str().unwrap().to_owned()
}

fn tx(stats: &Value) -> u64 {
    stats["tx"].as_u64().unwrap()
}

/// Polls `stats` until `ok` holds of it.
fn stats_until(sock: &Path, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + PATIENCE;
    loop {
        let s = ask(sock, json!({"cmd": "stats"}));
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < until, "never {what}: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A pktgen with a control socket on a net_ring port.
struct Running {
    child: Child,
    dir: PathBuf,
    sock: PathBuf,
    report: PathBuf,
    prefix: String,
}

impl Running {
    fn start(name: &str, args: &[&str]) -> Running {
        let dir = scratch(name);
        let sock = dir.join("pktgen.sock");
        let report = dir.join("report.json");
        let mut eal = eal_base();
        let prefix = file_prefix(&eal);
        eal.push("--vdev=net_ring0".into());
        let child = Command::new(PKTGEN)
            .args(&eal)
            .arg("--")
            .args(["-T", "0", "--drain-ms", "200", "--control"])
            .arg(&sock)
            .arg("--report")
            .arg(&report)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut r = Running {
            child,
            dir,
            sock,
            report,
            prefix,
        };
        let until = Instant::now() + PATIENCE;
        while !r.sock.exists() {
            if let Ok(Some(status)) = r.child.try_wait() {
                panic!("pktgen exited ({status}) before its socket appeared");
            }
            assert!(Instant::now() < until, "no control socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    /// Waits for the run to end: exit status, stdout+stderr, the report.
    fn wait(mut self) -> (Option<i32>, String, Value) {
        let until = Instant::now() + PATIENCE * 2;
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > until {
                let _ = self.child.kill();
                panic!("pktgen did not finish");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let code = self.child.wait().unwrap().code();
        let report = std::fs::read_to_string(&self.report)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| panic!("no report:\n{out}"));
        (code, out, report)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // As a user would stop it (its ports stopped, its socket removed); killed if that
            // does not do.
            let _ = Command::new("kill")
                .args(["-INT", &self.child.id().to_string()])
                .status();
            let until = Instant::now() + PATIENCE;
            while let Ok(None) = self.child.try_wait() {
                if Instant::now() > until {
                    let _ = self.child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn dpctl(sock: &Path, args: &[&str]) -> (bool, Value, String) {
    let o = Command::new(&*DPCTL)
        .arg("--socket")
        .arg(sock)
        .args(args)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    (
        o.status.success(),
        serde_json::from_str(&out).unwrap_or(Value::Null),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `dpdk-telemetry.py -f PREFIX`, asked `/pktgen/stats`.
fn telemetry_stats(prefix: &str) -> Value {
    telemetry(prefix, &["/pktgen/stats"])
        .remove("/pktgen/stats")
        .unwrap_or(Value::Null)
}

const COUNT: u64 = 200_000;

/// The whole protocol against one run started `--paused`: nothing is sent until `start`;
/// `stop` holds `tx` exactly; `rate` changes the setting (and a bad one keeps the old);
/// every bad request is answered with an error and the run goes on, to a report of 0 lost.
#[test]
fn start_stop_rate_and_stats_steer_a_running_pktgen() {
    let count = COUNT.to_string();
    let run = Running::start(
        "control",
        &["--paused", "--count", &count, "--rate", "2Kpps"],
    );
    let sock = run.sock.clone();
    let md = std::fs::symlink_metadata(&sock).unwrap();
    assert!(md.file_type().is_socket());
    assert_eq!(md.permissions().mode() & 0o777, 0o600);

    // Paused from the start: nothing sent, twice over.
    let s = ask(&sock, json!({"cmd": "stats"}));
    assert_eq!((s["state"].as_str(), tx(&s)), (Some("paused"), 0), "{s}");
    assert_eq!(s["rate"], "2.00 Kpps", "{s}");
    assert_eq!(s["rate_pps"], 2000, "{s}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(tx(&ask(&sock, json!({"cmd": "stats"}))), 0);

    // start: the counters grow from one stats to the next.
    let s = ask(&sock, json!({"cmd": "start"}));
    assert_eq!(s["state"], "running", "{s}");
    let a = stats_until(&sock, "sent anything", |s| tx(s) > 0);
    let b = stats_until(&sock, "sent more", |s| tx(s) > tx(&a));
    stats_until(&sock, "received more", |s| {
        s["rx"].as_u64() > a["rx"].as_u64()
    });
    assert!(tx(&b) < COUNT, "the run is over already: {b}");

    // stop: its answer comes once the TX side has stopped, so tx stays put after it.
    let stopped = ask(&sock, json!({"cmd": "stop"}));
    assert_eq!(stopped["state"], "paused", "{stopped}");
    let held = tx(&stopped);
    assert!(held >= tx(&b), "{stopped}");
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(150));
        let s = ask(&sock, json!({"cmd": "stats"}));
        assert_eq!((tx(&s), s["state"].as_str()), (held, Some("paused")), "{s}");
    }

    // rate: the setting changes at once (paused or not), in --rate's syntax.
    let s = ask(&sock, json!({"cmd": "rate", "rate": "1000"}));
    assert_eq!(
        (s["rate"].as_str(), s["rate_pps"].as_u64()),
        (Some("1.00 Kpps"), Some(1000))
    );
    let s = ask(&sock, json!({"cmd": "rate", "rate": "1Mbps"}));
    // 1 Mbit/s of 64-byte frames, 84 bytes each on the wire.
    assert_eq!(s["rate_pps"], 1488, "{s}");
    assert_eq!(s["state"], "paused", "rate does not resume: {s}");

    // Bad requests: each answered with an error; the connection and the run go on.
    let e = refused(&sock, r#"{"cmd":"rate","rate":"0pps"}"#);
    assert!(e.contains("invalid rate"), "{e}");
    let e = refused(&sock, r#"{"cmd":"rate","rate":"20Gpps"}"#);
    assert!(e.contains("out of range"), "{e}");
    let e = refused(&sock, r#"{"cmd":"rate","rate":"1M"}"#);
    assert!(e.contains("of what?"), "{e}");
    let e = refused(&sock, r#"{"cmd":"rate"}"#);
    assert!(e.contains("missing field `rate`"), "{e}");
    let e = refused(&sock, r#"{"cmd":"dma list"}"#);
    assert!(e.contains("unknown variant `dma list`"), "{e}");
    let e = refused(&sock, r#"{"cmd":"stop","now":true}"#);
    assert!(e.contains("unknown field"), "{e}");
    for junk in ["{", "not json", "[1,2]", "\u{0}\u{1}"] {
        let e = refused(&sock, junk);
        assert!(e.starts_with("invalid request"), "{junk:?}: {e}");
    }
    // Too long: told so, and that connection is closed.
    let mut c = UnixStream::connect(&sock).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let long = format!("{{\"cmd\":\"stats\",\"pad\":\"{}\"}}\n", "x".repeat(5000));
    let _ = c.write_all(long.as_bytes());
    let mut heard = String::new();
    let _ = BufReader::new(&c).read_to_string(&mut heard);
    assert!(
        heard.contains("\"ok\":false") && heard.contains("longer than"),
        "{heard}"
    );
    // Several on one connection: one answer each, in order.
    let mut c = UnixStream::connect(&sock).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(b"{\"cmd\":\"nope\"}\n{\"cmd\":\"stats\"}\n")
        .unwrap();
    let mut lines = BufReader::new(&c).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let second: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(
        (first["ok"].as_bool(), second["ok"].as_bool()),
        (Some(false), Some(true))
    );
    drop(c);
    // Nothing of that moved anything: still paused, same tx, the last good rate kept.
    let s = ask(&sock, json!({"cmd": "stats"}));
    assert_eq!(
        (tx(&s), s["state"].as_str(), s["rate_pps"].as_u64()),
        (held, Some("paused"), Some(1488)),
        "{s}"
    );

    // start resumes; then the fastest rate finishes the --count.
    ask(&sock, json!({"cmd": "start"}));
    stats_until(&sock, "resumed", |s| tx(s) > held);
    let s = ask(&sock, json!({"cmd": "rate", "rate": "max"}));
    assert_eq!(s["rate"], "max", "{s}");
    assert!(s.get("rate_pps").is_none(), "{s}");

    let (code, out, r) = run.wait();
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        (
            r["sent"].as_u64(),
            r["lost"].as_u64(),
            r["verdict"].as_str()
        ),
        (Some(COUNT), Some(0), Some("pass")),
        "{r:#}\n{out}"
    );
    assert!(!out.contains("panicked"), "{out}");
    assert!(!sock.exists(), "the socket is left behind");
}

/// dpctl speaks to pktgen as to l2fwd, and says whose command an l2fwd-only one is;
/// dpdk-telemetry.py reads `/pktgen/stats` with the same counters.
#[test]
fn dpctl_and_dpdk_telemetry_see_pktgen() {
    let run = Running::start(
        "control-dpctl",
        &["--count", "100000000", "--rate", "5Kpps"],
    );
    let sock = run.sock.clone();
    let (ok, s, err) = dpctl(&sock, &["stats"]);
    assert!(ok, "{err}");
    assert_eq!(s["state"], "running", "{s}");

    let (ok, s, err) = dpctl(&sock, &["stop"]);
    assert!(ok, "{err}");
    assert_eq!(s["state"], "paused", "{s}");
    let held = tx(&s);
    let (ok, s, err) = dpctl(&sock, &["rate", "10Kpps"]);
    assert!(ok, "{err}");
    assert_eq!(s["rate_pps"], 10000, "{s}");

    let (ok, _, err) = dpctl(&sock, &["rate", "fast"]);
    assert!(!ok);
    assert!(err.contains("invalid rate \"fast\""), "{err}");
    for l2fwd_only in [&["copybreak", "512"][..], &["dma", "list"]] {
        let (ok, _, err) = dpctl(&sock, l2fwd_only);
        assert!(!ok);
        assert!(err.contains("is l2fwd's command"), "{err}");
    }

    // Telemetry: the same counters, while paused (so they hold still).
    let until = Instant::now() + PATIENCE;
    let t = loop {
        let t = telemetry_stats(&run.prefix);
        if t["state"] == "paused" {
            break t;
        }
        assert!(Instant::now() < until, "no /pktgen/stats: {t}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(t["tx"].as_u64(), Some(held), "{t}");
    assert_eq!(t["rate_pps"], 10000, "{t}");
    for key in [
        "rx",
        "missing_so_far",
        "duplicated",
        "reordered",
        "corrupted",
        "tx_pps",
        "rx_pps",
        "latency_p99_ns",
        "elapsed_ms",
    ] {
        assert!(t[key].is_u64(), "{key} in {t}");
    }

    let (ok, s, err) = dpctl(&sock, &["start"]);
    assert!(ok, "{err}");
    assert_eq!(s["state"], "running", "{s}");
    stats_until(&sock, "resumed", |s| tx(s) > held);
    drop(run);
}

/// Without a socket there is nothing to start a `--paused` run: refused before it starts.
#[test]
fn paused_needs_control() {
    let mut eal = eal_base();
    eal.push("--vdev=net_ring0".into());
    let o = run_app(PKTGEN, &eal, &["--paused", "--count", "10"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--paused needs --control"), "{err}");
}

/// During `--search` the trials own the rate and the pauses: start, stop and rate are refused
/// (a `stop` would make every later trial send nothing), stats still answer, and the search
/// runs to its end.
#[test]
fn a_search_answers_stats_and_refuses_steering() {
    let run = Running::start(
        "control-search",
        &[
            "--search",
            "ndr",
            "--trial-s",
            "0.5",
            "--rate",
            "20Kpps",
            "--fixture-capacity-pps",
            "10000",
            "--search-resolution",
            "5",
        ],
    );
    let sock = run.sock.clone();
    let s = stats_until(&sock, "the first trial sends", |s| tx(s) > 0);
    assert!(s["state"] == "running" || s["state"] == "done", "{s}");
    for req in [
        r#"{"cmd":"stop"}"#,
        r#"{"cmd":"start"}"#,
        r#"{"cmd":"rate","rate":"1Kpps"}"#,
    ] {
        let e = refused(&sock, req);
        assert!(
            e.contains("a search (--search) sets the rate"),
            "{req}: {e}"
        );
    }
    let (code, out, r) = run.wait();
    assert_eq!(code, Some(0), "{out}");
    let found = r["rate_pps"].as_f64().unwrap();
    assert!(found > 0.0 && found <= 10_100.0, "{found}: {out}");
}
