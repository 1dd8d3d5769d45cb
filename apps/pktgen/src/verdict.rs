//! Pass criteria: what a run must show for pktgen to exit 0.
//!
//! Every run is judged, so that a script can trust the exit status alone: 0 when every
//! criterion holds, 2 when one fails (one line each on stderr, and the report's `verdict` and
//! `failed`), 1 on an error (the run could not be made or reported).
//!
//! * **loss** (`--max-loss N` frames, or `P%` of the frames sent; default 0): lost frames,
//!   the report's `lost` (late and corrupted frames included), decided after the drain wait.
//!   The default is 0 for `--count` and `--duration` runs alike: sending stops, then the
//!   drain lets every frame still in flight come back before anything counts as lost, so a
//!   run that stops on its duration has no frames in flight to excuse. A throughput or soak
//!   run that may lose a few gives a budget, `--max-loss 0.01%`.
//! * **latency** (`--max-latency-us`, `--max-p99-latency-us`; none by default): the highest,
//!   or the 99th percentile, one-way latency. Not met when no frame came back to measure.
//! * always: something was sent (a TX port that took no frame tested nothing), and the run
//!   was not cut short by SIGINT/SIGTERM before its `--count` or `--duration` was done.

use crate::analyzer::Latency;
use serde::Serialize;
use std::fmt;

/// How many lost frames a run may have.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LossLimit {
    /// At most this many frames.
    Frames(u64),
    /// At most this percentage of the frames sent (0..=100).
    Percent(f64),
}

impl Default for LossLimit {
    fn default() -> Self {
        LossLimit::Frames(0)
    }
}

impl std::str::FromStr for LossLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid max loss {s:?}: expected a number of frames (0, 10) or a percentage of \
                 those sent (0.1%, 100%)"
            )
        };
        let t = s.trim();
        match t.strip_suffix('%') {
            Some(p) => {
                let p: f64 = p.trim().parse().map_err(|_| bad())?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(format!(
                        "invalid max loss {s:?}: a percentage is 0% to 100%"
                    ));
                }
                Ok(LossLimit::Percent(p))
            }
            None => t.parse().map(LossLimit::Frames).map_err(|_| bad()),
        }
    }
}

impl fmt::Display for LossLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LossLimit::Frames(n) => write!(f, "{n}"),
            LossLimit::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl LossLimit {
    /// Whether `lost` of `sent` frames is within the limit.
    pub fn allows(&self, lost: u64, sent: u64) -> bool {
        match *self {
            LossLimit::Frames(n) => lost <= n,
            // In integers where it matters: 0% allows no loss at all, 100% any.
            LossLimit::Percent(p) => lost as f64 * 100.0 <= p * sent as f64,
        }
    }
}

/// The highest latency a criterion accepts, in microseconds: an hour, the top of the
/// analyzer's histogram.
pub const MAX_LATENCY_US: f64 = 3_600_000_000.0;

/// What a run must show to pass.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Criteria {
    /// `--max-loss`.
    #[serde(serialize_with = "as_text")]
    pub max_loss: LossLimit,
    /// `--max-latency-us`: the highest latency, in microseconds.
    pub max_latency_us: Option<f64>,
    /// `--max-p99-latency-us`: the 99th percentile, in microseconds.
    pub max_p99_latency_us: Option<f64>,
}

fn as_text<S: serde::Serializer>(v: &LossLimit, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// What the criteria judge.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outcome {
    pub sent: u64,
    pub lost: u64,
    /// Latency in nanoseconds.
    pub latency: Latency,
    /// Stopped by a signal before its `--count` or `--duration` was done.
    pub interrupted: bool,
}

/// A criterion the run failed, and why, in one line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// The criterion: its config key (`max_loss`, `max_latency_us`, `max_p99_latency_us`), or
    /// `sent` (nothing was sent) or `interrupted`.
    pub criterion: &'static str,
    pub message: String,
}

/// Microseconds with at most two decimals: what a TSC-timed latency resolves usefully.
pub fn us(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1e3)
}

impl Criteria {
    /// The criteria `outcome` fails, in a fixed order; empty when it passes.
    pub fn judge(&self, o: &Outcome) -> Vec<Failure> {
        let mut failed = Vec::new();
        let mut fail = |criterion, message| failed.push(Failure { criterion, message });
        if o.sent == 0 {
            fail(
                "sent",
                "no frame was sent (the TX port took none): nothing was tested".into(),
            );
        }
        if o.interrupted {
            fail(
                "interrupted",
                format!(
                    "stopped by a signal before its --count or --duration was done ({} frames sent)",
                    o.sent
                ),
            );
        }
        if !self.max_loss.allows(o.lost, o.sent) {
            fail(
                "max_loss",
                format!(
                    "lost {} of {} frames ({:.2}%), more than --max-loss {} allows",
                    o.lost,
                    o.sent,
                    o.lost as f64 * 100.0 / o.sent.max(1) as f64,
                    self.max_loss
                ),
            );
        }
        for (criterion, option, bound, what, ns) in [
            (
                "max_latency_us",
                "--max-latency-us",
                self.max_latency_us,
                "max",
                o.latency.max,
            ),
            (
                "max_p99_latency_us",
                "--max-p99-latency-us",
                self.max_p99_latency_us,
                "p99",
                o.latency.p99,
            ),
        ] {
            let Some(bound) = bound else { continue };
            if o.latency.samples == 0 {
                fail(
                    criterion,
                    format!("no latency measured (no frame came back), {option} {bound} not met"),
                );
            } else if ns as f64 / 1e3 > bound {
                fail(
                    criterion,
                    format!("latency {what} {} us, above {option} {bound}", us(ns)),
                );
            }
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(sent: u64, lost: u64) -> Outcome {
        Outcome {
            sent,
            lost,
            latency: Latency {
                samples: sent - lost,
                min: 1_000,
                p50: 2_000,
                p90: 3_000,
                p99: 9_500,
                p999: 20_000,
                max: 123_456,
                mean: 2_100,
            },
            interrupted: false,
        }
    }

    #[test]
    fn loss_limits_parse_and_print() {
        assert_eq!("0".parse(), Ok(LossLimit::Frames(0)));
        assert_eq!(" 25 ".parse(), Ok(LossLimit::Frames(25)));
        assert_eq!("0.1%".parse(), Ok(LossLimit::Percent(0.1)));
        assert_eq!("100 %".parse(), Ok(LossLimit::Percent(100.0)));
        for bad in ["", "-1", "x", "1.5", "101%", "-1%", "NaN%", "%"] {
            let e = bad.parse::<LossLimit>().unwrap_err();
            assert!(e.starts_with("invalid max loss"), "{bad}: {e}");
        }
        assert_eq!(LossLimit::Percent(0.1).to_string(), "0.1%");
        assert_eq!(LossLimit::Frames(7).to_string(), "7");
    }

    #[test]
    fn loss_within_and_beyond_the_limit() {
        assert!(LossLimit::Frames(0).allows(0, 100));
        assert!(!LossLimit::Frames(0).allows(1, 100));
        assert!(LossLimit::Frames(3).allows(3, 100));
        assert!(LossLimit::Percent(1.0).allows(1, 100));
        assert!(!LossLimit::Percent(1.0).allows(2, 100));
        assert!(!LossLimit::Percent(0.0).allows(1, u64::MAX));
        assert!(LossLimit::Percent(100.0).allows(u64::MAX, u64::MAX));
    }

    #[test]
    fn a_clean_run_passes_the_defaults() {
        assert!(Criteria::default().judge(&outcome(1000, 0)).is_empty());
    }

    #[test]
    fn each_failure_says_what_and_by_how_much() {
        let c = Criteria {
            max_loss: LossLimit::Frames(0),
            max_latency_us: Some(100.0),
            max_p99_latency_us: Some(9.0),
        };
        let f = c.judge(&outcome(300, 300));
        let names: Vec<_> = f.iter().map(|f| f.criterion).collect();
        assert_eq!(names, ["max_loss", "max_latency_us", "max_p99_latency_us"]);
        assert_eq!(
            f[0].message,
            "lost 300 of 300 frames (100.00%), more than --max-loss 0 allows"
        );
        assert_eq!(
            f[1].message,
            "no latency measured (no frame came back), --max-latency-us 100 not met"
        );
        let f = c.judge(&outcome(300, 0));
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(
            f[0].message,
            "latency max 123.46 us, above --max-latency-us 100"
        );
        assert_eq!(
            f[1].message,
            "latency p99 9.50 us, above --max-p99-latency-us 9"
        );
    }

    #[test]
    fn nothing_sent_or_interrupted_fails_whatever_the_limits() {
        let c = Criteria {
            max_loss: LossLimit::Percent(100.0),
            ..Criteria::default()
        };
        let f = c.judge(&outcome(0, 0));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].criterion, "sent");
        let mut o = outcome(10, 0);
        o.interrupted = true;
        let f = c.judge(&o);
        assert_eq!(f[0].criterion, "interrupted");
        assert!(f[0].message.contains("(10 frames sent)"), "{f:?}");
    }
}
