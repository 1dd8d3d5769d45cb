//! l2fwd: DPDK's layer-2 forwarder, in Rust, with net_dma-style copy offload.
//!
//! `l2fwd [EAL options] -- -p PORTMASK [-T STATS_S] [--[no-]mac-updating] [--duration S]
//!  [--copy none|cpu|dma|auto] [--copybreak BYTES] [--dma NAME]... [--report FILE.json]
//!  [--config FILE.toml]`
//!
//! Ports pair as in DPDK's l2fwd (first<->second enabled port, third<->fourth, an odd last one
//! to itself). Worker lcores (the EAL's `-l` cores after the main one) each own the RX queue of
//! the ports they were dealt and, with `--copy dma|auto`, one DMA channel; the main lcore
//! prints stats every `-T` seconds, handles SIGINT/SIGTERM and writes the report.

use anyhow::{bail, Context, Result};
use apps_common::units;
use apps_common::{errln, outln};
use dataplane::engine::{Engine, EngineConfig, Event, PortSummary, StatsSnapshot};
use dataplane::report::{DmaCapabilities, L2fwdReport};
use dataplane::stats::{CycleCounters, PortTotals};
use dataplane::sysfs::{uio_warnings, PciSysfs};
use l2fwd::options::{L2fwdOptions, Settings};
use pmd::{Eal, PortStats};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

fn main() -> ExitCode {
    apps_common::main_with("l2fwd", run)
}

/// Parse, build, run, report: the shape of DPDK's `examples/l2fwd/main.c`.
fn run() -> Result<()> {
    let loaded = apps_common::options::load::<L2fwdOptions>()?;
    let opts = loaded.options.resolve()?;
    if let Some(path) = &opts.report {
        apps_common::outfile::check_writable("--report", path)?;
    }
    let eal = Eal::init(&loaded.eal)?;
    let engine = Engine::new(&eal, engine_config(&opts))?;
    let dma = engine.dma_devices();
    for d in &dma {
        outln!(
            "DMA dev {} ({}): {}",
            d.id,
            d.name,
            DmaCapabilities::from(d)
        );
    }
    // uio devices cannot be removed safely: say so before anything runs.
    let ports = engine.port_names();
    let devices = dma
        .iter()
        .map(|d| ("DMA channel", d.name.as_str()))
        .chain(ports.iter().map(|p| ("port", p.as_str())));
    for w in uio_warnings(&PciSysfs::system(), devices) {
        errln!("{w}");
    }
    let quit = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&quit))
            .context("cannot install signal handler")?;
    }
    let mut console = Console::default();
    let report = engine.run(&quit, &mut |ev| console.print(ev))?;
    console.print_final(&report);
    if let Some(path) = &opts.report {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write report {}", path.display()))?;
    }
    if !report.balances() {
        bail!(
            "accounting does not balance: {} received, {} sent, {} dropped",
            report.rx_packets,
            report.tx_packets,
            report.dropped_total()
        );
    }
    Ok(())
}

/// What the engine needs of the options (the rest is the app's: the report path).
fn engine_config(opts: &Settings) -> EngineConfig {
    EngineConfig {
        portmask: opts.portmask,
        portmap: opts.portmap.clone(),
        ports_per_lcore: opts.ports_per_lcore,
        rxq: opts.rxq,
        txq: opts.txq,
        queue_map: opts.queue_map.clone(),
        mac_updating: opts.mac_updating,
        copy: opts.copy,
        copybreak: opts.copybreak,
        dma: opts.dma.clone(),
        dma_timeout: opts.dma_timeout,
        allow_faults: opts.allow_faults,
        grace_timeout: opts.grace_timeout,
        control_socket: opts.control.clone(),
        stats_period: (opts.stats_period > 0).then(|| Duration::from_secs(opts.stats_period)),
        duration: opts.duration,
    }
}

/// Prints the run's events as DPDK's l2fwd prints its own: the ports and lcores at start,
/// a statistics table every `-T` seconds, the final statistics.
#[derive(Default)]
struct Console {
    /// The ports at the last periodic print, and when it was.
    last: Vec<PortSummary>,
    last_at: Duration,
    /// Some port has several queues: name them in the lcore plan.
    multi_queue: bool,
    /// Each lcore's busy and idle cycles at the last periodic print, in lcore order.
    last_cycles: Vec<(u64, u64)>,
}

impl Console {
    fn print(&mut self, ev: Event) {
        match ev {
            Event::PortStarted {
                port,
                name,
                mac,
                link,
                rx_queues,
                tx_queues,
            } => {
                self.multi_queue |= rx_queues > 1 || tx_queues > 1;
                outln!(
                    "Port {port} ({name}): MAC {mac}, link {} {} Mbps, {rx_queues} RX / \
                     {tx_queues} TX queue(s)",
                    if link.up { "up" } else { "down" },
                    link.speed_mbps
                )
            }
            Event::LcorePlan {
                lcore,
                rules,
                dma_devs,
            } => outln!(
                "Lcore {lcore}: {}{}",
                rules
                    .iter()
                    .map(|r| if self.multi_queue {
                        format!(
                            "RX port {} queue {} -> TX port {} queue {}",
                            r.rx_port, r.rx_queue, r.tx_port, r.tx_queue
                        )
                    } else {
                        format!("RX port {} -> TX port {}", r.rx_port, r.tx_port)
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                dma_devs
                    .iter()
                    .map(|dev| format!(", DMA dev {dev}"))
                    .collect::<String>()
            ),
            Event::LcoreIdle { lcore } => {
                outln!("Lcore {lcore}: nothing to do (no RX queue left for it)")
            }
            Event::ControlSocket(path) => outln!("Control socket: {}", path.display()),
            Event::NoDeviceEvents(e) => {
                outln!("note: no device-event monitor ({e}); hot-remove by dpctl only")
            }
            Event::NoUeventMonitor(e) => outln!(
                "note: no uevent monitor ({e}); removals of vfio-pci devices are still \
                 handled (VFIO request), those of uio devices are not"
            ),
            Event::DeviceRemoved {
                device,
                channel,
                outcome,
            } => match outcome {
                Ok(r) => outln!(
                    "device event: {device} removed; DMA channel {channel} released in {:.0} us",
                    r.latency_us
                ),
                Err(e) => {
                    errln!("device event: {device} removed; releasing {channel} failed: {e}")
                }
            },
            Event::Stats(s) => self.print_periodic(s),
            Event::Stopping { elapsed } => {
                outln!("\nStopping: forwarded for {:.2} s", elapsed.as_secs_f64())
            }
        }
    }

    fn print_periodic(&mut self, s: &StatsSnapshot) {
        let dt = (s.at - self.last_at).as_secs_f64();
        self.last_at = s.at;
        self.last.resize(s.ports.len(), PortSummary::default());
        let mut out = format!(
            "\nPort statistics at {:.1} s ====================================\n",
            s.at.as_secs_f64()
        );
        let mut sum = PortTotals::default();
        for (p, prev) in s.ports.iter().zip(self.last.iter_mut()) {
            let (t, d) = (&p.totals, &p.device);
            let pkts = |now: u64, before: u64| units::pps(now.saturating_sub(before) as f64 / dt);
            let bits = |now: u64, before: u64| {
                units::bits_per_s(now.saturating_sub(before) as f64 * 8.0 / dt)
            };
            out.push_str(&format!(
                "Port {:>2} {:<16} rx {:>14} ({:>12}, {:>14})  tx {:>14} ({:>12}, {:>14})  \
                 dropped {:>10}{}\n",
                p.id,
                p.name,
                t.rx,
                pkts(t.rx, prev.totals.rx),
                bits(d.ibytes, prev.device.ibytes),
                t.tx,
                pkts(t.tx, prev.totals.tx),
                bits(d.obytes, prev.device.obytes),
                t.dropped_total(),
                device_drops(d)
            ));
            sum.rx += t.rx;
            sum.tx += t.tx;
            for (s, d) in sum.dropped.iter_mut().zip(t.dropped) {
                *s += d;
            }
            *prev = p.clone();
        }
        self.last_cycles.resize(s.lcores.len(), (0, 0));
        for (l, prev) in s.lcores.iter().zip(self.last_cycles.iter_mut()) {
            // Busy over the last period, not since the start.
            let busy = CycleCounters::busy_pct(
                l.busy_cycles.saturating_sub(prev.0),
                l.idle_cycles.saturating_sub(prev.1),
            );
            *prev = (l.busy_cycles, l.idle_cycles);
            out.push_str(&format!(
                "Lcore {:>2}: rx {:>14}  tx {:>14}  dropped {:>10}  busy {:>5.1}%\n",
                l.lcore, l.rx_packets, l.tx_packets, l.dropped, busy
            ));
        }
        for (i, c) in s.copies.iter().enumerate() {
            out.push_str(&format!(
                "Worker {i} copies: cpu {:>14}  dma {:>14}  dma_errors {:>8}  recopied {:>8}\n",
                c.cpu, c.dma, c.dma_errors, c.recopied
            ));
        }
        for d in &s.dma_channels {
            out.push_str(&format!(
                "DMA {:<20} {:<8}{:<8} submitted {:>14}  completed {:>14}  failed {:>8}\n",
                d.name,
                d.state,
                if d.stalled { "stalled" } else { "" },
                d.submitted,
                d.completed,
                d.failed
            ));
        }
        // As DPDK's l2fwd prints them (benchmark scripts read "Total packets sent").
        out.push_str(&format!("Total packets sent:     {:>14}\n", sum.tx));
        out.push_str(&format!("Total packets received: {:>14}\n", sum.rx));
        out.push_str(&format!(
            "Total packets dropped:  {:>14}\n",
            sum.dropped_total()
        ));
        apps_common::out!("{out}");
    }

    fn print_final(&self, r: &L2fwdReport) {
        outln!("Final statistics ===================================");
        for p in &r.ports {
            outln!(
                "Port {:>2} {:<16} rx {:>14}{}  tx {:>14}{}  dropped {:>10}{}",
                p.port,
                p.name,
                p.rx_packets,
                byte_count(p.rx_bytes),
                p.tx_packets,
                byte_count(p.tx_bytes),
                p.dropped,
                device_drops(&PortStats {
                    imissed: p.imissed,
                    ierrors: p.ierrors,
                    rx_nombuf: p.rx_nombuf,
                    ..Default::default()
                })
            );
        }
        for l in &r.lcores {
            outln!(
                "Lcore {:>2}: rx {:>14}  tx {:>14}  dropped {:>10}  busy {:>5.1}%",
                l.lcore,
                l.rx_packets,
                l.tx_packets,
                l.dropped,
                l.busy_pct
            );
        }
        outln!("Total packets sent:     {:>14}", r.tx_packets);
        outln!("Total packets received: {:>14}", r.rx_packets);
        outln!(
            "Total packets dropped:  {:>14} ({})",
            r.dropped_total(),
            r.dropped
                .iter()
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let c = &r.copies;
        if c.cpu + c.dma > 0 || !r.dma_channels.is_empty() {
            outln!(
                "Copies:                 cpu {} dma {} dma_errors {} recopied {}",
                c.cpu,
                c.dma,
                c.dma_errors,
                c.recopied
            );
        }
        for d in &r.dma_channels {
            outln!(
                "DMA channel {}: {}{}, submitted {} completed {} failed {}",
                d.name,
                d.state,
                if d.stalls > 0 {
                    format!(" (stalled {} times)", d.stalls)
                } else {
                    String::new()
                },
                d.submitted,
                d.completed,
                d.failed
            );
        }
        for h in &r.hot_removes {
            outln!(
                "Hot-remove {}: {:.0} us (grace {:.0}, stop {:.0}, unplug {:.0}), {} drained, {} re-copied",
                h.channel,
                h.latency_us,
                h.grace_us,
                h.stop_us,
                h.unplug_us,
                h.drained,
                h.recopied
            );
        }
        outln!("Mbufs in use at exit:   {:>14}", r.mbufs_in_use_at_exit);
        outln!("====================================================");
    }
}

/// ` (1.50 MB)`, or nothing where the driver keeps no byte counter.
fn byte_count(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({})", units::bytes(n))
    }
}

/// What the device dropped before a worker saw it, when it dropped anything.
fn device_drops(d: &PortStats) -> String {
    if d.imissed + d.ierrors + d.rx_nombuf == 0 {
        String::new()
    } else {
        format!(
            "  (device: missed {} errors {} nombuf {})",
            d.imissed, d.ierrors, d.rx_nombuf
        )
    }
}
