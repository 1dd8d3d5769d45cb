//! What the control thread and the workers share: each worker's QSBR slot, the queues on which
//! workers hand retired DMA lanes back, the fault switches of drills, and the copybreak set by
//! `dpctl copybreak`.
//!
//! It is built from the DMA devices themselves ([`Shared::new`] deals them to the workers), so
//! every channel a slot can name belongs to a device the control thread owns. Its parts are
//! private: only the [`Control`](crate::control::Control) built on it (one) publishes to the
//! slots, and each worker's end ([`WorkerControl`]) is handed out once. That is what keeps the
//! hot-remove protocol, on which [`crate::dma`]'s channel handles rely, inside this crate.

use crate::control::ChannelState;
use crate::fwd::{Retired, WorkerControl};
use crate::qsbr::{Assignment, ChannelId, Qsbr, MAX_CHANNELS};
use crossbeam_queue::SegQueue;
use pmd::{DmaDev, LcoreId};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

/// Fault switches, one per possible dmadev id (DPDK's default RTE_DMADEV_DEFAULT_MAX).
pub const MAX_DMA_DEVS: usize = 64;

/// The state the control thread and the workers share (see the module docs).
pub struct Shared<'e, 'p> {
    pub(crate) qsbr: Qsbr,
    pub(crate) retired: Vec<SegQueue<Retired<'p>>>,
    pub(crate) faults: Vec<AtomicBool>,
    pub(crate) copybreak: Vec<AtomicU32>,
    /// The devices, until the control thread takes them.
    devs: Mutex<Option<Vec<(DmaDev<'e>, ChannelState)>>>,
    initial: Vec<Vec<ChannelId>>,
    /// Each worker's end, handed out once.
    taken: Vec<AtomicBool>,
}

impl<'e, 'p> Shared<'e, 'p> {
    /// The shared state of one worker per lcore of `lcores`, with `devs` (started) dealt to
    /// them round-robin, at most [`MAX_CHANNELS`] each; the rest are on standby.
    pub fn new(lcores: &[LcoreId], devs: Vec<DmaDev<'e>>) -> Self {
        let workers = lcores.len();
        let mut initial: Vec<Vec<ChannelId>> = vec![Vec::new(); workers];
        let mut dealt = Vec::with_capacity(devs.len());
        for (i, d) in devs.into_iter().enumerate() {
            let w = if workers == 0 { 0 } else { i % workers };
            if workers > 0 && initial[w].len() < MAX_CHANNELS {
                initial[w].push(ChannelId::new(d.id(), 0));
                dealt.push((d, ChannelState::Active(w)));
            } else {
                dealt.push((d, ChannelState::Standby));
            }
        }
        Shared {
            qsbr: Qsbr::new(lcores, &initial),
            retired: (0..workers).map(|_| SegQueue::new()).collect(),
            faults: (0..MAX_DMA_DEVS).map(|_| AtomicBool::new(false)).collect(),
            copybreak: (0..workers).map(|_| AtomicU32::new(0)).collect(),
            devs: Mutex::new(Some(dealt)),
            initial,
            taken: (0..workers).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// Workers sharing it.
    pub fn workers(&self) -> usize {
        self.retired.len()
    }

    /// The channels worker `w` starts with.
    pub fn initial(&self, w: usize) -> &[ChannelId] {
        self.initial.get(w).map_or(&[], Vec::as_slice)
    }

    /// Worker `w`'s current assignment, as the control thread last published it.
    pub fn assignment(&self, w: usize) -> Option<Assignment> {
        (w < self.workers()).then(|| self.qsbr.assignment(w))
    }

    /// Worker `w`'s end: its QSBR slot, its retired-lane queue, the fault switches and its
    /// copybreak command. Once per worker; None after that or past the last worker.
    pub fn worker(&self, w: usize) -> Option<WorkerControl<'_, 'p>> {
        // Control path: an RMW is fine. Relaxed: it only detects a second taker.
        if self.taken.get(w)?.swap(true, Ordering::Relaxed) {
            return None;
        }
        Some(WorkerControl {
            reader: self.qsbr.reader(w),
            retired: &self.retired[w],
            faults: &self.faults,
            copybreak: &self.copybreak[w],
        })
    }

    /// The devices, for the one control thread.
    pub(crate) fn take_devs(&self) -> Option<Vec<(DmaDev<'e>, ChannelState)>> {
        self.devs.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}
