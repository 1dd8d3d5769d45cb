//! A closed stderr (`l2fwd ... 2>&1 | head`, a log reader that went away) must not abort the
//! run: the control thread's log lines (a DMA channel stalled, completes again) go into the
//! closed pipe and the forwarder goes on, shuts down cleanly and writes a balanced report.

use apps_common::testing::*;
use dataplane::report::{DmaChannelState, L2fwdReport};
use serde_json::Value;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

const L2FWD: &str = env!("CARGO_BIN_EXE_l2fwd");
static DPCTL: LazyLock<String> = LazyLock::new(|| workspace_bin("dpctl"));

/// `dpctl --socket SOCK ARGS`: its JSON answer, or why it failed (l2fwd gone, an error).
fn dpctl(sock: &Path, args: &[&str]) -> Result<Value, String> {
    let out = Command::new(&*DPCTL)
        .arg("--socket")
        .arg(sock)
        .args(args)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

/// Waits until dma_skeleton0 is in `state`, as `dma list` says. `dma list` is answered by the
/// control thread, which logs a state change before it answers the next request: once the
/// answer shows the new state, the log line has been written into the closed pipe.
fn await_state(l2fwd: &mut Child, sock: &Path, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(st) = l2fwd.try_wait().unwrap() {
            panic!(
                "l2fwd died ({st}, signal {:?}) waiting for dma_skeleton0 to be {state}",
                st.signal()
            );
        }
        // An error (l2fwd gone mid-answer) is judged on the next round, by its exit status.
        let list = dpctl(sock, &["dma", "list"]);
        let now = list.as_ref().ok().and_then(|l| {
            l["channels"]
                .as_array()?
                .iter()
                .find(|c| c["name"] == "dma_skeleton0")
                .map(|c| c["state"].clone())
        });
        if now.as_ref().and_then(Value::as_str) == Some(state) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "dma_skeleton0 never became {state}: {list:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn l2fwd_with_closed_stderr_logs_a_stall_and_its_return_and_exits_cleanly() {
    let dir = scratch("closed-stderr");
    let sock = dir.join("ctl.sock");
    let report = dir.join("report.json");
    let mut eal = eal_base();
    eal.push("--vdev=net_null0,size=1500".into());
    eal.push("--vdev=net_null1,size=1500".into());
    eal.push("--vdev=dma_skeleton0,lcore=0".into());
    let mut l2fwd = Command::new(L2FWD)
        .args(&eal)
        .arg("--")
        .args(["-p", "0x3", "-T", "0"])
        .args(["--copy", "dma", "--copybreak", "256"])
        .args(["--allow-fault-injection", "--dma-timeout-ms", "2000"])
        .arg("--control")
        .arg(&sock)
        .arg("--report")
        .arg(&report)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The read end closes at once: every write to stderr from now on fails with EPIPE.
    drop(l2fwd.stderr.take());
    while !sock.exists() {
        if let Some(st) = l2fwd.try_wait().unwrap() {
            panic!("l2fwd exited before opening its control socket: {st}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    await_state(&mut l2fwd, &sock, "active");
    // The worker gives up on the stalled engine; the control thread logs "stalled".
    dpctl(&sock, &["dma", "fault", "dma_skeleton0", "stall"]).unwrap();
    await_state(&mut l2fwd, &sock, "stalled");
    // It completes again; the control thread logs "completes again".
    dpctl(&sock, &["dma", "fault", "dma_skeleton0", "none"]).unwrap();
    await_state(&mut l2fwd, &sock, "active");
    let kill = Command::new("kill")
        .args(["-INT", &l2fwd.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let st = l2fwd.wait().unwrap();
    assert_eq!(st.signal(), None, "l2fwd was killed by a signal: {st}");
    assert!(st.success(), "l2fwd: {st}");
    let r: L2fwdReport =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("the report is written"))
            .unwrap();
    assert!(r.balances(), "{r:?}");
    assert_eq!(r.in_flight, 0, "{r:?}");
    assert_eq!(r.mbufs_in_use_at_exit, 0, "{r:?}");
    let ch = r
        .dma_channels
        .iter()
        .find(|c| c.name == "dma_skeleton0")
        .expect("dma_skeleton0 in the report");
    assert!(ch.stalls >= 1, "{r:?}");
    assert_eq!(ch.state, DmaChannelState::Active, "{r:?}");
    assert!(!sock.exists(), "the control socket is removed");
    let _ = std::fs::remove_dir_all(&dir);
}
