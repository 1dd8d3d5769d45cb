//! pktgen's receive side: what came back, exactly.
//!
//! Per stream (flow), for frames that parse as ours ([`crate::pktgen::parse_frame`]):
//!
//! * **received**: intact frames, duplicates included;
//! * **duplicated**: a sequence number seen before on that stream;
//! * **reordered**: a frame older than the newest one already seen (not a duplicate);
//! * **corrupted**: the payload CRC or the IP/UDP checksum fails (not counted as received);
//! * **lost**: decided at the end, after the drain wait: sent minus distinct sequence numbers
//!   received.
//!
//! Frames that are not ours (another protocol, another port, a stream we did not send) are
//! counted as `foreign`, never mistaken for ours. One-way latency (receive TSC minus the
//! transmit TSC in the payload; both ends on one host share the TSC) goes into an HDR
//! histogram in nanoseconds.
//!
//! Sequence numbers are 32 bits on the wire and extended to 64 bits per stream (nearest to the
//! newest seen), so a run longer than 2^32 frames per stream is still counted exactly. Seen
//! sequence numbers are kept in a bitmap: one bit per frame sent.

use crate::pktgen::{parse_frame, Parsed};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Clone)]
struct StreamRx {
    seen: Vec<u64>,
    newest: Option<u64>,
    received: u64,
    duplicated: u64,
    reordered: u64,
    corrupted: u64,
}

impl StreamRx {
    /// Extends a 32-bit wire sequence number to the 64-bit one nearest to the newest seen.
    fn extend(&self, seq: u32) -> u64 {
        let Some(newest) = self.newest else {
            return seq as u64;
        };
        let base = newest & !0xffff_ffff;
        let candidates = [
            base.wrapping_sub(1 << 32) | seq as u64,
            base | seq as u64,
            base.wrapping_add(1 << 32) | seq as u64,
        ];
        *candidates
            .iter()
            .filter(|&&c| c < (1u64 << 63))
            .min_by_key(|&&c| c.abs_diff(newest))
            .expect("base | seq is always a candidate")
    }

    fn record(&mut self, seq: u32) {
        let s = self.extend(seq);
        let (word, bit) = ((s / 64) as usize, s % 64);
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        self.received += 1;
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicated += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        match self.newest {
            Some(n) if s < n => self.reordered += 1,
            _ => self.newest = Some(s),
        }
    }

    fn distinct(&self) -> u64 {
        self.received - self.duplicated
    }
}

/// Counts of one stream, or of all.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counts {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub corrupted: u64,
}

/// Latency percentiles in nanoseconds.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub samples: u64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

/// The receive side's state.
pub struct Analyzer {
    streams: Vec<StreamRx>,
    foreign: u64,
    /// Corrupted frames whose stream id is out of range.
    corrupted_unattributed: u64,
    latency: Histogram<u64>,
    tsc_hz: u64,
}

impl Analyzer {
    /// An analyzer for `streams` streams, converting TSC deltas at `tsc_hz`.
    pub fn new(streams: usize, tsc_hz: u64) -> Self {
        Analyzer {
            streams: vec![StreamRx::default(); streams],
            foreign: 0,
            corrupted_unattributed: 0,
            latency: Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid bounds"),
            tsc_hz: tsc_hz.max(1),
        }
    }

    /// Classifies and counts one received frame, received at TSC `rx_tsc`.
    pub fn record(&mut self, frame: &[u8], rx_tsc: u64) {
        match parse_frame(frame) {
            Parsed::Foreign => self.foreign += 1,
            Parsed::Corrupted { stream } => match self.streams.get_mut(stream as usize) {
                Some(s) => s.corrupted += 1,
                None => self.corrupted_unattributed += 1,
            },
            Parsed::Test { stream, seq, tsc } => match self.streams.get_mut(stream as usize) {
                None => self.foreign += 1,
                Some(s) => {
                    s.record(seq);
                    if rx_tsc >= tsc {
                        let ns =
                            ((rx_tsc - tsc) as u128 * 1_000_000_000 / self.tsc_hz as u128) as u64;
                        self.latency.saturating_record(ns.max(1));
                    }
                }
            },
        }
    }

    /// Frames that were not ours.
    pub fn foreign(&self) -> u64 {
        self.foreign
    }

    /// Intact frames of ours received so far.
    pub fn received(&self) -> u64 {
        self.streams.iter().map(|s| s.received).sum()
    }

    /// Distinct frames of ours received so far.
    pub fn distinct(&self) -> u64 {
        self.streams.iter().map(|s| s.distinct()).sum()
    }

    /// Per-stream and total counts, given what was sent on each stream.
    pub fn counts(&self, sent: &[u64]) -> (Vec<Counts>, Counts) {
        let mut total = Counts {
            corrupted: self.corrupted_unattributed,
            ..Counts::default()
        };
        let per: Vec<Counts> = self
            .streams
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let sent = sent.get(i).copied().unwrap_or(0);
                let c = Counts {
                    sent,
                    received: s.received,
                    lost: sent.saturating_sub(s.distinct()),
                    duplicated: s.duplicated,
                    reordered: s.reordered,
                    corrupted: s.corrupted,
                };
                total.sent += c.sent;
                total.received += c.received;
                total.lost += c.lost;
                total.duplicated += c.duplicated;
                total.reordered += c.reordered;
                total.corrupted += c.corrupted;
                c
            })
            .collect();
        (per, total)
    }

    /// Latency percentiles so far.
    pub fn latency(&self) -> Latency {
        let h = &self.latency;
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            samples: h.len(),
            min: h.min(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktgen::{buf_len, build_frame, EtherAddrs, Flow};

    const ETH: EtherAddrs = EtherAddrs {
        dst: [2, 0, 0, 0, 0, 1],
        src: [2, 0, 0, 0, 0, 2],
    };
    const HZ: u64 = 1_000_000_000; // 1 cycle = 1 ns

    fn f(stream: u16, seq: u32, tsc: u64) -> Vec<u8> {
        let mut v = vec![0u8; buf_len(128)];
        build_frame(&mut v, &ETH, &Flow::nth(stream), stream, seq, tsc);
        v
    }

    fn feed(a: &mut Analyzer, stream: u16, seqs: &[u32]) {
        for &s in seqs {
            a.record(&f(stream, s, 1000), 1000 + 500);
        }
    }

    #[test]
    fn clean_run() {
        let mut a = Analyzer::new(1, HZ);
        feed(&mut a, 0, &(0..100).collect::<Vec<_>>());
        let (_, t) = a.counts(&[100]);
        assert_eq!(
            t,
            Counts {
                sent: 100,
                received: 100,
                ..Default::default()
            }
        );
        let l = a.latency();
        assert_eq!(l.samples, 100);
        assert_eq!((l.p50, l.p99, l.max), (500, 500, 500));
    }

    #[test]
    fn loss_duplicates_and_reordering_counted_exactly() {
        let mut a = Analyzer::new(2, HZ);
        // stream 0: 0..10 sent; 3 and 7 lost, 5 duplicated twice, 8 before 6 (6 reordered).
        feed(&mut a, 0, &[0, 1, 2, 4, 5, 5, 5, 8, 6, 9]);
        // stream 1: 0..5 sent, all arrive in reverse: 4 reordered.
        feed(&mut a, 1, &[4, 3, 2, 1, 0]);
        let (per, t) = a.counts(&[10, 5]);
        // Distinct: 0,1,2,4,5,6,8,9 = 8 of 10, so 2 lost (3 and 7).
        assert_eq!(
            per[0],
            Counts {
                sent: 10,
                received: 10,
                lost: 2,
                duplicated: 2,
                reordered: 1,
                corrupted: 0
            }
        );
        assert_eq!(per[1].reordered, 4);
        assert_eq!(per[1].lost, 0);
        assert_eq!(t.sent, 15);
        assert_eq!(t.duplicated, 2);
        assert_eq!(t.lost, 2);
    }

    #[test]
    fn corruption_is_counted_apart() {
        let mut a = Analyzer::new(1, HZ);
        let mut bad = f(0, 1, 1000);
        let n = bad.len();
        bad[n - 1] ^= 1;
        a.record(&f(0, 0, 1000), 2000);
        a.record(&bad, 2000);
        a.record(&f(0, 2, 1000), 2000);
        let (_, t) = a.counts(&[3]);
        assert_eq!(t.corrupted, 1);
        assert_eq!(t.received, 2);
        assert_eq!(
            t.lost, 1,
            "a corrupted frame did not arrive intact: it is lost"
        );
    }

    #[test]
    fn foreign_frames_are_not_mistaken() {
        let mut a = Analyzer::new(1, HZ);
        a.record(&[0xffu8; 60], 0); // garbage
        let mut arp = f(0, 0, 0);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        a.record(&arp, 0);
        a.record(&f(5, 0, 0), 0); // a stream we did not send
        a.record(&[0u8; 10], 0); // runt
        assert_eq!(a.foreign(), 4);
        assert_eq!(a.received(), 0);
        let (_, t) = a.counts(&[0]);
        assert_eq!(t.corrupted, 0);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut s = StreamRx::default();
        for seq in [u32::MAX - 2, u32::MAX - 1, u32::MAX, 0, 1] {
            s.record(seq);
        }
        assert_eq!(s.newest, Some((1u64 << 32) + 1));
        assert_eq!((s.reordered, s.duplicated), (0, 0));
    }

    #[test]
    fn latency_percentiles() {
        let mut a = Analyzer::new(1, HZ);
        for i in 0..1000u32 {
            a.record(&f(0, i, 0), (i as u64 + 1) * 1000);
        }
        let l = a.latency();
        assert_eq!(l.samples, 1000);
        let near = |v: u64, want: u64| (v as f64 - want as f64).abs() / want as f64 <= 0.002;
        assert!(near(l.p50, 500_000), "{l:?}");
        assert!(near(l.p90, 900_000), "{l:?}");
        assert!(near(l.p99, 990_000), "{l:?}");
        assert!(near(l.max, 1_000_000), "{l:?}");
    }
}
