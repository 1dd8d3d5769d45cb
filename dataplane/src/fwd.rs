//! The l2fwd worker loop.
//!
//! One worker runs pinned on one lcore and owns the RX queue of each port it was dealt and the
//! TX queue of that port's peer. Per iteration: receive a burst from each owned port, rewrite
//! the MACs (unless disabled), transmit it out of the peer port, count. Nothing on this path
//! allocates, locks, makes a system call, or writes a cache line another lcore writes.

use crate::stats::{DropReason, LcoreStats};
use pmd::{Burst, MacAddr, RxQueue, TxQueue};
use std::sync::atomic::{AtomicBool, Ordering};

/// Ethernet header: destination MAC, source MAC, EtherType.
const ETHER_HDR_LEN: usize = 14;

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
