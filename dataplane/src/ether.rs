//! The Ethernet header as l2fwd treats it: 14 bytes (destination MAC, source MAC, EtherType),
//! whose two addresses are rewritten on the way out.

use pmd::{MacAddr, PortId};

/// Ethernet header length: shorter frames are runts.
pub const ETHER_HDR_LEN: usize = 14;

/// l2fwd's destination MAC for packets leaving `tx_port`: 02:00:00:00:00:<tx_port>.
pub fn l2fwd_dst_mac(tx_port: PortId) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, tx_port.get() as u8])
}

/// Rewrites the Ethernet addresses of a frame as DPDK l2fwd does. The frame must hold at least
/// the 12 address bytes.
#[inline(always)]
pub fn rewrite_macs(frame: &mut [u8], dst: &MacAddr, src: &MacAddr) {
    frame[0..6].copy_from_slice(&dst.0);
    frame[6..12].copy_from_slice(&src.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l2fwd_macs() {
        let mut f = [0xffu8; 20];
        let src = MacAddr([1, 2, 3, 4, 5, 6]);
        rewrite_macs(&mut f, &l2fwd_dst_mac(PortId::new(3)), &src);
        assert_eq!(&f[0..6], &[2, 0, 0, 0, 0, 3]);
        assert_eq!(&f[6..12], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(&f[12..], &[0xff; 8]);
    }
}
