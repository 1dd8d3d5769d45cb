//! A reader that goes away (`l2fwd ... | head -3`, `dpctl ... | head`) must not abort the run:
//! the forwarder still finishes, closes its ports (net_pcap flushes its output then), writes its
//! report and removes its control socket; dpctl still exits 0.

use apps_common::testing::*;
use dataplane::report::L2fwdReport;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::LazyLock;

const L2FWD: &str = env!("CARGO_BIN_EXE_l2fwd");
static DPCTL: LazyLock<String> = LazyLock::new(|| workspace_bin("dpctl"));
const FRAMES: usize = 2_000;

/// Starts `bin` with its stdout a pipe whose read end is closed at once.
fn spawn_with_closed_stdout(cmd: &mut Command) -> Child {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the app");
    drop(child.stdout.take());
    child
}

fn assert_clean_exit(what: &str, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        None,
        "{what} was killed by a signal ({}); stderr:\n{stderr}",
        out.status
    );
    assert!(
        out.status.success(),
        "{what}: {}; stderr:\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{what} panicked:\n{stderr}");
}

#[test]
fn l2fwd_with_closed_stdout_finishes_and_flushes_its_captures() {
    let dir = scratch("closed-stdout");
    let inputs = [
        random_frames(11, FRAMES, 60, 1514),
        random_frames(12, FRAMES, 60, 1514),
    ];
    let eal = pcap_pair_eal(&dir, &inputs);
    let report = dir.join("report.json");
    let sock = dir.join("ctl.sock");
    // -T 1: periodic prints while the run goes on, all of them into the closed pipe.
    let child = spawn_with_closed_stdout(
        Command::new(L2FWD)
            .args(&eal)
            .arg("--")
            .args(["-p", "0x3", "-T", "1", "--duration", "2"])
            .arg("--report")
            .arg(&report)
            .arg("--control")
            .arg(&sock),
    );
    let out = child.wait_with_output().unwrap();
    assert_clean_exit("l2fwd", &out);
    let r: L2fwdReport =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("the report is written"))
            .unwrap();
    assert_eq!(r.rx_packets, 2 * FRAMES as u64, "{r:?}");
    assert_eq!(r.tx_packets, 2 * FRAMES as u64, "{r:?}");
    for i in 0..2 {
        let got = read_pcap(&dir.join(format!("out{i}.pcap")));
        assert_eq!(got.len(), FRAMES, "out{i}.pcap holds every forwarded frame");
    }
    assert!(!sock.exists(), "the control socket is removed");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits for l2fwd's control socket to appear (or for l2fwd to exit).
fn wait_for_socket(l2fwd: &mut Child, sock: &Path) {
    while !sock.exists() {
        if let Some(st) = l2fwd.try_wait().unwrap() {
            panic!("l2fwd exited before opening its control socket: {st}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn dpctl_with_closed_stdout_exits_cleanly() {
    let dir = scratch("dpctl-closed-stdout");
    let sock = dir.join("ctl.sock");
    let mut eal = eal_base();
    eal.push("--vdev=net_null0".into());
    eal.push("--vdev=net_null1".into());
    let mut l2fwd = Command::new(L2FWD)
        .args(&eal)
        .arg("--")
        .args(["-p", "0x3", "-T", "0", "--control"])
        .arg(&sock)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_socket(&mut l2fwd, &sock);
    let dpctl = spawn_with_closed_stdout(
        Command::new(&*DPCTL)
            .arg("--socket")
            .arg(&sock)
            .args(["dma", "list"]),
    );
    let out = dpctl.wait_with_output().unwrap();
    let kill = Command::new("kill")
        .args(["-INT", &l2fwd.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let l2 = l2fwd.wait_with_output().unwrap();
    assert_clean_exit("dpctl", &out);
    assert_clean_exit("l2fwd", &l2);
    let _ = std::fs::remove_dir_all(&dir);
}
