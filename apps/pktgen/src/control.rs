//! pktgen's runtime control: the requests of its control socket (`--control PATH`), the
//! atomics through which the control thread steers the TX side, and the `stats` it reports
//! (on the socket and as `/pktgen/stats` on DPDK's telemetry socket).
//!
//! The socket is l2fwd's server (`dataplane::ctlsock`) with pktgen's [`PktgenProtocol`]: one
//! JSON object per line, `{"cmd":"start"}`, `{"cmd":"stop"}`, `{"cmd":"rate","rate":"1Mpps"}`,
//! `{"cmd":"stats"}`, answered `{"ok":true,"result":...}` or `{"ok":false,"error":"..."}`, with
//! the same safety (mode 0600 from the start, bounded lines, a request deadline, a connection
//! cap).
//!
//! * `stop` pauses transmission: the TX side sends what it had built and then no new frame
//!   until `start`; the RX side keeps analysing, and the run does not end. The answer comes
//!   once the TX side has stopped, so the `tx` it reports stays put until `start`.
//! * `start` resumes (and starts a run begun with `--paused`).
//! * `rate R` sets the token bucket's rate, in `--rate`'s syntax; a rate `--rate` would refuse
//!   is refused, and the old one kept.
//! * `stats`: the counters so far (see [`Stats`]).
//!
//! `--count` counts frames sent, so a pause postpones the end of a `--count` run; `--duration`
//! counts wall-clock time from the start, pauses included, so a `--duration` run ends on time
//! whether paused or not.
//!
//! The TX lcore reads the control word and the rate once per burst (two relaxed loads): no
//! lock and no system call on its path. The control thread is their only writer.

use crate::frames::Rate;
use dataplane::ctlsock::Protocol;
use pmd::TelValue;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};

/// A request on pktgen's control socket (one JSON object per line).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "cmd", deny_unknown_fields)]
pub enum Request {
    // Struct variants (not unit ones), so that unknown fields are refused for them too.
    #[serde(rename = "start")]
    Start {},
    #[serde(rename = "stop")]
    Stop {},
    /// The new rate, as `--rate` takes it (`max`, `10Kpps`, `1Gbps`, a plain number in pps).
    #[serde(rename = "rate")]
    Rate { rate: String },
    #[serde(rename = "stats")]
    Stats {},
}

/// pktgen's control socket: [`Request`]s, answered with a JSON result or an error message.
pub struct PktgenProtocol;

impl Protocol for PktgenProtocol {
    type Request = Request;
    type Answer = Result<Value, String>;
    fn answer(outcome: Self::Answer) -> Value {
        match outcome {
            Ok(v) => json!({"ok": true, "result": v}),
            Err(e) => json!({"ok": false, "error": e}),
        }
    }
}

/// The control thread's hold on the TX side: whether it may send, and at what rate.
///
/// The control thread is the only writer of `word` and `rate`; each TX side reads both once per
/// burst, and writes only its own `ack`.
#[derive(Debug)]
pub struct TxControl {
    /// `generation << 1 | paused`: every pause or resume is a new word, so an acknowledgement
    /// of an earlier pause never passes for one of the latest.
    word: AtomicU64,
    /// Per TX side, the last paused word it has acted on: it holds no frame it built and has
    /// not handed to its queue, and builds none until the word changes. One cache line each:
    /// written by its side only.
    ack: Box<[PaddedAck]>,
    /// The token bucket's rate in packets/s, as `f64` bits; 0 (no valid rate is 0): max.
    rate: AtomicU64,
}

impl TxControl {
    /// Paused (until [`Self::set_paused`]`(false)`) or not, at `pps` (None: max), for `sides`
    /// TX sides (at least 1) that share the rate.
    pub fn new(paused: bool, pps: Option<f64>, sides: usize) -> Self {
        TxControl {
            word: AtomicU64::new(u64::from(paused)),
            ack: (0..sides.max(1))
                .map(|_| PaddedAck(AtomicU64::new(u64::MAX)))
                .collect(),
            rate: AtomicU64::new(rate_bits(pps)),
        }
    }

    /// TX side, once per burst: the control word ([`Self::is_paused`] says what it means).
    #[inline]
    pub fn word(&self) -> u64 {
        // Relaxed: the word carries no data the TX side reads; it is a flag, seen one burst
        // later at worst.
        self.word.load(Ordering::Relaxed)
    }

    /// Whether `word` pauses transmission.
    #[inline]
    pub fn is_paused(word: u64) -> bool {
        word & 1 == 1
    }

    /// TX side `side`: it has acted on the paused `word` (nothing of its own in flight,
    /// nothing new to be built). Called once per word.
    pub fn acknowledge(&self, side: usize, word: u64) {
        // Release: the TX side's counters (tx_total, added before this) are complete when the
        // control thread, reading `ack` with Acquire, sees this word.
        if let Some(a) = self.ack.get(side) {
            a.0.store(word, Ordering::Release);
        }
    }

    /// TX side, once per burst: the rate as [`Self::pps_of`] reads it; compare with the last
    /// one seen to know when to rebuild the token bucket.
    #[inline]
    pub fn rate_bits(&self) -> u64 {
        // Relaxed: the rate is the whole message, one word, never torn.
        self.rate.load(Ordering::Relaxed)
    }

    /// The rate `bits` (from [`Self::rate_bits`]) stands for, in packets/s; None: max.
    pub fn pps_of(bits: u64) -> Option<f64> {
        (bits != 0).then(|| f64::from_bits(bits))
    }

    /// Control thread: pauses or resumes; returns the new word, for [`Self::acked`].
    pub fn set_paused(&self, paused: bool) -> u64 {
        // Relaxed load: the control thread is the only writer, so it reads its own last store.
        let generation = (self.word.load(Ordering::Relaxed) >> 1).wrapping_add(1);
        let word = generation << 1 | u64::from(paused);
        // Relaxed: see `word`.
        self.word.store(word, Ordering::Relaxed);
        word
    }

    /// Control thread: whether transmission is paused (as last set).
    pub fn paused(&self) -> bool {
        // Relaxed: the control thread reads its own last store.
        Self::is_paused(self.word.load(Ordering::Relaxed))
    }

    /// Control thread: whether TX side `side` has acted on `word` (from
    /// [`Self::set_paused`]).
    pub fn acked(&self, side: usize, word: u64) -> bool {
        // Acquire: pairs with the Release in `acknowledge`.
        self.ack
            .get(side)
            .is_some_and(|a| a.0.load(Ordering::Acquire) == word)
    }

    /// Control thread: the TX side takes `pps` (None: max) from its next burst on.
    pub fn set_rate(&self, pps: Option<f64>) {
        // Relaxed: see `rate_bits`.
        self.rate.store(rate_bits(pps), Ordering::Relaxed);
    }
}

/// One TX side's acknowledgement, alone in its cache lines (two: the adjacent-line prefetcher).
#[derive(Debug)]
#[repr(C, align(128))]
struct PaddedAck(AtomicU64);

fn rate_bits(pps: Option<f64>) -> u64 {
    pps.map_or(0, f64::to_bits)
}

/// The rate setting of a run as the control thread keeps it: the [`Rate`] asked for and what
/// it means in packets/s for the run's frame sizes.
#[derive(Debug, Clone, Copy)]
pub struct RateSetting {
    pub rate: Rate,
    /// None: max.
    pub pps: Option<f64>,
}

impl RateSetting {
    /// `text` in `--rate`'s syntax, for frames of `mean_size` bytes on average.
    pub fn parse(text: &str, mean_size: f64) -> Result<Self, String> {
        let rate: Rate = text.parse()?;
        Ok(Self::new(rate, mean_size))
    }

    pub fn new(rate: Rate, mean_size: f64) -> Self {
        RateSetting {
            rate,
            pps: rate.pps(mean_size),
        }
    }
}

/// Whether the TX side is sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TxState {
    Running,
    /// Stopped by `stop` (or `--paused`) until `start`.
    Paused,
    /// Done sending: its `--count` was sent, its `--duration` is over, or a signal stopped it.
    Done,
}

impl TxState {
    pub fn as_str(self) -> &'static str {
        match self {
            TxState::Running => "running",
            TxState::Paused => "paused",
            TxState::Done => "done",
        }
    }
}

/// The `stats` answer and `/pktgen/stats`: the run so far.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub state: TxState,
    /// The rate setting, as `--rate` shows it (`max`, `1.00 Mpps`, `1.00 Gbit/s`).
    pub rate: String,
    /// The rate setting in packets/s (rounded); absent for max.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_pps: Option<u64>,
    /// Since the run started.
    pub elapsed_ms: u64,
    /// Frames sent.
    pub tx: u64,
    /// Frames received (ours and foreign).
    pub rx: u64,
    /// Frames sent and not (yet) received: in flight or lost.
    pub missing_so_far: u64,
    /// The analyzer's exact counts so far (a few times a second): frames of ours received more
    /// than once, out of order, with a payload that fails its check.
    pub duplicated: u64,
    pub reordered: u64,
    pub corrupted: u64,
    /// Over the last whole second.
    pub tx_pps: u64,
    pub rx_pps: u64,
    /// One-way latency percentiles so far, in nanoseconds (0 before any sample).
    pub latency_p50_ns: u64,
    pub latency_p99_ns: u64,
}

impl Stats {
    /// The JSON of the `stats` answer.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|e| json!({"error": e.to_string()}))
    }

    /// `/pktgen/stats`: the same fields, in DPDK 22.11 telemetry's types (no floats).
    pub fn telemetry(&self) -> TelValue {
        let mut d = vec![
            ("state".to_owned(), TelValue::from(self.state.as_str())),
            ("rate".to_owned(), TelValue::from(self.rate.as_str())),
        ];
        if let Some(pps) = self.rate_pps {
            d.push(("rate_pps".to_owned(), pps.into()));
        }
        for (k, v) in [
            ("elapsed_ms", self.elapsed_ms),
            ("tx", self.tx),
            ("rx", self.rx),
            ("missing_so_far", self.missing_so_far),
            ("duplicated", self.duplicated),
            ("reordered", self.reordered),
            ("corrupted", self.corrupted),
            ("tx_pps", self.tx_pps),
            ("rx_pps", self.rx_pps),
            ("latency_p50_ns", self.latency_p50_ns),
            ("latency_p99_ns", self.latency_p99_ns),
        ] {
            d.push((k.to_owned(), v.into()));
        }
        TelValue::Dict(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::ctlsock::parse_line;

    #[test]
    fn requests_parse_and_bad_ones_say_why() {
        let p = |s: &str| parse_line::<Request>(s.as_bytes());
        assert_eq!(p(r#"{"cmd":"start"}"#), Ok(Request::Start {}));
        assert_eq!(p(r#"{"cmd":"stop"}"#), Ok(Request::Stop {}));
        assert_eq!(p(r#"{"cmd":"stats"}"#), Ok(Request::Stats {}));
        assert_eq!(
            p(r#"{"cmd":"rate","rate":"1Mpps"}"#),
            Ok(Request::Rate {
                rate: "1Mpps".into()
            })
        );
        let e = p(r#"{"cmd":"dma list"}"#).unwrap_err();
        assert!(
            e.contains("unknown variant `dma list`") && e.contains("`rate`"),
            "{e}"
        );
        assert!(p(r#"{"cmd":"rate"}"#)
            .unwrap_err()
            .contains("missing field `rate`"));
        assert!(p(r#"{"cmd":"stop","x":1}"#).is_err());
        assert!(p("not json").unwrap_err().starts_with("invalid request"));
    }

    #[test]
    fn answers_are_ok_result_or_error() {
        assert_eq!(
            PktgenProtocol::answer(Ok(json!({"tx": 1}))),
            json!({"ok": true, "result": {"tx": 1}})
        );
        assert_eq!(
            PktgenProtocol::answer(Err("no".into())),
            json!({"ok": false, "error": "no"})
        );
    }

    #[test]
    fn pause_words_are_new_each_time_and_acks_match_only_their_own() {
        let c = TxControl::new(false, None, 2);
        assert!(!TxControl::is_paused(c.word()));
        let first = c.set_paused(true);
        assert!(TxControl::is_paused(c.word()) && c.paused());
        assert!(!c.acked(0, first));
        c.acknowledge(0, first);
        assert!(c.acked(0, first));
        assert!(!c.acked(1, first), "each side acknowledges for itself");
        assert!(!c.acked(2, first), "no such side");
        c.set_paused(false);
        let second = c.set_paused(true);
        assert_ne!(first, second);
        assert!(
            !c.acked(0, second),
            "an old pause's ack passed for the new one"
        );
        assert!(TxControl::is_paused(TxControl::new(true, None, 1).word()));
    }

    #[test]
    fn rates_travel_as_one_word() {
        let c = TxControl::new(false, Some(1000.0), 1);
        assert_eq!(TxControl::pps_of(c.rate_bits()), Some(1000.0));
        c.set_rate(None);
        assert_eq!(TxControl::pps_of(c.rate_bits()), None);
        let s = RateSetting::parse("1Gbps", 64.0).unwrap();
        assert_eq!(s.pps.map(|p| p.round()), Some(1_488_095.0));
        assert!(RateSetting::parse("0pps", 64.0).is_err());
        assert!(RateSetting::parse("1M", 64.0).is_err());
        assert_eq!(RateSetting::parse("max", 64.0).unwrap().pps, None);
    }

    #[test]
    fn telemetry_has_no_floats_and_leaves_out_a_max_rate() {
        let s = Stats {
            state: TxState::Paused,
            rate: "max".into(),
            rate_pps: None,
            elapsed_ms: 5,
            tx: 10,
            rx: 9,
            missing_so_far: 1,
            duplicated: 0,
            reordered: 3,
            corrupted: 0,
            tx_pps: 2,
            rx_pps: 2,
            latency_p50_ns: 100,
            latency_p99_ns: 200,
        };
        let TelValue::Dict(d) = s.telemetry() else {
            panic!("not a dict")
        };
        assert!(!d.iter().any(|(k, _)| k == "rate_pps"));
        assert!(d.contains(&("state".into(), TelValue::from("paused"))));
        assert!(d.contains(&("tx".into(), TelValue::U64(10))));
        let j = s.to_json();
        assert_eq!(j["state"], "paused");
        assert_eq!(j["missing_so_far"], 1);
        assert_eq!(j["reordered"], 3);
        assert!(j.get("rate_pps").is_none());
    }
}
