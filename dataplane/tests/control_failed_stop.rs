//! A removal whose `rte_dma_stop` fails (injected with `dma fault NAME stop`: the engine is
//! left running): the quarantined buffers are kept (leaked, never freed), the channel is
//! `failed`, and every later request on it gets an error instead of a panic. Its own test
//! process: the failed device cannot be removed, and dma_skeleton allows one instance.

mod common;
use common::Hung;
use dataplane::control::{Control, ControlError, Request};
use dataplane::dma::InFlight;
use dataplane::fwd::Retired;
use dataplane::qsbr::ChannelId;
use dataplane::report::{DmaChannelState, L2fwdReport};
use dataplane::shared::Shared;
use pmd::{DmaDev, Eal, LcoreId, Mempool};
use std::time::Duration;

#[test]
fn a_failed_stop_keeps_the_buffers_and_marks_the_channel_failed() {
    let eal = Eal::init(&[
        "control_failed_stop",
        "--no-huge",
        "--no-pci",
        "-m",
        "256",
        "-l",
        "0",
        "--log-level=error",
        "--vdev=dma_skeleton0",
        &format!("--file-prefix=ctlfail{}", std::process::id()),
    ])
    .expect("EAL init");
    let pool = Mempool::create(&eal, "failstop", 1024, 0, 2048 + 128, 0).unwrap();
    let dev = DmaDev::open(&eal, "dma_skeleton0", 64).unwrap();
    let name = dev.name().to_owned();
    let id = ChannelId::new(dev.id(), 0);
    let shared = Shared::new(&[LcoreId::new(1)], vec![dev]);
    let worker = shared.worker(0).unwrap();
    worker.offline(); // a parked worker: always quiescent
    let mut c = Control::new(&eal, &shared, true, Duration::from_secs(10), 64).unwrap();
    let no_stats = |_: &Control| L2fwdReport::default();
    let req = |name: &str, fault: &str| Request::DmaFault {
        name: name.into(),
        fault: fault.into(),
    };

    // The worker hands back a lane with a copy the engine may still write.
    let mut src = pool.alloc().unwrap();
    src.set_len(64).unwrap();
    let mut dst = pool.alloc().unwrap();
    dst.set_len(64).unwrap();
    let mut f = InFlight::new(Hung(id.dev()), 4);
    assert!(f.enqueue(1, src, dst, 0).is_ok());
    let q = f.abandon(|_, s| drop(s));
    worker.hand_back(Retired {
        channel: id,
        drained: 0,
        recopied: 1,
        stalled: false,
        quarantine: q,
    });
    let in_use = pool.in_use();
    assert_eq!(in_use, 1);

    c.handle(req(&name, "stop"), &no_stats).unwrap();
    let e = c.remove(&name).unwrap_err();
    assert!(matches!(e, ControlError::StopFailed { .. }), "{e:?}");
    assert!(e.to_string().contains("rte_dma_stop"), "{e}");
    let r = &c.channel_reports()[0];
    assert_eq!(r.state, DmaChannelState::Failed, "{r:?}");
    assert!(r.error.as_deref().unwrap_or("").contains("rte_dma_stop"));
    assert_eq!(
        pool.in_use(),
        in_use,
        "kept, not freed: the engine may still write it"
    );

    // Every later request on it: a clear error, never a panic.
    let e = c.remove(&name).unwrap_err();
    assert!(matches!(e, ControlError::ChannelFailed(_)), "{e:?}");
    assert!(e.to_string().contains("failed"), "{e}");
    let e = c.handle(req(&name, "none"), &no_stats).unwrap_err();
    assert!(e.to_string().contains("failed"), "{e}");
    let e = c.add("dma_skeleton0").unwrap_err();
    assert!(e.to_string().contains("in use"), "{e}");
    c.tick();
    c.tick();
    assert_eq!(c.channel_reports()[0].state, DmaChannelState::Failed);

    // At exit the (injected) stop fails again: still leaked, never freed.
    let reports = c.shutdown();
    assert_eq!(reports[0].state, DmaChannelState::Failed);
    assert_eq!(pool.in_use(), in_use);
}
