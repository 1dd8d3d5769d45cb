//! pktgen: a load generator and analyzer that proves what came back.
//!
//! `pktgen [EAL options] -- [--tx-port P] [--rx-port P] [-p PORTMASK] [--txq N] [--rxq N]
//!  [--tx-lcores LIST] [--rx-lcores LIST] [--rate max|PPS|BITS] [--size N|MIN-MAX|imix]
//!  [--flows N] [--count N] [--duration S] [--drain-ms MS] [--dst-mac MAC] [-T STATS_S]
//!  [--max-loss N|P%] [--max-latency-us US] [--max-p99-latency-us US] [--report FILE.json]
//!  [--control SOCKET [--paused]] [--config FILE.toml] [--vlan ID] [--ipv6] [--proto udp|tcp]
//!  [--sample-ms MS] [--search ndr|pdr [--search-loss P%] [--trial-s S] [--search-resolution PCT]
//!  [--search-min RATE]]`
//!
//! Transmits test frames (Ethernet, an optional VLAN tag, IPv4 or IPv6, UDP or TCP,
//! checksummed, with a stream id, sequence number, TSC timestamp and check value in the
//! payload) on the TX port at a rate held by a TSC token bucket,
//! and analyzes what the RX port receives: per stream, received, lost (decided after the drain
//! wait), duplicated, reordered, late, corrupted, and one-way latency percentiles, in memory
//! that does not grow with the run. Frames that are not ours are counted apart (`foreign`).
//!
//! Every run is judged (see `pktgen::verdict`): exit 0 when every pass criterion holds, 2 when
//! one fails (one line each on stderr, after the summary and the report), 1 on an error.
//!
//! Output to stdout never stops a run: a closed pipe (`pktgen ... | head -3`) makes the lines
//! vanish, and the run still finishes, stops its ports and writes its report.
//!
//! With `--control SOCKET`, the main lcore also answers the control socket (`start`, `stop`,
//! `rate R`, `stats`: see `pktgen::control`); it publishes `/pktgen/stats` on DPDK's telemetry
//! socket in any case.
//!
//! Ports, queues, lcores: `-p PORTMASK` transmits and receives on every enabled port, `--txq`
//! and `--rxq` give each port that many queues. Each TX queue is a TX side owning the streams
//! `s` with `s % sides == its index`, each RX queue an RX side with its own analyzer; the
//! analyzers are merged by sequence number at the end. By default the TX sides run on the
//! first half of the worker lcores and the RX sides on the rest (`--tx-lcores`/`--rx-lcores`
//! place them); with one worker all run on it in one loop, with none on a thread beside the
//! main lcore. The main lcore prints stats.

mod trials;

use anyhow::{bail, Context, Result};
use apps_common::units;
use dataplane::ctlsock::{CtlServer, Envelope, REQUEST_DEADLINE};
use dataplane::stats::OwnedCounter;
use pktgen::analyzer::{Analyzer, Latency};
use pktgen::control::{PktgenProtocol, RateSetting, Request, Stats, TxControl, TxState};
use pktgen::frames::{self, buf_len, EtherAddrs, FixedFrames, SizeSpec, Templates, TokenBucket};
use pktgen::options::{PktgenOptions, Settings};
use pktgen::report::{describe_rate, LcoreCost, Measured, Report};
use pktgen::series::{Series, Totals, DEFAULT_CAPACITY};
use pktgen::verdict::us;
use pmd::{
    Burst, Eal, FreeBatch, Mempool, Port, PortConfig, RxQueue, TelemetryCommand, TxQueue, MAX_BURST,
};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use trials::{finish_search, LiveTrials};

/// The exit status of a run that failed a pass criterion (0: passed, 1: an error).
const EXIT_FAILED_CRITERIA: u8 = 2;

fn main() -> ExitCode {
    let mut passed = true;
    let status = apps_common::main_with("pktgen", || {
        passed = run()?;
        Ok(())
    });
    if passed {
        status
    } else {
        ExitCode::from(EXIT_FAILED_CRITERIA)
    }
}

/// One run; whether it passed its criteria.
fn run() -> Result<bool> {
    let loaded = apps_common::options::load::<PktgenOptions>()?;
    let runtime = Runtime {
        control: loaded.options.control.clone(),
        paused: loaded.options.paused.unwrap_or(false),
    };
    let settings = loaded.options.resolve()?;
    // Before anything starts: a report that cannot be written is an error now, not after the
    // run.
    if let Some(path) = &settings.report {
        apps_common::outfile::check_writable("--report", path)?;
    }
    let eal = Eal::init(&loaded.eal)?;
    generate(&eal, &settings, &runtime)
}

/// Runtime control's settings (`--control`, `--paused`; checked by `resolve`).
struct Runtime {
    control: Option<PathBuf>,
    paused: bool,
}

/// State the sides share: stop flags, the control word, and each side's owner-written lane.
struct Shared {
    /// Set by the main lcore (duration, signal): stop transmitting.
    stop_tx: AtomicBool,
    /// Set by the main lcore: a signal stopped the TX sides before their count or duration.
    interrupted: AtomicBool,
    /// Set by the main lcore when an lcore could not be launched: the sides already running
    /// stop sending and receiving at once, with no drain (the run fails).
    aborted: AtomicBool,
    /// One per TX side, written by that side only.
    tx: Box<[TxLane]>,
    /// One per RX side, written by that side only.
    rx: Box<[RxLane]>,
    /// Pause and rate, set by the main lcore (control socket), read by each TX side once per
    /// burst.
    control: TxControl,
    /// The run's time series, recorded by the monitor every `--sample-ms` (off the per-packet
    /// path: the lock is taken by the monitor only, then once at the end).
    series: Mutex<Series>,
}

/// A TX side's progress, written by that side only, alone in its cache lines.
#[derive(Default)]
#[repr(C, align(128))]
struct TxLane {
    /// Frames built so far (stored before they are handed to the TX queue). Tells the
    /// analyzers which sequence numbers of this side's streams can be ours yet.
    built: AtomicU64,
    /// Frames sent.
    sent: OwnedCounter,
    /// Set once the side has sent its last frame (after `sent` is final).
    done: AtomicBool,
}

/// An RX side's progress, written by that side only, alone in its cache lines.
#[derive(Default)]
#[repr(C, align(128))]
struct RxLane {
    /// Frames received (ours or not).
    frames: OwnedCounter,
    /// Distinct frames of ours received (a store per burst by the owner).
    distinct: AtomicU64,
    /// Set once the side's drain is over.
    done: AtomicBool,
    /// The side's latest analysis, refreshed a few times a second for the stats line.
    snapshot: Mutex<Snapshot>,
}

impl Shared {
    fn new(tx_sides: usize, rx_sides: usize, control: TxControl, series: Series) -> Self {
        Shared {
            stop_tx: AtomicBool::new(false),
            interrupted: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            tx: (0..tx_sides).map(|_| TxLane::default()).collect(),
            rx: (0..rx_sides).map(|_| RxLane::default()).collect(),
            control,
            series: Mutex::new(series),
        }
    }

    /// Frames sent by every TX side so far.
    fn tx_total(&self) -> u64 {
        self.tx.iter().map(|l| l.sent.get()).sum()
    }

    /// Frames received by every RX side so far.
    fn rx_frames(&self) -> u64 {
        self.rx.iter().map(|l| l.frames.get()).sum()
    }

    /// Distinct frames of ours received by every RX side so far.
    fn rx_distinct(&self) -> u64 {
        // Relaxed: statistics; the drain decision reads them after tx_done (Acquire), and a
        // count read a little stale only makes the drain wait one more loop.
        self.rx
            .iter()
            .map(|l| l.distinct.load(Ordering::Relaxed))
            .sum()
    }

    /// Whether every TX side has sent its last frame; once true, `tx_total` is final (unless
    /// the run was aborted, when nothing is reported).
    fn tx_done(&self) -> bool {
        // Acquire: pairs with the Release in Tx::finish, so each side's `sent` is final.
        // Relaxed for `aborted`: an aborted run's counts are not reported.
        self.tx.iter().all(|l| l.done.load(Ordering::Acquire))
            || self.aborted.load(Ordering::Relaxed)
    }

    /// An lcore could not be launched: the sides already running stop (see `aborted`).
    fn abort(&self) {
        // Relaxed: flags that carry no data.
        self.aborted.store(true, Ordering::Relaxed);
        self.stop_tx.store(true, Ordering::Relaxed);
    }

    /// Whether every RX side's drain is over.
    fn rx_done(&self) -> bool {
        // Acquire: pairs with the Release in Worker::run, so the monitor's last sample reads
        // each side's final snapshot (the sides themselves come back through the join).
        self.rx.iter().all(|l| l.done.load(Ordering::Acquire))
    }

    /// Whether every TX side that is still sending has acted on the paused `word`.
    fn all_acked(&self, word: u64) -> bool {
        self.tx.iter().enumerate().all(|(i, l)| {
            // Acquire: as in tx_done.
            l.done.load(Ordering::Acquire) || self.control.acked(i, word)
        })
    }

    /// The RX sides' latest analyses together: counts summed, the latency of the side with
    /// the highest p99 (for the stats line; the report merges the histograms exactly).
    fn snapshot(&self) -> Snapshot {
        let mut out = Snapshot::default();
        for l in self.rx.iter() {
            let s = *l.snapshot.lock().unwrap_or_else(|e| e.into_inner());
            out.received += s.received;
            out.distinct += s.distinct;
            if s.latency.p99 >= out.latency.p99 {
                out.latency = s.latency;
            }
        }
        out
    }
}

#[derive(Default, Clone, Copy)]
struct Snapshot {
    received: u64,
    distinct: u64,
    latency: Latency,
    /// The analyzer's exact counts so far (`stats` shows them to a drill attached to the run).
    duplicated: u64,
    reordered: u64,
    corrupted: u64,
}

/// Per-stream counters that one lcore writes per frame, alone in their 128-byte blocks (a
/// cache line and the one the adjacent-line prefetcher pairs it with): no other allocation,
/// which another lcore may read per frame, shares them. A plain `Vec` of a few counters is a
/// small heap chunk among others: the TX side's sequence numbers once sat in the block of the
/// RX side's `built` table, and `perf` put a quarter of the RX lcore's samples on that load.
struct OwnCounters {
    buf: Vec<u64>,
    /// Where the counters start in `buf` (a 128-byte boundary, 128 bytes in at least).
    start: usize,
    len: usize,
}

impl OwnCounters {
    /// Counters per 128-byte block.
    const BLOCK: usize = 128 / std::mem::size_of::<u64>();

    fn new(len: usize) -> OwnCounters {
        // One block before, up to one to reach a boundary, one to round the end up, one after.
        let buf = vec![0u64; len + 4 * Self::BLOCK];
        let misalign = (buf.as_ptr() as usize / std::mem::size_of::<u64>()) % Self::BLOCK;
        let start = Self::BLOCK + (Self::BLOCK - misalign) % Self::BLOCK;
        OwnCounters { buf, start, len }
    }

    fn as_slice(&self) -> &[u64] {
        &self.buf[self.start..self.start + self.len]
    }

    fn as_mut_slice(&mut self) -> &mut [u64] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

/// A transmit side: one TX queue, its own streams, its share of the rate. Aligned like
/// [`OwnCounters`], so that the fields it writes per burst share no block with the RX sides.
#[repr(align(128))]
struct Tx<'q, 'a> {
    /// Its index among the TX sides: its lane in [`Shared`] and in the analyzers.
    lane: usize,
    txq: TxQueue<'q, 'a>,
    pool: &'a Mempool<'a>,
    /// Templates of its own streams: local stream `k` is the run's stream `lane + k * sides`.
    frames: Templates,
    /// The same streams' frames ready to stamp, for a run of one frame size (the fast path).
    fixed: Option<FixedFrames>,
    /// How many streams it owns.
    streams: usize,
    size: SizeSpec,
    count: u64,
    bucket: Option<TokenBucket>,
    /// Next sequence number (= frames sent) per local stream.
    seq: OwnCounters,
    sent: u64,
    /// Bytes of the frames sent (FCS included), kept like `seq`.
    bytes: u64,
    /// TSC of the first step and of the end of sending.
    first_tsc: Option<u64>,
    last_tsc: u64,
    /// Frames built but not yet taken by the TX queue: sent first next time, in order.
    pending: Burst<'a>,
    /// The local stream of the next frame built: `sent % streams`, kept rather than divided.
    next_stream: usize,
    tsc_hz: u64,
    /// The control word this side last acknowledged (see `TxControl`), and the rate it last
    /// built its token bucket for.
    acked: u64,
    rate_bits: u64,
    /// TX sides sharing the rate.
    sides: usize,
    /// TSC cycles of the loops that sent frames, and those frames (see `LcoreCost`).
    busy: Busy,
}

impl Tx<'_, '_> {
    /// One iteration; returns false once done.
    fn step(&mut self, shared: &Shared) -> bool {
        let now = pmd::rdtsc();
        self.first_tsc.get_or_insert(now);
        let lane = &shared.tx[self.lane];
        // Relaxed: a stop request carries no data. Checked even with frames pending, so that a
        // TX queue that never drains (link down) cannot keep pktgen from stopping: `finish`
        // retries the pending frames a bounded number of times.
        if shared.stop_tx.load(Ordering::Relaxed) {
            return false;
        }
        let mut built = false;
        if self.pending.is_empty() {
            if self.sent >= self.count {
                return false;
            }
            if !self.follow_control(shared, now) {
                return true;
            }
            let want = (MAX_BURST as u64).min(self.count - self.sent) as u32;
            let n = match self.bucket.as_mut() {
                Some(b) => b.take(now, want),
                None => want,
            };
            if n == 0 {
                return true;
            }
            // Raw buffers (headroom, lengths and offload flags reset, as dmafwd and l2fwd's
            // copies take them), straight into the (empty) pending burst: the frame is written
            // below (whole, or its first 128 bytes when the filler is in place) and asks for
            // no offload.
            // One size for every frame: the lengths are set as the buffers are taken.
            let fixed = match self.size {
                SizeSpec::Fixed(s) => Some(s),
                _ => None,
            };
            let len = fixed.map_or(0, buf_len);
            if !self.pending.alloc_raw_len(self.pool, n as usize, len) {
                if let Some(b) = self.bucket.as_mut() {
                    b.refund(n);
                }
                return true;
            }
            let nf = self.streams;
            match (fixed, &self.fixed) {
                (Some(size), Some(frames)) => {
                    self.bytes += n as u64 * size as u64;
                    // Round robin over the streams (frame k is local stream k % streams).
                    // Whole cache lines: the room past a short frame's end is the buffer's.
                    frames.stamp_burst(
                        self.pending.as_mut_slice().iter_mut().map(|m| m.room_mut()),
                        self.seq.as_mut_slice(),
                        &mut self.next_stream,
                        now,
                    );
                }
                _ => {
                    for (k, m) in self.pending.as_mut_slice().iter_mut().enumerate() {
                        let idx = self.sent + k as u64;
                        let stream = self.next_stream;
                        self.next_stream = if stream + 1 == nf { 0 } else { stream + 1 };
                        let size = self.size.size_of(idx);
                        self.bytes += size as u64;
                        // Cannot fail: every size fits a 2048-byte mbuf.
                        let _ = m.set_len(buf_len(size));
                        let seq = &mut self.seq.as_mut_slice()[stream];
                        self.frames
                            .stamp(m.data_mut(), stream as u16, *seq as u32, now);
                        *seq += 1;
                    }
                }
            }
            self.sent += n as u64;
            // Release: pairs with the Acquire in Rx::step; a frame seen there was built after
            // this store, so the analyzer's bound covers it. Only this side writes its lane.
            lane.built.store(self.sent, Ordering::Release);
            built = true;
        }
        let before = self.pending.len();
        let sent = self.txq.tx_burst(&mut self.pending);
        lane.sent.add(sent as u64);
        // A loop that built a burst counts whatever the queue took (the frames are counted
        // when sent): a full queue then costs the building loop and the retries that send.
        if sent > 0 || built {
            self.busy.add(now, sent);
        }
        if sent < before {
            // Queue full: the rest go first next time, keeping each stream's order.
            std::hint::spin_loop();
        }
        true
    }

    /// Once per burst, with nothing pending: takes up the control socket's pause and rate.
    /// Whether to send now (false: paused).
    #[inline]
    fn follow_control(&mut self, shared: &Shared, now: u64) -> bool {
        let word = shared.control.word();
        if TxControl::is_paused(word) {
            if self.acked != word {
                shared.control.acknowledge(self.lane, word);
                self.acked = word;
            }
            return false;
        }
        let bits = shared.control.rate_bits();
        if bits != self.rate_bits {
            self.rate_bits = bits;
            // Each side sends its share of the rate.
            self.bucket = TxControl::pps_of(bits)
                .map(|pps| tx_bucket(pps / self.sides as f64, self.tsc_hz, now));
        }
        true
    }

    fn finish(&mut self, shared: &Shared) {
        let lane = &shared.tx[self.lane];
        // Frames still pending were never sent: flush them with retries.
        for _ in 0..1000 {
            if self.pending.is_empty() {
                break;
            }
            let sent = self.txq.tx_burst(&mut self.pending);
            lane.sent.add(sent as u64);
        }
        let unsent = self.pending.len() as u64;
        if unsent > 0 {
            // Give the frames back and count them as not sent: they were the newest of their
            // streams, so the per-stream counts stay exact.
            let nf = self.streams as u64;
            for k in 0..unsent {
                let idx = self.sent - 1 - k;
                self.seq.as_mut_slice()[(idx % nf) as usize] -= 1;
                self.bytes -= self.size.size_of(idx) as u64;
            }
            self.pending.free_all();
        }
        self.last_tsc = pmd::rdtsc();
        // Release: `sent` (and the per-stream counts, handed over by the join) are complete
        // before an RX side, reading `done` with Acquire, trusts them.
        lane.done.store(true, Ordering::Release);
    }
}

/// How long the TX side may fall behind its rate and still catch up.
const CATCH_UP: f64 = 0.010;

/// The TX side's token bucket at `pps`: it saves up to [`CATCH_UP`] worth of frames (at
/// least a burst), so that an lcore held up for a moment (an interrupt, or descheduled on a
/// shared core) catches up and the rate holds over each second; a longer stall is lost time,
/// and the report says the rate fell short.
fn tx_bucket(pps: f64, tsc_hz: u64, now: u64) -> TokenBucket {
    TokenBucket::new(pps, tsc_hz, saved(pps), now)
}

/// Frames a bucket at `pps` saves up: [`CATCH_UP`] of them, at least a burst. The test
/// fixture's device buffers as many (see `Rx::police`).
fn saved(pps: f64) -> u32 {
    ((pps * CATCH_UP) as u32).max(MAX_BURST as u32)
}

/// A receive side: one RX queue and its own analyzer of every stream. Aligned like
/// [`OwnCounters`], so that what it writes per frame shares no block with the TX sides.
#[repr(align(128))]
struct Rx<'q, 'a> {
    /// Its index among the RX sides: its lane in [`Shared`].
    lane: usize,
    rxq: RxQueue<'q, 'a>,
    analyzer: Analyzer,
    burst: Burst<'a>,
    next_snapshot: u64,
    snapshot_every: u64,
    /// TSC when every TX side was first seen done.
    tx_done_at: Option<u64>,
    drain_cycles: u64,
    /// TSC of the last burst that held a frame of ours.
    last_rx_tsc: u64,
    /// Distinct frames received (all RX sides) and frames sent when the current trial began
    /// (a search runs several; a plain run one, from 0): the drain is over once the trial's
    /// are all back.
    base: (u64, u64),
    /// Test fixture (`--fixture-capacity-pps`): frames beyond this rate are dropped before
    /// analysis, as a device of that capacity would; and how many were.
    police: Option<TokenBucket>,
    policed: u64,
    /// Loops so far (see `step`).
    polls: u32,
    /// TSC cycles of the loops that received frames, and those frames (see `LcoreCost`).
    busy: Busy,
}

impl Rx<'_, '_> {
    /// One iteration; returns false once the drain is over.
    fn step(&mut self, shared: &Shared) -> bool {
        let lane = &shared.rx[self.lane];
        let polled = pmd::rdtsc();
        let n = self.rxq.rx_burst(&mut self.burst);
        // After the burst: a frame stamped by another lcore after an earlier reading would
        // have a negative latency, and not be counted as a sample.
        let now = pmd::rdtsc();
        if n > 0 {
            let ours_before = self.analyzer.received_bytes();
            // The TX lanes' `built` is read only when a frame of ours is past what the
            // analyzer last read, at most once per burst: while what comes back is foreign
            // (net_null) or older, the TX sides' lines stay in their own caches.
            let mut refreshed = false;
            // The burst's buffers go back to their pool together, one bulk put (as a driver
            // frees transmitted mbufs with MBUF_FAST_FREE), not one free each.
            let mut done = FreeBatch::new();
            self.analyzer.begin_burst();
            for m in self.burst.drain() {
                // The test fixture's device takes a frame of ours at the time it was sent (its
                // stamp), as a device on the wire would, not when this lcore got to it: a
                // moment's delay here is not the device's. A frame that is not ours passes.
                if let Some(b) = self.police.as_mut() {
                    if let Some(t) = frames::sent_at(m.data(), now) {
                        if b.take_in_order(t, 1) == 0 {
                            self.policed += 1;
                            done.push(m);
                            continue;
                        }
                    }
                }
                if !refreshed {
                    if self.analyzer.record_if_built(m.data(), now) {
                        done.push(m);
                        continue;
                    }
                    for (t, l) in shared.tx.iter().enumerate() {
                        // Acquire, after the burst: pairs with the Release in Tx::step, so
                        // every frame of this burst was built before the value read.
                        self.analyzer
                            .set_built_lane(t, l.built.load(Ordering::Acquire));
                    }
                    refreshed = true;
                }
                self.analyzer.record(m.data(), now);
                done.push(m);
            }
            self.analyzer.end_burst();
            done.flush();
            if self.analyzer.received_bytes() != ours_before {
                self.last_rx_tsc = now;
            }
            lane.frames.add(n as u64);
            // Relaxed: a statistic with one writer (see Shared::rx_distinct).
            lane.distinct
                .store(self.analyzer.distinct(), Ordering::Relaxed);
            self.busy.add(polled, n);
        }
        if now >= self.next_snapshot {
            self.publish(shared);
            self.next_snapshot = now + self.snapshot_every;
        }
        // When the queue was not full, or every 64th loop (a device such as net_null always
        // fills the burst): reading every TX lane's flag each loop would pull their cache
        // lines over while they send.
        self.polls = self.polls.wrapping_add(1);
        if self.tx_done_at.is_none()
            && (n < MAX_BURST || self.polls.is_multiple_of(64))
            && shared.tx_done()
        {
            self.tx_done_at = Some(now);
        }
        match self.tx_done_at {
            None => true,
            Some(t) => {
                let (distinct0, sent0) = self.base;
                let all_back = shared.rx_distinct().saturating_sub(distinct0)
                    >= shared.tx_total().saturating_sub(sent0);
                // Relaxed: see Shared::abort.
                !all_back && now - t < self.drain_cycles && !shared.aborted.load(Ordering::Relaxed)
            }
        }
    }

    fn publish(&self, shared: &Shared) {
        let (_, so_far) = self.analyzer.counts(&[]);
        let s = Snapshot {
            received: self.analyzer.received(),
            distinct: self.analyzer.distinct(),
            latency: self.analyzer.latency(),
            duplicated: so_far.duplicated,
            reordered: so_far.reordered,
            corrupted: so_far.corrupted,
        };
        // A few times a second, off the per-packet path.
        *shared.rx[self.lane]
            .snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = s;
    }
}

/// Every side of a run, in lane order.
struct Sides<'q, 'a> {
    tx: Vec<Tx<'q, 'a>>,
    rx: Vec<Rx<'q, 'a>>,
}

/// What the run measured, from every side once they are done: the RX sides' analyzers merged
/// into one (exact across queues), each stream's sent count from the TX side that owns it.
fn measured(sides: &Sides, shared: &Shared, elapsed_s: f64) -> Measured {
    let nt = sides.tx.len();
    let streams: usize = sides.tx.iter().map(|t| t.streams).sum();
    let mut sent = vec![0u64; streams];
    for t in &sides.tx {
        for (k, &n) in t.seq.as_slice().iter().enumerate() {
            sent[t.lane + k * nt] = n;
        }
    }
    let mut merged: Option<Analyzer> = None;
    for r in &sides.rx {
        match merged.as_mut() {
            None => {
                let mut a = Analyzer::with_lanes(streams, nt, pmd::tsc_hz());
                a.absorb(&r.analyzer);
                merged = Some(a);
            }
            Some(a) => a.absorb(&r.analyzer),
        }
    }
    let a = merged.unwrap_or_else(|| Analyzer::new(streams, pmd::tsc_hz()));
    let (per_stream, total) = a.counts(&sent);
    let hz = pmd::tsc_hz().max(1) as f64;
    let last_tx = sides.tx.iter().map(|t| t.last_tsc).max().unwrap_or(0);
    let first = sides
        .tx
        .iter()
        .filter_map(|t| t.first_tsc)
        .min()
        .unwrap_or(last_tx);
    let last_rx = sides.rx.iter().map(|r| r.last_rx_tsc).max().unwrap_or(0);
    let secs = |end: u64| end.saturating_sub(first) as f64 / hz;
    Measured {
        per_stream,
        total,
        foreign: a.foreign(),
        latency: a.latency(),
        stream_latency: a.stream_latency(),
        histogram: a.histogram_base64(),
        tx_bytes: sides.tx.iter().map(|t| t.bytes).sum(),
        rx_bytes: a.received_bytes(),
        elapsed_s,
        tx_s: secs(last_tx),
        rx_s: secs(last_rx),
        // Relaxed: the lcores are joined.
        interrupted: shared.interrupted.load(Ordering::Relaxed),
        series: std::mem::take(&mut *shared.series.lock().unwrap_or_else(|e| e.into_inner())),
        lcore_cost: LcoreCost::new(
            Busy::sum(sides.tx.iter().map(|t| t.busy)),
            Busy::sum(sides.rx.iter().map(|r| r.busy)),
            pmd::tsc_hz(),
        ),
    }
}

/// A side's busy loops (see `LcoreCost`): TSC cycles of the loops that moved frames, and the
/// frames they moved. Written by its side only.
#[derive(Debug, Default, Clone, Copy)]
struct Busy {
    cycles: u64,
    frames: u64,
}

impl Busy {
    /// A loop that began at TSC `start` moved `frames` frames (saturating: a TSC that went
    /// backwards on an unpinned lcore adds nothing).
    #[inline]
    fn add(&mut self, start: u64, frames: usize) {
        let cycles = pmd::rdtsc().saturating_sub(start);
        self.cycles = self.cycles.saturating_add(cycles);
        self.frames += frames as u64;
    }

    /// Cycles and frames, summed over sides.
    fn sum(sides: impl Iterator<Item = Busy>) -> (u64, u64) {
        sides.fold((0, 0), |(c, f), b| {
            (c.saturating_add(b.cycles), f + b.frames)
        })
    }
}

/// One run: the ports, every side on the lcores there are, then the results; whether it
/// passed its criteria.
fn generate(eal: &Eal, opts: &Settings, runtime: &Runtime) -> Result<bool> {
    let nb_ports = Port::count(eal);
    let (tx_ports, rx_ports) = match &opts.ports {
        Some(p) => (p.clone(), p.clone()),
        None => (vec![opts.tx_port], vec![opts.rx_port]),
    };
    for &p in tx_ports.iter().chain(&rx_ports) {
        if p >= nb_ports {
            let what = if opts.ports.is_some() {
                format!("--portmask enables port {p}, which")
            } else if tx_ports.contains(&p) {
                format!("--tx-port {p}")
            } else {
                format!("--rx-port {p}")
            };
            bail!("{what} does not exist: {nb_ports} port(s) available (add --vdev=... or -a PCI to the EAL options)");
        }
    }
    let tx_sides = tx_ports.len() * opts.txq as usize;
    let rx_sides = rx_ports.len() * opts.rxq as usize;
    // Two pools: the frames we build are never handed back by the RX side as received. A
    // driver that delivers a buffer without writing it (net_null does) would otherwise return
    // a stale copy of one of our frames, counted as ours; from the RX pool it holds nothing of
    // ours, and counts as foreign. The RX pool: each RX queue's ring (1024) and a few bursts
    // more; the TX pool: see `tx_pool_size`. Each pool on its port's NUMA node (the NIC reads
    // and writes it), not the main lcore's: the first TX port's and the first RX port's (a
    // lab's ports share a node).
    let node = |port: u16| -> i32 {
        let nic = Port::info(eal, pmd::PortId::new(port))
            .ok()
            .and_then(|i| i.numa_node);
        apps_common::pool_socket(nic, eal.socket_id())
    };
    // One sender and one receiver: the fixture polices at the sender's stamps, which only
    // one TX side gives in order, with at most what the fixture holds saved up.
    if opts.fixture_capacity_pps.is_some() && (rx_sides > 1 || tx_sides > 1) {
        bail!("--fixture-capacity-pps models one device of that capacity: give one TX queue and one RX queue on one port");
    }
    // Every RX queue of every port started is filled at start (a TX-only port gets one).
    let per_side = 1024 + 8 * MAX_BURST as u32;
    let rx_queues: usize = {
        let mut ids: Vec<u16> = tx_ports.iter().chain(&rx_ports).copied().collect();
        ids.sort_unstable();
        ids.dedup();
        ids.iter()
            .map(|p| {
                if rx_ports.contains(p) {
                    opts.rxq as usize
                } else {
                    1
                }
            })
            .sum()
    };
    let tx_pool = Mempool::create(
        eal,
        "pktgen_tx",
        tx_pool_size(tx_sides, eal.lcores().len()),
        256,
        2048 + 128,
        node(tx_ports[0]),
    )
    .context("cannot create the TX mbuf pool")?;
    // The TX sides take buffers with the frame's length set as they come from the pool, which
    // refuses a length that does not fit (the TX side would then wait for ever): every size
    // must fit, which this pool's room guarantees.
    if (tx_pool.data_room() as usize) < buf_len(pktgen::frames::MAX_FRAME) {
        bail!(
            "the TX mbuf pool's buffers are too small for {}-byte frames",
            pktgen::frames::MAX_FRAME
        );
    }
    let pool = Mempool::create(
        eal,
        "pktgen_rx",
        (4096 + rx_queues as u32 * per_side).max(8192),
        256,
        2048 + 128,
        node(rx_ports[0]),
    )
    .context("cannot create the RX mbuf pool")?;
    let mut ports = Ports::start(eal, opts, &tx_ports, &rx_ports, &pool)?;
    let mut sides = sides(&ports, &tx_ports, &rx_ports, &tx_pool, opts)?;
    prefill_tx_pool(&tx_pool, &mut sides.tx);
    let placement = place(eal, opts, sides.tx.len(), sides.rx.len())?;
    let rate = RateSetting::new(opts.rate, opts.size.mean());
    let (requests, _server) = match &runtime.control {
        Some(path) => {
            let (req_tx, req_rx) = mpsc::channel();
            let server = CtlServer::serve::<PktgenProtocol>(path, req_tx, REQUEST_DEADLINE)
                .with_context(|| format!("cannot serve --control {}", path.display()))?;
            apps_common::outln!("pktgen: control socket {}", path.display());
            (Some(req_rx), Some(server))
        }
        None => (None, None),
    };
    let published: Arc<Mutex<Option<Stats>>> = Arc::default();
    let _telemetry = {
        let published = Arc::clone(&published);
        // An extra: a run goes on without it (as when DPDK refuses the name).
        TelemetryCommand::register(
            "/pktgen/stats",
            "pktgen's counters: state, rate, tx, rx, missing so far, rates, latency. No parameters",
            move |_| {
                let s = published.lock().unwrap_or_else(|e| e.into_inner());
                s.as_ref().map(Stats::telemetry)
            },
        )
        .ok()
    };
    let mut control = Control {
        requests,
        published,
        rate,
        mean_size: opts.size.mean(),
        searching: opts.search.is_some(),
    };
    let shared = Shared::new(
        sides.tx.len(),
        sides.rx.len(),
        TxControl::new(runtime.paused, rate.pps, sides.tx.len()),
        Series::new(opts.sample_ms, DEFAULT_CAPACITY),
    );
    let quit = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&quit))
            .context("cannot install signal handler")?;
    }
    let started = Instant::now();
    if let Some(search) = opts.search {
        let mut trials = LiveTrials {
            eal,
            opts,
            placement: &placement,
            shared: &shared,
            quit: &quit,
            control: &mut control,
            sides: Some(sides),
            started,
            trial: search.trial,
            number: 0,
            last: Latency::default(),
        };
        let found = trials.search(search);
        let sides = trials.sides.take().context("a pktgen lcore failed")?;
        let found = found?;
        let report = Report::new(
            measured(&sides, &shared, started.elapsed().as_secs_f64()),
            opts,
        );
        drop(sides);
        ports.stop()?;
        return finish_search(found, report, opts);
    }
    // Checked: a --duration of a year still fits an Instant.
    let stop_at = opts.duration.and_then(|d| started.checked_add(d));
    let sides = launch(
        eal,
        opts,
        &placement,
        sides,
        &shared,
        &quit,
        started,
        stop_at,
        &mut control,
    )?;
    let report = Report::new(
        measured(&sides, &shared, started.elapsed().as_secs_f64()),
        opts,
    );
    drop(sides);
    ports.stop()?;
    finish(&report, opts)
}

/// Buffers in the TX pool for `tx_sides` TX sides and `lcores` lcores: what can be away from
/// the pool at once, and no more. Each side may have its queue's ring full (the ports' TX
/// descriptors, 1024, or a `net_ring`'s 1024 slots) and a few bursts of its own; each lcore's
/// mempool cache holds up to 1.5 times its 256 (DPDK's flush threshold); and 1024 spare.
/// Rounded up to 2^n - 1, the size DPDK's ring-backed pools use best; at least 4095.
///
/// Not more, because the pool is the TX frames' working set: on a loopback the side that frees
/// a buffer is not the side that takes it, so buffers go round the whole pool in FIFO order.
/// 4095 buffers of 2304 bytes (9 MiB) stay in a server's last-level cache; 16384 (36 MiB) did
/// not, and the RX side read every 1518-byte frame from memory (264 ns a frame on a loopback
/// of this 2-CPU box, 85 with 4095: medians, see the README).
fn tx_pool_size(tx_sides: usize, lcores: usize) -> u32 {
    let ring = usize::from(PortConfig::default().tx_desc).max(1024);
    let per_side = ring + 8 * MAX_BURST;
    let want = tx_sides
        .saturating_mul(per_side)
        .saturating_add(lcores.saturating_mul(256 * 3 / 2))
        .saturating_add(1024);
    // A billion buffers is more than any memory holds: the pool's creation says so.
    let want = u32::try_from(want.min(1 << 30)).unwrap_or(1 << 30);
    ((want + 1).next_power_of_two() - 1).max(4095)
}

/// Every port the run transmits or receives on, configured with `--txq` TX and `--rxq` RX
/// queues (RSS spreads what arrives) and started, in port id order.
struct Ports<'p> {
    ports: Vec<Port<'p>>,
}

impl<'p> Ports<'p> {
    fn start<'e: 'p>(
        eal: &'p Eal,
        opts: &Settings,
        tx_ports: &[u16],
        rx_ports: &[u16],
        pool: &'p Mempool<'e>,
    ) -> Result<Self> {
        let mut ids: Vec<u16> = tx_ports.iter().chain(rx_ports).copied().collect();
        ids.sort_unstable();
        ids.dedup();
        let mut ports = Vec::new();
        for id in ids {
            // A port only transmitted on (or only received on) needs one queue of the other
            // kind: the device wants at least one.
            let cfg = PortConfig {
                rx_queues: if rx_ports.contains(&id) { opts.rxq } else { 1 },
                tx_queues: if tx_ports.contains(&id) { opts.txq } else { 1 },
                ..PortConfig::default()
            };
            let mut p = Port::configure(eal, pmd::PortId::new(id), &cfg, pool)
                .with_context(|| format!("cannot configure port {id}"))?;
            p.start()?;
            ports.push(p);
        }
        Ok(Ports { ports })
    }

    fn get(&self, id: u16) -> &Port<'p> {
        self.ports
            .iter()
            .find(|p| p.id().get() == id)
            .expect("every port named is started")
    }

    /// Stops the ports (no queue handle is left: the borrow checker sees to it).
    fn stop(&mut self) -> Result<()> {
        for p in &mut self.ports {
            p.stop()?;
        }
        Ok(())
    }
}

/// Frames of one size longer than the TX sides' prebuilt images: the filler goes into every
/// buffer of the TX pool once, here, instead of into every frame (see
/// [`FixedFrames::set_filler_in_place`]). Only the TX sides write to this pool's buffers (an
/// RX side of a loopback reads them) and no device writes into a buffer it transmits, so the
/// filler stays in place for the run. Skipped (each frame writes its filler) unless every
/// buffer of the pool was reached and had room; says on stdout when it was done.
fn prefill_tx_pool(pool: &Mempool<'_>, tx: &mut [Tx<'_, '_>]) {
    let Some(frames) = tx.first().and_then(|t| t.fixed.as_ref()) else {
        return;
    };
    if !frames.longer_than_image() {
        return;
    }
    let mut all = Vec::with_capacity(pool.size() as usize);
    let mut whole = true;
    while let Some(mut m) = pool.alloc() {
        whole &= frames.prefill(m.room_mut());
        all.push(m);
    }
    let n = all.len();
    whole &= n == pool.size() as usize;
    drop(all);
    if whole {
        for f in tx.iter_mut().filter_map(|t| t.fixed.as_mut()) {
            f.set_filler_in_place(true);
        }
        apps_common::outln!("pktgen: filler written once into the {n} TX buffers");
    }
}

/// Every side, ready to run: per TX port and queue a TX side with its streams, frame sizes and
/// templates (stream `s` on TX side `s % sides`), per RX port and queue an RX side with its
/// analyzer. Says on stdout what is about to run.
fn sides<'q, 'a>(
    ports: &'q Ports<'a>,
    tx_ports: &[u16],
    rx_ports: &[u16],
    tx_pool: &'a Mempool<'a>,
    opts: &Settings,
) -> Result<Sides<'q, 'a>> {
    let hz = pmd::tsc_hz();
    let now = pmd::rdtsc();
    let nt = tx_ports.len() * opts.txq as usize;
    let flows = opts.flows as usize;
    let mut tx = Vec::new();
    for &pid in tx_ports {
        let port = ports.get(pid);
        let src = port.mac_addr()?;
        // Where this port's frames go: --dst-mac; with --portmask, the paired port's MAC (as
        // l2fwd pairs ports: 0-1, 2-3) when it is enabled too, else the port's own; without,
        // the RX port's.
        let dst = match (opts.dst_mac, &opts.ports) {
            (Some(m), _) => m,
            (None, Some(enabled)) if enabled.contains(&(pid ^ 1)) => {
                ports.get(pid ^ 1).mac_addr()?
            }
            (None, Some(_)) => src,
            (None, None) => ports.get(opts.rx_port).mac_addr()?,
        };
        for q in 0..opts.txq {
            let lane = tx.len();
            let ids: Vec<u16> = (lane..flows).step_by(nt).map(|s| s as u16).collect();
            let frames = Templates::for_streams(
                opts.frame,
                &EtherAddrs {
                    dst: dst.0,
                    src: src.0,
                },
                &ids,
                &opts.size,
            )
            .map_err(anyhow::Error::msg)?;
            let fixed = match opts.size {
                SizeSpec::Fixed(size) => FixedFrames::new(&frames, size),
                _ => None,
            };
            tx.push(Tx {
                lane,
                txq: port.tx_queue(pmd::QueueId::new(q))?,
                pool: tx_pool,
                frames,
                fixed,
                streams: ids.len(),
                size: opts.size.clone(),
                count: opts.count.map_or(u64::MAX, |c| {
                    // The count is split like the streams: side `lane` sends every nt-th frame.
                    c / nt as u64 + u64::from((lane as u64) < c % nt as u64)
                }),
                bucket: opts
                    .rate
                    .pps(opts.size.mean())
                    .map(|pps| tx_bucket(pps / nt as f64, hz, now)),
                seq: OwnCounters::new(ids.len()),
                sent: 0,
                bytes: 0,
                first_tsc: None,
                last_tsc: now,
                pending: Burst::new(),
                next_stream: 0,
                tsc_hz: hz,
                acked: u64::MAX,
                // No rate's bits (a NaN): the first burst builds the bucket from the control
                // word.
                rate_bits: u64::MAX,
                sides: nt,
                busy: Busy::default(),
            });
        }
    }
    // Every stream's frames, for the RX sides' fast check of a one-size run (shared: up to
    // 65535 streams of 192 bytes).
    let rx_fixed = match opts.size {
        SizeSpec::Fixed(size) => {
            FixedFrames::for_receiver(opts.frame, opts.flows, size).map(Arc::new)
        }
        _ => None,
    };
    let mut rx = Vec::new();
    for &pid in rx_ports {
        let port = ports.get(pid);
        for q in 0..opts.rxq {
            rx.push(Rx {
                lane: rx.len(),
                rxq: port.rx_queue(pmd::QueueId::new(q))?,
                analyzer: {
                    let mut a = Analyzer::with_lanes(flows, nt, hz);
                    // Nothing built yet: the first frame of ours has the side read the TX
                    // lanes (see Rx::step).
                    for t in 0..nt {
                        a.set_built_lane(t, 0);
                    }
                    if let Some(f) = &rx_fixed {
                        a.set_fixed(Arc::clone(f));
                    }
                    a
                },
                burst: Burst::new(),
                next_snapshot: now,
                // Five times a second for the stats line, and twice per time-series sample.
                snapshot_every: (hz / 5).min(hz / 2000 * opts.sample_ms).max(1),
                tx_done_at: None,
                drain_cycles: (opts.drain.as_secs_f64() * hz as f64) as u64,
                last_rx_tsc: 0,
                base: (0, 0),
                // The fixture's device buffers what the sender may save up (`saved`: 10 ms of
                // its capacity, at least a burst), and starts empty (its bucket full). It
                // polices each frame at its TX stamp, so the one sender (see the check above)
                // held to the capacity loses nothing, however late this lcore reads the
                // frames. A trial above capacity for `trial_s` passes only if its excess fits
                // the buffer: 1% of the capacity over a 1-second trial.
                police: opts
                    .fixture_capacity_pps
                    .map(|pps| TokenBucket::new(pps, hz, saved(pps), now).filled()),
                policed: 0,
                polls: 0,
                busy: Busy::default(),
            });
        }
    }
    let name = |id: u16| format!("{id} ({})", ports.get(id).name());
    let list = |ids: &[u16]| ids.iter().map(|&p| name(p)).collect::<Vec<_>>().join(", ");
    apps_common::outln!(
        "pktgen: TX port{} {} -> RX port{} {}, rate {}, size {}, {} flow(s), {} frames{}",
        if tx_ports.len() > 1 { "s" } else { "" },
        list(tx_ports),
        if rx_ports.len() > 1 { "s" } else { "" },
        list(rx_ports),
        describe_rate(opts.rate, opts.size.mean()),
        opts.size,
        opts.flows,
        opts.frame,
        match opts.dst_mac {
            Some(m) => format!(", dst {m}"),
            None if opts.ports.is_none() => {
                format!(", dst {}", ports.get(opts.rx_port).mac_addr()?)
            }
            None => String::new(),
        }
    );
    Ok(Sides { tx, rx })
}

/// Which sides run where: per lcore (None: a thread beside the main lcore, when there is no
/// worker lcore), the TX and RX sides it runs, by lane.
type Placement = Vec<(Option<pmd::LcoreId>, Vec<usize>, Vec<usize>)>;

/// Places `nt` TX and `nr` RX sides on the worker lcores: as `--tx-lcores`/`--rx-lcores` say,
/// or by default TX sides on the first half of the workers (at least one) and RX sides on the
/// rest, each dealt round robin; with one worker every side runs on it, with none on a thread
/// beside the main lcore. Prints the placement.
fn place(eal: &Eal, opts: &Settings, nt: usize, nr: usize) -> Result<Placement> {
    let workers: Vec<u32> = eal.worker_lcores().iter().map(|l| l.get()).collect();
    let check = |what: &str, list: &[u32]| -> Result<()> {
        if let Some(l) = list.iter().find(|l| !workers.contains(l)) {
            bail!(
                "{what} names lcore {l}, which is not a worker lcore: the workers are {:?} (give them with the EAL's -l; the main lcore runs the stats)",
                workers
            );
        }
        Ok(())
    };
    let (tx_l, rx_l): (Vec<u32>, Vec<u32>) = match (&opts.tx_lcores, &opts.rx_lcores) {
        (Some(t), Some(r)) => {
            check("--tx-lcores", t)?;
            check("--rx-lcores", r)?;
            (t.clone(), r.clone())
        }
        (Some(t), None) => {
            check("--tx-lcores", t)?;
            let rest: Vec<u32> = workers.iter().copied().filter(|l| !t.contains(l)).collect();
            (t.clone(), if rest.is_empty() { t.clone() } else { rest })
        }
        (None, Some(r)) => {
            check("--rx-lcores", r)?;
            let rest: Vec<u32> = workers.iter().copied().filter(|l| !r.contains(l)).collect();
            (if rest.is_empty() { r.clone() } else { rest }, r.clone())
        }
        (None, None) => match workers.len() {
            0 | 1 => (workers.clone(), workers.clone()),
            w => {
                let n = (w / 2).max(1).min(nt);
                let rest: Vec<u32> = workers[n..].iter().copied().take(nr).collect();
                (workers[..n].to_vec(), rest)
            }
        },
    };
    let mut out: Placement = Vec::new();
    let mut slot = |lcore: Option<u32>| -> usize {
        let id = lcore.map(pmd::LcoreId::new);
        match out.iter().position(|(l, _, _)| *l == id) {
            Some(i) => i,
            None => {
                out.push((id, Vec::new(), Vec::new()));
                out.len() - 1
            }
        }
    };
    let mut plan = Vec::new();
    for t in 0..nt {
        plan.push((slot(tx_l.get(t % tx_l.len().max(1)).copied()), true, t));
    }
    for r in 0..nr {
        plan.push((slot(rx_l.get(r % rx_l.len().max(1)).copied()), false, r));
    }
    for (i, is_tx, lane) in plan {
        if is_tx {
            out[i].1.push(lane);
        } else {
            out[i].2.push(lane);
        }
    }
    if nt + nr > 2 || out.len() > 1 {
        for (l, t, r) in &out {
            apps_common::outln!(
                "pktgen: {}: TX sides {t:?}, RX sides {r:?}",
                l.map_or("main thread".to_owned(), |l| format!("lcore {}", l.get()))
            );
        }
    }
    Ok(out)
}

/// Runs every side where `placement` says, meanwhile the main lcore runs [`monitor`]. Returns
/// the sides, in lane order, once every RX side's drain is over.
#[allow(clippy::too_many_arguments)]
fn launch<'q, 'a>(
    eal: &Eal,
    opts: &Settings,
    placement: &Placement,
    sides: Sides<'q, 'a>,
    shared: &Shared,
    quit: &AtomicBool,
    started: Instant,
    stop_at: Option<Instant>,
    control: &mut Control,
) -> Result<Sides<'q, 'a>> {
    for l in shared.rx.iter() {
        // Relaxed: the lcores are not running; the launch publishes this.
        l.done.store(false, Ordering::Relaxed);
    }
    let (nt, nr) = (sides.tx.len(), sides.rx.len());
    let mut txs: Vec<Option<Tx>> = sides.tx.into_iter().map(Some).collect();
    let mut rxs: Vec<Option<Rx>> = sides.rx.into_iter().map(Some).collect();
    let monitor = move || monitor(opts, shared, quit, started, stop_at, control);
    // One result slot per lcore: its sides back, or None if it failed.
    let slots: Vec<Mutex<Option<Worker>>> = placement.iter().map(|_| Mutex::new(None)).collect();
    let mut workers = Vec::new();
    for (l, t, r) in placement {
        let w = Worker {
            tx: t.iter().filter_map(|&i| txs[i].take()).collect(),
            rx: r.iter().filter_map(|&i| rxs[i].take()).collect(),
        };
        workers.push((*l, w));
    }
    {
        let mut jobs: Vec<(pmd::LcoreId, Box<dyn FnOnce() -> i32 + Send + '_>)> = Vec::new();
        let mut on_thread = None;
        for ((l, mut w), slot) in workers.into_iter().zip(&slots) {
            match l {
                Some(l) => jobs.push((
                    l,
                    Box::new(move || {
                        w.run(shared);
                        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(w);
                        0
                    }),
                )),
                None => on_thread = Some((w, slot)),
            }
        }
        match on_thread {
            Some((mut w, slot)) => std::thread::scope(|s| {
                s.spawn(monitor);
                w.run(shared);
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(w);
            }),
            None => {
                eal.run_on_lcores(jobs, monitor, || shared.abort())?;
            }
        }
    }
    let mut txs: Vec<Option<Tx>> = (0..nt).map(|_| None).collect();
    let mut rxs: Vec<Option<Rx>> = (0..nr).map(|_| None).collect();
    for slot in slots {
        let Some(w) = slot.into_inner().unwrap_or_else(|e| e.into_inner()) else {
            bail!("a pktgen lcore failed");
        };
        for t in w.tx {
            let i = t.lane;
            txs[i] = Some(t);
        }
        for r in w.rx {
            let i = r.lane;
            rxs[i] = Some(r);
        }
    }
    Ok(Sides {
        tx: txs
            .into_iter()
            .collect::<Option<_>>()
            .context("a TX side was lost")?,
        rx: rxs
            .into_iter()
            .collect::<Option<_>>()
            .context("an RX side was lost")?,
    })
}

/// The sides one lcore runs, in one loop.
struct Worker<'q, 'a> {
    tx: Vec<Tx<'q, 'a>>,
    rx: Vec<Rx<'q, 'a>>,
}

impl Worker<'_, '_> {
    /// Steps every side until each TX side has finished and each RX side's drain is over.
    fn run(&mut self, shared: &Shared) {
        // Before the loop: the only allocation, one flag per side.
        let mut sending = vec![true; self.tx.len()];
        let mut receiving = vec![true; self.rx.len()];
        loop {
            let mut busy = false;
            for (t, on) in self.tx.iter_mut().zip(sending.iter_mut()) {
                if *on {
                    if t.step(shared) {
                        busy = true;
                    } else {
                        t.finish(shared);
                        *on = false;
                    }
                }
            }
            for (r, on) in self.rx.iter_mut().zip(receiving.iter_mut()) {
                if *on {
                    if r.step(shared) {
                        busy = true;
                    } else {
                        r.publish(shared);
                        // Release: the snapshot just published is complete when the monitor,
                        // reading `done` with Acquire, takes its last sample.
                        shared.rx[r.lane].done.store(true, Ordering::Release);
                        *on = false;
                    }
                }
            }
            if !busy {
                break;
            }
        }
    }
}

/// The results: the final summary, a warning when only foreign frames came back, the report,
/// then one line per failed criterion. Whether the run passed.
fn finish(report: &Report, opts: &Settings) -> Result<bool> {
    apps_common::out!("{}", report.summary());
    if report.received == 0 && report.sent > 0 && report.foreign > 0 {
        apps_common::errln!(
            "pktgen: warning: none of the {} frames sent came back, but {} foreign frames did: \
             is the RX port connected to the TX port?",
            report.sent,
            report.foreign
        );
    }
    if let Some(path) = &opts.report {
        std::fs::write(path, serde_json::to_string_pretty(report)? + "\n")
            .with_context(|| format!("cannot write report {}", path.display()))?;
    }
    for f in &report.failed {
        apps_common::errln!("pktgen: fail: {}", f.message);
    }
    Ok(report.passed())
}

/// The main lcore's part in runtime control: the control socket's requests (with
/// `--control`), the rate setting, and the stats published on DPDK's telemetry.
struct Control {
    requests: Option<mpsc::Receiver<Envelope<PktgenProtocol>>>,
    published: Arc<Mutex<Option<Stats>>>,
    rate: RateSetting,
    mean_size: f64,
    /// A search (`--search`) sets the rate and runs the trials itself: only `stats` then.
    searching: bool,
}

/// How often `/pktgen/stats` is refreshed.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// How long `stop` waits for the TX side to stop (it only has to finish its current burst;
/// longer only when its queue does not drain).
const STOP_WAIT: Duration = Duration::from_secs(2);

/// The TX and RX rates over the last whole second.
struct Rates {
    at: Instant,
    tx: u64,
    rx: u64,
    tx_pps: u64,
    rx_pps: u64,
}

impl Rates {
    fn new(at: Instant) -> Self {
        Rates {
            at,
            tx: 0,
            rx: 0,
            tx_pps: 0,
            rx_pps: 0,
        }
    }

    fn sample(&mut self, now: Instant, tx: u64, rx: u64) {
        let dt = (now - self.at).as_secs_f64();
        if dt >= 1.0 {
            self.tx_pps = (tx.saturating_sub(self.tx) as f64 / dt).round() as u64;
            self.rx_pps = (rx.saturating_sub(self.rx) as f64 / dt).round() as u64;
            (self.at, self.tx, self.rx) = (now, tx, rx);
        }
    }
}

impl Control {
    /// The run so far.
    fn stats(&self, shared: &Shared, rates: &Rates, started: Instant) -> Stats {
        let s = shared.snapshot();
        let tx = shared.tx_total();
        // Relaxed: flags; the counters are statistics read without ordering.
        let state = if shared.tx_done() || shared.stop_tx.load(Ordering::Relaxed) {
            TxState::Done
        } else if shared.control.paused() {
            TxState::Paused
        } else {
            TxState::Running
        };
        Stats {
            state,
            rate: self.rate.rate.to_string(),
            rate_pps: self.rate.pps.map(|p| p.round() as u64),
            elapsed_ms: started.elapsed().as_millis() as u64,
            tx,
            rx: shared.rx_frames(),
            missing_so_far: tx.saturating_sub(s.distinct),
            duplicated: s.duplicated,
            reordered: s.reordered,
            corrupted: s.corrupted,
            tx_pps: rates.tx_pps,
            rx_pps: rates.rx_pps,
            latency_p50_ns: s.latency.p50,
            latency_p99_ns: s.latency.p99,
        }
    }

    /// Answers one request of the control socket.
    fn handle(
        &mut self,
        req: Request,
        shared: &Shared,
        rates: &Rates,
        started: Instant,
    ) -> Result<Value, String> {
        let over = || {
            // Relaxed: flags (see Shared).
            (shared.tx_done() || shared.stop_tx.load(Ordering::Relaxed)).then(|| {
                "transmission is over (its --count was sent, its --duration ran out, or a \
                     signal stopped it): only stats now"
                    .to_owned()
            })
        };
        if self.searching && !matches!(req, Request::Stats {}) {
            return Err(
                "a search (--search) sets the rate and pauses between trials itself: only stats now"
                    .to_owned(),
            );
        }
        match req {
            Request::Stats {} => {}
            Request::Start {} => {
                if let Some(e) = over() {
                    return Err(e);
                }
                shared.control.set_paused(false);
            }
            Request::Stop {} => {
                if let Some(e) = over() {
                    return Err(e);
                }
                let word = shared.control.set_paused(true);
                // Until the TX side has stopped, so that the tx reported stays put.
                let until = Instant::now() + STOP_WAIT;
                while !shared.all_acked(word) && over().is_none() && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Request::Rate { rate } => {
                let setting = RateSetting::parse(&rate, self.mean_size)?;
                if let Some(e) = over() {
                    return Err(e);
                }
                shared.control.set_rate(setting.pps);
                self.rate = setting;
            }
        }
        Ok(self.stats(shared, rates, started).to_json())
    }

    fn publish(&self, stats: Stats) {
        *self.published.lock().unwrap_or_else(|e| e.into_inner()) = Some(stats);
    }
}

/// The main lcore: duration (TX stops at `stop_at`), signals, periodic stats; the time series
/// and the stats lines count from `started`.
fn monitor(
    opts: &Settings,
    shared: &Shared,
    quit: &AtomicBool,
    started: Instant,
    stop_at: Option<Instant>,
    control: &mut Control,
) {
    let requests = control.requests.take();
    // The timers count from now: a search launches the lcores (and this) once per trial, while
    // the series and `elapsed` count from `started`, the run's start.
    let entered = Instant::now();
    let (tx0, rx0) = (shared.tx_total(), shared.snapshot().received);
    let mut rates = Rates::new(entered);
    (rates.tx, rates.rx) = (tx0, shared.rx_frames());
    let mut next_publish = entered;
    let period = Duration::from_secs(opts.stats_period);
    // Checked: no Instant + Duration may overflow (None: no more stats lines).
    let mut next = entered.checked_add(period);
    let (mut last_tx, mut last_rx, mut last_t) = (tx0, rx0, entered);
    let sample_every = Duration::from_millis(opts.sample_ms);
    let mut next_sample = entered.checked_add(sample_every);
    let sample = |now: Instant| {
        let s = shared.snapshot();
        let totals = Totals {
            tx: shared.tx_total(),
            rx: s.received,
            distinct: s.distinct,
        };
        let t_ms = (now - started).as_millis() as u64;
        let mut series = shared.series.lock().unwrap_or_else(|e| e.into_inner());
        series.record(t_ms, totals);
    };
    // Relaxed loads/stores: these flags carry no data (see Shared).
    while !shared.rx_done() {
        std::thread::sleep(Duration::from_millis(10));
        let now = Instant::now();
        let timed_out = stop_at.is_some_and(|t| now >= t);
        let signalled = quit.load(Ordering::Relaxed);
        if signalled || timed_out {
            shared.stop_tx.store(true, Ordering::Relaxed);
        }
        if signalled && !timed_out && !shared.tx_done() {
            shared.interrupted.store(true, Ordering::Relaxed);
        }
        if opts.stats_period > 0 && next.is_some_and(|n| now >= n) {
            let s = shared.snapshot();
            let tx = shared.tx_total();
            let dt = (now - last_t).as_secs_f64();
            apps_common::outln!(
                "[{:>6.1}s] tx {:>12} ({:>11})  rx {:>12} ({:>11})  missing so far {:>10}  p99 {:>9} us",
                (now - started).as_secs_f64(),
                tx,
                units::pps((tx - last_tx) as f64 / dt),
                s.received,
                units::pps(s.received.saturating_sub(last_rx) as f64 / dt),
                tx.saturating_sub(s.distinct),
                us(s.latency.p99)
            );
            (last_tx, last_rx, last_t) = (tx, s.received, now);
            next = next.and_then(|n| n.checked_add(period));
        }
        if next_sample.is_some_and(|n| now >= n) {
            sample(now);
            next_sample = next_sample.and_then(|n| n.checked_add(sample_every));
        }
        rates.sample(now, shared.tx_total(), shared.rx_frames());
        while let Some(env) = requests.as_ref().and_then(|r| r.try_recv().ok()) {
            let answer = control.handle(env.req, shared, &rates, started);
            let _ = env.reply.send(answer);
        }
        if now >= next_publish {
            control.publish(control.stats(shared, &rates, started));
            next_publish = now + PUBLISH_EVERY;
        }
    }
    // The last (partial) period: the series then adds up to the run's totals.
    sample(Instant::now());
    control.publish(control.stats(shared, &rates, started));
    // For the next trial of a search: the socket stays served.
    control.requests = requests;
}

#[cfg(test)]
mod tests {
    use super::{tx_pool_size, OwnCounters, MAX_BURST};

    /// The TX pool holds what can be away from it at once (each side's ring and bursts, each
    /// lcore's cache) with room to spare, in DPDK's best size, and no more than that rounding.
    #[test]
    fn tx_pool_holds_what_can_be_in_flight() {
        assert_eq!(tx_pool_size(1, 2), 4095);
        assert_eq!(tx_pool_size(usize::MAX, usize::MAX), (1 << 31) - 1);
        for (sides, lcores) in [(1, 1), (1, 3), (4, 3), (16, 17), (128, 128)] {
            let n = tx_pool_size(sides, lcores) as usize;
            let away = sides * (1024 + 8 * MAX_BURST) + lcores * 384;
            assert!(n >= away + 1024, "{sides} sides, {lcores} lcores: {n}");
            assert!(n < 2 * (away + 1024) || n == 4095, "{sides}, {lcores}: {n}");
            assert!((n + 1).is_power_of_two(), "{n}");
        }
    }

    /// The counters start on a 128-byte boundary, with at least one whole 128-byte block of
    /// the allocation before them and one after the block they end in.
    #[test]
    fn own_counters_are_alone_in_their_blocks() {
        for len in [0, 1, 15, 16, 17, 31, 1000, 65535] {
            let mut c = OwnCounters::new(len);
            c.as_mut_slice()
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = i as u64);
            assert!(c.as_slice().iter().enumerate().all(|(i, &v)| v == i as u64));
            assert_eq!(c.as_slice().len(), len);
            let base = c.buf.as_ptr() as usize;
            let start = c.as_slice().as_ptr() as usize;
            let end = start + 8 * len;
            let buf_end = base + 8 * c.buf.len();
            assert_eq!(start % 128, 0, "len {len}");
            assert!(start - base >= 128, "len {len}");
            assert!(buf_end >= end.next_multiple_of(128) + 128, "len {len}");
        }
    }
}
