//! The l2fwd worker loop.
//!
//! One worker runs pinned on one lcore and owns the RX queue of each port it was dealt and the
//! TX queue of that port's peer. Per iteration: receive a burst from each owned port, rewrite
//! the MACs (unless disabled), transmit it out of the peer port, count. Nothing on this path
//! allocates, locks, makes a system call, or writes a cache line another lcore writes.

use crate::copy::{CopyStage, DmaEngine};
use crate::stats::{DropReason, LcoreStats};
use crate::tuner::AutoTuner;
use pmd::{Burst, MacAddr, Mbuf, Mempool, RxQueue, TxQueue};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::copy::ETHER_HDR_LEN;

/// How often the TX queue is retried for the rest of a burst before the rest is dropped.
const TX_RETRIES: u32 = 16;

/// One (RX port -> TX port) forwarding rule owned by a worker.
pub struct Rule<'p> {
    pub rx: RxQueue<'p>,
    pub tx: TxQueue<'p>,
    /// The TX port's own MAC: the new source address.
    pub tx_mac: MacAddr,
}

impl Rule<'_> {
    /// l2fwd's destination MAC for packets leaving `tx_port`: 02:00:00:00:00:<tx_port>.
    pub fn dst_mac(tx_port: u16) -> MacAddr {
        MacAddr([0x02, 0, 0, 0, 0, tx_port as u8])
    }
}

/// Rewrites the Ethernet addresses of a frame as DPDK l2fwd does. The frame must hold at least
/// the 12 address bytes.
#[inline(always)]
pub fn rewrite_macs(frame: &mut [u8], dst: &MacAddr, src: &MacAddr) {
    frame[0..6].copy_from_slice(&dst.0);
    frame[6..12].copy_from_slice(&src.0);
}

/// A worker lcore's state.
pub struct Worker<'p, 's> {
    pub rules: Vec<Rule<'p>>,
    pub mac_updating: bool,
    pub stats: &'s LcoreStats,
}

impl Worker<'_, '_> {
    /// Forwards until `quit` is set. Every packet received is transmitted or counted as dropped
    /// before this returns: no packet is left in flight.
    pub fn run(&mut self, quit: &AtomicBool) {
        let mut burst = Burst::new();
        let dst_macs: Vec<MacAddr> = self
            .rules
            .iter()
            .map(|r| Rule::dst_mac(r.tx.port()))
            .collect();
        // Relaxed: `quit` carries no data; the worker only needs to see it eventually.
        while !quit.load(Ordering::Relaxed) {
            for (rule, dst) in self.rules.iter_mut().zip(&dst_macs) {
                let n = rule.rx.rx_burst(&mut burst);
                if n == 0 {
                    continue;
                }
                let rx_ctr = &self.stats.ports[rule.rx.port() as usize];
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
                transmit(&mut rule.tx, &mut burst, self.stats);
            }
        }
    }
}

/// Removes the frames too short to carry an Ethernet header, counting them (cold path).
#[cold]
fn drop_runts(burst: &mut Burst, ctr: &crate::stats::PortCounters, runts: usize) {
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
pub fn transmit(tx: &mut TxQueue<'_>, burst: &mut Burst, stats: &LcoreStats) {
    let ctr = &stats.ports[tx.port() as usize];
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

/// A worker with a copy stage (`--copy cpu|dma|auto`): every packet is copied into a fresh
/// mbuf, and the copy is transmitted, in receive order per stream.
pub struct CopyWorker<'p, 's, E> {
    pub rules: Vec<Rule<'p>>,
    pub stage: CopyStage<E>,
    pub pool: &'s Mempool<'s>,
    pub stats: &'s LcoreStats,
    /// TSC cycles a DMA channel may hold copies without completing any before the worker gives
    /// up on it (surprise removal, hung engine): the copies are re-done by the CPU from their
    /// held sources and the engine is retired.
    pub dma_timeout_cycles: u64,
    /// Chooses the copybreak in `--copy auto`.
    pub tuner: Option<AutoTuner>,
}

/// What a copy worker hands back when it stops.
pub struct CopyWorkerExit<E> {
    /// The DMA engines still healthy, with nothing outstanding on them.
    pub engines: Vec<E>,
    /// The engines that stopped completing and were retired.
    pub stalled: Vec<E>,
    /// Destination buffers of copies abandoned on a stalled engine: free them only after the
    /// device is stopped.
    pub quarantine: Vec<Mbuf>,
}

impl<E: DmaEngine> CopyWorker<'_, '_, E> {
    /// Forwards until `quit` is set, then drains: every packet received is transmitted or
    /// counted as dropped before this returns.
    pub fn run(mut self, quit: &AtomicBool) -> CopyWorkerExit<E> {
        let mut rx = Burst::new();
        let mut tx = Burst::new();
        let mut tsc_last = pmd::rdtsc();
        let mut quarantine = Vec::new();
        let mut retired: Vec<E> = Vec::new();
        // Relaxed: `quit` carries no data; the worker only needs to see it eventually.
        while !quit.load(Ordering::Relaxed) {
            let mut work = 0;
            for (i, rule) in self.rules.iter_mut().enumerate() {
                let room = self.stage.room(i);
                let n = rule.rx.rx_burst_max(&mut rx, room);
                if n > 0 {
                    let port = rule.rx.port();
                    self.stats.ports[port as usize].rx.add(n as u64);
                    self.stage.accept(i, &mut rx, self.pool, self.stats, port);
                    work += n;
                }
            }
            self.stage.submit();
            if self.stage.engines() > 0 {
                let now = pmd::rdtsc();
                let completed = self.stage.poll(self.stats, now);
                if completed == 0 && self.stage.in_dma() > 0 {
                    retired.extend(self.retire_stalled(now, &mut quarantine));
                }
            }
            let mut sent = 0;
            for (i, rule) in self.rules.iter_mut().enumerate() {
                while self.stage.take_ready(i, &mut tx) > 0 {
                    sent += tx.len();
                    transmit(&mut rule.tx, &mut tx, self.stats);
                }
            }
            if let Some(t) = self.tuner.as_mut() {
                let now = pmd::rdtsc();
                if work > 0 || sent > 0 {
                    if let Some(cb) = t.record(sent as u64, now - tsc_last, now) {
                        self.stage.set_copybreak(cb);
                    }
                }
                tsc_last = now;
            }
        }
        self.drain(quarantine, retired)
    }

    /// Retires the lanes whose engines stopped completing (see `CopyStage::retire_stalled`).
    #[cold]
    fn retire_stalled(&mut self, now: u64, quarantine: &mut Vec<Mbuf>) -> Vec<E> {
        let ports: Vec<u16> = self.rules.iter().map(|r| r.rx.port()).collect();
        self.stage.retire_stalled(
            now,
            self.dma_timeout_cycles,
            self.pool,
            self.stats,
            &|s| ports[s],
            quarantine,
        )
    }

    fn drain(mut self, mut quarantine: Vec<Mbuf>, mut retired: Vec<E>) -> CopyWorkerExit<E> {
        let mut tx = Burst::new();
        while self.stage.held() > 0 {
            self.stage.submit();
            let now = pmd::rdtsc();
            if self.stage.poll(self.stats, now) == 0 && self.stage.in_dma() > 0 {
                retired.extend(self.retire_stalled(now, &mut quarantine));
            }
            for (i, rule) in self.rules.iter_mut().enumerate() {
                while self.stage.take_ready(i, &mut tx) > 0 {
                    transmit(&mut rule.tx, &mut tx, self.stats);
                }
            }
        }
        CopyWorkerExit {
            engines: self.stage.take_engines(),
            stalled: retired,
            quarantine,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l2fwd_macs() {
        let mut f = [0xffu8; 20];
        let src = MacAddr([1, 2, 3, 4, 5, 6]);
        rewrite_macs(&mut f, &Rule::dst_mac(3), &src);
        assert_eq!(&f[0..6], &[2, 0, 0, 0, 0, 3]);
        assert_eq!(&f[6..12], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(&f[12..], &[0xff; 8]);
    }
}
