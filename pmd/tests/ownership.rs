//! The ownership rules of the pmd layer that are checked at run time, on a real EAL with
//! virtual devices: one handle per port id and per dmadev id, one handle per queue, checked
//! lcore and rte_rcu_qsbr ids, and fast free only where asked for. (What the compiler checks is
//! in `compile_fail.rs`.) One test function: DPDK allows one EAL per process.

use pmd::{DmaDev, Eal, LcoreId, Mempool, Port, PortConfig, PortId, QueueId, RcuQsbr};

#[test]
fn ownership_is_checked() {
    let eal = Eal::init(&[
        "ownership_test",
        "--no-huge",
        "--no-pci",
        "-m",
        "128",
        "-l",
        "0",
        "--log-level=error",
        "--vdev=net_null0",
        "--vdev=dma_skeleton0,lcore=0",
        "--vdev=dma_skeleton1,lcore=0",
        &format!("--file-prefix=ownership{}", std::process::id()),
    ])
    .expect("EAL init");
    let pool = Mempool::create(&eal, "own", 2047, 0, 2176, 0).expect("pool");

    // A port id is owned by one handle: a second configure of port 0 would hand out RX queue 0
    // again, and the first handle's drop would close the device under the second.
    let p0 = PortId::new(0);
    assert_eq!(Port::id_by_name(&eal, "net_null0"), Some(p0));
    assert!(Port::is_valid(&eal, p0) && !Port::is_valid(&eal, PortId::new(1)));
    let port = Port::configure(&eal, p0, &PortConfig::default(), &pool).expect("first configure");
    assert_eq!(port.id(), p0);
    let again = Port::configure(&eal, p0, &PortConfig::default(), &pool);
    let err = again
        .err()
        .expect("a second handle to port 0 is refused")
        .to_string();
    assert!(err.contains("already configured"), "{err}");
    // One handle per queue.
    let q0 = QueueId::new(0);
    let q = port.rx_queue(q0).expect("rx queue 0");
    assert_eq!((q.port(), q.queue()), (p0, q0));
    assert!(port.rx_queue(q0).is_err(), "rx queue 0 handed out twice");
    let err = port
        .rx_queue(QueueId::new(7))
        .err()
        .expect("a queue that does not exist");
    assert!(
        err.to_string()
            .contains("port 0 has 1 rx queues, queue 7 requested"),
        "{err}"
    );
    // Fast free only when asked for (the copy stage and pktgen mix pools on one port).
    assert!(!port.tx_fast_free());
    // Closing a vdev port releases it: the id is gone with the handle.
    drop(port);
    assert!(Port::configure(&eal, p0, &PortConfig::default(), &pool).is_err());

    // A dmadev is owned by one handle: the second would stop and close it under the first.
    let dev = DmaDev::open(&eal, "dma_skeleton0", 64).expect("open dma_skeleton0");
    let err = DmaDev::open(&eal, "dma_skeleton0", 64)
        .err()
        .expect("a second handle to dma_skeleton0 is refused")
        .to_string();
    assert!(err.contains("already in use"), "{err}");
    assert!(
        DmaDev::open(&eal, "net_null0", 64).is_err(),
        "a port is not a dmadev"
    );
    let info = dev.info().expect("info");
    assert_eq!(
        (info.bus.as_str(), info.device.as_str()),
        ("vdev", "dma_skeleton0")
    );
    assert!(!dev.is_stopped());
    drop(dev);

    // rte_rcu_qsbr: DPDK checks thread ids only with RTE_ASSERT (compiled out) and
    // rte_rcu_qsbr_thread_register returns 1, not an errno, for a bad one.
    assert!(RcuQsbr::new(0).is_err(), "a variable for no thread");
    assert!(RcuQsbr::new(u32::MAX).is_err(), "a size that overflows");
    let rcu = RcuQsbr::new(2).expect("rcu for 2");
    assert!(rcu.register_online(2).is_err(), "thread id 2 of 2");
    assert!(rcu.register_online(1_000_000).is_err());
    assert!(rcu.offline_unregister(5).is_err());
    rcu.quiescent(5); // ignored, no write past the counters
    rcu.register_online(1).expect("thread id 1 of 2");
    rcu.quiescent(1);
    let token = rcu.start();
    rcu.quiescent(1);
    assert!(rcu.check(token, false));
    rcu.offline_unregister(1).expect("unregister");

    // Lcores: out of range, not enabled (-l 0), the main lcore, or twice.
    assert_eq!(eal.main_lcore(), LcoreId::new(0));
    assert!(eal.worker_lcores().is_empty());
    let job = || -> Box<dyn FnOnce() -> i32 + Send> { Box::new(|| 0) };
    for (lcore, why) in [(200, "out of range"), (1, "not enabled"), (0, "main lcore")] {
        let lcore = LcoreId::new(lcore);
        let err = eal
            .run_on_lcores(vec![(lcore, job())], || (), || ())
            .err()
            .unwrap_or_else(|| panic!("lcore {lcore} accepted"))
            .to_string();
        assert!(err.contains(why), "lcore {lcore}: {err}");
    }

    // An mbuf's room is the rest of its own buffer: the packet data, then what is past it.
    let mut m = pool.alloc().expect("an mbuf");
    m.set_len(10).expect("10 bytes fit");
    assert_eq!(m.room_mut().len(), m.capacity());
    assert_eq!(m.capacity(), 2176 - 128);
    m.room_mut()[..64].copy_from_slice(&[7u8; 64]);
    assert_eq!(m.data(), &[7u8; 10]);
    assert_eq!(
        m.len(),
        10,
        "writing past the data does not change its length"
    );
    drop(m);
    drop(pool);

    // A device handle leaked (mem::forget is safe) while its engine runs: dropping the EAL
    // must not release memory and devices under it (rte_eal_cleanup crashed here).
    let running = DmaDev::open(&eal, "dma_skeleton1", 64).expect("open dma_skeleton1");
    std::mem::forget(running);
    drop(eal);
}
