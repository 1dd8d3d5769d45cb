//! Port masks and l2fwd's port pairing (which lcore polls which queue: [`crate::placement`]).

use pmd::PortId;
use std::fmt;

/// Most ports the data plane handles (bits of a 64-bit port mask).
pub const MAX_PORTS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMaskError(pub String);

impl fmt::Display for PortMaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PortMaskError {}

/// Parses a port mask as DPDK l2fwd does: hexadecimal, with or without `0x`. Zero is an error.
pub fn parse_portmask(s: &str) -> Result<u64, PortMaskError> {
    let t = s.trim();
    let digits = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if digits.is_empty() {
        return Err(PortMaskError(format!("invalid portmask {s:?}: empty")));
    }
    let mask = u64::from_str_radix(digits, 16)
        .map_err(|_| PortMaskError(format!("invalid portmask {s:?}: not a hexadecimal mask")))?;
    if mask == 0 {
        return Err(PortMaskError(format!(
            "invalid portmask {s:?}: no port enabled"
        )));
    }
    Ok(mask)
}

/// The enabled ports of `mask`, checked against the `nb_ports` that exist.
pub fn enabled_ports(mask: u64, nb_ports: u16) -> Result<Vec<PortId>, PortMaskError> {
    let ports: Vec<PortId> = (0..MAX_PORTS as u16)
        .filter(|p| mask & (1u64 << p) != 0)
        .map(PortId::new)
        .collect();
    if let Some(&bad) = ports.iter().find(|p| p.get() >= nb_ports) {
        return Err(PortMaskError(format!(
            "portmask {mask:#x} names port {bad}, but only {nb_ports} port(s) exist"
        )));
    }
    Ok(ports)
}

/// l2fwd's pairing: consecutive enabled ports forward to each other (first<->second,
/// third<->fourth, ...); with an odd count, the last one forwards to itself.
/// Returns `(rx_port, tx_port)` for every enabled port, in port order.
pub fn pair_ports(enabled: &[PortId]) -> Vec<(PortId, PortId)> {
    let mut out = Vec::with_capacity(enabled.len());
    for pair in enabled.chunks(2) {
        match *pair {
            [a, b] => {
                out.push((a, b));
                out.push((b, a));
            }
            [a] => out.push((a, a)),
            _ => unreachable!("chunks(2) yields one or two ports"),
        }
    }
    out
}

/// Parses DPDK l2fwd's `--portmap "(0,1)(2,3)"`: port pairs that forward to each other.
pub fn parse_portmap(s: &str) -> Result<Vec<(PortId, PortId)>, PortMaskError> {
    let bad = |why: &str| PortMaskError(format!("invalid portmap {s:?}: {why}"));
    let mut pairs = Vec::new();
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad("empty (expected pairs like (0,1)(2,3))"));
    }
    while !rest.is_empty() {
        let inner = rest
            .strip_prefix('(')
            .and_then(|r| r.split_once(')'))
            .ok_or_else(|| bad("expected pairs like (0,1)(2,3)"))?;
        let (pair, after) = inner;
        let (a, b) = pair
            .split_once(',')
            .ok_or_else(|| bad("a pair is two ports, as (0,1)"))?;
        let port = |t: &str| {
            t.trim()
                .parse::<u16>()
                .ok()
                .filter(|&p| (p as usize) < MAX_PORTS)
                .map(PortId::new)
                .ok_or_else(|| {
                    bad(&format!(
                        "{:?} is no port number below {MAX_PORTS}",
                        t.trim()
                    ))
                })
        };
        pairs.push((port(a)?, port(b)?));
        rest = after.trim_start();
    }
    Ok(pairs)
}

/// The forwarding of a `--portmap`, checked as DPDK's l2fwd checks it: every port once, and
/// exactly the enabled ports. Returns `(rx_port, tx_port)` for every enabled port, in port
/// order, as [`pair_ports`] does.
pub fn portmap_pairs(
    portmap: &[(PortId, PortId)],
    enabled: &[PortId],
) -> Result<Vec<(PortId, PortId)>, PortMaskError> {
    // Bit n: port n is in a pair (every port of a portmap is below MAX_PORTS).
    let bit = |p: PortId| 1u64 << p.get();
    let mut used = 0u64;
    for &(a, b) in portmap {
        for p in [a, b] {
            if used & bit(p) != 0 {
                return Err(PortMaskError(format!(
                    "portmap uses port {p} twice (each port is in one pair)"
                )));
            }
            used |= bit(p);
            if !enabled.contains(&p) {
                return Err(PortMaskError(format!(
                    "portmap names port {p}, which the portmask does not enable"
                )));
            }
        }
    }
    if let Some(p) = enabled.iter().find(|&&p| used & bit(p) == 0) {
        return Err(PortMaskError(format!(
            "port {p} is enabled but in no portmap pair"
        )));
    }
    let mut out: Vec<(PortId, PortId)> = portmap
        .iter()
        .flat_map(|&(a, b)| [(a, b), (b, a)])
        .collect();
    out.sort_unstable();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ports: &[u16]) -> Vec<PortId> {
        ports.iter().copied().map(PortId::new).collect()
    }

    fn pairs(pairs: &[(u16, u16)]) -> Vec<(PortId, PortId)> {
        pairs
            .iter()
            .map(|&(a, b)| (PortId::new(a), PortId::new(b)))
            .collect()
    }

    #[test]
    fn portmask_forms() {
        assert_eq!(parse_portmask("0x3").unwrap(), 3);
        assert_eq!(parse_portmask("3").unwrap(), 3);
        assert_eq!(parse_portmask("ff").unwrap(), 0xff);
        assert_eq!(parse_portmask(" 0XF0 ").unwrap(), 0xf0);
    }

    #[test]
    fn portmask_errors() {
        for bad in [
            "",
            "0x",
            "0",
            "0x0",
            "zz",
            "0x1g",
            "-1",
            "1ffffffffffffffff",
        ] {
            let e = parse_portmask(bad).unwrap_err();
            assert!(e.0.contains("invalid portmask"), "{bad}: {e}");
        }
    }

    #[test]
    fn enabled_checks_existence() {
        assert_eq!(enabled_ports(0x5, 3).unwrap(), ids(&[0, 2]));
        let e = enabled_ports(0x4, 2).unwrap_err();
        assert!(e.0.contains("port 2"), "{e}");
        assert!(enabled_ports(0x1, 0).unwrap_err().0.contains("0 port"));
    }

    #[test]
    fn pairing_as_dpdk_l2fwd() {
        assert_eq!(pair_ports(&ids(&[0, 1])), pairs(&[(0, 1), (1, 0)]));
        assert_eq!(
            pair_ports(&ids(&[0, 1, 2, 3])),
            pairs(&[(0, 1), (1, 0), (2, 3), (3, 2)])
        );
        // Odd count: the last forwards to itself.
        assert_eq!(
            pair_ports(&ids(&[0, 1, 2])),
            pairs(&[(0, 1), (1, 0), (2, 2)])
        );
        assert_eq!(pair_ports(&ids(&[5])), pairs(&[(5, 5)]));
        // Pairs follow the enabled ports, not the port numbers.
        assert_eq!(pair_ports(&ids(&[0, 2])), pairs(&[(0, 2), (2, 0)]));
    }

    #[test]
    fn every_tx_port_used_once() {
        for n in 1..9u16 {
            let ports: Vec<PortId> = (0..n).map(PortId::new).collect();
            let pairs = pair_ports(&ports);
            let mut tx: Vec<PortId> = pairs.iter().map(|p| p.1).collect();
            tx.sort();
            assert_eq!(tx, ports, "n={n}");
        }
    }

    #[test]
    fn portmap_as_dpdk_l2fwd() {
        assert_eq!(
            parse_portmap("(0,1)(2,3)").unwrap(),
            pairs(&[(0, 1), (2, 3)])
        );
        assert_eq!(
            parse_portmap(" (0, 3) (1,2) ").unwrap(),
            pairs(&[(0, 3), (1, 2)])
        );
        for bad in ["", "(0,1", "0,1", "(0)", "(0,x)", "(0,64)", "(0,1)x"] {
            let e = parse_portmap(bad).unwrap_err();
            assert!(e.0.starts_with("invalid portmap"), "{bad}: {e}");
        }
        let map = parse_portmap("(0,3)(1,2)").unwrap();
        assert_eq!(
            portmap_pairs(&map, &ids(&[0, 1, 2, 3])).unwrap(),
            pairs(&[(0, 3), (1, 2), (2, 1), (3, 0)])
        );
        let e = portmap_pairs(&pairs(&[(0, 1), (1, 2)]), &ids(&[0, 1, 2])).unwrap_err();
        assert!(e.0.contains("port 1 twice"), "{e}");
        let e = portmap_pairs(&pairs(&[(0, 1)]), &ids(&[0, 1, 2])).unwrap_err();
        assert!(
            e.0.contains("port 2 is enabled but in no portmap pair"),
            "{e}"
        );
        let e = portmap_pairs(&pairs(&[(0, 5)]), &ids(&[0])).unwrap_err();
        assert!(
            e.0.contains("port 5, which the portmask does not enable"),
            "{e}"
        );
    }
}
