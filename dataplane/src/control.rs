//! The control thread's side of DMA hot-plug: the channel registry, hot-remove and hot-add
//! under the QSBR protocol, fault injection for drills, and the requests of the control socket.
//!
//! Removal (`dpctl dma remove NAME`, or a device event, or a worker reporting a stalled
//! engine):
//! 1. unpublish the channel from its worker (a new generation without it);
//! 2. wait for the grace period: the worker drained the channel (or re-copied what it held, if
//!    the engine stalled) and adopted the generation; a bounded wait that fails naming the
//!    stuck lcore;
//! 3. `rte_dma_stop`; only now free the buffers the worker quarantined (a stopped engine
//!    writes nothing more);
//! 4. `rte_dma_close`, then remove the device from its bus (`rte_eal_hotplug_remove`), and
//!    record the removal latency.
//!
//! Addition (`dpctl dma add DEVARGS`): probe the device on its bus, configure and start it,
//! publish it to the worker with the fewest channels.

use crate::dma::Quarantine;
use crate::fwd::Retired;
use crate::qsbr::{channel_id, ChannelId, Qsbr, MAX_CHANNELS};
use crate::report::{DmaChannelReport, HotRemoveReport};
use crossbeam_queue::SegQueue;
use pmd::{bus_device_of, DmaDev, DmaStats, Eal};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Fault switches, one per possible dmadev id (DPDK's default RTE_DMADEV_DEFAULT_MAX).
pub const MAX_DMA_DEVS: usize = 64;

/// A request to the control thread, as the control socket carries it (one JSON object).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "cmd", deny_unknown_fields)]
pub enum Request {
    // Struct variants (not unit ones), so that unknown fields are refused for them too.
    #[serde(rename = "stats")]
    Stats {},
    #[serde(rename = "dma list")]
    DmaList {},
    #[serde(rename = "dma remove")]
    DmaRemove { name: String },
    #[serde(rename = "dma add")]
    DmaAdd { devargs: String },
    #[serde(rename = "dma fault")]
    DmaFault { name: String, fault: String },
    #[serde(rename = "copybreak")]
    Copybreak { bytes: u32 },
}

/// Where a channel stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelState {
    /// Published to a worker.
    Active(usize),
    /// Started but no worker had room for it.
    Standby,
    /// Removed (by request, device event, or after a stall).
    Removed,
}

struct Channel<'e> {
    name: String,
    id: ChannelId,
    dev: Option<DmaDev<'e>>,
    state: ChannelState,
    /// The device's counters when it was removed.
    last_stats: DmaStats,
    stalled: bool,
}

/// The control thread's state.
pub struct Control<'e, 'q, 'p> {
    eal: &'e Eal,
    qsbr: &'q Qsbr,
    retired: &'q [SegQueue<Retired<'p>>],
    faults: &'q [AtomicBool],
    copybreak: &'q [AtomicU32],
    allow_faults: bool,
    grace_timeout: Duration,
    nb_desc: u16,
    channels: Vec<Channel<'e>>,
    /// Retired lanes reported by workers and not yet settled.
    pending: Vec<(usize, Retired<'p>)>,
    /// Buffers whose device did not stop: freed at shutdown if it stops then, leaked otherwise.
    leftover: Vec<Quarantine<'p>>,
    /// The workers follow their slots (a copy stage); without one there is nothing to manage.
    dma_enabled: bool,
    /// After a failed automatic removal, when to try again.
    retry_after: Option<Instant>,
    pub hot_removes: Vec<HotRemoveReport>,
}

impl<'e, 'q, 'p> Control<'e, 'q, 'p> {
    /// Takes `devs` (already started) and deals them to the workers, at most
    /// [`MAX_CHANNELS`] each, round-robin; the rest are on standby. Returns the control state
    /// and the initial channels of each worker, for [`Qsbr::new`].
    pub fn deal(
        devs: Vec<DmaDev<'e>>,
        workers: usize,
    ) -> (Vec<(DmaDev<'e>, ChannelState)>, Vec<Vec<ChannelId>>) {
        let mut per: Vec<Vec<ChannelId>> = vec![Vec::new(); workers];
        let mut out = Vec::new();
        for (i, d) in devs.into_iter().enumerate() {
            let w = if workers == 0 { 0 } else { i % workers };
            if workers > 0 && per[w].len() < MAX_CHANNELS {
                per[w].push(channel_id(d.id(), 0));
                out.push((d, ChannelState::Active(w)));
            } else {
                out.push((d, ChannelState::Standby));
            }
        }
        (out, per)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        eal: &'e Eal,
        qsbr: &'q Qsbr,
        retired: &'q [SegQueue<Retired<'p>>],
        faults: &'q [AtomicBool],
        copybreak: &'q [AtomicU32],
        devs: Vec<(DmaDev<'e>, ChannelState)>,
        allow_faults: bool,
        grace_timeout: Duration,
        nb_desc: u16,
    ) -> Self {
        Control {
            eal,
            qsbr,
            retired,
            faults,
            copybreak,
            allow_faults,
            grace_timeout,
            nb_desc,
            channels: devs
                .into_iter()
                .map(|(d, state)| Channel {
                    name: d.name().to_owned(),
                    id: channel_id(d.id(), 0),
                    dev: Some(d),
                    state,
                    last_stats: DmaStats::default(),
                    stalled: false,
                })
                .collect(),
            pending: Vec::new(),
            leftover: Vec::new(),
            dma_enabled: true,
            retry_after: None,
            hot_removes: Vec::new(),
        }
    }

    /// Declares that the workers have no copy stage (`--copy none`): they never poll their
    /// slots, so DMA channels cannot be added, removed or faulted.
    pub fn set_dma_enabled(&mut self, on: bool) {
        self.dma_enabled = on;
    }

    fn need_dma(&self) -> Result<(), String> {
        if self.dma_enabled {
            Ok(())
        } else {
            Err("no copy stage (--copy none): there are no DMA channels to manage".into())
        }
    }

    /// Handles one request; `stats` renders the data plane's statistics for `stats`.
    pub fn handle(
        &mut self,
        req: Request,
        stats: &dyn Fn(&Self) -> Value,
    ) -> Result<Value, String> {
        match req {
            Request::Stats {} => Ok(stats(self)),
            Request::DmaList {} => Ok(json!({ "channels": self.channel_reports() })),
            Request::DmaRemove { name } => {
                let r = self.remove(&name)?;
                Ok(serde_json::to_value(r).expect("serialisable"))
            }
            Request::DmaAdd { devargs } => self.add(&devargs),
            Request::DmaFault { name, fault } => self.fault(&name, &fault),
            Request::Copybreak { bytes } => {
                if bytes == 0 || bytes > 65535 {
                    return Err(format!("invalid copybreak {bytes}: give 1..=65535 bytes"));
                }
                for c in self.copybreak {
                    // Relaxed: a setting each worker picks up at the top of its loop.
                    c.store(bytes, Ordering::Relaxed);
                }
                Ok(json!({ "copybreak": bytes }))
            }
        }
    }

    /// The channel registry as reported (`dma list`, the report's `dma_channels`).
    pub fn channel_reports(&self) -> Vec<DmaChannelReport> {
        self.channels
            .iter()
            .map(|c| {
                let s = c
                    .dev
                    .as_ref()
                    .and_then(|d| d.stats().ok())
                    .unwrap_or(c.last_stats);
                let (state, worker) = match c.state {
                    ChannelState::Removed => ("removed", None),
                    ChannelState::Active(w) => ("active", Some(w)),
                    ChannelState::Standby => ("standby", None),
                };
                DmaChannelReport {
                    name: c.name.clone(),
                    state: state.to_owned(),
                    worker,
                    stalled: c.stalled,
                    submitted: s.submitted,
                    completed: s.completed,
                    failed: s.errors,
                }
            })
            .collect()
    }

    fn find(&self, name: &str) -> Result<usize, String> {
        self.channels
            .iter()
            .position(|c| c.name == name && c.state != ChannelState::Removed)
            .ok_or_else(|| {
                let known: Vec<&str> = self
                    .channels
                    .iter()
                    .filter(|c| c.state != ChannelState::Removed)
                    .map(|c| c.name.as_str())
                    .collect();
                format!(
                    "no DMA channel named {name:?} (channels: {})",
                    known.join(", ")
                )
            })
    }

    /// Collects the workers' retired-lane reports.
    fn collect(&mut self) {
        for (w, q) in self.retired.iter().enumerate() {
            while let Some(r) = q.pop() {
                self.pending.push((w, r));
            }
        }
    }

    /// Periodic work: a worker that retired a stalled channel gets it removed.
    pub fn tick(&mut self) {
        self.collect();
        if self.retry_after.is_some_and(|t| Instant::now() < t) {
            return;
        }
        self.retry_after = None;
        let stalled: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, r)| r.stalled)
            .filter_map(|(_, r)| {
                self.channels
                    .iter()
                    .find(|c| c.id == r.channel && c.state != ChannelState::Removed)
            })
            .map(|c| c.name.clone())
            .collect();
        for name in stalled {
            if let Err(e) = self.remove(&name) {
                eprintln!("control: removing stalled DMA channel {name}: {e} (retrying in 1 s)");
                self.retry_after = Some(Instant::now() + Duration::from_secs(1));
            }
        }
    }

    /// Hot-removes channel `name` (see the module docs).
    pub fn remove(&mut self, name: &str) -> Result<HotRemoveReport, String> {
        self.need_dma()?;
        let t0 = Instant::now();
        let i = self.find(name)?;
        let id = self.channels[i].id;
        if let ChannelState::Active(w) = self.channels[i].state {
            let keep: Vec<ChannelId> = self
                .qsbr
                .assignment(w)
                .channels()
                .filter(|&c| c != id)
                .collect();
            let g = self.qsbr.publish(w, &keep);
            self.qsbr
                .wait_grace(w, g, self.grace_timeout, Duration::from_micros(50))
                .map_err(|e| e.to_string())?;
        }
        // Quiescent: the worker handed the lane back before adopting.
        self.collect();
        let (mut drained, mut recopied, mut stalled) = (0, 0, false);
        let mut quarantines = Vec::new();
        let mut k = 0;
        while k < self.pending.len() {
            if self.pending[k].1.channel != id {
                k += 1;
                continue;
            }
            let (_, r) = self.pending.remove(k);
            drained += r.drained;
            recopied += r.recopied;
            stalled |= r.stalled;
            quarantines.push(r.quarantine);
        }
        let c = &mut self.channels[i];
        let mut dev = c
            .dev
            .take()
            .ok_or_else(|| format!("DMA channel {name} has no device (a failed removal)"))?;
        c.last_stats = dev.stats().unwrap_or_default();
        if let Err(e) = dev.stop() {
            // The engine may still write the quarantined buffers: keep them (a leak, never a
            // free), and the device, for a later try.
            c.dev = Some(dev);
            self.leftover.extend(quarantines);
            return Err(format!("rte_dma_stop on {name}: {e}"));
        }
        // The engine is stopped: nothing can write the quarantined buffers any more.
        for q in quarantines {
            if let Err(q) = q.release(&dev) {
                self.leftover.push(q);
            }
        }
        let (bus, _) = bus_device_of(name);
        // rte_dma_close and rte_dev_remove: the driver's remove releases the dmadev. A device
        // already gone from its bus (a device event) is still closed.
        let unplug = dev.unplug(self.eal).map_err(|(dev, e)| {
            drop(dev); // stopped: rte_dma_close
            e
        });
        c.state = ChannelState::Removed;
        c.stalled = stalled;
        // Relaxed: the switch belongs to a device id that may be reused by a later add.
        self.faults[(id >> 8) as usize % self.faults.len()].store(false, Ordering::Relaxed);
        let r = HotRemoveReport {
            channel: name.to_owned(),
            latency_us: t0.elapsed().as_secs_f64() * 1e6,
            drained,
            recopied,
        };
        self.hot_removes.push(r.clone());
        if let Err(e) = unplug {
            eprintln!("control: {name} closed but not unplugged from bus {bus}: {e}");
        }
        Ok(r)
    }

    /// Hot-adds a DMA device: `NAME[,ARGS]`, for example `dma_skeleton1,lcore=0` (a vdev) or
    /// `0000:00:04.1` (a PCI device bound to vfio-pci).
    pub fn add(&mut self, devargs: &str) -> Result<Value, String> {
        self.need_dma()?;
        let (name, args) = devargs.split_once(',').unwrap_or((devargs, ""));
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("invalid devargs {devargs:?}: expected NAME[,ARGS]"));
        }
        if self
            .channels
            .iter()
            .any(|c| c.name == name && c.state != ChannelState::Removed)
        {
            return Err(format!("DMA channel {name} is already in use"));
        }
        let (bus, dev_name) = bus_device_of(name);
        pmd::hotplug_add(self.eal, bus, dev_name, args)
            .map_err(|e| format!("cannot probe {devargs:?} on bus {bus}: {e}"))?;
        let dev = DmaDev::open(self.eal, name, self.nb_desc)
            .map_err(|e| format!("{name} is not a usable DMA device: {e}"))?;
        let id = channel_id(dev.id(), 0);
        // Relaxed: the fault switch of a fresh device starts off.
        self.faults[dev.id() as usize % self.faults.len()].store(false, Ordering::Relaxed);
        let target = (0..self.qsbr.workers())
            .map(|w| (self.qsbr.assignment(w).len(), w))
            .filter(|&(n, _)| n < MAX_CHANNELS)
            .min();
        let mut confirm = Ok(());
        let state = match target {
            Some((_, w)) => {
                let mut chans: Vec<ChannelId> = self.qsbr.assignment(w).channels().collect();
                chans.push(id);
                let g = self.qsbr.publish(w, &chans);
                // Published: whatever the wait says, the worker may use the device from now on,
                // so it is registered as active (and only ever removed through the protocol).
                confirm = self
                    .qsbr
                    .wait_grace(w, g, self.grace_timeout, Duration::from_micros(50))
                    .map(|_| ())
                    .map_err(|e| format!("{name} is published, but not yet confirmed: {e}"));
                ChannelState::Active(w)
            }
            None => ChannelState::Standby,
        };
        self.channels.push(Channel {
            name: name.to_owned(),
            id,
            dev: Some(dev),
            state,
            last_stats: DmaStats::default(),
            stalled: false,
        });
        confirm?;
        Ok(match state {
            ChannelState::Active(w) => json!({ "added": name, "state": "active", "worker": w }),
            _ => json!({ "added": name, "state": "standby" }),
        })
    }

    /// `dma fault NAME stall|none`: makes a channel's completions stop arriving (or resume),
    /// for surprise-removal drills. Only with fault injection enabled.
    pub fn fault(&mut self, name: &str, fault: &str) -> Result<Value, String> {
        self.need_dma()?;
        if !self.allow_faults {
            return Err(
                "fault injection is disabled: start l2fwd with --allow-fault-injection".into(),
            );
        }
        let i = self.find(name)?;
        let on = match fault {
            "stall" => true,
            "none" => false,
            _ => return Err(format!("unknown fault {fault:?}: expected stall or none")),
        };
        let dev = (self.channels[i].id >> 8) as usize;
        // Relaxed: a drill switch the worker reads once per completion poll.
        self.faults[dev % self.faults.len()].store(on, Ordering::Relaxed);
        Ok(json!({ "channel": name, "fault": fault }))
    }

    /// At shutdown, after every worker stopped (offline): stop every device, then free what
    /// was quarantined, then close them. Returns the channel reports.
    pub fn shutdown(mut self) -> Vec<DmaChannelReport> {
        self.collect();
        let mut all_stopped = true;
        for c in &mut self.channels {
            if let Some(d) = c.dev.as_mut() {
                c.last_stats = d.stats().unwrap_or_default();
                all_stopped &= d.stop().is_ok();
            }
        }
        let _ = all_stopped;
        for (_, r) in self.pending.drain(..) {
            self.leftover.push(r.quarantine);
        }
        // Each quarantine goes back to the pool only if its own device is stopped; the rest
        // leak when dropped (an engine that may still run never gets its buffers handed out).
        for q in self.leftover.drain(..) {
            let dev = self
                .channels
                .iter()
                .filter_map(|c| c.dev.as_ref())
                .find(|d| Some(d.id()) == q.dev_id());
            if let Some(d) = dev {
                let _ = q.release(d);
            }
        }
        let reports = self.channel_reports();
        for c in &mut self.channels {
            drop(c.dev.take()); // rte_dma_close
        }
        reports
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        let p = |s: &str| serde_json::from_str::<Request>(s);
        assert_eq!(p(r#"{"cmd":"stats"}"#).unwrap(), Request::Stats {});
        assert_eq!(p(r#"{"cmd":"dma list"}"#).unwrap(), Request::DmaList {});
        assert_eq!(
            p(r#"{"cmd":"dma remove","name":"dma_skeleton0"}"#).unwrap(),
            Request::DmaRemove {
                name: "dma_skeleton0".into()
            }
        );
        assert_eq!(
            p(r#"{"cmd":"copybreak","bytes":512}"#).unwrap(),
            Request::Copybreak { bytes: 512 }
        );
        for bad in [
            r#"{"cmd":"reboot"}"#,
            r#"{"cmd":"dma remove"}"#,
            r#"{"cmd":"copybreak","bytes":-1}"#,
            r#"{"cmd":"stats","extra":1}"#,
            r#"not json"#,
            r#"[]"#,
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }
}
