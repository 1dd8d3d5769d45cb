//! The engine: one forwarder run, wired as DPDK's `examples/l2fwd/main.c` wires it by hand.
//!
//! [`Engine::new`] checks the configuration against what the EAL found (the port mask against
//! the ports, `--dma` against `--copy`), opens the DMA devices and creates the mbuf pools: one
//! per NUMA socket in use (the ports' and the forwarding lcores'), each port's RX queues fed by
//! its own socket's pool and each worker's copies taken from its lcore's.
//! [`Engine::run`] then
//!
//! 1. configures and starts every enabled port with the RX and TX queues of the queue plan
//!    ([`crate::placement`]: RSS over several RX queues where asked, a TX queue per lcore that
//!    transmits on the port); with a single pool (one socket) TX may free with
//!    `MBUF_FAST_FREE` where the device has it, as l2fwd does (with several, a port may send
//!    another socket's mbufs, so it may not);
//! 2. deals the RX queues to every lcore of the EAL, the main lcore included (each sends on
//!    TX queues of its own), and the DMA channels to those workers through the shared control
//!    state ([`Shared`]);
//! 3. opens the control socket and the device-event monitor, launches one worker per lcore
//!    with work (the main lcore's on this thread) and runs the control loop on a DPDK control
//!    thread, which is not an lcore and sleeps when idle (requests, device events, stalled
//!    channels, periodic stats, `duration`) until `quit` is set;
//! 4. shuts down in an order that frees nothing a device might still write ([`shut_down`]):
//!    the workers have stopped and gone offline (the launch returns only once every worker has
//!    returned), then no more requests (socket and event monitor closed), then every DMA
//!    device is stopped, its quarantined buffers freed and the device closed, then the ports
//!    stop and close, and last the mbufs still out of the pools are counted for the report.
//!
//! The app sees the run as [`Event`]s (and prints them); the result is the [`L2fwdReport`].

use crate::control::Control;
use crate::copy::{CopyMode, CopyStage, STREAM_SLOTS};
use crate::ctlsock::{CtlServer, Envelope};
use crate::dma::AttachedChannel;
use crate::fwd::{CopyWorker, Rule, Worker};
use crate::placement::{place, PortLimits, QueueOptions, QueueRule};
use crate::ports::{enabled_ports, pair_ports, portmap_pairs, PortMaskError};
use crate::report::{
    CopyReport, DmaChannelReport, HotRemoveReport, L2fwdReport, LcoreReport, PortReport,
};
use crate::shared::Shared;
use crate::stats::{port_totals, CycleCounters, DropReason, LcoreStats, PortTotals};
use crate::tuner::AutoTuner;
use pmd::{
    DevEvent, DevEventMonitor, DmaDev, Eal, LcoreId, LinkStatus, MacAddr, Mempool, Port,
    PortConfig, PortId, PortStats, QueueId, TxQueue, MAX_BURST,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Descriptors per DMA channel ring.
pub const DMA_RING: u16 = 4096;

/// What one run forwards and how (the app's options, resolved and checked).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// The ports to forward between (bit n = port n).
    pub portmask: u64,
    /// Port pairs that forward to each other (DPDK l2fwd's `--portmap`); None: consecutive
    /// enabled ports pair up.
    pub portmap: Option<Vec<(PortId, PortId)>>,
    /// RX queues each lcore takes in turn (DPDK l2fwd's `-q`, which with one queue per port
    /// counts ports); None: the queues are dealt to every lcore round-robin.
    pub ports_per_lcore: Option<usize>,
    /// RX queues per port (testpmd's `--rxq`); None: enough for every lcore to get work,
    /// within what each device has.
    pub rxq: Option<u16>,
    /// TX queues per port (`--txq`); None: one per lcore transmitting on the port.
    pub txq: Option<u16>,
    /// Exactly which lcore polls which RX queue: `(port, queue, lcore)` (l3fwd's `--config`).
    pub queue_map: Option<Vec<(PortId, QueueId, LcoreId)>>,
    /// Rewrite source and destination MACs as l2fwd does.
    pub mac_updating: bool,
    /// Copy every packet into a fresh mbuf, and how.
    pub copy: CopyMode,
    /// With a DMA copy stage: packets of at least this many bytes go to the engine.
    pub copybreak: u32,
    /// DMA devices to use; empty: every dmadev the EAL found (with `copy` dma or auto).
    pub dma: Vec<String>,
    /// How long a DMA channel may hold copies without completing any before its worker gives
    /// up on it.
    pub dma_timeout: Duration,
    /// Accept fault injection on the control socket.
    pub allow_faults: bool,
    /// How long a hot-remove waits for a worker to release the channel.
    pub grace_timeout: Duration,
    /// The control socket; None: `l2fwd.sock` in DPDK's runtime directory.
    pub control_socket: Option<PathBuf>,
    /// Time between [`Event::Stats`]; None: none.
    pub stats_period: Option<Duration>,
    /// Stop after this long; None: when `quit` is set.
    pub duration: Option<Duration>,
}

/// Why a run could not start, or could not finish cleanly.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The port map, the queues or their placement do not fit the ports and lcores.
    #[error(transparent)]
    Ports(#[from] PortMaskError),
    /// The port mask names ports that do not exist; `hint` says why they may be missing.
    #[error("{cause}{hint}")]
    PortsMissing { cause: PortMaskError, hint: String },
    #[error("--dma needs --copy dma or --copy auto")]
    DmaWithoutCopy,
    #[error(
        "--copy dma needs a DMA device: add one to the EAL options \
         (--vdev=dma_skeleton0 here, -a <ioat/idxd PCI address> in the lab)"
    )]
    NoDmaDevice,
    #[error("cannot start DMA device {name}")]
    DmaDevice {
        name: String,
        #[source]
        source: pmd::Error,
    },
    #[error("cannot create the mbuf pool")]
    Pool(#[source] pmd::Error),
    /// A port step failed: `what` is "configure", "start", "stop", "read the link of", ...
    #[error("cannot {what} port {port}")]
    Port {
        what: &'static str,
        port: PortId,
        #[source]
        source: pmd::Error,
    },
    #[error("the DMA devices have a control thread already")]
    ControlTaken,
    #[error("cannot open the control socket {}", path.display())]
    ControlSocket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot launch the workers")]
    Launch(#[source] pmd::Error),
    #[error("a worker lcore failed (exit code {0})")]
    WorkerFailed(i32),
}

/// A port's identity, its counters summed over the lcores, and the device's own counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PortSummary {
    pub id: PortId,
    pub name: String,
    pub mac: String,
    pub totals: PortTotals,
    /// `rte_eth_stats_get` (zeros where the driver keeps none): bytes, and what the device
    /// dropped before the workers saw it (`imissed`, `ierrors`, `rx_nombuf`).
    pub device: PortStats,
}

/// The periodic statistics ([`Event::Stats`]).
#[derive(Debug, Clone)]
pub struct StatsSnapshot {
    /// Since the run started.
    pub at: Duration,
    pub ports: Vec<PortSummary>,
    /// Each forwarding lcore's counters.
    pub lcores: Vec<LcoreReport>,
    /// Each worker's copy counters (empty without a copy stage).
    pub copies: Vec<CopyReport>,
    /// The DMA channels (empty without a copy stage).
    pub dma_channels: Vec<DmaChannelReport>,
}

/// What happens during a run, for the app to print.
#[derive(Debug)]
pub enum Event<'a> {
    /// A port is configured (with these RX and TX queues) and started.
    PortStarted {
        port: PortId,
        name: &'a str,
        mac: MacAddr,
        link: LinkStatus,
        rx_queues: u16,
        tx_queues: u16,
    },
    /// What a forwarding lcore polls (its RX queues, and the TX queue each sends on), and the
    /// DMA devices (ids) it starts with.
    LcorePlan {
        lcore: LcoreId,
        rules: &'a [QueueRule],
        dma_devs: &'a [i16],
    },
    /// An lcore of the EAL that was left no RX queue: it is not launched.
    LcoreIdle { lcore: LcoreId },
    /// The control socket is listening here.
    ControlSocket(&'a Path),
    /// No device-event monitor (hot-remove by the control socket only).
    NoDeviceEvents(&'a pmd::Error),
    /// The uevent monitor could not start (it needs the privileges for a netlink socket):
    /// removals of vfio-pci devices still arrive (VFIO request), those of uio devices do not.
    NoUeventMonitor(&'a pmd::Error),
    /// A device went away and its DMA channel was released (or releasing it failed).
    DeviceRemoved {
        device: &'a str,
        channel: &'a str,
        outcome: Result<&'a HotRemoveReport, String>,
    },
    /// Every `stats_period`.
    Stats(&'a StatsSnapshot),
    /// `quit` was seen: the workers are stopped and the shutdown begins.
    Stopping { elapsed: Duration },
}

/// A run, ready to start: the ports checked, the DMA devices open, the pools created.
pub struct Engine<'e> {
    eal: &'e Eal,
    cfg: EngineConfig,
    /// Every lcore of the EAL with the queues it polls (empty: nothing to do).
    plan: Vec<(LcoreId, Vec<QueueRule>)>,
    dma_devs: Vec<DmaDev<'e>>,
    /// Each enabled port and its configuration.
    ports: Vec<(PortId, PortConfig)>,
    /// One pool per NUMA socket in use: `(socket, pool)`.
    pools: Vec<(u32, Mempool<'e>)>,
    /// Each enabled port's socket, and each forwarding lcore's.
    port_sockets: Vec<(PortId, u32)>,
    lcore_sockets: Vec<(LcoreId, u32)>,
}

impl<'e> Engine<'e> {
    /// Checks `cfg` against the EAL's ports and lcores, opens the DMA devices and creates the
    /// mbuf pool.
    pub fn new(eal: &'e Eal, cfg: EngineConfig) -> Result<Self, EngineError> {
        let nb_ports = Port::count(eal);
        let enabled =
            enabled_ports(cfg.portmask, nb_ports).map_err(|cause| EngineError::PortsMissing {
                cause,
                hint: missing_ports_hint(eal, nb_ports),
            })?;
        let pairs = match &cfg.portmap {
            Some(map) => portmap_pairs(map, &enabled)?,
            None => pair_ports(&enabled),
        };
        let mut limits = Vec::with_capacity(pairs.len());
        let mut port_sockets = Vec::with_capacity(pairs.len());
        for &(p, _) in &pairs {
            let info = Port::info(eal, p).map_err(port_err("query", p))?;
            port_sockets.push((p, info.socket));
            limits.push(PortLimits {
                port: p,
                name: info.name,
                max_rx_queues: info.max_rx_queues,
                max_tx_queues: info.max_tx_queues,
            });
        }
        let opts = QueueOptions {
            rxq: cfg.rxq,
            txq: cfg.txq,
            per_lcore: cfg.ports_per_lcore,
            queue_map: cfg.queue_map.clone(),
        };
        let placement = place(&pairs, &eal.lcores(), &limits, &opts)?;
        let lcore_sockets: Vec<(LcoreId, u32)> = placement
            .lcores
            .iter()
            .filter(|l| !l.1.is_empty())
            .map(|l| (l.0, eal.lcore_socket(l.0)))
            .collect();
        let mut sockets: Vec<u32> = port_sockets
            .iter()
            .map(|x| x.1)
            .chain(lcore_sockets.iter().map(|x| x.1))
            .collect();
        sockets.sort_unstable();
        sockets.dedup();
        let ports: Vec<(PortId, PortConfig)> = placement
            .queues
            .iter()
            .map(|&(p, rx_queues, tx_queues)| {
                let c = PortConfig {
                    rx_queues,
                    tx_queues,
                    // One pool: every mbuf a port sends is of it (see the module docs).
                    tx_fast_free: sockets.len() == 1,
                    ..PortConfig::default()
                };
                (p, c)
            })
            .collect();
        let dma_devs = open_dma_devices(eal, &cfg)?;
        let nb_mbufs = pool_size(&ports, lcore_sockets.len(), cfg.copy);
        let mut pools = Vec::with_capacity(sockets.len());
        for &socket in &sockets {
            // The cache: eight bursts an lcore, within DPDK's bound (512).
            let pool = Mempool::create(
                eal,
                &format!("l2fwd_pool_s{socket}"),
                nb_mbufs,
                8 * MAX_BURST as u32,
                2048 + 128,
                socket as i32,
            )
            .map_err(EngineError::Pool)?;
            pools.push((socket, pool));
        }
        drop(enabled);
        Ok(Engine {
            eal,
            cfg,
            plan: placement.lcores,
            dma_devs,
            ports,
            pools,
            port_sockets,
            lcore_sockets,
        })
    }

    /// The DMA devices the run starts with, with what each says it can do (for a start-up
    /// listing: see [`crate::report::DmaCapabilities`]).
    pub fn dma_devices(&self) -> Vec<pmd::DmaDevInfo> {
        self.dma_devs.iter().filter_map(|d| d.info().ok()).collect()
    }

    /// The names of the enabled ports (a PCI NIC's is its address).
    pub fn port_names(&self) -> Vec<String> {
        self.ports
            .iter()
            .filter_map(|(p, _)| Port::info(self.eal, *p).ok().map(|i| i.name))
            .collect()
    }

    /// Runs until `quit` is set (or `duration` passes, which sets it), then shuts down in order
    /// and returns the report. `events` sees the run; it is called from the control thread.
    pub fn run(
        self,
        quit: &AtomicBool,
        events: &mut (dyn FnMut(Event) + Send),
    ) -> Result<L2fwdReport, EngineError> {
        let Engine {
            eal,
            cfg,
            plan,
            dma_devs,
            ports: port_cfgs,
            pools,
            port_sockets,
            lcore_sockets,
        } = self;
        let pool_of = |socket: u32| {
            &pools
                .iter()
                .find(|p| p.0 == socket)
                .expect("a pool for every socket in use")
                .1
        };
        let port_pools: Vec<&Mempool> = port_sockets.iter().map(|p| pool_of(p.1)).collect();
        let ports = start_ports(eal, &port_cfgs, &port_pools, events)?;
        for (lcore, _) in plan.iter().filter(|l| l.1.is_empty()) {
            events(Event::LcoreIdle { lcore: *lcore });
        }
        let plan: Vec<(LcoreId, Vec<QueueRule>)> =
            plan.into_iter().filter(|l| !l.1.is_empty()).collect();
        let forwarding_lcores: Vec<LcoreId> = plan.iter().map(|l| l.0).collect();
        let shared = Shared::new(&forwarding_lcores, dma_devs);
        let mut control = Control::new(eal, &shared, cfg.allow_faults, cfg.grace_timeout, DMA_RING)
            .ok_or(EngineError::ControlTaken)?;
        control.set_copy_mode(cfg.copy);
        let stats: Vec<LcoreStats> = forwarding_lcores
            .iter()
            .map(|_| LcoreStats::default())
            .collect();
        let mut jobs = Vec::with_capacity(plan.len());
        for (i, (_, rules)) in plan.iter().enumerate() {
            let dma_devs: Vec<i16> = shared.initial(i).iter().map(|id| id.dev()).collect();
            events(Event::LcorePlan {
                lcore: forwarding_lcores[i],
                rules,
                dma_devs: &dma_devs,
            });
            let pool = pool_of(lcore_sockets[i].1);
            let job = worker_job(&cfg, &ports, rules, pool, &stats[i], &shared, i)?;
            jobs.push(job);
        }
        let (requests, monitor) = Requests::open(eal, &cfg, &control, events)?;
        let started = Instant::now();
        let ctx = ControlLoop {
            cfg: &cfg,
            ports: &ports,
            lcores: &forwarding_lcores,
            stats: &stats,
            quit,
            started,
        };
        let ev = &mut *events;
        let (control, requests) = launch(eal, &forwarding_lcores, jobs, quit, move || {
            let control = ctx.run(control, &requests, ev);
            (control, requests)
        })?;
        let elapsed = started.elapsed();
        events(Event::Stopping { elapsed });
        let totals = summarise(&ports, &stats);
        let hot_removes = control.hot_removes.clone();
        let mut steps = EngineTeardown {
            requests: Some((requests, monitor)),
            control: Some(control),
            ports,
            pools: &pools,
        };
        let done = shut_down(&mut steps);
        drop(steps);
        drop(shared);
        let mut report = build_report(&totals, &stats, done.mbufs_in_use, elapsed.as_secs_f64());
        report.dma_channels = done.dma_channels;
        report.hot_removes = hot_removes;
        report.lcores = lcore_reports(&forwarding_lcores, &stats);
        match done.port_errors.into_iter().next() {
            Some((port, source)) => Err(EngineError::Port {
                what: "stop",
                port,
                source,
            }),
            None => Ok(report),
        }
    }
}

/// Why ports may be missing: a `--vdev` of a network driver that made no port (its driver
/// refused the arguments, or could not open a file), or no device at all.
fn missing_ports_hint(eal: &Eal, nb_ports: u16) -> String {
    let failed: Vec<&str> = eal
        .vdev_args()
        .iter()
        .map(|v| v.split(',').next().unwrap_or(v).trim())
        .filter(|name| name.starts_with("net_") && Port::id_by_name(eal, name).is_none())
        .collect();
    if !failed.is_empty() {
        format!(
            ": DPDK made no port of --vdev {} (its driver refused it: see DPDK's messages above, \
             such as a file it could not open)",
            failed.join(", --vdev ")
        )
    } else if nb_ports == 0 {
        " (no --vdev given, or no device bound to a DPDK driver?)".to_owned()
    } else {
        String::new()
    }
}

/// Mbufs for one run: every RX and TX ring full, a burst in flight per RX queue, with a copy
/// stage its streams' slots (one stream per RX queue), and a per-lcore cache's worth per
/// port; at least 8192.
fn pool_size(ports: &[(PortId, PortConfig)], forwarding_lcores: usize, copy: CopyMode) -> u32 {
    let nb_lcores = forwarding_lcores as u32 + 1;
    let copy_bufs = if copy == CopyMode::None {
        0
    } else {
        2 * STREAM_SLOTS + MAX_BURST as u32
    };
    let mut n = 0u32;
    for (_, c) in ports {
        let rxq = u32::from(c.rx_queues);
        n += rxq * (u32::from(c.rx_desc) + MAX_BURST as u32 + copy_bufs)
            + u32::from(c.tx_queues) * u32::from(c.tx_desc)
            + nb_lcores * 256;
    }
    n.max(8192)
}

/// The DMA devices to use: the ones named, or with none named every dmadev the EAL found.
fn open_dma_devices<'e>(eal: &'e Eal, cfg: &EngineConfig) -> Result<Vec<DmaDev<'e>>, EngineError> {
    if !matches!(cfg.copy, CopyMode::Dma | CopyMode::Auto) {
        if !cfg.dma.is_empty() {
            return Err(EngineError::DmaWithoutCopy);
        }
        return Ok(Vec::new());
    }
    let names: Vec<String> = if cfg.dma.is_empty() {
        DmaDev::list(eal).into_iter().map(|d| d.name).collect()
    } else {
        cfg.dma.clone()
    };
    if names.is_empty() && cfg.copy == CopyMode::Dma {
        return Err(EngineError::NoDmaDevice);
    }
    names
        .iter()
        .map(|n| {
            DmaDev::open(eal, n, DMA_RING).map_err(|source| EngineError::DmaDevice {
                name: n.clone(),
                source,
            })
        })
        .collect()
}

/// `EngineError::Port` for step `what` of `port`, as a `map_err` argument.
fn port_err(what: &'static str, port: PortId) -> impl FnOnce(pmd::Error) -> EngineError {
    move |source| EngineError::Port { what, port, source }
}

/// Configures and starts each enabled port.
fn start_ports<'e, 'p>(
    eal: &'e Eal,
    cfgs: &[(PortId, PortConfig)],
    pools: &[&'p Mempool<'e>],
    events: &mut dyn FnMut(Event),
) -> Result<Vec<Port<'p>>, EngineError> {
    let mut ports = Vec::with_capacity(cfgs.len());
    for ((id, cfg), pool) in cfgs.iter().zip(pools) {
        let id = *id;
        let mut port = Port::configure(eal, id, cfg, pool).map_err(port_err("configure", id))?;
        port.start().map_err(port_err("start", id))?;
        events(Event::PortStarted {
            port: id,
            name: port.name(),
            mac: port.mac_addr().map_err(port_err("read the MAC of", id))?,
            link: port.link().map_err(port_err("read the link of", id))?,
            rx_queues: cfg.rx_queues,
            tx_queues: cfg.tx_queues,
        });
        ports.push(port);
    }
    Ok(ports)
}

/// What one forwarding lcore runs, given the quit flag.
type WorkerJob<'a> = Box<dyn FnOnce(&AtomicBool) + Send + 'a>;

/// The worker of forwarding lcore `i`: plain l2fwd, or with a copy stage.
fn worker_job<'a, 'p>(
    cfg: &EngineConfig,
    ports: &'a [Port<'p>],
    rules: &[QueueRule],
    pool: &'p Mempool<'p>,
    stats: &'a LcoreStats,
    shared: &'a Shared<'_, 'p>,
    i: usize,
) -> Result<WorkerJob<'a>, EngineError> {
    let port_by_id = |id: PortId| ports.iter().find(|p| p.id() == id).expect("enabled port");
    let mut txqs: Vec<TxQueue> = Vec::new();
    let mut fwd_rules = Vec::with_capacity(rules.len());
    for r in rules {
        let txp = port_by_id(r.tx_port);
        let tx = match txqs
            .iter()
            .position(|t| (t.port(), t.queue()) == (r.tx_port, r.tx_queue))
        {
            Some(k) => k,
            None => {
                let q = txp
                    .tx_queue(r.tx_queue)
                    .map_err(port_err("transmit on", r.tx_port))?;
                txqs.push(q);
                txqs.len() - 1
            }
        };
        fwd_rules.push(Rule {
            rx: port_by_id(r.rx_port)
                .rx_queue(r.rx_queue)
                .map_err(port_err("poll", r.rx_port))?,
            tx,
            tx_mac: txp
                .mac_addr()
                .map_err(port_err("read the MAC of", r.tx_port))?,
        });
    }
    let mut wctl = shared
        .worker(i)
        .expect("each worker's end is taken once, here");
    if cfg.copy == CopyMode::None {
        let mut w = Worker {
            rules: fwd_rules,
            txqs,
            mac_updating: cfg.mac_updating,
            stats,
        };
        return Ok(Box::new(move |quit| {
            w.run(quit, &mut wctl.gaps);
            wctl.offline();
        }));
    }
    let mut stage: CopyStage<AttachedChannel> =
        CopyStage::new(cfg.copy, cfg.copybreak as usize, None);
    for r in &fwd_rules {
        let tx_port = txqs[r.tx].port();
        stage.add_stream(Rule::dst_mac(tx_port), r.tx_mac, cfg.mac_updating);
    }
    let tsc_hz = pmd::tsc_hz();
    let tuner =
        (cfg.copy == CopyMode::Auto).then(|| AutoTuner::new(tsc_hz / 50, 2 * tsc_hz, pmd::rdtsc()));
    if let Some(t) = &tuner {
        stage.set_copybreak(t.copybreak());
    }
    let dma_timeout_cycles = (cfg.dma_timeout.as_secs_f64() * tsc_hz as f64) as u64;
    let w = CopyWorker::new(
        fwd_rules,
        txqs,
        stage,
        pool,
        stats,
        dma_timeout_cycles,
        tuner,
        wctl,
    );
    Ok(Box::new(move |quit| w.run(quit)))
}

/// Runs `jobs` on `lcores` (the main lcore's, if it has one, on this thread) and `control` on
/// a DPDK control thread, until every job returns.
fn launch<'a, T: Send>(
    eal: &Eal,
    lcores: &[LcoreId],
    jobs: Vec<WorkerJob<'a>>,
    quit: &'a AtomicBool,
    control: impl FnOnce() -> T + Send,
) -> Result<T, EngineError> {
    let main = eal.main_lcore();
    let mut main_job = None;
    let mut launch = Vec::with_capacity(jobs.len());
    for (&lcore, job) in lcores.iter().zip(jobs) {
        if lcore == main {
            main_job = Some(job);
            continue;
        }
        let f: Box<dyn FnOnce() -> i32 + Send + 'a> = Box::new(move || {
            job(quit);
            0
        });
        launch.push((lcore, f));
    }
    // The control loop sets `quit` when the run ends; if it cannot (its thread could not be
    // created, or it panicked), the workers are told here, or they would poll forever.
    struct QuitOnDrop<'q>(&'q AtomicBool);
    impl Drop for QuitOnDrop<'_> {
        fn drop(&mut self) {
            // Relaxed: the flag carries no data (see the worker loop).
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let control = move || {
        let _quit = QuitOnDrop(quit);
        control()
    };
    let here = move || {
        // Set when this returns or unwinds: already set after a normal run; not after a failed
        // thread start or a panic of the main lcore's own job.
        let _quit = QuitOnDrop(quit);
        eal.with_ctrl_thread("l2fwd-ctrl", control, || {
            if let Some(job) = main_job {
                job(quit);
            }
        })
    };
    // A launch that fails part-way: the workers already running stop as at the end of a run.
    // Relaxed: the flag carries no data (see the worker loop).
    let abort = || quit.store(true, Ordering::Relaxed);
    let (ran, codes) = eal
        .run_on_lcores(launch, here, abort)
        .map_err(EngineError::Launch)?;
    let (t, ()) = ran.map_err(EngineError::Launch)?;
    match codes.iter().find(|&&c| c != 0) {
        Some(&c) => Err(EngineError::WorkerFailed(c)),
        None => Ok(t),
    }
}

/// Where requests reach the control loop from: the control socket and device events.
struct Requests {
    rx: mpsc::Receiver<Envelope>,
    events: mpsc::Receiver<String>,
    server: CtlServer,
}

impl Requests {
    /// Opens the control socket and, when there are DMA channels to release on a device
    /// removal, the device-event monitor (which stays on this thread: DPDK calls it).
    fn open<'e>(
        eal: &'e Eal,
        cfg: &EngineConfig,
        control: &Control,
        events: &mut dyn FnMut(Event),
    ) -> Result<(Self, Option<DevEventMonitor<'e>>), EngineError> {
        let (req_tx, rx) = mpsc::channel::<Envelope>();
        let path = cfg
            .control_socket
            .clone()
            .unwrap_or_else(|| eal.runtime_dir().join("l2fwd.sock"));
        let server = CtlServer::start(&path, req_tx)
            .map_err(|source| EngineError::ControlSocket { path, source })?;
        events(Event::ControlSocket(server.path()));
        let (ev_tx, ev_rx) = mpsc::channel::<String>();
        let monitor = if control.channel_reports().is_empty() {
            None
        } else {
            let started = DevEventMonitor::start(eal, move |name, ev| {
                // DPDK's interrupt thread: hand the event on and return.
                if ev == DevEvent::Remove {
                    let _ = ev_tx.send(name.to_owned());
                }
            });
            match started {
                Ok(m) => {
                    if let Some(e) = m.uevent_error() {
                        events(Event::NoUeventMonitor(e));
                    }
                    Some(m)
                }
                Err(e) => {
                    events(Event::NoDeviceEvents(&e));
                    None
                }
            }
        };
        let requests = Requests {
            rx,
            events: ev_rx,
            server,
        };
        Ok((requests, monitor))
    }
}

/// What the control loop reads.
struct ControlLoop<'a, 'p> {
    cfg: &'a EngineConfig,
    ports: &'a [Port<'p>],
    /// The forwarding lcores, in the order of `stats`.
    lcores: &'a [LcoreId],
    stats: &'a [LcoreStats],
    quit: &'a AtomicBool,
    started: Instant,
}

impl ControlLoop<'_, '_> {
    /// The control thread's loop: requests from the control socket, device
    /// events, stalled channels, periodic stats, `duration` and `quit`. Returns the control
    /// state for the shutdown once the workers are told to stop.
    fn run<'e, 'q, 'p>(
        &self,
        mut control: Control<'e, 'q, 'p>,
        requests: &Requests,
        events: &mut (dyn FnMut(Event) + Send),
    ) -> Control<'e, 'q, 'p> {
        let period = self.cfg.stats_period.filter(|p| !p.is_zero());
        // An Instant overflow panics: None means no (further) periodic print.
        let mut next_print = period.and_then(|p| self.started.checked_add(p));
        let mut telemetry = crate::telemetry::Telemetry::start();
        // Relaxed: the flag carries no data (see the worker loop).
        while !self.quit.load(Ordering::Relaxed) {
            if let Ok(env) = requests.rx.recv_timeout(Duration::from_millis(10)) {
                let answer = control.handle(env.req, &|c| self.stats_report(c));
                let _ = env.reply.send(answer);
            }
            while let Ok(device) = requests.events.try_recv() {
                device_removed(&mut control, &device, events);
            }
            control.tick();
            telemetry.tick(|| self.stats_report(&control));
            let now = Instant::now();
            let at = now.duration_since(self.started);
            if self.cfg.duration.is_some_and(|d| at >= d) {
                self.quit.store(true, Ordering::Relaxed);
                break;
            }
            if let (Some(p), Some(t)) = (period, next_print) {
                if now >= t {
                    events(Event::Stats(&self.snapshot(&control, at)));
                    next_print = t.checked_add(p);
                }
            }
        }
        control
    }

    fn snapshot(&self, control: &Control, at: Duration) -> StatsSnapshot {
        let with_copies = self.cfg.copy != CopyMode::None;
        StatsSnapshot {
            at,
            ports: summarise(self.ports, self.stats),
            lcores: lcore_reports(self.lcores, self.stats),
            copies: if with_copies {
                self.stats.iter().map(copy_report).collect()
            } else {
                Vec::new()
            },
            dma_channels: if with_copies {
                control.channel_reports()
            } else {
                Vec::new()
            },
        }
    }

    /// The control socket's `stats`: the report as it stands.
    fn stats_report(&self, control: &Control) -> L2fwdReport {
        let totals = summarise(self.ports, self.stats);
        let mut r = build_report(&totals, self.stats, 0, self.started.elapsed().as_secs_f64());
        r.dma_channels = control.channel_reports();
        r.hot_removes = control.hot_removes.clone();
        r.lcores = lcore_reports(self.lcores, self.stats);
        r
    }
}

/// A device went away: release its channels (see [`Control::device_removed`]), one event each.
fn device_removed(control: &mut Control, device: &str, events: &mut dyn FnMut(Event)) {
    for (channel, outcome) in control.device_removed(device) {
        events(Event::DeviceRemoved {
            device,
            channel: &channel,
            outcome: outcome.as_ref().map_err(|e| e.to_string()),
        });
    }
}

/// The steps of a shutdown, which [`shut_down`] takes in order.
trait Teardown {
    /// No more requests: close the control socket and the device-event monitor.
    fn close_requests(&mut self);
    /// Stop every DMA device, then free what its workers quarantined, then close it.
    fn stop_dma(&mut self) -> Vec<DmaChannelReport>;
    /// Stop and close every port; the ones that failed to stop (each is closed anyway).
    fn stop_ports(&mut self) -> Vec<(PortId, pmd::Error)>;
    /// Mbufs not back in the pool.
    fn mbufs_in_use(&self) -> u64;
}

/// What the shutdown left.
struct ShutDown {
    dma_channels: Vec<DmaChannelReport>,
    port_errors: Vec<(PortId, pmd::Error)>,
    mbufs_in_use: u64,
}

/// Shuts down a run whose workers have all returned (offline: none holds a channel or a
/// queue). Requests stop first, so that no hot-add or hot-remove races the rest; the DMA
/// devices stop before their quarantined buffers are freed (a running engine may still write
/// them) and before the ports, whose pool those buffers belong to; the ports stop before the
/// pool is counted, so that their rings' mbufs are back.
fn shut_down(t: &mut impl Teardown) -> ShutDown {
    t.close_requests();
    let dma_channels = t.stop_dma();
    let port_errors = t.stop_ports();
    ShutDown {
        dma_channels,
        port_errors,
        mbufs_in_use: t.mbufs_in_use(),
    }
}

/// The shutdown of a real run.
struct EngineTeardown<'a, 'e, 'q, 'p> {
    requests: Option<(Requests, Option<DevEventMonitor<'e>>)>,
    control: Option<Control<'e, 'q, 'p>>,
    ports: Vec<Port<'p>>,
    pools: &'a [(u32, Mempool<'e>)],
}

impl Teardown for EngineTeardown<'_, '_, '_, '_> {
    fn close_requests(&mut self) {
        if let Some((requests, monitor)) = self.requests.take() {
            drop(monitor);
            drop(requests.server);
        }
    }

    fn stop_dma(&mut self) -> Vec<DmaChannelReport> {
        self.control
            .take()
            .map(Control::shutdown)
            .unwrap_or_default()
    }

    fn stop_ports(&mut self) -> Vec<(PortId, pmd::Error)> {
        let mut failed = Vec::new();
        for mut p in self.ports.drain(..) {
            if let Err(e) = p.stop() {
                failed.push((p.id(), e));
            }
            // Dropping closes the port (net_pcap flushes its output here).
        }
        failed
    }

    fn mbufs_in_use(&self) -> u64 {
        self.pools.iter().map(|p| p.1.in_use() as u64).sum()
    }
}

/// `cycles` of a `tsc_hz` TSC in microseconds (one decimal); 0 if the rate is unknown.
fn cycles_to_us(cycles: u64, tsc_hz: u64) -> f64 {
    if tsc_hz == 0 {
        return 0.0;
    }
    (cycles as f64 * 1e7 / tsc_hz as f64).round() / 10.0
}

fn copy_report(l: &LcoreStats) -> CopyReport {
    CopyReport {
        cpu: l.copies.cpu.get(),
        dma: l.copies.dma.get(),
        dma_errors: l.copies.dma_errors.get(),
        recopied: l.copies.recopied.get(),
    }
}

/// Each forwarding lcore's own counters, summed over its ports.
pub fn lcore_reports(lcores: &[LcoreId], stats: &[LcoreStats]) -> Vec<LcoreReport> {
    let tsc_hz = pmd::tsc_hz();
    lcores
        .iter()
        .zip(stats)
        .map(|(&lcore, l)| {
            let (mut rx, mut tx, mut dropped) = (0, 0, 0);
            for p in &l.ports {
                rx += p.rx.get();
                tx += p.tx.get();
                dropped += p.dropped.iter().map(|d| d.get()).sum::<u64>();
            }
            let (busy, idle) = (l.cycles.busy.get(), l.cycles.idle.get());
            LcoreReport {
                lcore: lcore.get(),
                rx_packets: rx,
                tx_packets: tx,
                dropped,
                copies_cpu: l.copies.cpu.get(),
                copies_dma: l.copies.dma.get(),
                busy_cycles: busy,
                idle_cycles: idle,
                busy_pct: CycleCounters::busy_pct(busy, idle),
                max_loop_gap_cycles: l.cycles.max_gap.get(),
                max_loop_gap_us: cycles_to_us(l.cycles.max_gap.get(), tsc_hz),
            }
        })
        .collect()
}

/// Every port's identity and counters summed over the lcores, now.
fn summarise(ports: &[Port], stats: &[LcoreStats]) -> Vec<PortSummary> {
    ports
        .iter()
        .map(|p| PortSummary {
            id: p.id(),
            name: p.name().to_owned(),
            mac: p.mac_addr().map(|m| m.to_string()).unwrap_or_default(),
            totals: port_totals(stats, p.id()),
            device: p.stats().unwrap_or_default(),
        })
        .collect()
}

/// The report of a run: the ports' totals, every drop reason (zeros included), the copies.
pub fn build_report(
    totals: &[PortSummary],
    stats: &[LcoreStats],
    mbufs_in_use: u64,
    elapsed_s: f64,
) -> L2fwdReport {
    let mut r = L2fwdReport {
        elapsed_s,
        mbufs_in_use_at_exit: mbufs_in_use,
        ..Default::default()
    };
    for reason in DropReason::ALL {
        r.dropped.insert(reason.name().to_owned(), 0);
    }
    for p in totals {
        let t = &p.totals;
        r.rx_packets += t.rx;
        r.tx_packets += t.tx;
        for reason in DropReason::ALL {
            *r.dropped.get_mut(reason.name()).expect("inserted above") +=
                t.dropped[reason as usize];
        }
        r.ports.push(PortReport {
            port: p.id.get(),
            name: p.name.clone(),
            mac: p.mac.clone(),
            rx_packets: t.rx,
            tx_packets: t.tx,
            dropped: t.dropped_total(),
            rx_bytes: p.device.ibytes,
            tx_bytes: p.device.obytes,
            imissed: p.device.imissed,
            ierrors: p.device.ierrors,
            rx_nombuf: p.device.rx_nombuf,
        });
    }
    for l in stats {
        let c = copy_report(l);
        r.copies.cpu += c.cpu;
        r.copies.dma += c.dma;
        r.copies.dma_errors += c.dma_errors;
        r.copies.recopied += c.recopied;
    }
    r.in_flight = r
        .rx_packets
        .saturating_sub(r.tx_packets + r.dropped_total());
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Records the steps; `stop_ports` fails for `failing` ports, and `mbufs_in_use` counts
    /// what the earlier steps have not given back.
    struct Recorder {
        steps: RefCell<Vec<&'static str>>,
        ports: Vec<PortId>,
        failing: Vec<PortId>,
        quarantined: u64,
        in_port_rings: u64,
    }

    impl Teardown for Recorder {
        fn close_requests(&mut self) {
            self.steps.borrow_mut().push("close_requests");
        }
        fn stop_dma(&mut self) -> Vec<DmaChannelReport> {
            self.steps.borrow_mut().push("stop_dma");
            self.quarantined = 0;
            vec![DmaChannelReport {
                name: "dma_skeleton0".into(),
                ..Default::default()
            }]
        }
        fn stop_ports(&mut self) -> Vec<(PortId, pmd::Error)> {
            self.steps.borrow_mut().push("stop_ports");
            self.in_port_rings = 0;
            self.ports
                .drain(..)
                .filter(|p| self.failing.contains(p))
                .map(|p| (p, pmd::Error::Invalid(format!("port {p} would not stop"))))
                .collect()
        }
        fn mbufs_in_use(&self) -> u64 {
            self.steps.borrow_mut().push("mbufs_in_use");
            self.quarantined + self.in_port_rings
        }
    }

    fn recorder(failing: &[u16]) -> Recorder {
        Recorder {
            steps: RefCell::new(Vec::new()),
            ports: [0, 1, 2].map(PortId::new).to_vec(),
            failing: failing.iter().copied().map(PortId::new).collect(),
            quarantined: 7,
            in_port_rings: 512,
        }
    }

    #[test]
    fn shutdown_closes_requests_then_dma_then_ports_then_counts_the_pool() {
        let mut r = recorder(&[]);
        let done = shut_down(&mut r);
        assert_eq!(
            *r.steps.borrow(),
            ["close_requests", "stop_dma", "stop_ports", "mbufs_in_use"]
        );
        assert_eq!(done.mbufs_in_use, 0, "counted after everything came back");
        assert_eq!(done.dma_channels.len(), 1);
        assert!(done.port_errors.is_empty());
        assert!(r.ports.is_empty());
    }

    #[test]
    fn a_port_that_fails_to_stop_does_not_skip_the_others_or_the_count() {
        let mut r = recorder(&[1]);
        let done = shut_down(&mut r);
        assert_eq!(
            *r.steps.borrow(),
            ["close_requests", "stop_dma", "stop_ports", "mbufs_in_use"]
        );
        assert!(r.ports.is_empty(), "every port was stopped and closed");
        let failed: Vec<PortId> = done.port_errors.iter().map(|(p, _)| *p).collect();
        assert_eq!(failed, [PortId::new(1)]);
        assert_eq!(done.mbufs_in_use, 0);
    }

    #[test]
    fn the_pool_is_sized_for_rings_copies_and_caches() {
        let ports = |n: u16, q: u16| -> Vec<(PortId, PortConfig)> {
            (0..n)
                .map(|p| {
                    let c = PortConfig {
                        rx_queues: q,
                        tx_queues: q,
                        ..PortConfig::default()
                    };
                    (PortId::new(p), c)
                })
                .collect()
        };
        let plain = pool_size(&ports(2, 1), 1, CopyMode::None);
        let copying = pool_size(&ports(2, 1), 1, CopyMode::Dma);
        assert_eq!(plain, 8192, "two ports' rings fit in the floor");
        assert!(copying > plain);
        let cfg = PortConfig::default();
        let many = pool_size(&ports(64, 4), 16, CopyMode::Dma);
        let per_queue = cfg.rx_desc as u32 + cfg.tx_desc as u32 + MAX_BURST as u32;
        assert!(many >= 64 * (4 * (per_queue + 2 * STREAM_SLOTS) + 17 * 256));
    }

    #[test]
    fn report_lists_every_drop_reason_and_balances() {
        let mut t = PortTotals {
            rx: 10,
            tx: 7,
            ..Default::default()
        };
        t.dropped[DropReason::ALL[0] as usize] = 3;
        let totals = [PortSummary {
            id: PortId::new(0),
            name: "net_null0".into(),
            mac: "02:00:00:00:00:00".into(),
            totals: t,
            device: PortStats {
                ibytes: 640,
                imissed: 2,
                ..Default::default()
            },
        }];
        let r = build_report(&totals, &[], 0, 1.0);
        assert_eq!(r.dropped.len(), DropReason::ALL.len());
        assert_eq!(r.dropped_total(), 3);
        assert_eq!(r.in_flight, 0);
        assert!(r.balances());
        assert_eq!(r.ports[0].dropped, 3);
        assert_eq!((r.ports[0].rx_bytes, r.ports[0].imissed), (640, 2));
        // The report names the port by its bare number, as before the PortId type.
        let json = serde_json::to_value(&r.ports[0]).unwrap();
        assert_eq!(json["port"], serde_json::json!(0));
    }
}
