//! `--search ndr|pdr`: the RFC 2544 search (`pktgen::search`) run on the real TX and RX sides.
//!
//! A trial reuses the sides of the run: it sets the rate, launches the lcores for `--trial-s`
//! seconds, stops the TX side, waits for the RX side to drain (until every frame of the trial
//! is back or `--drain-ms` passed), and only then reads the counts, as differences from the
//! trial's start. Sequence numbers go on across trials, so a frame of an earlier trial that
//! arrives late is recognised by its number and counted as stale, never as one of the current
//! trial's (`Analyzer::start_trial`): a straggler cannot hide a loss.

use crate::{launch, Control, Placement, Shared, Sides};
use anyhow::{bail, Context, Result};
use pktgen::analyzer::{Analyzer, Latency};
use pktgen::control::RateSetting;
use pktgen::frames::Rate;
use pktgen::options::{SearchSettings, Settings};
use pktgen::report::{LatencyPoint, Report, SearchReport};
use pktgen::search::{latency_points, search, Outcome, Params, SearchResult, Trial};
use pmd::Eal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The most trials one search runs, whatever its resolution (a resolution of 0.1% needs 10).
const MAX_TRIALS: u32 = 32;

/// Trials on pktgen's own TX and RX sides.
pub struct LiveTrials<'r, 'q, 'a> {
    pub eal: &'r Eal,
    pub opts: &'r Settings,
    pub placement: &'r Placement,
    pub shared: &'r Shared,
    pub quit: &'r AtomicBool,
    pub control: &'r mut Control,
    /// The sides, between trials (None once an lcore failed).
    pub sides: Option<Sides<'q, 'a>>,
    /// The search's start: the time series counts from it.
    pub started: Instant,
    pub trial: Duration,
    pub number: u32,
    /// The last trial's latency.
    pub last: Latency,
}

/// What the search found, before the report.
pub struct Found {
    pub result: SearchResult,
    pub calibration_pps: Option<f64>,
    pub latency_points: Vec<LatencyPoint>,
    pub stale: u64,
    pub fixture_dropped: u64,
}

impl LiveTrials<'_, '_, '_> {
    /// One trial at `pps` packets per second (None: as fast as the generator can).
    fn one(&mut self, pps: Option<f64>) -> Result<Outcome> {
        // Relaxed: a flag set by the signal handler.
        if self.quit.load(Ordering::Relaxed) {
            bail!("interrupted: the search stopped before it was done");
        }
        let mut sides = self.sides.take().context("a pktgen lcore failed")?;
        let shared = self.shared;
        // Relaxed: the lcores are not running between trials; the launch publishes these.
        shared.stop_tx.store(false, Ordering::Relaxed);
        for l in shared.tx.iter() {
            l.done.store(false, Ordering::Relaxed);
        }
        shared.control.set_rate(pps);
        // What `stats` says the rate is.
        self.control.rate =
            RateSetting::new(pps.map_or(Rate::Max, Rate::Pps), self.opts.size.mean());
        let sent0 = shared.tx_total();
        let distinct0 = shared.rx_distinct();
        let merged0 = merged_distinct(&sides);
        // Each stream's first sequence number in this trial, by run-wide stream id.
        let nt = sides.tx.len();
        let streams: usize = sides.tx.iter().map(|t| t.streams).sum();
        let mut floors = vec![0u64; streams];
        for t in &mut sides.tx {
            for (k, &n) in t.seq.as_slice().iter().enumerate() {
                floors[t.lane + k * nt] = n;
            }
            t.count = u64::MAX;
            // A new token bucket, empty: nothing saved up between trials goes out as a burst.
            t.rate_bits = u64::MAX;
        }
        for r in &mut sides.rx {
            r.analyzer.start_trial(&floors);
            r.base = (distinct0, sent0);
            r.tx_done_at = None;
        }
        let t0 = pmd::rdtsc();
        self.number += 1;
        apps_common::outln!(
            "pktgen: trial {} at {} for {}",
            self.number,
            pps.map_or("max".to_owned(), apps_common::units::pps),
            humantime(self.trial)
        );
        let now = Instant::now();
        let sides = launch(
            self.eal,
            self.opts,
            self.placement,
            sides,
            shared,
            self.quit,
            self.started,
            now.checked_add(self.trial),
            self.control,
        )?;
        let sent = shared.tx_total() - sent0;
        // Merged over the RX sides: a frame that arrived on two counts once.
        let received = merged_distinct(&sides).saturating_sub(merged0);
        let hz = pmd::tsc_hz().max(1) as f64;
        let last_tx = sides.tx.iter().map(|t| t.last_tsc).max().unwrap_or(t0);
        let secs = last_tx.saturating_sub(t0) as f64 / hz;
        // The trial's latency over every RX side.
        self.last = Analyzer::latency_of(sides.rx.iter().map(|r| &r.analyzer));
        self.sides = Some(sides);
        // Relaxed: set by the signal handler; a trial cut short proves nothing.
        if self.quit.load(Ordering::Relaxed) {
            bail!("interrupted: the search stopped before it was done");
        }
        if sent == 0 {
            bail!(
                "trial {} sent nothing: is the TX port up (a trial that sends nothing proves nothing)?",
                self.number
            );
        }
        Ok(Outcome {
            sent,
            received,
            achieved_pps: if secs > 0.0 { sent as f64 / secs } else { 0.0 },
        })
    }

    /// The whole search: a calibration trial when the upper bound is `max`, the bisection, then
    /// the latency trials at 10, 50 and 90% of the rate found.
    pub fn search(&mut self, s: SearchSettings) -> Result<Found> {
        let mean = self.opts.size.mean();
        let (max_pps, calibration_pps) = match self.opts.rate.pps(mean) {
            Some(p) => (p, None),
            None => {
                let o = self.one(None)?;
                if o.achieved_pps <= 0.0 {
                    bail!("the calibration trial at --rate max sent nothing: is the TX port up?");
                }
                (o.achieved_pps, Some(o.achieved_pps))
            }
        };
        let min_pps = match s.min {
            None => 0.0,
            Some(r) => r.pps(mean).unwrap_or(0.0),
        };
        let params = Params {
            min_pps,
            max_pps,
            resolution: s.resolution,
            max_trials: MAX_TRIALS,
        };
        params.validate().map_err(anyhow::Error::msg)?;
        let result = search(s.criterion, params, &mut Adapter(self))?;
        let mut points = Vec::new();
        if let Some(rate) = result.rate_pps.filter(|&r| r > 0.0) {
            for (percent, pps) in latency_points(rate) {
                let o = self.one(Some(pps))?;
                points.push(LatencyPoint {
                    percent,
                    rate_pps: pps,
                    sent: o.sent,
                    received: o.received,
                    lost: o.lost(),
                    latency_ns: self.last,
                });
            }
        }
        let sides = self.sides.as_ref().context("a pktgen lcore failed")?;
        Ok(Found {
            result,
            calibration_pps,
            latency_points: points,
            stale: sides.rx.iter().map(|r| r.analyzer.stale()).sum(),
            fixture_dropped: sides.rx.iter().map(|r| r.policed).sum(),
        })
    }
}

/// The search's view of the trials.
struct Adapter<'t, 'r, 'q, 'a>(&'t mut LiveTrials<'r, 'q, 'a>);

impl Trial for Adapter<'_, '_, '_, '_> {
    type Error = anyhow::Error;
    fn run(&mut self, offered_pps: f64) -> Result<Outcome> {
        self.0.one(Some(offered_pps))
    }
}

fn humantime(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// Distinct frames of ours received over every RX side, merged by sequence number (one side:
/// its count; several: their analyzers merged, once per trial).
fn merged_distinct(sides: &Sides) -> u64 {
    match sides.rx.as_slice() {
        [one] => one.analyzer.distinct(),
        all => {
            let nt = sides.tx.len();
            let streams: usize = sides.tx.iter().map(|t| t.streams).sum();
            let mut m = Analyzer::with_lanes(streams, nt, pmd::tsc_hz());
            for r in all {
                m.absorb(&r.analyzer);
            }
            m.distinct()
        }
    }
}

/// Prints the search's summary, writes its report; whether it found a rate.
pub fn finish_search(found: Found, run: Report, opts: &Settings) -> Result<bool> {
    let mean = opts.size.mean();
    let report = SearchReport {
        trial_s: opts.search.map_or(0.0, |s| s.trial.as_secs_f64()),
        rate_pps: found.result.rate_pps,
        rate_bps: found
            .result
            .rate_pps
            .map(|p| SearchReport::wire_bps(p, mean)),
        calibration_pps: found.calibration_pps,
        latency_points: found.latency_points,
        stale: found.stale,
        fixture_dropped: found.fixture_dropped,
        search: found.result,
        run,
    };
    apps_common::out!("{}", report.summary());
    if let Some(path) = &opts.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write report {}", path.display()))?;
    }
    if report.rate_pps.is_none() {
        apps_common::errln!("pktgen: fail: no rate passed, not even the lowest tried");
    }
    Ok(report.rate_pps.is_some())
}
