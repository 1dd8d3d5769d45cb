//! The run's counters on DPDK's telemetry socket, beside the library's own (`/ethdev/stats`,
//! `/dmadev/stats`, ...), for `dpdk-telemetry.py` and the collectors that read the socket:
//!
//! * `/l2fwd/stats`: the report as it stands: `rx_packets`, `tx_packets`, `in_flight`,
//!   `dropped` (reason -> count), `copies`, `hot_removes` (how many), `elapsed_ms`, and `ports`
//!   (port id -> its counters, as in the report);
//! * `/l2fwd/lcores`: per forwarding lcore (keyed by its id), its counters and busy/idle
//!   cycles;
//! * `/l2fwd/dma`: the DMA channels (keyed by their place in the report's `dma_channels`),
//!   each with its name, state and counters.
//!
//! The control thread publishes a snapshot (the control socket's `stats` report) at most every
//! [`PUBLISH_EVERY`]; the commands answer from the latest one, on DPDK's telemetry threads,
//! without touching the engine. DPDK 22.11's encoding shapes the answers (no floats: times in
//! whole milliseconds and `busy_pct` in whole percent, with the cycles for exact figures; no
//! list of dicts: the report's lists become dicts keyed by port id, lcore id or position). Before the first snapshot and after the run
//! the commands answer `null`.

use crate::report::{DmaChannelReport, L2fwdReport, LcoreReport};
use pmd::{TelValue, TelemetryCommand};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the control thread refreshes the snapshot.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(100);

type Snapshot = Arc<Mutex<Option<Arc<L2fwdReport>>>>;

/// The telemetry commands of one run: served while this lives.
pub struct Telemetry {
    latest: Snapshot,
    last_publish: Option<Instant>,
    /// The commands registered (one that could not be, as when another run in this process
    /// serves it, is left out: telemetry is an extra, never a reason to stop forwarding).
    commands: Vec<TelemetryCommand>,
}

impl Telemetry {
    /// Registers `/l2fwd/stats`, `/l2fwd/lcores` and `/l2fwd/dma`.
    pub fn start() -> Self {
        let latest: Snapshot = Arc::default();
        let serve = |name: &str, help: &str, f: fn(&L2fwdReport) -> TelValue| {
            let latest = Arc::clone(&latest);
            TelemetryCommand::register(name, help, move |_params| {
                let report = latest.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
                Some(f(&report))
            })
            .ok()
        };
        let commands = [
            serve(
                "/l2fwd/stats",
                "l2fwd's counters: rx, tx, drops by reason, copies, per port. No parameters",
                stats_value,
            ),
            serve(
                "/l2fwd/lcores",
                "l2fwd's forwarding lcores: rx, tx, drops, copies, busy cycles. No parameters",
                lcores_value,
            ),
            serve(
                "/l2fwd/dma",
                "l2fwd's DMA channels: state and counters. No parameters",
                dma_value,
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        Telemetry {
            latest,
            last_publish: None,
            commands,
        }
    }

    /// The commands being served.
    pub fn commands(&self) -> impl Iterator<Item = &str> {
        self.commands.iter().map(TelemetryCommand::name)
    }

    /// Publishes `report()` if [`PUBLISH_EVERY`] has passed since the last time (or there was
    /// none). Called by the control thread on each of its turns.
    pub fn tick(&mut self, report: impl FnOnce() -> L2fwdReport) {
        let now = Instant::now();
        if self
            .last_publish
            .is_some_and(|t| now.duration_since(t) < PUBLISH_EVERY)
        {
            return;
        }
        self.last_publish = Some(now);
        self.publish(report());
    }

    /// Makes `report` the answer from now on.
    pub fn publish(&self, report: L2fwdReport) {
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(report));
    }
}

/// `/l2fwd/stats`.
pub fn stats_value(r: &L2fwdReport) -> TelValue {
    let c = &r.copies;
    let ports = r
        .ports
        .iter()
        .map(|p| {
            let v = TelValue::Dict(vec![
                ("name".into(), p.name.as_str().into()),
                ("mac".into(), p.mac.as_str().into()),
                ("rx_packets".into(), p.rx_packets.into()),
                ("tx_packets".into(), p.tx_packets.into()),
                ("dropped".into(), p.dropped.into()),
                ("rx_bytes".into(), p.rx_bytes.into()),
                ("tx_bytes".into(), p.tx_bytes.into()),
                ("imissed".into(), p.imissed.into()),
                ("ierrors".into(), p.ierrors.into()),
                ("rx_nombuf".into(), p.rx_nombuf.into()),
            ]);
            (p.port.to_string(), v)
        })
        .collect();
    TelValue::Dict(vec![
        ("rx_packets".into(), r.rx_packets.into()),
        ("tx_packets".into(), r.tx_packets.into()),
        ("in_flight".into(), r.in_flight.into()),
        ("dropped".into(), TelValue::dict(r.dropped.clone())),
        (
            "copies".into(),
            TelValue::dict([
                ("cpu", c.cpu),
                ("dma", c.dma),
                ("dma_errors", c.dma_errors),
                ("recopied", c.recopied),
            ]),
        ),
        ("hot_removes".into(), (r.hot_removes.len() as u64).into()),
        ("elapsed_ms".into(), ((r.elapsed_s * 1e3) as u64).into()),
        ("ports".into(), TelValue::Dict(ports)),
    ])
}

fn lcore_value(l: &LcoreReport) -> TelValue {
    TelValue::dict([
        ("lcore", u64::from(l.lcore)),
        ("rx_packets", l.rx_packets),
        ("tx_packets", l.tx_packets),
        ("dropped", l.dropped),
        ("copies_cpu", l.copies_cpu),
        ("copies_dma", l.copies_dma),
        ("busy_cycles", l.busy_cycles),
        ("idle_cycles", l.idle_cycles),
        ("busy_pct", l.busy_pct.round() as u64),
    ])
}

/// `/l2fwd/lcores`.
pub fn lcores_value(r: &L2fwdReport) -> TelValue {
    TelValue::Dict(
        r.lcores
            .iter()
            .map(|l| (l.lcore.to_string(), lcore_value(l)))
            .collect(),
    )
}

fn channel_value(d: &DmaChannelReport) -> TelValue {
    let mut v = vec![
        ("name".to_owned(), d.name.as_str().into()),
        ("state".to_owned(), d.state.as_str().into()),
    ];
    if let Some(w) = d.worker {
        v.push(("worker".into(), (w as u64).into()));
    }
    for (k, n) in [
        ("submitted", d.submitted),
        ("completed", d.completed),
        ("failed", d.failed),
        ("stalls", d.stalls),
        ("recopied", d.recopied),
    ] {
        v.push((k.into(), n.into()));
    }
    TelValue::Dict(v)
}

/// `/l2fwd/dma`. Keyed by position: a channel's name (a PCI address, a DSA queue `wq0.1`)
/// may hold characters DPDK refuses in a key.
pub fn dma_value(r: &L2fwdReport) -> TelValue {
    TelValue::Dict(
        r.dma_channels
            .iter()
            .enumerate()
            .map(|(i, d)| (i.to_string(), channel_value(d)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{DmaChannelState, PortReport};

    fn report() -> L2fwdReport {
        let mut r = L2fwdReport {
            rx_packets: 100,
            tx_packets: 90,
            elapsed_s: 1.5,
            ports: vec![PortReport {
                port: 1,
                name: "net_null1".into(),
                rx_packets: 100,
                ..Default::default()
            }],
            lcores: vec![LcoreReport {
                lcore: 2,
                rx_packets: 100,
                busy_cycles: 3,
                idle_cycles: 1,
                busy_pct: 75.0,
                ..Default::default()
            }],
            dma_channels: vec![DmaChannelReport {
                name: "dma_skeleton0".into(),
                state: DmaChannelState::Active,
                worker: Some(0),
                submitted: 8,
                ..Default::default()
            }],
            ..Default::default()
        };
        r.dropped.insert("tx_full".into(), 10);
        r
    }

    fn get<'a>(v: &'a TelValue, key: &str) -> &'a TelValue {
        match v {
            TelValue::Dict(d) => &d.iter().find(|(k, _)| k == key).expect(key).1,
            _ => panic!("{v:?} is not a dict"),
        }
    }

    #[test]
    fn answers_are_shaped_as_dpdk_can_encode_them() {
        let r = report();
        let s = stats_value(&r);
        s.check().unwrap();
        assert_eq!(get(&s, "rx_packets"), &TelValue::U64(100));
        assert_eq!(get(get(&s, "dropped"), "tx_full"), &TelValue::U64(10));
        assert_eq!(get(&s, "elapsed_ms"), &TelValue::U64(1500));
        let port = get(get(&s, "ports"), "1");
        assert_eq!(get(port, "name"), &TelValue::from("net_null1"));
        let l = lcores_value(&r);
        l.check().unwrap();
        assert_eq!(get(get(&l, "2"), "lcore"), &TelValue::U64(2));
        assert_eq!(get(get(&l, "2"), "busy_pct"), &TelValue::U64(75));
        let d = dma_value(&r);
        d.check().unwrap();
        assert_eq!(get(get(&d, "0"), "name"), &TelValue::from("dma_skeleton0"));
        assert_eq!(get(get(&d, "0"), "state"), &TelValue::from("active"));
        assert_eq!(get(get(&d, "0"), "worker"), &TelValue::U64(0));
        // No channels (no copy stage): an empty dict, still a valid answer.
        dma_value(&L2fwdReport::default()).check().unwrap();
    }

    #[test]
    fn commands_answer_the_latest_snapshot_while_the_run_lasts() {
        let mut t = Telemetry::start();
        assert_eq!(
            t.commands().collect::<Vec<_>>(),
            ["/l2fwd/stats", "/l2fwd/lcores", "/l2fwd/dma"]
        );
        assert_eq!(
            TelemetryCommand::answer("/l2fwd/stats", ""),
            None,
            "no data yet"
        );
        t.tick(report);
        let s = TelemetryCommand::answer("/l2fwd/stats", "").unwrap();
        assert_eq!(get(&s, "tx_packets"), &TelValue::U64(90));
        // Publish replaces it.
        t.publish(L2fwdReport::default());
        let s = TelemetryCommand::answer("/l2fwd/stats", "").unwrap();
        assert_eq!(get(&s, "tx_packets"), &TelValue::U64(0));
        drop(t);
        for c in ["/l2fwd/stats", "/l2fwd/lcores", "/l2fwd/dma"] {
            assert_eq!(TelemetryCommand::answer(c, ""), None, "{c} after the run");
        }
        // The names can be served again (a second run in the same process).
        let again = Telemetry::start();
        assert_eq!(again.commands().count(), 3);
    }
}
