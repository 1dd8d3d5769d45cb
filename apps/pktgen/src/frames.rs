//! pktgen's transmit side: test frames, frame sizes and the rate limiter.
//!
//! ## The test frame
//!
//! ```text
//! Ethernet (14) | [802.1Q tag (4)] | IPv4 (20) or IPv6 (40) | UDP (8) or TCP (20) | test payload
//! test payload: magic u16 | stream u16 | seq u32 | tx_tsc u48 | check u32 | filler ...
//! ```
//!
//! All fields big-endian. `magic` is [`MAGIC`]: with the IP/L4 headers and the destination
//! port range it is what makes a frame ours (a frame without it is foreign, never corrupted).
//! The stream id is the flow index; `seq` counts that stream's frames from 0; `tx_tsc` is the
//! low 48 bits of the TSC when the frame was built (a day at 3 GHz, far beyond any latency
//! worth measuring; the 64-byte frame has room for no more); `check` is the [`stamp_check`]
//! of the magic, stream, seq and tsc fields (the stamp); the filler is a fixed pattern (byte
//! `i` is `i`).
//! Flows vary the source/destination addresses and ports, so that RSS spreads them. IPv4
//! addresses come from 198.18.0.0/15, the range RFC 2544 reserves for benchmarking; IPv6 ones
//! are the same four bytes in 2001:2::/48 (RFC 5180). TCP frames are SYN-less data segments
//! (ACK and PSH set, fixed sequence and acknowledgment numbers). The kind ([`FrameKind`]:
//! `--vlan`, `--ipv6`, `--proto`) is the same for every frame of a run.
//!
//! ## Templates: what is done per frame
//!
//! [`Templates`] holds, per flow, the headers and the constant start of the payload with the
//! partial one's-complement sums of everything constant, built once per run (with
//! `etherparse`, off the fast path). Per frame the sender copies the template's headers (up to
//! 82 bytes) and the filler (a shared constant) into the mbuf, then writes only the stamp (seq,
//! TSC, check value), the lengths and the IPv4 id, and finishes the IPv4 and L4 checksums from the
//! template's sums plus the stamped words (RFC 1624's incremental update: the template's
//! fields are 0 there, so adding the new words is the whole update). Sizes need no template
//! of their own: the filler's sum for every length is a compile-time table.
//!
//! A run of one frame size (`--size N`, what a line-rate test uses) takes a shorter path,
//! [`FixedFrames`]: per stream the first 128 bytes of the frame are built whole once, lengths
//! included, with the sums of everything constant (filler too), and stamped by a loop compiled
//! once per kind, every offset a constant. A frame then costs the copy of one cache line (two
//! for frames over 64 bytes), the 14 stamp bytes, the IPv4 id and two checksums folded from a
//! constant plus `seq + tsc + check`. For frames longer than 128 bytes, the filler is written
//! into every buffer of the TX pool once, before sending, and stays there: only pktgen writes
//! to those buffers, and always the same filler at the same place, so a 1518-byte frame costs
//! what a 128-byte one does (Pktgen-DPDK reuses its buffers the same way). This path and
//! [`crate::analyzer::Analyzer::record_if_built`] (the receiver reads the senders' progress
//! only when a frame needs it) brought pktgen's one-core rate to about 0.9 of testpmd
//! txonly's at 64 and 1518 bytes (the README's benchmark section has the runs). The receiver
//! uses the same images ([`FixedFrames::check`]): a frame that is, layer 2 aside, byte for
//! byte the one the sender builds for the stamp it carries needs no parsing; any other frame
//! is parsed as below.
//!
//! ## What catches corruption, and why the check value covers only the stamp
//!
//! The receiver ([`parse_frame`]) checks, for every kind: the lengths against the frame's; the
//! IPv4 header checksum (IPv6 has none: its version, traffic class, flow label and hop limit
//! are compared with what pktgen sends); the UDP or TCP checksum over the pseudo-header, the L4
//! header and the whole payload; the check value over the stamp; and the filler, byte for
//! byte against the pattern. The filler check alone catches every change to the filler,
//! however many bits; the L4 checksum catches every single-bit error (and every burst of up to
//! 15 bits) anywhere in the L4 header, stamp and payload; the check value adds, over the 14
//! bytes the verdicts rest on (stream, seq, TSC), what a one's-complement sum misses (swapped
//! words, compensating flips): it is a CRC-32C of the stamp (see [`stamp_check`]), which sees
//! every error of up to 3 bits, every burst of up to 32 bits within the magic, stream and seq
//! or within the TSC (the CRC takes them as two words, in that order, not in wire order), and
//! misses any other change with odds of about 2^-32. It is computed by SSE4.2's `crc32` instruction, two of them per
//! frame (3 cycles each), which every CPU DPDK 22.11 runs on has. It was first a CRC-32
//! (`crc32fast`), whose byte-table loop for 14 bytes took a quarter of the sender's cycles
//! at 64 bytes (`perf`), then two rounds of murmur3's 64-bit finalizer (four multiplies):
//! without any check the sender built 64-byte frames at 22.3 Mpps instead of 19.5 on this box
//! (6.4 ns a frame less), so the mix cost it about 13% of its rate. A check over the whole payload would add nothing
//! to the byte-for-byte filler check and would cost the sender a pass over up to 1.5 KB per
//! frame. Not covered: the Ethernet addresses and the 802.1Q
//! tag's priority and id (layer 2, which a device under test may rewrite), as before.
//! A frame whose IPv6 hop limit was decremented (routed) counts as corrupted.
//!
//! Sizes are frame sizes on the wire, FCS included, as Pktgen-DPDK and RFC 2544 count them: a
//! 64-byte frame is 60 bytes in the mbuf. The smallest is 64.

use std::fmt;

pub const ETH_LEN: usize = 14;
pub const IPV4_LEN: usize = 20;
pub const UDP_LEN: usize = 8;
/// Offset of the test payload in the frame.
pub const PAYLOAD_OFF: usize = ETH_LEN + IPV4_LEN + UDP_LEN;
/// magic (2) + stream (2) + seq (4) + tsc (6) + check (4): exactly what a 64-byte frame holds.
pub const TEST_HDR_LEN: usize = 18;
/// The first two payload bytes of every test frame ("PG").
pub const MAGIC: u16 = 0x5047;
/// Offset of the check value in the test payload.
const CRC_OFF: usize = 14;

/// Copies `src` (at most 128 bytes: a template's headers) into `dst` of the same length with
/// two overlapping fixed-size copies, which compile to a few vector moves, rather than a call
/// to `memmove` for a length it must inspect (6% of the sender's cycles at 64 bytes).
#[inline(always)]
fn copy_head(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if n != dst.len() || n > 128 {
        dst.copy_from_slice(src);
    } else if n >= 64 {
        dst[..64].copy_from_slice(&src[..64]);
        dst[n - 64..].copy_from_slice(&src[n - 64..]);
    } else if n >= 32 {
        dst[..32].copy_from_slice(&src[..32]);
        dst[n - 32..].copy_from_slice(&src[n - 32..]);
    } else {
        dst.copy_from_slice(src);
    }
}

/// The check value of a stamp: the CRC-32C ([`pmd::crc32c_2x64`], the SSE4.2 `crc32`
/// instruction) of its 112 bits as two words, `magic`, `stream` and `seq` in the first and the
/// 48-bit `tsc` in the second, from a fixed seed. A CRC of degree 32 detects every error burst
/// of up to 32 bits within those 128 bits (in that order: the first word's, or the second's, or
/// across the end of the first into the second) and, CRC-32C having a Hamming distance of at
/// least 4 at this length, every error of up to 3 bits anywhere; any other change leaves it
/// equal with odds of about 2^-32.
#[inline(always)]
pub fn stamp_check(magic: u16, stream: u16, seq: u32, tsc: u64) -> u32 {
    let a = ((magic as u64) << 48) | ((stream as u64) << 32) | seq as u64;
    pmd::crc32c_2x64(0xffff_ffff, a, tsc & TSC_MASK)
}

/// [`stamp_check`] of a test payload's first 14 bytes (magic, stream, seq, TSC), as they are
/// on the wire.
pub fn payload_check(p: &[u8]) -> u32 {
    let Some(b) = p.get(..CRC_OFF) else {
        return 0;
    };
    let tsc = u64::from_be_bytes([0, 0, b[8], b[9], b[10], b[11], b[12], b[13]]);
    stamp_check(
        u16::from_be_bytes([b[0], b[1]]),
        u16::from_be_bytes([b[2], b[3]]),
        u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        tsc,
    )
}
/// The transmit TSC is carried in 48 bits.
pub const TSC_MASK: u64 = (1 << 48) - 1;
/// The Ethernet FCS, counted in frame sizes but not carried in the mbuf.
pub const FCS_LEN: usize = 4;
/// Smallest frame size (FCS included).
pub const MIN_FRAME: usize = 64;
/// Largest frame size (FCS included) without jumbo frames.
pub const MAX_FRAME: usize = 1518;
/// UDP destination port of test frames (plus the flow index modulo 256).
pub const UDP_DST_BASE: u16 = 0x5000;
/// UDP source port base (plus the flow index).
pub const UDP_SRC_BASE: u16 = 1024;

/// Frame sizes to send (FCS included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SizeSpec {
    Fixed(usize),
    /// Uniform over `min..=max`, cycled deterministically.
    Range(usize, usize),
    /// 64/594/1518 bytes at 7:4:1, the simple IMIX.
    Imix,
}

/// The simple IMIX pattern, 12 frames long, interleaved so that any 12 consecutive frames
/// hold the exact 7:4:1 mix.
const IMIX: [usize; 12] = [64, 594, 64, 64, 594, 64, 1518, 64, 594, 64, 64, 594];

impl std::str::FromStr for SizeSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let num = |t: &str| -> Result<usize, String> {
            let n: usize = t
                .trim()
                .parse()
                .map_err(|_| format!("invalid size {s:?}: expected BYTES, MIN-MAX or imix"))?;
            if !(MIN_FRAME..=MAX_FRAME).contains(&n) {
                return Err(format!(
                    "invalid size {n}: frames are {MIN_FRAME}..={MAX_FRAME} bytes (FCS included)"
                ));
            }
            Ok(n)
        };
        if s.eq_ignore_ascii_case("imix") {
            return Ok(SizeSpec::Imix);
        }
        match s.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("invalid size range {s:?}: min above max"));
                }
                Ok(SizeSpec::Range(a, b))
            }
            None => Ok(SizeSpec::Fixed(num(s)?)),
        }
    }
}

impl SizeSpec {
    /// The size of the `n`-th frame (FCS included).
    #[inline]
    pub fn size_of(&self, n: u64) -> usize {
        match *self {
            SizeSpec::Fixed(s) => s,
            SizeSpec::Range(a, b) => {
                // A multiplicative hash of n spreads sizes over the range without a generator
                // state, deterministically.
                let span = (b - a + 1) as u64;
                a + (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % span as usize
            }
            SizeSpec::Imix => IMIX[(n % IMIX.len() as u64) as usize],
        }
    }

    /// Mean frame size, for converting bit rates to packet rates.
    pub fn mean(&self) -> f64 {
        match *self {
            SizeSpec::Fixed(s) => s as f64,
            SizeSpec::Range(a, b) => (a + b) as f64 / 2.0,
            SizeSpec::Imix => IMIX.iter().sum::<usize>() as f64 / IMIX.len() as f64,
        }
    }
}

impl fmt::Display for SizeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeSpec::Fixed(s) => write!(f, "{s}"),
            SizeSpec::Range(a, b) => write!(f, "{a}-{b}"),
            SizeSpec::Imix => f.write_str("imix"),
        }
    }
}

/// The highest packet rate accepted: 10 Gpps, well above 800GbE's 1.19 Gpps of 64-byte frames.
pub const MAX_PPS: f64 = 1e10;
/// The lowest packet rate accepted: the token bucket's resolution is about one frame a second.
pub const MIN_PPS: f64 = 1.0;
/// The highest bit rate accepted: 10 Tbit/s.
pub const MAX_BPS: f64 = 1e13;
/// The lowest bit rate accepted: 1 kbit/s.
pub const MIN_BPS: f64 = 1e3;

/// Transmit rate: `max`, packets per second, or bits per second on the wire.
///
/// Written as a plain number (packets/s), or a number with a unit, case-insensitive: `pps`,
/// `Kpps`, `Mpps`, `Gpps`, `bps`, `Kbps`, `Mbps`, `Gbps`. A multiplier without a unit (`1G`,
/// `1.5M`, `10K`) is refused: it could mean either.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    Max,
    Pps(f64),
    /// Bits per second on the wire (frame + FCS + preamble and gap, 20 bytes).
    Bps(f64),
}

/// Bytes a frame takes on the wire beyond its size (FCS included): preamble, SFD and the
/// inter-frame gap.
pub const WIRE_OVERHEAD: usize = 20;

impl std::str::FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid rate {s:?}: expected max, packets/s (50000, 10Kpps, 1.5Mpps) or bits/s \
                 on the wire (100Mbps, 1Gbps)"
            )
        };
        let t = s.trim();
        if t.eq_ignore_ascii_case("max") {
            return Ok(Rate::Max);
        }
        let lower = t.to_ascii_lowercase();
        let (num, bits) = match (lower.strip_suffix("bps"), lower.strip_suffix("pps")) {
            (Some(n), _) => (n, Some(true)),
            (None, Some(n)) => (n, Some(false)),
            (None, None) => (lower.as_str(), None),
        };
        let num = num.trim_end();
        let (num, prefix, mult) = match num.chars().last() {
            Some('k') => (&num[..num.len() - 1], "K", 1e3),
            Some('m') => (&num[..num.len() - 1], "M", 1e6),
            Some('g') => (&num[..num.len() - 1], "G", 1e9),
            _ => (num, "", 1.0),
        };
        let v: f64 = num.trim().parse().map_err(|_| bad())?;
        let Some(bits) = bits.or(prefix.is_empty().then_some(false)) else {
            let n = num.trim();
            return Err(format!(
                "invalid rate {s:?}: {n}{prefix} of what? say {n}{prefix}bps (bits per second) \
                 or {n}{prefix}pps (packets per second)"
            ));
        };
        let v = v * mult;
        if !v.is_finite() || v <= 0.0 {
            return Err(bad());
        }
        // Out of range, the token bucket's fixed-point arithmetic would overflow (too high) or
        // never grant a frame (too low).
        let (lo, hi, range) = if bits {
            (MIN_BPS, MAX_BPS, "1Kbps to 10000Gbps")
        } else {
            (MIN_PPS, MAX_PPS, "1pps to 10Gpps")
        };
        if !(lo..=hi).contains(&v) {
            return Err(format!(
                "invalid rate {s:?}: out of range, give {range} (or max)"
            ));
        }
        Ok(if bits { Rate::Bps(v) } else { Rate::Pps(v) })
    }
}

impl Rate {
    /// Packets per second for frames of mean size `mean` (None = as fast as possible).
    pub fn pps(&self, mean: f64) -> Option<f64> {
        match *self {
            Rate::Max => None,
            Rate::Pps(p) => Some(p),
            Rate::Bps(b) => Some(b / ((mean + WIRE_OVERHEAD as f64) * 8.0)),
        }
    }
}

/// As users write rates back: `max`, `1.50 Mpps`, `1.00 Gbit/s`.
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Rate::Max => f.write_str("max"),
            Rate::Pps(p) => f.write_str(&apps_common::units::pps(p)),
            Rate::Bps(b) => f.write_str(&apps_common::units::bits_per_s(b)),
        }
    }
}

/// The longest stats period accepted (`-T`), in seconds: a day. 0 means no stats lines.
pub const MAX_STATS_PERIOD_S: u64 = 86_400;
/// The longest send duration accepted (`--duration`), in seconds: a year.
pub const MAX_DURATION_S: f64 = 365.0 * 86_400.0;
/// The longest drain wait accepted (`--drain-ms`): an hour.
pub const MAX_DRAIN_MS: u64 = 3_600_000;

/// Checks a stats period (`-T`) in seconds: 0 (quiet) to [`MAX_STATS_PERIOD_S`].
pub fn check_stats_period(s: u64) -> Result<u64, String> {
    if s > MAX_STATS_PERIOD_S {
        return Err(format!(
            "invalid stats period {s}: give 0 (quiet) to {MAX_STATS_PERIOD_S} seconds"
        ));
    }
    Ok(s)
}

/// Checks a send duration (`--duration`) in seconds: above 0, at most [`MAX_DURATION_S`].
pub fn parse_duration_s(d: f64) -> Result<std::time::Duration, String> {
    if d.is_finite() && d > 0.0 && d <= MAX_DURATION_S {
        Ok(std::time::Duration::from_secs_f64(d))
    } else {
        Err(format!(
            "invalid duration {d:?}: give a positive number of seconds, at most a year ({MAX_DURATION_S})"
        ))
    }
}

/// Checks a drain wait (`--drain-ms`): at most [`MAX_DRAIN_MS`].
pub fn check_drain_ms(ms: u64) -> Result<std::time::Duration, String> {
    if ms > MAX_DRAIN_MS {
        return Err(format!(
            "invalid drain {ms} ms: give 0 to {MAX_DRAIN_MS} milliseconds"
        ));
    }
    Ok(std::time::Duration::from_millis(ms))
}

/// Parses a MAC address `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let bad = || format!("invalid MAC address {s:?}: expected aa:bb:cc:dd:ee:ff");
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in out.iter_mut() {
        let p = parts.next().ok_or_else(bad)?;
        if p.len() != 2 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(out)
}

/// A token bucket on the TSC: `rate` tokens per second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Tokens per TSC cycle, scaled by 2^64 to stay in integers (exact to better than 1e-9 at
    /// one token a second on a 4 GHz TSC).
    per_cycle_q64: u128,
    tokens_q64: u128,
    burst_q64: u128,
    last: u64,
}

impl TokenBucket {
    /// Any rate is safe here: the float-to-integer cast saturates, the rate is clamped to
    /// 2^-64..=2^32 tokens per cycle, and the arithmetic saturates.
    pub fn new(rate_per_s: f64, tsc_hz: u64, burst: u32, now: u64) -> Self {
        let per_cycle = (rate_per_s / tsc_hz.max(1) as f64) * 18446744073709551616.0;
        TokenBucket {
            per_cycle_q64: (per_cycle as u128).clamp(1, 1 << 96),
            tokens_q64: 0,
            burst_q64: (burst as u128) << 64,
            last: now,
        }
    }

    /// Whole tokens available at `now` (at most `want`), which the caller then spends.
    #[inline]
    pub fn take(&mut self, now: u64, want: u32) -> u32 {
        let dt = now.wrapping_sub(self.last) as u128;
        self.last = now;
        self.tokens_q64 = self
            .tokens_q64
            .saturating_add(dt.saturating_mul(self.per_cycle_q64))
            .min(self.burst_q64);
        let n = ((self.tokens_q64 >> 64) as u32).min(want);
        self.tokens_q64 -= (n as u128) << 64;
        n
    }

    /// As [`take`](Self::take), for times that may come out of order (stamps of frames from
    /// several senders): a time before the latest one seen adds nothing, and the clock does
    /// not go back.
    pub fn take_in_order(&mut self, at: u64, want: u32) -> u32 {
        self.take(at.max(self.last), want)
    }

    /// The bucket full: as much saved as it holds (a device whose buffer is empty).
    pub fn filled(mut self) -> Self {
        self.tokens_q64 = self.burst_q64;
        self
    }

    /// Gives back tokens the caller could not spend (the TX queue was full).
    #[inline]
    pub fn refund(&mut self, n: u32) {
        self.tokens_q64 = (self.tokens_q64 + ((n as u128) << 64)).min(self.burst_q64);
    }
}

/// Addresses of one flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub src_ip: [u8; 4],
    pub dst_ip: [u8; 4],
    pub src_port: u16,
    pub dst_port: u16,
}

impl Flow {
    /// Flow `i`: addresses and ports vary with `i` so that RSS spreads flows.
    pub fn nth(i: u16) -> Flow {
        let [hi, lo] = i.to_be_bytes();
        Flow {
            src_ip: [198, 18, hi, lo],
            dst_ip: [198, 19, hi, lo],
            src_port: UDP_SRC_BASE.wrapping_add(i),
            dst_port: UDP_DST_BASE + (i & 0xff),
        }
    }

    /// The source address of the flow's IPv6 frames: its IPv4 one in 2001:2::/48, the range
    /// RFC 5180 reserves for benchmarking (flow 1: 2001:2::c612:1, i.e. 2001:2::198.18.0.1).
    pub fn src_ip6(&self) -> [u8; 16] {
        ipv6_of(self.src_ip)
    }

    /// The destination address of the flow's IPv6 frames (2001:2::198.19.x.y).
    pub fn dst_ip6(&self) -> [u8; 16] {
        ipv6_of(self.dst_ip)
    }
}

fn ipv6_of(v4: [u8; 4]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x00, 0x02]);
    a[12..].copy_from_slice(&v4);
    a
}

/// The frame's Ethernet addresses.
#[derive(Debug, Clone, Copy)]
pub struct EtherAddrs {
    pub dst: [u8; 6],
    pub src: [u8; 6],
}

/// Internet checksum (RFC 1071) of `data`, unfolded, starting from `sum`. 64 bits: no input
/// length can overflow it.
fn csum_add(mut sum: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [last] = chunks.remainder() {
        sum += (*last as u64) << 8;
    }
    sum
}

/// Folds a one's-complement sum to 16 bits and complements it: the checksum field's value.
/// A nonzero sum never folds to 0 (it folds to 0xffff), so a sum built up incrementally folds
/// to exactly what a sum over the whole frame does.
/// Four fixed folds, no loop: 2^32 and 2^16 are both 1 modulo 0xffff, so each fold keeps the
/// sum's value modulo 0xffff (and a nonzero sum nonzero); after them it fits 16 bits (64 ->
/// 33 -> 18 -> 17 -> 16 bits).
#[inline(always)]
fn csum_fold(mut sum: u64) -> u16 {
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// Frame length in the mbuf (FCS excluded) for a frame size (FCS included).
pub fn buf_len(frame_size: usize) -> usize {
    frame_size - FCS_LEN
}

/// The 802.1Q tag's length.
pub const VLAN_LEN: usize = 4;
/// The IPv6 header's length (no extension headers).
pub const IPV6_LEN: usize = 40;
/// The TCP header's length (no options).
pub const TCP_LEN: usize = 20;
/// The highest 802.1Q VLAN id.
pub const MAX_VLAN_ID: u16 = 4095;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const PROTO_UDP: u8 = 17;
const PROTO_TCP: u8 = 6;
/// IPv4 TTL and IPv6 hop limit of test frames.
pub const HOP_LIMIT: u8 = 64;
/// TCP data offset (5 words, no options), reserved bits and NS, as test frames carry them.
const TCP_OFF_BYTE: u8 = 0x50;
/// TCP sequence and acknowledgment numbers and window of test frames (SYN-less data segments
/// with ACK and PSH set: a DUT that tracks no connections forwards them like UDP).
pub const TCP_SEQ: u32 = 1;
pub const TCP_ACK: u32 = 1;
pub const TCP_WINDOW: u16 = 0xffff;

/// Layer 4 of the test frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum L4 {
    #[default]
    Udp,
    Tcp,
}

impl std::str::FromStr for L4 {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "udp" => Ok(L4::Udp),
            "tcp" => Ok(L4::Tcp),
            _ => Err(format!("invalid protocol {s:?}: expected udp or tcp")),
        }
    }
}

impl fmt::Display for L4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            L4::Udp => "UDP",
            L4::Tcp => "TCP",
        })
    }
}

/// What carries the test payload: an optional 802.1Q tag, IPv4 or IPv6, UDP or TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameKind {
    /// 802.1Q VLAN id (0..=4095, priority 0), or untagged.
    pub vlan: Option<u16>,
    pub ipv6: bool,
    pub l4: L4,
}

impl FrameKind {
    /// Offset of the IP header.
    pub fn l3_off(&self) -> usize {
        ETH_LEN + if self.vlan.is_some() { VLAN_LEN } else { 0 }
    }

    /// Offset of the UDP or TCP header.
    pub fn l4_off(&self) -> usize {
        self.l3_off() + if self.ipv6 { IPV6_LEN } else { IPV4_LEN }
    }

    /// Offset of the test payload.
    pub fn payload_off(&self) -> usize {
        self.l4_off()
            + match self.l4 {
                L4::Udp => UDP_LEN,
                L4::Tcp => TCP_LEN,
            }
    }

    /// The smallest frame size (FCS included) that holds the headers and the test header:
    /// 64 for IPv4/UDP, up to 100 for a tagged IPv6/TCP frame.
    pub fn min_frame(&self) -> usize {
        (self.payload_off() + TEST_HDR_LEN + FCS_LEN).max(MIN_FRAME)
    }

    /// Refuses sizes too small for these frames, saying the smallest that fits.
    pub fn check_sizes(&self, size: &SizeSpec) -> Result<(), String> {
        let smallest = match *size {
            SizeSpec::Fixed(n) => n,
            SizeSpec::Range(a, _) => a,
            SizeSpec::Imix => MIN_FRAME,
        };
        let min = self.min_frame();
        if smallest < min {
            return Err(format!(
                "invalid size {size}: {self} frames need {min} bytes or more (FCS included) \
                 to hold their headers and the test header"
            ));
        }
        Ok(())
    }
}

/// `IPv4/UDP`, `VLAN 10 IPv6/TCP`.
impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(v) = self.vlan {
            write!(f, "VLAN {v} ")?;
        }
        let ip = if self.ipv6 { "IPv6" } else { "IPv4" };
        write!(f, "{ip}/{}", self.l4)
    }
}

/// The filler after the test header: byte `i` of it is `i as u8`, in every frame of every
/// kind, so the analyzer checks it byte for byte.
const FILLER: [u8; MAX_FRAME] = {
    let mut f = [0u8; MAX_FRAME];
    let mut i = 0;
    while i < MAX_FRAME {
        f[i] = i as u8;
        i += 1;
    }
    f
};

/// `FILLER_SUM[n]`: the one's-complement sum (unfolded) of the first `n` filler bytes. The
/// filler starts at an even offset from the L4 header in every kind, so its words line up.
const FILLER_SUM: [u32; MAX_FRAME + 1] = {
    let mut s = [0u32; MAX_FRAME + 1];
    let mut n = 1;
    while n <= MAX_FRAME {
        let b = FILLER[n - 1] as u32;
        s[n] = s[n - 1] + if n % 2 == 1 { b << 8 } else { b };
        n += 1;
    }
    s
};

/// The longest header template: Ethernet, 802.1Q, IPv6, TCP, magic and stream.
const MAX_HDR: usize = ETH_LEN + VLAN_LEN + IPV6_LEN + TCP_LEN + 4;

/// The frames of one flow (stream), built once per run: the headers and the constant start of
/// the test payload, with the partial checksums of everything that does not change from frame
/// to frame. [`FlowTemplate::stamp`] makes a frame of any size from it.
#[derive(Debug, Clone)]
pub struct FlowTemplate {
    /// Ethernet ... L4 header, magic and stream; lengths and checksums 0.
    hdr: [u8; MAX_HDR],
    hdr_len: usize,
    l3: usize,
    l4: usize,
    payload: usize,
    ipv6: bool,
    proto: L4,
    /// One's-complement sum of the IPv4 header with total length, id and checksum 0.
    ip_sum: u64,
    /// The stream id written in the payload (for the stamp's check value).
    stream: u16,
    /// One's-complement sum of the pseudo-header's addresses and protocol, the L4 header with
    /// length and checksum 0, the magic and the stream.
    l4_sum: u64,
}

impl FlowTemplate {
    /// The template of stream `stream`, whose addresses are `flow`'s. Built with etherparse:
    /// off the per-packet path.
    pub fn new(
        kind: FrameKind,
        eth: &EtherAddrs,
        flow: &Flow,
        stream: u16,
    ) -> Result<FlowTemplate, String> {
        use etherparse::{
            EtherType, Ethernet2Header, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header,
            SingleVlanHeader, TcpHeader, UdpHeader, VlanId, VlanPcp,
        };
        let err = |e: &dyn fmt::Display| format!("cannot build {kind} frames: {e}");
        let l3_type = if kind.ipv6 {
            EtherType::IPV6
        } else {
            EtherType::IPV4
        };
        let proto = match kind.l4 {
            L4::Udp => IpNumber::UDP,
            L4::Tcp => IpNumber::TCP,
        };
        let mut v = Vec::with_capacity(MAX_HDR);
        Ethernet2Header {
            source: eth.src,
            destination: eth.dst,
            ether_type: if kind.vlan.is_some() {
                EtherType::VLAN_TAGGED_FRAME
            } else {
                l3_type
            },
        }
        .write(&mut v)
        .map_err(|e| err(&e))?;
        if let Some(id) = kind.vlan {
            SingleVlanHeader {
                pcp: VlanPcp::ZERO,
                drop_eligible_indicator: false,
                vlan_id: VlanId::try_new(id).map_err(|e| err(&e))?,
                ether_type: l3_type,
            }
            .write(&mut v)
            .map_err(|e| err(&e))?;
        }
        if kind.ipv6 {
            Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: 0,
                next_header: proto,
                hop_limit: HOP_LIMIT,
                source: flow.src_ip6(),
                destination: flow.dst_ip6(),
            }
            .write(&mut v)
            .map_err(|e| err(&e))?;
        } else {
            Ipv4Header::new(0, HOP_LIMIT, proto, flow.src_ip, flow.dst_ip)
                .map_err(|e| err(&e))?
                .write(&mut v)
                .map_err(|e| err(&e))?;
        }
        match kind.l4 {
            L4::Udp => UdpHeader {
                source_port: flow.src_port,
                destination_port: flow.dst_port,
                length: 0,
                checksum: 0,
            }
            .write(&mut v)
            .map_err(|e| err(&e))?,
            L4::Tcp => {
                let mut t = TcpHeader::new(flow.src_port, flow.dst_port, TCP_SEQ, TCP_WINDOW);
                t.ack = true;
                t.psh = true;
                t.acknowledgment_number = TCP_ACK;
                t.write(&mut v).map_err(|e| err(&e))?
            }
        }
        v.extend_from_slice(&MAGIC.to_be_bytes());
        v.extend_from_slice(&stream.to_be_bytes());
        let (l3, l4, payload) = (kind.l3_off(), kind.l4_off(), kind.payload_off());
        if v.len() != payload + 4 || v.len() > MAX_HDR {
            return Err(err(&format_args!("{} header bytes", v.len())));
        }
        let mut hdr = [0u8; MAX_HDR];
        hdr[..v.len()].copy_from_slice(&v);
        // Lengths and checksums are written per frame; the template holds 0 there.
        let (ip_sum, pseudo) = if kind.ipv6 {
            (0, csum_add(0, &hdr[l3 + 8..l3 + 40]))
        } else {
            hdr[l3 + 2..l3 + 4].fill(0);
            hdr[l3 + 10..l3 + 12].fill(0);
            (
                csum_add(0, &hdr[l3..l4]),
                csum_add(0, &hdr[l3 + 12..l3 + 20]),
            )
        };
        let ck = match kind.l4 {
            L4::Udp => l4 + 6,
            L4::Tcp => l4 + 16,
        };
        hdr[ck..ck + 2].fill(0);
        let l4_sum = csum_add(pseudo + u8::from(proto) as u64, &hdr[l4..v.len()]);
        Ok(FlowTemplate {
            hdr,
            hdr_len: v.len(),
            l3,
            l4,
            payload,
            ipv6: kind.ipv6,
            proto: kind.l4,
            ip_sum,
            l4_sum,
            stream,
        })
    }

    /// Writes a complete test frame of `frame.len()` bytes into `frame`: the template, the
    /// filler, the stamp (sequence number, TSC, check value; IPv4 id), the lengths, and the checksums
    /// updated incrementally (RFC 1624) from the template's partial sums. No allocation, one
    /// copy of the headers and one of the filler. `frame.len()` must be a frame size this
    /// kind holds ([`FrameKind::check_sizes`]) less the FCS: anything else is left unwritten.
    #[inline]
    pub fn stamp(&self, frame: &mut [u8], seq: u32, tsc: u64) {
        let len = frame.len();
        let p = self.payload;
        let Some(fill) = len
            .checked_sub(p + TEST_HDR_LEN)
            .filter(|&n| n <= FILLER.len())
        else {
            return;
        };
        copy_head(&mut frame[..self.hdr_len], &self.hdr[..self.hdr_len]);
        if fill > 0 {
            frame[p + TEST_HDR_LEN..].copy_from_slice(&FILLER[..fill]);
        }
        let tsc = tsc & TSC_MASK;
        frame[p + 4..p + 8].copy_from_slice(&seq.to_be_bytes());
        frame[p + 8..p + CRC_OFF].copy_from_slice(&tsc.to_be_bytes()[2..]);
        let crc = stamp_check(MAGIC, self.stream, seq, tsc);
        frame[p + CRC_OFF..p + TEST_HDR_LEN].copy_from_slice(&crc.to_be_bytes());
        let (l3, l4) = (self.l3, self.l4);
        let l4_len = (len - l4) as u16;
        // The stamp's words, the filler's and the length in the pseudo-header.
        let mut sum = self.l4_sum
            + FILLER_SUM[fill] as u64
            + l4_len as u64
            + (seq >> 16) as u64
            + (seq & 0xffff) as u64
            + (tsc >> 32)
            + ((tsc >> 16) & 0xffff)
            + (tsc & 0xffff)
            + (crc >> 16) as u64
            + (crc & 0xffff) as u64;
        if self.ipv6 {
            frame[l3 + 4..l3 + 6].copy_from_slice(&l4_len.to_be_bytes());
        } else {
            let total = (len - l3) as u16;
            let id = seq as u16;
            frame[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
            frame[l3 + 4..l3 + 6].copy_from_slice(&id.to_be_bytes());
            let ck = csum_fold(self.ip_sum + total as u64 + id as u64);
            frame[l3 + 10..l3 + 12].copy_from_slice(&ck.to_be_bytes());
        }
        match self.proto {
            L4::Udp => {
                frame[l4 + 4..l4 + 6].copy_from_slice(&l4_len.to_be_bytes());
                sum += l4_len as u64;
                // 0 means "no checksum" in UDP: all ones instead (RFC 768).
                let ck = match csum_fold(sum) {
                    0 => 0xffff,
                    c => c,
                };
                frame[l4 + 6..l4 + 8].copy_from_slice(&ck.to_be_bytes());
            }
            L4::Tcp => frame[l4 + 16..l4 + 18].copy_from_slice(&csum_fold(sum).to_be_bytes()),
        }
    }
}

/// The templates of a run: one per flow, made once before sending.
#[derive(Debug, Clone)]
pub struct Templates {
    flows: Vec<FlowTemplate>,
}

impl Templates {
    /// Templates for `flows` (stream `i` is `flows[i]`), refusing sizes too small for `kind`.
    pub fn new(
        kind: FrameKind,
        eth: &EtherAddrs,
        flows: &[Flow],
        size: &SizeSpec,
    ) -> Result<Templates, String> {
        kind.check_sizes(size)?;
        if flows.is_empty() || flows.len() > u16::MAX as usize {
            return Err(format!(
                "invalid number of flows {}: expected 1..=65535",
                flows.len()
            ));
        }
        let flows = flows
            .iter()
            .enumerate()
            .map(|(i, f)| FlowTemplate::new(kind, eth, f, i as u16))
            .collect::<Result<_, _>>()?;
        Ok(Templates { flows })
    }

    /// Templates for the streams `ids` (global stream ids, each with its flow
    /// [`Flow::nth`]`(id)`), indexed by position: `stamp(frame, k, ...)` writes a frame of
    /// stream `ids[k]`. For a TX side that owns only some of a run's streams.
    pub fn for_streams(
        kind: FrameKind,
        eth: &EtherAddrs,
        ids: &[u16],
        size: &SizeSpec,
    ) -> Result<Templates, String> {
        kind.check_sizes(size)?;
        if ids.is_empty() {
            return Err("a TX side needs at least one stream".into());
        }
        let flows = ids
            .iter()
            .map(|&id| FlowTemplate::new(kind, eth, &Flow::nth(id), id))
            .collect::<Result<_, _>>()?;
        Ok(Templates { flows })
    }

    /// Writes frame `seq` of stream `stream` into `frame` (see [`FlowTemplate::stamp`]); a
    /// stream without a template leaves it unwritten.
    #[inline]
    pub fn stamp(&self, frame: &mut [u8], stream: u16, seq: u32, tsc: u64) {
        if let Some(t) = self.flows.get(stream as usize) {
            t.stamp(frame, seq, tsc);
        }
    }
}

/// How many bytes of a fixed-size frame [`FixedFrames`] keeps ready: every kind's smallest
/// frame fits (100 bytes at most), and two cache lines are what the sender writes whole.
pub const IMAGE: usize = 128;

/// One stream's frames of one size, ready but for the per-frame fields (see [`FixedFrames`]).
#[derive(Debug, Clone)]
#[repr(C, align(64))]
struct FixedFrame {
    /// The frame's first bytes (filler past its end when it is shorter), with 0 in the seq,
    /// TSC, check value, IPv4 id and both checksums.
    image: [u8; IMAGE],
    /// One's-complement sum (unfolded) of the IPv4 header with id and checksum 0.
    ip_sum: u64,
    /// One's-complement sum (unfolded) of everything the L4 checksum covers but the stamp's
    /// seq, TSC and check value: pseudo-header, L4 header, magic, stream, filler.
    l4_sum: u64,
    stream: u16,
}

impl FixedFrame {
    /// The IPv4 header checksum of the frame with id `id` (the sender and the receiver's
    /// check derive it alike).
    #[inline(always)]
    fn ip_csum(&self, id: u16) -> u16 {
        csum_fold(self.ip_sum + u64::from(id))
    }

    /// The L4 checksum of the frame stamped `seq`, `tsc` (48 bits) with check value `crc`.
    #[inline(always)]
    fn l4_csum<const TCP: bool>(&self, seq: u32, tsc: u64, crc: u32) -> u16 {
        let sum = csum_fold(self.l4_sum + u64::from(seq) + tsc + u64::from(crc));
        // 0 means "no checksum" in UDP: all ones instead (RFC 768).
        if !TCP && sum == 0 {
            0xffff
        } else {
            sum
        }
    }
}

/// Where a fixed frame's test payload and L4 checksum are, given where its L3 header is
/// (after the Ethernet header and any 802.1Q tag), IPv6 or IPv4, TCP or UDP.
const fn layout(l3: usize, v6: bool, tcp: bool) -> (usize, usize) {
    let l4 = l3 + if v6 { IPV6_LEN } else { IPV4_LEN };
    let payload = l4 + if tcp { TCP_LEN } else { UDP_LEN };
    let checksum = l4 + if tcp { 16 } else { 6 };
    (payload, checksum)
}

/// Where the headers are, for the frames [`FixedFrames`] stamps: each of the eight kinds gets
/// its own copy of the stamping loop with every offset a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Ipv4Udp,
    Ipv4Tcp,
    Ipv6Udp,
    Ipv6Tcp,
    VlanIpv4Udp,
    VlanIpv4Tcp,
    VlanIpv6Udp,
    VlanIpv6Tcp,
}

/// The sender's fast path for frames of one size (`--size N`, the usual case and the one a
/// line-rate test uses): per stream, the whole start of the frame is built once, lengths and
/// the filler's checksum included, so that a frame costs one copy of one or two cache lines,
/// three stores for the stamp and the IPv4 id, and two checksums finished from constant sums
/// (the stamp's words enter the L4 checksum as `seq + tsc + check`: 2^16 is 1 modulo 0xffff,
/// so a sum of 16-bit words and a sum of the wider numbers they make fold alike). Its frames
/// are byte for byte those of [`Templates::stamp`] (a test holds it to that).
#[derive(Debug, Clone)]
pub struct FixedFrames {
    frames: Vec<FixedFrame>,
    /// Bytes in the mbuf (frame size less the FCS).
    len: usize,
    shape: Shape,
    /// Offset of the test payload.
    payload: usize,
    /// Every room stamped already holds the filler past [`IMAGE`] (see
    /// [`set_filler_in_place`](Self::set_filler_in_place)).
    filler_in_place: bool,
    /// For the receiver's [`check`](Self::check): 0xff for each byte of the image that is the
    /// same in every frame of a stream, 0 for the others (the Ethernet addresses, the 802.1Q
    /// tag's priority and id, the stamp, the IPv4 id and the checksums).
    same: [u8; IMAGE],
}

/// `N` bytes of `b` from `at`, if it has them.
#[inline(always)]
fn window<const N: usize>(b: &[u8], at: usize) -> Option<&[u8; N]> {
    b.get(at..)?.first_chunk::<N>()
}

/// Whether the `N` bytes of `frame` from `at` differ from `image`'s under the mask `same`
/// (nonzero if so, or if a window is not there): a fixed-size loop over 8-byte words that the
/// compiler turns into a few vector instructions, with one reduction at the end (a loop over
/// bytes reduced to a byte cost a chain of shifts per window).
#[inline(always)]
fn masked_diff<const N: usize>(
    frame: &[u8],
    image: &[u8; IMAGE],
    same: &[u8; IMAGE],
    at: usize,
) -> u64 {
    match (
        window::<N>(frame, at),
        window::<N>(image, at),
        window::<N>(same, at),
    ) {
        (Some(f), Some(i), Some(m)) => {
            const { assert!(N.is_multiple_of(8), "whole words only") };
            let (f, i, m) = (
                f.as_chunks::<8>().0,
                i.as_chunks::<8>().0,
                m.as_chunks::<8>().0,
            );
            f.iter().zip(i).zip(m).fold(0, |d, ((f, i), m)| {
                let w = |b: &[u8; 8]| u64::from_ne_bytes(*b);
                d | ((w(f) ^ w(i)) & w(m))
            })
        }
        _ => 1,
    }
}

/// The `N` bytes of `b` at `at`; zeros where `b` is too short.
#[inline(always)]
fn bytes_at<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    window::<N>(b, at).copied().unwrap_or([0; N])
}

#[inline(always)]
fn be16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(bytes_at(b, at))
}

#[inline(always)]
fn be32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes_at(b, at))
}

impl FixedFrames {
    /// The frames of `size` bytes (FCS included) of every stream of `templates`; `None` for a
    /// size the kind does not hold.
    pub fn new(templates: &Templates, size: usize) -> Option<FixedFrames> {
        if size > MAX_FRAME {
            return None;
        }
        let len = size.checked_sub(FCS_LEN)?;
        let first = templates.flows.first()?;
        let shape = match (first.l3 != ETH_LEN, first.ipv6, first.proto) {
            (false, false, L4::Udp) => Shape::Ipv4Udp,
            (false, false, L4::Tcp) => Shape::Ipv4Tcp,
            (false, true, L4::Udp) => Shape::Ipv6Udp,
            (false, true, L4::Tcp) => Shape::Ipv6Tcp,
            (true, false, L4::Udp) => Shape::VlanIpv4Udp,
            (true, false, L4::Tcp) => Shape::VlanIpv4Tcp,
            (true, true, L4::Udp) => Shape::VlanIpv6Udp,
            (true, true, L4::Tcp) => Shape::VlanIpv6Tcp,
        };
        let fill = len
            .checked_sub(first.payload + TEST_HDR_LEN)
            .filter(|&n| n <= FILLER.len())?;
        let frames = templates
            .flows
            .iter()
            .map(|t| {
                let mut buf = vec![0u8; len.max(IMAGE)];
                t.stamp(&mut buf[..len], 0, 0);
                let (l3, l4, p) = (t.l3, t.l4, t.payload);
                // Past the frame's end: the filler's continuation (never sent).
                if let (true, Some(f)) = (len < IMAGE, filler_at(p, len, IMAGE)) {
                    buf[len..].copy_from_slice(f);
                }
                buf[p + 4..p + TEST_HDR_LEN].fill(0);
                let l4_len = (len - l4) as u64;
                let mut l4_sum = t.l4_sum + FILLER_SUM[fill] as u64 + l4_len;
                let mut ip_sum = 0;
                if !t.ipv6 {
                    buf[l3 + 4..l3 + 6].fill(0);
                    buf[l3 + 10..l3 + 12].fill(0);
                    ip_sum = t.ip_sum + (len - l3) as u64;
                }
                match t.proto {
                    L4::Udp => {
                        buf[l4 + 6..l4 + 8].fill(0);
                        l4_sum += l4_len;
                    }
                    L4::Tcp => buf[l4 + 16..l4 + 18].fill(0),
                }
                let mut image = [0u8; IMAGE];
                image.copy_from_slice(&buf[..IMAGE]);
                FixedFrame {
                    image,
                    ip_sum,
                    l4_sum,
                    stream: t.stream,
                }
            })
            .collect();
        // The bytes that differ from frame to frame of a stream, or that a device under test
        // may rewrite (layer 2), are left out of the receiver's comparison.
        let l3 = first.l3;
        let (p, ck) = layout(l3, first.ipv6, first.proto == L4::Tcp);
        let mut same = [0xffu8; IMAGE];
        same[..ETH_LEN - 2].fill(0);
        if l3 != ETH_LEN {
            same[ETH_LEN..ETH_LEN + 2].fill(0);
        }
        if !first.ipv6 {
            same[l3 + 4..l3 + 6].fill(0);
            same[l3 + 10..l3 + 12].fill(0);
        }
        same[ck..ck + 2].fill(0);
        same[p + 4..p + TEST_HDR_LEN].fill(0);
        Some(FixedFrames {
            frames,
            len,
            shape,
            payload: first.payload,
            filler_in_place: false,
            same,
        })
    }

    /// The frames of `size` bytes of streams `0..streams` of `kind`, for the receiver's
    /// [`check`](Self::check) (the Ethernet addresses are not compared: any will do).
    pub fn for_receiver(kind: FrameKind, streams: u16, size: usize) -> Option<FixedFrames> {
        let ids: Vec<u16> = (0..streams).collect();
        let eth = EtherAddrs {
            dst: [0; 6],
            src: [0; 6],
        };
        let t = Templates::for_streams(kind, &eth, &ids, &SizeSpec::Fixed(size)).ok()?;
        FixedFrames::new(&t, size)
    }

    /// The receiver's fast path: `Some((stream, seq, tsc))` when `frame` is, but for the
    /// Ethernet addresses and the 802.1Q tag's priority and id (what a device under test may
    /// rewrite, and [`parse_frame`] does not look at), byte for byte the frame this sender builds for that stream, sequence number and
    /// (48-bit) TSC, which is then exactly what [`parse_frame`] would find (`Parsed::Test`);
    /// `None` for anything else, which the caller gives to [`parse_frame`]. Streams are
    /// looked up by the id the frame carries, so `self` must hold every stream
    /// ([`for_receiver`](Self::for_receiver)).
    ///
    /// Where [`parse_frame`] walks the headers and sums the whole frame, this compares the
    /// frame's first two cache lines with the stream's image under a mask (the bytes that
    /// change per frame left out), the filler past them with the pattern, and the fields that
    /// change per frame with what the sender derives from the stamp: the stamp's CRC, the IPv4
    /// id and both checksums. Each byte is thus checked against its one right value, which
    /// says more than the checksums do.
    #[inline(always)]
    pub fn check(&self, frame: &[u8]) -> Option<(u16, u32, u64)> {
        match self.shape {
            Shape::Ipv4Udp => self.check_as::<ETH_LEN, false, false>(frame),
            Shape::Ipv4Tcp => self.check_as::<ETH_LEN, false, true>(frame),
            Shape::Ipv6Udp => self.check_as::<ETH_LEN, true, false>(frame),
            Shape::Ipv6Tcp => self.check_as::<ETH_LEN, true, true>(frame),
            Shape::VlanIpv4Udp => self.check_as::<18, false, false>(frame),
            Shape::VlanIpv4Tcp => self.check_as::<18, false, true>(frame),
            Shape::VlanIpv6Udp => self.check_as::<18, true, false>(frame),
            Shape::VlanIpv6Tcp => self.check_as::<18, true, true>(frame),
        }
    }

    #[inline(always)]
    fn check_as<const L3: usize, const V6: bool, const TCP: bool>(
        &self,
        f: &[u8],
    ) -> Option<(u16, u32, u64)> {
        let (p, ck) = layout(L3, V6, TCP);
        let len = self.len;
        // `new` refused sizes shorter than the headers and the stamp, so the second test never
        // fails for a frame that passed the first; it tells the compiler that every field read
        // below (all before p + TEST_HDR_LEN) is there, and their bounds checks go.
        if f.len() != len || f.len() < p + TEST_HDR_LEN {
            return None;
        }
        let stream = be16_at(f, p + 2);
        let fr = self
            .frames
            .get(stream as usize)
            .filter(|x| x.stream == stream)?;
        // The first min(len, IMAGE) bytes (at least 60) as two windows, overlapping unless
        // they are 128 (or 64) bytes.
        let end = len.min(IMAGE);
        let (img, same) = (&fr.image, &self.same);
        let diff = if end >= 64 {
            masked_diff::<64>(f, img, same, 0) | masked_diff::<64>(f, img, same, end - 64)
        } else {
            masked_diff::<32>(f, img, same, 0) | masked_diff::<32>(f, img, same, end - 32)
        };
        if diff != 0 {
            return None;
        }
        if len > IMAGE && Some(&f[IMAGE..]) != filler_at(p, IMAGE, len) {
            return None;
        }
        let (be16, be32) = (|i| be16_at(f, i), |i| be32_at(f, i));
        let seq = be32(p + 4);
        let tsc = u64::from(be16(p + 8)) << 32 | u64::from(be32(p + 10));
        let crc = be32(p + CRC_OFF);
        if crc != stamp_check(MAGIC, stream, seq, tsc) {
            return None;
        }
        if !V6 {
            let id = seq as u16;
            if be16(L3 + 4) != id || be16(L3 + 10) != fr.ip_csum(id) {
                return None;
            }
        }
        (be16(ck) == fr.l4_csum::<TCP>(seq, tsc, crc)).then_some((stream, seq, tsc))
    }

    /// Writes into `room` (a buffer's room from the start of its data) what every frame of
    /// this size has past the first [`IMAGE`] bytes: the filler, which is the same for every
    /// stream (byte `i` of it is `i`, from the same offset in every frame of a kind). Nothing
    /// for frames that fit the image. Whether the room holds the filler now (false: too short,
    /// and nothing was written).
    pub fn prefill(&self, room: &mut [u8]) -> bool {
        if self.len <= IMAGE {
            return true;
        }
        match (
            room.get_mut(IMAGE..self.len),
            filler_at(self.payload, IMAGE, self.len),
        ) {
            (Some(d), Some(f)) => {
                d.copy_from_slice(f);
                true
            }
            _ => false,
        }
    }

    /// Whether the frames are longer than what [`stamp_burst`](Self::stamp_burst) writes once
    /// the filler is in place: only then is [`prefill`](Self::prefill) worth doing.
    pub fn longer_than_image(&self) -> bool {
        self.len > IMAGE
    }

    /// Tells the stamp that every room it will be given holds the filler already: every buffer
    /// of the pool was [`prefill`](Self::prefill)ed, and nothing but this stamp (whose frames
    /// carry the same filler at the same place) writes to them. Each frame then costs the
    /// writing of its first two cache lines whatever its size, as a generator that reuses its
    /// buffers (Pktgen-DPDK) does; the analyzer still checks the filler byte for byte, so a
    /// buffer that lost it shows as a corrupted frame, never as a good one.
    pub fn set_filler_in_place(&mut self, yes: bool) {
        self.filler_in_place = yes;
    }

    /// Bytes of each frame in the mbuf (its size less the FCS).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never: there is a frame per stream and at least one stream.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Writes one frame into each of `rooms` (a buffer's room from the start of its data, at
    /// least `len()` and [`IMAGE`] bytes, which the caller guarantees: a smaller one is left
    /// unwritten, and counted as written all the same), round robin over the
    /// streams from local stream `*next`, frame `seq[k]` of stream `k`; `next` and `seq` move
    /// on as frames are written. Writes whole cache lines: up to 128 bytes of each room,
    /// however short the frame, and only those once the filler is in place.
    #[inline]
    pub fn stamp_burst<'r>(
        &self,
        rooms: impl Iterator<Item = &'r mut [u8]>,
        seq: &mut [u64],
        next: &mut usize,
        tsc: u64,
    ) {
        match self.shape {
            Shape::Ipv4Udp => self.stamp_each::<ETH_LEN, false, false>(rooms, seq, next, tsc),
            Shape::Ipv4Tcp => self.stamp_each::<ETH_LEN, false, true>(rooms, seq, next, tsc),
            Shape::Ipv6Udp => self.stamp_each::<ETH_LEN, true, false>(rooms, seq, next, tsc),
            Shape::Ipv6Tcp => self.stamp_each::<ETH_LEN, true, true>(rooms, seq, next, tsc),
            Shape::VlanIpv4Udp => self.stamp_each::<18, false, false>(rooms, seq, next, tsc),
            Shape::VlanIpv4Tcp => self.stamp_each::<18, false, true>(rooms, seq, next, tsc),
            Shape::VlanIpv6Udp => self.stamp_each::<18, true, false>(rooms, seq, next, tsc),
            Shape::VlanIpv6Tcp => self.stamp_each::<18, true, true>(rooms, seq, next, tsc),
        }
    }

    #[inline(always)]
    fn stamp_each<'r, const L3: usize, const V6: bool, const TCP: bool>(
        &self,
        rooms: impl Iterator<Item = &'r mut [u8]>,
        seq: &mut [u64],
        next: &mut usize,
        tsc: u64,
    ) {
        let nf = self.frames.len().min(seq.len());
        if nf == 0 {
            return;
        }
        for room in rooms {
            let stream = *next;
            *next = if stream + 1 >= nf { 0 } else { stream + 1 };
            let (Some(f), Some(s)) = (self.frames.get(stream), seq.get_mut(stream)) else {
                continue;
            };
            stamp_fixed::<L3, V6, TCP>(f, self.len, !self.filler_in_place, room, *s as u32, tsc);
            *s += 1;
        }
    }
}

/// The filler a frame whose test payload starts at `p` holds at its bytes `start..end` (all
/// past the test header); `None` for a range that is not all filler.
#[inline(always)]
fn filler_at(p: usize, start: usize, end: usize) -> Option<&'static [u8]> {
    let from = start.checked_sub(p + TEST_HDR_LEN)?;
    FILLER.get(from..from + end.checked_sub(start)?)
}

/// One frame of [`FixedFrames`], with the header offsets as constants (`L3` after the
/// Ethernet header and any 802.1Q tag; IPv6 or IPv4; TCP or UDP).
#[inline(always)]
fn stamp_fixed<const L3: usize, const V6: bool, const TCP: bool>(
    f: &FixedFrame,
    len: usize,
    write_filler: bool,
    room: &mut [u8],
    seq: u32,
    tsc: u64,
) {
    let (p, ck) = layout(L3, V6, TCP);
    if room.len() < len {
        return;
    }
    let Some((head, rest)) = room.split_first_chunk_mut::<IMAGE>() else {
        return;
    };
    // One cache line for a frame that fits it, else two (and the filler past them).
    if len <= 64 {
        head[..64].copy_from_slice(&f.image[..64]);
    } else {
        *head = f.image;
        if len > IMAGE && write_filler {
            if let (Some(d), Some(f)) = (rest.get_mut(..len - IMAGE), filler_at(p, IMAGE, len)) {
                d.copy_from_slice(f);
            }
        }
    }
    let tsc = tsc & TSC_MASK;
    let crc = stamp_check(MAGIC, f.stream, seq, tsc);
    head[p + 4..p + 8].copy_from_slice(&seq.to_be_bytes());
    head[p + 8..p + CRC_OFF].copy_from_slice(&tsc.to_be_bytes()[2..]);
    head[p + CRC_OFF..p + TEST_HDR_LEN].copy_from_slice(&crc.to_be_bytes());
    if !V6 {
        let id = seq as u16;
        head[L3 + 4..L3 + 6].copy_from_slice(&id.to_be_bytes());
        head[L3 + 10..L3 + 12].copy_from_slice(&f.ip_csum(id).to_be_bytes());
    }
    head[ck..ck + 2].copy_from_slice(&f.l4_csum::<TCP>(seq, tsc, crc).to_be_bytes());
}

/// Writes a complete IPv4/UDP test frame of `frame.len()` bytes (60..=1514) into `frame`, from
/// a template made for it: for tests and one-off frames; the sender stamps [`Templates`].
pub fn build_frame(
    frame: &mut [u8],
    eth: &EtherAddrs,
    flow: &Flow,
    stream: u16,
    seq: u32,
    tsc: u64,
) {
    if let Ok(t) = FlowTemplate::new(FrameKind::default(), eth, flow, stream) {
        t.stamp(frame, seq, tsc);
    }
}

/// TSC cycles from a 48-bit transmit stamp `tsc` to `now`: the difference modulo 2^48, or
/// `None` when that is "negative" (the stamp after `now`: cores' TSCs a little apart).
#[inline(always)]
pub fn stamp_age(now: u64, tsc: u64) -> Option<u64> {
    let age = now.wrapping_sub(tsc) & TSC_MASK;
    (age < TSC_MASK / 2).then_some(age)
}

/// When a received frame left its sender, on the TSC timeline of `now` (the receive TSC): the
/// whole TSC its 48-bit stamp stands for; `now` for a stamp "after" `now`. `None` for a frame
/// that is not ours.
pub fn sent_at(frame: &[u8], now: u64) -> Option<u64> {
    let Parsed::Test { tsc, .. } = parse_frame(frame) else {
        return None;
    };
    Some(now.saturating_sub(stamp_age(now, tsc).unwrap_or(0)))
}

/// What a received frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// One of ours, intact. `tsc` is the low 48 bits of the transmit TSC.
    Test { stream: u16, seq: u32, tsc: u64 },
    /// One of ours (IPv4 or IPv6, UDP or TCP to our port range, long enough, with our
    /// [`MAGIC`]) with anything wrong: a length, a checksum, the stamp's CRC, the filler, an
    /// IPv6 field that no checksum covers. The stream id is a hint only.
    Corrupted { stream: u16 },
    /// Anything else: not ours.
    Foreign,
}

/// Classifies a received frame, of any [`FrameKind`]. Never panics, whatever the bytes.
pub fn parse_frame(f: &[u8]) -> Parsed {
    let be16 = |i: usize| be16_at(f, i);
    let mut l3 = ETH_LEN;
    let mut ether_type = be16(12);
    if ether_type == ETHERTYPE_VLAN {
        ether_type = be16(16);
        l3 += VLAN_LEN;
    }
    let (ipv6, proto) = match (ether_type, f.get(l3)) {
        (ETHERTYPE_IPV4, Some(0x45)) => (false, f.get(l3 + 9)),
        (ETHERTYPE_IPV6, Some(b)) if b >> 4 == 6 => (true, f.get(l3 + 6)),
        _ => return Parsed::Foreign,
    };
    let l4 = l3 + if ipv6 { IPV6_LEN } else { IPV4_LEN };
    let (tcp, p) = match proto {
        Some(&PROTO_UDP) => (false, l4 + UDP_LEN),
        Some(&PROTO_TCP) => (true, l4 + TCP_LEN),
        _ => return Parsed::Foreign,
    };
    if f.len() < p + TEST_HDR_LEN || be16(l4 + 2) & 0xff00 != UDP_DST_BASE || be16(p) != MAGIC {
        return Parsed::Foreign;
    }
    let stream = be16(p + 2);
    let len = f.len();
    let l4_len = len - l4;
    let (ip_ok, pseudo) = if ipv6 {
        // No header checksum: every field is checked against what pktgen sends.
        let ok = f[l3..l3 + 4] == [0x60, 0, 0, 0]
            && be16(l3 + 4) as usize == l4_len
            && f[l3 + 7] == HOP_LIMIT;
        (ok, csum_add(0, &f[l3 + 8..l3 + 40]))
    } else {
        let ok = be16(l3 + 2) as usize == len - l3 && csum_fold(csum_add(0, &f[l3..l4])) == 0;
        (ok, csum_add(0, &f[l3 + 12..l3 + 20]))
    };
    let l4_hdr_ok = if tcp {
        f[l4 + 12] == TCP_OFF_BYTE
    } else {
        be16(l4 + 4) as usize == l4_len
    };
    let proto = if tcp { PROTO_TCP } else { PROTO_UDP };
    let l4_ok = csum_fold(csum_add(pseudo + proto as u64 + l4_len as u64, &f[l4..])) == 0;
    let be32 = |i: usize| be32_at(f, i);
    let filler = &f[p + TEST_HDR_LEN..];
    if !ip_ok
        || !l4_hdr_ok
        || !l4_ok
        || l4_len > u16::MAX as usize
        || payload_check(&f[p..]) != be32(p + CRC_OFF)
        || FILLER.get(..filler.len()) != Some(filler)
    {
        return Parsed::Corrupted { stream };
    }
    Parsed::Test {
        stream,
        seq: be32(p + 4),
        tsc: (be16(p + 8) as u64) << 32 | be32(p + 10) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed folds give what folding until the sum fits 16 bits gives.
    #[test]
    fn fixed_folds_match_folding_to_16_bits() {
        let looped = |mut sum: u64| {
            while sum >> 16 != 0 {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            !(sum as u16)
        };
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let edges = [
            0,
            1,
            0xffff,
            0x1_0000,
            0x1_fffe,
            u32::MAX as u64,
            u64::MAX,
            1 << 63,
        ];
        for v in edges.into_iter().chain((0..100_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x >> (x % 48)
        })) {
            assert_eq!(csum_fold(v), looped(v), "{v:#x}");
        }
    }

    /// Every single-bit change of a stamp (magic, stream, seq, TSC: 112 bits), and every swap
    /// of two of its distinct 16-bit words (what a one's-complement sum cannot see), changes
    /// its check value.
    #[test]
    fn the_stamp_check_sees_every_bit_and_every_word_swap() {
        let stamps = [
            (MAGIC, 0u16, 0u32, 0u64),
            (MAGIC, 7, 0xfffe_ffff, TSC_MASK),
            (MAGIC, 65535, 123_456_789, 0x0000_1234_5678_9abc),
        ];
        for (m, st, seq, tsc) in stamps {
            let mut b = [0u8; 14];
            b[0..2].copy_from_slice(&m.to_be_bytes());
            b[2..4].copy_from_slice(&st.to_be_bytes());
            b[4..8].copy_from_slice(&seq.to_be_bytes());
            b[8..14].copy_from_slice(&tsc.to_be_bytes()[2..]);
            let good = payload_check(&b);
            assert_eq!(good, stamp_check(m, st, seq, tsc));
            for bit in 0..112 {
                let mut f = b;
                f[bit / 8] ^= 1 << (bit % 8);
                assert_ne!(payload_check(&f), good, "bit {bit} of {b:?}");
            }
            for i in 0..7 {
                for j in i + 1..7 {
                    let mut f = b;
                    if f[2 * i..2 * i + 2] == f[2 * j..2 * j + 2] {
                        continue;
                    }
                    f.swap(2 * i, 2 * j);
                    f.swap(2 * i + 1, 2 * j + 1);
                    assert_ne!(payload_check(&f), good, "words {i} and {j} of {b:?}");
                }
            }
        }
    }

    const ETH: EtherAddrs = EtherAddrs {
        dst: [2, 0, 0, 0, 0, 1],
        src: [2, 0, 0, 0, 0, 2],
    };

    fn frame(size: usize, stream: u16, seq: u32) -> Vec<u8> {
        let mut f = vec![0u8; buf_len(size)];
        build_frame(
            &mut f,
            &ETH,
            &Flow::nth(stream),
            stream,
            seq,
            0xdead_beef_0000 + seq as u64,
        );
        f
    }

    /// The fast path writes, for every kind and size, byte for byte what the templates write,
    /// round robin over the streams, and moves `seq` and `next` on as the templates' caller
    /// would; a room too short is left as it was.
    #[test]
    fn fixed_frames_are_the_templates_frames() {
        let mut kinds = Vec::new();
        for vlan in [None, Some(0), Some(MAX_VLAN_ID)] {
            for ipv6 in [false, true] {
                for l4 in [L4::Udp, L4::Tcp] {
                    kinds.push(FrameKind { vlan, ipv6, l4 });
                }
            }
        }
        for kind in kinds {
            let min = kind.min_frame();
            for size in [
                min,
                min + 1,
                64,
                65,
                127,
                128,
                131,
                132,
                133,
                1000,
                1517,
                1518,
            ] {
                if size < min {
                    continue;
                }
                let ids = [3u16, 9, 65535];
                let t = Templates::for_streams(kind, &ETH, &ids, &SizeSpec::Fixed(size)).unwrap();
                let fixed = FixedFrames::new(&t, size).unwrap();
                assert_eq!(fixed.len(), size - FCS_LEN);
                for (seq0, tsc) in [
                    (0u64, 0u64),
                    (0xffff, 0x1234_5678_9abc),
                    (u32::MAX as u64 - 1, u64::MAX),
                    (0x1_0000_0000, 0xffff_0000_ffff),
                ] {
                    let mut rooms = vec![vec![0x5au8; 2048]; 7];
                    let mut seq = [seq0, seq0 + 10, seq0 + 20];
                    let mut next = 1;
                    fixed.stamp_burst(
                        rooms.iter_mut().map(|r| &mut r[..]),
                        &mut seq,
                        &mut next,
                        tsc,
                    );
                    assert_eq!(next, (1 + 7) % 3);
                    assert_eq!(seq, [seq0 + 2, seq0 + 10 + 3, seq0 + 20 + 2]);
                    let mut want_seq = [seq0, seq0 + 10, seq0 + 20];
                    for (k, room) in rooms.iter().enumerate() {
                        let local = (1 + k) % 3;
                        let mut want = vec![0u8; size - FCS_LEN];
                        t.stamp(&mut want, local as u16, want_seq[local] as u32, tsc);
                        assert_eq!(
                            &room[..want.len()],
                            &want[..],
                            "{kind} size {size} frame {k} seq {}",
                            want_seq[local]
                        );
                        assert_eq!(
                            parse_frame(&room[..want.len()]),
                            Parsed::Test {
                                stream: ids[local],
                                seq: want_seq[local] as u32,
                                tsc: tsc & TSC_MASK
                            }
                        );
                        // Nothing past the two cache lines (or the frame, when longer).
                        let end = want.len().max(IMAGE);
                        assert!(room[end..].iter().all(|&b| b == 0x5a));
                        want_seq[local] += 1;
                    }
                }
                // With the filler in place, only the first two cache lines are written, and
                // the frame is the same.
                let mut in_place = fixed.clone();
                in_place.set_filler_in_place(true);
                let mut room = vec![0x5au8; 2048];
                assert!(fixed.prefill(&mut room));
                assert_eq!(
                    fixed.prefill(&mut room[..size - FCS_LEN - 1]),
                    size - FCS_LEN <= IMAGE
                );
                let mut seq = [7u64; 3];
                let mut next = 2;
                in_place.stamp_burst(std::iter::once(&mut room[..]), &mut seq, &mut next, 99);
                let mut want = vec![0u8; size - FCS_LEN];
                t.stamp(&mut want, 2, 7, 99);
                assert_eq!(
                    &room[..want.len()],
                    &want[..],
                    "{kind} size {size} in place"
                );
                let mut room = vec![0x5au8; 2048];
                in_place.stamp_burst(std::iter::once(&mut room[..]), &mut seq, &mut next, 99);
                assert!(room[IMAGE..].iter().all(|&b| b == 0x5a));
                assert_eq!(fixed.longer_than_image(), want.len() > IMAGE);
                let mut short = vec![0x5au8; size - FCS_LEN - 1];
                let mut seq = [0u64; 3];
                let mut next = 0;
                fixed.stamp_burst(std::iter::once(&mut short[..]), &mut seq, &mut next, 1);
                assert!(short.iter().all(|&b| b == 0x5a), "{kind} size {size}");
            }
        }
        let t = Templates::new(
            FrameKind::default(),
            &ETH,
            &[Flow::nth(0)],
            &SizeSpec::Fixed(64),
        )
        .unwrap();
        assert!(FixedFrames::new(&t, 63).is_none());
        assert!(FixedFrames::new(&t, MAX_FRAME + 1).is_none());
    }

    /// The receiver's check accepts every frame the sender builds, whatever its layer 2, and
    /// says what `parse_frame` says of it; it refuses every frame with any other byte changed
    /// (every bit of the first 160 bytes, one per byte past them), a frame of another length,
    /// a stream it does not hold, and garbage, all of which then go to `parse_frame`.
    #[test]
    fn the_receivers_check_accepts_exactly_the_senders_frames() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for vlan in [None, Some(0), Some(MAX_VLAN_ID)] {
            for ipv6 in [false, true] {
                for l4 in [L4::Udp, L4::Tcp] {
                    let kind = FrameKind { vlan, ipv6, l4 };
                    let min = kind.min_frame();
                    for size in [min, min + 1, 64, 65, 71, 127, 128, 129, 131, 1518] {
                        if size < min {
                            continue;
                        }
                        let rx = FixedFrames::for_receiver(kind, 5, size).unwrap();
                        // The sender's frames, with other addresses and another 802.1Q id.
                        let other = FrameKind {
                            vlan: vlan.map(|v| v ^ 0x5a5),
                            ..kind
                        };
                        let eth = EtherAddrs {
                            dst: [0x0a, 1, 2, 3, 4, 5],
                            src: [0x0e, 6, 7, 8, 9, 10],
                        };
                        let ids = [0u16, 1, 2, 3, 4, 5];
                        let t = Templates::for_streams(other, &eth, &ids, &SizeSpec::Fixed(size))
                            .unwrap();
                        for (stream, seq, tsc) in [
                            (0u16, 0u32, 0u64),
                            (4, 0xffff, 0x1234_5678_9abc),
                            (2, u32::MAX, TSC_MASK),
                            (3, 0x8000_0000, 0xffff_0000_ffff),
                        ] {
                            let mut f = vec![0u8; size - FCS_LEN];
                            t.stamp(&mut f, stream, seq, tsc);
                            let want = Parsed::Test { stream, seq, tsc };
                            assert_eq!(parse_frame(&f), want);
                            assert_eq!(
                                rx.check(&f),
                                Some((stream, seq, tsc)),
                                "{kind} size {size} stream {stream} seq {seq}"
                            );
                            // Layer 2 is not compared.
                            let tci = if vlan.is_some() { 14..16 } else { 0..0 };
                            let l2 = [0..12, tci];
                            let mut g = f.clone();
                            for r in &l2 {
                                g[r.clone()].iter_mut().for_each(|b| *b = rnd() as u8);
                            }
                            assert_eq!(rx.check(&g), Some((stream, seq, tsc)));
                            // Any other byte is.
                            for i in 0..f.len() {
                                if l2.iter().any(|r| r.contains(&i)) {
                                    continue;
                                }
                                let bits = if i < 160 { 0..8 } else { (i % 8)..(i % 8 + 1) };
                                for bit in bits {
                                    let mut g = f.clone();
                                    g[i] ^= 1 << bit;
                                    assert_eq!(
                                        rx.check(&g),
                                        None,
                                        "{kind} size {size}: bit {bit} of byte {i}"
                                    );
                                }
                            }
                            // A few bytes changed at random: refused.
                            for _ in 0..20 {
                                let mut g = f.clone();
                                for _ in 0..1 + rnd() % 4 {
                                    let i = 16 + (rnd() as usize) % (g.len() - 16);
                                    g[i] ^= 1 + (rnd() % 255) as u8;
                                }
                                assert_eq!(rx.check(&g), None, "{kind} size {size}");
                            }
                            // Shorter or longer than the size: refused (parse_frame decides).
                            assert_eq!(rx.check(&f[..f.len() - 1]), None);
                            let mut longer = f.clone();
                            longer.push(f.len() as u8);
                            assert_eq!(rx.check(&longer), None);
                        }
                        // A stream the check does not hold: refused, parse_frame finds it.
                        let mut f = vec![0u8; size - FCS_LEN];
                        t.stamp(&mut f, 5, 1, 2);
                        assert_eq!(rx.check(&f), None);
                        assert_eq!(
                            parse_frame(&f),
                            Parsed::Test {
                                stream: 5,
                                seq: 1,
                                tsc: 2
                            }
                        );
                        // Garbage, and zeros (net_null's frames).
                        let g: Vec<u8> = (0..size - FCS_LEN).map(|_| rnd() as u8).collect();
                        assert_eq!(rx.check(&g), None);
                        assert_eq!(rx.check(&vec![0u8; size - FCS_LEN]), None);
                    }
                }
            }
        }
    }

    #[test]
    fn frames_round_trip() {
        for size in [64, 65, 128, 594, 1500, 1518] {
            for (stream, seq) in [(0u16, 0u32), (7, 12345), (65535, u32::MAX)] {
                let f = frame(size, stream, seq);
                assert_eq!(f.len(), size - 4);
                assert_eq!(
                    parse_frame(&f),
                    Parsed::Test {
                        stream,
                        seq,
                        tsc: 0xdead_beef_0000 + seq as u64
                    }
                );
            }
        }
    }

    #[test]
    fn any_flipped_byte_after_the_macs_is_corruption_or_foreign() {
        let f = frame(128, 3, 99);
        for i in 12..f.len() {
            let mut g = f.clone();
            g[i] ^= 0x40;
            assert!(
                !matches!(parse_frame(&g), Parsed::Test { .. }),
                "flip at byte {i} went unnoticed"
            );
        }
    }

    #[test]
    fn foreign_frames() {
        assert_eq!(parse_frame(&[0u8; 60]), Parsed::Foreign);
        let mut arp = frame(64, 0, 0);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(parse_frame(&arp), Parsed::Foreign);
        let mut other_port = frame(64, 0, 0);
        other_port[ETH_LEN + IPV4_LEN + 2] = 0x00;
        assert_eq!(parse_frame(&other_port), Parsed::Foreign);
        assert_eq!(parse_frame(&frame(64, 0, 0)[..40]), Parsed::Foreign);
    }

    #[test]
    fn only_frames_with_our_magic_are_ours() {
        // IPv4/UDP to our port range, but not our payload: foreign, not corrupted.
        for size in [64, 128, 1518] {
            let mut f = frame(size, 0, 7);
            f[PAYLOAD_OFF..PAYLOAD_OFF + 2].fill(0);
            assert_eq!(parse_frame(&f), Parsed::Foreign, "{size}");
        }
        let mut f = frame(64, 0, 7);
        f[PAYLOAD_OFF..].fill(0);
        assert_eq!(parse_frame(&f), Parsed::Foreign);
        // Ours with a damaged payload, or a wrong length (a stale buffer handed back longer
        // than the frame in it): corrupted.
        let mut bad_crc = frame(64, 0, 7);
        *bad_crc.last_mut().unwrap() ^= 1;
        assert_eq!(parse_frame(&bad_crc), Parsed::Corrupted { stream: 0 });
        let mut longer = frame(64, 2, 7);
        longer.extend_from_slice(&[0; 4]);
        assert_eq!(parse_frame(&longer), Parsed::Corrupted { stream: 2 });
    }

    #[test]
    fn option_ranges() {
        assert_eq!(check_stats_period(0), Ok(0));
        assert_eq!(check_stats_period(86_400), Ok(86_400));
        assert!(check_stats_period(u64::MAX).is_err());
        assert!(check_drain_ms(u64::MAX).is_err());
        assert_eq!(check_drain_ms(500).unwrap().as_millis(), 500);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e300, 1e9] {
            assert!(parse_duration_s(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration_s(2.5).unwrap().as_millis(), 2500);
        assert_eq!(parse_mac("02:aA:00:00:00:ff"), Ok([2, 0xaa, 0, 0, 0, 0xff]));
        for bad in [
            "",
            "zz",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "+2:00:00:00:00:00",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!("64".parse::<SizeSpec>().unwrap(), SizeSpec::Fixed(64));
        assert_eq!(
            "64-1518".parse::<SizeSpec>().unwrap(),
            SizeSpec::Range(64, 1518)
        );
        assert_eq!("IMIX".parse::<SizeSpec>().unwrap(), SizeSpec::Imix);
        for bad in ["63", "1519", "x", "100-90", "-5", ""] {
            assert!(bad.parse::<SizeSpec>().is_err(), "{bad}");
        }
        let r = SizeSpec::Range(100, 110);
        let seen: std::collections::BTreeSet<usize> = (0..1000).map(|n| r.size_of(n)).collect();
        assert_eq!(seen.len(), 11, "{seen:?}");
        let imix: Vec<usize> = (0..1200).map(|n| SizeSpec::Imix.size_of(n)).collect();
        let count = |s| imix.iter().filter(|&&x| x == s).count();
        assert_eq!((count(64), count(594), count(1518)), (700, 400, 100));
    }

    #[test]
    fn rates() {
        assert_eq!("max".parse::<Rate>().unwrap(), Rate::Max);
        assert_eq!("50000".parse::<Rate>().unwrap(), Rate::Pps(50000.0));
        assert_eq!("1.5Mpps".parse::<Rate>().unwrap(), Rate::Pps(1.5e6));
        assert_eq!("10kpps".parse::<Rate>().unwrap(), Rate::Pps(1e4));
        assert_eq!("10Kpps".parse::<Rate>().unwrap(), Rate::Pps(1e4));
        assert_eq!("2000 PPS".parse::<Rate>().unwrap(), Rate::Pps(2000.0));
        assert_eq!("1Gbps".parse::<Rate>().unwrap(), Rate::Bps(1e9));
        assert_eq!("1gbps".parse::<Rate>().unwrap(), Rate::Bps(1e9));
        assert_eq!("100 Mbps".parse::<Rate>().unwrap(), Rate::Bps(1e8));
        assert_eq!("5Kbps".parse::<Rate>().unwrap(), Rate::Bps(5e3));
        assert_eq!("64000bps".parse::<Rate>().unwrap(), Rate::Bps(64e3));
        // 10 Gbit/s of 64-byte frames is the classic 14.88 Mpps.
        let pps = "10Gbps".parse::<Rate>().unwrap().pps(64.0).unwrap();
        assert!((pps - 14_880_952.0).abs() < 1.0, "{pps}");
        for bad in ["", "fast", "-5", "0", "1xbps"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
        // Out of range: the token bucket would overflow, or never grant a frame.
        for bad in [
            "1e300", "1e11", "100G", "0.5", "1e-300", "1e14bps", "100bps", "inf",
        ] {
            let e = bad.parse::<Rate>().unwrap_err();
            assert!(e.contains("invalid rate"), "{bad}: {e}");
        }
        assert_eq!("1e10".parse::<Rate>().unwrap(), Rate::Pps(1e10));
        assert_eq!("10Tbps".parse::<Rate>().ok(), None, "no T suffix");
    }

    /// A multiplier without a unit could mean packets or bits: refused, saying both.
    #[test]
    fn bare_multipliers_are_ambiguous() {
        for (bad, hint) in [
            (
                "1G",
                "say 1Gbps (bits per second) or 1Gpps (packets per second)",
            ),
            (
                "1M",
                "say 1Mbps (bits per second) or 1Mpps (packets per second)",
            ),
            (
                "1k",
                "say 1Kbps (bits per second) or 1Kpps (packets per second)",
            ),
            ("1.5M", "say 1.5Mbps (bits per second) or 1.5Mpps"),
        ] {
            let e = bad.parse::<Rate>().unwrap_err();
            assert!(e.starts_with(&format!("invalid rate {bad:?}")), "{e}");
            assert!(e.contains(hint), "{bad}: {e}");
        }
    }

    #[test]
    fn rates_display_as_users_read_them() {
        let show = |r: &str| r.parse::<Rate>().unwrap().to_string();
        assert_eq!(show("max"), "max");
        assert_eq!(show("1000000"), "1.00 Mpps");
        assert_eq!(show("10kpps"), "10.00 Kpps");
        assert_eq!(show("1Gbps"), "1.00 Gbit/s");
        assert!(!format!("{}", Rate::Pps(1e6)).contains("Pps("));
    }

    #[test]
    fn token_bucket_never_overflows() {
        for rate in [f64::MAX, 1e300, MAX_PPS, 1e-300, 0.0, f64::NAN] {
            let mut b = TokenBucket::new(rate, 3_000_000_000, 32, 0);
            assert!(b.take(u64::MAX, 32) <= 32);
            assert!(b.take(1, 32) <= 32, "TSC went backwards: wraps, saturates");
            b.refund(u32::MAX);
            assert!(b.take(2, u32::MAX) <= 32);
        }
    }

    #[test]
    fn token_bucket_holds_the_rate() {
        let hz = 2_000_000_000u64;
        let mut b = TokenBucket::new(1_000_000.0, hz, 64, 0);
        let mut sent = 0u64;
        let mut now = 0u64;
        // One simulated second, polled every 1000 cycles, as much as allowed taken each time.
        while now < hz {
            now += 1000;
            sent += b.take(now, 32) as u64;
        }
        assert!((999_000..=1_000_000).contains(&sent), "{sent}");
        // A long pause saves up at most the burst.
        assert_eq!(b.take(now + hz, 1000), 64);
    }

    /// The search's test fixture polices frames at their TX stamps: a full bucket at rate C
    /// holding B admits every frame of a sender whose own bucket (rate at most C, saving at
    /// most B) let it out, however the sender's polls were spaced and however late the
    /// receiver read them; a faster sender loses some. Policed when the receiver reads them
    /// (as the fixture once did), the same frames are lost once the receiver is held up for
    /// longer than the buffer lasts.
    #[test]
    fn a_policer_in_the_senders_time_admits_what_the_sender_let_out() {
        let hz = 3_000_000_000u64;
        let (c, b) = (45_000.0, 450);
        let cases = [
            (45_000.0, 450, false),
            (40_000.0, 400, false),
            (46_000.0, 460, true),
        ];
        for (rate, save, should_drop) in cases {
            let mut tx = TokenBucket::new(rate, hz, save, 0);
            let mut at_stamp = TokenBucket::new(c, hz, b, 0).filled();
            let mut at_read = TokenBucket::new(c, hz, b, 0).filled();
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            let mut next = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let (mut now, mut read_at) = (0u64, 0u64);
            let (mut sent, mut dropped, mut dropped_at_read) = (0u64, 0u64, 0u64);
            while now < 2 * hz {
                // Polls 1 us to 1 ms apart, and now and then a stall of up to 40 ms.
                let r = next();
                now += if r % 50 == 0 {
                    r % (hz / 25)
                } else {
                    hz / 1_000_000 + r % (hz / 1000)
                };
                let n = tx.take(now, 32);
                sent += u64::from(n);
                // The receiver reads the burst a moment later, or, now and then, after a stall
                // of 12 to 40 ms; in order.
                let r = next();
                let delay = if r % 200 == 0 {
                    hz / 80 + r % (hz / 35)
                } else {
                    r % (hz / 10_000)
                };
                read_at = read_at.max(now + delay);
                for _ in 0..n {
                    dropped += u64::from(at_stamp.take_in_order(now, 1) == 0);
                    dropped_at_read += u64::from(at_read.take_in_order(read_at, 1) == 0);
                }
            }
            assert!(sent > 0);
            assert_eq!(
                dropped > 0,
                should_drop,
                "rate {rate}: {dropped} of {sent} dropped"
            );
            assert!(
                dropped_at_read > dropped,
                "rate {rate}: {dropped_at_read} at read"
            );
        }
        // A time before the latest adds nothing, and does not move the clock back.
        let mut p = TokenBucket::new(1_000.0, hz, 10, 0);
        let t = hz / 50;
        assert_eq!(p.take_in_order(t, 10), 10);
        assert_eq!(p.take_in_order(0, 10), 0);
        assert_eq!(p.take_in_order(t, 10), 0);
        assert_eq!(p.take_in_order(t + hz / 1000 * 3 / 2, 10), 1);
    }
}
