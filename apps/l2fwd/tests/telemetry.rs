//! DPDK's own telemetry client sees the application: `dpdk-telemetry.py -f PREFIX` against a
//! running l2fwd answers `/l2fwd/stats`, `/l2fwd/lcores` and `/l2fwd/dma` with live counters
//! that the final report then bounds from above.

use apps_common::testing::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const L2FWD: &str = env!("CARGO_BIN_EXE_l2fwd");

fn u64_at(v: &Value, path: &[&str]) -> u64 {
    let mut at = v;
    for k in path {
        at = &at[k];
    }
    at.as_u64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {v}"))
}

#[test]
fn dpdk_telemetry_py_sees_l2fwd_counters_bounded_by_the_final_report() {
    let dir = scratch("telemetry");
    let report_path = dir.join("report.json");
    let mut eal = eal_base();
    let prefix = file_prefix(&eal);
    eal.extend(
        [
            "--vdev=net_null0,size=1500",
            "--vdev=net_null1,size=1500",
            "--vdev=dma_skeleton0,lcore=0",
        ]
        .map(String::from),
    );
    let mut l2fwd = Command::new(L2FWD)
        .args(&eal)
        .arg("--")
        .args(["-p", "0x3", "-T", "0", "--copy", "dma", "--duration", "600"])
        .arg("--report")
        .arg(&report_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Ask until every command has live data: the socket appears with the EAL, the answers once
    // the control loop has published its first snapshot with traffic in it.
    let cmds = ["/", "/l2fwd/stats", "/l2fwd/lcores", "/l2fwd/dma"];
    let deadline = Instant::now() + Duration::from_secs(60);
    let live = loop {
        let a = telemetry(&prefix, &cmds);
        let ready = u64_at_opt(&a, &["/l2fwd/stats", "rx_packets"]) > 0
            && a.get("/l2fwd/lcores")
                .and_then(Value::as_object)
                .is_some_and(|l| l.values().any(|l| l["busy_cycles"].as_u64() > Some(0)))
            && a.get("/l2fwd/dma")
                .and_then(|d| d["0"]["submitted"].as_u64())
                > Some(0);
        if ready {
            break a;
        }
        if let Some(st) = l2fwd.try_wait().unwrap() {
            panic!("l2fwd exited ({st}) before telemetry answered: {a:?}");
        }
        assert!(
            Instant::now() < deadline,
            "telemetry never had live data: {a:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let kill = Command::new("kill")
        .args(["-INT", &l2fwd.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = l2fwd.wait_with_output().unwrap();
    assert_success("l2fwd", &out);
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();

    // The application's commands are listed beside the library's.
    let listed: Vec<&str> = live["/"]
        .as_array()
        .expect("/ lists the commands")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for c in &cmds[1..] {
        assert!(listed.contains(c), "{c} not in {listed:?}");
    }
    assert!(listed.contains(&"/ethdev/stats"), "{listed:?}");

    // /l2fwd/stats: live counters, nonzero, and no more than the final report's.
    let stats = &live["/l2fwd/stats"];
    for key in ["rx_packets", "tx_packets"] {
        let (now, fin) = (u64_at(stats, &[key]), u64_at(&report, &[key]));
        assert!(now > 0 && now <= fin, "{key}: telemetry {now}, final {fin}");
    }
    let copies = u64_at(stats, &["copies", "cpu"]) + u64_at(stats, &["copies", "dma"]);
    let final_copies = u64_at(&report, &["copies", "cpu"]) + u64_at(&report, &["copies", "dma"]);
    assert!(
        copies > 0 && copies <= final_copies,
        "copies {copies} of {final_copies}"
    );
    for reason in ["tx_full", "runt", "no_mbuf"] {
        let (now, fin) = (
            u64_at(stats, &["dropped", reason]),
            u64_at(&report, &["dropped", reason]),
        );
        assert!(now <= fin, "dropped {reason}: telemetry {now}, final {fin}");
    }
    let ports = report["ports"].as_array().unwrap();
    assert_eq!(
        stats["ports"].as_object().map(|p| p.len()),
        Some(ports.len())
    );
    for p in ports {
        let id = p["port"].to_string();
        let live_port = &stats["ports"][&id];
        assert_eq!(live_port["name"], p["name"], "port {id}");
        let (now, fin) = (
            u64_at(live_port, &["rx_packets"]),
            u64_at(p, &["rx_packets"]),
        );
        assert!(
            now > 0 && now <= fin,
            "port {id} rx: telemetry {now}, final {fin}"
        );
    }

    // /l2fwd/lcores: the forwarding lcore, loaded: busy cycles counted, a percentage.
    let lcores = report["lcores"].as_array().unwrap();
    assert_eq!(
        live["/l2fwd/lcores"].as_object().map(|l| l.len()),
        Some(lcores.len())
    );
    for l in lcores {
        let id = l["lcore"].to_string();
        let live_l = &live["/l2fwd/lcores"][&id];
        assert_eq!(live_l["lcore"], l["lcore"]);
        for key in ["rx_packets", "tx_packets", "busy_cycles"] {
            let (now, fin) = (u64_at(live_l, &[key]), u64_at(l, &[key]));
            assert!(
                now > 0 && now <= fin,
                "lcore {id} {key}: {now}, final {fin}"
            );
        }
        assert!(u64_at(live_l, &["idle_cycles"]) <= u64_at(l, &["idle_cycles"]));
        assert!(u64_at(live_l, &["busy_pct"]) <= 100, "{live_l}");
        let pct = l["busy_pct"].as_f64().expect("busy_pct in the report");
        assert!(
            (0.0..=100.0).contains(&pct) && pct > 0.0,
            "final busy_pct {pct}"
        );
    }

    // /l2fwd/dma: the channel, its state, its counters up to the final ones.
    let ch = &live["/l2fwd/dma"]["0"];
    let fin = &report["dma_channels"][0];
    assert_eq!(ch["name"], "dma_skeleton0");
    assert_eq!(ch["name"], fin["name"]);
    assert!(ch["state"].is_string(), "{ch}");
    for key in ["submitted", "completed"] {
        let (now, f) = (u64_at(ch, &[key]), u64_at(fin, &[key]));
        assert!(now <= f, "dma {key}: telemetry {now}, final {f}");
    }
    assert!(u64_at(ch, &["submitted"]) > 0);

    // The console shows the busy share too.
    let printed = String::from_utf8_lossy(&out.stdout);
    let line = printed
        .lines()
        .find(|l| l.starts_with("Lcore  1: rx"))
        .unwrap_or_else(|| panic!("no final lcore line in:\n{printed}"));
    assert!(line.contains("busy") && line.ends_with('%'), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn u64_at_opt(a: &serde_json::Map<String, Value>, path: &[&str]) -> u64 {
    let mut at = match a.get(path[0]) {
        Some(v) => v,
        None => return 0,
    };
    for k in &path[1..] {
        at = &at[k];
    }
    at.as_u64().unwrap_or(0)
}
