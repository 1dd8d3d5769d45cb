//! The copy stage: every received packet is copied into a fresh mbuf, the way Linux's net_dma
//! offloaded TCP receive copies, and the copy is what gets transmitted.
//!
//! ## Paths
//!
//! * **CPU copy**: the whole frame by `memcpy`. Used for frames shorter than the copybreak,
//!   when the worker has no DMA channel, when the channel's ring is full, and always in
//!   `--copy cpu`.
//! * **DMA copy**: the CPU copies the first [`HEADER_BYTES`] (the headers it rewrites anyway,
//!   like net_dma did) and the DMA engine copies the rest. The source stays held until the
//!   engine reports the copy complete; only then is it freed.
//!
//! ## Order
//!
//! Each stream (one RX port of the worker) has a FIFO of slots in receive order. A CPU-copied
//! packet is ready at once, a DMA-copied one when its completion arrives, and packets leave only
//! from the head of the FIFO: a CPU copy waits behind earlier packets of its stream still in DMA
//! flight, so the offload never reorders a stream.
//!
//! ## Nothing is dropped for a copy reason
//!
//! A full DMA ring (or [`LANE_DEPTH`] copies already outstanding) falls back to a CPU copy; an error completion (`rte_dma_completed_status`)
//! is re-copied by the CPU from the still-held source and counted as `recopied`. The only
//! drops are an mbuf pool running dry (`no_mbuf`) and frames too short to carry an Ethernet
//! header (`runt`).
//!
//! ## Cost
//!
//! The slot FIFOs and the tag FIFO are allocated once when the stage is built. Per packet the
//! stage touches only its own memory and the mbufs; per burst it makes one submit and one
//! completion poll.

pub use crate::dma::DmaEngine;
use crate::dma::{InFlight, Quarantine};
use crate::ether::rewrite_macs;
pub use crate::ether::ETHER_HDR_LEN;
use crate::qsbr::ChannelId;
use crate::stats::{DropReason, LcoreStats};
use pmd::{Burst, FreeBatch, MacAddr, Mbuf, Mempool, PortId, MAX_BURST};

/// Bytes the CPU copies itself on the DMA path: the Ethernet, IP and L4 headers it may rewrite.
pub const HEADER_BYTES: usize = 64;

/// How a worker copies packets (`--copy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMode {
    /// Forward the received mbuf itself (plain l2fwd).
    None,
    /// Copy every packet with the CPU.
    Cpu,
    /// Copy payloads of packets of at least `copybreak` bytes with the DMA engine.
    Dma,
    /// Choose the copybreak at run time from measured costs.
    Auto,
}

impl CopyMode {
    /// The mode as `--copy` spells it.
    pub fn name(self) -> &'static str {
        match self {
            CopyMode::None => "none",
            CopyMode::Cpu => "cpu",
            CopyMode::Dma => "dma",
            CopyMode::Auto => "auto",
        }
    }
}

impl std::str::FromStr for CopyMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(CopyMode::None),
            "cpu" => Ok(CopyMode::Cpu),
            "dma" => Ok(CopyMode::Dma),
            "auto" => Ok(CopyMode::Auto),
            _ => Err(format!(
                "invalid copy mode {s:?}: expected none, cpu, dma or auto"
            )),
        }
    }
}

/// Which packets go to the DMA engine (`--copybreak`, `dpctl copybreak`, `--copy auto`'s
/// choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copybreak {
    /// None: every packet is copied by the CPU.
    CpuOnly,
    /// Packets of at least this many bytes (when there is an engine with room).
    Bytes(usize),
}

impl Copybreak {
    /// Whether a packet of `len` bytes is long enough for DMA.
    #[inline]
    pub fn admits(self, len: usize) -> bool {
        match self {
            Copybreak::CpuOnly => false,
            Copybreak::Bytes(n) => len >= n,
        }
    }
}

impl From<usize> for Copybreak {
    fn from(bytes: usize) -> Self {
        Copybreak::Bytes(bytes)
    }
}

/// One packet between receive and transmit.
#[derive(Default)]
struct Slot<'p> {
    /// The copy, transmitted once ready. Empty while the copy is in DMA flight: the lane's
    /// engine owns both buffers until then (see [`crate::dma`]).
    dst: Option<Mbuf<'p>>,
    /// A DMA copy of the payload is outstanding.
    in_dma: bool,
}

/// A stream's FIFO of slots in receive order.
struct Stream<'p> {
    slots: Box<[Slot<'p>]>,
    mask: u32,
    /// Oldest slot (next to transmit).
    head: u32,
    /// Next free slot.
    tail: u32,
    dst_mac: MacAddr,
    src_mac: MacAddr,
    mac_updating: bool,
}

impl Stream<'_> {
    fn len(&self) -> u32 {
        self.tail.wrapping_sub(self.head)
    }
    fn room(&self) -> u32 {
        self.slots.len() as u32 - self.len()
    }
}

/// One DMA channel of a worker with the copies outstanding on it.
struct Lane<'p, E: DmaEngine> {
    /// The engine and the copies in flight on it, tagged (stream << 32) | slot sequence number.
    flight: InFlight<'p, E>,
    /// Descriptors written since the last submit.
    unsubmitted: u32,
    /// TSC of the lane's last completion, or of the last poll that found it idle.
    last_progress: u64,
    /// The channel this lane drives, as the control thread names it (None: a bare engine).
    id: Option<ChannelId>,
    /// Takes no new copies; leaves once its outstanding ones completed (hot-remove).
    draining: bool,
    /// Copies completed while draining.
    drained: u64,
    /// The engine reported completions it was never given: retire it like a stalled one.
    faulted: bool,
}

/// A lane that left the stage: its engine and what happened to its copies.
pub struct RetiredLane<'p, E> {
    pub engine: Option<E>,
    pub id: Option<ChannelId>,
    /// Copies that completed after the lane started draining.
    pub drained: u64,
    /// Copies given up on and re-done by the CPU (a stalled engine).
    pub recopied: u64,
    /// The engine stopped completing (surprise removal) or misbehaved, as opposed to a clean
    /// drain.
    pub stalled: bool,
    /// Destination buffers this engine may still write: freed only once it is stopped.
    pub quarantine: Quarantine<'p>,
}

impl<E: DmaEngine> Lane<'_, E> {
    fn in_flight(&self) -> u32 {
        self.flight.in_flight()
    }

    /// Copies the lane can take now: the engine ring's free room within [`LANE_DEPTH`]
    /// outstanding.
    #[inline]
    fn room(&self) -> u32 {
        (self.flight.engine().capacity() as u32).min(LANE_DEPTH.saturating_sub(self.in_flight()))
    }

    fn stalled(&self, now: u64, timeout: u64) -> bool {
        self.faulted || (self.in_flight() > 0 && now.wrapping_sub(self.last_progress) > timeout)
    }
}

/// The copy stage of one worker. A worker may own several DMA channels (lanes); stream `s`
/// uses lane `s % lanes`.
pub struct CopyStage<'p, E: DmaEngine> {
    mode: CopyMode,
    /// Which packets go to DMA (when there is an engine with room).
    copybreak: Copybreak,
    lanes: Vec<Lane<'p, E>>,
    /// Indices of the lanes that take new copies (not draining); stream `s` uses
    /// `active[s % active.len()]`.
    active: Vec<usize>,
    streams: Vec<Stream<'p>>,
}

/// Splits off what `burst` holds beyond its first `keep` packets (cold: a caller that received
/// more than a stream's room).
#[cold]
fn hold_back<'p>(burst: &mut Burst<'p>, keep: usize) -> Burst<'p> {
    let (mut front, mut rest) = (Burst::new(), Burst::new());
    for (i, m) in burst.drain().enumerate() {
        // Cannot fail: each takes at most what `burst` held.
        let _ = if i < keep {
            front.push(m)
        } else {
            rest.push(m)
        };
    }
    std::mem::swap(burst, &mut front);
    rest
}

/// Copies a frame (`dst` is exactly as long as `src`). Frames of up to 64 bytes, the common
/// small packet, take two to four overlapping 16-byte moves inline, as DPDK's `rte_memcpy`
/// does, instead of a call into the C library's `memcpy` (which costs more than the copy at
/// that size); longer ones take `memcpy`, whose vector loops are as fast as `rte_memcpy`'s.
#[inline(always)]
pub fn copy_frame(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if dst.len() != n || !(16..=64).contains(&n) {
        dst.copy_from_slice(src);
        return;
    }
    if n <= 32 {
        move_block::<16>(dst, src, 0);
        move_block::<16>(dst, src, n - 16);
    } else {
        move_block::<32>(dst, src, 0);
        move_block::<32>(dst, src, n - 32);
    }
}

/// `dst[at..at + N] = src[at..at + N]`, with the length known at compile time.
#[inline(always)]
fn move_block<const N: usize>(dst: &mut [u8], src: &[u8], at: usize) {
    let (Some(d), Some(s)) = (dst.get_mut(at..at + N), src.get(at..at + N)) else {
        return;
    };
    if let Ok(s) = <&[u8; N]>::try_from(s) {
        d.copy_from_slice(s);
    }
}

/// Slots per stream: bounds the packets a stream holds between receive and transmit.
pub const STREAM_SLOTS: u32 = 1024;

/// Most copies outstanding on one DMA channel. Enough to cover a hardware engine's latency at
/// line rate many times over (IOAT/DSA complete a copy in a microsecond or two); beyond it the
/// engine is saturated, and further packets are copied by the CPU instead of queueing behind
/// it, so a slow engine adds to the lcore's copy rate instead of capping it.
pub const LANE_DEPTH: u32 = 512;

impl<'p, E: DmaEngine> CopyStage<'p, E> {
    /// A stage for `mode` with `engine` (if any). Streams are added with [`Self::add_stream`],
    /// more engines with [`Self::add_engine`].
    pub fn new(mode: CopyMode, copybreak: impl Into<Copybreak>, engine: Option<E>) -> Self {
        let mut stage = CopyStage {
            mode,
            copybreak: copybreak.into(),
            lanes: Vec::new(),
            active: Vec::new(),
            streams: Vec::new(),
        };
        if let Some(e) = engine {
            stage.add_engine(e);
        }
        stage
    }

    /// Every slot of every stream may be in DMA flight on one lane: room for that many tags.
    fn tag_capacity(&self) -> u32 {
        (self.streams.len().max(1) as u32 * STREAM_SLOTS).next_power_of_two()
    }

    /// Adds a DMA channel (a lane). Between bursts.
    pub fn add_engine(&mut self, engine: E) {
        self.push_lane(engine, None);
    }

    /// Adds a DMA channel known to the control thread as `id`. Between bursts.
    pub fn add_lane(&mut self, engine: E, id: ChannelId) {
        self.push_lane(engine, Some(id));
    }

    fn push_lane(&mut self, engine: E, id: Option<ChannelId>) {
        let cap = self.tag_capacity();
        self.lanes.push(Lane {
            flight: InFlight::new(engine, cap),
            unsubmitted: 0,
            last_progress: 0,
            id,
            draining: false,
            drained: 0,
            faulted: false,
        });
        self.rebuild_active();
    }

    fn rebuild_active(&mut self) {
        self.active.clear();
        self.active
            .extend((0..self.lanes.len()).filter(|&l| !self.lanes[l].draining));
    }

    /// The ids of the lanes, draining ones included.
    pub fn lane_ids(&self) -> impl Iterator<Item = ChannelId> + '_ {
        self.lanes.iter().filter_map(|l| l.id)
    }

    /// Lanes still draining.
    pub fn draining(&self) -> usize {
        self.lanes.iter().filter(|l| l.draining).count()
    }

    /// Starts draining every lane whose id `keep` rejects: it takes no new copies, its
    /// outstanding ones still complete (or are re-done if it stalls), and
    /// [`Self::take_drained`] hands it back once empty.
    pub fn drain_lanes(&mut self, keep: impl Fn(Option<ChannelId>) -> bool) {
        for lane in &mut self.lanes {
            if !keep(lane.id) {
                lane.draining = true;
            }
        }
        self.rebuild_active();
    }

    /// Removes and returns the draining lanes with nothing outstanding.
    pub fn take_drained(&mut self) -> Vec<RetiredLane<'p, E>> {
        let mut out = Vec::new();
        let mut l = 0;
        while l < self.lanes.len() {
            if self.lanes[l].draining && self.lanes[l].in_flight() == 0 {
                let lane = self.lanes.remove(l);
                out.push(RetiredLane {
                    engine: lane.flight.into_engine().ok(),
                    id: lane.id,
                    drained: lane.drained,
                    recopied: 0,
                    stalled: false,
                    quarantine: Quarantine::new(),
                });
            } else {
                l += 1;
            }
        }
        if !out.is_empty() {
            self.rebuild_active();
        }
        out
    }

    /// Adds a stream (one RX port); returns its index. Packets of it get `dst_mac`/`src_mac`
    /// written into their copies when `mac_updating`. Only with no copy in flight.
    pub fn add_stream(&mut self, dst_mac: MacAddr, src_mac: MacAddr, mac_updating: bool) -> usize {
        debug_assert_eq!(self.in_dma(), 0);
        self.streams.push(Stream {
            slots: (0..STREAM_SLOTS).map(|_| Slot::default()).collect(),
            mask: STREAM_SLOTS - 1,
            head: 0,
            tail: 0,
            dst_mac,
            src_mac,
            mac_updating,
        });
        let cap = self.tag_capacity();
        for lane in &mut self.lanes {
            // Cannot fail: no copy is in flight (asserted above, and streams are added before
            // traffic).
            let _ = lane.flight.resize(cap);
        }
        self.streams.len() - 1
    }

    pub fn copybreak(&self) -> Copybreak {
        self.copybreak
    }

    /// Sets which packets go to DMA from the next burst on: a [`Copybreak`], or a byte count.
    pub fn set_copybreak(&mut self, copybreak: impl Into<Copybreak>) {
        self.copybreak = copybreak.into();
    }

    /// DMA channels the stage drives.
    pub fn engines(&self) -> usize {
        self.lanes.len()
    }

    /// Packets stream `s` can still take (receive no more than this: back-pressure, not drops).
    #[inline]
    pub fn room(&self, s: usize) -> usize {
        self.streams[s].room() as usize
    }

    /// Packets held by the stage (copying or waiting to be transmitted).
    pub fn held(&self) -> usize {
        self.streams.iter().map(|s| s.len() as usize).sum()
    }

    /// DMA descriptors outstanding.
    pub fn in_dma(&self) -> usize {
        self.lanes.iter().map(|l| l.in_flight() as usize).sum()
    }

    /// Takes a received burst into stream `s`: each packet is copied by the CPU or enqueued to
    /// the DMA engine. Runts and packets with no mbuf for their copy are dropped and counted
    /// against `rx_port`. The burst is left empty, unless it held more than [`Self::room`]
    /// (receive no more than that): the packets beyond it stay in the burst, in order.
    pub fn accept(
        &mut self,
        s: usize,
        burst: &mut Burst<'p>,
        pool: &'p Mempool<'_>,
        stats: &LcoreStats,
        rx_port: PortId,
    ) {
        self.accept_inner(s, burst, None, pool, stats, rx_port)
    }

    /// [`Self::accept`], except that copies the CPU finishes while stream `s` holds nothing
    /// older go straight into `out` (up to its room), ready to transmit, instead of through
    /// the stream's slots and [`Self::take_ready`]: the `--copy cpu` path, and `auto`'s short
    /// packets, without the reorder ring's bookkeeping. Order is kept: once one packet of the
    /// burst waits in the stream (in DMA flight, or no room in `out`), every later one waits
    /// behind it.
    #[inline]
    pub fn accept_into(
        &mut self,
        s: usize,
        burst: &mut Burst<'p>,
        out: &mut Burst<'p>,
        pool: &'p Mempool<'_>,
        stats: &LcoreStats,
        rx_port: PortId,
    ) {
        self.accept_inner(s, burst, Some(out), pool, stats, rx_port)
    }

    #[inline(always)]
    fn accept_inner(
        &mut self,
        s: usize,
        burst: &mut Burst<'p>,
        out: Option<&mut Burst<'p>>,
        pool: &'p Mempool<'_>,
        stats: &LcoreStats,
        rx_port: PortId,
    ) {
        let room = self.room(s);
        if burst.len() > room {
            let mut rest = hold_back(burst, room);
            self.accept_inner(s, burst, out, pool, stats, rx_port);
            std::mem::swap(burst, &mut rest);
            return;
        }
        // Straight into `out` while the stream holds nothing older.
        let mut direct = if self.streams[s].len() == 0 {
            out
        } else {
            None
        };
        let n = burst.len();
        let mut copies: [Option<Mbuf<'p>>; MAX_BURST] = Default::default();
        // Raw buffers, as dmafwd takes them: a copy gets its length below and its bytes from
        // the source, and nothing else of a full mbuf reset is needed to transmit it.
        if !pool.alloc_bulk_raw(&mut copies[..n]) {
            // The pool cannot give the whole burst at once: take what it has, one by one.
            for c in copies[..n].iter_mut() {
                *c = pool.alloc();
            }
        }
        let (mut cpu, mut dma, mut no_mbuf, mut runt) = (0u64, 0u64, 0u64, 0u64);
        // Sources whose copy is done go back to the pool together.
        let mut done = FreeBatch::new();
        // The stream's lane, if the mode copies by DMA and the stage has an active one.
        let dma_lane = match self.active.len() {
            n if n > 0 && matches!(self.mode, CopyMode::Dma | CopyMode::Auto) => {
                Some(self.active[s % n])
            }
            _ => None,
        };
        // Descriptors this burst may still put on its lane: the ring's free room within
        // LANE_DEPTH outstanding. Asked of the device once per burst, not per packet, and only
        // once a packet of the burst is long enough for DMA: the query reads ring state the
        // engine writes (a cache miss on another core's line for a software engine), which a
        // burst of short packets, all copied by the CPU, does not need.
        let mut dma_room: Option<u32> = None;
        for (src, copy) in burst.drain().zip(copies.iter_mut()) {
            let len = src.len();
            if len < ETHER_HDR_LEN || src.nb_segs() != 1 {
                // Ports run without scatter-gather, so a multi-segment mbuf is malformed input.
                runt += 1;
                continue;
            }
            let Some(mut dst) = copy.take() else {
                no_mbuf += 1;
                continue;
            };
            if dst.set_len(len).is_err() {
                no_mbuf += 1;
                continue;
            }
            let stream = &mut self.streams[s];
            let seq = stream.tail;
            let to_dma = dma_lane.filter(|&l| {
                self.copybreak.admits(len)
                    && len > HEADER_BYTES
                    && *dma_room.get_or_insert_with(|| self.lanes[l].room()) > 0
            });
            if let (Some(o), None) = (direct.as_deref_mut(), to_dma) {
                let d = dst.data_mut();
                copy_frame(d, src.data());
                if stream.mac_updating {
                    rewrite_macs(d, &stream.dst_mac, &stream.src_mac);
                }
                cpu += 1;
                done.push(src);
                let Err(d) = o.push(dst) else {
                    continue;
                };
                // No room in `out`: this copy and every later one wait in the stream.
                direct = None;
                let slot = &mut stream.slots[(seq & stream.mask) as usize];
                slot.in_dma = false;
                slot.dst = Some(d);
                stream.tail = seq.wrapping_add(1);
                continue;
            }
            direct = None;
            let slot = &mut stream.slots[(seq & stream.mask) as usize];
            slot.in_dma = false;
            if let Some(lane_idx) = to_dma {
                // Header by CPU, rewritten before the engine is given the buffer: from the
                // enqueue until its completion the CPU does not touch the copy.
                let d = dst.data_mut();
                d[..HEADER_BYTES].copy_from_slice(&src.data()[..HEADER_BYTES]);
                if stream.mac_updating {
                    rewrite_macs(d, &stream.dst_mac, &stream.src_mac);
                }
                let lane = &mut self.lanes[lane_idx];
                let tag = ((s as u64) << 32) | seq as u64;
                match lane.flight.enqueue(tag, src, dst, HEADER_BYTES) {
                    Ok(()) => {
                        lane.unsubmitted += 1;
                        if let Some(r) = dma_room.as_mut() {
                            *r -= 1;
                        }
                        slot.in_dma = true;
                        dma += 1;
                    }
                    Err((src, mut dst)) => {
                        // Ring full after all: finish the copy on the CPU, and ask no more this
                        // burst.
                        dma_room = Some(0);
                        copy_frame(
                            &mut dst.data_mut()[HEADER_BYTES..],
                            &src.data()[HEADER_BYTES..],
                        );
                        cpu += 1;
                        done.push(src);
                        slot.dst = Some(dst);
                    }
                }
            } else {
                let d = dst.data_mut();
                copy_frame(d, src.data());
                if stream.mac_updating {
                    rewrite_macs(d, &stream.dst_mac, &stream.src_mac);
                }
                cpu += 1;
                done.push(src);
                slot.dst = Some(dst);
            }
            stream.tail = seq.wrapping_add(1);
        }
        done.flush();
        let c = &stats.copies;
        c.cpu.add(cpu);
        c.dma.add(dma);
        let drops = &stats.ports[rx_port.index()].dropped;
        drops[DropReason::NoMbuf as usize].add(no_mbuf);
        drops[DropReason::Runt as usize].add(runt);
    }

    /// Rings each lane's doorbell once for everything enqueued on it since the last call.
    #[inline]
    pub fn submit(&mut self) {
        for lane in &mut self.lanes {
            if lane.unsubmitted > 0 {
                lane.flight.submit();
                lane.unsubmitted = 0;
            }
        }
    }

    /// Collects DMA completions: successful copies become ready and free their source; failed
    /// ones are re-copied by the CPU from the source. `now` is the TSC, for the per-lane stall
    /// detection of [`Self::retire_stalled`]. An engine that reports completions it was never
    /// given is faulty: it is marked for retirement like a stalled one, and counted as a DMA
    /// error. Returns how many completed.
    pub fn poll(&mut self, stats: &LcoreStats, now: u64) -> usize {
        let mut status = [0u32; MAX_BURST * 2];
        let mut done = FreeBatch::new();
        let mut total = 0;
        let mut errors = 0u64;
        let streams = &mut self.streams;
        for lane in &mut self.lanes {
            // An idle lane, or one polled for the first time, starts its stall clock now.
            if lane.in_flight() == 0 || lane.last_progress == 0 {
                lane.last_progress = now;
            }
            if lane.in_flight() == 0 || lane.faulted {
                continue;
            }
            let polled = lane.flight.poll(&mut status, |tag, src, mut dst, ok| {
                let stream = &mut streams[(tag >> 32) as usize];
                let slot = &mut stream.slots[(tag as u32 & stream.mask) as usize];
                if !ok {
                    errors += 1;
                    dst.data_mut()[HEADER_BYTES..].copy_from_slice(&src.data()[HEADER_BYTES..]);
                }
                slot.in_dma = false;
                slot.dst = Some(dst);
                // Its copy is complete: the source goes back to the pool.
                done.push(src);
            });
            match polled {
                Ok(n) => {
                    if n > 0 {
                        lane.last_progress = now;
                        if lane.draining {
                            lane.drained += n as u64;
                        }
                    }
                    total += n;
                }
                Err(_) => {
                    lane.faulted = true;
                    stats.copies.dma_errors.add(1);
                }
            }
        }
        done.flush();
        if errors > 0 {
            let c = &stats.copies;
            c.dma_errors.add(errors);
            c.recopied.add(errors);
        }
        total
    }

    /// Moves stream `s`'s ready copies, oldest first, into `out` (up to its room); stops at the
    /// first packet still in DMA flight, so order is kept.
    #[inline]
    pub fn take_ready(&mut self, s: usize, out: &mut Burst<'p>) -> usize {
        let stream = &mut self.streams[s];
        let mut n = 0;
        // In a local: stores through `out` could alias `stream.head` as far as the compiler
        // knows, which kept it in memory, re-read every packet.
        let mut head = stream.head;
        while head != stream.tail && out.room() > 0 {
            let slot = &mut stream.slots[(head & stream.mask) as usize];
            if slot.in_dma {
                break;
            }
            // A slot without a copy is a packet abandon_dma had no buffer for (counted there).
            if let Some(dst) = slot.dst.take() {
                // Cannot fail: room checked above.
                let _ = out.push(dst);
                n += 1;
            }
            head = head.wrapping_add(1);
        }
        stream.head = head;
        n
    }

    /// Gives up on lane `l` (its engine stopped completing, or misbehaved) and takes it out of
    /// the stage: each outstanding copy is re-done by the CPU from its source into a fresh
    /// mbuf, and the abandoned destination buffers come back in the engine's [`Quarantine`], to
    /// be freed only once its device is stopped (a late DMA write must never land in a reused
    /// buffer). The engine is not used again. Packets with no fresh mbuf to copy into are
    /// dropped and counted as `no_mbuf` against `rx_port_of(stream)`. Returns the lane's
    /// retirement record.
    pub fn abandon_lane(
        &mut self,
        l: usize,
        pool: &'p Mempool<'_>,
        stats: &LcoreStats,
        rx_port_of: &impl Fn(usize) -> PortId,
    ) -> RetiredLane<'p, E> {
        let mut recopied = 0;
        let lane = self.lanes.remove(l);
        self.rebuild_active();
        let streams = &mut self.streams;
        let mut done = FreeBatch::new();
        let quarantine = lane.flight.abandon(|tag, src| {
            let s = (tag >> 32) as usize;
            let stream = &mut streams[s];
            let slot = &mut stream.slots[(tag as u32 & stream.mask) as usize];
            slot.in_dma = false;
            let fresh = pool
                .alloc()
                .and_then(|mut m| m.set_len(src.len()).ok().map(|_| m));
            match fresh {
                Some(mut fresh) => {
                    fresh.data_mut().copy_from_slice(src.data());
                    if stream.mac_updating {
                        rewrite_macs(fresh.data_mut(), &stream.dst_mac, &stream.src_mac);
                    }
                    slot.dst = Some(fresh);
                    recopied += 1;
                }
                None => {
                    // No buffer for the copy: the slot becomes a hole that take_ready skips.
                    stats.ports[rx_port_of(s).index()].dropped[DropReason::NoMbuf as usize].add(1);
                }
            }
            done.push(src);
        });
        done.flush();
        stats.copies.recopied.add(recopied);
        RetiredLane {
            engine: None,
            id: lane.id,
            drained: lane.drained,
            recopied,
            stalled: true,
            quarantine,
        }
    }

    /// Gives up on every lane; see [`Self::abandon_lane`].
    pub fn abandon_dma(
        &mut self,
        pool: &'p Mempool<'_>,
        stats: &LcoreStats,
        rx_port_of: impl Fn(usize) -> PortId,
    ) -> Vec<RetiredLane<'p, E>> {
        let mut out = Vec::with_capacity(self.lanes.len());
        while !self.lanes.is_empty() {
            out.push(self.abandon_lane(0, pool, stats, &rx_port_of));
        }
        out
    }

    /// Whether some lane has held copies without completing any for `timeout` cycles: a few
    /// compares, cheap enough for every loop iteration.
    #[inline]
    pub fn has_stalled(&self, now: u64, timeout: u64) -> bool {
        self.lanes.iter().any(|l| l.stalled(now, timeout))
    }

    /// Retires every lane that has held copies without completing any for `timeout` cycles
    /// (surprise removal, hung engine): its copies are re-done by the CPU
    /// ([`Self::abandon_lane`]) and it is returned with its engine and its own quarantine, to
    /// be freed only after that engine is stopped. The other lanes keep working.
    pub fn retire_stalled(
        &mut self,
        now: u64,
        timeout: u64,
        pool: &'p Mempool<'_>,
        stats: &LcoreStats,
        rx_port_of: &impl Fn(usize) -> PortId,
    ) -> Vec<RetiredLane<'p, E>> {
        let mut retired = Vec::new();
        let mut l = 0;
        while l < self.lanes.len() {
            if self.lanes[l].stalled(now, timeout) {
                retired.push(self.abandon_lane(l, pool, stats, rx_port_of));
            } else {
                l += 1;
            }
        }
        retired
    }
}

#[cfg(test)]
mod tests {
    use super::copy_frame;

    #[test]
    fn copy_frame_copies_every_length() {
        let src: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in 0..=src.len() {
            for off in [0, 1, 5] {
                if off + n > src.len() {
                    continue;
                }
                let s = &src[off..off + n];
                let mut d = vec![0xeeu8; n + 8];
                copy_frame(&mut d[4..4 + n], s);
                assert_eq!(&d[4..4 + n], s, "length {n}, offset {off}");
                assert_eq!(&d[..4], &[0xee; 4], "nothing written before, length {n}");
                assert_eq!(&d[4 + n..], &[0xee; 4], "nothing written after, length {n}");
            }
        }
    }
}
