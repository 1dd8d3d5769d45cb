//! The Rust fast path (`pmd`'s own `rx_burst`, `tx_burst`, mbuf alloc/free, mempool put and the
//! dmadev calls, written over the bindgen structs) against DPDK's own static-inline functions
//! compiled in the C shim (`pmd::via_shim`), on a real EAL with virtual devices: the same
//! operations on twin objects (two pools, two ports, two DMA engines) must give the same
//! results: the same buffers in the same order (mapped to their index in their pool), the same
//! counts, the same mbuf fields, the same ring indices and statuses, and the same pool counts
//! after every step, with the per-lcore cache (on the main lcore), without it (a thread that
//! is not an lcore) and from a pool without caches. One test function: one EAL per process.

use pmd::{via_shim, Burst, DmaDev, Eal, FreeBatch, Mbuf, Mempool, Port, PortConfig, QueueId};
use std::collections::HashMap;
use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

/// Which implementation an operation goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Rust,
    Shim,
}

/// A deterministic pseudo-random sequence (the same for both paths).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Object address -> its index in its pool (the pool's element list order).
fn pool_index(pool: &Mempool<'_>) -> HashMap<usize, usize> {
    unsafe extern "C" fn record(
        _mp: *mut dpdk_sys::rte_mempool,
        opaque: *mut c_void,
        obj: *mut c_void,
        idx: u32,
    ) {
        // SAFETY: opaque is the map passed below, alive for the call.
        let map = unsafe { &mut *(opaque as *mut HashMap<usize, usize>) };
        map.insert(obj as usize, idx as usize);
    }
    // The pool's address, from one of its mbufs.
    let m = pool.alloc().expect("one mbuf");
    let raw = m.into_raw();
    // SAFETY: raw is a valid mbuf we own; its pool field names its pool.
    let mp = unsafe { (*raw).pool };
    // SAFETY: we own raw (it came from into_raw).
    drop(unsafe { Mbuf::from_raw(NonNull::new(raw).unwrap()) });
    let mut map = HashMap::new();
    // SAFETY: mp is a live pool; the callback only records addresses.
    let n = unsafe {
        dpdk_sys::rte_mempool_obj_iter(mp, Some(record), &mut map as *mut _ as *mut c_void)
    };
    assert_eq!(n as usize, map.len());
    assert_eq!(map.len(), pool.size() as usize);
    map
}

/// The mbuf fields that alloc, reset and free touch.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Fields {
    data_off: u16,
    refcnt: u16,
    nb_segs: u16,
    port: u16,
    ol_flags: u64,
    packet_type: u32,
    pkt_len: u32,
    data_len: u16,
    vlan_tci: u16,
    vlan_tci_outer: u16,
    tx_offload: u64,
    next_null: bool,
}

fn fields(m: &Mbuf<'_>) -> Fields {
    let p = m as *const Mbuf<'_> as *const *const dpdk_sys::rte_mbuf;
    // SAFETY: Mbuf is repr(transparent) over the mbuf pointer; the mbuf is valid while m is.
    let r = unsafe { &**p };
    Fields {
        data_off: r.data_off,
        refcnt: r.refcnt,
        nb_segs: r.nb_segs,
        port: r.port,
        ol_flags: r.ol_flags,
        // SAFETY: plain integers in a C union.
        packet_type: unsafe { r.__bindgen_anon_1.packet_type },
        pkt_len: r.pkt_len,
        data_len: r.data_len,
        vlan_tci: r.vlan_tci,
        vlan_tci_outer: r.vlan_tci_outer,
        // SAFETY: as above.
        tx_offload: unsafe { r.__bindgen_anon_3.tx_offload },
        next_null: r.next.is_null(),
    }
}

/// Leaves stale metadata in a plain mbuf (as a received and transmitted packet would), keeping
/// what the pool requires of it (reference count 1, one segment, no next, direct).
fn dirty<'p>(m: Mbuf<'p>, seed: u64) -> Mbuf<'p> {
    let p = m.into_raw();
    // SAFETY: we own p; only metadata fields are written, within the buffer.
    unsafe {
        (*p).port = (seed % 7) as u16;
        (*p).ol_flags = (1 << 1) | (1 << 7) | (seed << 20 & 0xff00000); // RX flags, not EXTERNAL
        (*p).__bindgen_anon_1.packet_type = 0x11 + seed as u32;
        (*p).vlan_tci = 100 + seed as u16;
        (*p).vlan_tci_outer = 7;
        (*p).__bindgen_anon_3.tx_offload = 0xdead_0000 + seed;
        (*p).data_off = 64 + (seed % 64) as u16;
        (*p).data_len = 60;
        (*p).pkt_len = 60;
        Mbuf::from_raw(NonNull::new_unchecked(p))
    }
}

/// What one step of the pool sequence observed.
#[derive(Debug, PartialEq, Eq)]
struct Step {
    op: &'static str,
    got: Vec<usize>,
    fields: Vec<Fields>,
    in_use: u32,
    available: u32,
}

/// Runs the same pseudo-random sequence of allocations and frees on `pool` through `path`.
fn pool_sequence(pool: &Mempool<'_>, path: Path, steps: usize, hold_max: usize) -> Vec<Step> {
    let index = pool_index(pool);
    let idx_of = |m: &Mbuf<'_>| {
        let p = m as *const Mbuf<'_> as *const usize;
        // SAFETY: Mbuf is repr(transparent) over the mbuf pointer.
        index[&unsafe { *p }]
    };
    let mut rng = Lcg(42);
    let mut held: Vec<Mbuf<'_>> = Vec::new();
    let mut out = Vec::new();
    for step in 0..steps {
        let mut got = Vec::new();
        let mut flds = Vec::new();
        // Phases of growth (mostly allocations, until the pool runs dry) and of shrinking
        // (mostly frees), so that the cache fills, flushes, empties and refills.
        let grow = (step / 250) % 2 == 0;
        let r = rng.next(10);
        let choice = match (grow, r) {
            (true, 0..=4) | (false, 0) => 0,
            (true, 5..=6) | (false, 1) => 2,
            (true, 7) | (false, 2) => 3,
            (true, 8) | (false, 3..=5) => 4,
            _ => 5,
        };
        let op = match choice {
            0 | 1 if held.len() < hold_max => {
                let k = 1 + rng.next(32) as usize;
                let mut bufs: Vec<Option<Mbuf<'_>>> = (0..k).map(|_| None).collect();
                let ok = match path {
                    Path::Rust => pool.alloc_bulk(&mut bufs),
                    Path::Shim => via_shim::alloc_bulk(pool, &mut bufs),
                };
                if ok {
                    for b in bufs {
                        let b = b.expect("filled");
                        got.push(idx_of(&b));
                        flds.push(fields(&b));
                        held.push(b);
                    }
                }
                "alloc_bulk"
            }
            2 if held.len() < hold_max && rng.next(2) == 0 => {
                let k = 1 + rng.next(32) as usize;
                let mut bufs: Vec<Option<Mbuf<'_>>> = (0..k).map(|_| None).collect();
                let ok = match path {
                    Path::Rust => pool.alloc_bulk_raw(&mut bufs),
                    Path::Shim => via_shim::alloc_bulk_raw(pool, &mut bufs),
                };
                if ok {
                    for b in bufs {
                        let b = b.expect("filled");
                        got.push(idx_of(&b));
                        let f = fields(&b);
                        // What a raw copy destination must have, whatever it held before.
                        assert_eq!((f.data_off, f.data_len, f.pkt_len), (128, 0, 0));
                        assert_eq!(f.ol_flags, 0);
                        assert_eq!((f.refcnt, f.nb_segs, f.next_null), (1, 1, true));
                        flds.push(f);
                        held.push(b);
                    }
                }
                "alloc_bulk_raw"
            }
            2 if held.len() < hold_max => {
                // A burst of fresh buffers holding `len` bytes each (the sender's
                // `alloc_raw_len`, which writes the header without reading it), against DPDK's
                // get and a raw reset with the length set after.
                let (k, len) = (1 + rng.next(32) as usize, 60);
                let mut bufs = Vec::new();
                match path {
                    Path::Rust => {
                        let mut burst = Burst::new();
                        if burst.alloc_raw_len(pool, k, len) {
                            bufs.extend(burst.drain());
                        }
                    }
                    Path::Shim => {
                        let mut raw: Vec<Option<Mbuf<'_>>> = (0..k).map(|_| None).collect();
                        if via_shim::alloc_bulk_raw(pool, &mut raw) {
                            for b in raw {
                                let mut b = b.expect("filled");
                                b.set_len(len).expect("fits");
                                bufs.push(b);
                            }
                        }
                    }
                }
                for b in bufs {
                    got.push(idx_of(&b));
                    let f = fields(&b);
                    assert_eq!((f.data_off, f.data_len, f.pkt_len), (128, 60, 60));
                    assert_eq!(f.ol_flags, 0);
                    assert_eq!((f.refcnt, f.nb_segs, f.next_null), (1, 1, true));
                    flds.push(f);
                    held.push(b);
                }
                "alloc_raw_len"
            }
            3 if held.len() < hold_max => {
                let m = match path {
                    Path::Rust => pool.alloc(),
                    Path::Shim => via_shim::alloc(pool),
                };
                if let Some(m) = m {
                    got.push(idx_of(&m));
                    flds.push(fields(&m));
                    held.push(m);
                }
                "alloc"
            }
            4 => {
                // Free a few, one by one, from pseudo-random positions.
                let k = (1 + rng.next(8) as usize).min(held.len());
                for _ in 0..k {
                    let i = rng.next(held.len() as u64) as usize;
                    let m = dirty(held.swap_remove(i), step as u64);
                    got.push(idx_of(&m));
                    match path {
                        Path::Rust => drop(m),
                        Path::Shim => via_shim::free(m),
                    }
                }
                "free"
            }
            _ => {
                // Free up to 64 in one batch (one rte_mempool_put_bulk).
                let k = (1 + rng.next(64) as usize).min(held.len());
                let mut batch = FreeBatch::new();
                for _ in 0..k {
                    let i = rng.next(held.len() as u64) as usize;
                    let m = dirty(held.swap_remove(i), step as u64);
                    got.push(idx_of(&m));
                    batch.push(m);
                }
                match path {
                    Path::Rust => batch.flush(),
                    Path::Shim => via_shim::flush(&mut batch),
                }
                "free_batch"
            }
        };
        out.push(Step {
            op,
            got,
            fields: flds,
            in_use: pool.in_use(),
            available: pool.available(),
        });
    }
    for m in held {
        drop(m);
    }
    assert_eq!(pool.in_use(), 0);
    out
}

/// Checks two runs of the pool sequence step by step, with a readable first difference.
fn same_steps(what: &str, rust: &[Step], shim: &[Step]) {
    assert_eq!(rust.len(), shim.len());
    for (i, (r, s)) in rust.iter().zip(shim).enumerate() {
        assert_eq!(r, s, "{what}: step {i} differs");
    }
    let ops = |n: &str| {
        rust.iter()
            .filter(|s| s.op == n && !s.got.is_empty())
            .count()
    };
    let failed = rust
        .iter()
        .filter(|s| s.op.starts_with("alloc") && s.got.is_empty())
        .count();
    // The sequence exercised every operation, and ran the pool dry at times.
    for op in [
        "alloc_bulk",
        "alloc_bulk_raw",
        "alloc_raw_len",
        "alloc",
        "free",
        "free_batch",
    ] {
        assert!(ops(op) > 10, "{what}: only {} successful {op}", ops(op));
    }
    assert!(failed > 0, "{what}: the pool never ran dry");
}

/// Non-plain mbufs (a chain, a shared buffer) take DPDK's general free on both paths.
fn general_free(pool: &Mempool<'_>, path: Path) -> Vec<u32> {
    let mut counts = vec![pool.in_use()];
    let free = |m: Mbuf<'_>| match path {
        Path::Rust => drop(m),
        Path::Shim => via_shim::free(m),
    };
    // A two-segment chain: freeing the head frees both.
    let (a, b) = (pool.alloc().unwrap(), pool.alloc().unwrap());
    counts.push(pool.in_use());
    let (pa, pb) = (a.into_raw(), b.into_raw());
    // SAFETY: we own both; chaining them is what rte_pktmbuf_chain does.
    let head = unsafe {
        (*pa).next = pb;
        (*pa).nb_segs = 2;
        Mbuf::from_raw(NonNull::new_unchecked(pa))
    };
    free(head);
    counts.push(pool.in_use());
    // A buffer with two references: the first free only drops one.
    let c = pool.alloc().unwrap();
    let pc = c.into_raw();
    // SAFETY: we own it; a second reference, as rte_mbuf_refcnt_update(m, 1) takes.
    unsafe { (*pc).refcnt = 2 };
    // SAFETY: two owners now, each frees once.
    let (c1, c2) = unsafe {
        (
            Mbuf::from_raw(NonNull::new_unchecked(pc)),
            Mbuf::from_raw(NonNull::new_unchecked(pc)),
        )
    };
    counts.push(pool.in_use());
    free(c1);
    counts.push(pool.in_use());
    free(c2);
    counts.push(pool.in_use());
    counts
}

static RX_CB_CALLS: AtomicU64 = AtomicU64::new(0);
static TX_CB_CALLS: AtomicU64 = AtomicU64::new(0);

/// An RX callback that frees the last packet of each burst.
unsafe extern "C" fn rx_cb(
    _port: u16,
    _queue: u16,
    pkts: *mut *mut dpdk_sys::rte_mbuf,
    nb: u16,
    _max: u16,
    _user: *mut c_void,
) -> u16 {
    RX_CB_CALLS.fetch_add(1, Ordering::Relaxed);
    if nb == 0 {
        return 0;
    }
    // SAFETY: the driver handed over nb mbufs in pkts; the last one is dropped here.
    unsafe { dpdk_sys::rte_pktmbuf_free_bulk(pkts.add(nb as usize - 1), 1) };
    nb - 1
}

/// A TX callback that holds back the last packet of each burst.
unsafe extern "C" fn tx_cb(
    _port: u16,
    _queue: u16,
    _pkts: *mut *mut dpdk_sys::rte_mbuf,
    nb: u16,
    _user: *mut c_void,
) -> u16 {
    TX_CB_CALLS.fetch_add(1, Ordering::Relaxed);
    nb.saturating_sub(1)
}

/// A burst of `n` packets numbered from `first` (the number in the first 4 bytes).
fn numbered<'p>(pool: &'p Mempool<'_>, first: u32, n: usize) -> Burst<'p> {
    let mut b = Burst::new();
    for i in 0..n as u32 {
        let mut m = pool.alloc().unwrap();
        m.set_len(60).unwrap();
        m.data_mut()[..4].copy_from_slice(&(first + i).to_le_bytes());
        b.push(m).ok().unwrap();
    }
    b
}

fn numbers(b: &Burst<'_>) -> Vec<u32> {
    b.as_slice()
        .iter()
        .map(|m| u32::from_le_bytes(m.data()[..4].try_into().unwrap()))
        .collect()
}

fn ptrs(b: &Burst<'_>) -> Vec<usize> {
    b.as_slice()
        .iter()
        .map(|m| {
            let p = m as *const Mbuf<'_> as *const usize;
            // SAFETY: Mbuf is repr(transparent) over the mbuf pointer.
            unsafe { *p }
        })
        .collect()
}

#[test]
fn rust_fast_path_matches_dpdk_inline_functions() {
    let eal = Eal::init(&[
        "fastpath_equiv",
        "--no-huge",
        "--no-pci",
        "--iova-mode=va",
        "-m",
        "256",
        "-l",
        "0",
        "--log-level=error",
        "--vdev=net_ring0",
        "--vdev=net_null0,size=64",
        "--vdev=net_null1,size=64",
        "--vdev=dma_skeleton0,lcore=0",
        "--vdev=dma_skeleton1,lcore=0",
        &format!("--file-prefix=fpequiv{}", std::process::id()),
    ])
    .expect("EAL init");

    let id = |name: &str| Port::id_by_name(&eal, name).expect(name);
    let ring_id = id("net_ring0").get();

    // ---- Mempool and mbuf: twin pools, the same sequence through each path.
    // With the per-lcore cache (main lcore), cache 32 (flush threshold 48).
    {
        let a = Mempool::create(&eal, "eq_a", 511, 32, 2176, 0).unwrap();
        let b = Mempool::create(&eal, "eq_b", 511, 32, 2176, 0).unwrap();
        let rust = pool_sequence(&a, Path::Rust, 3000, 560);
        let shim = pool_sequence(&b, Path::Shim, 3000, 560);
        same_steps("cached pool on the main lcore", &rust, &shim);
        assert_eq!(general_free(&a, Path::Rust), general_free(&b, Path::Shim));
        assert_eq!(general_free(&a, Path::Rust), vec![0, 2, 0, 1, 1, 0]);
        // The same pools from a thread that is not an lcore: no cache, straight to the ring.
        let (rust, shim) = std::thread::scope(|s| {
            let r = s.spawn(|| pool_sequence(&a, Path::Rust, 1500, 560));
            let r = r.join().unwrap();
            let sh = s.spawn(|| pool_sequence(&b, Path::Shim, 1500, 560));
            (r, sh.join().unwrap())
        });
        same_steps("cached pool from a non-lcore thread", &rust, &shim);
    }
    // A pool without caches.
    {
        let a = Mempool::create(&eal, "eq_c", 511, 0, 2176, 0).unwrap();
        let b = Mempool::create(&eal, "eq_d", 511, 0, 2176, 0).unwrap();
        let rust = pool_sequence(&a, Path::Rust, 2000, 560);
        let shim = pool_sequence(&b, Path::Shim, 2000, 560);
        same_steps("pool without cache", &rust, &shim);
    }

    // ---- ethdev: net_ring0 loops TX back to RX; net_null ports make and sink packets.
    let pool = Mempool::create(&eal, "eq_eth", 8191, 256, 2176, 0).unwrap();
    {
        let mut ring = Port::configure(&eal, id("net_ring0"), &PortConfig::default(), &pool)
            .expect("net_ring0");
        ring.start().unwrap();
        {
            let mut rxq = ring.rx_queue(QueueId::new(0)).unwrap();
            let mut txq = ring.tx_queue(QueueId::new(0)).unwrap();
            // Sent by one path, received by the other: the same mbufs, in order.
            for (tx_path, rx_path) in [(Path::Rust, Path::Shim), (Path::Shim, Path::Rust)] {
                let mut b = numbered(&pool, 1000, 32);
                let (sent_ptrs, sent_nums) = (ptrs(&b), numbers(&b));
                let sent = match tx_path {
                    Path::Rust => txq.tx_burst(&mut b),
                    Path::Shim => via_shim::tx_burst(&mut txq, &mut b),
                };
                assert_eq!((sent, b.len()), (32, 0));
                let mut r = Burst::new();
                let got = match rx_path {
                    Path::Rust => rxq.rx_burst(&mut r),
                    Path::Shim => via_shim::rx_burst_max(&mut rxq, &mut r, 32),
                };
                assert_eq!(got, 32);
                assert_eq!((ptrs(&r), numbers(&r)), (sent_ptrs, sent_nums));
            }
            // Filling the ring: the same partial sends, then the same receives, per path.
            let mut fills = Vec::new();
            for path in [Path::Rust, Path::Shim] {
                let in_use = pool.in_use();
                let mut sent_counts = Vec::new();
                let mut first = 0;
                loop {
                    let mut b = numbered(&pool, first, 32);
                    let n = match path {
                        Path::Rust => txq.tx_burst(&mut b),
                        Path::Shim => via_shim::tx_burst(&mut txq, &mut b),
                    };
                    sent_counts.push(n);
                    first += n as u32;
                    if n < 32 {
                        assert_eq!(b.len(), 32 - n, "unsent packets stay in the burst");
                        break;
                    }
                }
                let mut recv_counts = Vec::new();
                let mut next = 0u32;
                loop {
                    let mut r = Burst::new();
                    let n = match path {
                        Path::Rust => rxq.rx_burst(&mut r),
                        Path::Shim => via_shim::rx_burst_max(&mut rxq, &mut r, 32),
                    };
                    if n == 0 {
                        break;
                    }
                    let want: Vec<u32> = (next..next + n as u32).collect();
                    assert_eq!(numbers(&r), want, "received in the order sent");
                    next += n as u32;
                    recv_counts.push(n);
                }
                assert_eq!(next, first);
                assert_eq!(pool.in_use(), in_use);
                fills.push((sent_counts, recv_counts));
            }
            assert_eq!(fills[0], fills[1]);
            assert!(fills[0].0.len() > 2, "the ring filled: {:?}", fills[0].0);

            // Callbacks installed on the queues are run by both paths.
            // SAFETY: valid port and queue; the callbacks are 'static functions.
            let (rcb, tcb) = unsafe {
                (
                    dpdk_sys::rte_eth_add_rx_callback(
                        ring_id,
                        0,
                        Some(rx_cb),
                        std::ptr::null_mut(),
                    ),
                    dpdk_sys::rte_eth_add_tx_callback(
                        ring_id,
                        0,
                        Some(tx_cb),
                        std::ptr::null_mut(),
                    ),
                )
            };
            assert!(!rcb.is_null() && !tcb.is_null());
            let mut seen = Vec::new();
            for path in [Path::Rust, Path::Shim] {
                let (rx0, tx0) = (
                    RX_CB_CALLS.load(Ordering::Relaxed),
                    TX_CB_CALLS.load(Ordering::Relaxed),
                );
                let in_use = pool.in_use();
                let mut b = numbered(&pool, 500, 16);
                let sent = match path {
                    Path::Rust => txq.tx_burst(&mut b),
                    Path::Shim => via_shim::tx_burst(&mut txq, &mut b),
                };
                let held_back = numbers(&b);
                drop(b);
                let mut r = Burst::new();
                let got = match path {
                    Path::Rust => rxq.rx_burst(&mut r),
                    Path::Shim => via_shim::rx_burst_max(&mut rxq, &mut r, 32),
                };
                let nums = numbers(&r);
                drop(r);
                assert_eq!(
                    pool.in_use(),
                    in_use,
                    "nothing leaked through the callbacks"
                );
                seen.push((
                    sent,
                    held_back,
                    got,
                    nums,
                    RX_CB_CALLS.load(Ordering::Relaxed) - rx0,
                    TX_CB_CALLS.load(Ordering::Relaxed) - tx0,
                ));
            }
            assert_eq!(seen[0], seen[1]);
            // The TX callback held back the last of 16, the RX one dropped the last of 15.
            assert_eq!(
                seen[0],
                (15, vec![515], 14, (500..514).collect::<Vec<u32>>(), 1, 1)
            );
            // SAFETY: the callbacks were added above on this port and queue.
            unsafe {
                assert_eq!(dpdk_sys::rte_eth_remove_rx_callback(ring_id, 0, rcb), 0);
                assert_eq!(dpdk_sys::rte_eth_remove_tx_callback(ring_id, 0, tcb), 0);
            }
            let calls = (
                RX_CB_CALLS.load(Ordering::Relaxed),
                TX_CB_CALLS.load(Ordering::Relaxed),
            );
            let mut b = numbered(&pool, 0, 8);
            assert_eq!(txq.tx_burst(&mut b), 8);
            let mut r = Burst::new();
            assert_eq!(rxq.rx_burst(&mut r), 8);
            assert_eq!(
                calls,
                (
                    RX_CB_CALLS.load(Ordering::Relaxed),
                    TX_CB_CALLS.load(Ordering::Relaxed)
                ),
                "a removed callback is not called"
            );
        }
        drop(ring);
    }
    {
        // net_null: receive makes packets from the pool, transmit frees them.
        let cfg = PortConfig::default();
        let mut ports = [
            Port::configure(&eal, id("net_null0"), &cfg, &pool).expect("net_null0"),
            Port::configure(&eal, id("net_null1"), &cfg, &pool).expect("net_null1"),
        ];
        for p in &mut ports {
            p.start().unwrap();
        }
        let mut results = Vec::new();
        for (port, path) in ports.iter().zip([Path::Rust, Path::Shim]) {
            let mut rxq = port.rx_queue(QueueId::new(0)).unwrap();
            let mut txq = port.tx_queue(QueueId::new(0)).unwrap();
            let base = pool.in_use();
            let mut trace = Vec::new();
            for max in [32, 1, 7, 32, 0] {
                let mut r = Burst::new();
                let n = match path {
                    Path::Rust => rxq.rx_burst_max(&mut r, max),
                    Path::Shim => via_shim::rx_burst_max(&mut rxq, &mut r, max),
                };
                let lens: Vec<usize> = r.as_slice().iter().map(|m| m.len()).collect();
                let after_rx = pool.in_use() - base;
                let sent = match path {
                    Path::Rust => txq.tx_burst(&mut r),
                    Path::Shim => via_shim::tx_burst(&mut txq, &mut r),
                };
                trace.push((n, lens, after_rx, sent, pool.in_use() - base));
            }
            let st = port.stats().unwrap();
            results.push((trace, st.ipackets, st.opackets));
        }
        assert_eq!(results[0], results[1]);
        assert_eq!(results[0].1, 72);
        assert_eq!(results[0].0[0], (32, vec![64; 32], 32, 32, 0));
    }

    // ---- dmadev: twin dma_skeleton engines, the same copies through each path.
    let mut dma_runs = Vec::new();
    for (name, path) in [("dma_skeleton0", Path::Rust), ("dma_skeleton1", Path::Shim)] {
        let dev = DmaDev::open(&eal, name, 64).expect(name);
        let mut ch = dev.channel().unwrap();
        let cap = |ch: &pmd::DmaChannel<'_>| match path {
            Path::Rust => ch.burst_capacity(),
            Path::Shim => via_shim::dma_burst_capacity(ch),
        };
        let mut trace: Vec<String> = Vec::new();
        let mut srcs = Vec::new();
        let mut dsts = Vec::new();
        for i in 0..80usize {
            let mut s = pool.alloc().unwrap();
            s.set_len(100 + i * 10).unwrap();
            for (j, byte) in s.data_mut().iter_mut().enumerate() {
                *byte = (i * 31 + j) as u8;
            }
            let mut d = pool.alloc().unwrap();
            d.set_len(100 + i * 10).unwrap();
            d.data_mut().fill(0);
            srcs.push(s);
            dsts.push(d);
        }
        trace.push(format!("cap0 {}", cap(&ch)));
        // Two rounds: 40 copies reaped with completed(), then 80 (more than the ring holds:
        // the same copy finds it full) reaped with completed_status().
        let mut next = 0usize;
        for (round, count) in [(0, 40usize), (1, 80)] {
            let start = next;
            let mut idxs = Vec::new();
            while next < start + count && next < 80 + 40 {
                let k = next % 80;
                let (s, d) = (&srcs[k], &dsts[k]);
                // SAFETY: both buffers stay owned, unread and unwritten here until every copy
                // has been reported complete below (or the device is stopped by its drop).
                let r = unsafe {
                    match path {
                        Path::Rust => ch.copy(s.data_iova(), d.data_iova(), s.len() as u32),
                        Path::Shim => via_shim::dma_copy(
                            &mut ch,
                            s.data_iova(),
                            d.data_iova(),
                            s.len() as u32,
                        ),
                    }
                };
                match r {
                    Some(i) => idxs.push(i),
                    None => break,
                }
                next += 1;
            }
            trace.push(format!(
                "round {round}: enqueued {idxs:?}, cap {}",
                cap(&ch)
            ));
            match path {
                Path::Rust => ch.submit(),
                Path::Shim => via_shim::dma_submit(&mut ch),
            }
            let want = idxs.len();
            let mut done = 0usize;
            let mut last = None;
            let mut statuses = Vec::new();
            for _ in 0..100_000 {
                if done == want {
                    break;
                }
                if round == 0 {
                    let c = match path {
                        Path::Rust => ch.completed(8),
                        Path::Shim => via_shim::dma_completed(&mut ch, 8),
                    };
                    assert!(!c.has_error);
                    assert!(c.count <= 8);
                    if c.count > 0 {
                        // The last index reported is the ring index of the last copy done.
                        assert_eq!(c.last_idx, idxs[done + c.count as usize - 1]);
                        last = Some(c.last_idx);
                    }
                    done += c.count as usize;
                } else {
                    let mut st = [u32::MAX; 8];
                    let n = match path {
                        Path::Rust => ch.completed_status(&mut st),
                        Path::Shim => via_shim::dma_completed_status(&mut ch, &mut st),
                    } as usize;
                    statuses.extend_from_slice(&st[..n]);
                    done += n;
                }
                if done < want {
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
            }
            assert_eq!(done, want, "{name}: every copy completed");
            trace.push(format!(
                "round {round}: done {done}, last {last:?}, statuses {statuses:?}, cap {}",
                cap(&ch)
            ));
        }
        // Every copy arrived: the destinations hold the sources.
        for (s, d) in srcs.iter().zip(&dsts) {
            assert_eq!(s.data(), d.data(), "{name}: copy differs");
        }
        let st = dev.stats().unwrap();
        trace.push(format!(
            "stats {} {} {}",
            st.submitted, st.completed, st.errors
        ));
        drop(dev);
        dma_runs.push(trace);
    }
    assert_eq!(dma_runs[0], dma_runs[1]);
    assert!(
        dma_runs[0]
            .iter()
            .any(|l| l.starts_with("round 1") && l.contains("cap 0")),
        "the second round filled the ring: {:?}",
        dma_runs[0]
    );
    drop(pool);
}
