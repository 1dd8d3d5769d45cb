//! Property tests (issue 9, "Random input") for what pktgen takes from the outside world: the
//! frames it receives (the analyzer's parser and counters) and its option parsers (rates,
//! sizes, MAC addresses, periods). The property everywhere: no panic, an error (or `foreign`)
//! where the input is not valid, and the counts stay exact and bounded.

use pktgen::analyzer::{Analyzer, WINDOW};
use pktgen::frames::{
    buf_len, build_frame, check_drain_ms, check_stats_period, parse_duration_s, parse_frame,
    parse_mac, EtherAddrs, Flow, Parsed, Rate, SizeSpec, TokenBucket, MAGIC, MAX_FRAME, MIN_FRAME,
    PAYLOAD_OFF,
};
use proptest::prelude::*;
use std::collections::HashSet;

const ETH: EtherAddrs = EtherAddrs {
    dst: [2, 0, 0, 0, 0, 1],
    src: [2, 0, 0, 0, 0, 2],
};

fn frame(size: usize, stream: u16, seq: u32, tsc: u64) -> Vec<u8> {
    let mut v = vec![0u8; buf_len(size)];
    build_frame(&mut v, &ETH, &Flow::nth(stream), stream, seq, tsc);
    v
}

/// Whether `f` has our magic where some frame kind (VLAN or not, IPv4 or IPv6, UDP or TCP)
/// puts the test payload.
fn has_magic(f: &[u8]) -> bool {
    let offs = [PAYLOAD_OFF, 46, 54, 58, 62, 66, 74, 78];
    offs.iter()
        .any(|&o| f.get(o..o + 2) == Some(&MAGIC.to_be_bytes()[..]))
}

proptest! {
    /// Arbitrary bytes: never a panic; without our magic, foreign.
    #[test]
    fn parse_frame_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let p = parse_frame(&bytes);
        if !has_magic(&bytes) {
            prop_assert_eq!(p, Parsed::Foreign);
        }
        let mut a = Analyzer::new(3, 1_000_000_000);
        a.record(&bytes, u64::MAX);
        a.record(&bytes, 0);
        let (_, t) = a.counts(&[0, 0, 0]);
        prop_assert_eq!(t.received + t.corrupted + a.foreign(), 2);
    }

    /// Arbitrary bytes behind a valid Ethernet/IPv4/UDP header to our port and our magic: the
    /// deepest the parser goes. Never a panic, never taken as intact unless it is one of ours.
    #[test]
    fn parse_frame_takes_any_payload(
        size in MIN_FRAME..=MAX_FRAME,
        tail in proptest::collection::vec(any::<u8>(), 0..1600),
    ) {
        let mut f = frame(size, 1, 2, 3);
        let keep = PAYLOAD_OFF + 2;
        f.truncate(keep);
        f.extend_from_slice(&tail);
        match parse_frame(&f) {
            Parsed::Test { .. } => prop_assert_eq!(&f, &frame(size, 1, 2, 3)),
            Parsed::Corrupted { .. } | Parsed::Foreign => {}
        }
    }

    /// One of our frames, truncated, extended or with one byte changed after the MAC addresses:
    /// never a panic, and never taken as intact.
    #[test]
    fn damaged_frames_are_never_intact(
        size in MIN_FRAME..=MAX_FRAME,
        stream: u16,
        seq: u32,
        tsc: u64,
        at in any::<prop::sample::Index>(),
        x in 1u8..=255,
        cut in 0usize..1600,
        extra in proptest::collection::vec(any::<u8>(), 1..8),
    ) {
        let good = frame(size, stream, seq, tsc);
        prop_assert_eq!(
            parse_frame(&good),
            Parsed::Test { stream, seq, tsc: tsc & pktgen::frames::TSC_MASK }
        );
        let mut flipped = good.clone();
        let i = 12 + at.index(good.len() - 12);
        flipped[i] ^= x;
        prop_assert!(!matches!(parse_frame(&flipped), Parsed::Test { .. }), "byte {}", i);
        let short = &good[..cut.min(good.len() - 1)];
        prop_assert!(!matches!(parse_frame(short), Parsed::Test { .. }), "cut at {}", short.len());
        let mut long = good.clone();
        long.extend_from_slice(&extra);
        prop_assert!(!matches!(parse_frame(&long), Parsed::Test { .. }), "{} more", extra.len());
    }

    /// Counts are exact against a model when every frame is within the window, whatever the
    /// order and the repeats; memory is one window per stream that saw a frame.
    #[test]
    fn counts_match_a_model_within_the_window(
        frames in proptest::collection::vec((0u16..3, 0u32..200), 0..400),
    ) {
        let mut a = Analyzer::new(3, 1_000_000_000);
        let mut seen = [HashSet::new(), HashSet::new(), HashSet::new()];
        let mut newest: [Option<u32>; 3] = [None; 3];
        let (mut dup, mut reord) = ([0u64; 3], [0u64; 3]);
        for &(s, q) in &frames {
            a.record(&frame(64, s, q, 0), 1);
            let i = s as usize;
            if !seen[i].insert(q) {
                dup[i] += 1;
            } else if newest[i].is_some_and(|n| q < n) {
                reord[i] += 1;
            } else {
                newest[i] = Some(q);
            }
        }
        let sent = [200u64; 3];
        let (per, _) = a.counts(&sent);
        for i in 0..3 {
            prop_assert_eq!(per[i].received, frames.iter().filter(|f| f.0 as usize == i).count() as u64);
            prop_assert_eq!(per[i].duplicated, dup[i]);
            prop_assert_eq!(per[i].reordered, reord[i]);
            prop_assert_eq!(per[i].late, 0);
            prop_assert_eq!(per[i].lost, 200 - seen[i].len() as u64);
        }
        let live = seen.iter().filter(|s| !s.is_empty()).count();
        prop_assert_eq!(a.memory_bytes(), live * (WINDOW / 8) as usize);
    }

    /// Any sequence numbers at all (stale, wrapped, far ahead), with or without the sender's
    /// count: the books balance and memory stays bounded.
    #[test]
    fn any_sequence_numbers_keep_the_books_and_the_memory(
        frames in proptest::collection::vec((0u16..4, any::<u32>()), 0..200),
        built in prop::option::of(any::<u64>()),
    ) {
        let mut a = Analyzer::new(3, 1_000_000_000);
        if let Some(b) = built {
            a.set_built(b);
        }
        for &(s, q) in &frames {
            a.record(&frame(64, s, q, q as u64), u64::MAX);
        }
        prop_assert!(a.memory_bytes() <= 3 * (WINDOW / 8) as usize);
        let sent = [u64::MAX / 4; 3];
        let (per, t) = a.counts(&sent);
        prop_assert_eq!(t.received + a.foreign(), frames.len() as u64);
        for c in &per {
            prop_assert!(c.duplicated + c.late <= c.received);
            prop_assert_eq!(c.lost, c.sent - (c.received - c.duplicated - c.late));
        }
    }

    /// `--size`: any string, never a panic; what is accepted is a valid size.
    #[test]
    fn size_parser_takes_any_string(s in ".*") {
        if let Ok(spec) = s.parse::<SizeSpec>() {
            for n in 0..24 {
                prop_assert!((MIN_FRAME..=MAX_FRAME).contains(&spec.size_of(n)));
            }
            prop_assert_eq!(spec.to_string().parse::<SizeSpec>(), Ok(spec));
        }
    }

    /// `--size MIN-MAX` and `--size BYTES` against an oracle.
    #[test]
    fn size_parser_matches_an_oracle(a in 0usize..3000, b in prop::option::of(0usize..3000)) {
        let ok = |n: usize| (MIN_FRAME..=MAX_FRAME).contains(&n);
        match b {
            None => {
                let want = ok(a).then_some(SizeSpec::Fixed(a));
                prop_assert_eq!(a.to_string().parse::<SizeSpec>().ok(), want);
            }
            Some(b) => {
                let want = (ok(a) && ok(b) && a <= b).then_some(SizeSpec::Range(a, b));
                prop_assert_eq!(format!("{a}-{b}").parse::<SizeSpec>().ok(), want);
            }
        }
    }

    /// `--rate`: any string, never a panic; what is accepted drives a token bucket that
    /// neither overflows nor starves.
    #[test]
    fn rate_parser_takes_any_string(s in ".*|[0-9.eE+-]{1,12}[kKmMgG]?(pps|bps)?") {
        if let Ok(r) = s.parse::<Rate>() {
            for spec in [SizeSpec::Fixed(64), SizeSpec::Imix, SizeSpec::Fixed(1518)] {
                if let Some(pps) = r.pps(spec.mean()) {
                    prop_assert!(pps.is_finite() && pps > 0.0 && pps <= 1e10, "{pps}");
                    let hz = 3_000_000_000;
                    let mut b = TokenBucket::new(pps, hz, 32, 0);
                    // Ten seconds with nothing taken: ten seconds' worth, up to the burst.
                    let want = (10.0 * pps).min(32.0);
                    let got = b.take(10 * hz, 32) as f64;
                    prop_assert!(got <= want && got >= (want * 0.999).floor(), "{} of {}", got, want);
                    prop_assert!(b.take(u64::MAX, u32::MAX) <= 32);
                }
            }
        }
    }

    /// Numeric rates against an oracle: 1..=1e10 frames/s, 1e3..=1e13 bit/s.
    #[test]
    fn rate_ranges(v in any::<f64>(), bits: bool) {
        let s = format!("{v:e}{}", if bits { "bps" } else { "" });
        let (lo, hi) = if bits { (1e3, 1e13) } else { (1.0, 1e10) };
        let got = s.parse::<Rate>();
        let parsed: f64 = format!("{v:e}").parse().unwrap();
        prop_assert_eq!(got.is_ok(), (lo..=hi).contains(&parsed), "{}: {:?}", s, got);
    }

    /// `--dst-mac`: any string, never a panic; what is accepted prints back the same.
    #[test]
    fn mac_parser_takes_any_string(s in ".*|([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}") {
        if let Ok(m) = parse_mac(&s) {
            let back = m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
            prop_assert_eq!(back, s.to_ascii_lowercase());
        }
    }

    /// `-T`, `--drain-ms`, `--duration`: accepted exactly in range, and a duration that is
    /// accepted can be added to any instant of a run.
    #[test]
    fn periods_and_durations(t: u64, ms: u64, d: f64) {
        prop_assert_eq!(check_stats_period(t).is_ok(), t <= 86_400);
        prop_assert_eq!(check_drain_ms(ms).is_ok(), ms <= 3_600_000);
        match parse_duration_s(d) {
            Ok(dur) => {
                prop_assert!(d > 0.0 && d <= 365.0 * 86_400.0);
                prop_assert!(std::time::Instant::now().checked_add(dur).is_some());
            }
            Err(e) => {
                prop_assert!(!(d > 0.0 && d <= 365.0 * 86_400.0));
                prop_assert!(e.starts_with("invalid duration"));
            }
        }
    }
}
