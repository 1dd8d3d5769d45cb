//! What a run found: the JSON report (`--report`) and the summary printed at the end, both
//! built from one [`Report`].
//!
//! Counts are frames; bytes are frame sizes with FCS, as `--size` counts them; bit rates are
//! on the wire (frame, FCS, preamble and gap), as `--rate ...bps` counts them. The TX rate is
//! over the time frames were sent (first to last); the RX rate over the time from the first
//! frame sent to the last one received. Latencies are nanoseconds in the report and
//! microseconds with two decimals in the summary.
//!
//! Latency per stream (`streams[i].latency_ns`: samples, min, mean, max, p50, p99 and RFC 3550
//! jitter) comes without its histogram: at 65535 flows the per-stream histograms would make
//! the report tens of megabytes. The global `latency_ns` carries the whole histogram, as
//! `histogram`: an HdrHistogram log entry (base64 of the V2 deflate encoding), which the
//! HdrHistogram libraries (Java, Python, Rust, ...) decode, merge and plot. The global jitter
//! is the worst stream's (the highest of the per-stream jitters, and which stream it is): a
//! mean would hide the one stream that suffers.

use crate::analyzer::{Counts, Latency, StreamLatency};
use crate::frames::{Flow, Rate, WIRE_OVERHEAD};
use crate::options::Settings;
use crate::search::{Criterion, SearchResult};
use crate::series::Series;
use crate::verdict::{us, Criteria, Failure, Outcome};
use apps_common::units;
use serde::Serialize;
use std::fmt::Write;

/// A rate the TX side held is one within this fraction of the requested rate.
pub const RATE_TOLERANCE: f64 = 0.01;

/// What one run measured, as the TX and RX sides hand it over.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub per_stream: Vec<Counts>,
    pub total: Counts,
    pub foreign: u64,
    pub latency: Latency,
    /// Each stream's latency and jitter (in stream order; missing ones count as none).
    pub stream_latency: Vec<StreamLatency>,
    /// The global latency histogram, base64 of its V2 deflate encoding.
    pub histogram: String,
    /// Bytes of the frames sent (FCS included).
    pub tx_bytes: u64,
    /// Bytes of the frames of ours received intact (FCS included).
    pub rx_bytes: u64,
    /// The whole run, from launch to the end of the drain wait.
    pub elapsed_s: f64,
    /// From the first frame sent to the last.
    pub tx_s: f64,
    /// From the first frame sent to the last frame of ours received.
    pub rx_s: f64,
    /// Stopped by a signal before its `--count` or `--duration` was done.
    pub interrupted: bool,
    /// What was sent, received and missing over time (`--sample-ms`).
    pub series: Series,
    /// Nanoseconds the TX sides' lcores spent per frame sent, and the RX sides' per frame
    /// received, over the loops that moved frames (see [`LcoreCost`]).
    pub lcore_cost: LcoreCost,
}

/// What a frame costs each side's lcore, as testpmd's `--record-core-cycles` counts it: the
/// TSC cycles of the loops that moved at least one frame (driver call, frame work, freeing),
/// divided by the frames they moved, in nanoseconds. Loops that found nothing to do (an empty
/// RX queue, a full TX queue, the rate's pause) are left out. When a side ran flat out (`--rate
/// max`, full bursts), this is what one core of it does: 1000 / `tx_ns_per_frame` Mpps per TX
/// core. At a lower rate a loop moves a few frames, and its fixed costs are shared by fewer:
/// the figure is higher. 0 for a side that moved nothing.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct LcoreCost {
    pub tx_ns_per_frame: f64,
    pub rx_ns_per_frame: f64,
}

impl LcoreCost {
    /// From busy TSC cycles and the frames they moved, each side's sum over its lcores.
    pub fn new(tx: (u64, u64), rx: (u64, u64), tsc_hz: u64) -> LcoreCost {
        let ns = |(cycles, frames): (u64, u64)| {
            if frames == 0 || tsc_hz == 0 {
                0.0
            } else {
                round(cycles as f64 * 1e9 / tsc_hz as f64 / frames as f64, 2)
            }
        };
        LcoreCost {
            tx_ns_per_frame: ns(tx),
            rx_ns_per_frame: ns(rx),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct StreamReport {
    pub stream: u16,
    pub src_ip: String,
    pub dst_ip: String,
    pub src_port: u16,
    pub dst_port: u16,
    #[serde(flatten)]
    pub counts: Counts,
    /// Nanoseconds.
    pub latency_ns: StreamLatency,
}

/// The global latency: the percentiles, the worst stream's jitter, the histogram.
#[derive(Debug, Serialize)]
pub struct LatencyReport {
    #[serde(flatten)]
    pub latency: Latency,
    /// The highest per-stream RFC 3550 jitter, nanoseconds (0 with no stream measured).
    pub jitter: u64,
    /// The stream it is of (null when no stream had a latency sample).
    pub jitter_stream: Option<u16>,
    /// The whole histogram as an HdrHistogram log entry: base64 of the V2 deflate encoding.
    pub histogram: String,
}

impl StreamReport {
    /// Stream `stream`'s counts and latency, with the addresses and ports of its flow.
    fn new(stream: u16, counts: Counts, latency_ns: StreamLatency) -> Self {
        let f = Flow::nth(stream);
        let ip = |a: [u8; 4]| format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]);
        StreamReport {
            stream,
            src_ip: ip(f.src_ip),
            dst_ip: ip(f.dst_ip),
            src_port: f.src_port,
            dst_port: f.dst_port,
            counts,
            latency_ns,
        }
    }
}

/// The rate asked for against the rate sent.
#[derive(Debug, Serialize)]
pub struct RateReport {
    /// As asked, in words: `max`, `10.00 Mpps`, `1.00 Gbit/s`.
    pub requested: String,
    /// The requested rate in packets/s (a bit rate at the mean frame size); null for max.
    pub requested_pps: Option<f64>,
    /// Packets/s sent, over the time the TX side sent.
    pub sent_pps: f64,
    /// `sent_pps` as a percentage of `requested_pps`; null for max.
    pub percent_of_requested: Option<f64>,
    /// Whether the TX side held the requested rate (to within 1%); null for max.
    pub reached: Option<bool>,
}

/// The report: the counts, rates, latency and verdict of one run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `pass` or `fail` (then pktgen exits 2).
    pub verdict: &'static str,
    /// The criteria the run failed (empty when it passed).
    pub failed: Vec<Failure>,
    /// The criteria it was judged by.
    pub criteria: Criteria,
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub corrupted: u64,
    pub late: u64,
    pub foreign: u64,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub elapsed_s: f64,
    pub tx_s: f64,
    pub rx_s: f64,
    pub tx_pps: f64,
    pub rx_pps: f64,
    /// Bits/s on the wire.
    pub tx_bps: f64,
    pub rx_bps: f64,
    pub latency_ns: LatencyReport,
    pub rate: RateReport,
    pub size: String,
    pub flows: u16,
    pub streams: Vec<StreamReport>,
    /// The run over time: per sample period, frames sent and received and those missing at its
    /// end (see `pktgen::series`).
    pub series: Series,
    pub lcore_cost: LcoreCost,
}

/// `v` rounded to `decimals` places (so that the report reads 0.0748, not 0.074800482...).
fn round(v: f64, decimals: i32) -> f64 {
    let k = 10f64.powi(decimals);
    (v * k).round() / k
}

/// `n` per second over `s` seconds (0 when no time passed).
fn per_s(n: f64, s: f64) -> f64 {
    if s > 0.0 {
        n / s
    } else {
        0.0
    }
}

/// The global latency of `m`, with its worst stream's jitter.
fn latency_report(m: &Measured) -> LatencyReport {
    let worst = m
        .stream_latency
        .iter()
        .enumerate()
        .filter(|(_, l)| l.samples > 0)
        // The first of equals: max_by_key would keep the last.
        .fold(None, |w: Option<(usize, u64)>, (i, l)| match w {
            Some((_, j)) if j >= l.jitter => w,
            _ => Some((i, l.jitter)),
        });
    LatencyReport {
        latency: m.latency,
        jitter: worst.map_or(0, |(_, j)| j),
        jitter_stream: worst.and_then(|(i, _)| u16::try_from(i).ok()),
        histogram: m.histogram.clone(),
    }
}

/// The requested rate against what `sent` frames in `tx_s` seconds came to.
fn rate_report(rate: Rate, mean_size: f64, sent: u64, tx_s: f64) -> RateReport {
    let sent_pps = per_s(sent as f64, tx_s);
    let requested_pps = rate.pps(mean_size);
    // Judged only when sending took time (not for a run that sent nothing).
    let judged = requested_pps.filter(|_| tx_s > 0.0);
    RateReport {
        requested: rate.to_string(),
        requested_pps: requested_pps.map(|r| round(r, 1)),
        sent_pps: round(sent_pps, 1),
        percent_of_requested: judged.map(|r| round(sent_pps * 100.0 / r, 2)),
        // One frame of slack: the token bucket grants whole frames, so a slow run (a few
        // frames a second) may end just before its next one is due.
        reached: judged.map(|r| (sent as f64 + 1.0) / tx_s >= r * (1.0 - RATE_TOLERANCE)),
    }
}

impl Report {
    /// The report of a run measured as `m` with `settings`, judged by its criteria.
    pub fn new(m: Measured, settings: &Settings) -> Self {
        let t = m.total;
        let wire_bits =
            |frames: u64, bytes: u64| ((bytes + frames * WIRE_OVERHEAD as u64) * 8) as f64;
        let failed = settings.criteria.judge(&Outcome {
            sent: t.sent,
            lost: t.lost,
            latency: m.latency,
            interrupted: m.interrupted,
        });
        Report {
            verdict: if failed.is_empty() { "pass" } else { "fail" },
            failed,
            criteria: settings.criteria.clone(),
            sent: t.sent,
            received: t.received,
            lost: t.lost,
            duplicated: t.duplicated,
            reordered: t.reordered,
            corrupted: t.corrupted,
            late: t.late,
            foreign: m.foreign,
            tx_bytes: m.tx_bytes,
            rx_bytes: m.rx_bytes,
            elapsed_s: round(m.elapsed_s, 6),
            tx_s: round(m.tx_s, 6),
            rx_s: round(m.rx_s, 6),
            tx_pps: round(per_s(t.sent as f64, m.tx_s), 1),
            rx_pps: round(per_s(t.received as f64, m.rx_s), 1),
            tx_bps: round(per_s(wire_bits(t.sent, m.tx_bytes), m.tx_s), 0),
            rx_bps: round(per_s(wire_bits(t.received, m.rx_bytes), m.rx_s), 0),
            latency_ns: latency_report(&m),
            rate: rate_report(settings.rate, settings.size.mean(), t.sent, m.tx_s),
            size: settings.size.to_string(),
            flows: settings.flows,
            streams: m
                .per_stream
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let l = m.stream_latency.get(i).copied().unwrap_or_default();
                    StreamReport::new(i as u16, *c, l)
                })
                .collect(),
            series: m.series,
            lcore_cost: m.lcore_cost,
        }
    }

    /// Whether every criterion held.
    pub fn passed(&self) -> bool {
        self.failed.is_empty()
    }

    /// The final summary, as printed at the end of a run (lines ending in `\n`).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let row = |s: &mut String, name: &dyn std::fmt::Display, c: &Counts| {
            let _ = writeln!(
                s,
                "{name:>6} {:>12} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10}",
                c.sent, c.received, c.lost, c.duplicated, c.reordered, c.late, c.corrupted
            );
        };
        s.push_str("\npktgen results ====================================================\n");
        let _ = writeln!(
            s,
            "{:>6} {:>12} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "stream", "sent", "received", "lost", "dup", "reordered", "late", "corrupted"
        );
        for st in &self.streams {
            row(&mut s, &st.stream, &st.counts);
        }
        row(&mut s, &"total", &self.total());
        let _ = writeln!(s, "foreign frames (not ours): {}", self.foreign);
        for (side, frames, bytes, secs, pps, bps) in [
            (
                "tx",
                self.sent,
                self.tx_bytes,
                self.tx_s,
                self.tx_pps,
                self.tx_bps,
            ),
            (
                "rx",
                self.received,
                self.rx_bytes,
                self.rx_s,
                self.rx_pps,
                self.rx_bps,
            ),
        ] {
            let _ = writeln!(
                s,
                "{side}: {frames} frames, {} in {}: {}, {} on the wire",
                units::bytes(bytes),
                seconds(secs),
                units::pps(pps),
                units::bits_per_s(bps)
            );
        }
        if let Some(line) = self.shortfall() {
            let _ = writeln!(s, "{line}");
        }
        let c = self.lcore_cost;
        if c.tx_ns_per_frame > 0.0 && c.rx_ns_per_frame > 0.0 {
            let _ = writeln!(
                s,
                "lcore time per frame (busy loops): tx {:.1} ns ({:.2} Mpps a core), rx {:.1} ns ({:.2} Mpps a core)",
                c.tx_ns_per_frame,
                1e3 / c.tx_ns_per_frame,
                c.rx_ns_per_frame,
                1e3 / c.rx_ns_per_frame
            );
        }
        s.push_str(&latency_line(&self.latency_ns.latency));
        if let Some(stream) = self.latency_ns.jitter_stream {
            let _ = writeln!(
                s,
                "jitter (us, RFC 3550): {} (the worst stream's, stream {stream})",
                us(self.latency_ns.jitter)
            );
        }
        match self.failed.as_slice() {
            [] => s.push_str("verdict: pass\n"),
            f => {
                let names: Vec<&str> = f.iter().map(|f| f.criterion).collect();
                let _ = writeln!(s, "verdict: fail ({})", names.join(", "));
            }
        }
        s.push_str("===================================================================\n");
        s
    }

    fn total(&self) -> Counts {
        Counts {
            sent: self.sent,
            received: self.received,
            lost: self.lost,
            duplicated: self.duplicated,
            reordered: self.reordered,
            corrupted: self.corrupted,
            late: self.late,
        }
    }

    /// `requested 10.00 Mpps, sent 5.80 Mpps (58%)` when the TX side fell short of the rate.
    pub fn shortfall(&self) -> Option<String> {
        let r = &self.rate;
        if r.reached != Some(false) {
            return None;
        }
        let requested_pps = units::pps(r.requested_pps?);
        let requested = if r.requested.ends_with("pps") {
            requested_pps
        } else {
            format!("{} = {requested_pps}", r.requested)
        };
        Some(format!(
            "requested {requested}, sent {} ({:.0}%)",
            units::pps(r.sent_pps),
            r.percent_of_requested?
        ))
    }
}

/// A time span as the summary shows it: `2.000 s`, `0.040 s`, `160 us`.
fn seconds(s: f64) -> String {
    if s >= 0.001 {
        format!("{s:.3} s")
    } else {
        format!("{:.0} us", s * 1e6)
    }
}

/// `latency (us): min 0.07  p50 ...`, or that there was nothing to measure.
fn latency_line(l: &Latency) -> String {
    if l.samples == 0 {
        return "latency: no samples (no frame of ours came back)\n".into();
    }
    format!(
        "latency (us): min {}  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}  ({} samples)\n",
        us(l.min),
        us(l.p50),
        us(l.p90),
        us(l.p99),
        us(l.p999),
        us(l.max),
        us(l.mean),
        l.samples
    )
}

/// The rate as the start line says it: `1.00 Mpps`, `max`, or a bit rate with the packet
/// rate it means at the mean frame size: `1.00 Gbit/s on the wire = 1.49 Mpps`.
pub fn describe_rate(rate: Rate, mean_size: f64) -> String {
    match (rate, rate.pps(mean_size)) {
        (Rate::Bps(_), Some(pps)) => format!("{rate} on the wire = {}", units::pps(pps)),
        _ => rate.to_string(),
    }
}

/// Latency measured in a trial at a fraction of the rate a search found (RFC 8219 and TRex's
/// NDR report measure it at 10, 50 and 90%).
#[derive(Debug, Clone, Serialize)]
pub struct LatencyPoint {
    /// Percent of the rate found.
    pub percent: u8,
    pub rate_pps: f64,
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub latency_ns: Latency,
}

/// The report of `--search ndr|pdr`: every trial, the rate found, the latency points, and the
/// whole run's counts (all trials together) as a plain run reports them.
#[derive(Debug, Serialize)]
pub struct SearchReport {
    /// `ndr` or `pdr` with its `loss_ratio`, and the search's bounds and resolution.
    pub search: SearchResult,
    /// Seconds each trial sent for.
    pub trial_s: f64,
    /// The rate found in packets per second, and in bits per second on the wire at the run's
    /// mean frame size (None: even the lowest rate tried lost frames).
    pub rate_pps: Option<f64>,
    pub rate_bps: Option<f64>,
    /// The generator's maximum, measured by a first trial at `--rate max` (None: the upper
    /// bound was a rate given).
    pub calibration_pps: Option<f64>,
    pub latency_points: Vec<LatencyPoint>,
    /// Frames of an earlier trial that arrived during a later one (counted in neither).
    pub stale: u64,
    /// Frames dropped by the test fixture (`--fixture-capacity-pps`).
    pub fixture_dropped: u64,
    /// Every trial together: the counts over all trials (frames of one trial that arrived
    /// during another are `stale` above and counted lost here), the time series over the
    /// whole search; its latency is the last trial's (the 90% latency point), since each
    /// trial's latency starts afresh.
    pub run: Report,
}

impl SearchReport {
    /// `pps` as bits per second on the wire, at frames of `mean_size` bytes.
    pub fn wire_bps(pps: f64, mean_size: f64) -> f64 {
        pps * (mean_size + WIRE_OVERHEAD as f64) * 8.0
    }

    /// What a search prints at its end: the trials, the rate found, the latency points.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let kind = match self.search.criterion {
            Criterion::Ndr => "NDR (no loss)".to_owned(),
            Criterion::Pdr { loss_ratio } => {
                format!("PDR (loss at most {}%)", loss_ratio * 100.0)
            }
        };
        let _ = writeln!(
            s,
            "\npktgen search: {kind}, trials of {}, resolution {}% ===========",
            seconds(self.trial_s),
            round(self.search.params.resolution * 100.0, 3)
        );
        let _ = writeln!(
            s,
            "{:>5} {:>14} {:>14} {:>12} {:>12} {:>10}  result",
            "trial", "offered", "judged at", "sent", "received", "lost"
        );
        for (i, t) in self.search.trials.iter().enumerate() {
            let _ = writeln!(
                s,
                "{:>5} {:>14} {:>14} {:>12} {:>12} {:>10}  {}",
                i + 1,
                units::pps(t.offered_pps),
                units::pps(t.judged_pps),
                t.sent,
                t.received,
                t.lost,
                if t.passed { "pass" } else { "fail" }
            );
        }
        match (self.rate_pps, self.rate_bps) {
            (Some(pps), Some(bps)) => {
                let _ = writeln!(
                    s,
                    "found: {} ({} on the wire at size {}){}",
                    units::pps(pps),
                    units::bits_per_s(bps),
                    self.run.size,
                    if self.search.limited_by_generator {
                        "; the device kept up with all the generator could send: its limit is higher"
                    } else {
                        ""
                    }
                );
            }
            _ => {
                let _ = writeln!(s, "found: nothing: even the lowest rate tried lost frames");
            }
        }
        for p in &self.latency_points {
            let l = &p.latency_ns;
            let _ = writeln!(
                s,
                "latency at {:>2}% ({}): min {} p50 {} p99 {} max {} us, {} lost",
                p.percent,
                units::pps(p.rate_pps),
                us(l.min),
                us(l.p50),
                us(l.p99),
                us(l.max),
                p.lost
            );
        }
        s.push_str("===================================================================\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::SizeSpec;
    use crate::verdict::LossLimit;
    use serde_json::Value;

    fn settings(rate: Rate) -> Settings {
        Settings {
            tx_port: 0,
            rx_port: 0,
            rate,
            size: SizeSpec::Fixed(64),
            flows: 1,
            count: Some(1000),
            duration: None,
            drain: std::time::Duration::ZERO,
            dst_mac: None,
            stats_period: 0,
            sample_ms: 100,
            report: None,
            criteria: Criteria::default(),
            frame: Default::default(),
            search: None,
            fixture_capacity_pps: None,
            ports: None,
            txq: 1,
            rxq: 1,
            tx_lcores: None,
            rx_lcores: None,
        }
    }

    fn measured(sent: u64, received: u64, tx_s: f64) -> Measured {
        let c = Counts {
            sent,
            received,
            lost: sent - received,
            ..Counts::default()
        };
        Measured {
            per_stream: vec![c],
            total: c,
            tx_bytes: sent * 64,
            rx_bytes: received * 64,
            elapsed_s: tx_s + 0.5,
            tx_s,
            rx_s: tx_s + 0.000_123_456_789,
            latency: Latency {
                samples: received,
                min: 68,
                p50: 74,
                p90: 95,
                p99: 3_659,
                p999: 31_455,
                max: 1_726_463,
                mean: 285,
            },
            ..Measured::default()
        }
    }

    /// Busy cycles over frames, in nanoseconds at the TSC's rate; in the report and its
    /// summary only when both sides moved frames.
    #[test]
    fn lcore_cost_per_frame() {
        // 2 GHz: 80 cycles a frame is 40 ns (25 Mpps a core), 150 is 75 ns.
        let c = LcoreCost::new((80_000, 1000), (150_000_000, 1_000_000), 2_000_000_000);
        assert_eq!(c.tx_ns_per_frame, 40.0);
        assert_eq!(c.rx_ns_per_frame, 75.0);
        assert_eq!(LcoreCost::new((5, 0), (0, 0), 1), LcoreCost::default());
        let mut m = measured(1000, 1000, 0.001);
        m.lcore_cost = c;
        let r = Report::new(m.clone(), &settings(Rate::Max));
        assert!(
            r.summary().contains(
                "lcore time per frame (busy loops): tx 40.0 ns (25.00 Mpps a core), \
                 rx 75.0 ns (13.33 Mpps a core)"
            ),
            "{}",
            r.summary()
        );
        let v: Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["lcore_cost"]["tx_ns_per_frame"], 40.0);
        assert_eq!(v["lcore_cost"]["rx_ns_per_frame"], 75.0);
        m.lcore_cost = LcoreCost::new((80_000, 1000), (0, 0), 2_000_000_000);
        assert!(!Report::new(m, &settings(Rate::Max))
            .summary()
            .contains("lcore time"));
    }

    #[test]
    fn a_rate_not_reached_is_said() {
        // 10 Mpps asked, 5.8 million frames in a second.
        let r = Report::new(
            measured(5_800_000, 5_800_000, 1.0),
            &settings(Rate::Pps(1e7)),
        );
        assert_eq!(r.rate.reached, Some(false));
        assert_eq!(
            r.shortfall().as_deref(),
            Some("requested 10.00 Mpps, sent 5.80 Mpps (58%)")
        );
        assert!(r
            .summary()
            .contains("\nrequested 10.00 Mpps, sent 5.80 Mpps (58%)\n"));
        let r = Report::new(
            measured(1_000_000, 1_000_000, 1.0),
            &settings(Rate::Bps(1e9)),
        );
        assert_eq!(
            r.shortfall().as_deref(),
            Some("requested 1.00 Gbit/s = 1.49 Mpps, sent 1.00 Mpps (67%)")
        );
    }

    #[test]
    fn a_rate_reached_or_max_says_nothing() {
        let r = Report::new(measured(995_000, 995_000, 1.0), &settings(Rate::Pps(1e6)));
        assert_eq!((r.rate.reached, r.shortfall()), (Some(true), None));
        let r = Report::new(measured(4, 4, 5.0), &settings(Rate::Pps(1.0)));
        assert_eq!(r.rate.reached, Some(true), "one frame short of a slow rate");
        let r = Report::new(measured(10, 10, 1.0), &settings(Rate::Max));
        assert_eq!((r.rate.reached, r.shortfall()), (None, None));
        assert!(!r.summary().contains("requested"));
    }

    #[test]
    fn the_summary_reads_in_units() {
        let r = Report::new(measured(20_000, 20_000, 0.02), &settings(Rate::Pps(1e6)));
        let s = r.summary();
        for line in [
            "tx: 20000 frames, 1.28 MB in 0.020 s: 1.00 Mpps, 672.00 Mbit/s on the wire",
            "latency (us): min 0.07  p50 0.07  p90 0.10  p99 3.66  p99.9 31.45  max 1726.46  mean 0.28  (20000 samples)",
            "verdict: pass",
        ] {
            assert!(s.lines().any(|l| l == line), "{line:?} in\n{s}");
        }
        assert!(!s.contains("Pps(") && !s.contains("Bps("), "{s}");
    }

    #[test]
    fn the_report_is_rounded_and_carries_the_verdict() {
        let mut st = settings(Rate::Pps(1e6));
        st.criteria.max_loss = LossLimit::Frames(5);
        let r = Report::new(measured(1000, 990, 0.001), &st);
        assert!(!r.passed());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["verdict"], "fail");
        assert_eq!(v["failed"][0]["criterion"], "max_loss");
        assert_eq!(v["criteria"]["max_loss"], "5");
        assert_eq!(v["rate"]["requested"], "1.00 Mpps");
        assert_eq!(v["rate"]["requested_pps"], 1e6);
        assert_eq!(v["rx_s"], 0.001123);
        assert_eq!(v["tx_pps"], 1e6);
        assert_eq!(v["latency_ns"]["mean"], 285);
        let text = v.to_string();
        assert!(!text.contains("Pps(") && !text.contains("Bps("), "{text}");
    }

    #[test]
    fn no_samples_no_latency_line_of_zeros() {
        let r = Report::new(measured(300, 0, 0.1), &settings(Rate::Max));
        let s = r.summary();
        assert!(
            s.contains("latency: no samples (no frame of ours came back)"),
            "{s}"
        );
        assert!(s.contains("verdict: fail (max_loss)"), "{s}");
    }

    #[test]
    fn per_stream_latency_and_the_worst_jitter() {
        let mut m = measured(300, 300, 0.1);
        let c = m.per_stream[0];
        m.per_stream = vec![c; 3];
        let l = |samples, jitter| StreamLatency {
            samples,
            min: 60,
            mean: 80,
            max: 900,
            p50: 75,
            p99: 850,
            jitter,
        };
        // Stream 0 had no sample; streams 1 and 2 tie for the worst jitter.
        m.stream_latency = vec![l(0, 0), l(100, 1250), l(100, 1250)];
        m.histogram = "HISTFAAAxyz".into();
        let r = Report::new(m.clone(), &settings(Rate::Max));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["latency_ns"]["jitter"], 1250);
        assert_eq!(
            v["latency_ns"]["jitter_stream"], 1,
            "the first of the worst"
        );
        assert_eq!(v["latency_ns"]["histogram"], "HISTFAAAxyz");
        assert_eq!(v["latency_ns"]["p99"], 3_659, "the global fields stay");
        assert_eq!(v["streams"][1]["latency_ns"]["p99"], 850);
        assert_eq!(v["streams"][2]["latency_ns"]["jitter"], 1250);
        assert_eq!(v["streams"][0]["latency_ns"]["samples"], 0);
        assert_eq!(v["streams"][0]["received"], 300, "the counts stay flat");
        let s = r.summary();
        let line = "jitter (us, RFC 3550): 1.25 (the worst stream's, stream 1)";
        assert!(s.lines().any(|l| l == line), "{line:?} in\n{s}");
        // No stream measured: no jitter line, a null stream.
        m.stream_latency.clear();
        let r = Report::new(m, &settings(Rate::Max));
        assert!(!r.summary().contains("jitter"));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["latency_ns"]["jitter_stream"], Value::Null);
        assert_eq!(v["streams"][1]["latency_ns"]["samples"], 0);
    }

    #[test]
    fn rates_described() {
        assert_eq!(describe_rate(Rate::Pps(1e6), 64.0), "1.00 Mpps");
        assert_eq!(describe_rate(Rate::Max, 64.0), "max");
        assert_eq!(
            describe_rate(Rate::Bps(10e9), 64.0),
            "10.00 Gbit/s on the wire = 14.88 Mpps"
        );
    }
}
