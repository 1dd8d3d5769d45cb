//! dpctl finds a running l2fwd as a user would: by the `--file-prefix` both were given, with no
//! `--control` path, through l2fwd.sock in DPDK's runtime directory for that prefix.

use apps_common::testing::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

const L2FWD: &str = env!("CARGO_BIN_EXE_l2fwd");
static DPCTL: LazyLock<String> = LazyLock::new(|| workspace_bin("dpctl"));

#[test]
fn dpctl_finds_l2fwd_by_its_file_prefix() {
    let mut eal = eal_base();
    let prefix = file_prefix(&eal);
    eal.push("--vdev=net_null0".into());
    eal.push("--vdev=net_null1".into());
    let mut l2fwd = Command::new(L2FWD)
        .args(&eal)
        .arg("--")
        .args(["-p", "0x3", "-T", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Until l2fwd listens, dpctl says it cannot connect; then it answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    let stats = loop {
        let out = Command::new(&*DPCTL)
            .args(["-f", &prefix, "stats"])
            .output()
            .unwrap();
        if out.status.success() {
            break serde_json::from_slice::<Value>(&out.stdout).unwrap();
        }
        let e = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(e.contains("cannot connect to"), "{e}");
        if let Some(st) = l2fwd.try_wait().unwrap() {
            panic!("l2fwd exited ({st}) before dpctl reached it: {e}");
        }
        assert!(Instant::now() < deadline, "dpctl never reached l2fwd: {e}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(stats["ports"].as_array().map(Vec::len), Some(2), "{stats}");
    // Loop-gap windows: each answer closes one (1, then 2) and names every worker's lcore.
    let lcores = lcore_ids(&stats);
    assert!(!lcores.is_empty(), "{stats}");
    for window in [1, 2] {
        let out = Command::new(&*DPCTL)
            .args(["-f", &prefix, "loop-gaps"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let w: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(w["window"], window, "{w}");
        assert_eq!(lcore_ids(&w), lcores, "{w}");
        for l in w["lcores"].as_array().unwrap() {
            assert!(l["max_loop_gap_us"].as_f64().unwrap() > 0.0, "{w}");
            assert!(l["whole_window"].is_boolean(), "{w}");
        }
    }
    // No copy stage: copybreak and DMA requests are refused, saying why.
    for (args, why) in [
        (
            &["copybreak", "512"][..],
            "copybreak applies with --copy dma or auto; this run copies with --copy none",
        ),
        (&["dma", "remove", "x"][..], "no copy stage (--copy none)"),
    ] {
        let out = Command::new(&*DPCTL)
            .args(["-f", &prefix])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "dpctl {args:?}");
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains(why), "dpctl {args:?}: {e}");
    }
    let kill = Command::new("kill")
        .args(["-INT", &l2fwd.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = l2fwd.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    let sock = printed
        .lines()
        .find_map(|l| l.strip_prefix("Control socket: "))
        .expect("l2fwd says where it listens");
    assert!(
        sock.ends_with(&format!("/dpdk/{prefix}/l2fwd.sock")),
        "{sock}"
    );
    assert!(!std::path::Path::new(sock).exists(), "removed at exit");
}
