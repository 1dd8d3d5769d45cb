//! Quiescent-state-based reclamation (QSBR) of DMA channels: how a control thread takes a
//! channel away from a worker lcore that may be using it, with no atomic read-modify-write, no
//! fence and no lock on the worker's fast path.
//!
//! ## The problem
//!
//! A worker enqueues copies on its DMA channels every burst. The control thread must be able to
//! remove a channel (hot-remove) at any moment, and may only stop and close the device once no
//! worker can touch it again. Reference counting the channel on every touch would put an
//! atomic read-modify-write on a cache line shared by every lcore on the per-packet path,
//! exactly the cost the 2012 net_dma hotplug discussion worried about.
//!
//! ## The protocol
//!
//! Each worker has a slot, written only by the control thread: a **generation** and, beside
//! it, the worker's **channel set** (any number of channels, up to [`SLOT_CAPACITY`], which is
//! every channel the engine can have). Each worker also has a cache-line-padded `adopted`
//! counter and an `online` flag, written only by that worker.
//!
//! 1. Control **publishes** a new set (a channel more, a channel less) under the next
//!    generation. The slot is a sequence lock with one writer: the sequence word is twice the
//!    generation, odd while the set is being written. Control stores the odd value, a release
//!    fence, the set (relaxed stores), then the next even value (a release store).
//! 2. The worker **polls** the sequence word at the top of every loop iteration: one acquire
//!    load, compared with the value it last read the set under. Only when it changed does the
//!    worker read the set (relaxed loads, an acquire fence, the sequence word again); a read
//!    that saw an odd value or a different one on the re-read is thrown away and tried again
//!    on the next iteration, so the worker never waits for the control thread and never sees a
//!    torn set. Then it stops enqueuing to the channels no longer in the set, keeps forwarding
//!    (CPU copy or its other channels), drains their completions, and **adopts**: one release
//!    store of the generation into its own `adopted` line.
//! 3. Control **waits for the grace period**: acquire loads of the worker's `adopted` until it
//!    reaches the generation (or the worker is offline), with a bound that fails naming the
//!    stuck lcore. After that the old channel can be stopped, closed and removed.
//!
//! ## Why it is correct (memory ordering)
//!
//! * Publish -> poll: the worker's acquire load that reads the even value `2g` synchronizes
//!   with control's release store of it, so whatever control did before (configuring and
//!   starting a new device, and writing set `g`) happens-before the worker's read of the set
//!   and its first use of a channel in it.
//! * No torn set: each relaxed load of the set returns set `g`'s value or a later one
//!   (coherence, given the point above). If one returned a value a later publish `g' > g`
//!   stored, that store is sequenced after the later publish's release fence, which is sequenced
//!   after its store of the odd value `2g' - 1`; the worker's acquire fence after its loads
//!   then synchronizes with that release fence (fence-to-fence synchronization through the
//!   value read), so the odd store happens-before the worker's re-read of the sequence word,
//!   which sees `2g' - 1` or later, not `2g`: the read is thrown away. A read kept therefore
//!   saw exactly set `g`. The sequence word only grows (a `u64`, by two per publish: 2^63
//!   publishes, hundreds of thousands of years at a million a second), so no old value comes
//!   back (no ABA) and generations are compared as plain integers.
//! * Adopt (release) -> grace wait (acquire): every access the worker made to the old channel
//!   happens-before the adopt store in program order, so it happens-before control reading the
//!   adopted generation, and so before `rte_dma_stop`/`rte_dma_close`.
//! * An **offline** worker (parked, idle) counts as quiescent. Going offline is a release store
//!   after its last channel access. Coming back online must be ordered before its next read of
//!   the slot (a store then a load: the one place that needs a full fence, `SeqCst`); control
//!   has the mirror image, its publish's last store (the even sequence value) then, after a
//!   `SeqCst` fence, its load of `online`. With both fences in the single total order, either
//!   the worker's next poll sees the new sequence value (or a later one), or control sees it
//!   online and waits for it to adopt. That fence is on the offline-to-online transition and
//!   the control path, never per packet.
//!
//! On x86-64 an acquire load, a release store and acquire/release fences are plain `mov`s (the
//! fences only constrain the compiler): the worker's fast path is one load of a line that
//! changes only on hot-plug (so it stays in the worker's cache), and at most one store per
//! generation change to a line nobody else writes. The loom model in `tests/loom_qsbr.rs`
//! checks the protocol, with two workers and the control thread, under every interleaving the
//! C11 model allows.

#[cfg(loom)]
use loom::{
    sync::atomic::{fence, AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering},
    thread::yield_now,
};
#[cfg(not(loom))]
use std::{
    sync::atomic::{fence, AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering},
    thread::yield_now,
};

use pmd::LcoreId;
use std::time::{Duration, Instant};

/// A DMA channel as a slot names it: vchan `vchan` of dmadev `dev`, packed into 16 bits (the
/// device id in the high byte, the vchan in the low one).
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelId(u16);

impl ChannelId {
    /// Vchan `vchan` of DMA device `dev_id` (each taken modulo 256: the id has a byte for each).
    pub const fn new(dev_id: i16, vchan: u16) -> Self {
        ChannelId(((dev_id as u16 & 0xff) << 8) | (vchan & 0xff))
    }

    /// The dmadev id.
    pub const fn dev(self) -> i16 {
        (self.0 >> 8) as i16
    }

    /// The vchan on that device.
    pub const fn vchan(self) -> u16 {
        self.0 & 0xff
    }
}

/// A generation of a worker's assignment: 0 for the set it starts with, one more per publish.
/// 64 bits: it never wraps (see the module docs), so generations compare as integers.
pub type Generation = u64;

/// Most channels one slot holds: every vchan-0 channel a [`ChannelId`] can name, one per
/// dmadev id. The engine uses vchan 0 of each device, and its control thread takes no device
/// beyond its fault table ([`crate::shared::MAX_DMA_DEVS`], fewer), so no worker is ever short
/// of room: one worker can hold every channel there is. (Smaller under loom, which models
/// every atomic.)
#[cfg(not(loom))]
pub const SLOT_CAPACITY: usize = 256;
#[cfg(loom)]
pub const SLOT_CAPACITY: usize = 8;

/// What control assigned to a worker, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub generation: Generation,
    channels: Vec<ChannelId>,
}

impl Assignment {
    /// An assignment of `channels` under `generation`.
    pub fn new(generation: Generation, channels: &[ChannelId]) -> Self {
        Assignment {
            generation,
            channels: channels.to_vec(),
        }
    }

    /// The assigned channels, in the order control published them.
    pub fn channels(&self) -> impl Iterator<Item = ChannelId> + '_ {
        self.channels.iter().copied()
    }

    pub fn has(&self, id: ChannelId) -> bool {
        self.channels.contains(&id)
    }

    pub fn len(&self) -> usize {
        self.channels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }
}

/// Control-written, worker-read: a sequence lock with one writer (see the module docs).
/// Aligned so that no other worker's slot or state shares its lines; the worker's fast path
/// reads only `seq` (first, beside `len`), which control writes only when it publishes.
#[repr(C, align(128))]
struct Slot {
    /// Twice the generation of the set below; odd while control writes the set.
    seq: AtomicU64,
    /// How many entries of `set` are the worker's channels.
    len: AtomicUsize,
    /// The channels (raw [`ChannelId`]s), `len` of them.
    set: [AtomicU16; SLOT_CAPACITY],
}

/// Worker-written, control-read.
#[repr(align(128))]
struct WorkerState {
    adopted: AtomicU64,
    online: AtomicBool,
}

/// The grace period did not end in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("worker {worker} (lcore {lcore}) has not adopted generation {generation} after {waited_ms} ms: it is stuck or not polling its slot")]
pub struct GraceTimeout {
    pub worker: usize,
    pub lcore: LcoreId,
    pub generation: Generation,
    pub waited_ms: u64,
}

/// The QSBR domain of a set of workers.
pub struct Qsbr {
    slots: Box<[Slot]>,
    states: Box<[WorkerState]>,
    lcores: Box<[LcoreId]>,
}

impl Qsbr {
    /// A domain for workers running on `lcores` (index = worker number), each starting with
    /// the channels `initial[i]` (at most [`SLOT_CAPACITY`]) at generation 0, online.
    pub fn new(lcores: &[LcoreId], initial: &[Vec<ChannelId>]) -> Self {
        assert_eq!(lcores.len(), initial.len());
        Qsbr {
            slots: initial
                .iter()
                .map(|c| {
                    assert!(
                        c.len() <= SLOT_CAPACITY,
                        "at most {SLOT_CAPACITY} channels a worker"
                    );
                    Slot {
                        seq: AtomicU64::new(0),
                        len: AtomicUsize::new(c.len()),
                        set: std::array::from_fn(|i| AtomicU16::new(c.get(i).map_or(0, |id| id.0))),
                    }
                })
                .collect(),
            states: lcores
                .iter()
                .map(|_| WorkerState {
                    adopted: AtomicU64::new(0),
                    online: AtomicBool::new(true),
                })
                .collect(),
            lcores: lcores.into(),
        }
    }

    pub fn workers(&self) -> usize {
        self.slots.len()
    }

    /// The current assignment of `worker` (control's view). Control thread only.
    pub fn assignment(&self, worker: usize) -> Assignment {
        let slot = &self.slots[worker];
        // Relaxed, all three: control is the only writer, reading back its own last stores.
        let seq = slot.seq.load(Ordering::Relaxed);
        let len = slot.len.load(Ordering::Relaxed);
        Assignment {
            generation: seq / 2,
            channels: slot.set[..len]
                .iter()
                .map(|c| ChannelId(c.load(Ordering::Relaxed)))
                .collect(),
        }
    }

    /// How many channels `worker` holds (control's view). Control thread only.
    pub fn channel_count(&self, worker: usize) -> usize {
        // Relaxed: control reads back its own last store.
        self.slots[worker].len.load(Ordering::Relaxed)
    }

    /// Control: assigns `channels` (at most [`SLOT_CAPACITY`]) to `worker` under a new
    /// generation, which it returns. Only the control thread calls this (one writer per slot).
    pub fn publish(&self, worker: usize, channels: &[ChannelId]) -> Generation {
        assert!(
            channels.len() <= SLOT_CAPACITY,
            "at most {SLOT_CAPACITY} channels a worker"
        );
        let slot = &self.slots[worker];
        // Relaxed: control reads its own last store (even: no publish is half done).
        let seq = slot.seq.load(Ordering::Relaxed);
        // Relaxed: the release fence below orders this store before the set's stores.
        slot.seq.store(seq + 1, Ordering::Relaxed);
        // Release fence: a worker whose relaxed load of the set reads a store made below
        // synchronizes with this fence through its acquire fence (in `Reader::reload`), so its
        // re-read of `seq` sees the odd value above (or later) and it throws the read away.
        fence(Ordering::Release);
        // Relaxed, the set: ordered for the worker by the fence above and the release below.
        slot.len.store(channels.len(), Ordering::Relaxed);
        for (cell, id) in slot.set.iter().zip(channels) {
            cell.store(id.0, Ordering::Relaxed);
        }
        // Release: the set above, and the channels' set-up (devices started) before this call,
        // happen-before the worker's use, once its acquire load in `poll` reads this value.
        slot.seq.store(seq + 2, Ordering::Release);
        (seq + 2) / 2
    }

    /// Control: whether `worker` has passed a quiescent state since `generation` was published:
    /// it adopted it (or a later one), or it is offline.
    pub fn quiescent(&self, worker: usize, generation: Generation) -> bool {
        let st = &self.states[worker];
        // SeqCst fence: orders control's publish (its last store, of `seq`) before its read of
        // `online` below (a load), the other half of the pairing described in
        // `Reader::online`. Control path only.
        fence(Ordering::SeqCst);
        // Acquire: pairs with the worker's release in `adopt`/`offline`, so everything it did
        // with the old channel happens-before what control does next.
        st.adopted.load(Ordering::Acquire) >= generation || !st.online.load(Ordering::Acquire)
    }

    /// Control: whether `worker` is offline (parked or gone), so that it touches no channel.
    pub fn parked(&self, worker: usize) -> bool {
        // Acquire: pairs with the worker's release in `offline`, so its last channel accesses
        // happen-before what control does next.
        !self.states[worker].online.load(Ordering::Acquire)
    }

    /// Control: waits until `worker` is quiescent for `generation`, polling every `poll`, for
    /// at most `timeout`. Returns how long it took.
    pub fn wait_grace(
        &self,
        worker: usize,
        generation: Generation,
        timeout: Duration,
        poll: Duration,
    ) -> Result<Duration, GraceTimeout> {
        let start = Instant::now();
        loop {
            if self.quiescent(worker, generation) {
                return Ok(start.elapsed());
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(GraceTimeout {
                    worker,
                    lcore: self.lcores[worker],
                    generation,
                    waited_ms: waited.as_millis() as u64,
                });
            }
            if poll.is_zero() {
                std::hint::spin_loop();
            } else {
                std::thread::sleep(poll);
            }
        }
    }

    /// The worker's side: exactly one per worker, used only by that worker's lcore. Its first
    /// [`Reader::poll`] reports any generation published since the worker last adopted, even
    /// one published before the reader was made. Made on any thread (the thread that starts
    /// the worker hands it over, which orders this read before the worker's). It reads the
    /// current set, waiting (yielding) if control is in the middle of a publish: a few stores,
    /// and this is set-up, not the fast path.
    pub fn reader(&self, worker: usize) -> Reader<'_> {
        let st = &self.states[worker];
        let mut r = Reader {
            slot: &self.slots[worker],
            state: st,
            // Relaxed: the worker's own last store (or the initial 0).
            seen: st.adopted.load(Ordering::Relaxed),
            // No set read yet (the sequence word is never u64::MAX): read below.
            loaded: u64::MAX,
            current: Assignment {
                generation: 0,
                channels: Vec::with_capacity(SLOT_CAPACITY),
            },
            scratch: Vec::with_capacity(SLOT_CAPACITY),
        };
        loop {
            // Acquire: as the load in `poll`.
            let seq = r.slot.seq.load(Ordering::Acquire);
            r.reload(seq);
            if r.loaded == seq {
                return r;
            }
            yield_now();
        }
    }
}

/// A worker's handle on its slot.
pub struct Reader<'q> {
    slot: &'q Slot,
    state: &'q WorkerState,
    /// The generation this worker last saw (not necessarily adopted yet).
    seen: Generation,
    /// The sequence value `current` was read under.
    loaded: u64,
    /// The worker's copy of its set: read only when the sequence value changes.
    current: Assignment,
    /// Where a read of the set goes until it is known untorn (no allocation on the worker:
    /// both vectors have room for a full slot).
    scratch: Vec<ChannelId>,
}

impl Reader<'_> {
    /// The current assignment, and whether it is new since the last call. One acquire load of
    /// a line that changes only on hot-plug (a plain `mov` on x86-64); the set is read only
    /// when it changed.
    #[inline(always)]
    pub fn poll(&mut self) -> (&Assignment, bool) {
        // Acquire: pairs with control's release in `publish` (see the module docs).
        let seq = self.slot.seq.load(Ordering::Acquire);
        if seq != self.loaded {
            self.reload(seq);
        }
        let changed = self.current.generation != self.seen;
        self.seen = self.current.generation;
        (&self.current, changed)
    }

    /// The assignment the last [`Reader::poll`] returned.
    pub fn assignment(&self) -> &Assignment {
        &self.current
    }

    /// Reads the set published under `seq` (just read with acquire), unless control is
    /// writing it: then `current` stays as it is (the worker may keep using it: control waits
    /// for the worker to adopt the new generation before it retires anything) and the next
    /// poll tries again. Never waits.
    #[cold]
    #[inline(never)]
    fn reload(&mut self, seq: u64) {
        if seq % 2 == 1 {
            return; // control is writing the set
        }
        // Relaxed, the set: each load returns set `seq / 2` or a later one (the acquire load
        // of `seq` synchronized with its publish); the re-read below catches a later one.
        let len = self.slot.len.load(Ordering::Relaxed).min(SLOT_CAPACITY);
        self.scratch.clear();
        self.scratch.extend(
            self.slot.set[..len]
                .iter()
                .map(|c| ChannelId(c.load(Ordering::Relaxed))),
        );
        // Acquire fence: if a load above read a store of a later publish, that publish's
        // release fence synchronizes with this one, so its odd `seq` store happens-before the
        // load below, which then reads a value other than `seq`.
        fence(Ordering::Acquire);
        // Relaxed: ordered after the set's loads by the fence above.
        if self.slot.seq.load(Ordering::Relaxed) != seq {
            return; // torn: control published again meanwhile; the next poll tries again
        }
        std::mem::swap(&mut self.current.channels, &mut self.scratch);
        self.current.generation = seq / 2;
        self.loaded = seq;
    }

    /// Declares that this worker no longer touches any channel it held before `generation`.
    /// One release store to the worker's own line.
    #[inline]
    pub fn adopt(&self, generation: Generation) {
        // Release: every earlier access to the old channel happens-before control's acquire
        // load of this value in `quiescent`.
        self.state.adopted.store(generation, Ordering::Release);
    }

    /// The worker parks: it counts as quiescent until [`Reader::online`]. It must not touch a
    /// channel while offline.
    pub fn offline(&self) {
        // Release: its last channel accesses happen-before control seeing it offline.
        self.state.online.store(false, Ordering::Release);
    }

    /// The worker resumes. Afterwards it must [`Reader::poll`] before touching a channel.
    pub fn online(&self) {
        // Relaxed: ordered before the next poll's load by the fence below.
        self.state.online.store(true, Ordering::Relaxed);
        // SeqCst fence: orders the store above before the slot load in the next `poll` (a
        // store-load pair, which acquire/release cannot order). Paired with control's
        // publish-then-check in `quiescent`, either the worker sees the new slot or control
        // sees it online. Off the fast path: only on the offline-to-online transition.
        fence(Ordering::SeqCst);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Channel `n`: vchan 0 of dmadev `n`.
    fn ch(n: i16) -> ChannelId {
        ChannelId::new(n, 0)
    }

    fn lcores(ids: &[u32]) -> Vec<LcoreId> {
        ids.iter().copied().map(LcoreId::new).collect()
    }

    #[test]
    fn channel_ids_pack_device_and_vchan() {
        let id = ChannelId::new(5, 2);
        assert_eq!((id.dev(), id.vchan()), (5, 2));
        assert_eq!(id.0, 0x0502, "the packing the slot's set relies on");
        assert_ne!(ChannelId::new(5, 0), ChannelId::new(5, 1));
        let id = ChannelId::new(63, 1);
        assert_eq!((id.dev(), id.vchan()), (63, 1));
    }

    #[test]
    fn publish_poll_adopt_wait() {
        let q = Qsbr::new(&lcores(&[1, 2]), &[vec![ch(7)], vec![]]);
        let mut r0 = q.reader(0);
        let (a, changed) = r0.poll();
        assert_eq!((a, changed), (&Assignment::new(0, &[ch(7)]), false));
        let g = q.publish(0, &[]);
        assert_eq!(g, 1);
        assert!(!q.quiescent(0, g));
        let e = q
            .wait_grace(0, g, Duration::from_millis(5), Duration::from_millis(1))
            .unwrap_err();
        assert_eq!(e.lcore, LcoreId::new(1));
        assert!(e.to_string().contains("worker 0 (lcore 1)"), "{e}");
        let (a, changed) = r0.poll();
        assert!(changed && a.is_empty() && a.generation == 1);
        assert!(!r0.poll().1, "a generation is new once");
        assert_eq!(r0.assignment(), &Assignment::new(1, &[]));
        r0.adopt(g);
        assert!(q.quiescent(0, g));
        assert!(q.wait_grace(0, g, Duration::ZERO, Duration::ZERO).is_ok());
        // Worker 1 is untouched.
        assert_eq!(q.assignment(1), Assignment::new(0, &[]));
    }

    #[test]
    fn a_worker_holds_as_many_channels_as_it_is_given() {
        let seven: Vec<ChannelId> = (0..7).map(ch).collect();
        let q = Qsbr::new(&lcores(&[1]), std::slice::from_ref(&seven));
        let mut r = q.reader(0);
        assert_eq!(r.poll().0.channels().collect::<Vec<_>>(), seven);
        assert_eq!(q.channel_count(0), 7);
        // Every channel a slot can name, in one set, and back down to two.
        let all: Vec<ChannelId> = (0..SLOT_CAPACITY as i16).map(ch).collect();
        let g = q.publish(0, &all);
        let (a, changed) = r.poll();
        assert!(changed);
        assert_eq!((a.generation, a.len()), (g, SLOT_CAPACITY));
        assert!(a.has(ch(255)) && a.has(ch(0)));
        assert_eq!(q.assignment(0), Assignment::new(g, &all));
        let g = q.publish(0, &[ch(9), ChannelId::new(3, 1)]);
        let (a, _) = r.poll();
        assert_eq!(a, &Assignment::new(g, &[ch(9), ChannelId::new(3, 1)]));
        assert!(!a.has(ch(0)) && !a.has(ChannelId::new(3, 0)));
        assert_eq!(q.channel_count(0), 2);
    }

    #[test]
    #[should_panic(expected = "at most 256 channels a worker")]
    fn a_set_beyond_the_slot_is_refused() {
        let q = Qsbr::new(&lcores(&[1]), &[vec![]]);
        let too_many = vec![ch(1); SLOT_CAPACITY + 1];
        q.publish(0, &too_many);
    }

    #[test]
    fn a_set_being_written_is_not_read() {
        let q = Qsbr::new(&lcores(&[1]), &[vec![ch(1)]]);
        let mut r = q.reader(0);
        // Control stopped half-way through a publish: the sequence word is odd and the set
        // half written. The worker keeps its set and does not wait.
        q.slots[0].seq.store(1, Ordering::Relaxed);
        q.slots[0].len.store(2, Ordering::Relaxed);
        q.slots[0].set[0].store(ch(2).0, Ordering::Relaxed);
        let (a, changed) = r.poll();
        assert_eq!((a, changed), (&Assignment::new(0, &[ch(1)]), false));
        // The publish completes: the whole new set, once.
        q.slots[0].set[1].store(ch(3).0, Ordering::Relaxed);
        q.slots[0].seq.store(2, Ordering::Release);
        let (a, changed) = r.poll();
        assert_eq!((a, changed), (&Assignment::new(1, &[ch(2), ch(3)]), true));
        assert!(!r.poll().1);
    }

    #[test]
    fn a_reader_made_late_still_sees_what_was_published() {
        let q = Qsbr::new(&lcores(&[0]), &[vec![ch(1)]]);
        let g = q.publish(0, &[ch(2)]);
        let mut r = q.reader(0);
        let (a, changed) = r.poll();
        assert!(
            changed,
            "published before the reader existed, not yet adopted"
        );
        assert_eq!(a, &Assignment::new(g, &[ch(2)]));
        r.adopt(g);
        assert!(q.quiescent(0, g));
    }

    #[test]
    fn offline_workers_are_quiescent() {
        let q = Qsbr::new(&lcores(&[3]), &[vec![ch(1)]]);
        let r = q.reader(0);
        let g = q.publish(0, &[ch(2)]);
        assert!(!q.quiescent(0, g));
        r.offline();
        assert!(q.quiescent(0, g) && q.parked(0));
        r.online();
        assert!(!q.quiescent(0, g) && !q.parked(0));
    }

    #[test]
    fn generations_go_past_sixteen_and_thirty_two_bits() {
        let q = Qsbr::new(&lcores(&[0]), &[vec![]]);
        let mut r = q.reader(0);
        // As if 2^32 + 5 generations had been published.
        let old = (1u64 << 32) + 5;
        q.slots[0].seq.store(old * 2, Ordering::Relaxed);
        r.adopt(old);
        assert_eq!(r.poll().0.generation, old);
        let g = q.publish(0, &[ch(4)]);
        assert_eq!(g, old + 1);
        assert!(q.quiescent(0, old), "an adopted generation stays passed");
        assert!(!q.quiescent(0, g));
        r.adopt(g);
        assert!(q.quiescent(0, g));
    }

    #[test]
    fn slots_and_states_have_their_own_lines() {
        assert_eq!(std::mem::align_of::<Slot>(), 128);
        assert_eq!(std::mem::align_of::<WorkerState>(), 128);
        assert_eq!(std::mem::offset_of!(Slot, seq), 0, "the fast path's word");
    }
}
