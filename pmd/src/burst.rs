//! A burst: the fixed array of mbufs that `rx_burst`/`tx_burst` move in one call.

use crate::mbuf::{Mbuf, Mempool};
use dpdk_sys::rte_mbuf;
use std::marker::PhantomData;

/// Most packets in one burst (DPDK's customary 32, as in l2fwd's `MAX_PKT_BURST`).
pub const MAX_BURST: usize = 32;

/// Up to [`MAX_BURST`] owned mbufs, kept in order. Dropping a burst frees what it holds.
///
/// Like [`Mbuf`], a burst borrows the pools of the buffers it holds for `'p`: it cannot outlive
/// them (nor the ports whose RX queues filled it).
pub struct Burst<'p> {
    len: usize,
    pkts: [*mut rte_mbuf; MAX_BURST],
    _pool: PhantomData<Mbuf<'p>>,
}

// SAFETY: the burst owns its mbufs exclusively (see `Mbuf`'s Send).
unsafe impl Send for Burst<'_> {}

impl Default for Burst<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'p> Burst<'p> {
    pub const fn new() -> Self {
        Burst {
            len: 0,
            pkts: [std::ptr::null_mut(); MAX_BURST],
            _pool: PhantomData,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free slots.
    #[inline]
    pub fn room(&self) -> usize {
        MAX_BURST - self.len
    }

    /// The packets, in order.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf<'p>] {
        // SAFETY: the first `len` slots hold valid owned, non-null mbuf pointers, and `Mbuf`
        // is `repr(transparent)` over `NonNull<rte_mbuf>`, which has the layout of a pointer.
        unsafe { std::slice::from_raw_parts_mut(self.pkts.as_mut_ptr() as *mut Mbuf<'p>, self.len) }
    }

    /// The packets, in order.
    #[inline]
    pub fn as_slice(&self) -> &[Mbuf<'p>] {
        // SAFETY: as in `as_mut_slice`.
        unsafe { std::slice::from_raw_parts(self.pkts.as_ptr() as *const Mbuf<'p>, self.len) }
    }

    /// Appends a packet; gives it back if the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf<'p>) -> std::result::Result<(), Mbuf<'p>> {
        if self.len == MAX_BURST {
            return Err(m);
        }
        self.pkts[self.len] = m.into_raw();
        self.len += 1;
        Ok(())
    }

    /// Appends `n` fresh buffers of `pool`, each set up as [`Mempool::alloc_bulk_raw`] sets
    /// them up (headroom, no offload flags) but holding `len` bytes of data, as
    /// [`Mbuf::set_len`] would set it, in the same pass: all `n` or none. False, with nothing
    /// added, when the burst has less room than `n`, the pool fewer free buffers, or `len`
    /// does not fit a buffer after its headroom. Unlike `alloc_bulk_raw` and [`Self::push`],
    /// the pointers go straight from the pool into the burst: no array of `Option<Mbuf>` in
    /// between (a transmit loop's per-burst copy).
    #[inline]
    pub fn alloc_raw_len(&mut self, pool: &'p Mempool<'_>, n: usize, len: usize) -> bool {
        if n > self.room() {
            return false;
        }
        let Ok(len) = u16::try_from(len) else {
            return false;
        };
        let slots = &mut self.pkts[self.len..self.len + n];
        if !pool.get_raw_into(slots, len) {
            return false;
        }
        // Every slot of `slots` now holds an mbuf of `pool` that this burst owns.
        self.len += n;
        true
    }

    /// Frees every packet held, returning how many there were.
    #[inline]
    pub fn free_all(&mut self) -> usize {
        let n = self.len;
        if n > 0 {
            // SAFETY: the first n pointers are owned mbufs; after this call we forget them.
            unsafe { dpdk_sys::rte_pktmbuf_free_bulk(self.pkts.as_mut_ptr(), n as u32) };
            self.len = 0;
        }
        n
    }

    /// Removes the first `n` entries without freeing them (they were handed to the driver).
    #[inline]
    pub(crate) fn consume_front(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        self.pkts.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// Raw tail for a driver to fill: pointer to the first free slot and its room.
    #[inline]
    pub(crate) fn spare_raw(&mut self) -> (*mut *mut rte_mbuf, usize) {
        // SAFETY: len <= MAX_BURST, so the pointer is in bounds (one-past-end when full).
        (
            unsafe { self.pkts.as_mut_ptr().add(self.len) },
            MAX_BURST - self.len,
        )
    }

    /// Records that a driver wrote `n` valid mbufs into the spare slots.
    #[inline]
    pub(crate) fn commit(&mut self, n: usize) {
        debug_assert!(self.len + n <= MAX_BURST);
        self.len += n;
    }

    #[inline]
    pub(crate) fn raw_ptr(&mut self) -> *mut *mut rte_mbuf {
        self.pkts.as_mut_ptr()
    }

    /// Takes every packet out, in order. Packets the iterator does not yield are freed when
    /// it is dropped.
    pub fn drain(&mut self) -> Drain<'_, 'p> {
        let n = std::mem::replace(&mut self.len, 0);
        Drain {
            pkts: &mut self.pkts[..n],
            next: 0,
            _pool: PhantomData,
        }
    }
}

/// Iterator of [`Burst::drain`].
pub struct Drain<'a, 'p> {
    pkts: &'a mut [*mut rte_mbuf],
    next: usize,
    _pool: PhantomData<Mbuf<'p>>,
}

impl<'p> Iterator for Drain<'_, 'p> {
    type Item = Mbuf<'p>;
    #[inline]
    fn next(&mut self) -> Option<Mbuf<'p>> {
        let p = *self.pkts.get(self.next)?;
        self.next += 1;
        // SAFETY: each slot below the burst's old length held an owned mbuf, and `next` hands
        // each one out once (the burst's length was reset before the drain began).
        Some(unsafe { Mbuf::from_raw(std::ptr::NonNull::new_unchecked(p)) })
    }
}

impl Drop for Drain<'_, '_> {
    fn drop(&mut self) {
        for _ in self.by_ref() {}
    }
}

impl Drop for Burst<'_> {
    fn drop(&mut self) {
        self.free_all();
    }
}
