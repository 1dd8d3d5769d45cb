//! The control thread's side of DMA hot-plug: the channel registry, hot-remove and hot-add
//! under the QSBR protocol, stalled channels and their return, fault injection for drills, and
//! the requests of the control socket.
//!
//! Removal (`dpctl dma remove NAME`, or a device event):
//! 1. unpublish the channel from its worker (a new generation without it), and with it every
//!    other channel on the same bus device (the work queues of one DSA function, `-q0`,
//!    `-q1`, ...: the device is removed as a whole, so each of them goes through the protocol);
//! 2. wait for the grace period of each: the worker drained the channel (or re-copied what it
//!    held, if the engine stalled) and adopted the generation; a bounded wait that fails naming
//!    the stuck lcore;
//! 3. `rte_dma_stop` each; only now free the buffers the workers quarantined (a stopped engine
//!    writes nothing more). If a stop fails, the channel is `failed`: its device and
//!    quarantined buffers are kept (a leak, never a free), and it takes no more requests;
//! 4. `rte_dma_close`, then remove the device from its bus (`rte_eal_hotplug_remove`), and
//!    record each removal and its latency.
//!
//! A stall (a worker saw no completion within `--dma-timeout-ms`: a descheduled software
//! engine, a hung one, a drill) is not a removal: the worker re-copies the lane's copies on the
//! CPU and reports it; the control thread unpublishes the channel (`stalled`, logged), keeps
//! the quarantined buffers while the device runs, and once the worker is quiescent, the fault
//! switch is off and every copy submitted to the engine has completed, publishes it again
//! (logged) through the same protocol.
//!
//! Addition (`dpctl dma add DEVARGS`): only DMA devices (a `dma_*` vdev, or a PCI device that
//! carries a dmadev of that name or, a DSA function, work queues `-qN`), never a name already
//! in use; a PCI device must be bound to vfio-pci ([`crate::sysfs`]), and a kernel-driver DSA
//! work queue (`wqD.Q`) must be one the EAL found at start. Probe the device on its bus once,
//! configure and start each dmadev it adopts ([`adoption`]), publish each to the worker with
//! the fewest channels in turn ([`deal`]).
//!
//! Requests ([`Request`]) are answered with typed values: a [`Response`] or a
//! [`ControlError`]. Only the control socket ([`crate::ctlsock`]) turns them into JSON.
//!
//! The fault switches are one table of [`MAX_DMA_DEVS`], one per possible dmadev id, built by
//! [`Shared::new`]; a worker's end ([`crate::fwd::WorkerControl`]) comes only from
//! [`Shared::worker`], so no worker can hold a short or empty table, and a channel id is only
//! ever looked up in the full one (with `get`: an id beyond it is refused, never indexed).
//! Outside this crate a worker's end can be passed on as it is,
//! ```no_run
//! fn pass_on<'q, 'p>(
//!     w: dataplane::fwd::WorkerControl<'q, 'p>,
//! ) -> dataplane::fwd::WorkerControl<'q, 'p> {
//!     w
//! }
//! ```
//! but never given a table of someone else's making:
//! ```compile_fail
//! fn forge<'q, 'p>(
//!     w: dataplane::fwd::WorkerControl<'q, 'p>,
//!     faults: &'q [std::sync::atomic::AtomicBool],
//! ) -> dataplane::fwd::WorkerControl<'q, 'p> {
//!     dataplane::fwd::WorkerControl { faults, ..w } // E0451: private fields
//! }
//! ```

use crate::copy::CopyMode;
use crate::dma::{reap_abandoned, Quarantine};
use crate::fwd::Retired;
use crate::gaps::{ClosedWindow, LoopGapWindows};
use crate::qsbr::{ChannelId, Generation, GraceTimeout, Qsbr};
use crate::report::{
    DmaCapabilities, DmaChannelReport, DmaChannelState, HotRemoveReport, L2fwdReport,
};
use crate::shared::Shared;
pub use crate::shared::MAX_DMA_DEVS;
use crate::sysfs::{BindingError, PciSysfs};
use crossbeam_queue::SegQueue;
use pmd::{bus_device_of, DmaDev, DmaStats, Eal, Port};
use serde::Deserialize;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// `eprintln!` that ignores write errors: a closed stderr (`l2fwd ... 2>&1 | head`) makes
/// `eprintln!` panic, and the release profile aborts on panic, mid-removal or at exit.
macro_rules! log {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// A failed hot-add probe in a DPDK user's words: DPDK's own errno for it (`Bad address` for a
/// vdev no driver takes) says nothing useful.
fn probe_message(devargs: &str, bus: &str, source: &pmd::Error) -> String {
    let code = match source {
        pmd::Error::Dpdk { code, .. } => *code,
        pmd::Error::Invalid(_) => 0,
    };
    match bus {
        "vdev" => format!(
            "cannot probe {devargs:?}: no vdev driver took it (a vdev's name starts with its \
             driver's, such as dma_skeleton1, and the driver must accept its arguments: see \
             DPDK's log) ({source})"
        ),
        "pci" if code == -19 => format!(
            "cannot probe {devargs:?}: no such PCI device, or it is not bound to vfio-pci \
             (dpdk-devbind.py --status) ({source})"
        ),
        _ => format!("cannot probe {devargs:?} on bus {bus}: {source}"),
    }
}

/// Why a request to the control thread failed. Its `Display` is the text the control socket
/// sends as the error (and l2fwd logs for a device event).
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The workers have no copy stage (`--copy none`).
    #[error("no copy stage (--copy none): there are no DMA channels to manage")]
    NoCopyStage,
    /// A copybreak was set on a run that sends nothing to DMA (`--copy none` or `cpu`).
    #[error("copybreak applies with --copy dma or auto; this run copies with --copy {mode}")]
    NoCopybreak { mode: &'static str },
    /// No registered (not removed) channel has this name; `known` are those that do.
    #[error("no DMA channel named {name:?} (channels: {})", .known.join(", "))]
    UnknownChannel { name: String, known: Vec<String> },
    /// The channel failed: it takes no more requests.
    #[error(transparent)]
    ChannelFailed(FailedChannel),
    /// Another channel on `name`'s bus device failed, so the device cannot be removed.
    #[error("{name} shares its device with a failed channel: {failed}")]
    SiblingFailed {
        name: String,
        #[source]
        failed: FailedChannel,
    },
    /// A worker did not pass the grace period of `name`'s removal in time (a later `remove`
    /// tries again).
    #[error("removing {name}: {source}")]
    GraceTimeout { name: String, source: GraceTimeout },
    /// A removal could not stop these channels' devices: they are now `failed`.
    #[error(
        "{}: the channel is marked failed; its quarantined buffers are kept",
        joined(.failures)
    )]
    StopFailed { failures: Vec<StopFailure> },
    /// A removal finished without a record of `name` (a bug, not a device state).
    #[error("{name}: removal not recorded")]
    RemovalNotRecorded { name: String },
    /// `dma add` was given no device name.
    #[error("invalid devargs {devargs:?}: expected NAME[,ARGS]")]
    BadDevargs { devargs: String },
    /// `dma add` was given a vdev of a driver that is not a DMA driver.
    #[error(
        "{name} is not a DMA device: dma add takes a DMA driver's vdev (dma_skeleton1, ...) \
         or a PCI address"
    )]
    NotADmaDevice { name: String },
    /// `dma add NAME,ARGS` of a device DPDK already drives: the arguments would be ignored.
    #[error(
        "cannot apply {args:?}: {device} is already probed, with the arguments it was probed \
         with: remove it first (dma remove of any of its channels), then dma add \
         {device},{args}; or dma add {device} without arguments to adopt its free queues as \
         they are"
    )]
    ProbedWithArgs { device: String, args: String },
    /// A registered channel has this name already.
    #[error("DMA channel {name} is already in use")]
    NameInUse { name: String },
    /// `dma add` of a DSA function all of whose work queues are channels already.
    #[error("every DMA channel of {name} is already in use ({})", .queues.join(", "))]
    AllQueuesInUse { name: String, queues: Vec<String> },
    /// `dma add wqD.Q` of a work queue the EAL did not find at start.
    #[error(
        "cannot add {name}: it is a DSA work queue of the kernel's idxd driver, and DPDK's dsa \
         bus has no hot-plug (it takes such queues only when the EAL starts: enabled user \
         queues named dpdk_* or FILEPREFIX_*). Either configure and enable it (accel-config \
         config-engine {dsa}/engine{n}.0 --group-id=0; accel-config config-wq {dsa}/{name} \
         --group-id=0 --type=user --wq-size=32 --mode=dedicated --name=FILEPREFIX_{name}; \
         accel-config enable-device {dsa}; accel-config enable-wq {dsa}/{name}; FILEPREFIX is \
         l2fwd's --file-prefix, as in configs/l2fwd-lab-dsa.toml) and start l2fwd again, or \
         give the whole DSA function to DPDK: dpdk-devbind.py -b vfio-pci ADDR, then dma add \
         ADDR,max_queues=N",
        n = .dsa.trim_start_matches("dsa")
    )]
    DsaNoHotplug {
        name: String,
        /// The DSA instance of the queue: `dsa0` for `wq0.1`.
        dsa: String,
    },
    /// `dma add` of a PCI device that is not bound to vfio-pci (or is gone).
    #[error(transparent)]
    Binding(#[from] BindingError),
    /// A port has this name (or is on this device).
    #[error("{name} is in use as a port, not a DMA device")]
    PortInUse { name: String },
    /// A DMA device of this name exists already and is not the data plane's.
    #[error("DMA device {name} already exists")]
    DeviceExists { name: String },
    /// Probing the device on its bus failed.
    #[error("{}", probe_message(devargs, bus, source))]
    Probe {
        devargs: String,
        bus: &'static str,
        source: pmd::Error,
    },
    /// The probed device has no usable dmadev of this name; `others` are the dmadevs its bus
    /// device does carry.
    #[error("{name} is not a usable DMA device: {source}{}", carries(.others))]
    Unusable {
        name: String,
        source: pmd::Error,
        others: Vec<String>,
    },
    /// The device's id is beyond the fault table (the devices the data plane can drive). If
    /// this add probed it, it was unplugged again, unless `unplug` says why not; if not, its
    /// dmadevs were left as they were, stopped.
    #[error(
        "{name} has device id {dev_id}, beyond the {table} the data plane can drive{}",
        unplug_failure(.unplug)
    )]
    DeviceIdBeyondTable {
        name: String,
        dev_id: i16,
        table: usize,
        unplug: Option<pmd::Error>,
    },
    /// The added channel `name` is published to a worker (and registered as active), but the
    /// worker has not yet confirmed it. `channels` are all those the add registered (every
    /// work queue of a DSA function, `name` among them); those after `name` went to other
    /// workers, or on standby when every worker had one unconfirmed.
    #[error(
        "{name} is published, but not yet confirmed: {source} (this add registered {})",
        .channels.join(", ")
    )]
    Unconfirmed {
        name: String,
        channels: Vec<String>,
        source: GraceTimeout,
    },
    /// `dma fault` without `--allow-fault-injection`.
    #[error("fault injection is disabled: start l2fwd with --allow-fault-injection")]
    FaultInjectionDisabled,
    /// `dma fault` with a fault other than `stall`, `stop` or `none`.
    #[error("unknown fault {fault:?}: expected stall, stop or none")]
    UnknownFault { fault: String },
    /// The channel's device id has no fault switch.
    #[error(
        "DMA channel {name} has no fault switch (device id {dev_id} is beyond the table of \
         {table})"
    )]
    NoFaultSwitch {
        name: String,
        dev_id: i16,
        table: usize,
    },
    /// `copybreak` outside 1..=65535 bytes.
    #[error("invalid copybreak {bytes}: give 1..=65535 bytes")]
    BadCopybreak { bytes: u32 },
}

/// A channel that failed (a removal could not stop its device): its device and quarantined
/// buffers are kept until exit, and requests on it are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DMA channel {name} failed: {reason}; its device and buffers are kept until exit")]
pub struct FailedChannel {
    pub name: String,
    /// Why, as reported in its `error` field.
    pub reason: String,
}

/// Why `rte_dma_stop` failed on a channel.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    /// A drill (`dma fault NAME stop`) made it fail; the engine is left running.
    #[error("rte_dma_stop failed (injected by `dma fault NAME stop`)")]
    Injected,
    /// DPDK's own failure.
    #[error(transparent)]
    Dpdk(#[from] pmd::Error),
}

/// A channel whose device a removal could not stop.
#[derive(Debug, thiserror::Error)]
#[error("rte_dma_stop on {channel}: {cause}")]
pub struct StopFailure {
    pub channel: String,
    #[source]
    pub cause: StopError,
}

/// `items`' texts joined by `; `.
fn joined(items: &[impl std::fmt::Display]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// ` (its device carries A, B)`, or nothing when `others` is empty.
fn carries(others: &[String]) -> String {
    if others.is_empty() {
        String::new()
    } else {
        format!(" (its device carries {})", others.join(", "))
    }
}

/// ` (and it could not be unplugged: ERROR)`, or nothing.
fn unplug_failure(e: &Option<pmd::Error>) -> String {
    e.as_ref()
        .map(|e| format!(" (and it could not be unplugged: {e})"))
        .unwrap_or_default()
}

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
    /// Closes the open loop-gap window and opens the next (see [`crate::gaps`]).
    #[serde(rename = "loop gaps")]
    LoopGaps {},
}

/// What a request produced. The control socket sends it as the `result` of its answer
/// ([`crate::ctlsock::answer`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// `stats`: the data plane's statistics, as the stats hook of [`Control::handle`] took them.
    Stats(Box<L2fwdReport>),
    /// `dma list`: the channel registry.
    Channels(Vec<DmaChannelReport>),
    /// `dma remove`: the removal of the channel named.
    Removed(HotRemoveReport),
    /// `dma add`: the channel registered.
    Added(Added),
    /// `dma fault`: the fault set.
    Fault(FaultSet),
    /// `copybreak`: the copybreak (bytes) every worker takes at the top of its next iteration.
    Copybreak(u32),
    /// `loop gaps`: the window just closed, each worker's longest loop iteration in it.
    LoopGaps(ClosedWindow),
}

/// A channel `dma add` registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    pub name: String,
    /// The worker it was published to; None: on standby (there is no worker).
    pub worker: Option<usize>,
    /// The other channels the same add registered (the other work queues of a DSA function,
    /// `-q1`, `-q2`, ...), each dealt to the worker with the fewest channels in turn; their own
    /// `others` are empty.
    pub others: Vec<Added>,
}

impl Added {
    /// One channel, `name`, on `worker`.
    pub fn one(name: &str, worker: Option<usize>) -> Self {
        Added {
            name: name.to_owned(),
            worker,
            others: Vec::new(),
        }
    }

    /// Every channel registered: this one, then the others.
    pub fn channels(&self) -> impl Iterator<Item = &Added> {
        std::iter::once(self).chain(self.others.iter())
    }
}

impl Added {
    /// `active` when published to a worker, else `standby`.
    pub fn state(&self) -> DmaChannelState {
        match self.worker {
            Some(_) => DmaChannelState::Active,
            None => DmaChannelState::Standby,
        }
    }
}

/// A drill fault (`dma fault NAME stall|stop|none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The channel's completions stop arriving: its worker retires it as stalled.
    Stall,
    /// Its next `rte_dma_stop` fails (the engine is left running).
    Stop,
    /// Clears both.
    None,
}

impl Fault {
    /// The fault as requested: `stall`, `stop` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Stall => "stall",
            Fault::Stop => "stop",
            Fault::None => "none",
        }
    }
}

impl std::str::FromStr for Fault {
    type Err = ControlError;
    fn from_str(s: &str) -> Result<Self, ControlError> {
        match s {
            "stall" => Ok(Fault::Stall),
            "stop" => Ok(Fault::Stop),
            "none" => Ok(Fault::None),
            _ => Err(ControlError::UnknownFault {
                fault: s.to_owned(),
            }),
        }
    }
}

/// The fault `dma fault` set on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSet {
    pub channel: String,
    pub fault: Fault,
}

/// Where a channel stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelState {
    /// Published to a worker.
    Active(usize),
    /// Started but there is no worker to publish it to.
    Standby,
    /// Its worker gave up on it (no completion within `--dma-timeout-ms`) and it was
    /// unpublished from `worker` at `generation`. The device keeps running (its quarantined
    /// buffers stay held until it is stopped); the channel is published again once that
    /// worker is quiescent, the fault switch is off and every submitted copy has completed.
    Stalled {
        worker: usize,
        generation: Generation,
    },
    /// `rte_dma_stop` failed during a removal: the engine may still write the quarantined
    /// buffers, so they and the device are kept (leaked rather than freed), and requests on
    /// the channel get an error. Shutdown tries the stop once more.
    Failed,
    /// Removed (by request or a device event).
    Removed,
}

impl ChannelState {
    /// The state as reported (`dma list`, the report's `dma_channels`).
    pub fn reported(&self) -> DmaChannelState {
        match self {
            ChannelState::Active(_) => DmaChannelState::Active,
            ChannelState::Standby => DmaChannelState::Standby,
            ChannelState::Stalled { .. } => DmaChannelState::Stalled,
            ChannelState::Failed => DmaChannelState::Failed,
            ChannelState::Removed => DmaChannelState::Removed,
        }
    }

    /// The reported state's name (`active`, `standby`, `stalled`, `failed`, `removed`).
    pub fn as_str(&self) -> &'static str {
        self.reported().as_str()
    }
}

/// The other channels among `names` on the same bus device as `name` (the work queues of one
/// DSA function: `0000:6a:01.0-q0` and `-q1`), which a removal of `name` removes too.
pub fn siblings_of<'a>(name: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let (bus, dev) = bus_device_of(name);
    names
        .into_iter()
        .filter(|&n| n != name && bus_device_of(n) == (bus, dev))
        .collect()
}

/// Which dmadevs `dma add NAME` takes, once NAME's device is probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adoption {
    /// These, in this order.
    Channels(Vec<String>),
    /// NAME is a device whose dmadevs (these) are all channels already.
    AllInUse(Vec<String>),
    /// No dmadev of that name, and none on a device of that name.
    Nothing,
}

/// Which dmadevs `dma add NAME` adopts, given every dmadev after the probe as `(name, bus
/// device)` and the channels `in_use`:
/// - a dmadev named NAME (a vdev, an IOAT/CBDMA channel `0000:00:04.0`, one DSA work queue
///   `0000:6a:01.0-q1`): that one (the caller refused it if it is in use);
/// - else the dmadevs whose device is NAME (a DSA function `0000:6a:01.0` probed over PCI
///   makes `0000:6a:01.0-q0`, `-q1`, ..., never a dmadev of its own name) that are not in
///   use, in queue order; [`Adoption::AllInUse`] if every one is;
/// - else [`Adoption::Nothing`].
pub fn adoption(name: &str, dmadevs: &[(String, String)], in_use: &[&str]) -> Adoption {
    if dmadevs.iter().any(|(n, _)| n == name) {
        return Adoption::Channels(vec![name.to_owned()]);
    }
    let queue = |n: &str| {
        n.rsplit_once("-q")
            .and_then(|(_, q)| q.parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    };
    let mut of_device: Vec<&str> = dmadevs
        .iter()
        .filter(|(_, d)| d == name)
        .map(|(n, _)| n.as_str())
        .collect();
    of_device.sort_by_key(|n| (queue(n), n.to_string()));
    of_device.dedup();
    if of_device.is_empty() {
        return Adoption::Nothing;
    }
    let free: Vec<String> = of_device
        .iter()
        .filter(|n| !in_use.contains(n))
        .map(|n| n.to_string())
        .collect();
    if free.is_empty() {
        Adoption::AllInUse(of_device.into_iter().map(String::from).collect())
    } else {
        Adoption::Channels(free)
    }
}

/// Whether `dma add` probes `dev_name` on `bus` with `args`, given whether DPDK already
/// drives it (`probed`), after what must hold first. A device already probed is not probed
/// again, so it takes no arguments (DPDK would ignore them: its queues stay as they were
/// probed) and its binding is not read (DPDK drives it, whatever sysfs says or lacks). A PCI
/// device to be probed must be bound to vfio-pci, read from `sysfs`; where the tree lists no
/// PCI devices at all (a container without /sys/bus/pci) that check is skipped with a warning,
/// and the probe decides.
fn must_probe(
    bus: &str,
    dev_name: &str,
    args: &str,
    probed: bool,
    sysfs: &PciSysfs,
) -> Result<bool, ControlError> {
    if probed {
        if !args.trim().is_empty() {
            return Err(ControlError::ProbedWithArgs {
                device: dev_name.to_owned(),
                args: args.to_owned(),
            });
        }
        return Ok(false);
    }
    if bus == "pci" {
        if sysfs.lists_pci_devices() {
            crate::sysfs::dma_binding(sysfs, dev_name)?;
        } else {
            log!(
                "control: warning: {} has no bus/pci/devices: cannot check that {dev_name} is \
                 bound to vfio-pci; probing it anyway",
                sysfs.root().display()
            );
        }
    }
    Ok(true)
}

/// The workers `n` new channels go to, in turn, given each worker's channel count: each to the
/// worker with the fewest at that moment (the lowest-numbered of those tied), as
/// [`Control::add`] deals a DSA function's work queues. All None when there is no worker (the
/// channels wait on standby).
pub fn deal(counts: &[usize], n: usize) -> Vec<Option<usize>> {
    let mut counts = counts.to_vec();
    (0..n)
        .map(|_| {
            let w = least_loaded_of(&counts, &[])?;
            counts[w] += 1;
            Some(w)
        })
        .collect()
}

/// The worker with the fewest channels given each one's count (the lowest-numbered of those
/// tied), leaving out `skip` (workers that did not confirm a channel of this add); None when
/// none is left.
pub fn least_loaded_of(counts: &[usize], skip: &[usize]) -> Option<usize> {
    (0..counts.len())
        .filter(|w| !skip.contains(w))
        .min_by_key(|&w| (counts[w], w))
}

struct Channel<'e, 'p> {
    name: String,
    id: ChannelId,
    dev: Option<DmaDev<'e>>,
    state: ChannelState,
    /// The device's counters when it was stopped.
    last_stats: DmaStats,
    /// Times a worker retired it as stalled.
    stalls: u64,
    /// Copies re-done by the CPU after it stalled or was removed.
    recopied: u64,
    /// Destination buffers its engine may still write: freed only once it is stopped.
    held: Vec<Quarantine<'p>>,
    /// Drill: make its next `rte_dma_stop` fail (the engine is left running).
    fail_stop: bool,
    /// Why it failed.
    error: Option<String>,
    /// What its device said it can do when it was registered.
    caps: Option<DmaCapabilities>,
}

impl<'e> Channel<'e, '_> {
    /// A channel just registered: nothing stalled, recopied or held yet.
    fn new(name: &str, id: ChannelId, dev: Option<DmaDev<'e>>, state: ChannelState) -> Self {
        let caps = dev
            .as_ref()
            .and_then(|d| d.info().ok())
            .map(|i| DmaCapabilities::from(&i));
        Channel {
            name: name.to_owned(),
            id,
            dev,
            state,
            caps,
            last_stats: DmaStats::default(),
            stalls: 0,
            recopied: 0,
            held: Vec::new(),
            fail_stop: false,
            error: None,
        }
    }

    /// Stops the device (unless a drill says the stop fails) and frees what it held if it is
    /// stopped.
    fn stop(&mut self) -> Result<(), StopError> {
        let Some(d) = self.dev.as_mut() else {
            return Ok(());
        };
        self.last_stats = d.stats().unwrap_or(self.last_stats);
        if self.fail_stop {
            return Err(StopError::Injected);
        }
        d.stop()?;
        // Stopped: nothing can write the quarantined buffers any more.
        let mut kept = Vec::new();
        for q in self.held.drain(..) {
            if let Err(q) = q.release(d) {
                kept.push(q); // another device's buffers: never freed here
            }
        }
        self.held = kept;
        Ok(())
    }
}

/// The control thread's state.
pub struct Control<'e, 'q, 'p> {
    eal: &'e Eal,
    qsbr: &'q Qsbr,
    retired: &'q [SegQueue<Retired<'p>>],
    faults: &'q [AtomicBool],
    copybreak: &'q [AtomicU32],
    gaps: &'q LoopGapWindows,
    /// When the open loop-gap window opened.
    gap_window_opened: Instant,
    allow_faults: bool,
    grace_timeout: Duration,
    nb_desc: u16,
    channels: Vec<Channel<'e, 'p>>,
    /// Retired lanes reported by workers and not yet settled.
    pending: Vec<(usize, Retired<'p>)>,
    /// Buffers of no known channel: leaked at shutdown unless their device is stopped then.
    leftover: Vec<Quarantine<'p>>,
    /// The workers follow their slots (a copy stage); without one there is nothing to manage.
    dma_enabled: bool,
    /// The workers' copy mode (`--copy`).
    copy_mode: CopyMode,
    pub hot_removes: Vec<HotRemoveReport>,
}

impl<'e, 'q, 'p> Control<'e, 'q, 'p> {
    /// The control thread of `shared`, taking its devices: one per shared state (None for a
    /// second one).
    pub fn new(
        eal: &'e Eal,
        shared: &'q Shared<'e, 'p>,
        allow_faults: bool,
        grace_timeout: Duration,
        nb_desc: u16,
    ) -> Option<Self> {
        let devs = shared.take_devs()?;
        Some(Control {
            eal,
            qsbr: &shared.qsbr,
            retired: &shared.retired,
            faults: &shared.faults,
            copybreak: &shared.copybreak,
            gaps: &shared.gaps,
            gap_window_opened: Instant::now(),
            allow_faults,
            grace_timeout,
            nb_desc,
            channels: devs
                .into_iter()
                .map(|(d, state)| {
                    let (name, id) = (d.name().to_owned(), ChannelId::new(d.id(), 0));
                    Channel::new(&name, id, Some(d), state)
                })
                .collect(),
            pending: Vec::new(),
            leftover: Vec::new(),
            dma_enabled: true,
            copy_mode: CopyMode::Dma,
            hot_removes: Vec::new(),
        })
    }

    /// Declares that the workers have no copy stage (`--copy none`): they never poll their
    /// slots, so DMA channels cannot be added, removed or faulted.
    pub fn set_dma_enabled(&mut self, on: bool) {
        self.dma_enabled = on;
    }

    /// Declares the workers' copy mode (`--copy`, dma when never set): `none` has no copy
    /// stage (as [`Self::set_dma_enabled`]`(false)`), and only `dma` and `auto` take a
    /// copybreak.
    pub fn set_copy_mode(&mut self, mode: CopyMode) {
        self.copy_mode = mode;
        self.dma_enabled = mode != CopyMode::None;
    }

    fn need_dma(&self) -> Result<(), ControlError> {
        if self.dma_enabled {
            Ok(())
        } else {
            Err(ControlError::NoCopyStage)
        }
    }

    /// The fault switch of channel `id`'s device, if the table has one for it.
    fn fault_switch(&self, id: ChannelId) -> Option<&'q AtomicBool> {
        usize::try_from(id.dev())
            .ok()
            .and_then(|d| self.faults.get(d))
    }

    /// Whether channel `id`'s stall switch is on (a drill).
    fn faulted(&self, id: ChannelId) -> bool {
        // Relaxed: a drill switch; no data depends on it.
        self.fault_switch(id)
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// Handles one request; `stats` takes the data plane's statistics for `stats`.
    pub fn handle(
        &mut self,
        req: Request,
        stats: &dyn Fn(&Self) -> L2fwdReport,
    ) -> Result<Response, ControlError> {
        match req {
            Request::Stats {} => Ok(Response::Stats(Box::new(stats(self)))),
            Request::DmaList {} => Ok(Response::Channels(self.channel_reports())),
            Request::DmaRemove { name } => self.remove(&name).map(Response::Removed),
            Request::DmaAdd { devargs } => self.add(&devargs).map(Response::Added),
            Request::DmaFault { name, fault } => self.fault(&name, &fault).map(Response::Fault),
            Request::Copybreak { bytes } => {
                if !matches!(self.copy_mode, CopyMode::Dma | CopyMode::Auto) {
                    return Err(ControlError::NoCopybreak {
                        mode: self.copy_mode.name(),
                    });
                }
                if bytes == 0 || bytes > 65535 {
                    return Err(ControlError::BadCopybreak { bytes });
                }
                for c in self.copybreak {
                    // Relaxed: a setting each worker picks up at the top of its loop.
                    c.store(bytes, Ordering::Relaxed);
                }
                Ok(Response::Copybreak(bytes))
            }
            Request::LoopGaps {} => {
                let closed = self.gaps.close(self.gap_window_opened, pmd::tsc_hz());
                self.gap_window_opened = Instant::now();
                Ok(Response::LoopGaps(closed))
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
                    .filter(|d| !d.is_stopped())
                    .and_then(|d| d.stats().ok())
                    .unwrap_or(c.last_stats);
                let worker = match c.state {
                    ChannelState::Active(w) => Some(w),
                    _ => None,
                };
                DmaChannelReport {
                    name: c.name.clone(),
                    state: c.state.reported(),
                    worker,
                    stalled: c.stalls > 0,
                    stalls: c.stalls,
                    recopied: c.recopied,
                    error: c.error.clone(),
                    capabilities: c.caps.clone(),
                    submitted: s.submitted,
                    completed: s.completed,
                    failed: s.errors,
                }
            })
            .collect()
    }

    /// The channel named `name` that is not removed (stalled and failed ones included: one
    /// registry, one answer).
    fn find(&self, name: &str) -> Result<usize, ControlError> {
        // As DPDK names it: `00:04.0` is the channel `0000:00:04.0`.
        let name = &*pmd::canonical_pci_name(name);
        self.channels
            .iter()
            .position(|c| c.name == name && c.state != ChannelState::Removed)
            .ok_or_else(|| ControlError::UnknownChannel {
                name: name.to_owned(),
                known: self
                    .channels
                    .iter()
                    .filter(|c| c.state != ChannelState::Removed)
                    .map(|c| c.name.clone())
                    .collect(),
            })
    }

    /// Refuses a request on a failed channel.
    fn usable(&self, i: usize) -> Result<(), FailedChannel> {
        let c = &self.channels[i];
        if c.state == ChannelState::Failed {
            return Err(FailedChannel {
                name: c.name.clone(),
                reason: c.error.clone().unwrap_or_else(|| "unknown error".into()),
            });
        }
        Ok(())
    }

    /// Collects the workers' retired-lane reports.
    fn collect(&mut self) {
        for (w, q) in self.retired.iter().enumerate() {
            while let Some(r) = q.pop() {
                self.pending.push((w, r));
            }
        }
    }

    /// Periodic work: channels that workers retired as stalled are unpublished; stalled
    /// channels that complete again are published again.
    pub fn tick(&mut self) {
        self.collect();
        self.settle_stalls();
        self.revive_stalled();
    }

    /// Takes each channel a worker retired as stalled away from that worker (a new generation
    /// without it); its quarantined buffers stay with it until its device is stopped.
    fn settle_stalls(&mut self) {
        let mut k = 0;
        while k < self.pending.len() {
            if !self.pending[k].1.stalled {
                k += 1;
                continue;
            }
            let (from, r) = self.pending.remove(k);
            let Some(c) = self
                .channels
                .iter_mut()
                .find(|c| c.id == r.channel && c.state != ChannelState::Removed)
            else {
                self.leftover.push(r.quarantine);
                continue;
            };
            c.recopied += r.recopied;
            c.held.push(r.quarantine);
            if c.state != ChannelState::Active(from) {
                continue; // already taken away (a removal in progress, or stalled already)
            }
            c.stalls += 1;
            let keep: Vec<ChannelId> = self
                .qsbr
                .assignment(from)
                .channels()
                .filter(|&x| x != c.id)
                .collect();
            let generation = self.qsbr.publish(from, &keep);
            c.state = ChannelState::Stalled {
                worker: from,
                generation,
            };
            log!(
                "control: DMA channel {} stalled on worker {from} (no completion within \
                 --dma-timeout-ms; {} copies re-done on the CPU): retired until it completes again",
                c.name,
                r.recopied
            );
        }
    }

    /// Publishes again each stalled channel whose worker is quiescent, whose fault switch is
    /// off and whose engine completed everything submitted to it.
    fn revive_stalled(&mut self) {
        for i in 0..self.channels.len() {
            let ChannelState::Stalled { worker, generation } = self.channels[i].state else {
                continue;
            };
            let id = self.channels[i].id;
            if !self.qsbr.quiescent(worker, generation) || self.faulted(id) {
                continue;
            }
            let Some(dev) = self.channels[i].dev.as_mut() else {
                continue;
            };
            // Quiescent: no worker holds the channel; collect what the abandoned copies left.
            reap_abandoned(dev);
            let Ok(s) = dev.stats() else { continue };
            if s.completed != s.submitted && s.completed + s.errors != s.submitted {
                continue; // the engine still works on copies submitted before the stall
            }
            let target = self.least_loaded();
            let c = &mut self.channels[i];
            match target {
                Some(w) => {
                    let mut chans: Vec<ChannelId> = self.qsbr.assignment(w).channels().collect();
                    chans.push(id);
                    self.qsbr.publish(w, &chans);
                    c.state = ChannelState::Active(w);
                    log!(
                        "control: DMA channel {} completes again: back on worker {w}",
                        c.name
                    );
                }
                None => {
                    c.state = ChannelState::Standby;
                    log!(
                        "control: DMA channel {} completes again: on standby (there is no worker)",
                        c.name
                    );
                }
            }
        }
    }

    /// The worker with the fewest channels (the lowest-numbered of those tied), if there is a
    /// worker. A worker has no cap: a slot holds every channel there can be.
    fn least_loaded(&self) -> Option<usize> {
        (0..self.qsbr.workers())
            .map(|w| (self.qsbr.channel_count(w), w))
            .min()
            .map(|(_, w)| w)
    }

    /// A device went away (a device event): releases its channels still in use, the device's
    /// own and its DSA work queues `NAME-q0`, ...; returns each removal tried with its outcome.
    /// A removal usually arrives twice (the VFIO request, then the kernel's uevent; see
    /// `pmd::DevEventMonitor`): the second finds nothing left and returns nothing. Removing
    /// one work queue removes its siblings with it (one unplug of the PCI function), so the
    /// channels left are looked up again after each removal rather than removed one by one; a
    /// removal that fails leaves its channel failed, and it is not tried again here.
    pub fn device_removed(
        &mut self,
        device: &str,
    ) -> Vec<(String, Result<HotRemoveReport, ControlError>)> {
        let device = pmd::canonical_pci_name(device);
        let prefix = format!("{device}-");
        let mut tried: Vec<(String, Result<HotRemoveReport, ControlError>)> = Vec::new();
        loop {
            let next = self
                .channels
                .iter()
                .filter(|c| c.state != ChannelState::Removed)
                .map(|c| c.name.as_str())
                .find(|n| {
                    (*n == &*device || n.starts_with(prefix.as_str()))
                        && !tried.iter().any(|(t, _)| t == n)
                })
                .map(str::to_owned);
            let Some(channel) = next else {
                return tried;
            };
            let outcome = self.remove(&channel);
            tried.push((channel, outcome));
        }
    }

    /// Hot-removes channel `name`, and every other channel on its bus device (see the module
    /// docs). Returns the report of `name`'s removal; each is recorded in `hot_removes`.
    pub fn remove(&mut self, name: &str) -> Result<HotRemoveReport, ControlError> {
        self.need_dma()?;
        // As DPDK names it: `00:04.0` is the channel `0000:00:04.0`.
        let name = &*pmd::canonical_pci_name(name);
        let t0 = Instant::now();
        let i = self.find(name)?;
        self.usable(i).map_err(ControlError::ChannelFailed)?;
        let mut group = vec![i];
        let live: Vec<&str> = self
            .channels
            .iter()
            .filter(|c| c.state != ChannelState::Removed)
            .map(|c| c.name.as_str())
            .collect();
        for sib in siblings_of(name, live) {
            group.extend(self.find(sib));
        }
        for &j in &group[1..] {
            self.usable(j)
                .map_err(|failed| ControlError::SiblingFailed {
                    name: name.to_owned(),
                    failed,
                })?;
        }
        // 1. Unpublish every channel of the device from its worker.
        let t_unpublish = Instant::now();
        let mut waits = Vec::new();
        for &j in &group {
            let id = self.channels[j].id;
            match self.channels[j].state {
                ChannelState::Active(w) => {
                    let keep: Vec<ChannelId> = self
                        .qsbr
                        .assignment(w)
                        .channels()
                        .filter(|&c| c != id)
                        .collect();
                    waits.push((w, self.qsbr.publish(w, &keep)));
                }
                ChannelState::Stalled { worker, generation } => waits.push((worker, generation)),
                _ => {}
            }
        }
        // 2. The grace period of each (a later `remove` tries again).
        for (w, g) in waits {
            self.qsbr
                .wait_grace(w, g, self.grace_timeout, Duration::from_micros(50))
                .map_err(|source| ControlError::GraceTimeout {
                    name: name.to_owned(),
                    source,
                })?;
        }
        let t_grace = Instant::now();
        // Quiescent: the workers handed the lanes back before adopting.
        self.collect();
        let mut counts = vec![(0u64, 0u64); group.len()];
        let mut k = 0;
        while k < self.pending.len() {
            let id = self.pending[k].1.channel;
            let Some(g) = group.iter().position(|&j| self.channels[j].id == id) else {
                k += 1;
                continue;
            };
            let (_, r) = self.pending.remove(k);
            let c = &mut self.channels[group[g]];
            counts[g].0 += r.drained;
            counts[g].1 += r.recopied;
            c.recopied += r.recopied;
            c.stalls += r.stalled as u64;
            c.held.push(r.quarantine);
        }
        // 3. Stop every one; a failed stop keeps the device and its buffers.
        let mut failures = Vec::new();
        for &j in &group {
            if let Err(cause) = self.channels[j].stop() {
                failures.push(StopFailure {
                    channel: self.channels[j].name.clone(),
                    cause,
                });
            }
        }
        if !failures.is_empty() {
            let why = joined(&failures);
            for &j in &group {
                let c = &mut self.channels[j];
                c.state = ChannelState::Failed;
                c.error = Some(why.clone());
                log!("control: DMA channel {} failed: {why}", c.name);
            }
            return Err(ControlError::StopFailed { failures });
        }
        // 4. Close the siblings, then remove the device with the last one.
        let t_stopped = Instant::now();
        let mut unplug = Ok(());
        for (g, &j) in group.iter().enumerate().rev() {
            let c = &mut self.channels[j];
            if let Some(dev) = c.dev.take() {
                if g == 0 {
                    // rte_dma_close and rte_dev_remove. A device already gone from its bus
                    // (a device event) is still closed.
                    unplug = dev.unplug(self.eal).map_err(|(dev, e)| {
                        drop(dev); // stopped: rte_dma_close
                        e
                    });
                } else {
                    drop(dev); // stopped: rte_dma_close
                }
            }
            c.state = ChannelState::Removed;
            let leftover: Vec<Quarantine<'p>> = c.held.drain(..).collect();
            let id = c.id;
            let name = c.name.clone();
            self.leftover.extend(leftover);
            if let Some(f) = self.fault_switch(id) {
                // Relaxed: the switch belongs to a device id that a later add may reuse.
                f.store(false, Ordering::Relaxed);
            }
            let now = Instant::now();
            let r = HotRemoveReport {
                channel: name,
                latency_us: (now - t0).as_secs_f64() * 1e6,
                grace_us: (t_grace - t_unpublish).as_secs_f64() * 1e6,
                stop_us: (t_stopped - t_grace).as_secs_f64() * 1e6,
                unplug_us: (now - t_stopped).as_secs_f64() * 1e6,
                drained: counts[g].0,
                recopied: counts[g].1,
            };
            self.hot_removes.push(r);
        }
        if let Err(e) = unplug {
            let (bus, _) = bus_device_of(name);
            log!("control: {name} closed but not unplugged from bus {bus}: {e}");
        }
        self.hot_removes
            .iter()
            .rev()
            .find(|r| r.channel == name)
            .cloned()
            .ok_or_else(|| ControlError::RemovalNotRecorded {
                name: name.to_owned(),
            })
    }

    /// Hot-adds a DMA device: `NAME[,ARGS]`, for example `dma_skeleton1,lcore=0` (a vdev),
    /// `0000:00:04.1` (an IOAT/CBDMA channel bound to vfio-pci), `0000:6a:01.0,max_queues=2`
    /// (a DSA function bound to vfio-pci: every work queue it makes is adopted) or
    /// `0000:6a:01.0-q1` (one queue of a function already probed). Only DMA devices, and never
    /// a name already in use: a vdev must be of a DMA driver (`dma_*`), which is checked before
    /// anything is probed; a PCI device to be probed must be bound to vfio-pci (read from
    /// sysfs: a uio driver or a kernel driver is refused, naming the `dpdk-devbind.py`
    /// command), and one DPDK already drives takes no arguments ([`must_probe`]) and carry a
    /// dmadev of that name once probed, or be a function whose dmadevs are adopted
    /// ([`adoption`]); a DSA work queue of the kernel driver (`wqD.Q`) must be one the EAL
    /// found at start (the dsa bus has no hot-plug). Nothing is ever removed here.
    pub fn add(&mut self, devargs: &str) -> Result<Added, ControlError> {
        self.add_with_sysfs(devargs, &PciSysfs::system())
    }

    /// [`Self::add`], reading PCI drivers from `sysfs` (a test's fake tree).
    pub fn add_with_sysfs(
        &mut self,
        devargs: &str,
        sysfs: &PciSysfs,
    ) -> Result<Added, ControlError> {
        self.need_dma()?;
        let (name, args) = devargs.split_once(',').unwrap_or((devargs, ""));
        // As DPDK names it: `00:04.0` probes and opens `0000:00:04.0`.
        let name = pmd::canonical_pci_name(name.trim());
        let name = &*name;
        if name.is_empty() {
            return Err(ControlError::BadDevargs {
                devargs: devargs.to_owned(),
            });
        }
        let (bus, dev_name) = bus_device_of(name);
        if bus == "vdev" && !name.starts_with("dma_") {
            return Err(ControlError::NotADmaDevice {
                name: name.to_owned(),
            });
        }
        let in_use: Vec<&str> = self
            .channels
            .iter()
            .filter(|c| c.state != ChannelState::Removed)
            .map(|c| c.name.as_str())
            .collect();
        if in_use.contains(&name) {
            return Err(ControlError::NameInUse {
                name: name.to_owned(),
            });
        }
        if Port::id_by_name(self.eal, name).is_some()
            || Port::id_by_name(self.eal, dev_name).is_some()
        {
            return Err(ControlError::PortInUse {
                name: name.to_owned(),
            });
        }
        let dmadevs = |eal: &Eal| -> Vec<(String, String)> {
            DmaDev::list(eal)
                .into_iter()
                .map(|d| (d.name, d.device))
                .collect()
        };
        // The dsa bus finds kernel-driver work queues at EAL start and cannot plug one later:
        // only one found then (and not in use: checked above) can be taken.
        if bus == "dsa" && DmaDev::id_by_name(self.eal, name).is_err() {
            let instance = name
                .strip_prefix("wq")
                .and_then(|r| r.split_once('.'))
                .map_or("0", |(d, _)| d);
            return Err(ControlError::DsaNoHotplug {
                name: name.to_owned(),
                dsa: format!("dsa{instance}"),
            });
        }
        // A PCI device already probed (another work queue of a DSA function), or a work queue
        // the dsa bus found at EAL start, is not probed again; anything else that already
        // exists is someone else's.
        let probed = matches!(bus, "pci" | "dsa")
            && dmadevs(self.eal)
                .iter()
                .any(|(_, device)| device == dev_name);
        if bus == "vdev" && DmaDev::id_by_name(self.eal, name).is_ok() {
            return Err(ControlError::DeviceExists {
                name: name.to_owned(),
            });
        }
        // Whether this add probed the device: a failure from here on undoes exactly that.
        let we_probed = must_probe(bus, dev_name, args, probed, sysfs)?;
        if we_probed {
            pmd::hotplug_add(self.eal, bus, dev_name, args).map_err(|source| {
                ControlError::Probe {
                    devargs: devargs.to_owned(),
                    bus,
                    source,
                }
            })?;
        }
        let names = match adoption(name, &dmadevs(self.eal), &in_use) {
            Adoption::Channels(names) => names,
            Adoption::AllInUse(names) => {
                return Err(ControlError::AllQueuesInUse {
                    name: name.to_owned(),
                    queues: names,
                })
            }
            // Opening it fails, saying what the device does carry.
            Adoption::Nothing => vec![name.to_owned()],
        };
        let mut devs = Vec::with_capacity(names.len());
        for n in &names {
            match DmaDev::open(self.eal, n, self.nb_desc) {
                Ok(d) => devs.push(d),
                Err(source) => {
                    let others = DmaDev::list(self.eal)
                        .into_iter()
                        .filter(|d| d.device == dev_name && d.name != *n)
                        .map(|d| d.name)
                        .collect();
                    // Nothing was published.
                    if let Some(e) = self.undo_add(devs, bus, dev_name, we_probed) {
                        log!("control: {dev_name} probed by a failed dma add, not unplugged: {e}");
                    }
                    return Err(ControlError::Unusable {
                        name: n.clone(),
                        source,
                        others,
                    });
                }
            }
        }
        if let Some(d) = devs
            .iter()
            .find(|d| self.fault_switch(ChannelId::new(d.id(), 0)).is_none())
        {
            let (dev_id, name) = (d.id(), d.name().to_owned());
            let unplug = self.undo_add(devs, bus, dev_name, we_probed);
            return Err(ControlError::DeviceIdBeyondTable {
                name,
                dev_id,
                table: self.faults.len(),
                unplug,
            });
        }
        // Each is dealt to the worker with the fewest channels in turn, and registered before
        // the next is published; a worker that did not confirm one gets no more (it may be
        // stuck), and the first unconfirmed one is the answer's error, naming every channel
        // this add registered.
        let mut counts: Vec<usize> = (0..self.qsbr.workers())
            .map(|w| self.qsbr.channel_count(w))
            .collect();
        let mut timed_out: Vec<usize> = Vec::new();
        let mut unconfirmed: Option<(String, GraceTimeout)> = None;
        let mut added: Vec<Added> = Vec::with_capacity(devs.len());
        for dev in devs {
            let target = least_loaded_of(&counts, &timed_out);
            let id = ChannelId::new(dev.id(), 0);
            let dev_name = dev.name().to_owned();
            if let Some(fault) = self.fault_switch(id) {
                // Relaxed: the fault switch of a fresh device starts off.
                fault.store(false, Ordering::Relaxed);
            }
            let state = match target {
                Some(w) => {
                    counts[w] += 1;
                    let mut chans: Vec<ChannelId> = self.qsbr.assignment(w).channels().collect();
                    chans.push(id);
                    let g = self.qsbr.publish(w, &chans);
                    // Published: whatever the wait says, the worker may use the device from
                    // now on, so it is registered as active (and only ever removed through
                    // the protocol).
                    let waited =
                        self.qsbr
                            .wait_grace(w, g, self.grace_timeout, Duration::from_micros(50));
                    if let Err(source) = waited {
                        timed_out.push(w);
                        unconfirmed.get_or_insert((dev_name.clone(), source));
                    }
                    ChannelState::Active(w)
                }
                // No worker, or none that confirmed its last one.
                None => ChannelState::Standby,
            };
            self.channels
                .push(Channel::new(&dev_name, id, Some(dev), state));
            added.push(Added {
                name: dev_name,
                worker: match state {
                    ChannelState::Active(w) => Some(w),
                    _ => None,
                },
                others: Vec::new(),
            });
        }
        if let Some((name, source)) = unconfirmed {
            return Err(ControlError::Unconfirmed {
                name,
                channels: added.into_iter().map(|a| a.name).collect(),
                source,
            });
        }
        let mut first = added.remove(0);
        first.others = added;
        Ok(first)
    }

    /// Undoes a `dma add` that failed after its probe, before anything was published: `devs`
    /// are the dmadevs it opened. If this add probed bus device `dev_name`
    /// (`we_probed`), each is given back unclosed and the device is unplugged once (its
    /// driver's remove closes every dmadev it made), so a retry probes it afresh and finds
    /// all its queues. If it was probed before (the free queues of a DSA function another add
    /// or the EAL probed), each is only released, stopped but not closed: `rte_dma_close`
    /// would destroy it until the function is unplugged, and a retry would adopt only the
    /// survivors. Returns why the unplug failed, if it did.
    fn undo_add(
        &self,
        devs: Vec<DmaDev<'e>>,
        bus: &str,
        dev_name: &str,
        we_probed: bool,
    ) -> Option<pmd::Error> {
        for dev in devs {
            if let Err((dev, e)) = dev.release() {
                // Its engine may run: Drop tries the stop again and, if it fails, keeps the
                // device open and owned (then the unplug below refuses, naming it).
                log!("control: {}: {e}", dev.name());
                drop(dev);
            }
        }
        if !we_probed {
            return None;
        }
        DmaDev::unplug_device(self.eal, bus, dev_name).err()
    }

    /// `dma fault NAME stall|stop|none`, for drills: `stall` makes a channel's completions
    /// stop arriving (its worker then retires it as stalled), `stop` makes its next
    /// `rte_dma_stop` fail (the engine is left running), `none` clears both. Only with fault
    /// injection enabled. `fault` is checked once the channel is found (the order of the
    /// refusals is part of the protocol).
    pub fn fault(&mut self, name: &str, fault: &str) -> Result<FaultSet, ControlError> {
        self.need_dma()?;
        if !self.allow_faults {
            return Err(ControlError::FaultInjectionDisabled);
        }
        let i = self.find(name)?;
        self.usable(i).map_err(ControlError::ChannelFailed)?;
        let fault: Fault = fault.parse()?;
        let (stall, stop) = match fault {
            Fault::Stall => (true, false),
            Fault::Stop => (false, true),
            Fault::None => (false, false),
        };
        let id = self.channels[i].id;
        let Some(switch) = self.fault_switch(id) else {
            return Err(ControlError::NoFaultSwitch {
                name: name.to_owned(),
                dev_id: id.dev(),
                table: self.faults.len(),
            });
        };
        // Relaxed: a drill switch the worker reads once per completion poll.
        switch.store(stall, Ordering::Relaxed);
        self.channels[i].fail_stop = stop;
        Ok(FaultSet {
            channel: name.to_owned(),
            fault,
        })
    }

    /// At shutdown, after every worker stopped (offline): stop every device, then free what
    /// was quarantined, then close them. Returns the channel reports.
    pub fn shutdown(mut self) -> Vec<DmaChannelReport> {
        self.collect();
        if !self.workers_parked() {
            // A worker still runs and may be using its channels: stopping or closing them
            // under it is not allowed. Leak them (Drop does) and say so.
            log!("control: at exit, a worker is still running: DMA devices left open");
            return self.channel_reports();
        }
        for (_, r) in std::mem::take(&mut self.pending) {
            match self
                .channels
                .iter_mut()
                .find(|c| c.id == r.channel && c.state != ChannelState::Removed)
            {
                Some(c) => {
                    c.recopied += r.recopied;
                    c.held.push(r.quarantine);
                }
                None => self.leftover.push(r.quarantine),
            }
        }
        for c in &mut self.channels {
            if let Err(e) = c.stop() {
                log!("control: at exit, {}: {e}; its buffers are leaked", c.name);
            }
        }
        // Buffers of no channel go back to the pool only if their own device is stopped; the
        // rest leak when dropped (an engine that may still run never gets its buffers back).
        for q in std::mem::take(&mut self.leftover) {
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
            drop(c.dev.take()); // rte_dma_close, if stopped
        }
        reports
    }
}

impl Control<'_, '_, '_> {
    /// Whether every worker is offline, so that no channel is in use.
    fn workers_parked(&self) -> bool {
        (0..self.qsbr.workers()).all(|w| self.qsbr.parked(w))
    }
}

impl Drop for Control<'_, '_, '_> {
    fn drop(&mut self) {
        // Dropped (not shut down) while a worker may still use its channels: never stop or
        // close a device under it. Leak them instead.
        if !self.workers_parked() {
            for c in &mut self.channels {
                if let Some(d) = c.dev.take() {
                    std::mem::forget(d);
                }
            }
        }
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

    #[test]
    fn the_work_queues_of_one_dsa_function_are_siblings() {
        let names = [
            "0000:6a:01.0-q0",
            "0000:6a:01.0-q1",
            "0000:6a:02.0-q0",
            "0000:00:04.0",
            "0000:00:04.1",
            "dma_skeleton0",
            "dma_skeleton1",
        ];
        assert_eq!(siblings_of("0000:6a:01.0-q0", names), ["0000:6a:01.0-q1"]);
        assert_eq!(siblings_of("0000:6a:01.0-q1", names), ["0000:6a:01.0-q0"]);
        assert!(siblings_of("0000:6a:02.0-q0", names).is_empty());
        assert!(siblings_of("0000:00:04.0", names).is_empty());
        assert!(siblings_of("dma_skeleton0", names).is_empty());
        // Not a work queue suffix: its own vdev.
        assert!(siblings_of("dma_x-q0", ["dma_x-q1", "dma_x"]).is_empty());
    }

    /// idxd's own bus (DPDK 22.11 drivers/dma/idxd/idxd_bus.c) names each work queue it
    /// takes from the kernel driver `wqD.Q`: a device of the `dsa` bus, each its own (not a
    /// vdev, and no sibling of another work queue of the same DSA).
    #[test]
    fn idxd_bus_work_queues_are_dsa_devices_of_their_own() {
        assert_eq!(bus_device_of("wq0.0"), ("dsa", "wq0.0"));
        assert_eq!(bus_device_of("wq12.3"), ("dsa", "wq12.3"));
        assert_eq!(bus_device_of("0000:6a:01.0-q1"), ("pci", "0000:6a:01.0"));
        assert_eq!(bus_device_of("0000:00:04.0"), ("pci", "0000:00:04.0"));
        for vdev in ["wq0", "wq0.", "wq.0", "wq0.x", "wqa.0", "dma_skeleton0"] {
            assert_eq!(bus_device_of(vdev), ("vdev", vdev));
        }
        assert!(siblings_of("wq0.0", ["wq0.1", "wq1.0", "wq0.0"]).is_empty());
    }

    /// An EAL for this module's tests that need one: no devices, no hugepages.
    fn eal() -> &'static Eal {
        static EAL: std::sync::OnceLock<Eal> = std::sync::OnceLock::new();
        EAL.get_or_init(|| {
            Eal::init(&[
                "control_unit",
                "--no-huge",
                "--no-pci",
                "-m",
                "64",
                "-l",
                "0",
                "--log-level=error",
                &format!("--file-prefix=controlunit{}", std::process::id()),
            ])
            .expect("EAL init")
        })
    }

    /// A registered channel without a device (its stop and close do nothing): the work queues
    /// of a DSA function, which no vdev can stand in for, as far as the registry knows them.
    /// Registers a channel for each of `names` (devices 0, 1, ...), all active on worker 0.
    fn publish_queues(c: &mut Control, names: &[&str]) -> Vec<ChannelId> {
        for (k, n) in names.iter().enumerate() {
            c.channels.push(queue(n, k as i16));
        }
        let ids: Vec<ChannelId> = c.channels.iter().map(|ch| ch.id).collect();
        c.qsbr.publish(0, &ids);
        ids
    }

    fn queue(name: &str, dev: i16) -> Channel<'static, 'static> {
        Channel::new(name, ChannelId::new(dev, 0), None, ChannelState::Active(0))
    }

    /// Removing one work queue of a DSA function removes the function: every live sibling goes
    /// through the protocol with it (unpublished, grace period, stopped, removed, recorded),
    /// and a failed sibling makes the removal refuse, naming it, before anything is taken.
    #[test]
    fn removing_a_work_queue_takes_its_siblings_through_the_protocol_or_names_a_failed_one() {
        let shared = Shared::new(&[pmd::LcoreId::new(1)], Vec::new());
        let mut c = Control::new(eal(), &shared, false, Duration::from_secs(10), 64).unwrap();
        let q = ["0000:6a:01.0-q0", "0000:6a:01.0-q1", "0000:6a:02.0-q0"];
        let ids = publish_queues(&mut c, &q);
        // A parked worker is quiescent: each grace period passes at once.
        shared.worker(0).unwrap().offline();
        let state = |c: &Control, n: &str| {
            c.channels
                .iter()
                .find(|ch| ch.name == n)
                .map(|ch| ch.state)
                .unwrap()
        };

        c.channels[0].state = ChannelState::Failed;
        c.channels[0].error = Some("rte_dma_stop on 0000:6a:01.0-q0: boom".into());
        let e = c.remove(q[1]).unwrap_err();
        assert!(matches!(e, ControlError::SiblingFailed { .. }), "{e:?}");
        assert!(e.to_string().contains(q[0]), "{e}");
        assert_eq!(state(&c, q[1]), ChannelState::Active(0), "nothing taken");
        assert_eq!(c.qsbr.assignment(0).len(), 3, "nothing unpublished");
        assert!(c.hot_removes.is_empty());

        c.channels[0].state = ChannelState::Active(0);
        c.channels[0].error = None;
        let r = c.remove(q[1]).unwrap();
        assert_eq!(r.channel, q[1]);
        for n in &q[..2] {
            assert_eq!(state(&c, n), ChannelState::Removed, "{n}");
        }
        assert_eq!(state(&c, q[2]), ChannelState::Active(0), "another function");
        let mut removed: Vec<&str> = c.hot_removes.iter().map(|r| r.channel.as_str()).collect();
        removed.sort_unstable();
        assert_eq!(removed, &q[..2], "each removal recorded");
        let left: Vec<ChannelId> = c.qsbr.assignment(0).channels().collect();
        assert_eq!(left, [ids[2]], "both queues unpublished");
        assert!(matches!(
            c.remove(q[0]),
            Err(ControlError::UnknownChannel { .. })
        ));
    }

    /// A device event for a DSA function (its name as the event gives it, or as a user writes
    /// it, without the domain) removes its work queues with one removal (the siblings go with
    /// it), leaves another function's alone, and a second event for it (the uevent after the
    /// VFIO request) does nothing.
    #[test]
    fn a_device_event_removes_a_function_once_and_its_duplicate_does_nothing() {
        let shared = Shared::new(&[pmd::LcoreId::new(1)], Vec::new());
        let mut c = Control::new(eal(), &shared, false, Duration::from_secs(10), 64).unwrap();
        let q = ["0000:6a:01.0-q0", "0000:6a:01.0-q1", "0000:6a:02.0-q0"];
        publish_queues(&mut c, &q);
        shared.worker(0).unwrap().offline();
        let removed = c.device_removed("6a:01.0");
        assert_eq!(
            removed.len(),
            1,
            "one removal takes both queues: {removed:?}"
        );
        assert_eq!(removed[0].0, q[0]);
        assert!(removed[0].1.is_ok(), "{:?}", removed[0].1);
        for n in &q[..2] {
            let ch = c.channels.iter().find(|ch| ch.name == *n).unwrap();
            assert_eq!(ch.state, ChannelState::Removed, "{n}");
        }
        let other = c.channels.iter().find(|ch| ch.name == q[2]).unwrap();
        assert_eq!(other.state, ChannelState::Active(0));
        assert!(
            c.device_removed("0000:6a:01.0").is_empty(),
            "the duplicate event"
        );
        // A short name reaches the other function's queue through dpctl's path too.
        let r = c.remove("6a:02.0-q0").unwrap();
        assert_eq!(r.channel, q[2]);
        // The phases are parts of the whole.
        for phase in [r.grace_us, r.stop_us, r.unplug_us] {
            assert!(phase >= 0.0, "{r:?}");
        }
        assert!(
            r.grace_us + r.stop_us + r.unplug_us <= r.latency_us,
            "{r:?}"
        );
    }

    /// `dma add wqD.Q` is a DSA work queue of the kernel driver, not a vdev: one the EAL did
    /// not find at start is refused before anything is probed (the dsa bus has no hot-plug),
    /// saying what to do instead, with the queue's own DSA instance.
    #[test]
    fn dma_add_of_a_dsa_work_queue_not_found_at_start_is_refused_with_what_to_do() {
        let shared = Shared::new(&[pmd::LcoreId::new(1)], Vec::new());
        let mut c = Control::new(eal(), &shared, false, Duration::from_secs(10), 64).unwrap();
        for (wq, dsa) in [("wq0.1", "dsa0"), ("wq3.0", "dsa3")] {
            match c.add(wq) {
                Err(e @ ControlError::DsaNoHotplug { .. }) => {
                    let e = e.to_string();
                    assert!(e.contains("dsa bus has no hot-plug"), "{e}");
                    let n = &dsa[3..];
                    for step in [
                        format!("accel-config config-engine {dsa}/engine{n}.0 --group-id=0"),
                        format!("accel-config config-wq {dsa}/{wq} --group-id=0 --type=user"),
                        "--wq-size=32 --mode=dedicated".to_owned(),
                        format!("--name=FILEPREFIX_{wq}"),
                        format!("accel-config enable-device {dsa};"),
                        format!("accel-config enable-wq {dsa}/{wq}"),
                        "configs/l2fwd-lab-dsa.toml".to_owned(),
                    ] {
                        assert!(e.contains(&step), "{step}: {e}");
                    }
                    assert!(e.contains("dpdk-devbind.py -b vfio-pci ADDR"), "{e}");
                    assert!(e.contains("dma add ADDR,max_queues=N"), "{e}");
                    assert!(!e.contains('\n'), "one line: {e}");
                }
                other => panic!("{wq} not refused as a dsa work queue: {other:?}"),
            }
        }
        assert!(c.channels.is_empty());
    }

    /// A DSA function's queues are dealt one by one to the least-loaded worker, as single
    /// channels are (the lowest-numbered of those tied).
    #[test]
    fn new_channels_are_dealt_to_the_least_loaded_worker_in_turn() {
        assert_eq!(deal(&[2, 0], 3), [Some(1), Some(1), Some(0)]);
        assert_eq!(deal(&[1, 1, 1], 4), [Some(0), Some(1), Some(2), Some(0)]);
        assert_eq!(deal(&[0], 2), [Some(0), Some(0)]);
        assert_eq!(deal(&[], 2), [None, None], "no worker: standby");
        assert!(deal(&[3, 1], 0).is_empty());
        // A worker that did not confirm a queue of this add gets no more of them.
        assert_eq!(least_loaded_of(&[0, 3, 1], &[]), Some(0));
        assert_eq!(least_loaded_of(&[0, 3, 1], &[0]), Some(2));
        assert_eq!(least_loaded_of(&[0, 3, 1], &[0, 2]), Some(1));
        assert_eq!(
            least_loaded_of(&[0, 3], &[1, 0]),
            None,
            "all unconfirmed: standby"
        );
        assert_eq!(least_loaded_of(&[], &[]), None);
    }

    /// What `dma add` adopts once the device is probed: the dmadev of that name (IOAT, a vdev,
    /// one DSA queue), or every free work queue of a DSA function (idxd names them `-qN`; the
    /// function itself has no dmadev), in queue order.
    #[test]
    fn adoption_takes_the_named_dmadev_or_every_free_queue_of_a_function() {
        let devs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(n, d)| (n.to_string(), d.to_string()))
                .collect()
        };
        let f = "0000:6a:01.0";
        let after_probe = devs(&[
            ("dma_skeleton0", "dma_skeleton0"),
            ("0000:00:04.0", "0000:00:04.0"),
            ("0000:6a:01.0-q10", f),
            ("0000:6a:01.0-q0", f),
            ("0000:6a:01.0-q2", f),
            ("0000:6a:01.0-q1", f),
            ("0000:6a:02.0-q0", "0000:6a:02.0"),
        ]);
        let ch = |v: &[&str]| Adoption::Channels(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            adoption(f, &after_probe, &[]),
            ch(&[
                "0000:6a:01.0-q0",
                "0000:6a:01.0-q1",
                "0000:6a:01.0-q2",
                "0000:6a:01.0-q10"
            ])
        );
        assert_eq!(
            adoption(f, &after_probe, &["0000:6a:01.0-q0", "0000:6a:02.0-q0"]),
            ch(&["0000:6a:01.0-q1", "0000:6a:01.0-q2", "0000:6a:01.0-q10"]),
            "those in use are left to their workers"
        );
        let all = [
            "0000:6a:01.0-q0",
            "0000:6a:01.0-q1",
            "0000:6a:01.0-q2",
            "0000:6a:01.0-q10",
        ];
        assert_eq!(
            adoption(f, &after_probe, &all),
            Adoption::AllInUse(all.iter().map(|s| s.to_string()).collect())
        );
        assert_eq!(
            adoption("0000:6a:01.0-q1", &after_probe, &[]),
            ch(&["0000:6a:01.0-q1"])
        );
        assert_eq!(
            adoption("0000:00:04.0", &after_probe, &[]),
            ch(&["0000:00:04.0"])
        );
        assert_eq!(
            adoption("dma_skeleton0", &after_probe, &[]),
            ch(&["dma_skeleton0"])
        );
        assert_eq!(
            adoption("0000:00:04.1", &after_probe, &[]),
            Adoption::Nothing
        );
        assert_eq!(
            adoption("dma_skeleton1", &after_probe, &[]),
            Adoption::Nothing
        );
    }

    /// Points 3 and 5 of the lab issue through `dma add`: the PCI function's driver is read
    /// from sysfs (a fake tree here) before anything is probed; ioatdma (after a rescan) and
    /// uio are refused with the exact `dpdk-devbind.py` command for the canonical name, a
    /// function bound to vfio-pci goes on to the probe (which `--no-pci` makes fail here).
    #[test]
    fn dma_add_reads_the_driver_and_refuses_kernel_and_uio_bindings() {
        let shared = Shared::new(&[pmd::LcoreId::new(1)], Vec::new());
        let mut c = Control::new(eal(), &shared, false, Duration::from_secs(10), 64).unwrap();
        let f = crate::sysfs::fake::FakeSysfs::new("add");
        f.device("0000:00:04.0", Some("ioatdma"), 0)
            .device("0000:00:04.1", Some("uio_pci_generic"), 0)
            .device("0000:6a:01.0", Some("igb_uio"), 1)
            .device("0000:00:04.2", Some("vfio-pci"), 0);
        let sys = f.sysfs();
        let e = c.add_with_sysfs("00:04.0", &sys).unwrap_err();
        assert!(
            matches!(e, ControlError::Binding(BindingError::Kernel { .. })),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(text.contains("kernel's ioatdma driver"), "{text}");
        assert!(
            text.contains("`dpdk-devbind.py -b vfio-pci 0000:00:04.0`"),
            "{text}"
        );
        let e = c.add_with_sysfs("0000:00:04.1", &sys).unwrap_err();
        assert!(
            matches!(e, ControlError::Binding(BindingError::Uio { .. })),
            "{e:?}"
        );
        let e = c
            .add_with_sysfs("0000:6a:01.0,max_queues=2", &sys)
            .unwrap_err();
        assert!(e.to_string().contains("bound to igb_uio (uio)"), "{e}");
        let e = c.add_with_sysfs("0000:00:04.7", &sys).unwrap_err();
        assert!(
            e.to_string().contains("echo 1 > /sys/bus/pci/rescan"),
            "{e}"
        );
        // vfio-pci: on to the probe.
        let e = c.add_with_sysfs("0000:00:04.2", &sys).unwrap_err();
        assert!(matches!(e, ControlError::Probe { bus: "pci", .. }), "{e:?}");
        assert!(c.channels.is_empty(), "nothing registered");
    }

    /// A `dma add` that fails after its probe undoes what it did: a device it probed is
    /// unplugged (a retry probes it afresh with all its queues), one probed before keeps its
    /// dmadevs, stopped but not closed, so a retry can open them again (closing would
    /// destroy them until the function is unplugged). On dma_skeleton0, the one vdev whose
    /// probe and dmadev a test can make (the same code path as a DSA function's queues).
    #[test]
    fn a_failed_add_unplugs_what_it_probed_and_leaves_what_it_did_not_usable() {
        let eal = eal();
        let shared = Shared::new(&[pmd::LcoreId::new(1)], Vec::new());
        let c = Control::new(eal, &shared, false, Duration::from_secs(10), 64).unwrap();
        let sk = "dma_skeleton0";
        pmd::hotplug_add(eal, "vdev", sk, "").unwrap();

        // Probed before this add: released, still there, opens again.
        let devs = vec![DmaDev::open(eal, sk, 64).unwrap()];
        assert!(c.undo_add(devs, "vdev", sk, false).is_none());
        assert!(DmaDev::id_by_name(eal, sk).is_ok(), "not closed");
        let devs = vec![DmaDev::open(eal, sk, 64).expect("usable again")];

        // Probed by this add: unplugged, so it probes again from scratch.
        assert!(c.undo_add(devs, "vdev", sk, true).is_none());
        assert!(DmaDev::id_by_name(eal, sk).is_err(), "unplugged");
        pmd::hotplug_add(eal, "vdev", sk, "").expect("probes again");

        // Nothing opened (the first queue failed): the device is still unplugged.
        assert!(c.undo_add(Vec::new(), "vdev", sk, true).is_none());
        assert!(DmaDev::id_by_name(eal, sk).is_err(), "unplugged");
    }

    /// Points 4 and 8 of the lab review: a device DPDK already drives is not probed again, so
    /// arguments for it are refused (DPDK would ignore them) and its binding is not read (a
    /// container may have no /sys/bus/pci); a device to be probed has its binding checked,
    /// unless the sysfs tree lists no PCI devices at all (a warning, and the probe decides).
    #[test]
    fn a_probed_device_takes_no_arguments_and_no_binding_check() {
        let f = crate::sysfs::fake::FakeSysfs::new("probe");
        f.device("0000:00:04.2", Some("vfio-pci"), 0)
            .device("0000:00:04.3", Some("ioatdma"), 0);
        let sys = f.sysfs();
        let none = PciSysfs::at(f.root.join("no-such-sys"));
        // Probed: no binding read, whatever sysfs says or lacks.
        for s in [&sys, &none] {
            assert!(!must_probe("pci", "0000:6a:01.0", "", true, s).unwrap());
            assert!(!must_probe("pci", "0000:00:04.3", "", true, s).unwrap());
        }
        assert!(!must_probe("dsa", "wq0.0", "", true, &none).unwrap());
        let e = must_probe("pci", "0000:6a:01.0", "max_queues=4", true, &sys).unwrap_err();
        assert!(matches!(e, ControlError::ProbedWithArgs { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("already probed"), "{text}");
        assert!(text.contains("remove it first"), "{text}");
        assert!(text.contains("dma add 0000:6a:01.0,max_queues=4"), "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
        // Not probed: the binding decides, or the probe where sysfs has no PCI devices.
        assert!(must_probe("pci", "0000:00:04.2", "", false, &sys).unwrap());
        assert!(matches!(
            must_probe("pci", "0000:00:04.3", "", false, &sys),
            Err(ControlError::Binding(BindingError::Kernel { .. }))
        ));
        assert!(matches!(
            must_probe("pci", "0000:00:04.9", "", false, &sys),
            Err(ControlError::Binding(BindingError::Absent { .. }))
        ));
        assert!(must_probe("pci", "0000:00:04.9", "max_queues=2", false, &none).unwrap());
        assert!(must_probe("vdev", "dma_skeleton1", "lcore=0", false, &sys).unwrap());

        // Through dma add: with no bus/pci/devices the add goes on to the probe (which
        // `--no-pci` makes fail here) instead of refusing the device as absent.
        let shared = Shared::new(&[pmd::LcoreId::new(1)], Vec::new());
        let mut c = Control::new(eal(), &shared, false, Duration::from_secs(10), 64).unwrap();
        let e = c.add_with_sysfs("0000:00:04.9", &none).unwrap_err();
        assert!(matches!(e, ControlError::Probe { bus: "pci", .. }), "{e:?}");
        assert!(c.channels.is_empty());
    }

    /// Each error's text, as the control socket has always sent it (tests and scripts match
    /// on these).
    #[test]
    fn errors_read_as_before() {
        let dpdk = || pmd::Error::Invalid("boom".into());
        let grace = || GraceTimeout {
            worker: 1,
            lcore: pmd::LcoreId::new(3),
            generation: 7,
            waited_ms: 10,
        };
        let s = String::from;
        let failed = || FailedChannel {
            name: s("q1"),
            reason: s("rte_dma_stop on q1: boom"),
        };
        let cases: Vec<(ControlError, String)> = vec![
            (
                ControlError::NoCopyStage,
                s("no copy stage (--copy none): there are no DMA channels to manage"),
            ),
            (
                ControlError::NoCopybreak { mode: "cpu" },
                s("copybreak applies with --copy dma or auto; this run copies with --copy cpu"),
            ),
            (
                ControlError::UnknownChannel {
                    name: s("x"),
                    known: vec![s("a"), s("b")],
                },
                s(r#"no DMA channel named "x" (channels: a, b)"#),
            ),
            (
                ControlError::UnknownChannel {
                    name: s("x"),
                    known: vec![],
                },
                s(r#"no DMA channel named "x" (channels: )"#),
            ),
            (
                ControlError::ChannelFailed(failed()),
                s(
                    "DMA channel q1 failed: rte_dma_stop on q1: boom; its device and buffers \
                   are kept until exit",
                ),
            ),
            (
                ControlError::SiblingFailed {
                    name: s("q0"),
                    failed: failed(),
                },
                s(
                    "q0 shares its device with a failed channel: DMA channel q1 failed: \
                   rte_dma_stop on q1: boom; its device and buffers are kept until exit",
                ),
            ),
            (
                ControlError::GraceTimeout {
                    name: s("q0"),
                    source: grace(),
                },
                format!("removing q0: {}", grace()),
            ),
            (
                ControlError::StopFailed {
                    failures: vec![
                        StopFailure {
                            channel: s("q0"),
                            cause: StopError::Injected,
                        },
                        StopFailure {
                            channel: s("q1"),
                            cause: StopError::Dpdk(dpdk()),
                        },
                    ],
                },
                s(
                    "rte_dma_stop on q0: rte_dma_stop failed (injected by `dma fault NAME \
                   stop`); rte_dma_stop on q1: boom: the channel is marked failed; its \
                   quarantined buffers are kept",
                ),
            ),
            (
                ControlError::RemovalNotRecorded { name: s("q0") },
                s("q0: removal not recorded"),
            ),
            (
                ControlError::BadDevargs {
                    devargs: s(",lcore=0"),
                },
                s(r#"invalid devargs ",lcore=0": expected NAME[,ARGS]"#),
            ),
            (
                ControlError::NotADmaDevice {
                    name: s("net_null0"),
                },
                s(
                    "net_null0 is not a DMA device: dma add takes a DMA driver's vdev \
                   (dma_skeleton1, ...) or a PCI address",
                ),
            ),
            (
                ControlError::NameInUse { name: s("d") },
                s("DMA channel d is already in use"),
            ),
            (
                ControlError::AllQueuesInUse {
                    name: s("0000:6a:01.0"),
                    queues: vec![s("0000:6a:01.0-q0"), s("0000:6a:01.0-q1")],
                },
                s(
                    "every DMA channel of 0000:6a:01.0 is already in use (0000:6a:01.0-q0, \
                   0000:6a:01.0-q1)",
                ),
            ),
            (
                ControlError::PortInUse { name: s("d") },
                s("d is in use as a port, not a DMA device"),
            ),
            (
                ControlError::DeviceExists { name: s("d") },
                s("DMA device d already exists"),
            ),
            (
                ControlError::Probe {
                    devargs: s("d,x=1"),
                    bus: "vdev",
                    source: dpdk(),
                },
                s(
                    r#"cannot probe "d,x=1": no vdev driver took it (a vdev's name starts with its driver's, such as dma_skeleton1, and the driver must accept its arguments: see DPDK's log) (boom)"#,
                ),
            ),
            (
                ControlError::Unusable {
                    name: s("d"),
                    source: dpdk(),
                    others: vec![],
                },
                s("d is not a usable DMA device: boom"),
            ),
            (
                ControlError::Unusable {
                    name: s("d-q2"),
                    source: dpdk(),
                    others: vec![s("d-q0"), s("d-q1")],
                },
                s("d-q2 is not a usable DMA device: boom (its device carries d-q0, d-q1)"),
            ),
            (
                ControlError::DeviceIdBeyondTable {
                    name: s("d"),
                    dev_id: 70,
                    table: 64,
                    unplug: None,
                },
                s("d has device id 70, beyond the 64 the data plane can drive"),
            ),
            (
                ControlError::DeviceIdBeyondTable {
                    name: s("d"),
                    dev_id: 70,
                    table: 64,
                    unplug: Some(dpdk()),
                },
                s(
                    "d has device id 70, beyond the 64 the data plane can drive (and it could \
                   not be unplugged: boom)",
                ),
            ),
            (
                ControlError::Unconfirmed {
                    name: s("d"),
                    channels: vec![s("d")],
                    source: grace(),
                },
                format!(
                    "d is published, but not yet confirmed: {} (this add registered d)",
                    grace()
                ),
            ),
            (
                ControlError::Unconfirmed {
                    name: s("f-q1"),
                    channels: vec![s("f-q0"), s("f-q1"), s("f-q2")],
                    source: grace(),
                },
                format!(
                    "f-q1 is published, but not yet confirmed: {} (this add registered f-q0, \
                     f-q1, f-q2)",
                    grace()
                ),
            ),
            (
                ControlError::FaultInjectionDisabled,
                s("fault injection is disabled: start l2fwd with --allow-fault-injection"),
            ),
            (
                ControlError::UnknownFault { fault: s("zap") },
                s(r#"unknown fault "zap": expected stall, stop or none"#),
            ),
            (
                ControlError::NoFaultSwitch {
                    name: s("d"),
                    dev_id: 70,
                    table: 64,
                },
                s("DMA channel d has no fault switch (device id 70 is beyond the table of 64)"),
            ),
            (
                ControlError::BadCopybreak { bytes: 0 },
                s("invalid copybreak 0: give 1..=65535 bytes"),
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text, "{e:?}");
        }
    }

    #[test]
    fn states_as_reported() {
        assert_eq!(ChannelState::Failed.as_str(), "failed");
        let s = ChannelState::Stalled {
            worker: 0,
            generation: 1,
        };
        assert_eq!(s.as_str(), "stalled");
    }
}
