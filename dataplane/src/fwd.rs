//! The l2fwd worker loop.
//!
//! One worker runs pinned on one lcore and owns the RX queues it was dealt and a TX queue of its
//! own on each port it transmits to (see [`crate::placement`]). Per iteration: receive a burst
//! from each owned RX queue, rewrite the MACs (unless disabled), transmit it out of the peer
//! port, count; then count the iteration's TSC cycles as busy or idle (one `rdtsc` per
//! iteration). Nothing on this path
//! allocates, locks, makes a system call, or writes a cache line another lcore writes.

use crate::copy::{CopyStage, Copybreak};
use crate::dma::{AttachedChannel, Quarantine};
use crate::ether::{l2fwd_dst_mac, rewrite_macs, ETHER_HDR_LEN};
use crate::gaps::GapRecorder;
use crate::qsbr::{Assignment, ChannelId, Generation, Reader};
use crate::stats::{DropReason, LcoreStats};
use crate::tuner::AutoTuner;
use crossbeam_queue::SegQueue;
use pmd::{Burst, MacAddr, Mempool, PortId, RxQueue, TxQueue};
use std::sync::atomic::AtomicU32;
use std::sync::atomic::{AtomicBool, Ordering};

/// How often the TX queue is retried for the rest of a burst before the rest is dropped.
const TX_RETRIES: u32 = 16;

/// One (RX queue -> TX queue) forwarding rule owned by a worker.
///
/// `'q` borrows the ports (their queues), `'p` the pool their mbufs come from.
pub struct Rule<'q, 'p> {
    pub rx: RxQueue<'q, 'p>,
    /// The worker's TX queue this rule sends on: an index into its TX queues (several RX
    /// queues may send on one).
    pub tx: usize,
    /// The TX port's own MAC: the new source address.
    pub tx_mac: MacAddr,
}

impl Rule<'_, '_> {
    /// l2fwd's destination MAC for packets leaving `tx_port` (see [`l2fwd_dst_mac`]).
    pub fn dst_mac(tx_port: PortId) -> MacAddr {
        l2fwd_dst_mac(tx_port)
    }
}

/// A worker lcore's state.
pub struct Worker<'q, 'p, 's> {
    pub rules: Vec<Rule<'q, 'p>>,
    /// Its TX queues, one per port it sends to; [`Rule::tx`] indexes them.
    pub txqs: Vec<TxQueue<'q, 'p>>,
    pub mac_updating: bool,
    pub stats: &'s LcoreStats,
}

impl Worker<'_, '_, '_> {
    /// Forwards until `quit` is set. Every packet received is transmitted or counted as dropped
    /// before this returns: no packet is left in flight. Never inlined, so that the compiled
    /// loop can be inspected (`apps/l2fwd/tests/fastpath_asm.rs`).
    ///
    /// `gaps` records each iteration's length per loop-gap window (see [`crate::gaps`]).
    #[inline(never)]
    pub fn run(&mut self, quit: &AtomicBool, gaps: &mut GapRecorder) {
        let mut burst = Burst::new();
        let dst_macs: Vec<MacAddr> = self
            .rules
            .iter()
            .map(|r| Rule::dst_mac(self.txqs[r.tx].port()))
            .collect();
        let mut tsc_last = pmd::rdtsc();
        // Relaxed: `quit` carries no data; the worker only needs to see it eventually.
        while !quit.load(Ordering::Relaxed) {
            let mut work = 0;
            for (rule, dst) in self.rules.iter_mut().zip(&dst_macs) {
                let n = rule.rx.rx_burst(&mut burst);
                if n == 0 {
                    continue;
                }
                work += n;
                let rx_ctr = &self.stats.ports[rule.rx.port().index()];
                rx_ctr.rx.add(n as u64);
                if self.mac_updating {
                    let mut runts = 0;
                    for m in burst.as_mut_slice() {
                        let d = m.data_mut();
                        if d.len() >= ETHER_HDR_LEN {
                            rewrite_macs(d, dst, &rule.tx_mac);
                        } else {
                            runts += 1;
                        }
                    }
                    if runts > 0 {
                        drop_runts(&mut burst, rx_ctr, runts);
                    }
                } else if burst.as_slice().iter().any(|m| m.len() < ETHER_HDR_LEN) {
                    let runts = burst
                        .as_slice()
                        .iter()
                        .filter(|m| m.len() < ETHER_HDR_LEN)
                        .count();
                    drop_runts(&mut burst, rx_ctr, runts);
                }
                transmit(&mut self.txqs[rule.tx], &mut burst, self.stats);
            }
            // One rdtsc per iteration: this iteration's cycles, busy if it received anything.
            let now = pmd::rdtsc();
            let cycles = now.wrapping_sub(tsc_last);
            self.stats.cycles.record(cycles, work > 0);
            gaps.record(cycles);
            tsc_last = now;
        }
    }
}

/// Removes the frames too short to carry an Ethernet header, counting them (cold path).
#[cold]
fn drop_runts(burst: &mut Burst<'_>, ctr: &crate::stats::PortCounters, runts: usize) {
    let mut keep = Burst::new();
    for m in burst.drain() {
        if m.len() >= ETHER_HDR_LEN {
            // Cannot fail: `keep` has room for every packet `burst` held.
            let _ = keep.push(m);
        }
    }
    std::mem::swap(burst, &mut keep);
    ctr.dropped[DropReason::Runt as usize].add(runts as u64);
}

/// Sends the whole burst, retrying a full TX queue a bounded number of times; what is still
/// left is freed and counted as `tx_full`.
#[inline]
pub fn transmit<'p>(tx: &mut TxQueue<'_, 'p>, burst: &mut Burst<'p>, stats: &LcoreStats) {
    let ctr = &stats.ports[tx.port().index()];
    let mut sent = tx.tx_burst(burst);
    let mut tries = 0;
    while !burst.is_empty() && tries < TX_RETRIES {
        sent += tx.tx_burst(burst);
        tries += 1;
    }
    ctr.tx.add(sent as u64);
    if !burst.is_empty() {
        let n = burst.free_all();
        ctr.dropped[DropReason::TxFull as usize].add(n as u64);
    }
}

/// A retired DMA lane, handed from a worker to the control thread (cold path: hot-remove and
/// stalls only).
pub struct Retired<'p> {
    pub channel: ChannelId,
    /// Copies that completed while the lane drained.
    pub drained: u64,
    /// Copies given up on and re-done by the CPU.
    pub recopied: u64,
    /// The engine stopped completing (surprise removal or fault), rather than drained cleanly.
    pub stalled: bool,
    /// Destination buffers the engine may still write: freed only once the device is
    /// stopped.
    pub quarantine: Quarantine<'p>,
}

/// A worker's end of the state it shares with the control thread ([`crate::shared::Shared`]
/// hands out one per worker). Whoever holds it is that worker.
pub struct WorkerControl<'q, 'p> {
    /// Its QSBR slot: the channels it may use.
    pub(crate) reader: Reader<'q>,
    /// Where it hands retired lanes to the control thread.
    pub(crate) retired: &'q SegQueue<Retired<'p>>,
    /// Fault switches, by device id.
    pub(crate) faults: &'q [AtomicBool],
    /// A copybreak set by the control thread (`dpctl copybreak`), 0 = none.
    pub(crate) copybreak: &'q AtomicU32,
    /// Its longest loop iteration per window (see [`crate::gaps`]).
    pub(crate) gaps: GapRecorder<'q>,
}

impl<'p> WorkerControl<'_, 'p> {
    /// The worker's assignment, and whether it is new since the last call (see
    /// [`Reader::poll`]).
    pub fn poll(&mut self) -> (&Assignment, bool) {
        self.reader.poll()
    }

    /// Declares that the worker no longer touches any channel it held before `generation`.
    pub fn adopt(&self, generation: Generation) {
        self.reader.adopt(generation)
    }

    /// The worker parks for good: quiescent from now on.
    pub fn offline(&self) {
        self.reader.offline()
    }

    /// Hands a retired lane to the control thread.
    pub fn hand_back(&self, r: Retired<'p>) {
        self.retired.push(r)
    }
}

/// A worker with a copy stage (`--copy cpu|dma|auto`): every packet is copied into a fresh
/// mbuf, and the copy is transmitted, in receive order per stream. Its DMA channels come and go
/// under the QSBR protocol (see [`crate::qsbr`]).
pub struct CopyWorker<'q, 'p, 's> {
    rules: Vec<Rule<'q, 'p>>,
    txqs: Vec<TxQueue<'q, 'p>>,
    stage: CopyStage<'p, AttachedChannel<'s>>,
    pool: &'p Mempool<'p>,
    stats: &'s LcoreStats,
    /// TSC cycles a DMA channel may hold copies without completing any before the worker gives
    /// up on it (surprise removal, hung engine): the copies are re-done by the CPU from their
    /// held sources and the lane is retired.
    dma_timeout_cycles: u64,
    /// Chooses the copybreak in `--copy auto`.
    tuner: Option<AutoTuner>,
    control: WorkerControl<'s, 'p>,
}

impl<'q, 'p, 's> CopyWorker<'q, 'p, 's> {
    /// A worker forwarding by `rules` (on `txqs`) through `stage` (one stream per rule, in
    /// order), taking
    /// copies from `pool`, counting into `stats`, giving up on a DMA channel that completes
    /// nothing for `dma_timeout_cycles`, tuned by `tuner` (`--copy auto`), and following the
    /// control thread through `control`. Its DMA channels come from `control` only.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rules: Vec<Rule<'q, 'p>>,
        txqs: Vec<TxQueue<'q, 'p>>,
        stage: CopyStage<'p, AttachedChannel<'s>>,
        pool: &'p Mempool<'p>,
        stats: &'s LcoreStats,
        dma_timeout_cycles: u64,
        tuner: Option<AutoTuner>,
        control: WorkerControl<'s, 'p>,
    ) -> Self {
        CopyWorker {
            rules,
            txqs,
            stage,
            pool,
            stats,
            dma_timeout_cycles,
            tuner,
            control,
        }
    }
}

impl CopyWorker<'_, '_, '_> {
    /// Forwards until `quit` is set, then drains: every packet received is transmitted or
    /// counted as dropped before this returns, and every lane is handed back. Never inlined,
    /// so that the compiled loop can be inspected (`apps/l2fwd/tests/fastpath_asm.rs`).
    #[inline(never)]
    pub fn run(mut self, quit: &AtomicBool) {
        let mut rx = Burst::new();
        let mut tx = Burst::new();
        let mut tsc_last = pmd::rdtsc();
        // Generation to adopt once the lanes it removed have drained.
        let mut to_adopt: Option<Generation> = None;
        // Channels this worker retired as stalled: not re-attached while still assigned. The
        // control thread unpublishes each (which clears it from here) and, once its engine has
        // completed everything, may publish it again: then it gets a fresh lane.
        let mut dead: Vec<ChannelId> = Vec::new();
        let mut copybreak_cmd = 0u32;
        self.adopt_assignment(&mut to_adopt, &mut dead, true);
        // Relaxed: `quit` carries no data; the worker only needs to see it eventually.
        while !quit.load(Ordering::Relaxed) {
            // Top of the loop: one acquire load of the slot (see `qsbr`).
            self.adopt_assignment(&mut to_adopt, &mut dead, false);
            // Relaxed: a setting, no data depends on it.
            let cb = self.control.copybreak.load(Ordering::Relaxed);
            if cb != copybreak_cmd {
                copybreak_cmd = cb;
                self.stage.set_copybreak(Copybreak::Bytes(cb as usize));
                self.tuner = None; // a copybreak set by hand overrides auto
            }
            let mut work = 0;
            let mut sent = 0;
            for (i, rule) in self.rules.iter_mut().enumerate() {
                let room = self.stage.room(i);
                let n = rule.rx.rx_burst_max(&mut rx, room);
                if n > 0 {
                    let port = rule.rx.port();
                    self.stats.ports[port.index()].rx.add(n as u64);
                    // Copies the CPU finished with nothing older waiting go out at once.
                    self.stage
                        .accept_into(i, &mut rx, &mut tx, self.pool, self.stats, port);
                    work += n;
                    if !tx.is_empty() {
                        sent += tx.len();
                        transmit(&mut self.txqs[rule.tx], &mut tx, self.stats);
                    }
                }
            }
            self.stage.submit();
            let mut completed = 0;
            if self.stage.engines() > 0 {
                // The end of the last iteration: the one rdtsc per iteration is taken below.
                // Stall deadlines are milliseconds; one iteration late does not matter.
                let now = tsc_last;
                completed = self.stage.poll(self.stats, now);
                // Per lane: a stalled lane is retired even while another lane completes.
                if self.stage.has_stalled(now, self.dma_timeout_cycles) {
                    self.retire_stalled(now, &mut dead);
                }
                if let Some(g) = to_adopt {
                    self.hand_back_drained();
                    if self.stage.draining() == 0 {
                        self.control.reader.adopt(g);
                        to_adopt = None;
                    }
                }
            } else if let Some(g) = to_adopt.take() {
                self.control.reader.adopt(g);
            }
            for (i, rule) in self.rules.iter().enumerate() {
                while self.stage.take_ready(i, &mut tx) > 0 {
                    sent += tx.len();
                    transmit(&mut self.txqs[rule.tx], &mut tx, self.stats);
                }
            }
            // This iteration's cycles: busy if it received, completed or sent anything.
            let now = pmd::rdtsc();
            let cycles = now.wrapping_sub(tsc_last);
            let busy = work > 0 || sent > 0 || completed > 0;
            self.stats.cycles.record(cycles, busy);
            self.control.gaps.record(cycles);
            if let Some(t) = self.tuner.as_mut() {
                if work > 0 || sent > 0 {
                    if let Some(cb) = t.record(sent as u64, cycles, now) {
                        self.stage.set_copybreak(cb);
                    }
                }
            }
            tsc_last = now;
        }
        self.drain(&mut dead);
    }

    /// Follows a new assignment: lanes no longer assigned start draining, newly assigned
    /// channels get a lane. Adoption waits until the draining lanes are empty.
    #[inline]
    fn adopt_assignment(
        &mut self,
        to_adopt: &mut Option<Generation>,
        dead: &mut Vec<ChannelId>,
        first: bool,
    ) {
        let (_, changed) = self.control.reader.poll();
        if !changed && !first {
            return;
        }
        *to_adopt = Some(self.reassign(dead));
    }

    /// Follows the assignment the last poll read; returns its generation.
    #[cold]
    fn reassign(&mut self, dead: &mut Vec<ChannelId>) -> Generation {
        // A copy: the lanes change below (hot-plug path, not per packet).
        let a = self.control.reader.assignment().clone();
        dead.retain(|&d| a.has(d));
        self.stage.drain_lanes(|id| id.is_some_and(|id| a.has(id)));
        let have: Vec<ChannelId> = self.stage.lane_ids().collect();
        for id in a.channels() {
            if !have.contains(&id) && !dead.contains(&id) {
                let Some(fault) = self.control.faults.get(id.dev() as usize) else {
                    continue;
                };
                if let Some(e) = AttachedChannel::attach(&a, id, fault) {
                    self.stage.add_lane(e, id);
                }
            }
        }
        a.generation
    }

    /// Hands drained lanes to the control thread.
    #[cold]
    fn hand_back_drained(&mut self) {
        for lane in self.stage.take_drained() {
            if let Some(id) = lane.id {
                self.control.retired.push(Retired {
                    channel: id,
                    drained: lane.drained,
                    recopied: lane.recopied,
                    stalled: false,
                    quarantine: lane.quarantine,
                });
            }
        }
    }

    /// Retires the lanes whose engines stopped completing (see `CopyStage::retire_stalled`)
    /// and reports them to the control thread, which takes the channels away until their
    /// engines complete again (a stall is not a removal: a descheduled software engine comes
    /// back).
    #[cold]
    fn retire_stalled(&mut self, now: u64, dead: &mut Vec<ChannelId>) {
        let ports: Vec<PortId> = self.rules.iter().map(|r| r.rx.port()).collect();
        let lanes =
            self.stage
                .retire_stalled(now, self.dma_timeout_cycles, self.pool, self.stats, &|s| {
                    ports[s]
                });
        for lane in lanes {
            let Some(id) = lane.id else { continue };
            dead.push(id);
            self.control.retired.push(Retired {
                channel: id,
                drained: lane.drained,
                recopied: lane.recopied,
                stalled: true,
                // Each lane's own buffers: freed once its own engine is stopped.
                quarantine: lane.quarantine,
            });
        }
    }

    /// After `quit`: finishes every packet held, then hands every lane back and goes offline.
    fn drain(mut self, dead: &mut Vec<ChannelId>) {
        let mut tx = Burst::new();
        while self.stage.held() > 0 {
            self.stage.submit();
            let now = pmd::rdtsc();
            self.stage.poll(self.stats, now);
            if self.stage.has_stalled(now, self.dma_timeout_cycles) {
                self.retire_stalled(now, dead);
            }
            for (i, rule) in self.rules.iter().enumerate() {
                while self.stage.take_ready(i, &mut tx) > 0 {
                    transmit(&mut self.txqs[rule.tx], &mut tx, self.stats);
                }
            }
        }
        self.stage.drain_lanes(|_| false);
        self.hand_back_drained();
        // Offline: quiescent for good; the control thread may now stop every device.
        self.control.reader.offline();
    }
}
