//! The copy stage against pure-Rust doubles of a DMA channel, on real DPDK mbufs (the EAL runs
//! in this test process with --no-huge --no-pci): error completions, a ring that runs out,
//! completions that ignore batch boundaries, an engine that stops completing. Every packet must
//! come out once, intact (MACs rewritten, every other byte identical), in receive order.

use dataplane::copy::{CopyMode, CopyStage, Copybreak, DmaEngine, HEADER_BYTES};
use dataplane::dma::Quarantine;
use dataplane::fwd::Rule;
use dataplane::stats::{DropReason, LcoreStats};
use pmd::{Burst, Eal, MacAddr, Mbuf, Mempool, PortId, MAX_BURST};
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::sync::OnceLock;

static EAL: OnceLock<Eal> = OnceLock::new();
static POOL: OnceLock<Mempool<'static>> = OnceLock::new();

fn pool() -> &'static Mempool<'static> {
    POOL.get_or_init(|| {
        let eal = EAL.get_or_init(|| {
            Eal::init(&[
                "copy_stage_test",
                "--no-huge",
                "--no-pci",
                "-m",
                "256",
                "-l",
                "0",
                "--log-level=error",
                &format!("--file-prefix=copystage{}", std::process::id()),
            ])
            .expect("EAL init")
        });
        Mempool::create(eal, "copy_test", 32768, 0, 2048 + 128, 0).expect("pool")
    })
}

/// How a double behaves.
#[derive(Clone, Copy)]
struct Behaviour {
    /// Descriptors the ring holds.
    ring: usize,
    /// Every `fail_every`-th descriptor completes with an error (0 = never).
    fail_every: u64,
    /// Most completions reported by one poll (0 = never complete).
    max_per_poll: usize,
    /// Randomise how many of the available completions each poll reports.
    ragged: bool,
}

/// A DMA channel double: copies at enqueue time (or writes garbage for a failing descriptor) and
/// reports completions later, in order, as `Behaviour` says.
struct Double {
    b: Behaviour,
    /// Statuses of descriptors enqueued, submitted or not.
    ring: VecDeque<u32>,
    /// How many of `ring` are submitted (only those may complete).
    submitted: usize,
    enqueued: u64,
    rng: rand::rngs::StdRng,
}

impl Double {
    fn new(b: Behaviour) -> Self {
        Double {
            b,
            ring: VecDeque::new(),
            submitted: 0,
            enqueued: 0,
            rng: rand::rngs::StdRng::seed_from_u64(7),
        }
    }
}

// SAFETY: a test double that copies at enqueue time: every completion it reports is of a
// copy it finished, reported once, in order.
unsafe impl DmaEngine for Double {
    fn capacity(&self) -> u16 {
        (self.b.ring - self.ring.len()) as u16
    }

    unsafe fn enqueue(&mut self, src: &Mbuf, dst: &mut Mbuf, offset: usize) -> bool {
        if self.ring.len() >= self.b.ring {
            return false;
        }
        self.enqueued += 1;
        let fail = self.b.fail_every > 0 && self.enqueued.is_multiple_of(self.b.fail_every);
        if fail {
            dst.data_mut()[offset..].fill(0xEE);
        } else {
            dst.data_mut()[offset..].copy_from_slice(&src.data()[offset..]);
        }
        self.ring.push_back(fail as u32);
        true
    }

    fn submit(&mut self) {
        self.submitted = self.ring.len();
    }

    fn poll(&mut self, status: &mut [u32]) -> usize {
        let mut n = self.submitted.min(status.len()).min(self.b.max_per_poll);
        if self.b.ragged && n > 0 {
            n = self.rng.gen_range(0..=n);
        }
        for s in status.iter_mut().take(n) {
            *s = self
                .ring
                .pop_front()
                .expect("submitted descriptors are in the ring");
        }
        self.submitted -= n;
        n
    }
}

const DST: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const SRC: MacAddr = MacAddr([0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f]);

fn frame(rng: &mut impl Rng, seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    rng.fill(&mut f[..]);
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    f
}

fn expected(f: &[u8]) -> Vec<u8> {
    let mut e = f.to_vec();
    e[0..6].copy_from_slice(&DST.0);
    e[6..12].copy_from_slice(&SRC.0);
    e
}

struct Outcome {
    sent: Vec<Vec<u8>>,
    got: Vec<Vec<u8>>,
    stats: LcoreStats,
    /// Packets `accept_into` put straight into its output burst.
    direct_out: u64,
}

/// Pushes `count` frames with sizes from `size` through a stage built on `engine`, in bursts,
/// polling and draining as a worker would; `abandon_after` polls with DMA still outstanding at
/// the end, it gives up on the engine (surprise removal).
fn run_stage(
    engine: Option<Double>,
    mode: CopyMode,
    copybreak: impl Into<Copybreak>,
    count: usize,
    size: impl Fn(&mut rand::rngs::StdRng) -> usize,
    abandon_after: Option<usize>,
) -> Outcome {
    let pool = pool();
    let stats = LcoreStats::default();
    let mut stage = CopyStage::new(mode, copybreak, engine);
    let s = stage.add_stream(DST, SRC, true);
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut sent = Vec::new();
    let mut got = Vec::new();
    let mut out = Burst::new();
    let mut quarantines: Vec<Quarantine> = Vec::new();
    let mut collect = |stage: &mut CopyStage<'static, Double>, got: &mut Vec<Vec<u8>>| {
        while stage.take_ready(s, &mut out) > 0 {
            got.extend(out.drain().map(|m| m.data().to_vec()));
        }
    };
    let mut stuck = 0;
    let mut direct_out = 0;
    while sent.len() < count {
        if stage.room(s) == 0 {
            // Everything in flight and nothing completing: give up on the engine (the worker
            // does this after its stall timeout).
            stuck += 1;
            if abandon_after.is_some_and(|a| stuck > a) {
                quarantines.extend(
                    stage
                        .abandon_dma(pool, &stats, |_| PortId::new(0))
                        .into_iter()
                        .map(|r| r.quarantine),
                );
            }
            assert!(stuck < 1_000_000, "stage never made room");
        }
        let n = rng
            .gen_range(1..=MAX_BURST)
            .min(count - sent.len())
            .min(stage.room(s));
        let mut burst = Burst::new();
        for _ in 0..n {
            let len = size(&mut rng);
            let f = frame(&mut rng, sent.len() as u32, len);
            let mut m = pool.alloc().expect("test pool has room");
            m.set_len(f.len()).unwrap();
            m.data_mut().copy_from_slice(&f);
            burst.push(m).map_err(|_| ()).unwrap();
            sent.push(f);
        }
        stats.ports[0].rx.add(n as u64);
        if rng.gen_bool(0.5) {
            stage.accept(s, &mut burst, pool, &stats, PortId::new(0));
        } else {
            // The worker's way: copies finished with nothing older waiting come straight out,
            // into a burst that may already hold some packets (then the rest wait in the
            // stream).
            let mut direct = Burst::new();
            let held = rng.gen_range(0..=MAX_BURST);
            for _ in 0..held {
                let filler = pool.alloc().expect("test pool has room");
                direct.push(filler).map_err(|_| ()).unwrap();
            }
            stage.accept_into(s, &mut burst, &mut direct, pool, &stats, PortId::new(0));
            for m in direct.drain().skip(held) {
                got.push(m.data().to_vec());
                direct_out += 1;
            }
        }
        stage.submit();
        stage.poll(&stats, 0);
        collect(&mut stage, &mut got);
    }
    let mut polls = 0;
    while stage.held() > 0 {
        stage.submit();
        stage.poll(&stats, 0);
        polls += 1;
        if abandon_after.is_some_and(|a| polls > a) && stage.in_dma() > 0 {
            quarantines.extend(
                stage
                    .abandon_dma(pool, &stats, |_| PortId::new(0))
                    .into_iter()
                    .map(|r| r.quarantine),
            );
        }
        collect(&mut stage, &mut got);
        assert!(polls < 1_000_000, "stage never drained");
    }
    // A double has no device to stop: its quarantines leak the abandoned copies when dropped.
    drop(quarantines);
    Outcome {
        sent,
        got,
        stats,
        direct_out,
    }
}

fn assert_intact_in_order(o: &Outcome) {
    assert_eq!(o.got.len(), o.sent.len(), "every packet out exactly once");
    for (i, (s, g)) in o.sent.iter().zip(&o.got).enumerate() {
        assert_eq!(
            g,
            &expected(s),
            "packet {i} (len {}) intact and in order",
            s.len()
        );
    }
    let d = &o.stats.ports[0].dropped;
    assert_eq!(d[DropReason::NoMbuf as usize].get(), 0);
    assert_eq!(d[DropReason::Runt as usize].get(), 0);
}

fn around(copybreak: usize) -> impl Fn(&mut rand::rngs::StdRng) -> usize {
    move |r| r.gen_range(copybreak.saturating_sub(100).max(60)..=(copybreak + 100).min(1514))
}

#[test]
fn cpu_mode_copies_everything_on_the_cpu() {
    let o = run_stage(None, CopyMode::Cpu, 256, 3000, around(256), None);
    assert_intact_in_order(&o);
    assert_eq!(o.stats.copies.cpu.get(), 3000);
    assert_eq!(o.stats.copies.dma.get(), 0);
    // Both ways out were taken: straight into the burst, and through the stream when the
    // burst was full.
    assert!(
        o.direct_out > 0 && o.direct_out < 3000,
        "direct {}",
        o.direct_out
    );
}

#[test]
fn dma_mode_mixed_sizes_around_the_copybreak_keep_order() {
    let b = Behaviour {
        ring: 4096,
        fail_every: 0,
        max_per_poll: 7,
        ragged: true,
    };
    let o = run_stage(
        Some(Double::new(b)),
        CopyMode::Dma,
        256,
        5000,
        around(256),
        None,
    );
    assert_intact_in_order(&o);
    let (cpu, dma) = (o.stats.copies.cpu.get(), o.stats.copies.dma.get());
    assert!(
        cpu > 1000 && dma > 1000,
        "both paths used: cpu {cpu} dma {dma}"
    );
    assert_eq!(cpu + dma, 5000);
}

#[test]
fn cpu_only_sends_nothing_to_the_engine_whatever_the_size() {
    let b = Behaviour {
        ring: 4096,
        fail_every: 0,
        max_per_poll: 64,
        ragged: false,
    };
    let o = run_stage(
        Some(Double::new(b)),
        CopyMode::Dma,
        Copybreak::CpuOnly,
        2000,
        |r| r.gen_range(60..=1514),
        None,
    );
    assert_intact_in_order(&o);
    assert_eq!(o.stats.copies.cpu.get(), 2000);
    assert_eq!(o.stats.copies.dma.get(), 0);
}

#[test]
fn error_completions_are_recopied_not_dropped() {
    let b = Behaviour {
        ring: 4096,
        fail_every: 5,
        max_per_poll: 64,
        ragged: false,
    };
    let o = run_stage(
        Some(Double::new(b)),
        CopyMode::Dma,
        128,
        4000,
        |r| r.gen_range(200..1514),
        None,
    );
    assert_intact_in_order(&o);
    let c = &o.stats.copies;
    assert_eq!(c.dma.get(), 4000);
    assert_eq!(c.dma_errors.get(), 800);
    assert_eq!(c.recopied.get(), 800);
}

#[test]
fn a_full_ring_falls_back_to_cpu() {
    let b = Behaviour {
        ring: 3,
        fail_every: 0,
        max_per_poll: 2,
        ragged: false,
    };
    let o = run_stage(
        Some(Double::new(b)),
        CopyMode::Dma,
        64,
        3000,
        |r| r.gen_range(100..1514),
        None,
    );
    assert_intact_in_order(&o);
    let (cpu, dma) = (o.stats.copies.cpu.get(), o.stats.copies.dma.get());
    assert!(cpu > 0 && dma > 0, "cpu {cpu} dma {dma}");
    assert_eq!(cpu + dma, 3000);
}

#[test]
fn completions_out_of_batch_boundaries() {
    // One completion per poll at most, randomly none: completions straddle every burst.
    let b = Behaviour {
        ring: 4096,
        fail_every: 3,
        max_per_poll: 1,
        ragged: true,
    };
    let o = run_stage(
        Some(Double::new(b)),
        CopyMode::Dma,
        64,
        2000,
        |r| r.gen_range(60..1514),
        None,
    );
    assert_intact_in_order(&o);
}

#[test]
fn a_stalled_engine_is_abandoned_and_every_packet_recopied() {
    let b = Behaviour {
        ring: 4096,
        fail_every: 0,
        max_per_poll: 0,
        ragged: false,
    };
    let o = run_stage(
        Some(Double::new(b)),
        CopyMode::Dma,
        64,
        1500,
        |r| r.gen_range(100..1514),
        Some(10),
    );
    assert_intact_in_order(&o);
    let c = &o.stats.copies;
    assert_eq!(
        c.recopied.get(),
        c.dma.get(),
        "every DMA copy was re-done by the CPU"
    );
    assert!(c.dma.get() > 0);
}

#[test]
fn runts_are_counted_not_forwarded() {
    let pool = pool();
    let stats = LcoreStats::default();
    let mut stage: CopyStage<Double> = CopyStage::new(CopyMode::Cpu, 256, None);
    let s = stage.add_stream(DST, SRC, true);
    let mut burst = Burst::new();
    for len in [10usize, 60, 13, 14] {
        let mut m = pool.alloc().unwrap();
        m.set_len(len).unwrap();
        m.data_mut().fill(len as u8);
        burst.push(m).map_err(|_| ()).unwrap();
    }
    stage.accept(s, &mut burst, pool, &stats, PortId::new(0));
    let mut out = Burst::new();
    stage.take_ready(s, &mut out);
    let lens: Vec<usize> = out.as_slice().iter().map(|m| m.len()).collect();
    assert_eq!(lens, [60, 14]);
    assert_eq!(stats.ports[0].dropped[DropReason::Runt as usize].get(), 2);
}

#[test]
fn header_is_copied_by_cpu_payload_by_dma() {
    // With an engine that fails everything, only the payload is garbage until re-copied: the
    // stage must have re-copied exactly from HEADER_BYTES on.
    let b = Behaviour {
        ring: 64,
        fail_every: 1,
        max_per_poll: 64,
        ragged: false,
    };
    let o = run_stage(
        Some(Double::new(b)),
        CopyMode::Dma,
        64,
        200,
        |r| r.gen_range(HEADER_BYTES + 1..1514),
        None,
    );
    assert_intact_in_order(&o);
    assert_eq!(o.stats.copies.recopied.get(), 200);
}

#[test]
fn rule_dst_mac_matches_l2fwd() {
    assert_eq!(Rule::dst_mac(PortId::new(1)), DST);
}

#[test]
fn only_the_stalled_lane_is_retired() {
    let pool = pool();
    let stats = LcoreStats::default();
    let healthy = Behaviour {
        ring: 4096,
        fail_every: 0,
        max_per_poll: 64,
        ragged: false,
    };
    let stalled = Behaviour {
        max_per_poll: 0,
        ..healthy
    };
    let mut stage = CopyStage::new(CopyMode::Dma, 64, Some(Double::new(healthy)));
    stage.add_engine(Double::new(stalled));
    // Stream 0 uses lane 0 (healthy), stream 1 lane 1 (stalled).
    let streams = [
        stage.add_stream(DST, SRC, true),
        stage.add_stream(DST, SRC, true),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut sent: [Vec<Vec<u8>>; 2] = Default::default();
    let mut got: [Vec<Vec<u8>>; 2] = Default::default();
    let mut quarantine = Quarantine::new();
    let mut retired = Vec::new();
    let mut out = Burst::new();
    let mut now = 0u64;
    for round in 0..40 {
        for &s in &streams {
            let mut burst = Burst::new();
            for _ in 0..16.min(stage.room(s)) {
                let len = rng.gen_range(100..1514);
                let f = frame(&mut rng, sent[s].len() as u32, len);
                let mut m = pool.alloc().unwrap();
                m.set_len(len).unwrap();
                m.data_mut().copy_from_slice(&f);
                burst.push(m).map_err(|_| ()).unwrap();
                sent[s].push(f);
            }
            stage.accept(s, &mut burst, pool, &stats, PortId::new(s as u16));
        }
        stage.submit();
        now += 10;
        stage.poll(&stats, now);
        if round == 20 {
            retired = stage.retire_stalled(now, 100, pool, &stats, &|s| PortId::new(s as u16));
            for r in &mut retired {
                let q = std::mem::take(&mut r.quarantine);
                assert!(quarantine.append(q).is_ok(), "one double, one device");
            }
        }
        for &s in &streams {
            while stage.take_ready(s, &mut out) > 0 {
                got[s].extend(out.drain().map(|m| m.data().to_vec()));
            }
        }
    }
    assert_eq!(retired.len(), 1, "the stalled lane was retired");
    assert!(retired[0].stalled && retired[0].recopied > 0);
    assert_eq!(stage.engines(), 1, "the healthy lane keeps working");
    assert!(!quarantine.is_empty());
    while stage.held() > 0 {
        now += 10;
        stage.poll(&stats, now);
        for &s in &streams {
            while stage.take_ready(s, &mut out) > 0 {
                got[s].extend(out.drain().map(|m| m.data().to_vec()));
            }
        }
    }
    for s in streams {
        assert_eq!(
            got[s].len(),
            sent[s].len(),
            "stream {s}: every packet out once"
        );
        for (i, (a, b)) in sent[s].iter().zip(&got[s]).enumerate() {
            assert_eq!(b, &expected(a), "stream {s} packet {i}");
        }
    }
    assert!(stats.copies.recopied.get() > 0);
    drop(quarantine);
}

#[test]
fn a_burst_beyond_the_streams_room_keeps_the_rest() {
    let pool = pool();
    let stats = LcoreStats::default();
    let mut stage: CopyStage<'static, Double> = CopyStage::new(CopyMode::Cpu, 0, None);
    let s = stage.add_stream(DST, SRC, true);
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut sent = Vec::new();
    let mut fill = |n: usize, sent: &mut Vec<Vec<u8>>| {
        let mut burst = Burst::new();
        for _ in 0..n {
            let f = frame(&mut rng, sent.len() as u32, 100);
            let mut m = pool.alloc().expect("test pool has room");
            m.set_len(f.len()).unwrap();
            m.data_mut().copy_from_slice(&f);
            burst.push(m).map_err(|_| ()).unwrap();
            sent.push(f);
        }
        burst
    };
    // Fill the stream to 5 short of its room, then offer a full burst: 5 are taken, the rest
    // stay in the burst in order (they used to overwrite the oldest slots).
    while stage.room(s) > MAX_BURST {
        let mut b = fill(MAX_BURST.min(stage.room(s) - 5), &mut sent);
        stage.accept(s, &mut b, pool, &stats, PortId::new(0));
        assert!(b.is_empty());
    }
    let mut b = fill(MAX_BURST, &mut sent);
    let room = stage.room(s);
    stage.accept(s, &mut b, pool, &stats, PortId::new(0));
    assert_eq!(stage.room(s), 0);
    assert_eq!(b.len(), MAX_BURST - room, "the rest stays in the burst");
    let mut got = Vec::new();
    let mut out = Burst::new();
    while stage.take_ready(s, &mut out) > 0 {
        got.extend(out.drain().map(|m| m.data().to_vec()));
    }
    stage.accept(s, &mut b, pool, &stats, PortId::new(0));
    assert!(b.is_empty());
    while stage.take_ready(s, &mut out) > 0 {
        got.extend(out.drain().map(|m| m.data().to_vec()));
    }
    assert_eq!(got.len(), sent.len(), "every packet out once");
    for (i, (g, f)) in got.iter().zip(&sent).enumerate() {
        assert_eq!(g, &expected(f), "packet {i} intact and in order");
    }
}
