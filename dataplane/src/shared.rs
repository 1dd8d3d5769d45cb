//! What the control thread and the workers share: each worker's QSBR slot, the queues on which
//! workers hand retired DMA lanes back, the fault switches of drills, and the copybreak set by
//! `dpctl copybreak`, and the loop-gap windows (see [`crate::gaps`]).
//!
//! It is built from the DMA devices themselves ([`Shared::new`] deals them to the workers), so
//! every channel a slot can name belongs to a device the control thread owns. Its parts are
//! private: only the [`Control`](crate::control::Control) built on it (one) publishes to the
//! slots, and each worker's end ([`WorkerControl`]) is handed out once. That is what keeps the
//! hot-remove protocol, on which [`crate::dma`]'s channel handles rely, inside this crate.

use crate::control::ChannelState;
use crate::fwd::{Retired, WorkerControl};
use crate::gaps::LoopGapWindows;
use crate::qsbr::{Assignment, ChannelId, Qsbr};
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
    pub(crate) gaps: LoopGapWindows,
    /// The devices, until the control thread takes them.
    devs: Mutex<Option<Vec<(DmaDev<'e>, ChannelState)>>>,
    initial: Vec<Vec<ChannelId>>,
    /// Each worker's end, handed out once.
    taken: Vec<AtomicBool>,
}

impl<'e, 'p> Shared<'e, 'p> {
    /// The shared state of one worker per lcore of `lcores`, with `devs` (started) dealt to
    /// them (see [`deal`]): each worker has its own channels, and every channel goes to a
    /// worker; only with no worker at all are they on standby.
    pub fn new(lcores: &[LcoreId], devs: Vec<DmaDev<'e>>) -> Self {
        let workers = lcores.len();
        let ids: Vec<ChannelId> = devs.iter().map(|d| ChannelId::new(d.id(), 0)).collect();
        let owners = deal(ids.len(), workers);
        let mut initial: Vec<Vec<ChannelId>> = vec![Vec::new(); workers];
        for (&id, &w) in ids.iter().zip(&owners) {
            if let Some(w) = w {
                initial[w].push(id);
            }
        }
        let dealt = devs
            .into_iter()
            .zip(owners)
            .map(|(d, w)| (d, w.map_or(ChannelState::Standby, ChannelState::Active)))
            .collect();
        Shared {
            qsbr: Qsbr::new(lcores, &initial),
            retired: (0..workers).map(|_| SegQueue::new()).collect(),
            faults: (0..MAX_DMA_DEVS).map(|_| AtomicBool::new(false)).collect(),
            copybreak: (0..workers).map(|_| AtomicU32::new(0)).collect(),
            gaps: LoopGapWindows::new(&lcores.iter().map(|l| l.get()).collect::<Vec<_>>()),
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
    /// copybreak command and its loop-gap recorder. Once per worker; None after that or past the last worker.
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
            gaps: self.gaps.recorder(w)?,
        })
    }

    /// The devices, for the one control thread.
    pub(crate) fn take_devs(&self) -> Option<Vec<(DmaDev<'e>, ChannelState)>> {
        self.devs.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Deals `channels` channels to `workers` workers, round-robin: channel `i` goes to worker
/// `i % workers`, so that each worker has its own and the counts differ by at most one (7
/// channels on 2 workers: 4 and 3). There is no cap per worker: none is left on standby while
/// there is a worker. None for every channel when there are no workers.
pub fn deal(channels: usize, workers: usize) -> Vec<Option<usize>> {
    (0..channels)
        .map(|i| (workers > 0).then(|| i % workers))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::deal;

    /// How many channels each worker gets.
    fn counts(channels: usize, workers: usize) -> Vec<usize> {
        let mut n = vec![0; workers];
        for w in deal(channels, workers) {
            n[w.expect("dealt to a worker, not on standby")] += 1;
        }
        n
    }

    #[test]
    fn seven_channels_on_two_workers_are_four_and_three() {
        assert_eq!(
            deal(7, 2),
            [0, 1, 0, 1, 0, 1, 0].map(Some),
            "round-robin, each worker its own"
        );
        assert_eq!(counts(7, 2), [4, 3]);
    }

    #[test]
    fn no_cap_per_worker_and_none_on_standby() {
        assert_eq!(counts(10, 1), [10], "one worker takes every channel");
        assert_eq!(counts(64, 3), [22, 21, 21]);
        assert_eq!(counts(2, 3), [1, 1, 0], "fewer channels than workers");
        assert_eq!(counts(0, 2), [0, 0]);
        for channels in 0..20 {
            for workers in 1..6 {
                let n = counts(channels, workers);
                assert_eq!(n.iter().sum::<usize>(), channels);
                assert!(
                    n.iter().max().unwrap() - n.iter().min().unwrap() <= 1,
                    "{n:?}"
                );
            }
        }
    }

    #[test]
    fn without_workers_every_channel_is_on_standby() {
        assert_eq!(deal(3, 0), [None, None, None]);
    }
}
