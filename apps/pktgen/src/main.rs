//! pktgen: a load generator and analyzer that proves what came back.
//!
//! `pktgen [EAL options] -- [--tx-port P] [--rx-port P] [--rate max|PPS|BITS] [--size N|MIN-MAX|imix]
//!  [--flows N] [--count N] [--duration S] [--drain-ms MS] [--dst-mac MAC] [-T STATS_S]
//!  [--max-loss N|P%] [--max-latency-us US] [--max-p99-latency-us US] [--report FILE.json]
//!  [--control SOCKET [--paused]] [--config FILE.toml] [--vlan ID] [--ipv6] [--proto udp|tcp]
//!  [--sample-ms MS]`
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
//! Lcores: with two or more worker lcores, TX runs on the first and RX on the second; with one,
//! both run on it in one loop; with none, on the main lcore. The main lcore prints stats.

use anyhow::{bail, Context, Result};
use apps_common::units;
use dataplane::ctlsock::{CtlServer, Envelope, REQUEST_DEADLINE};
use dataplane::stats::OwnedCounter;
use pktgen::analyzer::{Analyzer, Latency};
use pktgen::control::{PktgenProtocol, RateSetting, Request, Stats, TxControl, TxState};
use pktgen::frames::{buf_len, EtherAddrs, Flow, SizeSpec, Templates, TokenBucket};
use pktgen::options::{PktgenOptions, Settings};
use pktgen::report::{describe_rate, Measured, Report};
use pktgen::series::{Series, Totals, DEFAULT_CAPACITY};
use pktgen::verdict::us;
use pmd::{Burst, Eal, Mempool, Port, PortConfig, RxQueue, TelemetryCommand, TxQueue, MAX_BURST};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

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

/// State both sides share: stop flags and owner-written progress counters.
struct Shared {
    /// Set by the main lcore (duration, signal): stop transmitting.
    stop_tx: AtomicBool,
    /// Set by the TX side once it has sent its last frame (after storing `tx_total`).
    tx_done: AtomicBool,
    /// Frames built so far (stored before they are handed to the TX queue); written by the TX
    /// side only. Tells the analyzer which sequence numbers can be ours yet.
    built: AtomicU64,
    /// Frames sent; written by the TX side only.
    tx_total: OwnedCounter,
    /// Frames received (ours or not); written by the RX side only.
    rx_frames: OwnedCounter,
    /// Set by the main lcore: a signal stopped the TX side before its count or duration.
    interrupted: AtomicBool,
    /// The RX side's latest analysis, refreshed a few times a second for the stats line.
    snapshot: Mutex<Snapshot>,
    /// Pause and rate, set by the main lcore (control socket), read by the TX side once per
    /// burst.
    control: TxControl,
    /// The run's time series, recorded by the monitor every `--sample-ms` (off the per-packet
    /// path: the lock is taken by the monitor only, then once at the end).
    series: Mutex<Series>,
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

/// The transmit side.
struct Tx<'q, 'a> {
    txq: TxQueue<'q, 'a>,
    pool: &'a Mempool<'a>,
    /// Per-flow frame templates: per frame only the stamp and the checksums are written.
    frames: Templates,
    flows: Vec<Flow>,
    size: SizeSpec,
    count: u64,
    bucket: Option<TokenBucket>,
    /// Next sequence number (= frames sent) per stream.
    seq: Vec<u64>,
    sent: u64,
    /// Bytes of the frames sent (FCS included), kept like `seq`.
    bytes: u64,
    /// TSC of the first step and of the end of sending.
    first_tsc: Option<u64>,
    last_tsc: u64,
    /// Frames built but not yet taken by the TX queue: sent first next time, in order.
    pending: Burst<'a>,
    /// The stream of the next frame built: `sent % flows`, kept rather than divided for.
    next_stream: usize,
    tsc_hz: u64,
    /// The control word this side last acknowledged (see `TxControl`), and the rate it last
    /// built its token bucket for.
    acked: u64,
    rate_bits: u64,
}

impl Tx<'_, '_> {
    /// One iteration; returns false once done.
    fn step(&mut self, shared: &Shared) -> bool {
        let now = pmd::rdtsc();
        self.first_tsc.get_or_insert(now);
        // Relaxed: a stop request carries no data. Checked even with frames pending, so that a
        // TX queue that never drains (link down) cannot keep pktgen from stopping: `finish`
        // retries the pending frames a bounded number of times.
        if shared.stop_tx.load(Ordering::Relaxed) {
            return false;
        }
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
            let mut bufs: [Option<pmd::Mbuf>; MAX_BURST] = Default::default();
            // Raw buffers (headroom, lengths and offload flags reset, as dmafwd and l2fwd's
            // copies take them): the frame is written whole below and asks for no offload.
            if !self.pool.alloc_bulk_raw(&mut bufs[..n as usize]) {
                if let Some(b) = self.bucket.as_mut() {
                    b.refund(n);
                }
                return true;
            }
            let nf = self.flows.len();
            for (k, slot) in bufs[..n as usize].iter_mut().enumerate() {
                let idx = self.sent + k as u64;
                // Round robin over the streams (frame `idx` is stream `idx % flows`), without a
                // division per frame.
                let stream = self.next_stream;
                self.next_stream = if stream + 1 == nf { 0 } else { stream + 1 };
                let mut m = slot.take().expect("allocated above");
                let size = self.size.size_of(idx);
                self.bytes += size as u64;
                // Cannot fail: every size fits a 2048-byte mbuf.
                let _ = m.set_len(buf_len(size));
                self.frames
                    .stamp(m.data_mut(), stream as u16, self.seq[stream] as u32, now);
                self.seq[stream] += 1;
                let _ = self.pending.push(m);
            }
            self.sent += n as u64;
            // Release: pairs with the Acquire in Rx::step; a frame seen there was built after
            // this store, so the analyzer's bound covers it.
            shared.built.store(self.sent, Ordering::Release);
        }
        let before = self.pending.len();
        let sent = self.txq.tx_burst(&mut self.pending);
        shared.tx_total.add(sent as u64);
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
                shared.control.acknowledge(word);
                self.acked = word;
            }
            return false;
        }
        let bits = shared.control.rate_bits();
        if bits != self.rate_bits {
            self.rate_bits = bits;
            self.bucket = TxControl::pps_of(bits)
                .map(|pps| TokenBucket::new(pps, self.tsc_hz, MAX_BURST as u32, now));
        }
        true
    }

    fn finish(&mut self, shared: &Shared) {
        // Frames still pending were never sent: take back their sequence numbers is not
        // possible (later ones exist only if they were sent), so flush them with retries.
        for _ in 0..1000 {
            if self.pending.is_empty() {
                break;
            }
            let sent = self.txq.tx_burst(&mut self.pending);
            shared.tx_total.add(sent as u64);
        }
        let unsent = self.pending.len() as u64;
        if unsent > 0 {
            // Give the frames back and count them as not sent: they were the newest of their
            // streams, so the per-stream counts stay exact.
            let nf = self.flows.len() as u64;
            for k in 0..unsent {
                let idx = self.sent - 1 - k;
                self.seq[(idx % nf) as usize] -= 1;
                self.bytes -= self.size.size_of(idx) as u64;
            }
            self.pending.free_all();
        }
        self.last_tsc = pmd::rdtsc();
        // Release: tx_total (and the per-stream counts, handed over by the join) are complete
        // before the RX side, reading tx_done with Acquire, trusts them.
        shared.tx_done.store(true, Ordering::Release);
    }
}

/// The receive side.
struct Rx<'q, 'a> {
    rxq: RxQueue<'q, 'a>,
    analyzer: Analyzer,
    burst: Burst<'a>,
    next_snapshot: u64,
    snapshot_every: u64,
    /// TSC when the TX side was first seen done.
    tx_done_at: Option<u64>,
    drain_cycles: u64,
    /// TSC of the last burst that held a frame of ours.
    last_rx_tsc: u64,
}

impl Rx<'_, '_> {
    /// One iteration; returns false once the drain is over.
    fn step(&mut self, shared: &Shared) -> bool {
        let now = pmd::rdtsc();
        let n = self.rxq.rx_burst(&mut self.burst);
        if n > 0 {
            // Acquire, after the burst: pairs with the Release in Tx::step.
            self.analyzer
                .set_built(shared.built.load(Ordering::Acquire));
            let ours_before = self.analyzer.received_bytes();
            for m in self.burst.drain() {
                self.analyzer.record(m.data(), now);
            }
            if self.analyzer.received_bytes() != ours_before {
                self.last_rx_tsc = now;
            }
            shared.rx_frames.add(n as u64);
        }
        if now >= self.next_snapshot {
            self.publish(shared);
            self.next_snapshot = now + self.snapshot_every;
        }
        // Acquire: pairs with the Release in Tx::finish, so tx_total is final when seen.
        if self.tx_done_at.is_none() && shared.tx_done.load(Ordering::Acquire) {
            self.tx_done_at = Some(now);
        }
        match self.tx_done_at {
            None => true,
            Some(t) => {
                let all_back = self.analyzer.distinct() >= shared.tx_total.get();
                !all_back && now - t < self.drain_cycles
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
        *shared.snapshot.lock().expect("not poisoned") = s;
    }
}

/// What the run measured, from both sides once they are done.
fn measured(tx: &Tx, rx: &Rx, shared: &Shared, elapsed_s: f64) -> Measured {
    let (per_stream, total) = rx.analyzer.counts(&tx.seq);
    let hz = pmd::tsc_hz().max(1) as f64;
    let first = tx.first_tsc.unwrap_or(tx.last_tsc);
    let secs = |end: u64| end.saturating_sub(first) as f64 / hz;
    Measured {
        per_stream,
        total,
        foreign: rx.analyzer.foreign(),
        latency: rx.analyzer.latency(),
        stream_latency: rx.analyzer.stream_latency(),
        histogram: rx.analyzer.histogram_base64(),
        tx_bytes: tx.bytes,
        rx_bytes: rx.analyzer.received_bytes(),
        elapsed_s,
        tx_s: secs(tx.last_tsc),
        rx_s: secs(rx.last_rx_tsc),
        // Relaxed: the lcores are joined.
        interrupted: shared.interrupted.load(Ordering::Relaxed),
        series: std::mem::take(&mut *shared.series.lock().unwrap_or_else(|e| e.into_inner())),
    }
}

/// One run: the ports, both sides on the lcores there are, then the results; whether it
/// passed its criteria.
fn generate(eal: &Eal, opts: &Settings, runtime: &Runtime) -> Result<bool> {
    let nb_ports = Port::count(eal);
    for (what, p) in [("--tx-port", opts.tx_port), ("--rx-port", opts.rx_port)] {
        if p >= nb_ports {
            bail!("{what} {p} does not exist: {nb_ports} port(s) available (add --vdev=... or -a PCI to the EAL options)");
        }
    }
    // Two pools: the frames we build are never handed back by the RX side as received. A
    // driver that delivers a buffer without writing it (net_null does) would otherwise return
    // a stale copy of one of our frames, counted as ours; from the RX pool it holds nothing of
    // ours, and counts as foreign.
    let tx_pool = Mempool::create(eal, "pktgen_tx", 16384, 256, 2048 + 128, eal.socket_id())
        .context("cannot create the TX mbuf pool")?;
    let pool = Mempool::create(eal, "pktgen_rx", 8192, 256, 2048 + 128, eal.socket_id())
        .context("cannot create the RX mbuf pool")?;
    let mut ports = Ports::start(eal, opts, &pool)?;
    let (tx, rx) = sides(&ports, &tx_pool, opts)?;
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
    let control = Control {
        requests,
        published,
        rate,
        mean_size: opts.size.mean(),
    };
    let shared = Shared {
        stop_tx: AtomicBool::new(false),
        tx_done: AtomicBool::new(false),
        built: AtomicU64::new(0),
        tx_total: OwnedCounter::default(),
        rx_frames: OwnedCounter::default(),
        interrupted: AtomicBool::new(false),
        snapshot: Mutex::new(Snapshot::default()),
        control: TxControl::new(runtime.paused, rate.pps),
        series: Mutex::new(Series::new(opts.sample_ms, DEFAULT_CAPACITY)),
    };
    let quit = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&quit))
            .context("cannot install signal handler")?;
    }
    let started = Instant::now();
    let (tx, rx) = launch(eal, opts, tx, rx, &shared, &quit, started, control)?;
    let report = Report::new(
        measured(&tx, &rx, &shared, started.elapsed().as_secs_f64()),
        opts,
    );
    drop(tx);
    drop(rx);
    ports.stop()?;
    finish(&report, opts)
}

/// The TX port and, when it is another one, the RX port: configured and started.
struct Ports<'p> {
    tx: Port<'p>,
    rx: Option<Port<'p>>,
}

impl<'p> Ports<'p> {
    fn start<'e: 'p>(eal: &'p Eal, opts: &Settings, pool: &'p Mempool<'e>) -> Result<Self> {
        let cfg = PortConfig::default();
        let start = |id: u16| -> Result<Port<'p>> {
            let mut p = Port::configure(eal, pmd::PortId::new(id), &cfg, pool)
                .with_context(|| format!("cannot configure port {id}"))?;
            p.start()?;
            Ok(p)
        };
        let tx = start(opts.tx_port)?;
        let rx = if opts.rx_port != opts.tx_port {
            Some(start(opts.rx_port)?)
        } else {
            None
        };
        Ok(Ports { tx, rx })
    }

    fn rx(&self) -> &Port<'p> {
        self.rx.as_ref().unwrap_or(&self.tx)
    }

    /// Stops the ports (no queue handle is left: the borrow checker sees to it).
    fn stop(&mut self) -> Result<()> {
        self.tx.stop()?;
        if let Some(p) = self.rx.as_mut() {
            p.stop()?;
        }
        Ok(())
    }
}

/// Both sides, ready to run: the TX side's flows, frame sizes and token bucket, the RX side's
/// analyzer. Says on stdout what is about to run.
fn sides<'q, 'a>(
    ports: &'q Ports<'a>,
    tx_pool: &'a Mempool<'a>,
    opts: &Settings,
) -> Result<(Tx<'q, 'a>, Rx<'q, 'a>)> {
    let (tx_port, rx_port) = (&ports.tx, ports.rx());
    let src = tx_port.mac_addr()?;
    let dst = opts.dst_mac.unwrap_or(rx_port.mac_addr()?);
    apps_common::outln!(
        "pktgen: TX port {} ({}) -> RX port {} ({}), rate {}, size {}, {} flow(s), {} frames, dst {dst}",
        tx_port.id(),
        tx_port.name(),
        rx_port.id(),
        rx_port.name(),
        describe_rate(opts.rate, opts.size.mean()),
        opts.size,
        opts.flows,
        opts.frame
    );
    let hz = pmd::tsc_hz();
    let now = pmd::rdtsc();
    let bucket = opts
        .rate
        .pps(opts.size.mean())
        .map(|pps| TokenBucket::new(pps, hz, MAX_BURST as u32, now));
    let flows: Vec<Flow> = (0..opts.flows).map(Flow::nth).collect();
    let tx = Tx {
        txq: tx_port.tx_queue(pmd::QueueId::new(0))?,
        pool: tx_pool,
        frames: Templates::new(
            opts.frame,
            &EtherAddrs {
                dst: dst.0,
                src: src.0,
            },
            &flows,
            &opts.size,
        )
        .map_err(anyhow::Error::msg)?,
        flows,
        size: opts.size.clone(),
        count: opts.count.unwrap_or(u64::MAX),
        bucket,
        seq: vec![0; opts.flows as usize],
        sent: 0,
        bytes: 0,
        first_tsc: None,
        last_tsc: now,
        pending: Burst::new(),
        next_stream: 0,
        tsc_hz: hz,
        acked: u64::MAX,
        // No rate's bits (a NaN): the first burst builds the bucket from the control word.
        rate_bits: u64::MAX,
    };
    let rx = Rx {
        rxq: rx_port.rx_queue(pmd::QueueId::new(0))?,
        analyzer: Analyzer::new(opts.flows as usize, hz),
        burst: Burst::new(),
        next_snapshot: now,
        // Five times a second for the stats line, and twice per time-series sample.
        snapshot_every: (hz / 5).min(hz / 2000 * opts.sample_ms).max(1),
        tx_done_at: None,
        drain_cycles: (opts.drain.as_secs_f64() * hz as f64) as u64,
        last_rx_tsc: 0,
    };
    Ok((tx, rx))
}

/// Runs both sides: with two or more worker lcores TX on the first and RX on the second, with
/// one both on it, with none both on a thread beside the main lcore; meanwhile the main lcore
/// runs [`monitor`]. Returns both sides once the RX side's drain is over.
#[allow(clippy::too_many_arguments)]
fn launch<'q, 'a>(
    eal: &Eal,
    opts: &Settings,
    tx: Tx<'q, 'a>,
    rx: Rx<'q, 'a>,
    shared: &Shared,
    quit: &AtomicBool,
    started: Instant,
    control: Control,
) -> Result<(Tx<'q, 'a>, Rx<'q, 'a>)> {
    let workers = eal.worker_lcores();
    let rx_done = AtomicBool::new(false);
    let done = &rx_done;
    let monitor = move || monitor(opts, shared, quit, done, started, control);
    let (tx_result, rx_result) = if workers.len() >= 2 {
        on_two_lcores(
            eal,
            [workers[0], workers[1]],
            tx,
            rx,
            shared,
            &rx_done,
            monitor,
        )?
    } else {
        let (t, r) = if workers.is_empty() {
            std::thread::scope(|s| {
                s.spawn(monitor);
                run_both(tx, rx, shared, &rx_done)
            })
        } else {
            on_one_lcore(eal, workers[0], tx, rx, shared, &rx_done, monitor)?
        };
        (Some(t), Some(r))
    };
    match (tx_result, rx_result) {
        (Some(t), Some(r)) => Ok((t, r)),
        _ => bail!("a pktgen lcore failed"),
    }
}

/// TX on `lcores[0]`, RX on `lcores[1]`, `monitor` on the main lcore. Each side comes back
/// through its slot; None: its lcore failed.
fn on_two_lcores<'q, 'a>(
    eal: &Eal,
    lcores: [pmd::LcoreId; 2],
    mut tx: Tx<'q, 'a>,
    mut rx: Rx<'q, 'a>,
    shared: &Shared,
    rx_done: &AtomicBool,
    monitor: impl FnOnce(),
) -> Result<(Option<Tx<'q, 'a>>, Option<Rx<'q, 'a>>)> {
    let tx_slot = Mutex::new(None);
    let rx_slot = Mutex::new(None);
    {
        let (tx_slot, rx_slot) = (&tx_slot, &rx_slot);
        let tx_job: Box<dyn FnOnce() -> i32 + Send + '_> = Box::new(move || {
            while tx.step(shared) {}
            tx.finish(shared);
            *tx_slot.lock().expect("not poisoned") = Some(tx);
            0
        });
        let rx_job: Box<dyn FnOnce() -> i32 + Send + '_> = Box::new(move || {
            while rx.step(shared) {}
            rx.publish(shared);
            // Relaxed: only ends the monitor's loop; the result goes through the mutex.
            rx_done.store(true, Ordering::Relaxed);
            *rx_slot.lock().expect("not poisoned") = Some(rx);
            0
        });
        eal.run_on_lcores(vec![(lcores[0], tx_job), (lcores[1], rx_job)], monitor)?;
    }
    Ok((
        tx_slot.into_inner().expect("not poisoned"),
        rx_slot.into_inner().expect("not poisoned"),
    ))
}

/// Both sides in one loop ([`run_both`]) on worker lcore `lcore`, `monitor` on the main lcore.
fn on_one_lcore<'q, 'a>(
    eal: &Eal,
    lcore: pmd::LcoreId,
    tx: Tx<'q, 'a>,
    rx: Rx<'q, 'a>,
    shared: &Shared,
    rx_done: &AtomicBool,
    monitor: impl FnOnce(),
) -> Result<(Tx<'q, 'a>, Rx<'q, 'a>)> {
    let slot = Mutex::new(None);
    {
        let slot = &slot;
        let job: Box<dyn FnOnce() -> i32 + Send + '_> = Box::new(move || {
            *slot.lock().expect("not poisoned") = Some(run_both(tx, rx, shared, rx_done));
            0
        });
        eal.run_on_lcores(vec![(lcore, job)], monitor)?;
    }
    slot.into_inner()
        .expect("not poisoned")
        .context("the pktgen lcore failed")
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

/// TX and RX in one loop, on one lcore.
fn run_both<'q, 'a>(
    mut tx: Tx<'q, 'a>,
    mut rx: Rx<'q, 'a>,
    shared: &Shared,
    rx_done: &AtomicBool,
) -> (Tx<'q, 'a>, Rx<'q, 'a>) {
    let mut sending = true;
    loop {
        if sending && !tx.step(shared) {
            tx.finish(shared);
            sending = false;
        }
        if !rx.step(shared) && !sending {
            break;
        }
    }
    rx.publish(shared);
    // Relaxed: only ends the monitor's loop; the results are handed over by the join.
    rx_done.store(true, Ordering::Relaxed);
    (tx, rx)
}

/// The main lcore's part in runtime control: the control socket's requests (with
/// `--control`), the rate setting, and the stats published on DPDK's telemetry.
struct Control {
    requests: Option<mpsc::Receiver<Envelope<PktgenProtocol>>>,
    published: Arc<Mutex<Option<Stats>>>,
    rate: RateSetting,
    mean_size: f64,
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
        let s = *shared.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        let tx = shared.tx_total.get();
        // Relaxed: flags; the counters are statistics read without ordering.
        let state =
            if shared.tx_done.load(Ordering::Relaxed) || shared.stop_tx.load(Ordering::Relaxed) {
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
            rx: shared.rx_frames.get(),
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
            (shared.tx_done.load(Ordering::Relaxed) || shared.stop_tx.load(Ordering::Relaxed)).then(
                || {
                    "transmission is over (its --count was sent, its --duration ran out, or a \
                     signal stopped it): only stats now"
                        .to_owned()
                },
            )
        };
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
                while !shared.control.acked(word) && over().is_none() && Instant::now() < until {
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

/// The main lcore: duration, signals, periodic stats.
fn monitor(
    opts: &Settings,
    shared: &Shared,
    quit: &AtomicBool,
    rx_done: &AtomicBool,
    started: Instant,
    mut control: Control,
) {
    let requests = control.requests.take();
    let mut rates = Rates::new(started);
    let mut next_publish = started;
    let period = Duration::from_secs(opts.stats_period);
    // Checked: no Instant + Duration may overflow (None: no more stats lines).
    let mut next = started.checked_add(period);
    let (mut last_tx, mut last_rx, mut last_t) = (0u64, 0u64, started);
    let sample_every = Duration::from_millis(opts.sample_ms);
    let mut next_sample = started.checked_add(sample_every);
    let sample = |now: Instant| {
        let s = *shared.snapshot.lock().expect("not poisoned");
        let totals = Totals {
            tx: shared.tx_total.get(),
            rx: s.received,
            distinct: s.distinct,
        };
        let t_ms = (now - started).as_millis() as u64;
        let mut series = shared.series.lock().unwrap_or_else(|e| e.into_inner());
        series.record(t_ms, totals);
    };
    // Relaxed loads/stores: these flags carry no data (see Shared).
    while !rx_done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
        let now = Instant::now();
        let timed_out = opts.duration.is_some_and(|d| now - started >= d);
        let signalled = quit.load(Ordering::Relaxed);
        if signalled || timed_out {
            shared.stop_tx.store(true, Ordering::Relaxed);
        }
        if signalled && !timed_out && !shared.tx_done.load(Ordering::Relaxed) {
            shared.interrupted.store(true, Ordering::Relaxed);
        }
        if opts.stats_period > 0 && next.is_some_and(|n| now >= n) {
            let s = *shared.snapshot.lock().expect("not poisoned");
            let tx = shared.tx_total.get();
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
        rates.sample(now, shared.tx_total.get(), shared.rx_frames.get());
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
}
