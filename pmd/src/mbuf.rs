//! Mempools and owned mbufs.

use crate::eal::{cstr, Eal};
use crate::error::{last_error, Error, Result};
use dpdk_sys::{rte_mbuf, rte_mempool};
use std::marker::PhantomData;
use std::ptr::NonNull;

/// A pool of packet buffers (`rte_pktmbuf_pool_create`).
pub struct Mempool<'eal> {
    raw: NonNull<rte_mempool>,
    data_room: u16,
    size: u32,
    _eal: PhantomData<&'eal ()>,
}

// SAFETY: a DPDK mempool is a multi-producer/multi-consumer object designed to be used from
// every lcore at once; the handle only carries its address.
unsafe impl Send for Mempool<'_> {}
// SAFETY: as above: every operation on it is thread-safe in DPDK.
unsafe impl Sync for Mempool<'_> {}

/// Default headroom DPDK leaves in front of packet data.
pub const PKTMBUF_HEADROOM: u16 = dpdk_sys::RTE_PKTMBUF_HEADROOM as u16;

impl<'eal> Mempool<'eal> {
    /// Creates a packet mbuf pool of `n` buffers with `data_room` bytes each (headroom
    /// included) and a per-lcore cache of `cache` buffers, on NUMA `socket`.
    pub fn create(
        _eal: &'eal Eal,
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Self> {
        let cname = cstr(name)?;
        // SAFETY: cname is a valid C string; the EAL is initialised (we hold `&Eal`).
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, data_room, socket)
        };
        let raw = NonNull::new(raw).ok_or_else(|| last_error("rte_pktmbuf_pool_create"))?;
        Ok(Mempool {
            raw,
            data_room,
            size: n,
            _eal: PhantomData,
        })
    }

    /// Number of buffers the pool was created with.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Bytes of packet data one buffer holds after the headroom.
    pub fn data_room(&self) -> u16 {
        self.data_room.saturating_sub(PKTMBUF_HEADROOM)
    }

    /// Buffers currently out of the pool (in rings, in flight, held by the application).
    /// Per-lcore caches count as in the pool.
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is alive (we own it); the count is a racy read by design.
        unsafe { dpdk_sys::shim_mempool_in_use_count(self.raw.as_ptr()) }
    }

    /// Allocates one mbuf, or `None` when the pool is empty. The mbuf borrows the pool: it
    /// cannot outlive it.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf<'_>> {
        let mut obj = std::ptr::null_mut::<std::ffi::c_void>();
        // SAFETY: the pool is alive; on success we own the one object, an mbuf of the pool,
        // which rte_pktmbuf_reset (as rte_pktmbuf_alloc) makes a fresh empty packet.
        unsafe {
            if crate::fastpath::mempool_get_bulk(self.raw.as_ptr(), &mut obj, 1) < 0 {
                return None;
            }
            crate::fastpath::pktmbuf_reset(obj.cast());
        }
        NonNull::new(obj.cast()).map(Mbuf::own)
    }

    /// Allocates `out.len()` (at most [`crate::MAX_BURST`]) mbufs at once, all or nothing.
    /// Returns false when the pool cannot supply them all, or more than a burst is asked for.
    #[inline]
    pub fn alloc_bulk<'p>(&'p self, out: &mut [Option<Mbuf<'p>>]) -> bool {
        // SAFETY: each is an mbuf of this pool that we own (fresh from it).
        self.alloc_bulk_with(out, |m| unsafe { crate::fastpath::pktmbuf_reset(m) }, false)
    }

    /// Like [`Self::alloc_bulk`], but without `rte_pktmbuf_reset`'s full reset, as DPDK's
    /// `rte_mbuf_raw_alloc` (and dmafwd, with `rte_mempool_get_bulk`) take buffers for copies:
    /// each mbuf gets only what a single-segment packet built in it and transmitted needs:
    /// the headroom, lengths 0 (set them with [`Mbuf::set_len`]) and no offload flags. Its
    /// port, packet type, RSS hash, VLAN tags and TX offload lengths keep the values of the
    /// buffer's last use: drivers read those only when an offload flag asks for them, and none
    /// is set. Saves writing the mbuf's second cache line.
    #[inline]
    pub fn alloc_bulk_raw<'p>(&'p self, out: &mut [Option<Mbuf<'p>>]) -> bool {
        // SAFETY: each is an mbuf of this pool that we own (fresh from it); 0 bytes fit.
        self.alloc_bulk_with(out, |m| unsafe { self.init_raw(m, 0) }, false)
    }

    /// Sets up `m`, fresh from this pool, as a raw copy destination holding `len` bytes: the
    /// fields `pktmbuf_init_raw` (DPDK's own reading of them) writes, then the lengths. The
    /// values are known without reading the mbuf: every buffer of a pool [`create`] made
    /// (`rte_pktmbuf_pool_create`, no private area) is `data_room` long, and none is an
    /// external buffer while in the pool (DPDK detaches one before a buffer goes back). So this
    /// only stores, and a burst's headers are written without waiting, one after another, for
    /// each to come in from the cache or memory (reading `buf_len` first was a third of
    /// pktgen's TX lcore samples in `perf`).
    ///
    /// # Safety
    /// `m` is an mbuf of this pool that the caller owns, fresh from it, and `len` fits its
    /// data room after the headroom.
    ///
    /// [`create`]: Self::create
    #[inline(always)]
    unsafe fn init_raw(&self, m: *mut rte_mbuf, len: u16) {
        // SAFETY: the caller owns `m`; `len` stays inside the buffer (the caller checked it
        // against the pool's room, which every buffer of a pktmbuf pool has), and a buffer in
        // its pool is a single segment (DPDK keeps nb_segs 1 and next NULL there).
        unsafe {
            (*m).ol_flags = 0;
            (*m).data_off = PKTMBUF_HEADROOM.min(self.data_room);
            (*m).data_len = len;
            (*m).pkt_len = u32::from(len);
        }
    }

    /// Fills `slots` with buffers of this pool, each set up as in [`Self::alloc_bulk_raw`] but
    /// holding `len` bytes of data: all or none (false: the pool had too few, or `len` does not
    /// fit a buffer after its headroom; `slots` then holds nothing the caller owns). On
    /// success the caller owns them.
    #[inline(always)]
    pub(crate) fn get_raw_into(&self, slots: &mut [*mut rte_mbuf], len: u16) -> bool {
        let n = slots.len();
        if n > crate::MAX_BURST || len > self.data_room() {
            return false;
        }
        let objs = slots.as_mut_ptr() as *mut *mut std::ffi::c_void;
        // SAFETY: `slots` has room for n pointers; on success the pool fills all n with mbufs
        // the caller then owns; on failure it writes none that the caller owns.
        if unsafe { crate::fastpath::mempool_get_bulk(self.raw.as_ptr(), objs, n as u32) } != 0 {
            return false;
        }
        for &p in slots.iter() {
            // SAFETY: each is an mbuf of this pool that we own (fresh from it), and `len` fits
            // its data room after the headroom (checked above against the pool's).
            unsafe { self.init_raw(p, len) };
        }
        true
    }

    /// `alloc_bulk` (reset) or `alloc_bulk_raw`, through the C shim's mempool get.
    pub(crate) fn alloc_bulk_via_shim<'p>(
        &'p self,
        out: &mut [Option<Mbuf<'p>>],
        raw: bool,
    ) -> bool {
        if raw {
            // SAFETY: as in `alloc_bulk_raw`. DPDK's reading of the fields, the reference the
            // tests hold `init_raw` to.
            self.alloc_bulk_with(
                out,
                |m| unsafe { crate::fastpath::pktmbuf_init_raw(m) },
                true,
            )
        } else {
            // SAFETY: as in `alloc_bulk`, with DPDK's own rte_pktmbuf_reset.
            self.alloc_bulk_with(out, |m| unsafe { dpdk_sys::shim_pktmbuf_reset(m) }, true)
        }
    }

    #[inline(always)]
    fn alloc_bulk_with<'p>(
        &'p self,
        out: &mut [Option<Mbuf<'p>>],
        init: impl Fn(*mut rte_mbuf),
        via_shim: bool,
    ) -> bool {
        let mut raw = [std::ptr::null_mut::<rte_mbuf>(); crate::MAX_BURST];
        let n = out.len();
        if n > raw.len() {
            return false;
        }
        let objs = raw.as_mut_ptr() as *mut *mut std::ffi::c_void;
        // SAFETY: raw has room for n pointers; on success the pool fills all n with mbufs we
        // then own.
        let ret = unsafe {
            if via_shim {
                dpdk_sys::shim_mempool_get_bulk(self.raw.as_ptr(), objs, n as u32)
            } else {
                crate::fastpath::mempool_get_bulk(self.raw.as_ptr(), objs, n as u32)
            }
        };
        if ret != 0 {
            return false;
        }
        for (slot, p) in out.iter_mut().zip(raw) {
            init(p);
            *slot = NonNull::new(p).map(Mbuf::own);
        }
        true
    }

    /// One mbuf through the C shim's `rte_pktmbuf_alloc`.
    pub(crate) fn alloc_via_shim(&self) -> Option<Mbuf<'_>> {
        // SAFETY: the pool is alive; rte_pktmbuf_alloc returns NULL or a reset mbuf we own.
        NonNull::new(unsafe { dpdk_sys::shim_pktmbuf_alloc(self.raw.as_ptr()) }).map(Mbuf::own)
    }

    /// Buffers in the pool (its ring and every lcore cache), through the shim.
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is alive; the count is a racy read by design.
        unsafe { dpdk_sys::shim_mempool_avail_count(self.raw.as_ptr()) }
    }

    pub(crate) fn as_ptr(&self) -> *mut rte_mempool {
        self.raw.as_ptr()
    }
}

impl Drop for Mempool<'_> {
    fn drop(&mut self) {
        if self.in_use() != 0 {
            // Freeing a pool whose buffers are still referenced would let them be written
            // after free; leak it instead (the process is ending anyway when this happens).
            return;
        }
        // SAFETY: no buffer of the pool is in use and we own the pool.
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) };
    }
}

/// An owned packet buffer. Dropping it returns it to its pool.
///
/// `'p` is a borrow of the pool the buffer lives in (directly from [`Mempool::alloc`], or through
/// the port whose RX queue received it, which borrows its pool): the buffer cannot outlive the
/// pool, nor the EAL that owns the memory.
///
/// Only the first segment's data is exposed: the ports here are configured without
/// scatter-gather, so every received packet is a single segment.
#[repr(transparent)]
pub struct Mbuf<'p> {
    raw: NonNull<rte_mbuf>,
    _pool: PhantomData<&'p Mempool<'p>>,
}

// SAFETY: an mbuf is owned by exactly one holder at a time (this handle); moving that ownership
// between lcores is how DPDK pipelines work, and its pool is thread-safe (see `Mempool`).
unsafe impl Send for Mbuf<'_> {}

impl<'p> Mbuf<'p> {
    #[inline]
    fn own(raw: NonNull<rte_mbuf>) -> Self {
        Mbuf {
            raw,
            _pool: PhantomData,
        }
    }

    #[inline]
    fn raw(&self) -> &rte_mbuf {
        // SAFETY: we own a valid mbuf for as long as self lives.
        unsafe { self.raw.as_ref() }
    }

    /// Length of the packet data in this (first) segment.
    #[inline]
    pub fn len(&self) -> usize {
        self.raw().data_len as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total packet length over all segments.
    #[inline]
    pub fn pkt_len(&self) -> usize {
        self.raw().pkt_len as usize
    }

    /// Number of segments.
    #[inline]
    pub fn nb_segs(&self) -> u16 {
        self.raw().nb_segs
    }

    /// Room for data from the start of the data to the end of the buffer.
    #[inline]
    pub fn capacity(&self) -> usize {
        let m = self.raw();
        (m.buf_len - m.data_off) as usize
    }

    /// The packet data.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the mbuf's buffer, which we own.
        unsafe {
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    /// The packet data, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw();
        let (addr, off, len) = (m.buf_addr as *mut u8, m.data_off, m.data_len);
        // SAFETY: as in `data`, and `&mut self` makes this the only view of the buffer.
        unsafe { std::slice::from_raw_parts_mut(addr.add(off as usize), len as usize) }
    }

    /// The buffer from the start of the data to its end, writable: the packet data and the
    /// unused room after it ([`capacity`](Self::capacity) bytes). For a writer that fills
    /// whole cache lines past the end of a short packet rather than stop at its last byte.
    /// Only for a buffer this mbuf alone holds: a direct mbuf (not attached to another's
    /// buffer, not an external buffer) with reference count 1, as every fresh mbuf of a pool
    /// is; any other gives an empty slice, since the room past its data may be another mbuf's
    /// data (the segments GSO and fragmentation make share one buffer).
    #[inline]
    pub fn room_mut(&mut self) -> &mut [u8] {
        let raw = self.raw.as_ptr();
        // Relaxed, as rte_mbuf_refcnt_read: holders of a shared mbuf may update it.
        // SAFETY: the mbuf is valid while we own it, the field is aligned, and it is read
        // atomically, as its other holders (if any) update it.
        let refcnt = unsafe {
            std::sync::atomic::AtomicU16::from_ptr(std::ptr::addr_of_mut!((*raw).refcnt))
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        let m = self.raw();
        let shared = dpdk_sys::SHIM_MBUF_F_INDIRECT | dpdk_sys::SHIM_MBUF_F_EXTERNAL;
        // DPDK keeps data_off <= buf_len; an mbuf that broke it gives an empty slice too.
        let (addr, end) = (m.buf_addr as *mut u8, m.buf_len as usize);
        let off = (m.data_off as usize).min(end);
        let len = if refcnt == 1 && m.ol_flags & shared == 0 {
            end - off
        } else {
            0
        };
        // SAFETY: buf_addr + off .. + len is the rest of the mbuf's buffer, which this mbuf
        // alone holds (direct, refcnt 1: no indirect mbuf is attached to it, and it is not
        // attached to another's) and which we own; `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(addr.add(off), len) }
    }

    /// Sets the data length of a single-segment mbuf (for building a packet into a fresh
    /// buffer). Fails if it does not fit the buffer.
    #[inline]
    pub fn set_len(&mut self, len: usize) -> Result<()> {
        if len > self.capacity() || self.nb_segs() != 1 {
            return Err(Error::Invalid(format!(
                "packet of {len} bytes does not fit an mbuf of {} bytes",
                self.capacity()
            )));
        }
        // SAFETY: we own the mbuf exclusively; lengths stay within the buffer (checked).
        let m = unsafe { self.raw.as_mut() };
        m.data_len = len as u16;
        m.pkt_len = len as u32;
        Ok(())
    }

    /// IO address of the packet data, as a DMA engine sees it.
    #[inline]
    pub fn data_iova(&self) -> u64 {
        let m = self.raw();
        m.buf_iova + m.data_off as u64
    }

    /// The pool the buffer belongs to (for checks like `MBUF_FAST_FREE`'s single pool).
    #[inline]
    pub(crate) fn pool_ptr(&self) -> *mut rte_mempool {
        self.raw().pool
    }

    /// Whether the buffer is plain: reference count 1, one segment, direct (no attached
    /// external or indirect buffer). Only plain buffers may go back to their pool in bulk.
    #[inline]
    pub(crate) fn is_plain(&self) -> bool {
        // SAFETY: we own a valid mbuf.
        unsafe { crate::fastpath::is_plain(self.raw.as_ptr()) }
    }

    /// What `MBUF_FAST_FREE` asks of a transmitted mbuf: a direct single-segment buffer with
    /// reference count 1. Reads only the mbuf's first cache line (the driver reads it anyway).
    #[inline]
    pub(crate) fn is_fast_free_ok(&self) -> bool {
        let r = self.raw();
        r.refcnt == 1
            && r.nb_segs == 1
            && r.ol_flags & (dpdk_sys::SHIM_MBUF_F_EXTERNAL | dpdk_sys::SHIM_MBUF_F_INDIRECT) == 0
    }

    /// Gives up ownership; the caller must later rebuild it with [`Mbuf::from_raw`] or free it.
    /// (Leaking a buffer is safe: it only never returns to its pool.)
    #[inline]
    pub fn into_raw(self) -> *mut rte_mbuf {
        let p = self.raw.as_ptr();
        std::mem::forget(self);
        p
    }

    /// # Safety
    /// `p` must be a valid mbuf that the caller owns (for example from [`Mbuf::into_raw`]),
    /// from a pool that outlives `'p`: the first segment of a packet, whose `nb_segs` is the
    /// length of its chain (as `rte_mbuf_check` requires; freeing relies on it).
    #[inline]
    pub unsafe fn from_raw(p: NonNull<rte_mbuf>) -> Mbuf<'p> {
        Mbuf::own(p)
    }
}

impl Mbuf<'_> {
    /// Frees through the C shim's `rte_pktmbuf_free` (see [`crate::via_shim`]).
    pub(crate) fn free_via_shim(self) {
        // SAFETY: we own the mbuf and give it up (into_raw forgets the handle).
        unsafe { dpdk_sys::shim_pktmbuf_free(self.into_raw()) }
    }
}

impl Drop for Mbuf<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; this is its single release.
        unsafe { crate::fastpath::pktmbuf_free(self.raw.as_ptr()) }
    }
}

/// Mbufs to free, returned to their pool together: one `rte_mempool_put_bulk` for every plain
/// mbuf (reference count 1, one segment, direct, of one pool), as DPDK drivers free transmitted
/// mbufs with `MBUF_FAST_FREE`; anything else is freed the ordinary way at once.
///
/// The batch holds mbufs that borrow their pool for `'p`, so it cannot outlive the pool either.
pub struct FreeBatch<'p> {
    pool: *mut rte_mempool,
    len: usize,
    ptrs: [*mut rte_mbuf; FreeBatch::CAP],
    _pool: PhantomData<Mbuf<'p>>,
}

impl Default for FreeBatch<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'p> FreeBatch<'p> {
    const CAP: usize = 64;

    pub const fn new() -> Self {
        FreeBatch {
            pool: std::ptr::null_mut(),
            len: 0,
            ptrs: [std::ptr::null_mut(); FreeBatch::CAP],
            _pool: PhantomData,
        }
    }

    /// Takes `m` to be freed with the batch. Called per packet: the common case (a plain mbuf
    /// of the batch's pool, room in the batch) is inlined, everything else is out of line.
    #[inline(always)]
    pub fn push(&mut self, m: Mbuf<'p>) {
        let pool = m.pool_ptr();
        if m.is_plain() && self.len < Self::CAP && (pool == self.pool || self.len == 0) {
            self.pool = pool;
            self.ptrs[self.len] = m.into_raw();
            self.len += 1;
        } else {
            self.push_slow(m);
        }
    }

    #[cold]
    #[inline(never)]
    fn push_slow(&mut self, m: Mbuf<'p>) {
        if !m.is_plain() {
            drop(m); // rte_pktmbuf_free handles the general case
            return;
        }
        let pool = m.pool_ptr();
        if self.len == Self::CAP || (self.len > 0 && pool != self.pool) {
            self.flush();
        }
        self.pool = pool;
        self.ptrs[self.len] = m.into_raw();
        self.len += 1;
    }

    /// Returns the batch to its pool now.
    #[inline]
    pub fn flush(&mut self) {
        self.flush_with(false)
    }

    /// [`Self::flush`] through the C shim's `rte_mempool_put_bulk`.
    pub(crate) fn flush_via_shim(&mut self) {
        self.flush_with(true)
    }

    #[inline(always)]
    fn flush_with(&mut self, via_shim: bool) {
        if self.len == 0 {
            return;
        }
        // SAFETY: every pointer is an mbuf we owned (taken from an `Mbuf`), of `self.pool`,
        // with refcnt 1, one segment, no next and no attached buffer: exactly the state in
        // which DPDK keeps mbufs in their pool (what rte_pktmbuf_free would establish and then
        // put), so putting them back directly is what rte_pktmbuf_free would have done.
        unsafe {
            let objs = self.ptrs.as_ptr() as *const *mut std::ffi::c_void;
            if via_shim {
                dpdk_sys::shim_mempool_put_bulk(self.pool, objs, self.len as u32)
            } else {
                crate::fastpath::mempool_put_bulk(self.pool, objs, self.len as u32)
            }
        };
        self.len = 0;
    }
}

impl Drop for FreeBatch<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}
