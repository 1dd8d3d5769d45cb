//! l2fwd on two net_pcap ports: every frame comes out of the paired port, in order, with its
//! MACs rewritten and every other byte identical; the report balances.

use apps_common::testing::*;
use dataplane::report::{DmaChannelState, L2fwdReport};

const BIN: &str = env!("CARGO_BIN_EXE_l2fwd");
const FRAMES: usize = 10_000;

struct Run {
    inputs: [Vec<Vec<u8>>; 2],
    outputs: [Vec<Vec<u8>>; 2],
    report: L2fwdReport,
    stdout: String,
}

fn run_pcap_pair(name: &str, extra: &[&str]) -> Run {
    run_pcap_pair_with(name, &[], extra)
}

fn run_pcap_pair_with(name: &str, eal_extra: &[&str], extra: &[&str]) -> Run {
    let dir = scratch(name);
    let inputs = [
        random_frames(1, FRAMES, 60, 1514),
        random_frames(2, FRAMES, 60, 1514),
    ];
    let mut eal = pcap_pair_eal(&dir, &inputs);
    eal.extend(eal_extra.iter().map(|s| s.to_string()));
    let report_path = dir.join("report.json");
    let rp = report_path.to_str().unwrap();
    let mut app = vec!["-p", "0x3", "-T", "0", "--duration", "2", "--report", rp];
    app.extend_from_slice(extra);
    let out = run_app(BIN, &eal, &app);
    assert_success("l2fwd", &out);
    let report: L2fwdReport =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let outputs = [
        read_pcap(&dir.join("out0.pcap")),
        read_pcap(&dir.join("out1.pcap")),
    ];
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        inputs,
        outputs,
        report,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

fn check_report(r: &L2fwdReport) {
    assert_eq!(r.rx_packets, 2 * FRAMES as u64, "{r:?}");
    assert_eq!(r.tx_packets, 2 * FRAMES as u64, "{r:?}");
    assert_eq!(r.dropped_total(), 0, "{r:?}");
    assert_eq!(r.in_flight, 0);
    assert!(r.balances());
    assert_eq!(r.mbufs_in_use_at_exit, 0);
    assert!(r.elapsed_s > 0.0);
    assert_eq!(r.ports.len(), 2);
    for p in &r.ports {
        assert_eq!(p.rx_packets, FRAMES as u64);
        assert_eq!(p.tx_packets, FRAMES as u64);
    }
}

/// The device's byte counters (net_pcap keeps them) match the captures.
fn check_bytes(run: &Run) {
    let total = |frames: &[Vec<u8>]| frames.iter().map(|f| f.len() as u64).sum::<u64>();
    for (i, p) in run.report.ports.iter().enumerate() {
        assert_eq!(p.rx_bytes, total(&run.inputs[i]), "port {i} rx_bytes");
        assert_eq!(p.tx_bytes, total(&run.outputs[i]), "port {i} tx_bytes");
        assert_eq!((p.imissed, p.ierrors, p.rx_nombuf), (0, 0, 0));
    }
}

fn check_forwarded_with_macs(run: &Run) {
    for (rx, tx) in [(0usize, 1usize), (1, 0)] {
        let sent = &run.inputs[rx];
        let got = &run.outputs[tx];
        assert_eq!(got.len(), sent.len(), "port {rx} -> {tx}: frame count");
        let tx_mac = parse_mac(&run.report.ports[tx].mac);
        for (i, (s, g)) in sent.iter().zip(got).enumerate() {
            assert_eq!(g.len(), s.len(), "frame {i} length");
            assert_eq!(&g[0..6], &[2, 0, 0, 0, 0, tx as u8], "frame {i} dst MAC");
            assert_eq!(&g[6..12], &tx_mac, "frame {i} src MAC");
            assert_eq!(&g[12..], &s[12..], "frame {i} after the MACs");
        }
    }
}

#[test]
fn forwards_every_frame_in_order_with_macs_rewritten() {
    let run = run_pcap_pair("mac", &[]);
    check_bytes(&run);
    // The final summary reads as text: drop reasons on a line, bytes with a unit, no JSON.
    let summary = &run.stdout[run.stdout.find("Final statistics").expect("summary")..];
    assert!(!summary.contains('{'), "{summary}");
    assert!(
        summary.contains("Total packets dropped:               0 (no_mbuf 0, runt 0, tx_full 0)"),
        "{summary}"
    );
    assert!(summary.contains(" MB)  tx "), "{summary}");
    check_report(&run.report);
    check_forwarded_with_macs(&run);
    assert_eq!(
        run.report.copies.cpu + run.report.copies.dma,
        0,
        "--copy none copies nothing"
    );
}

/// The software dmadev; its copy thread runs on lcore 0, beside the main lcore, which sleeps.
const DMA_SKELETON: &str = "--vdev=dma_skeleton0,lcore=0";

#[test]
fn copy_cpu_delivers_every_frame_intact_in_order() {
    let run = run_pcap_pair("cpu", &["--copy", "cpu"]);
    check_report(&run.report);
    check_forwarded_with_macs(&run);
    assert_eq!(run.report.copies.cpu, 2 * FRAMES as u64);
    assert_eq!(run.report.copies.dma, 0);
}

#[test]
fn copy_dma_delivers_every_frame_intact_in_order() {
    let run = run_pcap_pair_with(
        "dma",
        &[DMA_SKELETON],
        &[
            "--copy",
            "dma",
            "--copybreak",
            "256",
            "--dma-timeout-ms",
            "5000",
        ],
    );
    check_report(&run.report);
    check_forwarded_with_macs(&run);
    let c = &run.report.copies;
    assert!(c.dma > 0, "DMA asked for and used: {c:?}");
    assert_eq!(c.cpu + c.dma, 2 * FRAMES as u64, "{c:?}");
    assert_eq!(c.dma_errors, 0);
    let ch = &run.report.dma_channels;
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].name, "dma_skeleton0");
    assert_eq!(ch[0].state, DmaChannelState::Active);
    assert_eq!(ch[0].submitted, c.dma);
    assert_eq!(ch[0].completed, c.dma);
}

#[test]
fn copy_auto_delivers_every_frame_intact_in_order() {
    let run = run_pcap_pair_with(
        "auto",
        &[DMA_SKELETON],
        &["--copy", "auto", "--dma-timeout-ms", "5000"],
    );
    check_report(&run.report);
    check_forwarded_with_macs(&run);
    let c = &run.report.copies;
    assert_eq!(c.cpu + c.dma, 2 * FRAMES as u64, "{c:?}");
}

#[test]
fn no_mac_updating_forwards_frames_unchanged() {
    let run = run_pcap_pair("nomac", &["--no-mac-updating"]);
    check_report(&run.report);
    assert_eq!(run.outputs[1], run.inputs[0]);
    assert_eq!(run.outputs[0], run.inputs[1]);
}
