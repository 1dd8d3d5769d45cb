//! The run's time series: what was sent and received in each sample period, for plots over
//! time (a soak run's rate and the dips of a hot-remove drill).
//!
//! The monitor thread reads the owner-written totals every `--sample-ms` (100 ms by default) and
//! [`Series::record`]s them; the series stores per-sample differences. Memory is bounded
//! whatever the run's length: once [`Series::capacity`] samples are held, adjacent pairs are
//! merged (their counts added) and the period doubles, so a long soak keeps its whole history at
//! a coarser grain instead of its last minutes only, and a plot of it stays the same size. The
//! totals are never lost: the sum of every sample's counts equals the last totals recorded.

use serde::Serialize;

/// One sample: the counts of one period, ending `t_ms` after the start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// End of the period, milliseconds since the run started.
    pub t_ms: u64,
    /// Frames sent in the period.
    pub tx: u64,
    /// Frames of ours received in the period.
    pub rx: u64,
    /// Frames sent but not (yet) received at the end of the period: in flight or lost.
    pub missing: u64,
}

/// Totals as the monitor reads them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub tx: u64,
    pub rx: u64,
    /// Distinct frames of ours received (what `missing` is counted against).
    pub distinct: u64,
}

/// A bounded time series of [`Sample`]s.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// Milliseconds each sample covers (doubles whenever the series is compacted).
    pub period_ms: u64,
    pub samples: Vec<Sample>,
    #[serde(skip)]
    capacity: usize,
    #[serde(skip)]
    last: Totals,
    /// Counts recorded since the last stored sample, while the period is longer than the
    /// monitor's (after a compaction).
    #[serde(skip)]
    pending: Sample,
    #[serde(skip)]
    pending_ms: u64,
    #[serde(skip)]
    base_period_ms: u64,
}

/// Samples held before the series is compacted: 10 minutes at 100 ms per sample fits as it is.
pub const DEFAULT_CAPACITY: usize = 8192;

impl Default for Series {
    /// 100 ms samples, [`DEFAULT_CAPACITY`] of them before compaction.
    fn default() -> Self {
        Series::new(100, DEFAULT_CAPACITY)
    }
}

impl Series {
    /// A series of `period_ms` samples (at least 1 ms), holding at most `capacity` (at least 2).
    pub fn new(period_ms: u64, capacity: usize) -> Self {
        let period_ms = period_ms.max(1);
        Series {
            period_ms,
            samples: Vec::new(),
            capacity: capacity.max(2),
            last: Totals::default(),
            pending: Sample::default(),
            pending_ms: 0,
            base_period_ms: period_ms,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records the totals read at `t_ms` after the start, one base period after the previous
    /// call. Totals that went backwards (they never should) count as no progress.
    pub fn record(&mut self, t_ms: u64, now: Totals) {
        let tx = now.tx.saturating_sub(self.last.tx);
        let rx = now.rx.saturating_sub(self.last.rx);
        self.last = Totals {
            tx: now.tx.max(self.last.tx),
            rx: now.rx.max(self.last.rx),
            distinct: now.distinct,
        };
        self.pending.tx += tx;
        self.pending.rx += rx;
        self.pending_ms += self.base_period_ms;
        if self.pending_ms < self.period_ms {
            return;
        }
        let sample = Sample {
            t_ms,
            tx: self.pending.tx,
            rx: self.pending.rx,
            missing: self.last.tx.saturating_sub(self.last.distinct),
        };
        self.pending = Sample::default();
        self.pending_ms = 0;
        if self.samples.len() == self.capacity {
            self.compact();
        }
        self.samples.push(sample);
    }

    /// Merges adjacent pairs, doubling the period: half the samples, the same totals.
    fn compact(&mut self) {
        let merged: Vec<Sample> = self
            .samples
            .chunks(2)
            .map(|c| {
                let last = c[c.len() - 1];
                Sample {
                    t_ms: last.t_ms,
                    tx: c.iter().map(|s| s.tx).sum(),
                    rx: c.iter().map(|s| s.rx).sum(),
                    missing: last.missing,
                }
            })
            .collect();
        self.samples = merged;
        self.period_ms *= 2;
    }

    /// Totals over every sample stored (what was recorded, less anything still pending).
    pub fn sums(&self) -> (u64, u64) {
        self.samples
            .iter()
            .fold((0, 0), |(tx, rx), s| (tx + s.tx, rx + s.rx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(tx: u64, rx: u64) -> Totals {
        Totals {
            tx,
            rx,
            distinct: rx,
        }
    }

    #[test]
    fn samples_are_per_period_differences() {
        let mut s = Series::new(100, 16);
        s.record(100, totals(1000, 900));
        s.record(200, totals(2500, 2300));
        s.record(300, totals(2500, 2500));
        assert_eq!(
            s.samples,
            vec![
                Sample {
                    t_ms: 100,
                    tx: 1000,
                    rx: 900,
                    missing: 100
                },
                Sample {
                    t_ms: 200,
                    tx: 1500,
                    rx: 1400,
                    missing: 200
                },
                Sample {
                    t_ms: 300,
                    tx: 0,
                    rx: 200,
                    missing: 0
                },
            ]
        );
    }

    #[test]
    fn a_long_run_is_compacted_and_keeps_its_totals() {
        let cap = 8;
        let mut s = Series::new(100, cap);
        let (mut tx, mut rx) = (0u64, 0u64);
        for i in 1..=1000u64 {
            tx += i;
            rx += i - (i % 3);
            s.record(i * 100, totals(tx, rx));
            assert!(s.samples.len() <= cap);
        }
        // 1000 samples folded into at most 8: the period grew by powers of two.
        assert!(s.period_ms >= 100 * 1000 / cap as u64, "{}", s.period_ms);
        assert!((s.period_ms / 100).is_power_of_two());
        // Sums equal the totals minus what is still pending in the current period.
        let (stx, srx) = s.sums();
        assert_eq!(stx + s.pending.tx, tx);
        assert_eq!(srx + s.pending.rx, rx);
        // Times increase, one period apart once compacted.
        for w in s.samples.windows(2) {
            assert!(w[1].t_ms > w[0].t_ms);
        }
    }

    #[test]
    fn totals_going_backwards_count_as_nothing() {
        let mut s = Series::new(10, 4);
        s.record(10, totals(100, 100));
        s.record(20, totals(50, 40));
        s.record(30, totals(150, 140));
        let (tx, rx) = s.sums();
        assert_eq!((tx, rx), (150, 140));
    }

    #[test]
    fn the_smallest_settings_are_clamped() {
        let mut s = Series::new(0, 0);
        assert_eq!(s.period_ms, 1);
        assert_eq!(s.capacity(), 2);
        for i in 1..=5 {
            s.record(i, totals(i, i));
        }
        assert!(s.samples.len() <= 2);
    }
}
