//! `--copy auto`: choosing the copybreak from costs measured at run time.
//!
//! Whether a DMA copy beats a CPU copy depends on the engine (a real IOAT/DSA channel copies
//! a 1500-byte payload for a fraction of what `memcpy` costs the lcore; `dma_skeleton` is a
//! software thread and is slower than a local `memcpy` at every size), on the packet size, and
//! on the load. So the worker measures instead of guessing:
//!
//! * The policy is a copybreak: packets of at least that many bytes go to DMA, shorter ones
//!   are copied by the CPU. The candidates run from "CPU only" down to 128 bytes, which covers
//!   every per-size choice that is monotone in size (DMA wins, if at all, for the larger sizes:
//!   its per-descriptor cost is fixed, a copy's grows with the bytes).
//! * **Trial**: each candidate runs for a short window (half to settle the DMA pipeline, half
//!   measured), scored by packets transmitted per busy TSC cycle of the worker (iterations that
//!   received or transmitted something), i.e. the inverse of the lcore's cost per packet.
//! * **Exploit**: the best candidate then runs for a long period before the next round of trials,
//!   so trials cost a few percent of the time at most, and the choice follows changes of traffic
//!   mix or engine speed.
//!
//! The tuner is called once per loop iteration with counters the worker has anyway; it does
//! no allocation and touches only its own state.

use crate::copy::Copybreak;

/// The copybreaks tried, CPU only first.
pub const CANDIDATES: [Copybreak; 5] = [
    Copybreak::CpuOnly,
    Copybreak::Bytes(1024),
    Copybreak::Bytes(512),
    Copybreak::Bytes(256),
    Copybreak::Bytes(128),
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Trying `CANDIDATES[i]`; `measuring` once the settle half is over.
    Trial {
        i: usize,
        measuring: bool,
    },
    Exploit,
}

/// Run-time copybreak selection for one worker.
#[derive(Debug, Clone)]
pub struct AutoTuner {
    half_trial_cycles: u64,
    exploit_cycles: u64,
    phase: Phase,
    phase_start: u64,
    pkts: u64,
    busy: u64,
    scores: [f64; CANDIDATES.len()],
    best: usize,
}

impl AutoTuner {
    /// A tuner whose trials last `trial_cycles` each and whose choice holds for
    /// `exploit_cycles`; starts trialling at `now`.
    pub fn new(trial_cycles: u64, exploit_cycles: u64, now: u64) -> Self {
        AutoTuner {
            half_trial_cycles: (trial_cycles / 2).max(1),
            exploit_cycles,
            phase: Phase::Trial {
                i: 0,
                measuring: false,
            },
            phase_start: now,
            pkts: 0,
            busy: 0,
            scores: [0.0; CANDIDATES.len()],
            best: 0,
        }
    }

    /// The copybreak to use now.
    pub fn copybreak(&self) -> Copybreak {
        match self.phase {
            Phase::Trial { i, .. } => CANDIDATES[i],
            Phase::Exploit => CANDIDATES[self.best],
        }
    }

    /// The copybreak chosen by the last round of trials, and its score.
    pub fn choice(&self) -> (Copybreak, f64) {
        (CANDIDATES[self.best], self.scores[self.best])
    }

    /// Records one busy loop iteration (`sent` packets in `busy_cycles`) at TSC `now`; returns
    /// the new copybreak when it changes.
    #[inline]
    pub fn record(&mut self, sent: u64, busy_cycles: u64, now: u64) -> Option<Copybreak> {
        self.pkts += sent;
        self.busy += busy_cycles;
        let elapsed = now.wrapping_sub(self.phase_start);
        let before = self.copybreak();
        match self.phase {
            Phase::Trial { i, measuring } => {
                if elapsed < self.half_trial_cycles {
                    return None;
                }
                if !measuring {
                    self.phase = Phase::Trial { i, measuring: true };
                } else {
                    self.scores[i] = if self.busy > 0 {
                        self.pkts as f64 / self.busy as f64
                    } else {
                        0.0
                    };
                    self.phase = if i + 1 < CANDIDATES.len() {
                        Phase::Trial {
                            i: i + 1,
                            measuring: false,
                        }
                    } else {
                        self.best = best_of(&self.scores);
                        Phase::Exploit
                    };
                }
            }
            Phase::Exploit => {
                if elapsed < self.exploit_cycles {
                    return None;
                }
                self.phase = Phase::Trial {
                    i: 0,
                    measuring: false,
                };
            }
        }
        self.phase_start = now;
        self.pkts = 0;
        self.busy = 0;
        let after = self.copybreak();
        (after != before).then_some(after)
    }
}

/// Index of the highest score; ties go to the earlier (more CPU-leaning) candidate.
fn best_of(scores: &[f64]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use Copybreak::{Bytes, CpuOnly};

    /// Drives the tuner with a synthetic cost per packet for each copybreak.
    fn drive(t: &mut AutoTuner, cost: impl Fn(Copybreak) -> u64, start: u64, iters: u64) -> u64 {
        let mut now = start;
        let mut cb = t.copybreak();
        for _ in 0..iters {
            let c = cost(cb) * 32;
            now += c;
            if let Some(n) = t.record(32, c, now) {
                cb = n;
            }
            assert_eq!(cb, t.copybreak());
        }
        now
    }

    #[test]
    fn picks_the_cheapest_candidate() {
        let mut t = AutoTuner::new(10_000, 1_000_000, 0);
        // DMA from 512 bytes up is cheapest.
        let cost = |cb| match cb {
            Bytes(512) => 50,
            Bytes(1024) => 60,
            CpuOnly => 100,
            _ => 200,
        };
        let now = drive(&mut t, cost, 0, 2_000);
        assert_eq!(t.choice().0, Bytes(512));
        assert_eq!(t.copybreak(), Bytes(512));
        // The choice follows a change: now CPU copies are cheapest.
        drive(
            &mut t,
            |cb| if cb == CpuOnly { 10 } else { 300 },
            now,
            200_000,
        );
        assert_eq!(t.choice().0, CpuOnly);
    }

    #[test]
    fn ties_prefer_cpu() {
        let mut t = AutoTuner::new(10_000, 1_000_000, 0);
        drive(&mut t, |_| 100, 0, 2_000);
        assert_eq!(t.choice().0, CpuOnly);
    }

    #[test]
    fn trials_are_a_small_share_of_time() {
        let trial = 10_000u64;
        let exploit = 1_000_000u64;
        let mut t = AutoTuner::new(trial, exploit, 0);
        let mut now = 0u64;
        let mut trialling = 0u64;
        for _ in 0..1_000_000 {
            let in_trial = !matches!(t.phase, Phase::Exploit);
            now += 100;
            trialling += in_trial as u64 * 100;
            t.record(1, 100, now);
        }
        let share = trialling as f64 / now as f64;
        assert!(share < 0.06, "trials took {share:.3} of the time");
    }
}
