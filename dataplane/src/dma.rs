//! DMA channels as the copy stage drives them: the one module of `dataplane` that holds
//! `unsafe` code.
//!
//! A DMA engine reads a copy's source and writes its destination *after* the enqueue call has
//! returned, at a time of its choosing and outside Rust's view. Freeing or reusing either
//! buffer before the engine is done is a use-after-free that no borrow can see. This module
//! makes that impossible for the rest of the crate, with three invariants:
//!
//! 1. **Ownership while in flight.** [`InFlight::enqueue`] takes the source and destination
//!    mbufs *by value* and keeps them in its own ring until the engine reports that copy
//!    complete ([`InFlight::poll`] hands them back then). Nothing outside this module can
//!    reach a buffer the engine may still touch.
//! 2. **Quarantine after abandonment.** When an engine stops completing (surprise removal, a
//!    hung or faulty engine), [`InFlight::abandon`] hands the sources back for the CPU to copy
//!    again, and moves the destinations into a [`Quarantine`], which frees them only given the
//!    stopped [`DmaDev`] they belong to ([`Quarantine::release`]); dropped any other way, it
//!    leaks them. A late DMA *write* can therefore never land in a reused buffer. (A late DMA
//!    *read* of a source that went back to the pool only puts stale bytes into a quarantined
//!    destination, which nobody reads.)
//! 3. **Leak on drop.** An [`InFlight`] dropped with copies outstanding (a worker that
//!    panicked) leaks their buffers instead of returning them to the pool.
//!
//! The engine behind [`InFlight`] is any [`DmaEngine`]: a dmadev vchan ([`pmd::DmaChannel`],
//! or [`AttachedChannel`] as a QSBR worker holds it) in the apps, and pure-Rust doubles in
//! tests. `AttachedChannel::attach` is the other `unsafe` here: a channel handle that is not
//! tied to its device by a borrow, kept sound by the hot-remove protocol (see [`crate::qsbr`]
//! and [`crate::control`]): the control thread publishes a channel to one worker only, and
//! stops or closes the device only after that worker has stopped using it (drained, or
//! abandoned into a quarantine) and adopted the new generation. The protocol cannot be driven
//! from outside this crate: the slots live in a [`crate::shared::Shared`] built from the devices
//! themselves, whose one `Control` publishes and whose per-worker ends are handed out once;
//! only this crate's `CopyWorker` attaches channels, and only from its own slot.
#![allow(unsafe_code)]

use crate::qsbr::{Assignment, ChannelId};
use pmd::{DmaChannel, DmaDev, Mbuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// A DMA engine as the copy stage drives it.
///
/// # Safety
/// [`InFlight`] hands buffers back, to be reused, on the word of [`Self::poll`] and
/// [`Self::dev_id`], so an implementation must tell the truth: `poll` reports only descriptors
/// whose copy has really finished (the engine touches neither buffer any more), in the order
/// they were enqueued, and never one twice; `dev_id` names the dmadev whose stop ends the
/// engine's access to memory (or is `None` for an engine that stops touching memory when it is
/// dropped).
pub unsafe trait DmaEngine {
    /// Copy descriptors that can be written now.
    fn capacity(&self) -> u16;

    /// Writes a descriptor copying `src.data()[offset..]` to `dst.data_mut()[offset..]`
    /// (`dst` already has `src`'s length). False when the ring is full.
    ///
    /// # Safety
    /// If this returns true, the engine may read `src` and write `dst` until [`Self::poll`]
    /// has reported this descriptor, or, if it never does, until the device is stopped. Until
    /// then the caller must keep both buffers allocated and must neither free, reuse, write
    /// `src` nor touch `dst`. ([`InFlight`] is the one caller, and holds them by value.)
    unsafe fn enqueue(&mut self, src: &Mbuf<'_>, dst: &mut Mbuf<'_>, offset: usize) -> bool;

    /// Starts the descriptors written since the last submit.
    fn submit(&mut self);

    /// Reports up to `status.len()` finished descriptors in enqueue order, writing each one's
    /// status (0 = success) into `status`; returns how many. An engine that reports more than
    /// it was given is faulty (see [`InFlight::poll`]).
    fn poll(&mut self, status: &mut [u32]) -> usize;

    /// The dmadev id behind this engine, if it is a DPDK device: the one whose stop releases
    /// a [`Quarantine`] of its buffers.
    fn dev_id(&self) -> Option<i16> {
        None
    }
}

// SAFETY: `rte_dma_completed`/`rte_dma_completed_status` report finished descriptors in ring
// order, each once, and the dmadev is the one `dev_id` names.
unsafe impl DmaEngine for DmaChannel<'_> {
    #[inline]
    fn capacity(&self) -> u16 {
        self.burst_capacity()
    }

    #[inline]
    unsafe fn enqueue(&mut self, src: &Mbuf<'_>, dst: &mut Mbuf<'_>, offset: usize) -> bool {
        if offset > src.len() || src.len() > dst.len() {
            return false;
        }
        let len = (src.len() - offset) as u32;
        // SAFETY: both ranges lie inside their mbufs' data (checked above); the caller keeps
        // the buffers alive and untouched until completion or stop (this function's contract),
        // which is what `DmaChannel::copy` requires.
        unsafe {
            self.copy(
                src.data_iova() + offset as u64,
                dst.data_iova() + offset as u64,
                len,
            )
        }
        .is_some()
    }

    #[inline]
    fn submit(&mut self) {
        DmaChannel::submit(self)
    }

    #[inline]
    fn poll(&mut self, status: &mut [u32]) -> usize {
        let max = status.len().min(u16::MAX as usize) as u16;
        let c = self.completed(max);
        let ok = c.count as usize;
        if ok > status.len() {
            // More than asked for: a faulty engine. Report it as it is, so that InFlight
            // sees the overrun and the lane is retired.
            status.fill(0);
            return ok;
        }
        status[..ok].fill(0);
        if !c.has_error || ok == status.len() {
            // No failure, or no room left to collect it: the next poll will.
            return ok;
        }
        // The descriptor after the `ok` good ones failed: collect statuses from there on.
        ok + self.completed_status(&mut status[ok..]) as usize
    }

    fn dev_id(&self) -> Option<i16> {
        Some(DmaChannel::dev_id(self))
    }
}

/// A DMA channel as a QSBR worker drives it: the dmadev fast path, plus a fault switch the
/// control thread can flip for drills (a stalled engine whose completions never come).
pub struct AttachedChannel<'q> {
    chan: DmaChannel<'static>,
    fault: &'q AtomicBool,
}

impl<'q> AttachedChannel<'q> {
    /// Attaches to channel `id` of `assigned`, the assignment the calling worker has just read
    /// from its own QSBR slot ([`crate::qsbr::Reader::poll`]); None if `id` is not in it.
    ///
    /// Crate-internal because its soundness rests on the hot-remove protocol, which this
    /// crate's control thread keeps: it publishes only channels of configured, started devices,
    /// each to one worker, and stops or closes a device only after the grace period in which
    /// that worker has dropped this handle (drained or abandoned its copies, then adopted a
    /// generation without it). See [`crate::qsbr`] and [`crate::control`].
    pub(crate) fn attach(
        assigned: &Assignment,
        id: ChannelId,
        fault: &'q AtomicBool,
    ) -> Option<Self> {
        if !assigned.has(id) {
            return None;
        }
        let (dev, vchan) = (id.dev(), id.vchan());
        Some(AttachedChannel {
            // SAFETY: `id` is in the worker's current assignment, so its device is configured
            // and started, this worker is its only user, and it stays so until this handle is
            // dropped (the protocol above): `DmaChannel::attach`'s contract.
            chan: unsafe { DmaChannel::attach(dev, vchan) },
            fault,
        })
    }
}

// SAFETY: it forwards to `DmaChannel`'s implementation; the fault switch only hides
// completions (reports fewer), which is always truthful.
unsafe impl DmaEngine for AttachedChannel<'_> {
    #[inline]
    fn capacity(&self) -> u16 {
        self.chan.burst_capacity()
    }
    #[inline]
    unsafe fn enqueue(&mut self, src: &Mbuf<'_>, dst: &mut Mbuf<'_>, offset: usize) -> bool {
        // SAFETY: our caller's contract is the one this call requires.
        unsafe { DmaEngine::enqueue(&mut self.chan, src, dst, offset) }
    }
    #[inline]
    fn submit(&mut self) {
        DmaEngine::submit(&mut self.chan)
    }
    #[inline]
    fn poll(&mut self, status: &mut [u32]) -> usize {
        // Relaxed: a drill switch, read once per poll; no data depends on it.
        if self.fault.load(Ordering::Relaxed) {
            return 0;
        }
        DmaEngine::poll(&mut self.chan, status)
    }
    fn dev_id(&self) -> Option<i16> {
        Some(self.chan.dev_id())
    }
}

/// One copy in flight: its tag (the caller's name for it) and both buffers.
struct Pending<'p> {
    tag: u64,
    src: Mbuf<'p>,
    dst: Mbuf<'p>,
}

/// The engine reported more completions than it had copies in flight: a device fault. Nothing
/// was handed back; the caller abandons the engine ([`InFlight::abandon`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overrun {
    pub reported: usize,
    pub in_flight: usize,
}

/// A DMA engine with the copies outstanding on it, which it owns until they complete.
pub struct InFlight<'p, E: DmaEngine> {
    engine: E,
    ring: Box<[Option<Pending<'p>>]>,
    mask: u32,
    head: u32,
    tail: u32,
}

impl<'p, E: DmaEngine> InFlight<'p, E> {
    /// Room for `cap` copies in flight (rounded up to a power of two); more are refused.
    pub fn new(engine: E, cap: u32) -> Self {
        let cap = cap.max(1).next_power_of_two();
        InFlight {
            engine,
            ring: (0..cap).map(|_| None).collect(),
            mask: cap - 1,
            head: 0,
            tail: 0,
        }
    }

    /// Changes the room for copies in flight; only while none is (false otherwise).
    pub fn resize(&mut self, cap: u32) -> bool {
        if self.in_flight() != 0 {
            return false;
        }
        let cap = cap.max(1).next_power_of_two();
        self.ring = (0..cap).map(|_| None).collect();
        self.mask = cap - 1;
        self.head = 0;
        self.tail = 0;
        true
    }

    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// Copies outstanding.
    #[inline]
    pub fn in_flight(&self) -> u32 {
        self.tail.wrapping_sub(self.head)
    }

    /// Hands `src` and `dst` to the engine, which copies `src.data()[offset..]` into `dst`.
    /// They come back from [`Self::poll`] with `tag` once the copy is done. When the ring here
    /// or the engine's is full, they are given back at once.
    #[inline]
    #[allow(clippy::type_complexity)]
    pub fn enqueue(
        &mut self,
        tag: u64,
        src: Mbuf<'p>,
        mut dst: Mbuf<'p>,
        offset: usize,
    ) -> Result<(), (Mbuf<'p>, Mbuf<'p>)> {
        if self.in_flight() as usize == self.ring.len() {
            return Err((src, dst));
        }
        // SAFETY: on success both mbufs move into `self.ring` below and leave it only through
        // `poll` (after the engine reported this copy), `abandon` (destination into a
        // Quarantine, which frees only after the device is stopped) or are leaked by Drop:
        // the contract of `DmaEngine::enqueue`.
        if !unsafe { self.engine.enqueue(&src, &mut dst, offset) } {
            return Err((src, dst));
        }
        self.ring[(self.tail & self.mask) as usize] = Some(Pending { tag, src, dst });
        self.tail = self.tail.wrapping_add(1);
        Ok(())
    }

    /// Starts the copies enqueued since the last submit.
    #[inline]
    pub fn submit(&mut self) {
        self.engine.submit()
    }

    /// Collects completions (at most `status.len()`), handing each finished copy back as
    /// `done(tag, src, dst, ok)` in enqueue order; `ok` is false for a copy the engine failed
    /// (its destination holds garbage). Returns how many, or [`Overrun`] if the engine reported
    /// more than it had (then nothing is handed back).
    #[inline]
    pub fn poll(
        &mut self,
        status: &mut [u32],
        mut done: impl FnMut(u64, Mbuf<'p>, Mbuf<'p>, bool),
    ) -> Result<usize, Overrun> {
        if self.head == self.tail {
            return Ok(0);
        }
        let n = self.engine.poll(status);
        let in_flight = self.in_flight() as usize;
        if n > in_flight || n > status.len() {
            return Err(Overrun {
                reported: n,
                in_flight,
            });
        }
        for &st in &status[..n] {
            if let Some(p) = self.ring[(self.head & self.mask) as usize].take() {
                done(p.tag, p.src, p.dst, st == 0);
            }
            self.head = self.head.wrapping_add(1);
        }
        Ok(n)
    }

    /// Gives up on the engine and every copy in flight on it (it stopped completing, or
    /// misbehaved): each source comes back as `src(tag, mbuf)` in enqueue order, for the CPU to
    /// copy again, and the destinations come back in a [`Quarantine`] of the engine's device.
    /// The engine is consumed: its ring still holds the abandoned descriptors, which may yet
    /// complete, so it must never take new copies (the device is reset by a stop, or its old
    /// completions reaped, before a channel of it is used again).
    pub fn abandon(mut self, mut src: impl FnMut(u64, Mbuf<'p>)) -> Quarantine<'p> {
        let mut quarantine = Quarantine {
            bufs: Vec::with_capacity(self.in_flight() as usize),
            dev: self.engine.dev_id(),
        };
        while self.head != self.tail {
            if let Some(p) = self.ring[(self.head & self.mask) as usize].take() {
                quarantine.bufs.push(p.dst);
                src(p.tag, p.src);
            }
            self.head = self.head.wrapping_add(1);
        }
        quarantine
    }

    /// The engine back, when no copy is in flight.
    pub fn into_engine(self) -> Result<E, Self> {
        if self.in_flight() != 0 {
            return Err(self);
        }
        // `Self` implements Drop, so its fields are moved out of a value that is never dropped.
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, and each field is read exactly once,
        // so nothing is duplicated or leaked. The ring holds only `None`s (nothing in flight).
        let (engine, ring) = unsafe { (std::ptr::read(&this.engine), std::ptr::read(&this.ring)) };
        drop(ring);
        Ok(engine)
    }
}

impl<E: DmaEngine> Drop for InFlight<'_, E> {
    fn drop(&mut self) {
        // Copies still in flight (a worker that panicked, or a stage dropped mid-copy): the
        // engine may still read the sources and write the destinations, so leak both rather
        // than return them to the pool.
        while self.head != self.tail {
            if let Some(p) = self.ring[(self.head & self.mask) as usize].take() {
                let _ = p.src.into_raw();
                let _ = p.dst.into_raw();
            }
            self.head = self.head.wrapping_add(1);
        }
    }
}

/// Destination buffers an engine may still write (it was abandoned, not drained). They go back
/// to the pool only through [`Quarantine::release`] with the engine's device stopped; a
/// quarantine dropped any other way leaks them.
#[derive(Default)]
pub struct Quarantine<'p> {
    bufs: Vec<Mbuf<'p>>,
    /// The dmadev whose engine may write them (None for a test double).
    dev: Option<i16>,
}

impl<'p> Quarantine<'p> {
    pub fn new() -> Self {
        Quarantine {
            bufs: Vec::new(),
            dev: None,
        }
    }

    pub fn len(&self) -> usize {
        self.bufs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }

    /// The dmadev whose engine may write these buffers.
    pub fn dev_id(&self) -> Option<i16> {
        self.dev
    }

    /// Moves `other`'s buffers in (both must be of the same device, or one empty); gives
    /// `other` back otherwise.
    pub fn append(&mut self, mut other: Quarantine<'p>) -> Result<(), Quarantine<'p>> {
        if other.is_empty() {
            return Ok(());
        }
        if !self.is_empty() && self.dev != other.dev {
            return Err(other);
        }
        self.dev = other.dev;
        self.bufs.append(&mut other.bufs);
        Ok(())
    }

    /// Frees the buffers, if `dev` is the device whose engine may write them and it is
    /// stopped (a stopped engine writes nothing more). Gives the quarantine back otherwise.
    /// Returns how many were freed.
    pub fn release(mut self, dev: &DmaDev<'_>) -> Result<usize, Quarantine<'p>> {
        if self.is_empty() {
            return Ok(0);
        }
        if self.dev != Some(dev.id()) || !dev.is_stopped() {
            return Err(self);
        }
        let n = self.bufs.len();
        self.bufs.clear(); // returns each to its pool
        Ok(n)
    }
}

impl Drop for Quarantine<'_> {
    fn drop(&mut self) {
        // Not released: the engine may still write these buffers. Leak them.
        for m in self.bufs.drain(..) {
            let _ = m.into_raw();
        }
    }
}

/// Collects the completions that a retired lane left on vchan 0 of `dev` (the worker gave up
/// on those copies: re-did them on the CPU and quarantined their destinations), so that the
/// channel starts with an empty completion ring when it is published again: a fresh lane that
/// found them would take them for its own copies. Returns how many it collected (0 for a
/// stopped device).
///
/// Crate-internal because its soundness rests on the hot-remove protocol: the control thread
/// calls it only for a channel it has unpublished and whose worker has passed the grace
/// period since, so no [`AttachedChannel`] of it exists; `&mut DmaDev` rules out a
/// [`DmaDev::channel`] handle.
pub(crate) fn reap_abandoned(dev: &mut DmaDev<'_>) -> usize {
    if dev.is_stopped() {
        return 0;
    }
    // SAFETY: the device is configured and started (checked above; a `DmaDev` is opened
    // started and only `stop` stops it), and this is the vchan's only user: no worker holds an
    // `AttachedChannel` of it (the caller's contract above) and `&mut dev` excludes the handle
    // of `DmaDev::channel`. Collecting completions writes no memory the engine owns, and the
    // handle is dropped before this returns.
    let mut chan = unsafe { DmaChannel::attach(dev.id(), 0) };
    let mut status = [0u32; 64];
    let mut total = 0;
    // Bounded: nothing submits to the channel now, so its ring empties in a few rounds.
    for _ in 0..1024 {
        let n = DmaEngine::poll(&mut chan, &mut status);
        total += n;
        if n < status.len() {
            break;
        }
    }
    total
}
