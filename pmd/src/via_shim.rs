//! The same fast-path operations as the safe API's, through the C shim's out-of-line DPDK
//! calls (`dpdk-sys/shim/shim.c`: DPDK's own static-inline functions compiled by the C
//! compiler) instead of their Rust versions in this crate.
//!
//! Not for the data path: each is an extra call. They exist so that the Rust fast path can be
//! checked against DPDK's own, operation by operation, on real devices
//! (`pmd/tests/fastpath_equiv.rs`). Each takes the same handles and keeps the same rules as
//! the method it mirrors.

use crate::burst::Burst;
use crate::dmadev::{DmaChannel, DmaCompletion};
use crate::ethdev::{RxQueue, TxQueue};
use crate::mbuf::{FreeBatch, Mbuf, Mempool};

/// [`RxQueue::rx_burst_max`] through `rte_eth_rx_burst`.
pub fn rx_burst_max<'b, 'p: 'b>(
    q: &mut RxQueue<'_, 'p>,
    burst: &mut Burst<'b>,
    max: usize,
) -> usize {
    q.rx_burst_max_via_shim(burst, max)
}

/// [`TxQueue::tx_burst`] through `rte_eth_tx_burst`.
pub fn tx_burst<'b: 'p, 'p>(q: &mut TxQueue<'_, 'p>, burst: &mut Burst<'b>) -> usize {
    q.tx_burst_via_shim(burst)
}

/// [`Mempool::alloc`] through `rte_pktmbuf_alloc`.
pub fn alloc<'p>(pool: &'p Mempool<'_>) -> Option<Mbuf<'p>> {
    pool.alloc_via_shim()
}

/// [`Mempool::alloc_bulk`] through `rte_mempool_get_bulk` and `rte_pktmbuf_reset`
/// (`rte_pktmbuf_alloc_bulk`).
pub fn alloc_bulk<'p>(pool: &'p Mempool<'_>, out: &mut [Option<Mbuf<'p>>]) -> bool {
    pool.alloc_bulk_via_shim(out, false)
}

/// [`Mempool::alloc_bulk_raw`] with the buffers taken by `rte_mempool_get_bulk`.
pub fn alloc_bulk_raw<'p>(pool: &'p Mempool<'_>, out: &mut [Option<Mbuf<'p>>]) -> bool {
    pool.alloc_bulk_via_shim(out, true)
}

/// Dropping an [`Mbuf`], through `rte_pktmbuf_free`.
pub fn free(m: Mbuf<'_>) {
    m.free_via_shim()
}

/// [`FreeBatch::flush`] through `rte_mempool_put_bulk`.
pub fn flush(batch: &mut FreeBatch<'_>) {
    batch.flush_via_shim()
}

/// [`DmaChannel::copy`] through `rte_dma_copy`.
///
/// # Safety
/// As [`DmaChannel::copy`].
pub unsafe fn dma_copy(
    ch: &mut DmaChannel<'_>,
    src_iova: u64,
    dst_iova: u64,
    len: u32,
) -> Option<u16> {
    // SAFETY: the caller keeps DmaChannel::copy's contract.
    unsafe { ch.copy_via_shim(src_iova, dst_iova, len) }
}

/// [`DmaChannel::submit`] through `rte_dma_submit`.
pub fn dma_submit(ch: &mut DmaChannel<'_>) {
    ch.submit_via_shim()
}

/// [`DmaChannel::completed`] through `rte_dma_completed`.
pub fn dma_completed(ch: &mut DmaChannel<'_>, max: u16) -> DmaCompletion {
    ch.completed_via_shim(max)
}

/// [`DmaChannel::completed_status`] through `rte_dma_completed_status`.
pub fn dma_completed_status(ch: &mut DmaChannel<'_>, status: &mut [u32]) -> u16 {
    ch.completed_status_via_shim(status)
}

/// [`DmaChannel::burst_capacity`] through `rte_dma_burst_capacity`.
pub fn dma_burst_capacity(ch: &DmaChannel<'_>) -> u16 {
    ch.burst_capacity_via_shim()
}
