//! Loop-gap windows: each worker's longest gap between two loop iterations within a window of
//! time that the control thread opens and closes (`{"cmd":"loop gaps"}`; a drill closes one at
//! every step and every 100 ms sample, so each step gets the longest stall *during* it).
//!
//! A worker's loop iteration is its gap between two polls of its queues: normally a
//! microsecond, longer when the worker was descheduled, blocked in a long drain, or waiting for
//! a hot-remove to settle. [`crate::stats::CycleCounters::max_gap`] keeps the longest since the
//! start; a window keeps the longest since the window opened, which is what tells a drill which
//! step caused a stall.
//!
//! ## Protocol
//!
//! The control thread publishes the current window number `W` ([`LoopGapWindows::current`]),
//! starting at 1. Each worker keeps, in its own memory, the window it last saw and its
//! longest iteration in it ([`GapRecorder`]). At the end of every iteration, after its one `rdtsc`, it
//! loads `W` (relaxed: one load of a line that is written only when a window closes, so it stays
//! in every worker's cache). If `W` is new it starts afresh; if the iteration is its longest in
//! `W` it stores the length, packed with `W`'s low 16 bits, into its own slot `W % 2` (a
//! relaxed store to a line only it writes). No read-modify-write, no fence, and a store only
//! when the maximum rises.
//!
//! Closing `W` ([`LoopGapWindows::close`]): the control thread stores `W + 1`, then reads every
//! worker's slot `W % 2`. A worker that has seen `W + 1` writes only slot `(W + 1) % 2` from
//! then on, so slot `W % 2` holds its final maximum for `W`. If the slot does not carry `W`, the
//! worker ended no iteration in `W`: it spent the whole window in one iteration (descheduled,
//! or blocked), so its gap is at least the window's length, which is what is reported
//! (`whole_window`).
//!
//! A gap counts in the window in which it ends: a stall that begins in one window and ends
//! in a later one is that later window's (a drill charges it to the step in which it ended). An iteration that ends in the instant between
//! the control thread's store of `W + 1` and that store reaching the worker (the store buffer
//! drains in nanoseconds) may be counted in neither window; a gap long enough to matter almost
//! never ends in exactly that instant, and if one does, the next window reports the following
//! iterations as usual. Window numbers are compared modulo 2^16: a worker would have to miss
//! 65536 windows (109 minutes of 100 ms samples) without ending one iteration to be confused.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The largest gap a slot holds, in TSC cycles (2^48: about a day at 3 GHz).
const MAX_CYCLES: u64 = (1 << 48) - 1;

fn pack(window: u32, cycles: u64) -> u64 {
    (u64::from(window as u16) << 48) | cycles.min(MAX_CYCLES)
}

fn unpack(v: u64) -> (u16, u64) {
    ((v >> 48) as u16, v & MAX_CYCLES)
}

/// One worker's two window slots: written by that worker only, read by the control thread.
/// Aligned to 128 bytes so that no other worker's slots share its line, nor the adjacent line
/// x86's spatial prefetcher pulls in pairs.
#[derive(Debug, Default)]
#[repr(C, align(128))]
pub struct GapSlots([AtomicU64; 2]);

/// The window number, on a line of its own: written by the control thread once per window, read
/// by every worker once per iteration.
#[derive(Debug)]
#[repr(C, align(128))]
struct WindowNumber(AtomicU32);

/// The shared part: the current window and every worker's slots.
#[derive(Debug)]
pub struct LoopGapWindows {
    current: WindowNumber,
    slots: Vec<GapSlots>,
    /// Each worker's lcore id, in worker order.
    lcores: Vec<u32>,
}

/// One worker's longest gap in a closed window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkerGap {
    /// The worker's index (its place in the lcore order) and its lcore.
    pub worker: usize,
    pub lcore: u32,
    /// Its longest gap, in TSC cycles and in microseconds.
    pub cycles: u64,
    pub us: f64,
    /// It ended no iteration in the window: `cycles` is the window's own length, a lower bound.
    pub whole_window: bool,
}

/// A closed window: its number, how long it was open, and each worker's longest gap in it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedWindow {
    pub window: u32,
    pub open_for: Duration,
    pub workers: Vec<WorkerGap>,
}

impl LoopGapWindows {
    /// Windows for one worker per lcore of `lcores`; window 1 is open.
    pub fn new(lcores: &[u32]) -> Self {
        LoopGapWindows {
            current: WindowNumber(AtomicU32::new(1)),
            slots: lcores.iter().map(|_| GapSlots::default()).collect(),
            lcores: lcores.to_vec(),
        }
    }

    /// Worker `w`'s recorder; None past the last worker. The caller hands it to that worker
    /// only (a second recorder of the same worker would mix two loops' gaps, nothing worse).
    pub(crate) fn recorder(&self, w: usize) -> Option<GapRecorder<'_>> {
        Some(GapRecorder {
            current: &self.current.0,
            slots: self.slots.get(w)?,
            seen: 0,
            max: 0,
        })
    }

    /// The open window's number.
    pub fn current(&self) -> u32 {
        // Relaxed: only the control thread stores it, and this is the control thread.
        self.current.0.load(Ordering::Relaxed)
    }

    /// Closes the open window, which `opened` at that instant, and opens the next (see the
    /// module docs). `tsc_hz` converts the window's length into cycles for a worker that ended
    /// no iteration in it. Only the control thread calls this.
    pub fn close(&self, opened: Instant, tsc_hz: u64) -> ClosedWindow {
        let w = self.current();
        // Relaxed: workers order nothing by the number; each sees it within nanoseconds and
        // from then on writes only the other slot, which is all this read relies on.
        self.current.0.store(w.wrapping_add(1), Ordering::Relaxed);
        let open_for = opened.elapsed();
        let window_cycles = (open_for.as_secs_f64() * tsc_hz as f64) as u64;
        let workers = self
            .slots
            .iter()
            .zip(&self.lcores)
            .enumerate()
            .map(|(worker, (s, &lcore))| {
                // Relaxed: a statistic; see the module docs for why the slot is final.
                let (id, cycles) = unpack(s.0[(w & 1) as usize].load(Ordering::Relaxed));
                let whole_window = id != w as u16;
                let cycles = if whole_window { window_cycles } else { cycles };
                WorkerGap {
                    worker,
                    lcore,
                    cycles,
                    us: (cycles as f64 * 1e7 / tsc_hz.max(1) as f64).round() / 10.0,
                    whole_window,
                }
            })
            .collect();
        ClosedWindow {
            window: w,
            open_for,
            workers,
        }
    }
}

/// A worker's end: called once per loop iteration with that iteration's cycles.
#[derive(Debug)]
pub struct GapRecorder<'a> {
    current: &'a AtomicU32,
    slots: &'a GapSlots,
    /// The window last seen (0: none yet; windows start at 1).
    seen: u32,
    /// The longest iteration in `seen`.
    max: u64,
}

impl GapRecorder<'_> {
    /// Records one loop iteration of `cycles` (see the module docs). Only the owning worker
    /// calls it.
    #[inline(always)]
    pub fn record(&mut self, cycles: u64) {
        // Relaxed: a window number orders no data (module docs).
        let w = self.current.load(Ordering::Relaxed);
        if w != self.seen {
            self.seen = w;
            self.max = 0;
        }
        if cycles > self.max || self.max == 0 {
            self.max = cycles;
            // Relaxed: only this worker writes its slots; the control thread reads a statistic.
            self.slots.0[(w & 1) as usize].store(pack(w, cycles), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaps(c: &ClosedWindow) -> Vec<(u64, bool)> {
        c.workers
            .iter()
            .map(|g| (g.cycles, g.whole_window))
            .collect()
    }

    #[test]
    fn each_window_keeps_its_own_longest_gap() {
        let win = LoopGapWindows::new(&[1, 2]);
        let (mut a, mut b) = (win.recorder(0).unwrap(), win.recorder(1).unwrap());
        assert!(win.recorder(2).is_none());
        for c in [5, 900, 7] {
            a.record(c);
        }
        b.record(40);
        let t = Instant::now();
        let w1 = win.close(t, 1_000_000_000);
        assert_eq!(w1.window, 1);
        assert_eq!(gaps(&w1), vec![(900, false), (40, false)]);
        // Window 2: a starts afresh (its 900 belongs to window 1); b ends no iteration in it.
        a.record(3);
        a.record(2);
        let w2 = win.close(Instant::now(), 1_000_000_000);
        assert_eq!(w2.window, 2);
        assert_eq!(w2.workers[0].cycles, 3);
        assert!(!w2.workers[0].whole_window);
        assert!(w2.workers[1].whole_window, "b never looped in window 2");
        assert_eq!(win.current(), 3);
    }

    #[test]
    fn a_closed_window_is_not_overwritten_by_the_next() {
        let win = LoopGapWindows::new(&[1]);
        let mut a = win.recorder(0).unwrap();
        a.record(10);
        let t = Instant::now();
        // Window 2 opens: the worker records into the other slot, window 1's stays.
        win.current.0.store(2, Ordering::Relaxed);
        a.record(50_000);
        win.current.0.store(1, Ordering::Relaxed);
        assert_eq!(gaps(&win.close(t, 1)), vec![(10, false)]);
    }

    #[test]
    fn a_worker_that_never_looped_spent_the_whole_window() {
        let win = LoopGapWindows::new(&[1]);
        std::thread::sleep(Duration::from_millis(2));
        let c = win.close(Instant::now() - Duration::from_millis(2), 1_000_000);
        assert!(c.workers[0].whole_window);
        assert!(
            c.workers[0].cycles >= 2000,
            "2 ms at 1 MHz: {:?}",
            c.workers[0]
        );
    }

    #[test]
    fn packing_keeps_16_bits_of_window_and_48_of_cycles() {
        assert_eq!(unpack(pack(65537, 12)), (1, 12));
        assert_eq!(unpack(pack(3, u64::MAX)), (3, MAX_CYCLES));
    }
}
