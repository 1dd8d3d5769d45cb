//! The engine on a real EAL (--no-huge --no-pci, two net_null ports of 512-byte frames, dma_skeleton0, two
//! lcores): a run with the DMA copy stage forwards, stops on its duration, shuts down with
//! every mbuf back in the pool and its books balanced, and tells the app what happened in
//! order; a configuration the EAL cannot serve is refused by `Engine::new` before anything
//! starts. One EAL per process, and a run closes its ports: one test, refusals first.

use dataplane::copy::CopyMode;
use dataplane::engine::{Engine, EngineConfig, EngineError, Event};
use pmd::Eal;
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;
use std::time::Duration;

static EAL: OnceLock<Eal> = OnceLock::new();

fn eal() -> &'static Eal {
    EAL.get_or_init(|| {
        Eal::init(&[
            "engine_test",
            "--no-huge",
            "--no-pci",
            "-m",
            "512",
            "-l",
            "0,1",
            "--log-level=error",
            "--vdev=net_null0,size=512",
            "--vdev=net_null1,size=512",
            "--vdev=dma_skeleton0",
            &format!("--file-prefix=enginetest{}", std::process::id()),
        ])
        .expect("EAL init")
    })
}

fn config(dir: &std::path::Path) -> EngineConfig {
    EngineConfig {
        portmask: 0x3,
        portmap: None,
        ports_per_lcore: None,
        rxq: None,
        txq: None,
        queue_map: None,
        mac_updating: true,
        copy: CopyMode::Dma,
        copybreak: 1,
        dma: Vec::new(),
        dma_timeout: Duration::from_secs(2),
        allow_faults: false,
        grace_timeout: Duration::from_secs(2),
        control_socket: Some(dir.join("ctl.sock")),
        stats_period: Some(Duration::from_millis(100)),
        duration: Some(Duration::from_millis(500)),
    }
}

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("engine-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn refusals_then_a_dma_run() {
    what_the_eal_cannot_serve_is_refused_before_anything_starts();
    a_dma_run_forwards_shuts_down_clean_and_reports_in_order();
}

fn a_dma_run_forwards_shuts_down_clean_and_reports_in_order() {
    let dir = scratch("run");
    let engine = Engine::new(eal(), config(&dir)).expect("engine");
    let quit = AtomicBool::new(false);
    let mut seen: Vec<String> = Vec::new();
    let mut stats_rx = Vec::new();
    let report = engine
        .run(&quit, &mut |ev| {
            seen.push(
                match &ev {
                    Event::PortStarted { .. } => "port",
                    Event::LcorePlan { .. } => "lcore",
                    Event::LcoreIdle { .. } => "idle",
                    Event::ControlSocket(_) => "socket",
                    Event::NoDeviceEvents(_) => "no-events",
                    Event::NoUeventMonitor(_) => "no-uevents",
                    Event::DeviceRemoved { .. } => "removed",
                    Event::Stats(_) => "stats",
                    Event::Stopping { .. } => "stopping",
                }
                .to_owned(),
            );
            if let Event::Stats(s) = ev {
                stats_rx.push(s.ports.iter().map(|p| p.totals.rx).sum::<u64>());
            }
        })
        .expect("run");
    // Start-up, then statistics while running, then the stop.
    let first_stats = seen.iter().position(|s| s == "stats").expect("stats seen");
    assert_eq!(&seen[..2], ["port", "port"], "{seen:?}");
    assert_eq!(
        &seen[2..4],
        ["lcore", "lcore"],
        "two forwarding lcores (every lcore of -l): {seen:?}"
    );
    assert_eq!(seen[4], "socket", "{seen:?}");
    assert!(seen[5..first_stats].iter().all(|s| s == "no-events"));
    assert_eq!(seen.last().map(String::as_str), Some("stopping"));
    assert_eq!(seen.iter().filter(|s| *s == "stopping").count(), 1);
    assert!(
        stats_rx.windows(2).all(|w| w[0] <= w[1]),
        "counters only grow: {stats_rx:?}"
    );
    // The books: everything received was sent or dropped, every mbuf is back, and the
    // payloads went through the engine.
    assert!(report.rx_packets > 0, "{report:?}");
    assert!(report.balances(), "{report:?}");
    assert_eq!(report.in_flight, 0);
    assert_eq!(report.mbufs_in_use_at_exit, 0, "{report:?}");
    assert_eq!(report.ports.len(), 2);
    // Two forwarding lcores (0 and 1, a port each): their own counters add up to the run's.
    assert_eq!(report.lcores.len(), 2, "{report:?}");
    assert_eq!(
        report.lcores.iter().map(|l| l.lcore).collect::<Vec<_>>(),
        [0, 1]
    );
    let sum =
        |f: fn(&dataplane::report::LcoreReport) -> u64| report.lcores.iter().map(f).sum::<u64>();
    assert_eq!(
        (sum(|l| l.rx_packets), sum(|l| l.tx_packets)),
        (report.rx_packets, report.tx_packets)
    );
    assert!(report.lcores.iter().all(|l| l.rx_packets > 0), "{report:?}");
    assert_eq!(sum(|l| l.copies_dma), report.copies.dma);
    assert!(report.copies.dma > 0, "{report:?}");
    assert_eq!(
        report.copies.cpu + report.copies.dma,
        report.tx_packets + report.dropped_total(),
        "{report:?}"
    );
    assert_eq!(report.dma_channels.len(), 1);
    assert_eq!(report.dma_channels[0].name, "dma_skeleton0");
    assert_eq!(
        report.dma_channels[0].submitted,
        report.dma_channels[0].completed
    );
    assert!(
        !dir.join("ctl.sock").exists(),
        "the control socket is removed at shutdown"
    );
}

fn what_the_eal_cannot_serve_is_refused_before_anything_starts() {
    let dir = scratch("refused");
    let e = Engine::new(
        eal(),
        EngineConfig {
            portmask: 0x4,
            ..config(&dir)
        },
    )
    .err()
    .expect("port 2 does not exist");
    assert!(matches!(e, EngineError::PortsMissing { .. }), "{e}");
    assert!(e.to_string().contains("names port 2"), "{e}");

    let e = Engine::new(
        eal(),
        EngineConfig {
            copy: CopyMode::Cpu,
            dma: vec!["dma_skeleton0".into()],
            ..config(&dir)
        },
    )
    .err()
    .expect("--dma without a DMA copy mode");
    assert!(matches!(e, EngineError::DmaWithoutCopy), "{e}");

    let e = Engine::new(
        eal(),
        EngineConfig {
            dma: vec!["net_null0".into()],
            ..config(&dir)
        },
    )
    .err()
    .expect("a port is no DMA device");
    assert!(
        matches!(&e, EngineError::DmaDevice { name, .. } if name == "net_null0"),
        "{e}"
    );
}
