//! Doubles shared by the dataplane's integration tests.

use dataplane::dma::DmaEngine;
use pmd::Mbuf;

/// An engine that takes copies and never completes them, as device `.0`.
pub struct Hung(pub i16);

// SAFETY: it never reports a completion, which is always truthful.
unsafe impl DmaEngine for Hung {
    fn capacity(&self) -> u16 {
        64
    }
    unsafe fn enqueue(&mut self, _src: &Mbuf<'_>, _dst: &mut Mbuf<'_>, _offset: usize) -> bool {
        true
    }
    fn submit(&mut self) {}
    fn poll(&mut self, _status: &mut [u32]) -> usize {
        0
    }
    fn dev_id(&self) -> Option<i16> {
        Some(self.0)
    }
}
