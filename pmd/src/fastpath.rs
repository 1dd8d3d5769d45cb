//! DPDK 22.11's static-inline fast path, written in Rust over the bindgen structs.
//!
//! DPDK's per-packet calls (`rte_eth_rx_burst`, `rte_eth_tx_burst`, the mempool's bulk get and
//! put under `rte_pktmbuf_alloc`/`rte_pktmbuf_free`, `rte_dma_copy`, `rte_dma_submit`,
//! `rte_dma_completed[_status]`, `rte_dma_burst_capacity`) are `static inline` in its headers:
//! a C application compiles them into its own loop, where they are a table load and an indirect
//! call into the driver. Through the C shim (`dpdk-sys/shim`) each one costs Rust an extra
//! out-of-line call, and the mempool and mbuf ones cannot be inlined at all. This module is the
//! same code in Rust, line for line what the headers of the installed DPDK (22.11, with its
//! `rte_config.h`: `RTE_ETHDEV_RXTX_CALLBACKS` on, the `*_DEBUG` options and mempool stats
//! off, `RTE_ENABLE_TRACE_FP` off) compile to:
//!
//! * ethdev (`rte_ethdev.h`): `rte_eth_fp_ops[port]`'s burst function on `rxq.data[queue]`,
//!   and, when a callback is installed on the queue (`rxq.clbk[queue]` / `txq.clbk[queue]`
//!   non-null, read with a relaxed load as the header does), DPDK's own exported
//!   `rte_eth_call_rx_callbacks` / `rte_eth_call_tx_callbacks`.
//! * dmadev (`rte_dmadev.h`): `rte_dma_fp_objs[dev]`'s function on its `dev_private`.
//! * mempool (`rte_mempool.h`): the per-lcore cache of the calling lcore (none for a thread
//!   that is not an lcore, or a pool without caches), filled from and flushed to the pool's
//!   driver ops (`rte_mempool_ops_table.ops[ops_index]`) exactly as
//!   `rte_mempool_do_generic_get` / `_put` do.
//! * mbuf (`rte_mbuf.h`): `rte_pktmbuf_reset`, and `rte_pktmbuf_free` for the plain mbuf
//!   (one direct segment, reference count 1); anything else (chains, clones, external
//!   buffers, shared mbufs) goes to the shim's `rte_pktmbuf_free`.
//!
//! The shim keeps every one of these as a real symbol, and [`crate::via_shim`] runs the safe
//! API through them, so that `tests/fastpath_equiv.rs` can check both give the same results.
//! Nothing here takes a lock, makes a system call or an atomic read-modify-write (the
//! callbacks' pointers are read with relaxed loads; the driver functions called are DPDK's).

use dpdk_sys::{rte_mbuf, rte_mempool, rte_mempool_cache};
use std::cell::Cell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicPtr, AtomicU16, Ordering};

// ---------------------------------------------------------------------------------------------
// The calling thread's lcore id (rte_lcore_id()).

thread_local! {
    /// Address of this thread's `RTE_PER_LCORE(_lcore_id)`, asked of the shim once.
    static LCORE_ID_PTR: Cell<*const u32> = const { Cell::new(std::ptr::null()) };
}

#[cold]
#[inline(never)]
fn lcore_id_ptr_slow() -> *const u32 {
    // SAFETY: returns the address of the calling thread's own lcore-id variable; no
    // preconditions.
    unsafe { dpdk_sys::shim_lcore_id_ptr() }
}

/// `rte_lcore_id()`: this thread's lcore id, `u32::MAX` (`LCORE_ID_ANY`) for a thread that is
/// not an lcore. Read from DPDK's own per-thread variable each time (it changes when a thread
/// registers or unregisters), through its address cached per thread.
#[inline]
pub(crate) fn lcore_id() -> u32 {
    LCORE_ID_PTR.with(|c| {
        let mut p = c.get();
        if p.is_null() {
            p = lcore_id_ptr_slow();
            c.set(p);
        }
        // SAFETY: p is the address of this thread's own `_lcore_id` thread-local variable
        // (the cache is per thread too), valid for the thread's life and written only by
        // this thread.
        unsafe { p.read() }
    })
}

// ---------------------------------------------------------------------------------------------
// Mempool (rte_mempool.h).

/// `rte_mempool_default_cache(mp, lcore)`.
///
/// # Safety
/// `mp` is a live mempool.
#[inline(always)]
unsafe fn default_cache(mp: *mut rte_mempool, lcore: u32) -> *mut rte_mempool_cache {
    // SAFETY: `mp` is live (caller); `local_cache` has RTE_MAX_LCORE entries when the pool
    // has a cache, and lcore is below that.
    unsafe {
        if (*mp).cache_size == 0 || lcore >= dpdk_sys::RTE_MAX_LCORE {
            return std::ptr::null_mut();
        }
        (*mp).local_cache.add(lcore as usize)
    }
}

/// The pool's driver ops (`rte_mempool_get_ops(mp->ops_index)`); panics on an index out of
/// the table, where DPDK's `RTE_VERIFY` panics too.
///
/// # Safety
/// `mp` is a live mempool.
#[inline(always)]
unsafe fn ops(mp: *mut rte_mempool) -> *const dpdk_sys::rte_mempool_ops {
    // SAFETY: `mp` is live (caller); the ops table is DPDK's global, written only when a
    // driver registers (at start-up, before any pool exists).
    unsafe {
        let idx = (*mp).ops_index;
        let table = std::ptr::addr_of!(dpdk_sys::rte_mempool_ops_table);
        let n = (*table).ops.len();
        assert!(
            (idx as u32 as usize) < n,
            "mempool ops index {idx} out of range"
        );
        std::ptr::addr_of!((*table).ops)
            .cast::<dpdk_sys::rte_mempool_ops>()
            .add(idx as usize)
    }
}

/// `rte_mempool_ops_dequeue_bulk`.
///
/// # Safety
/// `mp` is a live mempool; `objs` has room for `n` pointers.
#[inline(always)]
unsafe fn ops_dequeue(mp: *mut rte_mempool, objs: *mut *mut c_void, n: u32) -> i32 {
    // SAFETY: the caller's contract is the driver function's.
    unsafe {
        match (*ops(mp)).dequeue {
            Some(f) => f(mp, objs, n),
            None => -libc::ENOTSUP,
        }
    }
}

/// `rte_mempool_ops_enqueue_bulk`.
///
/// # Safety
/// `mp` is a live mempool; `objs` holds `n` objects of it that the caller gives up.
#[inline(always)]
unsafe fn ops_enqueue(mp: *mut rte_mempool, objs: *const *mut c_void, n: u32) -> i32 {
    // SAFETY: the caller's contract is the driver function's. A pool without an enqueue
    // cannot exist (rte_mempool_register_ops requires one).
    unsafe {
        match (*ops(mp)).enqueue {
            Some(f) => f(mp, objs, n),
            None => -libc::ENOTSUP,
        }
    }
}

/// `rte_mempool_get_bulk(mp, objs, n)`: `n` objects, all or none (0, or a negative errno).
///
/// # Safety
/// `mp` is a live mempool; `objs` has room for `n` pointers. On success the caller owns them.
#[inline(always)]
pub(crate) unsafe fn mempool_get_bulk(mp: *mut rte_mempool, objs: *mut *mut c_void, n: u32) -> i32 {
    // SAFETY: as `rte_mempool_do_generic_get`: the cache is the calling lcore's own (only
    // this thread touches it), and every index stays inside `objs` (n) and the cache's
    // 2 * RTE_MEMPOOL_CACHE_MAX_SIZE slots (len <= flushthresh <= 1.5 * size, and
    // size + remaining <= 2 * RTE_MEMPOOL_CACHE_MAX_SIZE).
    unsafe {
        let cache = default_cache(mp, lcore_id());
        let mut remaining = n;
        if !cache.is_null() {
            let c = &mut *cache;
            // Use the cache as much as it has, hot objects first (LIFO).
            let len = remaining.min(c.len);
            let objs_c = c.objs.as_mut_ptr();
            let mut top = c.len as usize;
            c.len -= len;
            remaining -= len;
            let mut out = objs;
            for _ in 0..len {
                top -= 1;
                *out = *objs_c.add(top);
                out = out.add(1);
            }
            if remaining == 0 {
                return 0;
            }
            if remaining <= dpdk_sys::RTE_MEMPOOL_CACHE_MAX_SIZE {
                // Fill the cache from the backend: size + remaining objects.
                if ops_dequeue(mp, objs_c, c.size + remaining) >= 0 {
                    let mut top = (c.size + remaining) as usize;
                    for _ in 0..remaining {
                        top -= 1;
                        *out = *objs_c.add(top);
                        out = out.add(1);
                    }
                    c.len = c.size;
                    return 0;
                }
            }
            // Buffer-constrained: the rest directly from the backend.
            let ret = ops_dequeue(mp, out, remaining);
            if ret < 0 {
                // Roll the part taken from the cache back: its objects are still there.
                c.len = n - remaining;
            }
            return ret;
        }
        ops_dequeue(mp, objs, remaining)
    }
}

/// `rte_mempool_put_bulk(mp, objs, n)`.
///
/// # Safety
/// `mp` is a live mempool; `objs` holds `n` objects of it that the caller owns and gives up.
#[inline(always)]
pub(crate) unsafe fn mempool_put_bulk(mp: *mut rte_mempool, objs: *const *mut c_void, n: u32) {
    // SAFETY: as `rte_mempool_do_generic_put`: the cache is this lcore's own; the cache
    // holds len + n <= flushthresh objects, inside its 2 * RTE_MEMPOOL_CACHE_MAX_SIZE slots.
    unsafe {
        let cache = default_cache(mp, lcore_id());
        if !cache.is_null() {
            let c = &mut *cache;
            if n <= c.flushthresh {
                let dst = if c.len + n <= c.flushthresh {
                    let d = c.objs.as_mut_ptr().add(c.len as usize);
                    c.len += n;
                    d
                } else {
                    ops_enqueue(mp, c.objs.as_ptr(), c.len);
                    c.len = n;
                    c.objs.as_mut_ptr()
                };
                std::ptr::copy_nonoverlapping(objs, dst, n as usize);
                return;
            }
        }
        ops_enqueue(mp, objs, n);
    }
}

// ---------------------------------------------------------------------------------------------
// Mbuf (rte_mbuf.h).

/// `rte_pktmbuf_reset(m)`.
///
/// # Safety
/// `m` is a valid mbuf the caller owns exclusively.
#[inline(always)]
pub(crate) unsafe fn pktmbuf_reset(m: *mut rte_mbuf) {
    // SAFETY: the caller owns the mbuf.
    unsafe {
        let m = &mut *m;
        m.next = std::ptr::null_mut();
        m.pkt_len = 0;
        m.__bindgen_anon_3.tx_offload = 0;
        m.vlan_tci = 0;
        m.vlan_tci_outer = 0;
        m.nb_segs = 1;
        m.port = dpdk_sys::RTE_MBUF_PORT_INVALID as u16;
        m.ol_flags &= dpdk_sys::SHIM_MBUF_F_EXTERNAL;
        m.__bindgen_anon_1.packet_type = 0;
        m.data_off = (dpdk_sys::RTE_PKTMBUF_HEADROOM as u16).min(m.buf_len);
        m.data_len = 0;
    }
}

/// What a copy to be transmitted needs of a raw mbuf (fresh from its pool, where DPDK keeps
/// it with reference count 1, one segment, no next and no attached buffer): the headroom,
/// lengths 0 and no offload flags, as `rte_pktmbuf_reset` sets them. The fields a driver
/// reads only when an offload flag asks for them (VLAN tags, TX offload lengths), and the
/// receive-side ones (port, packet type, RSS hash), keep what the buffer last held; the
/// mbuf's second cache line is not touched at all. Read from the mbuf, as DPDK would (its
/// `buf_len`, its external-buffer flag); a pool's own allocations write the same values
/// without reading (`Mempool::init_raw`), and the C-shim path keeps this one, which the tests
/// hold them to.
///
/// # Safety
/// `m` is a valid mbuf the caller owns exclusively.
#[inline(always)]
pub(crate) unsafe fn pktmbuf_init_raw(m: *mut rte_mbuf) {
    // SAFETY: the caller owns the mbuf.
    unsafe {
        let m = &mut *m;
        m.ol_flags &= dpdk_sys::SHIM_MBUF_F_EXTERNAL;
        m.data_off = (dpdk_sys::RTE_PKTMBUF_HEADROOM as u16).min(m.buf_len);
        m.pkt_len = 0;
        m.data_len = 0;
    }
}

/// Whether `rte_pktmbuf_free(m)` would do no more than put `m` back into its pool: a direct
/// single-segment mbuf with reference count 1 (read relaxed, as `rte_mbuf_refcnt_read`).
///
/// Only the mbuf's first cache line is read. `next` (in the second line, which nothing on a
/// forwarding path touches, so that reading it is a miss to memory per packet: 7% of
/// pktgen's RX lcore in `perf`) is not: a packet's (first segment's) `nb_segs` is the length
/// of its chain (`rte_mbuf_check` holds a packet to that), so a packet with `nb_segs == 1` has
/// no `next`, which is what DPDK's own `rte_pktmbuf_is_contiguous` rests on.
///
/// # Safety
/// `m` is a valid mbuf, the first segment of a packet (every `Mbuf` is: see
/// [`Mbuf::from_raw`](crate::Mbuf::from_raw)).
#[inline(always)]
pub(crate) unsafe fn is_plain(m: *mut rte_mbuf) -> bool {
    // SAFETY: `m` is valid; the reference count may be updated by other holders of a shared
    // mbuf, so it is read atomically.
    unsafe {
        let refcnt =
            AtomicU16::from_ptr(std::ptr::addr_of_mut!((*m).refcnt)).load(Ordering::Relaxed);
        refcnt == 1
            && (*m).nb_segs == 1
            && (*m).ol_flags & (dpdk_sys::SHIM_MBUF_F_EXTERNAL | dpdk_sys::SHIM_MBUF_F_INDIRECT)
                == 0
    }
}

/// `rte_pktmbuf_free(m)`: a plain mbuf goes straight back to its pool's cache here; anything
/// else (chains, clones, external buffers, shared mbufs, with their atomic reference counts)
/// through DPDK's own `rte_pktmbuf_free` in the shim.
///
/// # Safety
/// `m` is a valid mbuf the caller owns and gives up, the first segment of a packet (see
/// [`is_plain`]).
#[inline(always)]
pub(crate) unsafe fn pktmbuf_free(m: *mut rte_mbuf) {
    // SAFETY: the caller gives up `m`; a plain mbuf is already in the state its pool keeps
    // it in (what rte_pktmbuf_prefree_seg would leave), so putting it back is all that
    // rte_pktmbuf_free would do.
    unsafe {
        if is_plain(m) {
            let obj = m as *mut c_void;
            mempool_put_bulk((*m).pool, &obj, 1);
        } else {
            pktmbuf_free_general(m);
        }
    }
}

#[cold]
#[inline(never)]
unsafe fn pktmbuf_free_general(m: *mut rte_mbuf) {
    // SAFETY: the caller gives up a valid mbuf.
    unsafe { dpdk_sys::shim_pktmbuf_free(m) }
}

// ---------------------------------------------------------------------------------------------
// ethdev (rte_ethdev.h).

/// The port's entry in `rte_eth_fp_ops`.
///
/// # Safety
/// `port` is below RTE_MAX_ETHPORTS.
#[inline(always)]
unsafe fn eth_fp_ops(port: u16) -> *const dpdk_sys::rte_eth_fp_ops {
    debug_assert!((port as u32) < dpdk_sys::RTE_MAX_ETHPORTS);
    // SAFETY: the table has RTE_MAX_ETHPORTS entries (caller: port is below).
    unsafe {
        std::ptr::addr_of!(dpdk_sys::rte_eth_fp_ops)
            .cast::<dpdk_sys::rte_eth_fp_ops>()
            .add(port as usize)
    }
}

/// `rte_eth_rx_burst(port, queue, pkts, n)`.
///
/// # Safety
/// `port` is a configured port and `queue` one of its RX queues, polled by this thread only;
/// `pkts` has room for `n` pointers.
#[inline(always)]
pub(crate) unsafe fn eth_rx_burst(port: u16, queue: u16, pkts: *mut *mut rte_mbuf, n: u16) -> u16 {
    // SAFETY: as `rte_eth_rx_burst`: the entry and its queue arrays are DPDK's, valid for a
    // configured port and queue (caller); a stopped port has dummy burst functions.
    unsafe {
        let p = eth_fp_ops(port);
        let qd = *(*p).rxq.data.add(queue as usize);
        let nb_rx = match (*p).rx_pkt_burst {
            Some(f) => f(qd, pkts, n),
            None => 0,
        };
        // Written with a release store when a callback is added; relaxed suffices here (the
        // callback is reached through this pointer), as in the header.
        let cb = AtomicPtr::from_ptr((*p).rxq.clbk.add(queue as usize)).load(Ordering::Relaxed);
        if !cb.is_null() {
            return eth_rx_callbacks(port, queue, pkts, nb_rx, n, cb);
        }
        nb_rx
    }
}

#[cold]
#[inline(never)]
unsafe fn eth_rx_callbacks(
    port: u16,
    queue: u16,
    pkts: *mut *mut rte_mbuf,
    nb_rx: u16,
    n: u16,
    cb: *mut c_void,
) -> u16 {
    // SAFETY: DPDK's own callback runner, with what rte_eth_rx_burst passes it.
    unsafe { dpdk_sys::rte_eth_call_rx_callbacks(port, queue, pkts, nb_rx, n, cb) }
}

/// `rte_eth_tx_burst(port, queue, pkts, n)`.
///
/// # Safety
/// `port` is a configured port and `queue` one of its TX queues, used by this thread only;
/// `pkts` holds `n` mbufs, of which the driver takes the first (returned) count.
#[inline(always)]
pub(crate) unsafe fn eth_tx_burst(port: u16, queue: u16, pkts: *mut *mut rte_mbuf, n: u16) -> u16 {
    // SAFETY: as `rte_eth_tx_burst` (see eth_rx_burst).
    unsafe {
        let p = eth_fp_ops(port);
        let qd = *(*p).txq.data.add(queue as usize);
        let mut n = n;
        let cb = AtomicPtr::from_ptr((*p).txq.clbk.add(queue as usize)).load(Ordering::Relaxed);
        if !cb.is_null() {
            n = eth_tx_callbacks(port, queue, pkts, n, cb);
        }
        match (*p).tx_pkt_burst {
            Some(f) => f(qd, pkts, n),
            None => 0,
        }
    }
}

#[cold]
#[inline(never)]
unsafe fn eth_tx_callbacks(
    port: u16,
    queue: u16,
    pkts: *mut *mut rte_mbuf,
    n: u16,
    cb: *mut c_void,
) -> u16 {
    // SAFETY: DPDK's own callback runner, with what rte_eth_tx_burst passes it.
    unsafe { dpdk_sys::rte_eth_call_tx_callbacks(port, queue, pkts, n, cb) }
}

// ---------------------------------------------------------------------------------------------
// dmadev (rte_dmadev.h).

/// The device's entry in `rte_dma_fp_objs`.
///
/// # Safety
/// `dev` is a valid dmadev id (so the table exists and has its entry).
#[inline(always)]
unsafe fn dma_fp(dev: i16) -> *const dpdk_sys::rte_dma_fp_object {
    debug_assert!(dev >= 0);
    // SAFETY: the table has an entry for every valid device id (caller).
    unsafe { (*std::ptr::addr_of!(dpdk_sys::rte_dma_fp_objs)).add(dev as usize) }
}

/// `rte_dma_copy(dev, vchan, src, dst, len, flags)`.
///
/// # Safety
/// `dev` is a configured, started dmadev and `vchan` one of its vchans, used by this thread
/// only; the engine will read `src` and write `dst` (see `DmaChannel::copy`).
#[inline(always)]
pub(crate) unsafe fn dma_copy(
    dev: i16,
    vchan: u16,
    src: u64,
    dst: u64,
    len: u32,
    flags: u64,
) -> i32 {
    // SAFETY: the caller's contract is the driver's.
    unsafe {
        let o = dma_fp(dev);
        match (*o).copy {
            Some(f) => f((*o).dev_private, vchan, src, dst, len, flags),
            None => -libc::ENOTSUP,
        }
    }
}

/// `rte_dma_submit(dev, vchan)`.
///
/// # Safety
/// As [`dma_copy`].
#[inline(always)]
pub(crate) unsafe fn dma_submit(dev: i16, vchan: u16) -> i32 {
    // SAFETY: the caller's contract is the driver's.
    unsafe {
        let o = dma_fp(dev);
        match (*o).submit {
            Some(f) => f((*o).dev_private, vchan),
            None => -libc::ENOTSUP,
        }
    }
}

/// `rte_dma_completed(dev, vchan, n, &last_idx, &has_error)`.
///
/// # Safety
/// As [`dma_copy`].
#[inline(always)]
pub(crate) unsafe fn dma_completed(
    dev: i16,
    vchan: u16,
    n: u16,
    last_idx: &mut u16,
    has_error: &mut bool,
) -> u16 {
    // SAFETY: the caller's contract is the driver's; both out-parameters are valid.
    unsafe {
        let o = dma_fp(dev);
        *has_error = false;
        match (*o).completed {
            Some(f) => f((*o).dev_private, vchan, n, last_idx, has_error),
            None => 0,
        }
    }
}

/// `rte_dma_completed_status(dev, vchan, n, &last_idx, status)`.
///
/// # Safety
/// As [`dma_copy`]; `status` has room for `n` codes.
#[inline(always)]
pub(crate) unsafe fn dma_completed_status(
    dev: i16,
    vchan: u16,
    n: u16,
    last_idx: &mut u16,
    status: *mut dpdk_sys::rte_dma_status_code,
) -> u16 {
    // SAFETY: the caller's contract is the driver's.
    unsafe {
        let o = dma_fp(dev);
        match (*o).completed_status {
            Some(f) => f((*o).dev_private, vchan, n, last_idx, status),
            None => 0,
        }
    }
}

/// `rte_dma_burst_capacity(dev, vchan)`.
///
/// # Safety
/// As [`dma_copy`].
#[inline(always)]
pub(crate) unsafe fn dma_burst_capacity(dev: i16, vchan: u16) -> u16 {
    // SAFETY: the caller's contract is the driver's.
    unsafe {
        let o = dma_fp(dev);
        match (*o).burst_capacity {
            Some(f) => f((*o).dev_private, vchan),
            None => 0,
        }
    }
}
