//! Ways to make a DMA channel safe to remove while lcores use it, side by side, for refbench.
//!
//! The question (from the 2012 net_dma hotplug discussion): a reference count taken on every
//! channel touch dirties a cache line every lcore shares; what does each way of making
//! hot-remove safe cost the fast path, and how does it grow with lcores?
//!
//! Every scheme protects the same thing: the "current channel" that readers touch per packet
//! and that a control thread replaces (removes and re-adds) at any time, retiring the old one
//! once no reader can still touch it. Channels live in an [`Arena`] and are never really freed:
//! retiring sets a `freed` flag, and a touch that sees the flag counts a **violation** (what
//! would be a use-after-free). So the test of a scheme is exact and safe: violations must be 0.
//!
//! * [`Unprotected`] (`none`): a plain load of the current channel; the remover retires the old
//!   one at once. Unsafe under removal: the baseline.
//! * [`AtomicRef`] (`atomic`): a reference count in the channel, taken and dropped with atomic
//!   read-modify-writes on every touch, on a line every lcore writes.
//! * [`PerCpu`] (`percpu`): per-lcore counters on each lcore's own line, raised at the start
//!   and the end of every touch; a touch needs a store-load fence between raising the counter
//!   and loading the channel, and the remover waits out the touches it sees in progress.
//! * [`Qsbr`] (`qsbr`): the data plane's own [`crate::qsbr`] code: one acquire load per burst,
//!   a release store per change, nothing per touch.
//! * [`RteQsbr`] (`rte_qsbr`): DPDK's `rte_rcu_qsbr` through `pmd`, a quiescent report per
//!   burst.
//! * [`Epoch`] (`crossbeam_epoch`): crossbeam-epoch, one outermost `pin()` per touch, as a
//!   user writes it.
//! * [`EpochBurst`] (`crossbeam_epoch_burst`): crossbeam-epoch, pinned once per burst.
//! * [`ArcSwapScheme`] (`arc_swap`): an `ArcSwap` load per touch.

use dataplane::qsbr;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One channel: what a touch reads.
#[derive(Default)]
#[repr(align(64))]
pub struct Chan {
    /// Retired: no reader may touch it any more.
    pub freed: AtomicBool,
    /// The `atomic` scheme's reference count.
    refs: AtomicU64,
    /// Stands for the descriptor ring state a real touch reads.
    pub data: AtomicU64,
    /// TSC when the writer unpublished it (made it unreachable for new touches); 0 before.
    unlinked: AtomicU64,
    /// TSC cycles from `unlinked` to the retirement: this channel's grace period; 0 before.
    grace: AtomicU64,
}

/// Every channel ever made; index = channel.
pub struct Arena {
    chans: Box<[Chan]>,
    next: AtomicUsize,
    violations: AtomicU64,
}

impl Arena {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Arena {
            chans: (0..capacity.max(2))
                .map(|i| Chan {
                    data: AtomicU64::new(i as u64),
                    ..Chan::default()
                })
                .collect(),
            next: AtomicUsize::new(0),
            violations: AtomicU64::new(0),
        })
    }

    /// A fresh channel, or None when the arena is used up.
    pub fn make(&self) -> Option<usize> {
        // Control path only.
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.chans.len()).then_some(i)
    }

    /// Reads channel `i` as a touch does; counts a violation if it was retired.
    #[inline(always)]
    pub fn touch(&self, i: usize) -> u64 {
        let c = &self.chans[i];
        // Relaxed: the protocol under test must order the retirement after this touch; if it
        // does not, this load can see `true`, which is the violation being measured.
        if c.freed.load(Ordering::Relaxed) {
            self.violations.fetch_add(1, Ordering::Relaxed); // only on a violation
        }
        c.data.load(Ordering::Relaxed)
    }

    /// The writer has just unpublished channel `i` (swapped a new one in): the grace period
    /// starts now.
    pub fn unlink(&self, i: usize) {
        // Relaxed: read by whoever retires `i`, which the scheme orders after this (the same
        // thread, crossbeam's deferred queue, or the `Arc`'s last drop).
        self.chans[i]
            .unlinked
            .store(pmd::rdtsc().max(1), Ordering::Relaxed);
    }

    pub fn retire(&self, i: usize) {
        let c = &self.chans[i];
        // Relaxed: see `unlink`.
        let t0 = c.unlinked.load(Ordering::Relaxed);
        if t0 != 0 {
            let gp = pmd::rdtsc().saturating_sub(t0).max(1);
            c.grace.store(gp, Ordering::Relaxed);
        }
        // Release: pairs with nothing in a correct scheme (the touch is ordered before by the
        // scheme); kept so a violation is seen as soon as possible.
        c.freed.store(true, Ordering::Release);
    }

    /// The grace periods of the channels retired so far (TSC cycles from unpublish to
    /// retirement), in replacement order.
    pub fn grace_periods(&self) -> Vec<u64> {
        self.chans[..self.made()]
            .iter()
            // Relaxed: read after the threads that retire have been joined or have quit.
            .map(|c| c.grace.load(Ordering::Relaxed))
            .filter(|&g| g != 0)
            .collect()
    }

    pub fn violations(&self) -> u64 {
        self.violations.load(Ordering::Relaxed)
    }

    pub fn made(&self) -> usize {
        self.next.load(Ordering::Relaxed).min(self.chans.len())
    }
}

/// A protection scheme: readers touch the current channel per packet; a control thread
/// replaces it.
pub trait Scheme: Send + Sync + Sized {
    const NAME: &'static str;
    /// One reader's state (one per lcore, made and used on that lcore only).
    type Reader<'a>
    where
        Self: 'a;
    fn new(arena: Arc<Arena>, readers: usize) -> Self;
    fn reader(&self, lcore: usize) -> Self::Reader<'_>;
    /// Before a burst (pin, or poll the slot).
    fn begin_burst(r: &mut Self::Reader<'_>);
    /// One channel touch.
    fn touch(r: &mut Self::Reader<'_>) -> u64;
    /// After a burst (quiescent report, unpin).
    fn end_burst(r: &mut Self::Reader<'_>);
    /// The reader stops for good (counts as quiescent from now on).
    fn offline(r: &mut Self::Reader<'_>);
    /// Control: replaces the current channel with a new one and retires the old one once that
    /// is safe. Returns false when the arena is used up.
    fn replace(&self) -> bool;
}

// ---------------------------------------------------------------------------------------------

/// `none`: no protection at all.
pub struct Unprotected {
    arena: Arc<Arena>,
    cur: AtomicUsize,
}

pub struct PlainReader<'a> {
    s: &'a Unprotected,
}

impl Scheme for Unprotected {
    const NAME: &'static str = "none";
    type Reader<'a> = PlainReader<'a>;
    fn new(arena: Arc<Arena>, _: usize) -> Self {
        let first = arena.make().expect("arena has room");
        Unprotected {
            arena,
            cur: AtomicUsize::new(first),
        }
    }
    fn reader(&self, _: usize) -> PlainReader<'_> {
        PlainReader { s: self }
    }
    fn begin_burst(_: &mut PlainReader<'_>) {}
    #[inline(always)]
    fn touch(r: &mut PlainReader<'_>) -> u64 {
        // Acquire: the channel's contents as published (a plain mov on x86-64).
        r.s.arena.touch(r.s.cur.load(Ordering::Acquire))
    }
    fn end_burst(_: &mut PlainReader<'_>) {}
    fn offline(_: &mut PlainReader<'_>) {}
    fn replace(&self) -> bool {
        let Some(new) = self.arena.make() else {
            return false;
        };
        let old = self.cur.swap(new, Ordering::AcqRel);
        self.arena.unlink(old);
        // Unsafe by design: a reader may have loaded `old` a moment ago and touch it now.
        self.arena.retire(old);
        true
    }
}

// ---------------------------------------------------------------------------------------------

/// `atomic`: a shared reference count, taken and dropped on every touch.
pub struct AtomicRef {
    arena: Arc<Arena>,
    cur: AtomicUsize,
}

pub struct RefReader<'a> {
    s: &'a AtomicRef,
}

impl Scheme for AtomicRef {
    const NAME: &'static str = "atomic";
    type Reader<'a> = RefReader<'a>;
    fn new(arena: Arc<Arena>, _: usize) -> Self {
        let first = arena.make().expect("arena has room");
        AtomicRef {
            arena,
            cur: AtomicUsize::new(first),
        }
    }
    fn reader(&self, _: usize) -> RefReader<'_> {
        RefReader { s: self }
    }
    fn begin_burst(_: &mut RefReader<'_>) {}
    #[inline(always)]
    fn touch(r: &mut RefReader<'_>) -> u64 {
        let a = &r.s.arena;
        loop {
            let i = r.s.cur.load(Ordering::SeqCst);
            let refs = &a.chans[i].refs;
            // SeqCst RMW: the count is raised before the re-check of `cur` below, and the
            // remover's swap-then-read-count cannot both miss it (store-load ordering).
            refs.fetch_add(1, Ordering::SeqCst);
            if r.s.cur.load(Ordering::SeqCst) == i {
                let v = a.touch(i);
                // Release: the touch happens-before the remover sees the count drop.
                refs.fetch_sub(1, Ordering::Release);
                return v;
            }
            refs.fetch_sub(1, Ordering::Release);
        }
    }
    fn end_burst(_: &mut RefReader<'_>) {}
    fn offline(_: &mut RefReader<'_>) {}
    fn replace(&self) -> bool {
        let Some(new) = self.arena.make() else {
            return false;
        };
        let old = self.cur.swap(new, Ordering::SeqCst);
        self.arena.unlink(old);
        // Acquire: pairs with the readers' release decrements.
        while self.arena.chans[old].refs.load(Ordering::Acquire) != 0 {
            wait();
        }
        self.arena.retire(old);
        true
    }
}

// ---------------------------------------------------------------------------------------------

/// A counter on its own cache lines.
#[repr(align(128))]
#[derive(Default)]
struct Padded(AtomicU64);

/// `percpu`: per-lcore in-use counters, each on its lcore's own line.
pub struct PerCpu {
    arena: Arc<Arena>,
    cur: AtomicUsize,
    in_use: Box<[Padded]>,
}

pub struct PerCpuReader<'a> {
    s: &'a PerCpu,
    me: &'a AtomicU64,
}

impl Scheme for PerCpu {
    const NAME: &'static str = "percpu";
    type Reader<'a> = PerCpuReader<'a>;
    fn new(arena: Arc<Arena>, readers: usize) -> Self {
        let first = arena.make().expect("arena has room");
        PerCpu {
            arena,
            cur: AtomicUsize::new(first),
            in_use: (0..readers).map(|_| Padded::default()).collect(),
        }
    }
    fn reader(&self, lcore: usize) -> PerCpuReader<'_> {
        PerCpuReader {
            s: self,
            me: &self.in_use[lcore].0,
        }
    }
    fn begin_burst(_: &mut PerCpuReader<'_>) {}
    #[inline(always)]
    fn touch(r: &mut PerCpuReader<'_>) -> u64 {
        // The owner's counter goes up at the start of a touch (odd: inside) and up again at its
        // end (even: outside), with plain stores on its own line; the remover waits out a touch
        // it sees in progress. (A counter that went up and down would almost never be seen at
        // zero by the remover on a busy lcore.)
        let c = r.me.load(Ordering::Relaxed);
        r.me.store(c + 1, Ordering::Relaxed);
        // The store above must be visible before `cur` is read (a store-load pair): a full
        // fence, on every touch. This is what the scheme costs.
        fence(Ordering::SeqCst);
        let v = r.s.arena.touch(r.s.cur.load(Ordering::Acquire));
        // Release: the touch happens-before the remover sees the counter move on.
        r.me.store(c + 2, Ordering::Release);
        v
    }
    fn end_burst(_: &mut PerCpuReader<'_>) {}
    fn offline(_: &mut PerCpuReader<'_>) {}
    fn replace(&self) -> bool {
        let Some(new) = self.arena.make() else {
            return false;
        };
        let old = self.cur.swap(new, Ordering::SeqCst);
        self.arena.unlink(old);
        fence(Ordering::SeqCst);
        // A touch that began before the swap may still hold `old`: wait until each lcore seen
        // inside a touch (odd counter) has moved on (later touches load the new channel).
        for c in self.in_use.iter() {
            let seen = c.0.load(Ordering::Acquire);
            if seen % 2 == 1 {
                while c.0.load(Ordering::Acquire) == seen {
                    wait();
                }
            }
        }
        self.arena.retire(old);
        true
    }
}

// ---------------------------------------------------------------------------------------------

/// `qsbr`: the data plane's own QSBR ([`crate::qsbr`]).
pub struct Qsbr {
    arena: Arc<Arena>,
    domain: qsbr::Qsbr,
    /// Channels (as slots carry them) to arena indices: vchans 0 and 1 of dmadev 0 alternate.
    table: [AtomicUsize; 2],
    current: AtomicUsize,
    /// Serialises replacements (one control thread anyway).
    gen_id: AtomicU64,
}

pub struct QsbrReader<'a> {
    s: &'a Qsbr,
    r: qsbr::Reader<'a>,
    chan: usize,
}

impl Scheme for Qsbr {
    const NAME: &'static str = "qsbr";
    type Reader<'a> = QsbrReader<'a>;
    fn new(arena: Arc<Arena>, readers: usize) -> Self {
        let first = arena.make().expect("arena has room");
        let lcores: Vec<pmd::LcoreId> = (0..readers as u32).map(pmd::LcoreId::new).collect();
        Qsbr {
            arena,
            domain: qsbr::Qsbr::new(&lcores, &vec![vec![qsbr::ChannelId::new(0, 0)]; readers]),
            table: [AtomicUsize::new(first), AtomicUsize::new(first)],
            current: AtomicUsize::new(first),
            gen_id: AtomicU64::new(0),
        }
    }
    fn reader(&self, lcore: usize) -> QsbrReader<'_> {
        let r = self.domain.reader(lcore);
        QsbrReader {
            s: self,
            r,
            chan: self.table[0].load(Ordering::Acquire),
        }
    }
    #[inline(always)]
    fn begin_burst(r: &mut QsbrReader<'_>) {
        // One acquire load of the slot per burst; on a change, look the channel up and adopt
        // (every touch of the old one was in an earlier burst).
        let (a, changed) = r.r.poll();
        if changed {
            let id = a.channels().next().map_or(0, |c| c.vchan() as usize);
            let g = a.generation;
            // Acquire: pairs with the control thread's release of the table entry.
            r.chan = r.s.table[id & 1].load(Ordering::Acquire);
            r.r.adopt(g);
        }
    }
    #[inline(always)]
    fn touch(r: &mut QsbrReader<'_>) -> u64 {
        r.s.arena.touch(r.chan)
    }
    fn end_burst(_: &mut QsbrReader<'_>) {}
    fn offline(r: &mut QsbrReader<'_>) {
        r.r.offline();
    }
    fn replace(&self) -> bool {
        let Some(new) = self.arena.make() else {
            return false;
        };
        let n = self.gen_id.fetch_add(1, Ordering::Relaxed) + 1;
        let id = (n & 1) as u16;
        // Release: the entry is in place before any reader can learn its id.
        self.table[id as usize].store(new, Ordering::Release);
        let old = self.current.swap(new, Ordering::Relaxed);
        self.arena.unlink(old);
        let gens: Vec<qsbr::Generation> = (0..self.domain.workers())
            .map(|w| self.domain.publish(w, &[qsbr::ChannelId::new(0, id)]))
            .collect();
        for (w, g) in gens.into_iter().enumerate() {
            while !self.domain.quiescent(w, g) {
                wait();
            }
        }
        self.arena.retire(old);
        true
    }
}

// ---------------------------------------------------------------------------------------------

/// `rte_qsbr`: DPDK's `rte_rcu_qsbr`, a quiescent report per burst.
pub struct RteQsbr {
    arena: Arc<Arena>,
    cur: AtomicUsize,
    rcu: pmd::RcuQsbr,
}

pub struct RteReader<'a> {
    s: &'a RteQsbr,
    tid: u32,
}

impl Scheme for RteQsbr {
    const NAME: &'static str = "rte_qsbr";
    type Reader<'a> = RteReader<'a>;
    fn new(arena: Arc<Arena>, readers: usize) -> Self {
        let first = arena.make().expect("arena has room");
        RteQsbr {
            arena,
            cur: AtomicUsize::new(first),
            rcu: pmd::RcuQsbr::new(readers.max(1) as u32).expect("rte_rcu_qsbr"),
        }
    }
    fn reader(&self, lcore: usize) -> RteReader<'_> {
        self.rcu
            .register_online(lcore as u32)
            .expect("reader id within max_threads");
        RteReader {
            s: self,
            tid: lcore as u32,
        }
    }
    fn begin_burst(_: &mut RteReader<'_>) {}
    #[inline(always)]
    fn touch(r: &mut RteReader<'_>) -> u64 {
        r.s.arena.touch(r.s.cur.load(Ordering::Acquire))
    }
    #[inline(always)]
    fn end_burst(r: &mut RteReader<'_>) {
        r.s.rcu.quiescent(r.tid);
    }
    fn offline(r: &mut RteReader<'_>) {
        let _ = r.s.rcu.offline_unregister(r.tid);
    }
    fn replace(&self) -> bool {
        let Some(new) = self.arena.make() else {
            return false;
        };
        let old = self.cur.swap(new, Ordering::SeqCst);
        self.arena.unlink(old);
        let token = self.rcu.start();
        while !self.rcu.check(token, false) {
            wait();
        }
        self.arena.retire(old);
        true
    }
}

// ---------------------------------------------------------------------------------------------

/// Publishes the channel for [`Epoch`] and [`EpochBurst`]: the current channel is an index
/// published with a release store; readers load it (acquire) while pinned, and the writer
/// retires the old one with `Guard::defer`, which runs only after every thread pinned at the
/// swap has unpinned: crossbeam-epoch's protocol, with an index in place of a pointer (so that
/// reaching it needs no raw-pointer dereference).
pub struct EpochCore {
    arena: Arc<Arena>,
    cur: AtomicUsize,
}

impl EpochCore {
    fn new(arena: Arc<Arena>) -> Self {
        let first = arena.make().expect("arena has room");
        EpochCore {
            arena,
            cur: AtomicUsize::new(first),
        }
    }

    /// A touch by a pinned thread.
    #[inline(always)]
    fn touch(&self, _pinned: &crossbeam_epoch::Guard) -> u64 {
        // Acquire: pairs with the release in `replace`, so the channel is seen initialised.
        self.arena.touch(self.cur.load(Ordering::Acquire))
    }

    fn replace(&self) -> bool {
        let Some(new) = self.arena.make() else {
            return false;
        };
        let g = crossbeam_epoch::pin();
        // AcqRel: release publishes the new channel; acquire orders the old one's reads.
        let old_idx = self.cur.swap(new, Ordering::AcqRel);
        self.arena.unlink(old_idx);
        let arena = Arc::clone(&self.arena);
        // Retire once every thread pinned now has unpinned.
        g.defer(move || arena.retire(old_idx));
        g.flush();
        true
    }
}

/// `crossbeam_epoch`: epoch-based reclamation as a user writes it: one outermost
/// `crossbeam_epoch::pin()` per touch (the thread is not pinned between touches, so every
/// touch pays the full pin: the guard count, the epoch store and its fence, and now and then
/// a collection).
pub struct Epoch(EpochCore);

pub struct EpochReader<'a> {
    s: &'a EpochCore,
}

impl Scheme for Epoch {
    const NAME: &'static str = "crossbeam_epoch";
    type Reader<'a> = EpochReader<'a>;
    fn new(arena: Arc<Arena>, _: usize) -> Self {
        Epoch(EpochCore::new(arena))
    }
    fn reader(&self, _: usize) -> EpochReader<'_> {
        EpochReader { s: &self.0 }
    }
    fn begin_burst(_: &mut EpochReader<'_>) {}
    #[inline(always)]
    fn touch(r: &mut EpochReader<'_>) -> u64 {
        let g = crossbeam_epoch::pin();
        let v = r.s.touch(&g);
        drop(g);
        v
    }
    fn end_burst(_: &mut EpochReader<'_>) {}
    fn offline(_: &mut EpochReader<'_>) {}
    fn replace(&self) -> bool {
        self.0.replace()
    }
}

/// `crossbeam_epoch_burst`: the same, pinned once per burst of 32 touches (the pin amortised,
/// as a packet loop can do it; the grace period then waits for the burst to end).
pub struct EpochBurst(EpochCore);

pub struct EpochBurstReader<'a> {
    s: &'a EpochCore,
    guard: Option<crossbeam_epoch::Guard>,
}

impl Scheme for EpochBurst {
    const NAME: &'static str = "crossbeam_epoch_burst";
    type Reader<'a> = EpochBurstReader<'a>;
    fn new(arena: Arc<Arena>, _: usize) -> Self {
        EpochBurst(EpochCore::new(arena))
    }
    fn reader(&self, _: usize) -> EpochBurstReader<'_> {
        EpochBurstReader {
            s: &self.0,
            guard: None,
        }
    }
    #[inline(always)]
    fn begin_burst(r: &mut EpochBurstReader<'_>) {
        r.guard = Some(crossbeam_epoch::pin());
    }
    #[inline(always)]
    fn touch(r: &mut EpochBurstReader<'_>) -> u64 {
        match &r.guard {
            Some(g) => r.s.touch(g),
            // Not reached: begin_burst pins. Pin here rather than touch unpinned.
            None => r.s.touch(&crossbeam_epoch::pin()),
        }
    }
    #[inline(always)]
    fn end_burst(r: &mut EpochBurstReader<'_>) {
        r.guard = None;
    }
    fn offline(r: &mut EpochBurstReader<'_>) {
        r.guard = None;
    }
    fn replace(&self) -> bool {
        self.0.replace()
    }
}

// ---------------------------------------------------------------------------------------------

/// A channel held by `ArcSwap`: retired when the last `Arc` to it is dropped.
pub struct ArcChan {
    arena: Arc<Arena>,
    idx: usize,
}

impl Drop for ArcChan {
    fn drop(&mut self) {
        self.arena.retire(self.idx);
    }
}

/// `arc_swap`: an `ArcSwap` load on every touch.
pub struct ArcSwapScheme {
    arena: Arc<Arena>,
    cur: arc_swap::ArcSwap<ArcChan>,
}

pub struct ArcReader<'a> {
    s: &'a ArcSwapScheme,
}

impl Scheme for ArcSwapScheme {
    const NAME: &'static str = "arc_swap";
    type Reader<'a> = ArcReader<'a>;
    fn new(arena: Arc<Arena>, _: usize) -> Self {
        let first = arena.make().expect("arena has room");
        let cur = arc_swap::ArcSwap::from_pointee(ArcChan {
            arena: Arc::clone(&arena),
            idx: first,
        });
        ArcSwapScheme { arena, cur }
    }
    fn reader(&self, _: usize) -> ArcReader<'_> {
        ArcReader { s: self }
    }
    fn begin_burst(_: &mut ArcReader<'_>) {}
    #[inline(always)]
    fn touch(r: &mut ArcReader<'_>) -> u64 {
        let g = r.s.cur.load();
        r.s.arena.touch(g.idx)
    }
    fn end_burst(_: &mut ArcReader<'_>) {}
    fn offline(_: &mut ArcReader<'_>) {}
    fn replace(&self) -> bool {
        let Some(new) = self.arena.make() else {
            return false;
        };
        let old = self.cur.swap(Arc::new(ArcChan {
            arena: Arc::clone(&self.arena),
            idx: new,
        }));
        self.arena.unlink(old.idx);
        // Retired when the last reader's guard on it goes, which may be this drop.
        drop(old);
        true
    }
}

/// A remover's wait step: yield the CPU, since on a box with fewer cores than threads the
/// reader it waits for may need this one to make progress.
fn wait() {
    std::thread::yield_now();
}

/// What one micro run measured.
#[derive(Debug, Clone)]
pub struct MicroResult {
    pub touches: u64,
    /// TSC cycles the readers spent in their loops, summed over readers.
    pub cycles: u64,
    pub seconds: f64,
    pub replacements: u64,
    pub violations: u64,
    /// Each retired channel's grace period: TSC cycles from the writer's unpublish to the
    /// retirement (for `none` the retirement follows at once).
    pub grace_cycles: Vec<u64>,
}

impl MicroResult {
    /// TSC cycles per touch per reader (each reader's cycles divided by its touches, weighted
    /// by touches).
    pub fn cycles_per_touch(&self) -> f64 {
        self.cycles as f64 / self.touches.max(1) as f64
    }
}

/// The micro benchmark: `lcores` reader threads (pinned to `cores` in turn) touch the channel
/// in a loop shaped like the worker's (bursts of 32, a touch per packet, the scheme's
/// per-burst work) for `duration`, while this thread replaces the channel every `interval`.
pub fn micro<S: Scheme>(
    lcores: usize,
    cores: &[usize],
    duration: Duration,
    interval: Duration,
) -> MicroResult {
    let arena = Arena::new(
        ((duration.as_secs_f64() / interval.as_secs_f64().max(1e-6)) as usize + 16).min(1 << 22),
    );
    let scheme = S::new(Arc::clone(&arena), lcores);
    let stop = AtomicBool::new(false);
    let started = std::time::Instant::now();
    let (touches, cycles, replacements) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..lcores)
            .map(|l| {
                let (scheme, stop) = (&scheme, &stop);
                let core = cores.get(l % cores.len().max(1)).copied();
                s.spawn(move || {
                    if let Some(c) = core {
                        core_affinity::set_for_current(core_affinity::CoreId { id: c });
                    }
                    let mut r = scheme.reader(l);
                    let mut n = 0u64;
                    let mut sink = 0u64;
                    let t0 = pmd::rdtsc();
                    // Relaxed: a stop flag, checked once per 64 bursts.
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..64 {
                            S::begin_burst(&mut r);
                            for _ in 0..32 {
                                sink = sink.wrapping_add(S::touch(&mut r));
                            }
                            S::end_burst(&mut r);
                        }
                        n += 64 * 32;
                    }
                    let cycles = pmd::rdtsc().saturating_sub(t0);
                    S::offline(&mut r);
                    std::hint::black_box(sink);
                    (n, cycles)
                })
            })
            .collect();
        let mut replacements = 0u64;
        while started.elapsed() < duration {
            std::thread::sleep(interval);
            if scheme.replace() {
                replacements += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        let (mut touches, mut cycles) = (0, 0);
        for h in handles {
            let (n, c) = h.join().expect("reader");
            touches += n;
            cycles += c;
        }
        (touches, cycles, replacements)
    });
    MicroResult {
        touches,
        cycles,
        seconds: started.elapsed().as_secs_f64(),
        replacements,
        violations: arena.violations(),
        grace_cycles: arena.grace_periods(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One scheme at a time: each run wants every core.
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn protects<S: Scheme>() {
        let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
        let r = micro::<S>(
            2,
            &[],
            Duration::from_millis(400),
            Duration::from_micros(200),
        );
        assert!(
            r.replacements > 5,
            "{} replaced only {} times",
            S::NAME,
            r.replacements
        );
        assert!(r.touches > 10_000, "{}: {r:?}", S::NAME);
        assert_eq!(
            r.violations,
            0,
            "{} touched a retired channel: {r:?}",
            S::NAME
        );
        assert!(r.cycles > 0 && r.cycles_per_touch() > 0.0, "{r:?}");
        // Every replacement but the last few (whose retirement may still be deferred at the
        // end) left its grace period.
        assert!(
            !r.grace_cycles.is_empty() && r.grace_cycles.len() as u64 <= r.replacements,
            "{}: {} grace periods for {} replacements",
            S::NAME,
            r.grace_cycles.len(),
            r.replacements
        );
    }

    #[test]
    fn atomic_protects() {
        protects::<AtomicRef>();
    }
    #[test]
    fn percpu_protects() {
        protects::<PerCpu>();
    }
    #[test]
    fn qsbr_protects() {
        protects::<Qsbr>();
    }
    #[test]
    fn rte_qsbr_protects() {
        protects::<RteQsbr>();
    }
    #[test]
    fn crossbeam_epoch_protects() {
        protects::<Epoch>();
    }
    #[test]
    fn crossbeam_epoch_burst_protects() {
        protects::<EpochBurst>();
    }
    #[test]
    fn arc_swap_protects() {
        protects::<ArcSwapScheme>();
    }

    /// `none` is not run as a race (whether the race shows up is luck); this shows, step by
    /// step, the interleaving that breaks it: a reader loads the current channel, the
    /// control thread replaces and retires it, the reader touches it.
    #[test]
    fn none_breaks_under_removal() {
        let arena = Arena::new(4);
        let s = Unprotected::new(Arc::clone(&arena), 1);
        let loaded = s.cur.load(Ordering::Acquire); // reader, mid-touch
        assert!(s.replace()); // control: swap and retire at once
        arena.touch(loaded); // reader finishes its touch
        assert_eq!(
            arena.violations(),
            1,
            "the touch landed on a retired channel"
        );
        // It waited for nothing, but its (empty) grace period is still recorded.
        assert_eq!(arena.grace_periods().len(), 1);
    }
}
