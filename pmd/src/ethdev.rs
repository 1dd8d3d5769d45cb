//! Ethernet ports: configuration, start/stop/close, MAC, link, stats, and the queue handles
//! through which lcores poll them.

use crate::burst::Burst;
use crate::eal::Eal;
use crate::error::{check, Error, Result};
use crate::ids::{PortId, QueueId};
use crate::mbuf::{Mbuf, Mempool};
use std::ffi::CStr;
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A 48-bit Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// How to set a port up.
#[derive(Clone, Debug)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub promiscuous: bool,
    /// Ask for `RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE` (where the device has it): the driver then
    /// returns transmitted mbufs straight to the pool of the first, without reference counts.
    /// That is only right when every mbuf sent on the port is a plain buffer of the port's own
    /// pool, so a port configured with it accepts only such mbufs on its TX queues (see
    /// [`TxQueue::tx_burst`]). Off by default.
    pub tx_fast_free: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        // DPDK l2fwd's defaults.
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            promiscuous: true,
            tx_fast_free: false,
        }
    }
}

/// Port ids with a live [`Port`]: a port is configured by one handle per process, so no second
/// handle can hand out its queues again or close it under the first.
static CLAIMED: Mutex<Vec<PortId>> = Mutex::new(Vec::new());

/// Whether some port is still owned (a live or leaked handle, or one whose stop failed).
pub(crate) fn any_owned() -> bool {
    !claimed().is_empty()
}

fn claimed() -> std::sync::MutexGuard<'static, Vec<PortId>> {
    // A poisoned lock only means a panic elsewhere while holding it; the list is still valid.
    CLAIMED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counters from `rte_eth_stats_get`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    /// Packets the hardware dropped because no RX descriptor was free.
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// Link state from `rte_eth_link_get_nowait`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkStatus {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

/// What a device reports about itself (`rte_eth_dev_info_get`), before it is configured: the
/// limits a port configuration must fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortInfo {
    /// The device name (for example `net_null0`).
    pub name: String,
    /// The driver (for example `net_null`).
    pub driver: String,
    /// Most RX / TX queues the device has (capped at the most a [`Port`] hands out,
    /// [`Port::MAX_QUEUES`]).
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    /// Hash functions RSS can spread packets over queues by (`flow_type_rss_offloads`); 0:
    /// the device has no RSS (a software device may still spread by its own rule: net_pcap
    /// by input file, net_af_packet by its fanout).
    pub rss_offloads: u64,
    /// The NUMA socket the device is attached to (0 where unknown).
    pub socket: u32,
    /// The same, None where DPDK does not know it (`rte_eth_dev_socket_id` < 0: a vdev, or a
    /// PCI device whose `numa_node` in sysfs is -1).
    pub numa_node: Option<u32>,
}

/// A configured ethdev port, owned by this handle alone (one per port id per process). Closed
/// when dropped (so that, for example, net_pcap flushes its output file).
///
/// `'p` borrows the mempool its RX queues are filled from (virtual devices such as net_null and
/// net_ring allocate from it at receive time), so the pool outlives the port.
pub struct Port<'p> {
    id: PortId,
    name: String,
    started: bool,
    rx_queues: u16,
    tx_queues: u16,
    /// Bit q (rx) / 32+q (tx) set once that queue's handle was given out.
    taken: AtomicU64,
    /// With `MBUF_FAST_FREE`: the one pool its TX queues accept mbufs of.
    fast_free_pool: Option<NonNull<dpdk_sys::rte_mempool>>,
    /// Invariant in `'p`: the port's pool borrow cannot be shortened by coercion, so the
    /// `'p` its TX queues demand of the mbufs they take (see [`TxQueue`]) is the real one,
    /// which lasts until the port is closed (Drop).
    _pool: PhantomData<fn(&'p Mempool<'p>) -> &'p Mempool<'p>>,
}

// SAFETY: the handle carries ids and, for fast free, the address of a pool it only compares.
// Every operation through `&Port` is a thread-safe ethdev query or the atomic queue claim.
unsafe impl Send for Port<'_> {}
// SAFETY: as above.
unsafe impl Sync for Port<'_> {}

/// Upper bound of queues per direction that a port may hand out handles for.
const MAX_QUEUES: u16 = 32;

impl<'p> Port<'p> {
    /// Most queues per direction a port hands out handles for.
    pub const MAX_QUEUES: u16 = MAX_QUEUES;

    /// What device `id` reports about itself, whether or not it is configured.
    pub fn info(_eal: &Eal, id: PortId) -> Result<PortInfo> {
        if !Self::is_valid(_eal, id) {
            return Err(Error::Invalid(format!("port {id} does not exist")));
        }
        let mut info = dpdk_sys::rte_eth_dev_info::default();
        // SAFETY: id is a valid port; info is a properly sized out-parameter.
        check("rte_eth_dev_info_get", unsafe {
            dpdk_sys::rte_eth_dev_info_get(id.get(), &mut info)
        })?;
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: on success driver_name points to the driver's NUL-terminated static name.
            unsafe { CStr::from_ptr(info.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        // SAFETY: id is a valid port.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id.get()) };
        Ok(PortInfo {
            name: port_name(id),
            driver,
            max_rx_queues: info.max_rx_queues.min(MAX_QUEUES),
            max_tx_queues: info.max_tx_queues.min(MAX_QUEUES),
            rss_offloads: info.flow_type_rss_offloads,
            socket: u32::try_from(socket).unwrap_or(0),
            numa_node: u32::try_from(socket).ok(),
        })
    }

    /// Number of ports the EAL found (vdevs and probed devices).
    pub fn count(_eal: &Eal) -> u16 {
        // SAFETY: no preconditions after init.
        unsafe { dpdk_sys::rte_eth_dev_count_avail() }
    }

    /// Whether `id` is a port that exists.
    pub fn is_valid(_eal: &Eal, id: PortId) -> bool {
        // SAFETY: no preconditions after init.
        unsafe { dpdk_sys::rte_eth_dev_is_valid_port(id.get()) == 1 }
    }

    /// The port id of device `name` (for example `net_null0`), if it is an ethdev port.
    pub fn id_by_name(_eal: &Eal, name: &str) -> Option<PortId> {
        let c = crate::eal::cstr(name).ok()?;
        let mut id = 0u16;
        // SAFETY: c is a valid C string, id a valid out-parameter.
        let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        (ret == 0).then_some(PortId::new(id))
    }

    /// Configures port `id` with `cfg`, its RX queues filled from `pool`. Not started yet.
    /// Fails if another [`Port`] handle owns the port.
    pub fn configure<'e: 'p>(
        eal: &'p Eal,
        id: PortId,
        cfg: &PortConfig,
        pool: &'p Mempool<'e>,
    ) -> Result<Self> {
        if !Self::is_valid(eal, id) {
            return Err(Error::Invalid(format!(
                "port {id} does not exist ({} ports available)",
                Self::count(eal)
            )));
        }
        {
            let mut claimed = claimed();
            if claimed.contains(&id) {
                return Err(Error::Invalid(format!(
                    "port {id} is already configured by another handle"
                )));
            }
            claimed.push(id);
        }
        Self::setup(eal, id, cfg, pool).inspect_err(|_| claimed().retain(|&c| c != id))
    }

    /// The configuration proper of a claimed port.
    fn setup(eal: &Eal, port: PortId, cfg: &PortConfig, pool: &'p Mempool<'_>) -> Result<Self> {
        let id = port.get();
        if cfg.rx_queues > MAX_QUEUES || cfg.tx_queues > MAX_QUEUES {
            return Err(Error::Invalid(format!(
                "at most {MAX_QUEUES} queues per direction"
            )));
        }
        let mut info = dpdk_sys::rte_eth_dev_info::default();
        // SAFETY: id is a valid port; info is a properly sized out-parameter.
        check("rte_eth_dev_info_get", unsafe {
            dpdk_sys::rte_eth_dev_info_get(id, &mut info)
        })?;
        if cfg.rx_queues > info.max_rx_queues || cfg.tx_queues > info.max_tx_queues {
            return Err(Error::Invalid(format!(
                "port {id} supports {} rx / {} tx queues, {} / {} requested",
                info.max_rx_queues, info.max_tx_queues, cfg.rx_queues, cfg.tx_queues
            )));
        }
        let _ = eal;
        let mut conf = dpdk_sys::rte_eth_conf::default();
        // Several RX queues: spread flows over them by RSS on IP/UDP/TCP where the device
        // hashes (a flow's packets then stay on one queue, so per-queue order is per-flow
        // order). Devices without RSS spread by their own rule (see `PortInfo::rss_offloads`).
        let rss_hf = dpdk_sys::SHIM_ETH_RSS_IP_UDP_TCP & info.flow_type_rss_offloads;
        if cfg.rx_queues > 1 && rss_hf != 0 {
            conf.rxmode.mq_mode = dpdk_sys::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_key = std::ptr::null_mut();
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        // Free mbufs on TX completion without reference counting, as DPDK l2fwd does, where
        // asked for and the device supports it; tx_burst then holds the port to one pool.
        let fast_free = dpdk_sys::SHIM_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
        let fast_free_pool = if cfg.tx_fast_free && info.tx_offload_capa & fast_free != 0 {
            conf.txmode.offloads |= fast_free;
            NonNull::new(pool.as_ptr())
        } else {
            None
        };
        // SAFETY: valid port, conf initialised.
        check("rte_eth_dev_configure", unsafe {
            dpdk_sys::rte_eth_dev_configure(id, cfg.rx_queues, cfg.tx_queues, &conf)
        })?;
        let (mut nb_rxd, mut nb_txd) = (cfg.rx_desc, cfg.tx_desc);
        // SAFETY: valid port, valid out-parameters.
        check("rte_eth_dev_adjust_nb_rx_tx_desc", unsafe {
            dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut nb_rxd, &mut nb_txd)
        })?;
        // SAFETY: valid port.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) };
        let socket = if socket < 0 { 0 } else { socket as u32 };
        for q in 0..cfg.rx_queues {
            let mut rxconf = info.default_rxconf;
            rxconf.offloads = conf.rxmode.offloads;
            // SAFETY: port configured above; the pool outlives the port (`'p`), which is closed
            // (in Drop) before the pool can be freed.
            check("rte_eth_rx_queue_setup", unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(id, q, nb_rxd, socket, &rxconf, pool.as_ptr())
            })?;
        }
        for q in 0..cfg.tx_queues {
            let mut txconf = info.default_txconf;
            txconf.offloads = conf.txmode.offloads;
            // SAFETY: port configured above.
            check("rte_eth_tx_queue_setup", unsafe {
                dpdk_sys::rte_eth_tx_queue_setup(id, q, nb_txd, socket, &txconf)
            })?;
        }
        if cfg.promiscuous {
            // Not every vdev supports promiscuous mode (net_null does not); that is not an
            // error for forwarding.
            // SAFETY: valid port.
            let _ = unsafe { dpdk_sys::rte_eth_promiscuous_enable(id) };
        }
        let name = port_name(port);
        Ok(Port {
            id: port,
            name,
            started: false,
            rx_queues: cfg.rx_queues,
            tx_queues: cfg.tx_queues,
            taken: AtomicU64::new(0),
            fast_free_pool,
            _pool: PhantomData,
        })
    }

    /// The port's id.
    pub fn id(&self) -> PortId {
        self.id
    }

    /// The device name (for example `net_null0`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn start(&mut self) -> Result<()> {
        // SAFETY: the port is configured with all its queues set up.
        check("rte_eth_dev_start", unsafe {
            dpdk_sys::rte_eth_dev_start(self.id.get())
        })?;
        self.started = true;
        Ok(())
    }

    /// Stops the port. Needs `&mut self`, so no queue handle can still be polling it.
    /// Marked stopped only once `rte_eth_dev_stop` succeeded, so a failed stop can be retried.
    pub fn stop(&mut self) -> Result<()> {
        if self.started {
            // SAFETY: the port is started; no queue handle exists (borrow rules).
            check("rte_eth_dev_stop", unsafe {
                dpdk_sys::rte_eth_dev_stop(self.id.get())
            })?;
            self.started = false;
        }
        Ok(())
    }

    pub fn mac_addr(&self) -> Result<MacAddr> {
        let mut a = dpdk_sys::rte_ether_addr::default();
        // SAFETY: valid port, valid out-parameter.
        check("rte_eth_macaddr_get", unsafe {
            dpdk_sys::rte_eth_macaddr_get(self.id.get(), &mut a)
        })?;
        Ok(MacAddr(a.addr_bytes))
    }

    pub fn link(&self) -> Result<LinkStatus> {
        let mut l = dpdk_sys::rte_eth_link::default();
        // SAFETY: valid port, valid out-parameter.
        check("rte_eth_link_get_nowait", unsafe {
            dpdk_sys::rte_eth_link_get_nowait(self.id.get(), &mut l)
        })?;
        Ok(LinkStatus {
            up: l.link_status() != 0,
            speed_mbps: l.link_speed,
            full_duplex: l.link_duplex() != 0,
        })
    }

    pub fn stats(&self) -> Result<PortStats> {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: valid port, valid out-parameter; stats reads are thread-safe.
        check("rte_eth_stats_get", unsafe {
            dpdk_sys::rte_eth_stats_get(self.id.get(), &mut s)
        })?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    fn take(&self, bit: u32, what: &str, q: QueueId, nb: u16) -> Result<()> {
        if q.get() >= nb {
            return Err(Error::Invalid(format!(
                "port {} has {nb} {what} queues, queue {q} requested",
                self.id
            )));
        }
        // Control path only (handles are made before the workers start): an RMW is fine here.
        // Relaxed: the bit only detects a second taker, it publishes nothing else.
        let prev = self.taken.fetch_or(1 << bit, Ordering::Relaxed);
        if prev & (1 << bit) != 0 {
            return Err(Error::Invalid(format!(
                "{what} queue {q} of port {} is already owned by a worker",
                self.id
            )));
        }
        Ok(())
    }

    /// The unique handle to RX queue `q`: DPDK queues are single-consumer.
    pub fn rx_queue(&self, q: QueueId) -> Result<RxQueue<'_, 'p>> {
        self.take(q.get() as u32, "rx", q, self.rx_queues)?;
        Ok(RxQueue {
            port: self.id,
            queue: q,
            _port: PhantomData,
            _pool: PhantomData,
        })
    }

    /// The unique handle to TX queue `q`: DPDK queues are single-producer.
    pub fn tx_queue(&self, q: QueueId) -> Result<TxQueue<'_, 'p>> {
        self.take(32 + q.get() as u32, "tx", q, self.tx_queues)?;
        Ok(TxQueue {
            port: self.id,
            queue: q,
            fast_free_pool: self.fast_free_pool,
            _port: PhantomData,
            _pool: PhantomData,
        })
    }

    /// Whether TX uses `MBUF_FAST_FREE` (asked for and supported by the device).
    pub fn tx_fast_free(&self) -> bool {
        self.fast_free_pool.is_some()
    }

    /// Tests: TX as on a device that has `MBUF_FAST_FREE` (no vdev does), for the port's
    /// `pool`; set before the TX queues are taken.
    #[cfg(test)]
    pub(crate) fn assume_fast_free(&mut self, pool: &Mempool<'_>) {
        self.fast_free_pool = NonNull::new(pool.as_ptr());
    }
}

impl Drop for Port<'_> {
    fn drop(&mut self) {
        if self.stop().is_err() {
            // A port that would not stop may still write received packets into its pool:
            // leave it open and claimed (a leak) rather than close it. (Its RX ring keeps those
            // buffers in use, so the pool, when dropped, is leaked too: see `Mempool`'s Drop.)
            return;
        }
        // SAFETY: stopped above; no queue handles remain (they borrow the port). Closing
        // frees the port's rings and the mbufs in them.
        unsafe { dpdk_sys::rte_eth_dev_close(self.id.get()) };
        claimed().retain(|&c| c != self.id);
    }
}

/// The one handle to one RX queue of a started port. It borrows the port for `'q` (so the port
/// cannot be stopped or closed under it); the mbufs it receives borrow the port's pool for
/// `'p`, so they may outlive the queue and the port, but not the pool.
pub struct RxQueue<'q, 'p> {
    port: PortId,
    queue: QueueId,
    _port: PhantomData<&'q ()>,
    _pool: PhantomData<Mbuf<'p>>,
}

/// The one handle to one TX queue of a started port, borrowing it for `'q`. The driver keeps
/// transmitted mbufs until it has sent them, possibly until the port is closed, so it takes
/// only mbufs whose pools outlive the port's own (`'p`).
pub struct TxQueue<'q, 'p> {
    port: PortId,
    queue: QueueId,
    fast_free_pool: Option<NonNull<dpdk_sys::rte_mempool>>,
    _port: PhantomData<&'q ()>,
    /// Contravariant in `'p`: the lifetime the queue demands of the mbufs it takes can only
    /// be lengthened by coercion, never shortened below the port's pool borrow.
    _pool: PhantomData<fn(Mbuf<'p>)>,
}

// SAFETY: the pool address is only compared, never dereferenced; the queue itself is meant to
// be moved to the lcore that polls it.
unsafe impl Send for TxQueue<'_, '_> {}

impl<'p> RxQueue<'_, 'p> {
    pub fn port(&self) -> PortId {
        self.port
    }
    pub fn queue(&self) -> QueueId {
        self.queue
    }

    /// Receives into the burst's free slots; returns how many arrived. The mbufs received
    /// borrow the port's pool, so the burst cannot outlive it.
    #[inline]
    pub fn rx_burst<'b>(&mut self, burst: &mut Burst<'b>) -> usize
    where
        'p: 'b,
    {
        self.rx_burst_max(burst, crate::MAX_BURST)
    }

    /// Receives at most `max` packets into the burst's free slots (for back-pressure).
    #[inline]
    pub fn rx_burst_max<'b>(&mut self, burst: &mut Burst<'b>, max: usize) -> usize
    where
        'p: 'b,
    {
        let (p, room) = burst.spare_raw();
        let room = room.min(max);
        if room == 0 {
            return 0;
        }
        // SAFETY: `p` points at `room` free slots of the burst; this handle is the queue's only
        // poller (unique by construction, `&mut self`) of a configured port and queue (checked
        // when the handle was made); DPDK writes n <= room owned mbufs.
        let n = unsafe {
            crate::fastpath::eth_rx_burst(self.port.get(), self.queue.get(), p, room as u16)
        };
        burst.commit(n as usize);
        n as usize
    }

    /// [`Self::rx_burst_max`] through the C shim's `rte_eth_rx_burst` (see [`crate::via_shim`]).
    pub(crate) fn rx_burst_max_via_shim<'b>(&mut self, burst: &mut Burst<'b>, max: usize) -> usize
    where
        'p: 'b,
    {
        let (p, room) = burst.spare_raw();
        let room = room.min(max);
        if room == 0 {
            return 0;
        }
        // SAFETY: as in `rx_burst_max`.
        let n = unsafe {
            dpdk_sys::shim_eth_rx_burst(self.port.get(), self.queue.get(), p, room as u16)
        };
        burst.commit(n as usize);
        n as usize
    }
}

impl<'p> TxQueue<'_, 'p> {
    pub fn port(&self) -> PortId {
        self.port
    }
    pub fn queue(&self) -> QueueId {
        self.queue
    }

    /// Transmits the burst from its front; the packets the driver took leave the burst, the
    /// rest stay (in order) for the caller to retry or drop. Returns how many were sent.
    ///
    /// The driver keeps the mbufs until it has sent them, possibly until the port is closed,
    /// so their pools must outlive the port's own pool borrow (`'b: 'p`). On a port with `MBUF_FAST_FREE`
    /// ([`PortConfig::tx_fast_free`]) the burst is sent up to its first mbuf that is not a
    /// plain buffer of the port's own pool, which stays in the burst with everything after it
    /// (the driver would otherwise return it to the wrong pool).
    #[inline]
    pub fn tx_burst<'b>(&mut self, burst: &mut Burst<'b>) -> usize
    where
        'b: 'p,
    {
        // SAFETY: the arguments are what `tx_burst_with` passes: this handle's port and queue
        // (configured, used by this handle only) and `n` owned mbufs.
        self.tx_burst_with(burst, |port, queue, pkts, n| unsafe {
            crate::fastpath::eth_tx_burst(port, queue, pkts, n)
        })
    }

    /// [`Self::tx_burst`] through the C shim's `rte_eth_tx_burst` (see [`crate::via_shim`]).
    pub(crate) fn tx_burst_via_shim<'b>(&mut self, burst: &mut Burst<'b>) -> usize
    where
        'b: 'p,
    {
        // SAFETY: as in `tx_burst`.
        self.tx_burst_with(burst, |port, queue, pkts, n| unsafe {
            dpdk_sys::shim_eth_tx_burst(port, queue, pkts, n)
        })
    }

    #[inline(always)]
    fn tx_burst_with<'b>(
        &mut self,
        burst: &mut Burst<'b>,
        send: impl FnOnce(u16, u16, *mut *mut dpdk_sys::rte_mbuf, u16) -> u16,
    ) -> usize
    where
        'b: 'p,
    {
        let mut len = burst.len();
        if let Some(pool) = self.fast_free_pool {
            len = burst
                .as_slice()
                .iter()
                .position(|m| m.pool_ptr() != pool.as_ptr() || !m.is_fast_free_ok())
                .unwrap_or(len);
        }
        if len == 0 {
            return 0;
        }
        // The burst holds `len` owned mbufs; the driver takes ownership of the first n it
        // returns, which we then remove from the burst without freeing. This handle is the
        // queue's only producer.
        let n = send(
            self.port.get(),
            self.queue.get(),
            burst.raw_ptr(),
            len as u16,
        ) as usize;
        burst.consume_front(n);
        n
    }
}

/// The device name of port `id` (`port<N>` if DPDK has none).
fn port_name(id: PortId) -> String {
    let mut buf = [0 as std::ffi::c_char; 64];
    // SAFETY: buf has room for RTE_ETH_NAME_MAX_LEN (64) bytes, the most the call writes,
    // terminator included; an invalid id is an error return, not undefined behaviour.
    if unsafe { dpdk_sys::rte_eth_dev_get_name_by_port(id.get(), buf.as_mut_ptr()) } == 0 {
        // SAFETY: on success buf holds a NUL-terminated string.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    } else {
        format!("port{id}")
    }
}
