//! DPDK l2fwd's own options, as its users type them: `-q` ports per lcore, `--portmap`,
//! `--version`, and the defaults shown in `--help`.

use apps_common::testing::*;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_l2fwd");

/// Four net_null ports, and two lcores (1 and 2, both forwarding) on one CPU.
fn four_ports_two_workers() -> Vec<String> {
    let mut eal: Vec<String> = eal_base()
        .into_iter()
        .filter(|a| a != "-l" && a != "0-1")
        .collect();
    eal.push("--lcores=1@0,2@0".into());
    for i in 0..4 {
        eal.push(format!("--vdev=net_null{i}"));
    }
    eal
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn portmap_and_ports_per_lcore_place_the_ports_as_dpdk_does() {
    let dir = scratch("portmap");
    let report = dir.join("r.json");
    let out = run_app(
        BIN,
        &four_ports_two_workers(),
        &[
            "-p",
            "0xf",
            "-q",
            "2",
            "--portmap",
            "(0,3)(1,2)",
            "-T",
            "0",
            "--duration",
            "0.3",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_success("l2fwd -q 2 --portmap", &out);
    // Both workers carried traffic, and their shares add up to the run's.
    let r: dataplane::report::L2fwdReport =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let lcores: Vec<u32> = r.lcores.iter().map(|l| l.lcore).collect();
    assert_eq!(lcores, [1, 2], "{r:?}");
    assert!(r.lcores.iter().all(|l| l.rx_packets > 0), "{r:?}");
    assert_eq!(
        r.lcores.iter().map(|l| l.tx_packets).sum::<u64>(),
        r.tx_packets
    );
    let s = stdout(&out);
    assert!(
        s.contains("Lcore 1: RX port 0 -> TX port 3, RX port 1 -> TX port 2\n"),
        "{s}"
    );
    assert!(
        s.contains("Lcore 2: RX port 2 -> TX port 1, RX port 3 -> TX port 0\n"),
        "{s}"
    );
}

#[test]
fn too_few_lcores_for_q_and_a_bad_portmap_are_refused() {
    let out = run_app(BIN, &four_ports_two_workers(), &["-p", "0xf", "-q", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("4 RX queue(s) at -q 1 per lcore need 4 forwarding lcores, but there are 2"),
        "{e}"
    );
    let out = run_app(
        BIN,
        &four_ports_two_workers(),
        &["-p", "0xf", "--portmap", "(0,1)(2,2)"],
    );
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("portmap uses port 2 twice"), "{e}");
}

#[test]
fn version_and_help_with_defaults() {
    for (name, bin) in [
        ("l2fwd", BIN.to_owned()),
        ("pktgen", workspace_bin("pktgen")),
        ("dpctl", workspace_bin("dpctl")),
        ("refbench", workspace_bin("refbench")),
    ] {
        let out = Command::new(&bin).arg("--version").output().unwrap();
        assert!(out.status.success(), "{name} --version");
        assert_eq!(
            stdout(&out).trim(),
            format!("{name} {}", env!("CARGO_PKG_VERSION"))
        );
    }
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let h = stdout(&out);
    for shown in [
        "(0 = quiet) [default: 10]",
        "[default: 256]",
        "(1..=60000) [default: 10]",
        "-q, --ports-per-lcore",
        "--portmap",
    ] {
        assert!(h.contains(shown), "--help should show {shown:?}:\n{h}");
    }
}
