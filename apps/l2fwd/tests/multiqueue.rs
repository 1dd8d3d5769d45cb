//! Several RX queues per port, two forwarding lcores: net_pcap ports with two `rx_pcap` files
//! each (a queue per file) and two `tx_pcap` files. Every frame comes out of the paired port,
//! each input file's frames in their original order (the order of a queue, hence of its flows),
//! with MACs rewritten; both lcores carried traffic; the report balances.

use apps_common::testing::*;
use dataplane::report::L2fwdReport;
use std::collections::HashMap;
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_l2fwd");
const FRAMES: usize = 3_000;
const QUEUES: usize = 2;

struct Run {
    /// inputs[port][queue]
    inputs: Vec<Vec<Vec<Vec<u8>>>>,
    /// outputs[port][queue]
    outputs: Vec<Vec<Vec<Vec<u8>>>>,
    report: L2fwdReport,
    stdout: String,
}

fn run(name: &str, app_extra: &[&str]) -> Run {
    let dir = scratch(name);
    let mut eal = eal_base();
    let mut inputs = Vec::new();
    for port in 0..2 {
        let mut files = Vec::new();
        let mut vdev = format!("--vdev=net_pcap{port}");
        for q in 0..QUEUES {
            let frames = random_frames((10 * port + q) as u64 + 1, FRAMES, 60, 1514);
            let rx = dir.join(format!("in{port}_{q}.pcap"));
            write_pcap(&rx, &frames);
            vdev.push_str(&format!(",rx_pcap={}", rx.display()));
            files.push(frames);
        }
        for q in 0..QUEUES {
            let tx = dir.join(format!("out{port}_{q}.pcap"));
            vdev.push_str(&format!(",tx_pcap={}", tx.display()));
        }
        eal.push(vdev);
        inputs.push(files);
    }
    let report_path = dir.join("report.json");
    let rp = report_path.to_str().unwrap();
    let mut app = vec!["-p", "0x3", "-T", "0", "--duration", "2", "--report", rp];
    app.extend_from_slice(app_extra);
    let out = run_app(BIN, &eal, &app);
    assert_success("l2fwd", &out);
    let report: L2fwdReport =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let outputs = (0..2)
        .map(|port| {
            (0..QUEUES)
                .map(|q| read_out(&dir.join(format!("out{port}_{q}.pcap"))))
                .collect()
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        inputs,
        outputs,
        report,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

/// A capture the port never wrote to (a TX queue nobody used) reads as empty.
fn read_out(path: &Path) -> Vec<Vec<u8>> {
    if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) == 0 {
        return Vec::new();
    }
    read_pcap(path)
}

/// Every frame received on `rx` left `tx`, MACs rewritten and the rest identical; within each
/// output file, each input file's frames keep their order. Returns, per output queue, the
/// input queues whose frames it carried.
fn check_forwarded(run: &Run, rx: usize, tx: usize) -> Vec<Vec<usize>> {
    // Frames are random past the MACs: identify each by its bytes from the EtherType on.
    let mut origin: HashMap<&[u8], (usize, usize)> = HashMap::new();
    for (q, frames) in run.inputs[rx].iter().enumerate() {
        for (i, f) in frames.iter().enumerate() {
            assert!(origin.insert(&f[12..], (q, i)).is_none(), "duplicate input");
        }
    }
    let tx_mac = parse_mac(&run.report.ports[tx].mac);
    let mut seen = vec![vec![false; FRAMES]; QUEUES];
    let mut carried = Vec::new();
    for (oq, frames) in run.outputs[tx].iter().enumerate() {
        let mut last: Vec<Option<usize>> = vec![None; QUEUES];
        for (k, g) in frames.iter().enumerate() {
            let &(q, i) = origin
                .get(&g[12..])
                .unwrap_or_else(|| panic!("port {tx} queue {oq} frame {k}: not an input frame"));
            assert_eq!(&g[0..6], &[2, 0, 0, 0, 0, tx as u8], "dst MAC");
            assert_eq!(&g[6..12], &tx_mac, "src MAC");
            assert!(
                last[q].is_none_or(|l| l < i),
                "port {tx} queue {oq}: input {rx}/{q} frame {i} after frame {:?}",
                last[q]
            );
            last[q] = Some(i);
            assert!(!seen[q][i], "frame {rx}/{q}/{i} sent twice");
            seen[q][i] = true;
        }
        carried.push((0..QUEUES).filter(|&q| last[q].is_some()).collect());
    }
    for (q, s) in seen.iter().enumerate() {
        let missing = s.iter().filter(|&&b| !b).count();
        assert_eq!(
            missing, 0,
            "input {rx}/{q}: {missing} frames never left port {tx}"
        );
    }
    carried
}

fn check_report(run: &Run) {
    let r = &run.report;
    let total = (2 * QUEUES * FRAMES) as u64;
    assert_eq!((r.rx_packets, r.tx_packets), (total, total), "{r:?}");
    assert_eq!(r.dropped_total(), 0);
    assert!(r.balances());
    assert_eq!(r.mbufs_in_use_at_exit, 0);
    assert_eq!(r.lcores.len(), 2, "two forwarding lcores: {:?}", r.lcores);
    for l in &r.lcores {
        assert!(l.rx_packets > 0, "lcore {} carried nothing", l.lcore);
    }
    assert_eq!(r.lcores.iter().map(|l| l.rx_packets).sum::<u64>(), total);
}

#[test]
fn queue_map_puts_each_queue_on_its_lcore_and_keeps_its_order() {
    // Each lcore polls queue q of both ports and sends on its own TX queue of each: input file
    // q of one port comes out as output file q of the other.
    let run = run("qmap", &["--queue-map", "(0,0,0),(0,1,1),(1,0,0),(1,1,1)"]);
    check_report(&run);
    for (rx, tx) in [(0, 1), (1, 0)] {
        let carried = check_forwarded(&run, rx, tx);
        assert_eq!(carried, [vec![0], vec![1]], "port {rx} -> {tx}");
    }
    assert!(
        run.stdout
            .contains("Lcore 1: RX port 0 queue 1 -> TX port 1 queue 1, RX port 1 queue 1 -> TX port 0 queue 1"),
        "{}",
        run.stdout
    );
}

#[test]
fn rxq_deals_the_queues_over_every_lcore_and_keeps_each_queues_order() {
    // Two queues a port, dealt queue-major over lcores 0 and 1: each lcore polls both queues
    // of one port and sends them on one TX queue of the other.
    let run = run("rxq", &["--rxq", "2"]);
    check_report(&run);
    for (rx, tx) in [(0, 1), (1, 0)] {
        let carried = check_forwarded(&run, rx, tx);
        assert_eq!(carried, [vec![0, 1], vec![]], "port {rx} -> {tx}");
    }
    assert!(
        run.stdout.contains("2 RX / 1 TX queue(s)"),
        "{}",
        run.stdout
    );
}
