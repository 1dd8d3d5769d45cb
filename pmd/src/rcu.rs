//! DPDK's quiescent-state-based RCU (`rte_rcu_qsbr`), for comparison with the data plane's own.

use crate::error::{check, Error, Result};
use std::alloc::Layout;
use std::ptr::NonNull;

/// An `rte_rcu_qsbr` variable for up to `max_threads` reader threads (ids `0..max_threads`).
///
/// DPDK checks thread ids only with `RTE_ASSERT`, compiled out in release builds, and its
/// counters are an array indexed by the id: every id is checked here, on the Rust side, before
/// it reaches DPDK.
pub struct RcuQsbr {
    v: NonNull<dpdk_sys::rte_rcu_qsbr>,
    layout: Layout,
    max_threads: u32,
}

// SAFETY: rte_rcu_qsbr is designed to be shared: each reader thread updates only its own
// (cache-aligned) counter, and the writer side reads them with atomics.
unsafe impl Send for RcuQsbr {}
// SAFETY: as above.
unsafe impl Sync for RcuQsbr {}

impl RcuQsbr {
    /// Most reader threads one variable may have (DPDK's own limit is `RTE_MAX_LCORE`-ish; a
    /// bound keeps the size computation far from overflow).
    pub const MAX_THREADS: u32 = 1024;

    pub fn new(max_threads: u32) -> Result<Self> {
        if max_threads == 0 || max_threads > Self::MAX_THREADS {
            return Err(Error::Invalid(format!(
                "rte_rcu_qsbr for {max_threads} threads: 1 to {} allowed",
                Self::MAX_THREADS
            )));
        }
        // SAFETY: a pure size computation.
        let size = unsafe { dpdk_sys::rte_rcu_qsbr_get_memsize(max_threads) };
        if size == 0 || size == usize::MAX || (size as isize) < 0 {
            return Err(Error::Invalid(format!(
                "rte_rcu_qsbr for {max_threads} threads"
            )));
        }
        // DPDK wants the variable cache-line aligned; 128 covers adjacent-line prefetch too.
        let layout =
            Layout::from_size_align(size, 128).map_err(|e| Error::Invalid(e.to_string()))?;
        // SAFETY: non-zero size.
        let mem = unsafe { std::alloc::alloc_zeroed(layout) } as *mut dpdk_sys::rte_rcu_qsbr;
        let v = NonNull::new(mem).ok_or_else(|| Error::Invalid("out of memory".into()))?;
        // SAFETY: `v` points at `size` zeroed, aligned bytes, as rte_rcu_qsbr_init requires.
        let ret = unsafe { dpdk_sys::rte_rcu_qsbr_init(v.as_ptr(), max_threads) };
        let q = RcuQsbr {
            v,
            layout,
            max_threads,
        };
        check("rte_rcu_qsbr_init", ret)?;
        Ok(q)
    }

    /// Reader ids run from 0 to this, exclusive.
    pub fn max_threads(&self) -> u32 {
        self.max_threads
    }

    fn check_tid(&self, tid: u32) -> Result<()> {
        if tid >= self.max_threads {
            return Err(Error::Invalid(format!(
                "rte_rcu_qsbr thread id {tid} out of range (0 to {})",
                self.max_threads - 1
            )));
        }
        Ok(())
    }

    /// Registers reader `tid` and puts it online (it must then report quiescent states).
    pub fn register_online(&self, tid: u32) -> Result<()> {
        self.check_tid(tid)?;
        // SAFETY: `v` is initialised and tid is in range (checked above).
        let ret = unsafe { dpdk_sys::rte_rcu_qsbr_thread_register(self.v.as_ptr(), tid) };
        // DPDK returns 1 (not an errno) for a bad id: anything but 0 is a failure.
        if ret != 0 {
            return Err(Error::Invalid(format!(
                "rte_rcu_qsbr_thread_register({tid}) failed ({ret})"
            )));
        }
        // SAFETY: tid in range and registered above.
        unsafe { dpdk_sys::shim_rcu_qsbr_thread_online(self.v.as_ptr(), tid) };
        Ok(())
    }

    /// Reader `tid` reports a quiescent state (it holds no reference). Called by that reader
    /// only. An id out of range is ignored (one compare, no write).
    #[inline]
    pub fn quiescent(&self, tid: u32) {
        if tid >= self.max_threads {
            return;
        }
        // SAFETY: `v` is initialised and tid in range: writes only reader tid's own counter
        // (an atomic store in DPDK, so a misbehaving second caller races benignly).
        unsafe { dpdk_sys::shim_rcu_qsbr_quiescent(self.v.as_ptr(), tid) }
    }

    /// Reader `tid` goes offline (counts as quiescent until online again) and unregisters.
    pub fn offline_unregister(&self, tid: u32) -> Result<()> {
        self.check_tid(tid)?;
        // SAFETY: tid in range (checked above); unregistering an unregistered id is a
        // reported no-op.
        unsafe {
            dpdk_sys::shim_rcu_qsbr_thread_offline(self.v.as_ptr(), tid);
            dpdk_sys::rte_rcu_qsbr_thread_unregister(self.v.as_ptr(), tid);
        }
        Ok(())
    }

    /// Writer: starts a grace period, returning its token.
    pub fn start(&self) -> u64 {
        // SAFETY: `v` is initialised.
        unsafe { dpdk_sys::shim_rcu_qsbr_start(self.v.as_ptr()) }
    }

    /// Writer: whether every online reader has reported a quiescent state since `token`
    /// (spinning until then with `wait`).
    pub fn check(&self, token: u64, wait: bool) -> bool {
        // SAFETY: `v` is initialised.
        unsafe { dpdk_sys::shim_rcu_qsbr_check(self.v.as_ptr(), token, wait) == 1 }
    }
}

impl Drop for RcuQsbr {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; DPDK keeps no pointer to it.
        unsafe { std::alloc::dealloc(self.v.as_ptr() as *mut u8, self.layout) }
    }
}
