//! RFC 2544 throughput search: the highest offered rate at which the device under test loses
//! nothing (NDR, no-drop rate) or no more than a tolerance (PDR, partial-drop rate).
//!
//! ## The procedure
//!
//! RFC 2544 section 26.1 defines throughput as "the fastest rate at which the count of test
//! frames transmitted by the DUT is equal to the number of test frames sent to it", found by
//! trials of a fixed duration at chosen rates. This module runs a binary search over the
//! offered rate:
//!
//! 1. A first trial at the upper bound (the `--rate` given, or the generator's own maximum). If
//!    it passes, that is the result: the device is not the bottleneck (the report says so).
//! 2. Otherwise, bisect between the highest rate that passed (initially the lower bound, 0 or
//!    `--search-min`) and the lowest that failed, until the two are within the resolution of each
//!    other (`--search-resolution`, relative to the upper bound; default 1%). The result is the
//!    highest rate that passed: a rate that was measured, never an interpolation.
//!
//! Each trial is judged on what was actually offered: a generator that fell short of the rate
//! asked for (more than 1% under it) cannot prove the device handles that rate, so a trial that
//! passes at a lower achieved rate counts as a pass at the achieved rate, and the search
//! carries on from there. What a trial counts is read only after the generator stopped and the
//! receive side drained (the caller's [`Trial`] does that: TRex's NDR tool learned to stop
//! traffic and wait before reading counters, since frames still in flight look lost).
//!
//! After the search, [`latency_points`] names the rates (10%, 50% and 90% of the result) at
//! which the caller measures latency, as RFC 8219 and TRex's NDR report do.
//!
//! The search is independent of DPDK: [`Trial`] is whatever runs one trial, so the tests below
//! check the procedure against a simulated device whose capacity is known by construction.

use serde::Serialize;

/// What counts as passing a trial.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Criterion {
    /// No frame lost.
    Ndr,
    /// At most this fraction of the frames sent lost (0.001 = 0.1%).
    Pdr { loss_ratio: f64 },
}

impl Criterion {
    /// Whether `lost` of `sent` frames passes.
    pub fn passes(&self, sent: u64, lost: u64) -> bool {
        match *self {
            Criterion::Ndr => lost == 0,
            Criterion::Pdr { loss_ratio } => sent > 0 && (lost as f64) <= loss_ratio * sent as f64,
        }
    }
}

/// The bounds and resolution of a search.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Params {
    /// Lowest rate tried, packets per second (a device that fails even here has no NDR).
    pub min_pps: f64,
    /// Highest rate tried, packets per second.
    pub max_pps: f64,
    /// Stop once the rate that passed and the one that failed are closer than this fraction of
    /// `max_pps` (0.01: 1%).
    pub resolution: f64,
    /// Most trials run, bounding the search whatever the resolution.
    pub max_trials: u32,
}

impl Params {
    /// Checks the bounds; a message for the user when they make no sense.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.max_pps.is_finite() && self.max_pps > 0.0) {
            return Err(format!(
                "search: the upper rate must be positive, not {}",
                self.max_pps
            ));
        }
        if !(self.min_pps.is_finite() && self.min_pps >= 0.0 && self.min_pps < self.max_pps) {
            return Err(format!(
                "search: the lower rate ({}) must be at least 0 and below the upper one ({})",
                self.min_pps, self.max_pps
            ));
        }
        if !(self.resolution > 0.0 && self.resolution < 1.0) {
            return Err(format!(
                "search: the resolution must be above 0 and below 1 (a fraction of the upper rate), not {}",
                self.resolution
            ));
        }
        if self.max_trials == 0 {
            return Err("search: at least one trial is needed".into());
        }
        Ok(())
    }
}

/// What one trial measured, after the traffic stopped and the receive side drained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Outcome {
    /// Frames sent.
    pub sent: u64,
    /// Frames of this trial that came back (distinct, intact).
    pub received: u64,
    /// The rate actually sent at, packets per second.
    pub achieved_pps: f64,
}

impl Outcome {
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }
}

/// Runs one trial at an offered rate. Implemented over DPDK by pktgen's main loop, and by a
/// simulated device in tests.
pub trait Trial {
    type Error;
    fn run(&mut self, offered_pps: f64) -> Result<Outcome, Self::Error>;
}

/// One trial of the search, as the report shows it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrialRecord {
    /// The rate asked of the generator.
    pub offered_pps: f64,
    /// The rate the trial is judged at: the offered one, or what the generator achieved when
    /// it fell more than 1% short.
    pub judged_pps: f64,
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub passed: bool,
}

/// The search's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResult {
    pub criterion: Criterion,
    pub params: Params,
    /// The highest rate that passed, packets per second (None: even the lowest rate failed).
    pub rate_pps: Option<f64>,
    /// The device kept up with everything the generator could offer (the upper bound passed, or
    /// a trial passed at the most the generator could send): its real limit is higher.
    pub limited_by_generator: bool,
    pub trials: Vec<TrialRecord>,
}

/// How far under the offered rate a trial may run and still be judged at it.
const SHORTFALL: f64 = 0.01;

/// Runs the search; stops at the first trial error.
pub fn search<T: Trial>(
    criterion: Criterion,
    params: Params,
    trial: &mut T,
) -> Result<SearchResult, T::Error> {
    let mut trials: Vec<TrialRecord> = Vec::new();
    // One trial: the rate it is judged at, whether it passed, whether the generator fell short.
    let mut run =
        |pps: f64, trials: &mut Vec<TrialRecord>| -> Result<(f64, bool, bool), T::Error> {
            let o = trial.run(pps)?;
            let short = o.achieved_pps < pps * (1.0 - SHORTFALL);
            let judged = if short { o.achieved_pps } else { pps };
            let passed = criterion.passes(o.sent, o.lost());
            trials.push(TrialRecord {
                offered_pps: pps,
                judged_pps: judged,
                sent: o.sent,
                received: o.received,
                lost: o.lost(),
                passed,
            });
            Ok((judged, passed, short))
        };
    let result = |good: Option<f64>, limited: bool, trials: Vec<TrialRecord>| SearchResult {
        criterion,
        params,
        rate_pps: good,
        limited_by_generator: limited,
        trials,
    };
    let (judged, passed, _) = run(params.max_pps, &mut trials)?;
    if passed {
        // The device kept up with everything offered (at the rate asked, or at the most the
        // generator could send): its limit is above anything this generator can show.
        return Ok(result(Some(judged), true, trials));
    }
    // The lowest rate known to fail, and the highest known to pass (or the lower bound).
    let mut bad = judged;
    let mut good = None;
    let mut lo = params.min_pps;
    if params.min_pps > 0.0 {
        // The lower bound first: a device that fails even there has no NDR to find.
        let (judged, passed, _) = run(params.min_pps, &mut trials)?;
        if !passed {
            return Ok(result(None, false, trials));
        }
        good = Some(judged);
        lo = judged;
    }
    let step = params.resolution * params.max_pps;
    while (trials.len() as u32) < params.max_trials && bad - lo > step {
        let pps = (lo + bad) / 2.0;
        let (judged, passed, short) = run(pps, &mut trials)?;
        if passed {
            good = Some(good.map_or(judged, |g: f64| g.max(judged)));
            if short && judged <= lo {
                // The generator fell short even of a rate that already passed: nothing above
                // it can be shown.
                return Ok(result(good, true, trials));
            }
            // A shortfall above the last pass (a generator briefly held up) still narrows the
            // interval: the rate it reached passed.
            lo = lo.max(judged);
        } else {
            bad = bad.min(judged);
        }
    }
    Ok(result(good, false, trials))
}

/// The rates at which latency is measured after a search: 10%, 50% and 90% of the rate found.
pub fn latency_points(rate_pps: f64) -> [(u8, f64); 3] {
    [10u8, 50, 90].map(|p| (p, rate_pps * p as f64 / 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A device that forwards up to `capacity` packets per second and drops the rest, behind a
    /// generator that can send at most `gen_max` packets per second.
    struct Dut {
        capacity: f64,
        gen_max: f64,
        secs: f64,
        runs: u32,
    }

    impl Trial for Dut {
        type Error = String;
        fn run(&mut self, offered: f64) -> Result<Outcome, String> {
            self.runs += 1;
            let achieved = offered.min(self.gen_max);
            let sent = (achieved * self.secs).round() as u64;
            let received = (achieved.min(self.capacity) * self.secs).round() as u64;
            Ok(Outcome {
                sent,
                received,
                achieved_pps: achieved,
            })
        }
    }

    fn params(max: f64) -> Params {
        Params {
            min_pps: 0.0,
            max_pps: max,
            resolution: 0.01,
            max_trials: 64,
        }
    }

    #[test]
    fn ndr_lands_within_the_resolution_below_the_capacity() {
        let mut dut = Dut {
            capacity: 3_300_000.0,
            gen_max: f64::MAX,
            secs: 1.0,
            runs: 0,
        };
        let p = params(10_000_000.0);
        let r = search(Criterion::Ndr, p, &mut dut).unwrap();
        let found = r.rate_pps.unwrap();
        assert!(found <= 3_300_000.0, "{found}");
        assert!(3_300_000.0 - found <= p.resolution * p.max_pps, "{found}");
        assert!(!r.limited_by_generator);
        // Every trial is recorded, and the found rate is one that passed.
        assert_eq!(r.trials.len() as u32, dut.runs);
        assert!(r.trials.iter().any(|t| t.passed && t.judged_pps == found));
        assert!(r.trials.iter().all(|t| t.passed == (t.lost == 0)));
    }

    #[test]
    fn pdr_tolerates_its_loss_and_no_more() {
        // With 1% loss allowed, a device of capacity C passes up to C / 0.99.
        let mut dut = Dut {
            capacity: 2_000_000.0,
            gen_max: f64::MAX,
            secs: 10.0,
            runs: 0,
        };
        let p = Params {
            resolution: 0.001,
            ..params(5_000_000.0)
        };
        let r = search(Criterion::Pdr { loss_ratio: 0.01 }, p, &mut dut).unwrap();
        let found = r.rate_pps.unwrap();
        let limit = 2_000_000.0 / 0.99;
        assert!(found <= limit + 1.0, "{found} above {limit}");
        assert!(limit - found <= p.resolution * p.max_pps, "{found}");
        assert!(found > 2_000_000.0, "some loss accepted: {found}");
    }

    #[test]
    fn a_device_faster_than_the_generator_is_reported_as_such() {
        let mut dut = Dut {
            capacity: 50e6,
            gen_max: 20e6,
            secs: 1.0,
            runs: 0,
        };
        // Asked for 10 Mpps, which the generator reaches: one trial, passed.
        let r = search(Criterion::Ndr, params(10e6), &mut dut).unwrap();
        assert_eq!(r.trials.len(), 1);
        assert!(r.limited_by_generator);
        assert_eq!(r.rate_pps, Some(10e6));
    }

    #[test]
    fn a_generator_short_of_the_rate_is_judged_at_what_it_sent() {
        // The generator tops out at 4 Mpps, the device at 6: the top trial passes at 4 Mpps,
        // which proves nothing above 4.
        let mut dut = Dut {
            capacity: 6e6,
            gen_max: 4e6,
            secs: 1.0,
            runs: 0,
        };
        let r = search(Criterion::Ndr, params(10e6), &mut dut).unwrap();
        assert_eq!(r.trials.len(), 1);
        assert_eq!(r.trials[0].judged_pps, 4e6);
        assert!(r.limited_by_generator);
        assert_eq!(r.rate_pps, Some(4e6));
    }

    #[test]
    fn a_generator_held_up_in_one_trial_does_not_end_the_search() {
        // Trial 3 (the second bisection) sends 10% under its rate, and passes there: the
        // search goes on from the rate it reached and still lands within the resolution.
        struct Hiccup(Dut);
        impl Trial for Hiccup {
            type Error = String;
            fn run(&mut self, offered: f64) -> Result<Outcome, String> {
                let hiccup = self.0.runs == 2;
                let mut o = self.0.run(offered)?;
                if hiccup {
                    o.achieved_pps *= 0.9;
                    o.sent = (o.achieved_pps * self.0.secs).round() as u64;
                    o.received = (o.achieved_pps.min(self.0.capacity) * self.0.secs).round() as u64;
                }
                Ok(o)
            }
        }
        let mut dut = Hiccup(Dut {
            capacity: 3_000_000.0,
            gen_max: 100e6,
            secs: 1.0,
            runs: 0,
        });
        let r = search(Criterion::Ndr, params(10e6), &mut dut).unwrap();
        assert!(!r.limited_by_generator, "{r:?}");
        assert!(r.trials[2].judged_pps < r.trials[2].offered_pps, "{r:?}");
        let found = r.rate_pps.unwrap();
        assert!((3e6 - 0.01 * 10e6..=3e6).contains(&found), "{found}");
    }

    #[test]
    fn a_device_failing_at_the_lowest_rate_has_no_ndr() {
        let mut dut = Dut {
            capacity: 1000.0,
            gen_max: f64::MAX,
            secs: 1.0,
            runs: 0,
        };
        let p = Params {
            min_pps: 5000.0,
            ..params(1e6)
        };
        let r = search(Criterion::Ndr, p, &mut dut).unwrap();
        assert_eq!(r.rate_pps, None);
        assert_eq!(r.trials.len(), 2, "{:?}", r.trials);
        assert_eq!(r.trials[1].offered_pps, 5000.0);
    }

    #[test]
    fn trial_errors_stop_the_search() {
        struct Broken;
        impl Trial for Broken {
            type Error = &'static str;
            fn run(&mut self, _: f64) -> Result<Outcome, &'static str> {
                Err("port went away")
            }
        }
        assert_eq!(
            search(Criterion::Ndr, params(1e6), &mut Broken).unwrap_err(),
            "port went away"
        );
    }

    #[test]
    fn bad_bounds_are_refused() {
        for p in [
            params(0.0),
            params(f64::NAN),
            Params {
                min_pps: 2e6,
                ..params(1e6)
            },
            Params {
                resolution: 0.0,
                ..params(1e6)
            },
            Params {
                resolution: 1.5,
                ..params(1e6)
            },
            Params {
                max_trials: 0,
                ..params(1e6)
            },
        ] {
            assert!(p.validate().is_err(), "{p:?}");
        }
        assert!(params(1e6).validate().is_ok());
    }

    #[test]
    fn latency_points_are_ten_fifty_ninety_percent() {
        assert_eq!(
            latency_points(1e6),
            [(10, 100_000.0), (50, 500_000.0), (90, 900_000.0)]
        );
    }

    proptest! {
        /// Whatever the capacity and bounds, the NDR found passes, is at most the capacity, and
        /// is within the resolution of it (or of the bounds), in a bounded number of trials.
        #[test]
        fn ndr_converges(cap in 1.0e3f64..5.0e7, max in 1.0e4f64..1.0e8, res in 0.001f64..0.1) {
            let mut dut = Dut { capacity: cap, gen_max: f64::MAX, secs: 1.0, runs: 0 };
            let p = Params { min_pps: 0.0, max_pps: max, resolution: res, max_trials: 64 };
            let r = search(Criterion::Ndr, p, &mut dut).unwrap();
            prop_assert!(r.trials.len() <= 64);
            match r.rate_pps {
                Some(found) => {
                    prop_assert!(found <= cap.max(0.0) + 1.0 || r.limited_by_generator);
                    if cap < max {
                        prop_assert!(cap - found <= res * max + 1.0, "cap {} found {}", cap, found);
                    }
                }
                None => prop_assert!(cap < res * max, "cap {} max {}", cap, max),
            }
        }
    }
}
