//! A DMA engine that misbehaves in a way a stall timeout cannot see: it reports more
//! completions than it has copies in flight. The copy stage must believe none of them, mark the
//! lane faulty (one `dma_errors`), retire it at the next check whatever the stall timeout, and
//! re-copy everything it held on the CPU: every packet out once, intact, in order, while the
//! other lane keeps working. (Real DPDK mbufs: the EAL runs in this test process with
//! --no-huge --no-pci.)

use dataplane::copy::{CopyMode, CopyStage, DmaEngine};
use dataplane::dma::Quarantine;
use dataplane::stats::{DropReason, LcoreStats};
use pmd::{Burst, Eal, MacAddr, Mbuf, Mempool, PortId};
use rand::{Rng, SeedableRng};
use std::sync::OnceLock;

static EAL: OnceLock<Eal> = OnceLock::new();
static POOL: OnceLock<Mempool<'static>> = OnceLock::new();

fn pool() -> &'static Mempool<'static> {
    POOL.get_or_init(|| {
        let eal = EAL.get_or_init(|| {
            Eal::init(&[
                "copy_faults_test",
                "--no-huge",
                "--no-pci",
                "-m",
                "256",
                "-l",
                "0",
                "--log-level=error",
                &format!("--file-prefix=copyfaults{}", std::process::id()),
            ])
            .expect("EAL init")
        });
        Mempool::create(eal, "copy_faults", 16384, 0, 2048 + 128, 0).expect("pool")
    })
}

/// A double that copies at enqueue time and completes everything submitted at each poll; once
/// `overrun_after` copies were enqueued it reports one completion more than it was given.
struct Overreporter {
    /// Copies enqueued and not yet reported.
    pending: usize,
    /// Of `pending`, how many were submitted.
    submitted: usize,
    enqueued: u64,
    overrun_after: u64,
    /// Polls that over-reported.
    overruns: u32,
}

impl Overreporter {
    fn new(overrun_after: u64) -> Self {
        Overreporter {
            pending: 0,
            submitted: 0,
            enqueued: 0,
            overrun_after,
            overruns: 0,
        }
    }
}

// SAFETY: every copy is finished when `enqueue` returns and the double never touches a buffer
// after that, so no report of it can free a buffer it still uses. Its over-reporting is the
// fault under test, which `InFlight` refuses (it hands nothing back on an overrun).
unsafe impl DmaEngine for Overreporter {
    fn capacity(&self) -> u16 {
        (4096 - self.pending) as u16
    }

    unsafe fn enqueue(&mut self, src: &Mbuf, dst: &mut Mbuf, offset: usize) -> bool {
        if self.pending >= 4096 {
            return false;
        }
        dst.data_mut()[offset..].copy_from_slice(&src.data()[offset..]);
        self.pending += 1;
        self.enqueued += 1;
        true
    }

    fn submit(&mut self) {
        self.submitted = self.pending;
    }

    fn poll(&mut self, status: &mut [u32]) -> usize {
        let n = self.submitted.min(status.len());
        status[..n].fill(0);
        self.pending -= n;
        self.submitted -= n;
        if self.enqueued > self.overrun_after {
            self.overruns += 1;
            return n + 1; // one it was never given
        }
        n
    }
}

const DST: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const SRC: MacAddr = MacAddr([0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f]);

fn expected(f: &[u8]) -> Vec<u8> {
    let mut e = f.to_vec();
    e[0..6].copy_from_slice(&DST.0);
    e[6..12].copy_from_slice(&SRC.0);
    e
}

#[test]
fn an_engine_reporting_more_than_in_flight_is_retired_and_its_copies_redone_on_the_cpu() {
    let pool = pool();
    let stats = LcoreStats::default();
    // Lane 0 is sound, lane 1 over-reports from its 50th copy on. Stream s uses lane s.
    let mut stage = CopyStage::new(CopyMode::Dma, 64, Some(Overreporter::new(u64::MAX)));
    stage.add_engine(Overreporter::new(50));
    let streams = [
        stage.add_stream(DST, SRC, true),
        stage.add_stream(DST, SRC, true),
    ];
    // A stall timeout the test never reaches: only the fault can retire the lane.
    const TIMEOUT: u64 = u64::MAX / 4;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut sent: [Vec<Vec<u8>>; 2] = Default::default();
    let mut got: [Vec<Vec<u8>>; 2] = Default::default();
    let mut retired = Vec::new();
    let mut quarantine = Quarantine::new();
    let mut out = Burst::new();
    let mut now = 0u64;
    let take = |stage: &mut CopyStage<'static, Overreporter>,
                got: &mut [Vec<Vec<u8>>; 2],
                out: &mut Burst<'static>| {
        for s in streams {
            while stage.take_ready(s, out) > 0 {
                got[s].extend(out.drain().map(|m| m.data().to_vec()));
            }
        }
    };
    for _ in 0..40 {
        for s in streams {
            let mut burst = Burst::new();
            for _ in 0..8.min(stage.room(s)) {
                let len = rng.gen_range(100..1514);
                let mut f = vec![0u8; len];
                rng.fill(&mut f[..]);
                f[14..18].copy_from_slice(&(sent[s].len() as u32).to_be_bytes());
                let mut m = pool.alloc().unwrap();
                m.set_len(len).unwrap();
                m.data_mut().copy_from_slice(&f);
                burst.push(m).map_err(|_| ()).unwrap();
                sent[s].push(f);
            }
            stats.ports[s].rx.add(burst.len() as u64);
            stage.accept(s, &mut burst, pool, &stats, PortId::new(s as u16));
        }
        stage.submit();
        now += 10;
        stage.poll(&stats, now);
        // As a worker does on each loop: retire what has stalled (or misbehaved).
        if stage.has_stalled(now, TIMEOUT) {
            for mut r in
                stage.retire_stalled(now, TIMEOUT, pool, &stats, &|s| PortId::new(s as u16))
            {
                assert!(quarantine.append(std::mem::take(&mut r.quarantine)).is_ok());
                retired.push(r);
            }
        }
        take(&mut stage, &mut got, &mut out);
    }
    while stage.held() > 0 {
        now += 10;
        stage.submit();
        stage.poll(&stats, now);
        take(&mut stage, &mut got, &mut out);
        assert!(now < 10_000_000, "the stage never drained");
    }

    assert_eq!(
        retired.len(),
        1,
        "the over-reporting lane, and only it, retired"
    );
    assert!(retired[0].stalled, "retired as faulty, not drained");
    assert!(
        retired[0].recopied > 0,
        "what it held was re-done on the CPU"
    );
    assert_eq!(stage.engines(), 1, "the sound lane keeps working");
    let c = &stats.copies;
    assert_eq!(c.dma_errors.get(), 1, "the overrun is counted once");
    assert_eq!(c.recopied.get(), retired[0].recopied);
    assert!(c.dma.get() > 0);
    for s in streams {
        assert_eq!(
            got[s].len(),
            sent[s].len(),
            "stream {s}: every packet out once"
        );
        for (i, (a, b)) in sent[s].iter().zip(&got[s]).enumerate() {
            assert_eq!(b, &expected(a), "stream {s} packet {i} intact and in order");
        }
        let d = &stats.ports[s].dropped;
        assert_eq!(d[DropReason::NoMbuf as usize].get(), 0);
    }
    // A double has no device to stop: the quarantine leaks its buffers when dropped.
    drop(quarantine);
}
