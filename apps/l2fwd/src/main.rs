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
use clap::Parser;
use dataplane::config::{L2fwdSection, PortMaskValue};
use dataplane::control::Control;
use dataplane::copy::{CopyMode, CopyStage, STREAM_SLOTS};
use dataplane::ctlsock::{CtlServer, Envelope};
use dataplane::dma::AttachedChannel;
use dataplane::fwd::{CopyWorker, Rule, Worker};
use dataplane::ports::{assign_to_workers, enabled_ports, pair_ports, parse_portmask};
use dataplane::report::{DmaChannelReport, L2fwdReport, PortReport};
use dataplane::shared::Shared;
use dataplane::stats::{port_totals, DropReason, LcoreStats, PortTotals};
use dataplane::tuner::AutoTuner;
use pmd::{DevEvent, DevEventMonitor, DmaDev, Eal, Mempool, Port, PortConfig, MAX_BURST};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "l2fwd",
    about = "Layer-2 forwarder on DPDK ports: l2fwd [EAL options] -- [options]",
    after_help = "EAL options (-l, --vdev, --no-huge, -a, ...) go before `--`; with --config they may \
                  come from the file's `eal` list instead."
)]
struct Cli {
    /// Hexadecimal mask of the ports to forward between.
    #[arg(short = 'p', long = "portmask")]
    portmask: Option<String>,
    /// Seconds between statistics prints, 0..=86400 (0 = quiet).
    #[arg(short = 'T', long = "stats-period")]
    stats_period: Option<u64>,
    /// Rewrite source and destination MACs (the default).
    #[arg(long = "mac-updating", overrides_with = "no_mac_updating")]
    mac_updating: bool,
    /// Forward frames unchanged.
    #[arg(long = "no-mac-updating", overrides_with = "mac_updating")]
    no_mac_updating: bool,
    /// Stop after this many seconds, at most 31536000 (a year; default: run until
    /// SIGINT/SIGTERM).
    #[arg(long, allow_negative_numbers = true)]
    duration: Option<f64>,
    /// Copy every packet into a fresh mbuf: none (plain l2fwd), cpu, dma, or auto.
    #[arg(long)]
    copy: Option<String>,
    /// With --copy dma: packets of at least this many bytes have their payload copied by DMA
    /// (1..=65535).
    #[arg(long)]
    copybreak: Option<u32>,
    /// DMA device to use (repeatable; default with --copy dma|auto: every dmadev found).
    #[arg(long = "dma")]
    dma: Vec<String>,
    /// Milliseconds a DMA channel may hold copies without completing any before the worker
    /// gives up on it (a surprise removal or a hung engine) and re-copies them on the CPU
    /// (1..=60000).
    #[arg(long = "dma-timeout-ms")]
    dma_timeout_ms: Option<u64>,
    /// Write the JSON report here at exit.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Control socket for dpctl (default: l2fwd.sock in DPDK's runtime directory).
    #[arg(long)]
    control: Option<PathBuf>,
    /// Accept `dma fault NAME stall` on the control socket (surprise-removal drills).
    #[arg(long = "allow-fault-injection")]
    allow_fault_injection: bool,
    /// Milliseconds a hot-remove waits for a worker to release the channel before failing
    /// (1..=60000).
    #[arg(long = "grace-ms")]
    grace_ms: Option<u64>,
    /// TOML config; command-line options override it.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Descriptors per DMA channel ring.
const DMA_RING: u16 = 4096;

/// Default copybreak: below this a CPU copy is cheaper than a descriptor on any engine.
const DEFAULT_COPYBREAK: u32 = 256;

/// Options after merging the command line over the config file.
#[derive(Debug)]
struct Options {
    portmask: u64,
    stats_period: u64,
    mac_updating: bool,
    duration: Option<Duration>,
    copy: CopyMode,
    copybreak: u32,
    dma: Vec<String>,
    dma_timeout: Duration,
    report: Option<PathBuf>,
    control: Option<PathBuf>,
    allow_faults: bool,
    grace_timeout: Duration,
}

impl Cli {
    /// The options given on the command line, as an `[l2fwd]` table: checked by the same
    /// function, against the same bounds, as the config file.
    fn as_section(&self) -> L2fwdSection {
        L2fwdSection {
            portmask: self.portmask.clone().map(PortMaskValue::Text),
            stats_period: self.stats_period,
            duration: self.duration,
            copy: self.copy.clone(),
            copybreak: self.copybreak,
            dma_timeout_ms: self.dma_timeout_ms,
            grace_ms: self.grace_ms,
            ..Default::default()
        }
    }
}

/// The command line over the config file's `[l2fwd]` table (already checked), every value
/// checked before anything starts.
fn merge(cli: Cli, file: L2fwdSection) -> Result<Options> {
    cli.as_section()
        .check()
        .map_err(|e| anyhow::anyhow!(e.for_option()))?;
    let mask_text = cli
        .portmask
        .or_else(|| file.portmask.map(|m| m.to_text()))
        .context(
            "no portmask given: use -p PORTMASK (for example -p 0x3) or `portmask` in [l2fwd]",
        )?;
    let portmask = parse_portmask(&mask_text)?;
    let mac_updating = if cli.no_mac_updating {
        false
    } else if cli.mac_updating {
        true
    } else {
        file.mac_updating.unwrap_or(true)
    };
    // Checked above: finite, positive and at most a year, so the conversion cannot fail.
    let duration = match cli.duration.or(file.duration) {
        None => None,
        Some(d) => Some(Duration::try_from_secs_f64(d).context("invalid --duration")?),
    };
    let copy: CopyMode = match cli.copy.or(file.copy) {
        None => CopyMode::None,
        Some(s) => s.parse().map_err(anyhow::Error::msg)?,
    };
    let dma = if cli.dma.is_empty() {
        file.dma.unwrap_or_default()
    } else {
        cli.dma
    };
    Ok(Options {
        portmask,
        stats_period: cli.stats_period.or(file.stats_period).unwrap_or(10),
        mac_updating,
        duration,
        copy,
        copybreak: cli
            .copybreak
            .or(file.copybreak)
            .unwrap_or(DEFAULT_COPYBREAK),
        dma,
        dma_timeout: Duration::from_millis(
            cli.dma_timeout_ms.or(file.dma_timeout_ms).unwrap_or(10),
        ),
        report: cli.report.or(file.report),
        control: cli.control.or(file.control),
        allow_faults: cli.allow_fault_injection || file.allow_fault_injection.unwrap_or(false),
        grace_timeout: Duration::from_millis(cli.grace_ms.or(file.grace_ms).unwrap_or(2000)),
    })
}

fn main() -> ExitCode {
    apps_common::main_with("l2fwd", run)
}

fn run() -> Result<()> {
    let cmd = apps_common::parse_cmdline::<Cli>(|c| c.config.as_deref())?;
    let section = cmd.file.l2fwd()?;
    let opts = merge(cmd.cli, section)?;
    let eal = Eal::init(&cmd.eal)?;
    forward(&eal, &opts)
}

/// The DMA devices to use: the ones named, or with none named every dmadev the EAL found.
fn open_dma_devices<'e>(eal: &'e Eal, opts: &Options) -> Result<Vec<DmaDev<'e>>> {
    if !matches!(opts.copy, CopyMode::Dma | CopyMode::Auto) {
        if !opts.dma.is_empty() {
            bail!("--dma needs --copy dma or --copy auto");
        }
        return Ok(Vec::new());
    }
    let names: Vec<String> = if opts.dma.is_empty() {
        DmaDev::list(eal).into_iter().map(|d| d.name).collect()
    } else {
        opts.dma.clone()
    };
    if names.is_empty() && opts.copy == CopyMode::Dma {
        bail!(
            "--copy dma needs a DMA device: add one to the EAL options \
             (--vdev=dma_skeleton0 here, -a <ioat/idxd PCI address> in the lab)"
        );
    }
    names
        .iter()
        .map(|n| {
            DmaDev::open(eal, n, DMA_RING).with_context(|| format!("cannot start DMA device {n}"))
        })
        .collect()
}

fn forward(eal: &Eal, opts: &Options) -> Result<()> {
    let nb_ports = Port::count(eal);
    let enabled = enabled_ports(opts.portmask, nb_ports)?;
    let pairs = pair_ports(&enabled);

    let worker_lcores = eal.worker_lcores();
    // With only the main lcore, it forwards itself and a plain thread runs the control loop.
    let forwarding_lcores = if worker_lcores.is_empty() {
        vec![eal.main_lcore()]
    } else {
        worker_lcores.clone()
    };
    let nb_workers = forwarding_lcores.len();
    let plan = assign_to_workers(&pairs, nb_workers);
    let dma_devs = open_dma_devices(eal, opts)?;

    // One pool feeds every port (received mbufs and their copies alike), so TX may free with
    // MBUF_FAST_FREE where the device has it, as DPDK's l2fwd does.
    let port_cfg = PortConfig {
        tx_fast_free: true,
        ..PortConfig::default()
    };
    let nb_lcores = nb_workers as u32 + 1;
    let per_port = port_cfg.rx_desc as u32 + port_cfg.tx_desc as u32 + MAX_BURST as u32;
    // With a copy stage each stream may hold a source and a copy per slot.
    let copy_bufs = if opts.copy == CopyMode::None {
        0
    } else {
        2 * STREAM_SLOTS + MAX_BURST as u32
    };
    let nb_mbufs = (enabled.len() as u32 * (per_port + copy_bufs + nb_lcores * 256)).max(8192);
    let pool = Mempool::create(
        eal,
        "l2fwd_pool",
        nb_mbufs,
        256,
        2048 + 128,
        eal.socket_id(),
    )
    .context("cannot create the mbuf pool")?;

    let mut ports: Vec<Port> = Vec::with_capacity(enabled.len());
    for &id in &enabled {
        let mut port = Port::configure(eal, id, &port_cfg, &pool)
            .with_context(|| format!("cannot configure port {id}"))?;
        port.start()
            .with_context(|| format!("cannot start port {id}"))?;
        let link = port.link()?;
        apps_common::outln!(
            "Port {id} ({}): MAC {}, link {} {} Mbps",
            port.name(),
            port.mac_addr()?,
            if link.up { "up" } else { "down" },
            link.speed_mbps
        );
        ports.push(port);
    }
    let port_by_id = |id: u16| ports.iter().find(|p| p.id() == id).expect("enabled port");

    // The control plane: DMA channels dealt to workers through their QSBR slots.
    let shared = Shared::new(&forwarding_lcores, dma_devs);
    let mut control = Control::new(
        eal,
        &shared,
        opts.allow_faults,
        opts.grace_timeout,
        DMA_RING,
    )
    .context("the DMA devices have a control thread already")?;
    control.set_dma_enabled(opts.copy != CopyMode::None);

    let stats: Vec<LcoreStats> = forwarding_lcores
        .iter()
        .map(|_| LcoreStats::default())
        .collect();
    let tsc_hz = pmd::tsc_hz();
    let mut jobs: Vec<WorkerJob> = Vec::new();
    for (i, rules) in plan.iter().enumerate() {
        let mut fwd_rules = Vec::new();
        for &(rx, tx) in rules {
            let txp = port_by_id(tx);
            fwd_rules.push(Rule {
                rx: port_by_id(rx).rx_queue(0)?,
                tx: txp.tx_queue(0)?,
                tx_mac: txp.mac_addr()?,
            });
        }
        apps_common::outln!(
            "Lcore {}: {}{}",
            forwarding_lcores[i],
            rules
                .iter()
                .map(|(rx, tx)| format!("RX port {rx} -> TX port {tx}"))
                .collect::<Vec<_>>()
                .join(", "),
            shared
                .initial(i)
                .iter()
                .map(|id| format!(", DMA dev {}", id.dev()))
                .collect::<String>()
        );
        let lstats = &stats[i];
        let wctl = shared
            .worker(i)
            .context("a worker's end of the control state is taken already")?;
        if opts.copy == CopyMode::None {
            let mut w = Worker {
                rules: fwd_rules,
                mac_updating: opts.mac_updating,
                stats: lstats,
            };
            jobs.push(Box::new(move |quit| {
                w.run(quit);
                wctl.offline();
            }));
        } else {
            let mut stage: CopyStage<AttachedChannel> =
                CopyStage::new(opts.copy, opts.copybreak as usize, None);
            for r in &fwd_rules {
                stage.add_stream(Rule::dst_mac(r.tx.port()), r.tx_mac, opts.mac_updating);
            }
            let tuner = (opts.copy == CopyMode::Auto)
                .then(|| AutoTuner::new(tsc_hz / 50, 2 * tsc_hz, pmd::rdtsc()));
            if let Some(t) = &tuner {
                stage.set_copybreak(t.copybreak());
            }
            let dma_timeout_cycles = (opts.dma_timeout.as_secs_f64() * tsc_hz as f64) as u64;
            let w = CopyWorker::new(
                fwd_rules,
                stage,
                &pool,
                lstats,
                dma_timeout_cycles,
                tuner,
                wctl,
            );
            jobs.push(Box::new(move |quit| w.run(quit)));
        }
    }

    let quit = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&quit))
            .context("cannot install signal handler")?;
    }

    // Requests reach the control loop from the control socket and from device events.
    let (req_tx, req_rx) = mpsc::channel::<Envelope>();
    let sock_path = opts
        .control
        .clone()
        .unwrap_or_else(|| eal.runtime_dir().join("l2fwd.sock"));
    let server = CtlServer::start(&sock_path, req_tx.clone())
        .with_context(|| format!("cannot open the control socket {}", sock_path.display()))?;
    apps_common::outln!("Control socket: {}", server.path().display());
    let (ev_tx, ev_rx) = mpsc::channel::<String>();
    let _events = if control.channel_reports().is_empty() {
        None
    } else {
        match DevEventMonitor::start(eal, move |name, ev| {
            // DPDK's interrupt thread: hand the event on and return.
            if ev == DevEvent::Remove {
                let _ = ev_tx.send(name.to_owned());
            }
        }) {
            Ok(m) => Some(m),
            Err(e) => {
                apps_common::outln!(
                    "note: no device-event monitor ({e}); hot-remove by dpctl only"
                );
                None
            }
        }
    };

    let started = Instant::now();
    let ctx = MonitorCtx {
        opts,
        ports: &ports,
        stats: &stats,
        quit: &quit,
        started,
    };
    let monitor = move || monitor(&ctx, control, &req_rx, &ev_rx);
    let control = if worker_lcores.is_empty() {
        let job = jobs.into_iter().next().expect("one forwarding lcore");
        std::thread::scope(|s| {
            let h = s.spawn(monitor);
            job(&quit);
            h.join().expect("the control loop does not panic")
        })
    } else {
        let quit = &quit;
        let launch = worker_lcores
            .iter()
            .zip(jobs)
            .map(|(&lcore, job)| {
                let f: Box<dyn FnOnce() -> i32 + Send + '_> = Box::new(move || {
                    job(quit);
                    0
                });
                (lcore, f)
            })
            .collect();
        let (control, codes) = eal.run_on_lcores(launch, monitor)?;
        if let Some(c) = codes.iter().find(|&&c| c != 0) {
            bail!("a worker lcore failed (exit code {c})");
        }
        control
    };
    drop(server);
    let elapsed = started.elapsed().as_secs_f64();

    let totals = PortSummary::of(&ports, &stats);
    apps_common::outln!("\nStopping: forwarded for {elapsed:.2} s");
    let hot_removes = control.hot_removes.clone();
    // Every worker is offline: stop every device, then free what stalled engines might have
    // written, then close them. The quarantined buffers came from the ports' RX queues, so
    // they are settled before the ports go.
    let dma_reports = control.shutdown();
    drop(shared);
    for mut p in ports.drain(..) {
        p.stop()
            .with_context(|| format!("cannot stop port {}", p.id()))?;
        // Dropping closes the port (net_pcap flushes its output here).
    }
    let mut report = build_report(&totals, &stats, pool.in_use() as u64, elapsed);
    report.dma_channels = dma_reports;
    report.hot_removes = hot_removes;
    print_final(&totals, &report);
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

/// What one forwarding lcore runs, given the quit flag.
type WorkerJob<'a> = Box<dyn FnOnce(&AtomicBool) + Send + 'a>;

/// A port's identity and final counters.
struct PortSummary {
    id: u16,
    name: String,
    mac: String,
    totals: PortTotals,
}

impl PortSummary {
    /// Every port's identity and counters summed over the lcores, now.
    fn of(ports: &[Port], stats: &[LcoreStats]) -> Vec<PortSummary> {
        ports
            .iter()
            .map(|p| PortSummary {
                id: p.id(),
                name: p.name().to_owned(),
                mac: p.mac_addr().map(|m| m.to_string()).unwrap_or_default(),
                totals: port_totals(stats, p.id()),
            })
            .collect()
    }
}

/// What the control loop reads.
struct MonitorCtx<'a, 'p> {
    opts: &'a Options,
    ports: &'a [Port<'p>],
    stats: &'a [LcoreStats],
    quit: &'a AtomicBool,
    started: Instant,
}

/// The main lcore's loop, the control thread: requests from the control socket, device
/// events, stalled channels, periodic stats, `--duration` and signals. Returns the control
/// state for the report once the workers are told to stop.
fn monitor<'e, 'q, 'p>(
    ctx: &MonitorCtx,
    mut control: Control<'e, 'q, 'p>,
    requests: &mpsc::Receiver<Envelope>,
    events: &mpsc::Receiver<String>,
) -> Control<'e, 'q, 'p> {
    let opts = ctx.opts;
    let period = Duration::from_secs(opts.stats_period);
    // -T is bounded at parse time; checked anyway, since an Instant overflow panics. None:
    // no (further) periodic print.
    let mut next_print = ctx.started.checked_add(period);
    let mut last: Vec<PortTotals> = ctx.ports.iter().map(|_| PortTotals::default()).collect();
    let mut last_t = ctx.started;
    let stats_report = |c: &Control| -> L2fwdReport {
        let totals = PortSummary::of(ctx.ports, ctx.stats);
        let mut r = build_report(&totals, ctx.stats, 0, ctx.started.elapsed().as_secs_f64());
        r.dma_channels = c.channel_reports();
        r.hot_removes = c.hot_removes.clone();
        r
    };
    // Relaxed: the flag carries no data (see the worker loop).
    while !ctx.quit.load(Ordering::Relaxed) {
        if let Ok(env) = requests.recv_timeout(Duration::from_millis(10)) {
            let answer = control.handle(env.req, &stats_report);
            let _ = env.reply.send(answer);
        }
        while let Ok(name) = events.try_recv() {
            let known: Vec<String> = control
                .channel_reports()
                .into_iter()
                .filter(|c| !c.is_removed())
                .map(|c| c.name)
                .filter(|n| n == &name || n.starts_with(&format!("{name}-")))
                .collect();
            for n in known {
                match control.remove(&n) {
                    Ok(r) => apps_common::outln!(
                        "device event: {name} removed; DMA channel {n} released in {:.0} us",
                        r.latency_us
                    ),
                    Err(e) => {
                        apps_common::errln!(
                            "device event: {name} removed; releasing {n} failed: {e}"
                        )
                    }
                }
            }
        }
        control.tick();
        let now = Instant::now();
        if let Some(d) = opts.duration {
            if now.duration_since(ctx.started) >= d {
                ctx.quit.store(true, Ordering::Relaxed);
                break;
            }
        }
        if opts.stats_period > 0 && next_print.is_some_and(|t| now >= t) {
            let dt = now.duration_since(last_t).as_secs_f64();
            print_periodic(
                opts,
                ctx.ports,
                &control.channel_reports(),
                ctx.stats,
                &mut last,
                dt,
                now.duration_since(ctx.started),
            );
            last_t = now;
            next_print = next_print.and_then(|t| t.checked_add(period));
        }
    }
    control
}

fn print_periodic(
    opts: &Options,
    ports: &[Port],
    dma: &[DmaChannelReport],
    stats: &[LcoreStats],
    last: &mut [PortTotals],
    dt: f64,
    at: Duration,
) {
    let mut out = String::new();
    let mut sum = PortTotals::default();
    out.push_str(&format!(
        "\nPort statistics at {:.1} s ====================================\n",
        at.as_secs_f64()
    ));
    for (p, prev) in ports.iter().zip(last.iter_mut()) {
        let t = port_totals(stats, p.id());
        let rate = |now: u64, before: u64| (now - before) as f64 / dt / 1e6;
        out.push_str(&format!(
            "Port {:>2} {:<16} rx {:>14} ({:>8.3} Mpps)  tx {:>14} ({:>8.3} Mpps)  dropped {:>10}\n",
            p.id(),
            p.name(),
            t.rx,
            rate(t.rx, prev.rx),
            t.tx,
            rate(t.tx, prev.tx),
            t.dropped_total()
        ));
        sum.rx += t.rx;
        sum.tx += t.tx;
        for (s, d) in sum.dropped.iter_mut().zip(t.dropped) {
            *s += d;
        }
        *prev = t;
    }
    if opts.copy != CopyMode::None {
        for (i, l) in stats.iter().enumerate() {
            let c = &l.copies;
            out.push_str(&format!(
                "Worker {i} copies: cpu {:>14}  dma {:>14}  dma_errors {:>8}  recopied {:>8}\n",
                c.cpu.get(),
                c.dma.get(),
                c.dma_errors.get(),
                c.recopied.get()
            ));
        }
        for d in dma {
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
    }
    out.push_str(&format!("Total packets sent:     {:>14}\n", sum.tx));
    out.push_str(&format!("Total packets received: {:>14}\n", sum.rx));
    out.push_str(&format!(
        "Total packets dropped:  {:>14}\n",
        sum.dropped_total()
    ));
    apps_common::out!("{out}");
}

fn build_report(
    totals: &[PortSummary],
    stats: &[LcoreStats],
    mbufs_in_use: u64,
    elapsed: f64,
) -> L2fwdReport {
    let mut r = L2fwdReport {
        elapsed_s: elapsed,
        mbufs_in_use_at_exit: mbufs_in_use,
        ..Default::default()
    };
    for reason in DropReason::ALL {
        r.dropped.insert(reason.name().to_owned(), 0);
    }
    for PortSummary {
        id,
        name,
        mac,
        totals: t,
    } in totals
    {
        r.rx_packets += t.rx;
        r.tx_packets += t.tx;
        for reason in DropReason::ALL {
            *r.dropped.get_mut(reason.name()).expect("inserted above") +=
                t.dropped[reason as usize];
        }
        r.ports.push(PortReport {
            port: *id,
            name: name.clone(),
            mac: mac.clone(),
            rx_packets: t.rx,
            tx_packets: t.tx,
            dropped: t.dropped_total(),
        });
    }
    for l in stats {
        r.copies.cpu += l.copies.cpu.get();
        r.copies.dma += l.copies.dma.get();
        r.copies.dma_errors += l.copies.dma_errors.get();
        r.copies.recopied += l.copies.recopied.get();
    }
    r.in_flight = r
        .rx_packets
        .saturating_sub(r.tx_packets + r.dropped_total());
    r
}

fn print_final(totals: &[PortSummary], r: &L2fwdReport) {
    apps_common::outln!("Final statistics ===================================");
    for PortSummary {
        id,
        name,
        totals: t,
        ..
    } in totals
    {
        apps_common::outln!(
            "Port {id:>2} {name:<16} rx {:>14}  tx {:>14}  dropped {:>10}",
            t.rx,
            t.tx,
            t.dropped_total()
        );
    }
    apps_common::outln!("Total packets sent:     {:>14}", r.tx_packets);
    apps_common::outln!("Total packets received: {:>14}", r.rx_packets);
    apps_common::outln!(
        "Total packets dropped:  {:>14} {:?}",
        r.dropped_total(),
        r.dropped
    );
    apps_common::outln!(
        "Copies:                 cpu {} dma {} dma_errors {} recopied {}",
        r.copies.cpu,
        r.copies.dma,
        r.copies.dma_errors,
        r.copies.recopied
    );
    for d in &r.dma_channels {
        apps_common::outln!(
            "DMA channel {}: submitted {} completed {} failed {}",
            d.name,
            d.submitted,
            d.completed,
            d.failed
        );
    }
    apps_common::outln!("Mbufs in use at exit:   {:>14}", r.mbufs_in_use_at_exit);
    apps_common::outln!("====================================================");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(args: &[String]) -> std::result::Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("l2fwd".to_owned()).chain(args.iter().cloned()))
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::sample::select(
                &[
                    "-p", "--portmask", "-T", "--stats-period", "--duration", "--copy",
                    "--copybreak", "--dma", "--dma-timeout-ms", "--grace-ms", "--report",
                    "--control", "--config", "--mac-updating", "--no-mac-updating",
                    "--allow-fault-injection", "0x3", "3", "0", "1", "-1", "60000", "60001",
                    "86400", "86401", "65535", "65536", "18446744073709551615",
                    "18446744073709551616", "1e300", "NaN", "inf", "-0", "0.5", "none", "cpu",
                    "dma", "auto", "", "--", "--help", "-h",
                ][..]
            )
            .prop_map(str::to_owned),
            1 => ".*",
        ]
    }

    /// An option value: the bounds' edges, and anything.
    fn number() -> impl Strategy<Value = u64> {
        prop_oneof![
            prop::sample::select(
                &[
                    0u64,
                    1,
                    86_400,
                    86_401,
                    60_000,
                    60_001,
                    65_535,
                    65_536,
                    u32::MAX as u64,
                    u64::MAX
                ][..]
            ),
            0u64..100_000,
            any::<u64>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any argument vector: options, or a usage error on one line; options merge into a
        /// run's settings or give a one-line reason. Never a panic.
        #[test]
        fn any_argv_parses_or_errs(args in prop::collection::vec(word(), 0..8)) {
            match parse(&args) {
                Ok(cli) => {
                    if let Err(e) = merge(cli, L2fwdSection::default()) {
                        let m = format!("{e:#}");
                        prop_assert!(!m.contains('\n') && !m.is_empty());
                    }
                }
                Err(e) => {
                    if let Some(m) = apps_common::usage_message(&e) {
                        prop_assert!(!m.contains('\n') && !m.is_empty());
                    }
                }
            }
        }

        /// The numeric options are accepted exactly within their documented bounds.
        #[test]
        fn numeric_options_within_bounds(
            t in number(), cb in number(), dto in number(), grace in number(),
            dur in prop_oneof![
                any::<f64>(),
                prop::sample::select(&[0.0, -0.0, 1e-9, 1e-308, 0.001, 31_536_000.0, 31_536_000.5][..]),
            ],
            mask in prop_oneof!["(0[xX])?[0-9a-fA-F]{0,17}", ".{0,8}"],
            copy in prop_oneof![
                prop::sample::select(&["none", "cpu", "dma", "auto"][..]).prop_map(str::to_owned),
                ".{0,6}",
            ],
        ) {
            let args: Vec<String> = [
                format!("-p={mask}"),
                format!("-T={t}"),
                format!("--copybreak={cb}"),
                format!("--dma-timeout-ms={dto}"),
                format!("--grace-ms={grace}"),
                format!("--duration={dur}"),
                format!("--copy={copy}"),
            ]
            .into();
            let cli = match parse(&args) {
                Ok(c) => c,
                // Only a value that is no u32/u64/f64 at all stops clap.
                Err(e) => {
                    prop_assert!(cb > u32::MAX as u64, "{:?}: {}", args, e);
                    return Ok(());
                }
            };
            let digits = mask.trim();
            let digits = digits
                .strip_prefix("0x")
                .or_else(|| digits.strip_prefix("0X"))
                .unwrap_or(digits);
            let mask_ok = u64::from_str_radix(digits, 16).is_ok_and(|m| m != 0);
            let expect_ok = mask_ok
                && t <= 86_400
                && (1..=65_535).contains(&cb)
                && (1..=60_000).contains(&dto)
                && (1..=60_000).contains(&grace)
                && dur.is_finite()
                && (0.001..=31_536_000.0).contains(&dur)
                && ["none", "cpu", "dma", "auto"].contains(&copy.as_str());
            let got = merge(cli, L2fwdSection::default());
            prop_assert_eq!(got.is_ok(), expect_ok, "{:?} => {:?}", args, got);
            if let Ok(o) = got {
                prop_assert!(o.duration.is_some_and(|d| d > Duration::ZERO));
                prop_assert!(Instant::now().checked_add(o.grace_timeout).is_some());
            }
        }
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn file_values_are_checked_and_command_line_wins() {
        let file = L2fwdSection {
            portmask: Some(PortMaskValue::Number(3)),
            grace_ms: Some(500),
            ..Default::default()
        };
        let o = merge(parse(&["--grace-ms".into(), "7".into()]).unwrap(), file).unwrap();
        assert_eq!(o.grace_timeout, Duration::from_millis(7));
        let e = merge(
            parse(&["-p".into(), "3".into(), "--grace-ms".into(), "0".into()]).unwrap(),
            L2fwdSection::default(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid --grace-ms 0: expected 1..=60000 milliseconds"
        );
    }
}
