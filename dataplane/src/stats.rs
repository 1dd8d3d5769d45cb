//! Per-lcore counters.
//!
//! Each worker lcore owns one [`LcoreStats`], aligned to its own cache lines, and is the only
//! writer of it. A counter update is a relaxed load and a relaxed store of the owner's own
//! value ([`OwnedCounter::add`]): on x86 two plain `mov`s, no `lock` prefix, no fence, and no
//! cache line shared with another writer. The main lcore reads the counters with relaxed loads
//! for periodic stats; it may see a value a few bursts old, never a torn or lost one (64-bit
//! atomics are single-copy atomic, and a single writer cannot lose its own updates).
//!
//! The same holds for the polling cycles ([`CycleCounters`]): each loop iteration's TSC cycles
//! go to `busy` (it received or completed something) or to `idle`, with one `rdtsc` per
//! iteration, added by the owner as above. Relaxed is enough on both sides: the reader wants
//! two monotone totals and orders nothing else by them, so seeing one a few iterations older
//! than the other only moves a busy percentage by those iterations' share.

use crate::ports::MAX_PORTS;
use pmd::PortId;
use std::sync::atomic::{AtomicU64, Ordering};

/// A counter with one writer. See the module docs for why no read-modify-write is needed.
#[derive(Default, Debug)]
pub struct OwnedCounter(AtomicU64);

impl OwnedCounter {
    /// Adds `n`. Must only be called by the counter's owning lcore.
    #[inline(always)]
    pub fn add(&self, n: u64) {
        // Relaxed load + relaxed store: the owner is the only writer, so reading its own last
        // store and writing the sum loses nothing; readers need no ordering with other data.
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    #[inline]
    pub fn get(&self) -> u64 {
        // Relaxed: a monotone statistic, read without ordering against anything else.
        self.0.load(Ordering::Relaxed)
    }
}

/// Why a packet was dropped. Every received packet is either transmitted or counted here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum DropReason {
    /// The TX queue stayed full after retries.
    TxFull = 0,
    /// The frame is shorter than an Ethernet header (or a multi-segment mbuf, which ports set
    /// up without scatter-gather never deliver), so it cannot be forwarded.
    Runt = 1,
    /// No mbuf was free for the copy of the packet.
    NoMbuf = 2,
}

impl DropReason {
    pub const ALL: [DropReason; 3] = [DropReason::TxFull, DropReason::Runt, DropReason::NoMbuf];

    pub fn name(self) -> &'static str {
        match self {
            DropReason::TxFull => "tx_full",
            DropReason::Runt => "runt",
            DropReason::NoMbuf => "no_mbuf",
        }
    }
}

/// Counters of one port as seen by one lcore.
#[derive(Default, Debug)]
#[repr(C)]
pub struct PortCounters {
    pub rx: OwnedCounter,
    pub tx: OwnedCounter,
    pub dropped: [OwnedCounter; DropReason::ALL.len()],
}

/// Copy-stage counters of one lcore.
#[derive(Default, Debug)]
#[repr(C)]
pub struct CopyCounters {
    pub cpu: OwnedCounter,
    pub dma: OwnedCounter,
    pub dma_errors: OwnedCounter,
    pub recopied: OwnedCounter,
}

/// TSC cycles of one lcore's loop iterations that did work (received or completed something)
/// and of idle polls. Written by the owning lcore only (see the module docs).
#[derive(Default, Debug)]
#[repr(C)]
pub struct CycleCounters {
    pub busy: OwnedCounter,
    pub idle: OwnedCounter,
    /// The longest iteration so far, in TSC cycles: the longest gap between two loop
    /// iterations, the worker's longest stall (a descheduled lcore, a long drain).
    pub max_gap: OwnedMax,
}

/// A running maximum with one writer: the owner compares with its own last store and stores
/// a larger value (a relaxed load and, rarely, a relaxed store: no read-modify-write, no
/// fence); readers load it relaxed.
#[derive(Default, Debug)]
pub struct OwnedMax(AtomicU64);

impl OwnedMax {
    /// Raises the maximum to `v`. Must only be called by the owning lcore.
    #[inline(always)]
    pub fn raise(&self, v: u64) {
        // Relaxed: the owner reads its own last store; readers order nothing by it.
        if v > self.0.load(Ordering::Relaxed) {
            self.0.store(v, Ordering::Relaxed);
        }
    }

    #[inline]
    pub fn get(&self) -> u64 {
        // Relaxed: a monotone statistic (see OwnedCounter::get).
        self.0.load(Ordering::Relaxed)
    }
}

impl CycleCounters {
    /// Counts one iteration of `cycles`. Must only be called by the owning lcore.
    #[inline(always)]
    pub fn record(&self, cycles: u64, busy: bool) {
        if busy {
            self.busy.add(cycles)
        } else {
            self.idle.add(cycles)
        }
        self.max_gap.raise(cycles);
    }

    /// Busy cycles as a percentage of all cycles, 0 before any (one decimal).
    pub fn busy_pct(busy: u64, idle: u64) -> f64 {
        let total = busy as f64 + idle as f64;
        if total == 0.0 {
            0.0
        } else {
            (busy as f64 * 1000.0 / total).round() / 10.0
        }
    }
}

/// Everything one lcore counts. 128-byte aligned so that neighbouring lcores' stats never
/// share a cache line, nor the adjacent line that x86's spatial prefetcher pulls in pairs.
#[derive(Debug)]
#[repr(C, align(128))]
pub struct LcoreStats {
    pub ports: [PortCounters; MAX_PORTS],
    pub copies: CopyCounters,
    pub cycles: CycleCounters,
}

impl Default for LcoreStats {
    fn default() -> Self {
        LcoreStats {
            ports: std::array::from_fn(|_| PortCounters::default()),
            copies: CopyCounters::default(),
            cycles: CycleCounters::default(),
        }
    }
}

/// Sums of the counters of one port over all lcores.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PortTotals {
    pub rx: u64,
    pub tx: u64,
    pub dropped: [u64; DropReason::ALL.len()],
}

impl PortTotals {
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

/// Sums port `port`'s counters over `lcores`.
pub fn port_totals(lcores: &[LcoreStats], port: PortId) -> PortTotals {
    let mut t = PortTotals::default();
    for l in lcores {
        let c = &l.ports[port.index()];
        t.rx += c.rx.get();
        t.tx += c.tx.get();
        for (d, s) in t.dropped.iter_mut().zip(&c.dropped) {
            *d += s.get();
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcore_stats_do_not_share_lines() {
        assert_eq!(std::mem::align_of::<LcoreStats>(), 128);
        assert_eq!(std::mem::size_of::<LcoreStats>() % 128, 0);
    }

    #[test]
    fn cycles_go_to_busy_or_idle_and_make_a_percentage() {
        let c = CycleCounters::default();
        c.record(300, true);
        c.record(100, false);
        c.record(600, false);
        assert_eq!((c.busy.get(), c.idle.get()), (300, 700));
        assert_eq!(CycleCounters::busy_pct(c.busy.get(), c.idle.get()), 30.0);
        assert_eq!(CycleCounters::busy_pct(0, 0), 0.0);
        assert_eq!(CycleCounters::busy_pct(2, 1), 66.7);
        assert_eq!(CycleCounters::busy_pct(u64::MAX, 0), 100.0);
    }

    #[test]
    fn totals_sum_lcores() {
        let l: Vec<LcoreStats> = (0..3).map(|_| LcoreStats::default()).collect();
        l[0].ports[1].rx.add(5);
        l[2].ports[1].rx.add(7);
        l[2].ports[1].tx.add(6);
        l[1].ports[1].dropped[DropReason::TxFull as usize].add(1);
        let t = port_totals(&l, PortId::new(1));
        assert_eq!(t.rx, 12);
        assert_eq!(t.tx, 6);
        assert_eq!(t.dropped_total(), 1);
        assert_eq!(port_totals(&l, PortId::new(0)), PortTotals::default());
    }

    #[test]
    fn the_longest_iteration_is_kept() {
        let c = CycleCounters::default();
        assert_eq!(c.max_gap.get(), 0);
        for (cycles, busy) in [(10, true), (700, false), (30, true)] {
            c.record(cycles, busy);
        }
        assert_eq!(
            (c.busy.get(), c.idle.get(), c.max_gap.get()),
            (40, 700, 700)
        );
    }
}
