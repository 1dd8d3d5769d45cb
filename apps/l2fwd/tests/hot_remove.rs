//! Live DMA hot-remove and hot-add, judged by pktgen: l2fwd forwards over a veth pair with
//! every large packet's payload copied by dma_skeleton0 while a drill removes, adds, stalls and
//! abuses its DMA channels through dpctl and the control socket. pktgen must see every frame
//! back, intact (payload CRC) and in order; l2fwd's report must show the removals. One drill
//! runs two workers, each with its own DMA channel, on a chain of veth pairs.

use apps_common::testing::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static PKTGEN: LazyLock<String> = LazyLock::new(|| workspace_bin("pktgen"));
const L2FWD: &str = env!("CARGO_BIN_EXE_l2fwd");
static DPCTL: LazyLock<String> = LazyLock::new(|| workspace_bin("dpctl"));

/// Each run uses both CPUs: one at a time.
static ONE: Mutex<()> = Mutex::new(());

/// Shell functions every drill may use, so that it waits for traffic rather than sleeping a
/// guessed time (pktgen may take a while to start on a loaded box): `dma_copies` prints the
/// copies made by DMA so far, `await_copies N` waits (a minute at most) until there are more
/// than N.
const PREAMBLE: &str = r#"dma_copies() { $DPCTL stats | python3 -c 'import json, sys; print(json.load(sys.stdin)["copies"]["dma"])'; }
await_copies() { for i in $(seq 1200); do [ "$(dma_copies)" -gt "$1" ] && return 0; sleep 0.05; done
                 echo "no DMA copies past $1" >&2; return 1; }
"#;

struct Drill {
    pktgen: Value,
    l2fwd: Value,
    output: String,
}

fn drill(name: &str, count: u32, l2fwd_args: &str, drill: &str) -> Drill {
    require_root(&format!("the hot-remove drill {name:?}"));
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch(name);
    let (pg, dut) = (dir.join("pktgen.json"), dir.join("l2fwd.json"));
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::new("bash")
        .arg(format!("{root}/apps/scripts/veth-demo.sh"))
        .args([
            "--dut", "l2fwd", "--rate", "20000", "--flows", "4", "--size", "64-1518",
        ])
        .args(["--count", &count.to_string()])
        .args(["--dut-eal", "--vdev=dma_skeleton0,lcore=0"])
        // A generous stall timeout unless the drill sets its own: dma_skeleton's copy thread
        // shares a CPU with pktgen's busy worker on a two-core box, and an engine descheduled
        // for longer than the timeout is, to the worker, a stalled one.
        .args([
            "--dut-args",
            &format!(
                "--copy dma --copybreak 256 {}{l2fwd_args}",
                if l2fwd_args.contains("--dma-timeout-ms") {
                    ""
                } else {
                    "--dma-timeout-ms 2000 "
                }
            ),
        ])
        .args([
            "--report",
            pg.to_str().unwrap(),
            "--dut-report",
            dut.to_str().unwrap(),
        ])
        .args(["--drill", &format!("{PREAMBLE}{drill}")])
        .env("L2FWD", L2FWD)
        .env("PKTGEN", &*PKTGEN)
        .env("DPCTL_BIN", &*DPCTL)
        .output()
        .unwrap();
    assert_success(&format!("drill {name}"), &out);
    let read = |p: &std::path::Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let d = Drill {
        pktgen: read(&pg),
        l2fwd: read(&dut),
        output: String::from_utf8_lossy(&out.stdout).into_owned(),
    };
    let _ = std::fs::remove_dir_all(&dir);
    d
}

/// Nothing lost, duplicated, reordered or corrupted; the forwarder's books balance.
fn check_nothing_lost(d: &Drill, count: u64) {
    let p = &d.pktgen;
    assert_eq!(p["sent"], count, "{p:#}\n{}", d.output);
    assert_eq!(p["received"], count, "{p:#}\n{}", d.output);
    for k in ["lost", "duplicated", "reordered", "corrupted"] {
        assert_eq!(p[k], 0, "{k}: {p:#}");
    }
    let l = &d.l2fwd;
    assert_eq!(l["rx_packets"], l["tx_packets"], "{l:#}");
    assert_eq!(l["in_flight"], 0);
    assert_eq!(l["mbufs_in_use_at_exit"], 0);
    for (k, v) in l["dropped"].as_object().unwrap() {
        assert_eq!(v, 0, "dropped {k}: {l:#}");
    }
}

fn channel<'a>(l2fwd: &'a Value, name: &str) -> &'a Value {
    l2fwd["dma_channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no channel {name} in {l2fwd:#}"))
}

#[test]
fn remove_mid_stream_then_add_another() {
    let d = drill(
        "remove-add",
        60_000,
        "",
        r#"await_copies 0
           $DPCTL dma list | grep -q '"active"'
           $DPCTL dma remove dma_skeleton0 | tee /dev/stderr | grep -q latency_us
           sleep 1
           before=$(dma_copies)
           $DPCTL dma add dma_skeleton1,lcore=0 | grep -q '"active"'
           await_copies "$before""#,
    );
    check_nothing_lost(&d, 60_000);
    let l = &d.l2fwd;
    let hr = &l["hot_removes"];
    assert_eq!(hr.as_array().unwrap().len(), 1, "{l:#}");
    assert_eq!(hr[0]["channel"], "dma_skeleton0");
    assert!(hr[0]["latency_us"].as_f64().unwrap() > 0.0);
    let old = channel(l, "dma_skeleton0");
    assert_eq!(old["state"], "removed");
    assert!(
        old["submitted"].as_u64().unwrap() > 0,
        "DMA copies before the removal"
    );
    assert_eq!(old["submitted"], old["completed"]);
    let new = channel(l, "dma_skeleton1");
    assert_eq!(new["state"], "active");
    assert!(
        new["submitted"].as_u64().unwrap() > 0,
        "DMA copies resumed on the new device"
    );
    let dma = l["copies"]["dma"].as_u64().unwrap();
    assert_eq!(
        dma,
        old["submitted"].as_u64().unwrap() + new["submitted"].as_u64().unwrap()
    );
}

#[test]
fn a_stalled_engine_is_retired_then_comes_back() {
    let d = drill(
        "stall",
        120_000,
        "--allow-fault-injection --dma-timeout-ms 50",
        r#"await_copies 0
           field() { python3 -c 'import json, sys
d = json.load(sys.stdin)
if sys.argv[1] == "state":
    print([c for c in d["channels"] if c["name"] == "dma_skeleton0"][0]["state"])
else:
    print(d["copies"]["dma"])' "$1"; }
           state() { $DPCTL dma list | field state; }
           copies() { $DPCTL stats | field dma; }
           await() { for i in $(seq 400); do [ "$(state)" = "$1" ] && return 0; sleep 0.05; done
                     echo "dma_skeleton0 is not $1 but $(state)" >&2; return 1; }
           # The worker gives up on the stalled engine: re-copies on the CPU, retires the lane.
           $DPCTL dma fault dma_skeleton0 stall
           await stalled
           $DPCTL dma list | grep -q '"stalled": true'
           # One registry, one answer: the stalled channel takes requests, and comes back.
           $DPCTL dma fault dma_skeleton0 none
           await active
           before=$(copies); await_copies "$before"; after=$(copies)
           echo "copies.dma $before -> $after"
           [ "$after" -gt "$before" ] || { echo "no DMA copies after the comeback" >&2; exit 1; }"#,
    );
    check_nothing_lost(&d, 120_000);
    let l = &d.l2fwd;
    assert!(
        l["hot_removes"].as_array().unwrap().is_empty(),
        "a stall is not a removal: {l:#}"
    );
    let ch = channel(l, "dma_skeleton0");
    assert_ne!(ch["state"], "removed", "{l:#}");
    assert_eq!(ch["stalled"], true);
    assert!(ch["stalls"].as_u64().unwrap() >= 1, "{l:#}");
    assert!(ch["recopied"].as_u64().unwrap() > 0, "{l:#}");
    assert_eq!(l["copies"]["recopied"], ch["recopied"], "{l:#}");
}

#[test]
fn bad_commands_get_clear_errors_and_forwarding_goes_on() {
    let d = drill(
        "bad",
        40_000,
        "",
        r#"sleep 0.5
           fails() { if out=$("$@" 2>&1); then echo "should have failed: $*" >&2; exit 1; fi
                     echo "$out"; }
           fails $DPCTL dma remove dma_nosuch7 | grep -q 'no DMA channel named "dma_nosuch7"'
           fails $DPCTL dma add dma_bogus9 | grep -q 'cannot probe "dma_bogus9": no vdev driver took it'
           fails $DPCTL dma add ',lcore=0' | grep -q 'invalid devargs'
           # Not DMA devices: the forwarding port itself, and a pcap vdev that would truncate
           # its tx_pcap file if it were probed.
           fails $DPCTL dma add net_af_packet0 | grep -q 'not a DMA device'
           victim=$(mktemp); echo keep > "$victim"
           fails $DPCTL dma add "net_pcap9,tx_pcap=$victim" | grep -q 'not a DMA device'
           [ "$(cat "$victim")" = keep ]; rm -f "$victim"
           fails $DPCTL dma add dma_skeleton0 | grep -q 'already in use'
           fails $DPCTL dma fault dma_skeleton0 stall | grep -q 'fault injection is disabled'
           fails $DPCTL copybreak 0 | grep -q 'invalid copybreak'
           sock=${DPCTL##* }
           python3 - "$sock" <<'PY'
import socket, sys
def conn():
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(10); return s
s = conn()
s.sendall(b'{"cmd": "dma remove", "name": \n')
r = s.recv(4096); assert b'"ok":false' in r and b'invalid request' in r, r
s.sendall(b'not json at all\n')
r = s.recv(4096); assert b'invalid request' in r, r
s.sendall(b'{"cmd":"stats"}\n')
r = s.recv(1 << 20); assert b'"ok":true' in r, r
s.close()
s = conn()
s.sendall(b'{' + b' ' * 10000 + b'}\n')
r = s.recv(4096); assert b'longer than 4096' in r, r
s.close()
s = conn()
s.sendall(b'{"cmd": "dma remo')     # and hang up mid-request
s.close()
PY
           $DPCTL dma list | grep -q '"active"'"#,
    );
    check_nothing_lost(&d, 40_000);
    let l = &d.l2fwd;
    assert!(l["hot_removes"].as_array().unwrap().is_empty(), "{l:#}");
    assert_eq!(channel(l, "dma_skeleton0")["state"], "active");
    assert!(l["copies"]["dma"].as_u64().unwrap() > 0);
}

#[test]
fn remove_and_add_back_fifty_times_under_load() {
    let d = drill(
        "fifty",
        80_000,
        "",
        r#"sleep 0.5
           for i in $(seq 50); do
               $DPCTL dma remove dma_skeleton0 > /dev/null
               $DPCTL dma add dma_skeleton0,lcore=0 > /dev/null
           done
           $DPCTL dma list | grep -q '"active"'"#,
    );
    check_nothing_lost(&d, 80_000);
    let l = &d.l2fwd;
    let hr = l["hot_removes"].as_array().unwrap();
    assert_eq!(hr.len(), 50, "{}", d.output);
    assert!(hr
        .iter()
        .all(|r| r["channel"] == "dma_skeleton0" && r["recopied"] == 0));
    assert!(l["copies"]["dma"].as_u64().unwrap() > 0);
}

/// A private network namespace, deleted on drop (whatever the test's outcome).
struct Netns(String);

impl Netns {
    fn new(name: String) -> Self {
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        sh("ip", &["netns", "add", &name]);
        Netns(name)
    }

    /// Runs `cmd args` in the namespace, which must succeed.
    fn run(&self, cmd: &str, args: &[&str]) {
        let mut a = vec!["netns", "exec", &self.0, cmd];
        a.extend_from_slice(args);
        sh("ip", &a);
    }

    /// `bin args` in the namespace.
    fn command(&self, bin: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, bin]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn sh(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert_success(&format!("{cmd} {}", args.join(" ")), &out);
}

/// l2fwd, stopped with SIGINT (then killed) on drop if still running.
struct Dut(Child);

impl Dut {
    /// Stops it as Ctrl-C does and waits for its report.
    fn stop(&mut self) -> std::process::ExitStatus {
        sh("kill", &["-INT", &self.0.id().to_string()]);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if let Some(s) = self.0.try_wait().unwrap() {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("l2fwd did not stop within 20 s of SIGINT");
    }
}

impl Drop for Dut {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// dpctl on `sock`: the result it prints, which must be a success.
fn dpctl(ns: &Netns, sock: &Path, args: &[&str]) -> Value {
    let out = ns
        .command(&DPCTL)
        .arg("--socket")
        .arg(sock)
        .args(args)
        .output()
        .unwrap();
    assert_success(&format!("dpctl {}", args.join(" ")), &out);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "dpctl {}: not JSON ({e}): {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The worker that channel `name` is active on, from `dma list`.
fn worker_of(list: &Value, name: &str) -> u64 {
    let c = list["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name && c["state"] == "active")
        .unwrap_or_else(|| panic!("{name} is not active: {list:#}"));
    c["worker"].as_u64().unwrap()
}

/// Two workers, each with its own DMA channel (dma_skeleton0 and 1, dealt one each), forward
/// every frame in turn: pktgen sends on pg0; l2fwd's port 0 (dut0) forwards to port 1 (dut1),
/// whose veth peer is its port 2 (dut2), which forwards to port 3 (dut3), whose peer pg1 is
/// pktgen's receiving port. `--portmap "(0,1)(3,2)" -q 2` puts ports 0 and 1 on the first
/// forwarding lcore and 3 and 2 on the second, so every frame crosses both. `--lcores
/// (0-2)@(0-1)`: three lcores, two of them forwarding whether the main lcore forwards or not,
/// on the two CPUs a small box has. While both forward, a channel is hot-removed, then added
/// back: nothing lost, nothing reordered, and at least two lcores carried the traffic.
#[test]
fn two_workers_each_with_its_own_channel_remove_and_add_back() {
    require_root("the two-worker hot-remove drill");
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("two-workers");
    let ns = Netns::new(format!("dpchain{}", std::process::id()));
    for (a, b) in [("pg0", "dut0"), ("dut1", "dut2"), ("dut3", "pg1")] {
        ns.run("ip", &["link", "add", a, "type", "veth", "peer", "name", b]);
    }
    for i in ["lo", "pg0", "dut0", "dut1", "dut2", "dut3", "pg1"] {
        ns.run("ip", &["link", "set", i, "up"]);
    }
    // No IPv6 chatter on the links (pktgen would count it as foreign frames).
    ns.run("sysctl", &["-qw", "net.ipv6.conf.all.disable_ipv6=1"]);

    let (sock, dut_report, pg_report) = (
        dir.join("l2fwd.sock"),
        dir.join("l2fwd.json"),
        dir.join("pktgen.json"),
    );
    let log = dir.join("l2fwd.log");
    let mut dut = ns.command(L2FWD);
    dut.args(["--lcores=(0-2)@(0-1)", "--no-huge", "--no-pci", "-m", "512"])
        .args([
            "--log-level=warning",
            &format!("--file-prefix={}-dut", ns.0),
        ]);
    for i in 0..4 {
        dut.arg(format!(
            "--vdev=net_af_packet{i},iface=dut{i},framecnt=4096"
        ));
    }
    dut.args([
        "--vdev=dma_skeleton0,lcore=0",
        "--vdev=dma_skeleton1,lcore=1",
    ])
    .args([
        "--",
        "-p",
        "0xf",
        "--portmap",
        "(0,1)(3,2)",
        "-q",
        "2",
        "-T",
        "0",
    ])
    .args([
        "--copy",
        "dma",
        "--copybreak",
        "256",
        "--dma-timeout-ms",
        "2000",
    ])
    .arg("--control")
    .arg(&sock)
    .arg("--report")
    .arg(&dut_report)
    .stdout(std::fs::File::create(&log).unwrap())
    .stderr(Stdio::from(
        std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
    ));
    let mut dut = Dut(dut.spawn().unwrap());
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let t = Instant::now();
    while !sock.exists() || read_log().matches("Lcore ").count() < 2 {
        if let Some(s) = dut.0.try_wait().unwrap() {
            panic!("l2fwd exited ({s}) before forwarding:\n{}", read_log());
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "l2fwd did not come up:\n{}",
            read_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Each worker has its own channel.
    let list = dpctl(&ns, &sock, &["dma", "list"]);
    let (w0, w1) = (
        worker_of(&list, "dma_skeleton0"),
        worker_of(&list, "dma_skeleton1"),
    );
    assert_ne!(w0, w1, "one channel each: {list:#}");

    const COUNT: u64 = 60_000;
    let drill = std::thread::scope(|s| {
        let drill = s.spawn(|| {
            // Once both channels copy (pktgen's start takes a while on a busy box).
            let t = Instant::now();
            loop {
                let list = dpctl(&ns, &sock, &["dma", "list"]);
                let copying = list["channels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|c| c["submitted"].as_u64().unwrap() > 0)
                    .count();
                if copying == 2 {
                    break;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(30),
                    "no DMA copies on both channels: {list:#}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            let hr = dpctl(&ns, &sock, &["dma", "remove", "dma_skeleton0"]);
            // The other worker's channel is untouched.
            let list = dpctl(&ns, &sock, &["dma", "list"]);
            assert_eq!(worker_of(&list, "dma_skeleton1"), w1, "{list:#}");
            std::thread::sleep(Duration::from_millis(500));
            let added = dpctl(&ns, &sock, &["dma", "add", "dma_skeleton0,lcore=0"]);
            (hr, added)
        });
        let out = ns
            .command(&PKTGEN)
            .args([
                "-l",
                "0-1",
                "--main-lcore",
                "1",
                "--no-huge",
                "--no-pci",
                "-m",
                "512",
            ])
            .args(["--log-level=warning", &format!("--file-prefix={}-pg", ns.0)])
            .args(["--vdev=net_af_packet0,iface=pg0,framecnt=4096"])
            .args(["--vdev=net_af_packet1,iface=pg1,framecnt=4096", "--"])
            .args([
                "--tx-port",
                "0",
                "--rx-port",
                "1",
                "--rate",
                "10000",
                "--flows",
                "4",
            ])
            .args(["--size", "64-1518", "--count", &COUNT.to_string()])
            .args(["--drain-ms", "3000", "--report"])
            .arg(&pg_report)
            .output()
            .unwrap();
        assert_success("pktgen", &out);
        drill.join().unwrap()
    });
    let (hr, added) = drill;
    assert_eq!(hr["channel"], "dma_skeleton0", "{hr:#}");
    assert_eq!(added["state"], "active", "{added:#}");
    assert_eq!(
        added["worker"], w0,
        "back to the worker with the fewest channels, the one it left: {added:#}"
    );
    let status = dut.stop();
    assert!(status.success(), "l2fwd: {status}\n{}", read_log());

    let read =
        |p: &Path| -> Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let d = Drill {
        pktgen: read(&pg_report),
        l2fwd: read(&dut_report),
        output: read_log(),
    };
    check_nothing_lost(&d, COUNT);
    let l = &d.l2fwd;
    // Every frame crossed two forwarding lcores.
    assert_eq!(l["rx_packets"], 2 * COUNT, "{l:#}");
    let carried: Vec<u64> = l["lcores"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["tx_packets"].as_u64().unwrap() > 0)
        .map(|c| c["lcore"].as_u64().unwrap())
        .collect();
    assert!(
        carried.len() >= 2,
        "at least two lcores carried traffic: {l:#}"
    );
    eprintln!("lcores that carried traffic: {carried:?}: {}", l["lcores"]);
    let hr = l["hot_removes"].as_array().unwrap();
    assert_eq!(hr.len(), 1, "{l:#}");
    assert_eq!(hr[0]["channel"], "dma_skeleton0");
    // Both channels copied; dma_skeleton0 before its removal and again after it came back.
    let chans: Vec<&Value> = l["dma_channels"].as_array().unwrap().iter().collect();
    let of = |name: &str, state: &str| -> &Value {
        chans
            .iter()
            .find(|c| c["name"] == name && c["state"] == state)
            .unwrap_or_else(|| panic!("no {state} {name}: {l:#}"))
    };
    for c in [
        of("dma_skeleton0", "removed"),
        of("dma_skeleton0", "active"),
        of("dma_skeleton1", "active"),
    ] {
        assert!(
            c["submitted"].as_u64().unwrap() > 0,
            "no DMA copies on {c:#}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
