//! Tests of what no virtual device can make happen, through `cfg(test)` seams: a
//! `rte_dma_stop` that fails (dma_skeleton's stop cannot), and TX on a port with
//! `MBUF_FAST_FREE` (no vdev of DPDK 22.11 offers it). Both run on a real EAL with
//! dma_skeleton0 and net_null0, which this module's tests share (one EAL per process).

use crate::{hotplug_add, Burst, DmaDev, Eal, Mempool, Port, PortConfig, QueueId};
use std::cell::Cell;
use std::sync::{Mutex, OnceLock};

thread_local! {
    /// The next `DmaDev::stop` on this thread fails as `rte_dma_stop` would (-EBUSY).
    static FAIL_STOP: Cell<bool> = const { Cell::new(false) };
}

/// What the injected `rte_dma_stop` returns: 0 (go on to the real one), or the failure a
/// test asked for, once.
pub(crate) fn stop_result() -> i32 {
    if FAIL_STOP.with(|f| f.replace(false)) {
        -16
    } else {
        0
    }
}

thread_local! {
    /// The next `rte_dev_event_monitor_start` on this thread fails as without privileges.
    static FAIL_MONITOR_START: Cell<bool> = const { Cell::new(false) };
}

/// What the injected `rte_dev_event_monitor_start` returns: None (call the real one), or the
/// failure a test asked for, once.
pub(crate) fn monitor_start_result() -> Option<i32> {
    FAIL_MONITOR_START
        .with(|f| f.replace(false))
        .then_some(-libc::EPERM)
}

fn fail_next_stop() {
    FAIL_STOP.with(|f| f.set(true));
}

fn eal() -> &'static Eal {
    static EAL: OnceLock<Eal> = OnceLock::new();
    EAL.get_or_init(|| {
        Eal::init(&[
            "pmd_injected",
            "--no-huge",
            "--no-pci",
            "-m",
            "128",
            "-l",
            "0",
            "--log-level=error",
            "--vdev=net_null0",
            &format!("--file-prefix=pmdinjected{}", std::process::id()),
        ])
        .expect("EAL init")
    })
}

/// dma_skeleton allows one instance at a time.
static SKELETON: Mutex<()> = Mutex::new(());

/// A failed `rte_dma_stop` leaves the handle started, so the stop is tried again (and really
/// stops the engine), and a handle dropped with a stop that fails is neither closed nor
/// released: its engine may still be writing memory.
#[test]
fn a_failed_dma_stop_is_retried_and_never_followed_by_a_close() {
    let _one = SKELETON.lock().unwrap_or_else(|e| e.into_inner());
    let eal = eal();
    hotplug_add(eal, "vdev", "dma_skeleton0", "").unwrap();
    let mut dev = DmaDev::open(eal, "dma_skeleton0", 64).unwrap();
    fail_next_stop();
    let e = dev.stop().unwrap_err();
    assert!(e.to_string().contains("rte_dma_stop"), "{e}");
    assert!(!dev.is_stopped(), "marked stopped, but rte_dma_stop failed");
    dev.stop().expect("the retry stops it");
    assert!(dev.is_stopped());
    // Stopped and unplugged: the vdev can be probed again.
    dev.unplug(eal).map_err(|(_, e)| e).unwrap();

    a_released_device_can_be_opened_again_and_an_owned_one_is_not_unplugged(eal);

    hotplug_add(eal, "vdev", "dma_skeleton0", "").unwrap();
    let dev = DmaDev::open(eal, "dma_skeleton0", 64).unwrap();
    fail_next_stop();
    drop(dev);
    // Still there, still claimed: Drop neither closed it (which would release the dmadev and
    // its name) nor gave up the claim.
    let again = DmaDev::open(eal, "dma_skeleton0", 64)
        .err()
        .expect("still owned");
    assert!(again.to_string().contains("already in use"), "{again}");
}

/// `release` gives a device back stopped but not closed: it can be opened again (a closed
/// dmadev would be gone from the table), and a failed stop keeps the handle owned.
/// `unplug_device` removes a bus device only while none of its dmadevs is owned.
/// Run by the failed-stop test before it leaks its dma_skeleton0 on purpose (dma_skeleton
/// allows one instance per process, so no other test can make one after that).
fn a_released_device_can_be_opened_again_and_an_owned_one_is_not_unplugged(eal: &Eal) {
    hotplug_add(eal, "vdev", "dma_skeleton0", "").unwrap();
    let dev = DmaDev::open(eal, "dma_skeleton0", 64).unwrap();
    dev.release().map_err(|(_, e)| e).unwrap();
    assert!(
        DmaDev::id_by_name(eal, "dma_skeleton0").is_ok(),
        "not closed"
    );
    let dev = DmaDev::open(eal, "dma_skeleton0", 64).expect("released: opens again");
    let e = DmaDev::unplug_device(eal, "vdev", "dma_skeleton0").unwrap_err();
    assert!(e.to_string().contains("dma_skeleton0 in use"), "{e}");
    assert!(
        DmaDev::id_by_name(eal, "dma_skeleton0").is_ok(),
        "still there"
    );

    fail_next_stop();
    let (dev, e) = dev.release().expect_err("the stop fails");
    assert!(e.to_string().contains("rte_dma_stop"), "{e}");
    assert!(!dev.is_stopped());
    let again = DmaDev::open(eal, "dma_skeleton0", 64).err().expect("owned");
    assert!(again.to_string().contains("already in use"), "{again}");

    dev.release()
        .map_err(|(_, e)| e)
        .expect("the retry stops it");
    // Released, not closed: the driver's remove closes it.
    DmaDev::unplug_device(eal, "vdev", "dma_skeleton0").unwrap();
    assert!(DmaDev::id_by_name(eal, "dma_skeleton0").is_err(), "removed");
    // Unplugged: it can be probed again.
    hotplug_add(eal, "vdev", "dma_skeleton0", "").unwrap();
    let dev = DmaDev::open(eal, "dma_skeleton0", 64).unwrap();
    dev.unplug(eal).map_err(|(_, e)| e).unwrap();
}

/// On a port with `MBUF_FAST_FREE` the driver returns transmitted mbufs straight to the
/// port's pool: `tx_burst` sends a burst only up to its first mbuf of another pool, which
/// stays at the front of the burst with everything after it.
#[test]
fn a_fast_free_port_transmits_only_mbufs_of_its_own_pool() {
    let eal = eal();
    let other = Mempool::create(eal, "ff_other", 255, 0, 2176, 0).unwrap();
    let own = Mempool::create(eal, "ff_own", 255, 0, 2176, 0).unwrap();
    let id = Port::id_by_name(eal, "net_null0").unwrap();
    let cfg = PortConfig {
        tx_fast_free: true,
        ..PortConfig::default()
    };
    let mut port = Port::configure(eal, id, &cfg, &own).unwrap();
    assert!(
        !port.tx_fast_free(),
        "net_null does not offer MBUF_FAST_FREE"
    );
    port.assume_fast_free(&own);
    assert!(port.tx_fast_free());
    port.start().unwrap();
    let mut tx = port.tx_queue(QueueId::new(0)).unwrap();
    let mut burst = Burst::new();
    for (pool, tag) in [(&own, 1u8), (&own, 2), (&other, 3), (&own, 4)] {
        let mut m = pool.alloc().unwrap();
        m.set_len(60).unwrap();
        m.data_mut().fill(tag);
        assert!(burst.push(m).is_ok());
    }
    assert_eq!(
        tx.tx_burst(&mut burst),
        2,
        "sent up to the other pool's mbuf"
    );
    let left: Vec<u8> = burst.as_slice().iter().map(|m| m.data()[0]).collect();
    assert_eq!(left, [3, 4], "the rest stays, in order");
    assert_eq!(
        tx.tx_burst(&mut burst),
        0,
        "another pool's mbuf first: nothing sent"
    );
    assert_eq!(burst.len(), 2);
    burst.free_all();
    assert_eq!(other.in_use(), 0);
}

/// A uevent monitor that cannot start (no privileges for its netlink socket) leaves the
/// callback registered: a removal raised as DPDK's PCI bus raises a VFIO request still reaches
/// it, as does the same removal again (the uevent that follows); once the monitor is dropped,
/// nothing does, and the callback's box is freed.
#[test]
fn a_monitor_that_cannot_start_still_delivers_vfio_removals() {
    use crate::devevent::{raise, DevEvent, DevEventMonitor};
    use std::sync::Arc;
    let eal = eal();
    let seen = Arc::new(Mutex::new(Vec::<(String, DevEvent)>::new()));
    let record = Arc::clone(&seen);
    FAIL_MONITOR_START.with(|f| f.set(true));
    let monitor = DevEventMonitor::start(eal, move |name, ev| {
        record.lock().unwrap().push((name.to_owned(), ev));
    })
    .expect("the callback registers even when the monitor cannot start");
    let err = monitor
        .uevent_error()
        .expect("the injected failure is reported");
    assert!(
        err.to_string().contains("rte_dev_event_monitor_start"),
        "{err}"
    );
    raise("0000:00:04.0", DevEvent::Remove);
    raise("0000:00:04.0", DevEvent::Remove);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            ("0000:00:04.0".to_owned(), DevEvent::Remove),
            ("0000:00:04.0".to_owned(), DevEvent::Remove)
        ]
    );
    drop(monitor);
    raise("0000:00:04.0", DevEvent::Remove);
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "no callback after the monitor is dropped"
    );
    assert_eq!(Arc::strong_count(&seen), 1, "the callback was freed");
}
