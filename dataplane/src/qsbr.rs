//! Quiescent-state-based reclamation (QSBR) of DMA channels: how a control thread takes a
//! channel away from a worker lcore that may be using it, with no atomic read-modify-write, no
//! fence and no lock on the worker's fast path.
//!
//! ## The problem
//!
//! A worker enqueues copies on its DMA channel every burst. The control thread must be able to
//! remove the channel (hot-remove) at any moment, and may only stop and close the device once
//! no worker can touch it again. Reference counting the channel on every touch would put an
//! atomic read-modify-write on a cache line shared by every lcore on the per-packet path,
//! exactly the cost the 2012 net_dma hotplug discussion worried about.
//!
//! ## The protocol
//!
//! Each worker has an [`Assignment`] slot, written only by the control thread, and a
//! cache-line-padded `adopted` counter, written only by the worker:
//!
//! 1. Control **publishes** a new assignment (another channel, or none) with a bumped
//!    generation: one release store of (generation, channel) packed into one word, so the pair
//!    can never be seen torn.
//! 2. The worker **polls** its slot at the top of every loop iteration: one acquire load. When
//!    the generation changed, it stops enqueuing to the old channel, keeps forwarding (CPU copy
//!    or the new channel), drains the old channel's completions, and then **adopts**: one
//!    release store of the generation into its own `adopted` line.
//! 3. Control **waits for the grace period**: acquire loads of the worker's `adopted` until it
//!    reaches the generation (or the worker is offline), with a bound that fails naming the
//!    stuck lcore. After that the old channel can be stopped, closed and removed.
//!
//! ## Why it is correct (memory ordering)
//!
//! * Publish (release) -> poll (acquire): whatever control did before publishing (configuring
//!   and starting a new device) happens-before the worker's first use of it.
//! * Adopt (release) -> grace wait (acquire): every access the worker made to the old channel
//!   happens-before the adopt store in program order, so it happens-before control reading the
//!   adopted generation, and so before `rte_dma_stop`/`rte_dma_close`.
//! * An **offline** worker (parked, idle) counts as quiescent. Going offline is a release store
//!   after its last channel access. Coming back online must be ordered before its next read of
//!   the slot (a store then a load: the one place that needs a full fence, `SeqCst`), so it
//!   either sees the new assignment or control sees it online and waits for it. That fence is on
//!   the offline-to-online transition, never per packet.
//!
//! On x86-64 an acquire load and a release store are plain `mov`s: the worker's fast path is
//! one load of a line that changes only on hot-plug (so it stays in the worker's cache), and
//! at most one store per generation change to a line nobody else writes. The loom model in
//! `tests/loom_qsbr.rs` checks the protocol under every interleaving the C11 model allows.

#[cfg(loom)]
use loom::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
#[cfg(not(loom))]
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};

use pmd::LcoreId;
use std::time::{Duration, Instant};

/// A DMA channel as a slot names it: vchan `vchan` of dmadev `dev`, packed into 16 bits (the
/// device id in the high byte, the vchan in the low one) so that a slot holds several of them
/// and its generation in one atomic word.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelId(u16);

impl ChannelId {
    /// Vchan `vchan` of DMA device `dev_id` (each taken modulo 256: a slot has a byte for each).
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

/// Most channels one worker is assigned at once.
pub const MAX_CHANNELS: usize = 3;

/// "No channel" in a slot position: internal to the packed word (a real channel never packs to
/// it, which would take vchan 255 of dmadev 255).
const NONE: u16 = u16::MAX;

/// What control assigned to a worker, and when: up to [`MAX_CHANNELS`] channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    pub generation: u16,
    /// Raw channel ids as packed in the slot word, [`NONE`] where there is none.
    channels: [u16; MAX_CHANNELS],
}

impl Assignment {
    /// An assignment of `channels` (at most [`MAX_CHANNELS`]) under `generation`.
    pub fn new(generation: u16, channels: &[ChannelId]) -> Self {
        assert!(
            channels.len() <= MAX_CHANNELS,
            "at most {MAX_CHANNELS} channels a worker"
        );
        let mut c = [NONE; MAX_CHANNELS];
        for (raw, id) in c.iter_mut().zip(channels) {
            *raw = id.0;
        }
        Assignment {
            generation,
            channels: c,
        }
    }

    /// The assigned channels.
    pub fn channels(&self) -> impl Iterator<Item = ChannelId> + '_ {
        self.channels
            .iter()
            .copied()
            .filter(|&c| c != NONE)
            .map(ChannelId)
    }

    pub fn has(&self, id: ChannelId) -> bool {
        self.channels().any(|c| c == id)
    }

    pub fn len(&self) -> usize {
        self.channels().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Generation and channels in one word, so that a worker can never see them torn.
fn pack(a: Assignment) -> u64 {
    let [c0, c1, c2] = a.channels;
    (a.generation as u64) << 48 | (c0 as u64) << 32 | (c1 as u64) << 16 | c2 as u64
}

fn unpack(w: u64) -> Assignment {
    Assignment {
        generation: (w >> 48) as u16,
        channels: [(w >> 32) as u16, (w >> 16) as u16, w as u16],
    }
}

/// Control-written, worker-read. Aligned so that no other worker's slot or state shares it.
#[repr(align(128))]
struct Slot {
    assignment: AtomicU64,
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
    pub generation: u16,
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
    /// the channels `initial[i]` at generation 0, online.
    pub fn new(lcores: &[LcoreId], initial: &[Vec<ChannelId>]) -> Self {
        assert_eq!(lcores.len(), initial.len());
        Qsbr {
            slots: initial
                .iter()
                .map(|c| Slot {
                    assignment: AtomicU64::new(pack(Assignment::new(0, c))),
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

    /// The current assignment of `worker` (control's view).
    pub fn assignment(&self, worker: usize) -> Assignment {
        // Relaxed: control is the only writer, reading back its own last store.
        unpack(self.slots[worker].assignment.load(Ordering::Relaxed))
    }

    /// Control: assigns `channels` to `worker` under a new generation, which it returns.
    /// Only the control thread calls this (one writer per slot).
    pub fn publish(&self, worker: usize, channels: &[ChannelId]) -> u16 {
        let slot = &self.slots[worker].assignment;
        // Relaxed load: control reads its own last store.
        let generation = unpack(slot.load(Ordering::Relaxed))
            .generation
            .wrapping_add(1);
        // Release: the channels' set-up (devices started) happens-before the worker's use.
        slot.store(
            pack(Assignment::new(generation, channels)),
            Ordering::Release,
        );
        generation
    }

    /// Control: whether `worker` has passed a quiescent state since `generation` was published:
    /// it adopted it (or a later one), or it is offline.
    pub fn quiescent(&self, worker: usize, generation: u16) -> bool {
        let st = &self.states[worker];
        // SeqCst fence: orders control's publish (a store) before its read of `online` below (a
        // load), the other half of the pairing described in `Reader::online`. Control path only.
        fence(Ordering::SeqCst);
        // Acquire: pairs with the worker's release in `adopt`/`offline`, so everything it did
        // with the old channel happens-before what control does next.
        let adopted = st.adopted.load(Ordering::Acquire) as u16;
        // Generations are compared on the circle: adopted is at or past `generation`.
        adopted.wrapping_sub(generation) < (1 << 15) || !st.online.load(Ordering::Acquire)
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
        generation: u16,
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
    /// one published before the reader was made.
    pub fn reader(&self, worker: usize) -> Reader<'_> {
        let st = &self.states[worker];
        Reader {
            slot: &self.slots[worker],
            state: st,
            // Relaxed: the worker's own last store (or the initial 0).
            seen: st.adopted.load(Ordering::Relaxed) as u16,
        }
    }
}

/// A worker's handle on its slot.
pub struct Reader<'q> {
    slot: &'q Slot,
    state: &'q WorkerState,
    /// The generation this worker last saw (not necessarily adopted yet).
    seen: u16,
}

impl Reader<'_> {
    /// The current assignment, and whether it is new since the last call. One acquire load:
    /// a plain `mov` on x86-64.
    #[inline(always)]
    pub fn poll(&mut self) -> (Assignment, bool) {
        // Acquire: pairs with control's release in `publish` (see the module docs).
        let a = unpack(self.slot.assignment.load(Ordering::Acquire));
        let changed = a.generation != self.seen;
        self.seen = a.generation;
        (a, changed)
    }

    /// Declares that this worker no longer touches any channel it held before `generation`.
    /// One release store to the worker's own line.
    #[inline]
    pub fn adopt(&self, generation: u16) {
        // Release: every earlier access to the old channel happens-before control's acquire
        // load of this value in `quiescent`.
        self.state
            .adopted
            .store(generation as u64, Ordering::Release);
    }

    /// The worker parks: it counts as quiescent until [`Reader::online`]. It must not touch a
    /// channel while offline.
    pub fn offline(&self) {
        // Release: its last channel accesses happen-before control seeing it offline.
        self.state.online.store(false, Ordering::Release);
    }

    /// The worker resumes. Afterwards it must [`Reader::poll`] before touching a channel.
    pub fn online(&self) {
        self.state.online.store(true, Ordering::Relaxed);
        // SeqCst fence: orders the store above before the slot load in the next `poll` (a
        // store-load pair, which acquire/release cannot order). Paired with control's
        // publish-then-check, either the worker sees the new slot or control sees it online.
        // Off the fast path: only on the offline-to-online transition.
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
        assert_eq!(id.0, 0x0502, "the packing the slot word relies on");
        assert_ne!(ChannelId::new(5, 0), ChannelId::new(5, 1));
    }

    #[test]
    fn publish_poll_adopt_wait() {
        let q = Qsbr::new(&lcores(&[1, 2]), &[vec![ch(7)], vec![]]);
        let mut r0 = q.reader(0);
        assert_eq!(r0.poll(), (Assignment::new(0, &[ch(7)]), false));
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
        r0.adopt(g);
        assert!(q.quiescent(0, g));
        assert!(q.wait_grace(0, g, Duration::ZERO, Duration::ZERO).is_ok());
        // Worker 1 is untouched.
        assert_eq!(q.assignment(1), Assignment::new(0, &[]));
    }

    #[test]
    fn several_channels_in_one_word() {
        let a = Assignment::new(9, &[ChannelId::new(3, 0), ChannelId::new(63, 1)]);
        assert_eq!(unpack(pack(a)), a);
        assert_eq!(a.len(), 2);
        assert!(a.has(ChannelId::new(63, 1)) && !a.has(ChannelId::new(3, 1)));
        let id = ChannelId::new(63, 1);
        assert_eq!((id.dev(), id.vchan()), (63, 1));
        let full = Assignment::new(u16::MAX, &[ch(1), ch(2), ch(3)]);
        assert_eq!(unpack(pack(full)), full);
        assert_eq!(full.channels().collect::<Vec<_>>(), [ch(1), ch(2), ch(3)]);
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
        assert_eq!(a.generation, g);
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
        assert!(q.quiescent(0, g));
        r.online();
        assert!(!q.quiescent(0, g));
    }

    #[test]
    fn generations_wrap() {
        let q = Qsbr::new(&lcores(&[0]), &[vec![]]);
        let r = q.reader(0);
        q.slots[0]
            .assignment
            .store(pack(Assignment::new(u16::MAX, &[])), Ordering::Relaxed);
        r.adopt(u16::MAX);
        let g = q.publish(0, &[ch(4)]);
        assert_eq!(g, 0);
        assert!(!q.quiescent(0, g), "u16::MAX is before 0 on the circle");
        r.adopt(g);
        assert!(q.quiescent(0, g));
    }

    #[test]
    fn slots_and_states_have_their_own_lines() {
        assert_eq!(std::mem::align_of::<Slot>(), 128);
        assert_eq!(std::mem::align_of::<WorkerState>(), 128);
    }
}
