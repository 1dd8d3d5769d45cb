//! Which lcore polls which RX queue, and which TX queue it sends on: the queue plan of a run.
//!
//! Every lcore the EAL was given forwards, the main lcore included, as in DPDK's l2fwd and
//! l3fwd. The unit of work is an RX queue: `(port, queue)`. Each port may have several RX
//! queues (`--rxq`); the device spreads flows over them (RSS where it hashes), so keeping the
//! order of each queue keeps the order of each flow. The queues are dealt to the lcores
//! round-robin (or `-q` at a time, as DPDK l2fwd deals ports, or exactly as a `--queue-map`
//! of `(port,queue,lcore)` triples says, as l3fwd's `--config` does).
//!
//! A packet received on port P leaves by P's peer (l2fwd's pairing). Each lcore gets its own TX
//! queue on every port it transmits to, so no queue is shared between lcores and none needs a
//! lock: the k-th lcore (in lcore order) that transmits on a port uses its TX queue k.
//!
//! The defaults give every lcore work where the devices allow it: a port gets
//! `ceil(lcores / ports)` RX queues, capped at what the device reports it has. An lcore left
//! without a queue has nothing to do and is not launched (DPDK l2fwd says the same).

use crate::ports::{PortMaskError, MAX_PORTS};
use pmd::{LcoreId, PortId, QueueId};

/// One RX queue an lcore polls, and the TX queue its packets leave by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueRule {
    pub rx_port: PortId,
    pub rx_queue: QueueId,
    pub tx_port: PortId,
    pub tx_queue: QueueId,
}

/// What a device allows, as it reports it ([`pmd::PortInfo`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortLimits {
    pub port: PortId,
    pub name: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
}

/// The options that shape the plan (testpmd's `--rxq`/`--txq`, DPDK l2fwd's `-q`, a
/// `--queue-map`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueOptions {
    /// RX queues per port; None: enough for every lcore to get work.
    pub rxq: Option<u16>,
    /// TX queues per port; None: one per lcore transmitting on the port.
    pub txq: Option<u16>,
    /// RX queues each lcore takes in turn (DPDK l2fwd's `-q`, which counts ports: with one
    /// queue per port, the same thing).
    pub per_lcore: Option<usize>,
    /// Exactly which lcore polls which RX queue: `(port, queue, lcore)`.
    pub queue_map: Option<Vec<(PortId, QueueId, LcoreId)>>,
}

/// The queue plan of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Every lcore of the EAL, in order, with the queues it polls (empty: nothing to do).
    pub lcores: Vec<(LcoreId, Vec<QueueRule>)>,
    /// Per enabled port, in the order of the pairs: `(port, rx queues, tx queues)` to
    /// configure.
    pub queues: Vec<(PortId, u16, u16)>,
}

fn err(s: String) -> PortMaskError {
    PortMaskError(s)
}

/// Parses a `--queue-map`: `(port,queue,lcore)` triples, as l3fwd's `--config`
/// (`"(0,0,1),(0,1,2)"`; the commas between triples are optional).
pub fn parse_queue_map(s: &str) -> Result<Vec<(PortId, QueueId, LcoreId)>, PortMaskError> {
    let bad = |why: &str| err(format!("invalid queue map {s:?}: {why}"));
    let mut out = Vec::new();
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad("empty (expected triples like (0,0,1),(0,1,2))"));
    }
    while !rest.is_empty() {
        let (inner, after) = rest
            .strip_prefix('(')
            .and_then(|r| r.split_once(')'))
            .ok_or_else(|| bad("expected (port,queue,lcore) triples like (0,0,1),(0,1,2)"))?;
        let fields: Vec<&str> = inner.split(',').map(str::trim).collect();
        let [p, q, l] = fields[..] else {
            return Err(bad(&format!(
                "({inner}) is not three numbers (port,queue,lcore)"
            )));
        };
        let num = |t: &str, what: &str, below: u32| {
            t.parse::<u32>()
                .ok()
                .filter(|&v| v < below)
                .ok_or_else(|| bad(&format!("{t:?} is no {what} number below {below}")))
        };
        let port = num(p, "port", MAX_PORTS as u32)?;
        let queue = num(q, "queue", u32::from(pmd::Port::MAX_QUEUES))?;
        let lcore = num(l, "lcore", LcoreId::LIMIT)?;
        out.push((
            PortId::new(port as u16),
            QueueId::new(queue as u16),
            LcoreId::new(lcore),
        ));
        rest = after.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(out)
}

/// Plans the queues: `pairs` are `(rx port, tx port)` for every enabled port (l2fwd's pairing
/// or `--portmap`), `lcores` every lcore of the EAL in order, `limits` what each enabled port
/// allows. Fails, saying why, when the options do not fit the ports and lcores.
pub fn place(
    pairs: &[(PortId, PortId)],
    lcores: &[LcoreId],
    limits: &[PortLimits],
    opts: &QueueOptions,
) -> Result<Placement, PortMaskError> {
    let limit = |p: PortId| {
        limits.iter().find(|l| l.port == p).ok_or_else(|| {
            err(format!(
                "port {p} is enabled but its device limits are unknown"
            ))
        })
    };
    // (rx port, rx queue, tx port, lcore index)
    let (units, rxq) = match &opts.queue_map {
        Some(map) => mapped_units(pairs, lcores, map, opts)?,
        None => dealt_units(pairs, lcores, opts, &limit)?,
    };
    for (i, &(p, _)) in pairs.iter().enumerate() {
        let l = limit(p)?;
        if rxq[i] > l.max_rx_queues {
            return Err(err(format!(
                "port {p} ({}) has at most {} RX queue(s); {} requested",
                l.name, l.max_rx_queues, rxq[i]
            )));
        }
    }
    // TX: the k-th lcore transmitting on a port takes its queue k.
    let mut tx_count = vec![0u16; pairs.len()];
    let mut plan: Vec<(LcoreId, Vec<QueueRule>)> =
        lcores.iter().map(|&l| (l, Vec::new())).collect();
    for (li, (_, rules)) in plan.iter_mut().enumerate() {
        let mut mine: Vec<(PortId, QueueId)> = Vec::new();
        for &(rx_port, rx_queue, tx_port, _) in units.iter().filter(|u| u.3 == li) {
            let tx_queue = match mine.iter().find(|(p, _)| *p == tx_port) {
                Some(&(_, q)) => q,
                None => {
                    let pi = pairs
                        .iter()
                        .position(|&(rx, _)| rx == tx_port)
                        .ok_or_else(|| err(format!("port {tx_port} is not enabled")))?;
                    let q = QueueId::new(tx_count[pi]);
                    tx_count[pi] += 1;
                    mine.push((tx_port, q));
                    q
                }
            };
            rules.push(QueueRule {
                rx_port,
                rx_queue,
                tx_port,
                tx_queue,
            });
        }
    }
    let mut queues = Vec::with_capacity(pairs.len());
    for (i, &(p, _)) in pairs.iter().enumerate() {
        let l = limit(p)?;
        let needed = tx_count[i].max(1);
        let txq = match opts.txq {
            Some(n) if n < needed => {
                return Err(err(format!(
                    "--txq {n}: {needed} lcores transmit on port {p} ({}), and each needs a \
                     TX queue of its own",
                    l.name
                )))
            }
            Some(n) => n,
            None => needed,
        };
        if txq > l.max_tx_queues {
            return Err(err(format!(
                "port {p} ({}) has at most {} TX queue(s), but {txq} are needed ({} lcores \
                 transmit on it, each on a queue of its own): use fewer lcores, or -q or \
                 --queue-map to put the traffic for it on fewer lcores",
                l.name, l.max_tx_queues, tx_count[i]
            )));
        }
        queues.push((p, rxq[i], txq));
    }
    Ok(Placement {
        lcores: plan,
        queues,
    })
}

type Units = (Vec<(PortId, QueueId, PortId, usize)>, Vec<u16>);

/// The units of a `--queue-map`, checked: enabled ports, EAL lcores, each queue once, each
/// port's queues numbered from 0, every enabled port polled.
fn mapped_units(
    pairs: &[(PortId, PortId)],
    lcores: &[LcoreId],
    map: &[(PortId, QueueId, LcoreId)],
    opts: &QueueOptions,
) -> Result<Units, PortMaskError> {
    if opts.rxq.is_some() {
        return Err(err(
            "--rxq and --queue-map both set the RX queues: give one of them".into(),
        ));
    }
    if opts.per_lcore.is_some() {
        return Err(err(
            "-q and --queue-map both place RX queues on lcores: give one of them".into(),
        ));
    }
    let mut units = Vec::with_capacity(map.len());
    for (k, &(p, q, l)) in map.iter().enumerate() {
        let tx = pairs
            .iter()
            .find(|&&(rx, _)| rx == p)
            .map(|&(_, tx)| tx)
            .ok_or_else(|| {
                err(format!(
                    "--queue-map names port {p}, which the portmask does not enable"
                ))
            })?;
        let li = lcores.iter().position(|&x| x == l).ok_or_else(|| {
            err(format!(
                "--queue-map names lcore {l}, which is not one of the EAL's lcores (-l)"
            ))
        })?;
        if map[..k].iter().any(|&(p2, q2, _)| (p2, q2) == (p, q)) {
            return Err(err(format!(
                "--queue-map places port {p} queue {q} twice (each RX queue has one lcore)"
            )));
        }
        units.push((p, q, tx, li));
    }
    let mut rxq = Vec::with_capacity(pairs.len());
    for &(p, _) in pairs {
        let qs: Vec<u16> = map.iter().filter(|u| u.0 == p).map(|u| u.1.get()).collect();
        let n = qs.len() as u16;
        if n == 0 {
            return Err(err(format!(
                "port {p} is enabled but --queue-map polls none of its RX queues"
            )));
        }
        if let Some(missing) = (0..n).find(|q| !qs.contains(q)) {
            return Err(err(format!(
                "--queue-map gives port {p} {n} queue(s) but not queue {missing} (a port's \
                 RX queues are numbered 0, 1, ...)"
            )));
        }
        rxq.push(n);
    }
    Ok((units, rxq))
}

/// The units dealt from `--rxq` (or its default) round-robin, or `-q` at a time.
fn dealt_units<'l>(
    pairs: &[(PortId, PortId)],
    lcores: &[LcoreId],
    opts: &QueueOptions,
    limit: &dyn Fn(PortId) -> Result<&'l PortLimits, PortMaskError>,
) -> Result<Units, PortMaskError> {
    let nb_lcores = lcores.len().max(1);
    let mut rxq = Vec::with_capacity(pairs.len());
    for &(p, _) in pairs {
        let n = match opts.rxq {
            Some(n) => n,
            // DPDK l2fwd's -q counts ports: one queue each.
            None if opts.per_lcore.is_some() => 1,
            None => {
                let want = nb_lcores.div_ceil(pairs.len().max(1));
                (want.min(usize::from(u16::MAX)) as u16).clamp(1, limit(p)?.max_rx_queues.max(1))
            }
        };
        rxq.push(n.max(1));
    }
    // Queue-major: every port's queue 0 first, so the ports spread over the lcores before
    // their second queues do.
    let mut order = Vec::new();
    for q in 0..rxq.iter().copied().max().unwrap_or(1) {
        for (i, &(rx, tx)) in pairs.iter().enumerate() {
            if q < rxq[i] {
                order.push((rx, QueueId::new(q), tx));
            }
        }
    }
    let units = match opts.per_lcore {
        Some(k) => {
            let k = k.max(1);
            let needed = order.len().div_ceil(k);
            if needed > lcores.len() {
                return Err(err(format!(
                    "{} RX queue(s) at -q {k} per lcore need {needed} forwarding lcores, but \
                     there are {}",
                    order.len(),
                    lcores.len()
                )));
            }
            order
                .into_iter()
                .enumerate()
                .map(|(j, (rx, q, tx))| (rx, q, tx, j / k))
                .collect()
        }
        None => order
            .into_iter()
            .enumerate()
            .map(|(j, (rx, q, tx))| (rx, q, tx, j % nb_lcores))
            .collect(),
    };
    Ok((units, rxq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::pair_ports;

    fn ids(ports: &[u16]) -> Vec<PortId> {
        ports.iter().copied().map(PortId::new).collect()
    }

    fn lc(l: &[u32]) -> Vec<LcoreId> {
        l.iter().copied().map(LcoreId::new).collect()
    }

    fn limits(ports: &[u16], rx: u16, tx: u16) -> Vec<PortLimits> {
        ports
            .iter()
            .map(|&p| PortLimits {
                port: PortId::new(p),
                name: format!("net_null{p}"),
                max_rx_queues: rx,
                max_tx_queues: tx,
            })
            .collect()
    }

    /// `(rx port, rx queue, tx port, tx queue)` of each lcore.
    fn rules(p: &Placement) -> Vec<Vec<(u16, u16, u16, u16)>> {
        p.lcores
            .iter()
            .map(|(_, r)| {
                r.iter()
                    .map(|r| {
                        (
                            r.rx_port.get(),
                            r.rx_queue.get(),
                            r.tx_port.get(),
                            r.tx_queue.get(),
                        )
                    })
                    .collect()
            })
            .collect()
    }

    /// No two lcores share a TX queue, and every (rx port, queue) is polled exactly once.
    fn check_exclusive(p: &Placement) {
        let mut tx = Vec::new();
        let mut rx = Vec::new();
        for (_, rs) in &p.lcores {
            let mut mine = Vec::new();
            for r in rs {
                if !mine.contains(&(r.tx_port, r.tx_queue)) {
                    mine.push((r.tx_port, r.tx_queue));
                }
                assert!(!rx.contains(&(r.rx_port, r.rx_queue)), "{p:?}");
                rx.push((r.rx_port, r.rx_queue));
            }
            for m in mine {
                assert!(!tx.contains(&m), "TX queue {m:?} shared: {p:?}");
                tx.push(m);
            }
        }
        for &(port, nrx, ntx) in &p.queues {
            for q in 0..nrx {
                assert!(rx.contains(&(port, QueueId::new(q))), "{p:?}");
            }
            assert!(tx.iter().all(|&(tp, tq)| tp != port || tq.get() < ntx));
        }
    }

    #[test]
    fn every_lcore_gets_a_port_with_one_queue_each() {
        let pairs = pair_ports(&ids(&[0, 1]));
        let p = place(
            &pairs,
            &lc(&[0, 1]),
            &limits(&[0, 1], 8, 8),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(rules(&p), [vec![(0, 0, 1, 0)], vec![(1, 0, 0, 0)]]);
        assert_eq!(p.queues, [(PortId::new(0), 1, 1), (PortId::new(1), 1, 1)]);
        check_exclusive(&p);
    }

    #[test]
    fn one_port_two_lcores_gets_two_queues_and_a_tx_queue_each() {
        let pairs = pair_ports(&ids(&[0]));
        let p = place(
            &pairs,
            &lc(&[0, 1]),
            &limits(&[0], 8, 8),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(rules(&p), [vec![(0, 0, 0, 0)], vec![(0, 1, 0, 1)]]);
        assert_eq!(p.queues, [(PortId::new(0), 2, 2)]);
        check_exclusive(&p);
    }

    #[test]
    fn explicit_rxq_deals_queue_major_and_keeps_one_tx_queue_per_lcore_and_port() {
        let pairs = pair_ports(&ids(&[0, 1]));
        let opts = QueueOptions {
            rxq: Some(2),
            ..Default::default()
        };
        let p = place(&pairs, &lc(&[0, 1]), &limits(&[0, 1], 8, 8), &opts).unwrap();
        assert_eq!(
            rules(&p),
            [
                vec![(0, 0, 1, 0), (0, 1, 1, 0)],
                vec![(1, 0, 0, 0), (1, 1, 0, 0)]
            ]
        );
        check_exclusive(&p);
        let p = place(&pairs, &lc(&[0, 1, 2]), &limits(&[0, 1], 8, 8), &opts).unwrap();
        assert_eq!(
            rules(&p),
            [
                vec![(0, 0, 1, 0), (1, 1, 0, 0)],
                vec![(1, 0, 0, 1)],
                vec![(0, 1, 1, 1)]
            ]
        );
        assert_eq!(p.queues, [(PortId::new(0), 2, 2), (PortId::new(1), 2, 2)]);
        check_exclusive(&p);
    }

    #[test]
    fn default_queues_are_capped_by_the_device_and_leave_extra_lcores_idle() {
        let pairs = pair_ports(&ids(&[0, 1]));
        let p = place(
            &pairs,
            &lc(&[0, 1, 2]),
            &limits(&[0, 1], 1, 1),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(rules(&p), [vec![(0, 0, 1, 0)], vec![(1, 0, 0, 0)], vec![]]);
        check_exclusive(&p);
    }

    #[test]
    fn ports_per_lcore_as_dpdk_l2fwd() {
        let pairs = pair_ports(&ids(&[0, 1, 2, 3]));
        let l = limits(&[0, 1, 2, 3], 8, 8);
        let q = |k| QueueOptions {
            per_lcore: Some(k),
            ..Default::default()
        };
        let p = place(&pairs, &lc(&[0, 1]), &l, &q(2)).unwrap();
        assert_eq!(
            rules(&p),
            [
                vec![(0, 0, 1, 0), (1, 0, 0, 0)],
                vec![(2, 0, 3, 0), (3, 0, 2, 0)]
            ]
        );
        let p = place(&pairs, &lc(&[0, 1, 2]), &l, &q(4)).unwrap();
        assert_eq!(
            p.lcores.iter().map(|x| x.1.len()).collect::<Vec<_>>(),
            [4, 0, 0]
        );
        let e = place(&pairs, &lc(&[0]), &l, &q(2)).unwrap_err();
        assert!(
            e.0.contains("need 2 forwarding lcores, but there are 1"),
            "{e}"
        );
    }

    #[test]
    fn a_queue_map_places_exactly_and_is_checked() {
        let pairs = pair_ports(&ids(&[0, 1]));
        let l = limits(&[0, 1], 4, 4);
        let map = parse_queue_map("(0,0,1),(0,1,2), (1,0,1)(1,1,1)").unwrap();
        let opts = QueueOptions {
            queue_map: Some(map),
            ..Default::default()
        };
        let p = place(&pairs, &lc(&[0, 1, 2]), &l, &opts).unwrap();
        assert_eq!(
            rules(&p),
            [
                vec![],
                vec![(0, 0, 1, 0), (1, 0, 0, 0), (1, 1, 0, 0)],
                vec![(0, 1, 1, 1)]
            ]
        );
        // Port 1 is sent to by lcores 1 and 2, port 0 by lcore 1 alone.
        assert_eq!(p.queues, [(PortId::new(0), 2, 1), (PortId::new(1), 2, 2)]);
        check_exclusive(&p);
        let with = |s: &str| QueueOptions {
            queue_map: Some(parse_queue_map(s).unwrap()),
            ..Default::default()
        };
        for (map, why) in [
            ("(0,0,0),(0,0,1),(1,0,0)", "port 0 queue 0 twice"),
            ("(0,0,0)", "port 1 is enabled but --queue-map polls none"),
            ("(0,1,0),(1,0,0)", "not queue 0"),
            (
                "(0,0,5),(1,0,0)",
                "lcore 5, which is not one of the EAL's lcores",
            ),
            (
                "(2,0,0),(0,0,0),(1,0,0)",
                "port 2, which the portmask does not enable",
            ),
            (
                "(0,0,0),(0,1,0),(0,2,0),(0,3,0),(0,4,0),(1,0,0)",
                "at most 4 RX queue",
            ),
        ] {
            let e = place(&pairs, &lc(&[0, 1, 2]), &l, &with(map)).unwrap_err();
            assert!(e.0.contains(why), "{map}: {e}");
        }
        let mut both = with("(0,0,0),(1,0,0)");
        both.rxq = Some(1);
        assert!(place(&pairs, &lc(&[0]), &l, &both)
            .unwrap_err()
            .0
            .contains("--rxq and --queue-map"));
        let mut both = with("(0,0,0),(1,0,0)");
        both.per_lcore = Some(1);
        assert!(place(&pairs, &lc(&[0]), &l, &both)
            .unwrap_err()
            .0
            .contains("-q and --queue-map"));
    }

    #[test]
    fn queue_map_syntax() {
        assert_eq!(
            parse_queue_map("(0,1,2)").unwrap(),
            [(PortId::new(0), QueueId::new(1), LcoreId::new(2))]
        );
        for bad in [
            "", "(0,1)", "(0,1,2", "0,1,2", "(0,1,x)", "(64,0,0)", "(0,32,0)", "(0,0,0)x",
        ] {
            let e = parse_queue_map(bad).unwrap_err();
            assert!(e.0.starts_with("invalid queue map"), "{bad}: {e}");
        }
    }

    #[test]
    fn queue_limits_are_the_devices() {
        let pairs = pair_ports(&ids(&[0, 1]));
        let rxq = |n| QueueOptions {
            rxq: Some(n),
            ..Default::default()
        };
        let e = place(&pairs, &lc(&[0, 1]), &limits(&[0, 1], 1, 8), &rxq(2)).unwrap_err();
        assert!(
            e.0.contains("port 0 (net_null0) has at most 1 RX queue(s); 2 requested"),
            "{e}"
        );
        // Two lcores transmit on port 0 but it has one TX queue.
        let e = place(
            &pairs,
            &lc(&[0, 1]),
            &limits(&[0, 1], 8, 1),
            &rxq(2).clone(),
        )
        .map(|_| ())
        .err();
        assert!(e.is_none(), "one lcore per TX port here: {e:?}");
        let e = place(&pairs, &lc(&[0, 1, 2]), &limits(&[0, 1], 8, 1), &rxq(2)).unwrap_err();
        assert!(
            e.0.contains("port 0 (net_null0) has at most 1 TX queue(s), but 2 are needed"),
            "{e}"
        );
        let txq = QueueOptions {
            rxq: Some(2),
            txq: Some(1),
            ..Default::default()
        };
        let e = place(&pairs, &lc(&[0, 1, 2]), &limits(&[0, 1], 8, 8), &txq).unwrap_err();
        assert!(e.0.contains("--txq 1: 2 lcores transmit on port 0"), "{e}");
    }
}
