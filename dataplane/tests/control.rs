//! The control thread's registry against a real dmadev (dma_skeleton, a software engine) under
//! an EAL in this test process (--no-huge --no-pci): a stalled channel comes back once it
//! completes, and `dma add` takes only DMA devices it can own. (The fault table is sized for
//! every dmadev id by the shared state, so a device beyond it cannot be represented.) dma_skeleton allows one instance at a time: the tests that use it
//! take turns.

mod common;
use common::Hung;
use dataplane::control::{Added, Control, ControlError, Request, Response};
use dataplane::ctlsock;
use dataplane::dma::{InFlight, Quarantine};
use dataplane::fwd::Retired;
use dataplane::qsbr::ChannelId;
use dataplane::report::{DmaChannelReport, DmaChannelState, L2fwdReport};
use dataplane::shared::Shared;
use pmd::{DmaDev, Eal, LcoreId, Mempool, Port};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

static EAL: OnceLock<Eal> = OnceLock::new();
static POOL: OnceLock<Mempool<'static>> = OnceLock::new();
/// dma_skeleton0 is one device: one test at a time.
static SKELETON: Mutex<()> = Mutex::new(());

fn eal() -> &'static Eal {
    EAL.get_or_init(|| {
        Eal::init(&[
            "control_test",
            "--no-huge",
            "--no-pci",
            "-m",
            "256",
            "-l",
            "0",
            "--log-level=error",
            "--vdev=net_null0",
            &format!("--file-prefix=controltest{}", std::process::id()),
        ])
        .expect("EAL init")
    })
}

fn pool() -> &'static Mempool<'static> {
    POOL.get_or_init(|| Mempool::create(eal(), "control_test", 1024, 0, 2048 + 128, 0).unwrap())
}

/// Probes dma_skeleton0 and opens it.
fn skeleton() -> DmaDev<'static> {
    pmd::hotplug_add(eal(), "vdev", "dma_skeleton0", "").unwrap();
    DmaDev::open(eal(), "dma_skeleton0", 64).unwrap()
}

/// A quarantine of one destination buffer of device `dev`, as a worker abandoning a copy
/// leaves it.
fn quarantine(dev: i16) -> Quarantine<'static> {
    let p = pool();
    let mut src = p.alloc().unwrap();
    src.set_len(100).unwrap();
    let mut dst = p.alloc().unwrap();
    dst.set_len(100).unwrap();
    let mut f = InFlight::new(Hung(dev), 4);
    assert!(f.enqueue(1, src, dst, 0).is_ok());
    let mut sources = 0;
    let q = f.abandon(|_, src| {
        sources += 1;
        drop(src)
    });
    assert_eq!((sources, q.len()), (1, 1));
    q
}

fn report(c: &Control, name: &str) -> DmaChannelReport {
    c.channel_reports()
        .into_iter()
        .find(|r| r.name == name && !r.is_removed())
        .unwrap_or_else(|| panic!("no channel {name}"))
}

fn no_stats(_: &Control) -> L2fwdReport {
    L2fwdReport::default()
}

fn fault(name: &str, fault: &str) -> Request {
    Request::DmaFault {
        name: name.into(),
        fault: fault.into(),
    }
}

#[test]
fn a_stalled_channel_comes_back_once_it_completes_and_keeps_its_buffers_until_stopped() {
    let _one = SKELETON.lock().unwrap_or_else(|e| e.into_inner());
    let dev = skeleton();
    let name = dev.name().to_owned();
    let id = ChannelId::new(dev.id(), 0);
    let shared = Shared::new(&[LcoreId::new(1)], vec![dev]);
    assert_eq!(shared.initial(0), &[id]);
    let mut c = Control::new(eal(), &shared, true, Duration::from_secs(10), 64).unwrap();
    assert!(
        Control::new(eal(), &shared, true, Duration::from_secs(10), 64).is_none(),
        "one control thread per shared state"
    );
    let mut worker = shared.worker(0).unwrap();
    assert!(
        shared.worker(0).is_none(),
        "each worker's end is handed out once"
    );
    let g = worker.poll().0.generation;
    worker.adopt(g);

    // The drill stalls the engine; the worker gives up on the lane (re-copies on the CPU,
    // quarantines the destination) and reports it.
    c.handle(fault(&name, "stall"), &no_stats).unwrap();
    worker.hand_back(Retired {
        channel: id,
        drained: 0,
        recopied: 1,
        stalled: true,
        quarantine: quarantine(id.dev()),
    });
    let in_use = pool().in_use();
    assert!(in_use >= 1, "the quarantined buffer is held");
    c.tick();
    let r = report(&c, &name);
    assert_eq!(r.state, DmaChannelState::Stalled, "{r:?}");
    assert!(r.stalled);
    assert_eq!((r.stalls, r.recopied), (1, 1));
    assert!(
        !shared.assignment(0).unwrap().has(id),
        "taken from its worker"
    );
    c.tick();
    assert_eq!(
        report(&c, &name).state,
        DmaChannelState::Stalled,
        "the fault is still on"
    );

    // One registry, one answer: the stalled channel takes requests.
    c.handle(fault(&name, "none"), &no_stats).unwrap();
    c.tick();
    assert_eq!(
        report(&c, &name).state,
        DmaChannelState::Stalled,
        "its worker has not yet passed the grace period"
    );
    let (a, changed) = worker.poll();
    assert!(changed && !a.has(id));
    let g = a.generation;
    worker.adopt(g);
    c.tick();
    let r = report(&c, &name);
    assert_eq!(
        (r.state, r.worker),
        (DmaChannelState::Active, Some(0)),
        "{r:?}"
    );
    assert!(shared.assignment(0).unwrap().has(id), "published again");
    assert_eq!(
        pool().in_use(),
        in_use,
        "the device runs: its quarantined buffer is still held"
    );

    // Removed: stopped, so the buffer goes back to the pool.
    worker.offline();
    let hr = c.remove(&name).unwrap();
    assert_eq!(hr.channel, name);
    assert_eq!(pool().in_use(), in_use - 1);
    assert!(c.channel_reports()[0].is_removed());
    c.shutdown();
}

#[test]
fn dma_add_takes_only_dma_devices_it_can_own() {
    let _one = SKELETON.lock().unwrap_or_else(|e| e.into_inner());
    let shared = Shared::new(&[], Vec::new());
    let mut c = Control::new(eal(), &shared, false, Duration::from_secs(10), 64).unwrap();
    let add = |c: &mut Control, d: &str| c.handle(Request::DmaAdd { devargs: d.into() }, &no_stats);

    // A forwarding port is not a DMA device, and stays where it is.
    let e = add(&mut c, "net_null0").unwrap_err();
    assert!(matches!(e, ControlError::NotADmaDevice { .. }), "{e:?}");
    assert!(e.to_string().contains("not a DMA device"), "{e}");
    assert!(Port::id_by_name(eal(), "net_null0").is_some());

    // A non-DMA driver is refused before anything is probed: no file is truncated.
    let dir = std::env::temp_dir().join(format!("control-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let victim = dir.join("x");
    std::fs::write(&victim, b"keep me").unwrap();
    let e = add(&mut c, &format!("net_pcap9,tx_pcap={}", victim.display())).unwrap_err();
    assert!(e.to_string().contains("not a DMA device"), "{e}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    assert!(Port::id_by_name(eal(), "net_pcap9").is_none());
    let _ = std::fs::remove_dir_all(&dir);

    // A dmadev that already exists (not ours) is refused, and left alone.
    pmd::hotplug_add(eal(), "vdev", "dma_skeleton0", "").unwrap();
    let e = add(&mut c, "dma_skeleton0").unwrap_err();
    assert!(matches!(e, ControlError::DeviceExists { .. }), "{e:?}");
    assert!(e.to_string().contains("already exists"), "{e}");
    let theirs = DmaDev::open(eal(), "dma_skeleton0", 64).unwrap();
    theirs.unplug(eal()).map_err(|(_, e)| e).unwrap();

    // Ours: added once (on standby: there is no worker), then in use.
    assert_eq!(
        add(&mut c, "dma_skeleton0").unwrap(),
        Response::Added(Added::one("dma_skeleton0", None))
    );
    // `dma list` shows what the device said it can do (dma_skeleton: a CPU copy thread, which
    // reports no copy errors).
    let caps = c.channel_reports()[0]
        .capabilities
        .clone()
        .expect("capabilities");
    assert_eq!(caps.flags, ["mem_to_mem", "sva", "copy"]);
    assert!(!caps.handles_errors);
    assert!(
        caps.max_desc >= caps.min_desc && caps.max_desc > 0,
        "{caps:?}"
    );
    let listed = ctlsock::answer(c.handle(Request::DmaList {}, &no_stats));
    assert_eq!(
        listed["result"]["channels"][0]["capabilities"]["flags"],
        serde_json::json!(["mem_to_mem", "sva", "copy"])
    );
    let e = add(&mut c, "dma_skeleton0").unwrap_err();
    assert!(matches!(e, ControlError::NameInUse { .. }), "{e:?}");
    assert!(e.to_string().contains("already in use"), "{e}");
    let e = add(&mut c, ",lcore=0").unwrap_err();
    assert!(e.to_string().contains("invalid devargs"), "{e}");
    c.remove("dma_skeleton0").unwrap();
    c.shutdown();
}

mod arbitrary_requests {
    use super::*;
    use proptest::prelude::*;

    fn request() -> impl Strategy<Value = Request> {
        let name = prop_oneof![
            ".{0,24}",
            Just("dma_skeleton0".to_string()),
            Just("net_null0".to_string()),
            "0000:[0-9a-f]{2}:0[0-7]\\.[0-7](-q[0-9])?",
        ];
        prop_oneof![
            Just(Request::Stats {}),
            Just(Request::DmaList {}),
            name.clone().prop_map(|name| Request::DmaRemove { name }),
            // Never a dma_* name: probing a random one of those is not this test's business.
            ".{0,40}"
                .prop_filter("not a DMA vdev", |d| !d.trim_start().starts_with("dma_"))
                .prop_map(|devargs| Request::DmaAdd { devargs }),
            (name, ".{0,8}").prop_map(|(name, fault)| Request::DmaFault { name, fault }),
            any::<u32>().prop_map(|bytes| Request::Copybreak { bytes }),
            Just(Request::LoopGaps {}),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the control socket hands the control thread: an answer, never a panic;
        /// with no channel registered, every channel request is an error.
        #[test]
        fn any_request_gets_an_answer(reqs in proptest::collection::vec(request(), 1..8)) {
            let _one = SKELETON.lock().unwrap_or_else(|e| e.into_inner());
            let shared = Shared::new(&[LcoreId::new(1)], Vec::new());
            shared.worker(0).unwrap().offline();
            let mut c =
                Control::new(eal(), &shared, true, Duration::from_millis(100), 64).unwrap();
            let mut window = 1;
            for r in reqs {
                let out = c.handle(r.clone(), &no_stats);
                match r {
                    Request::Stats {} | Request::DmaList {} => prop_assert!(out.is_ok()),
                    Request::Copybreak { bytes } => {
                        prop_assert_eq!(out.is_ok(), (1..=65535).contains(&bytes))
                    }
                    Request::DmaRemove { .. } | Request::DmaFault { .. } => {
                        prop_assert!(out.is_err())
                    }
                    Request::DmaAdd { .. } => prop_assert!(out.is_err(), "{:?}", out),
                    Request::LoopGaps {} => match out {
                        // The windows follow each other; the worker, offline, never loops.
                        Ok(Response::LoopGaps(w)) => {
                            prop_assert_eq!(w.window, window);
                            window += 1;
                            prop_assert_eq!(w.workers.len(), 1);
                            prop_assert!(w.workers[0].whole_window);
                            prop_assert_eq!(w.workers[0].lcore, 1);
                        }
                        other => prop_assert!(false, "{:?}", other),
                    },
                }
                c.tick();
            }
            prop_assert!(c.channel_reports().is_empty());
            c.shutdown();
        }
    }
}
