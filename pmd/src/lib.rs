//! `pmd`: the device layer. A safe API over DPDK 22.11 (through our own `dpdk-sys`).
//!
//! DPDK's model, in the words used throughout this crate:
//!
//! * The **EAL** ([`Eal`]) owns the process: hugepage or anonymous memory, the lcores (threads
//!   pinned to cores by `-l`), the buses and the driver plugins. It is initialised once from a
//!   command line and everything else borrows it, so no port or pool can outlive it.
//! * A **mempool** ([`Mempool`]) is a fixed set of **mbufs** ([`Mbuf`]), each a packet buffer
//!   with headroom. An [`Mbuf`] is an owning handle: dropping it returns the buffer to its pool.
//! * An **ethdev port** ([`Port`]) has RX and TX **queues**. DPDK requires that one queue is
//!   polled by one lcore only; [`RxQueue`] and [`TxQueue`] are the unique handles to a queue,
//!   which the type system then hands to exactly one worker.
//! * A **burst** ([`Burst`]) is the array of up to [`MAX_BURST`] mbufs that moves through
//!   `rx_burst`/`tx_burst` in one call.
//! * A **dmadev** ([`DmaDev`]) is a DMA engine with one or more virtual channels (**vchans**);
//!   a [`DmaChannel`] is the unique handle to one vchan's fast path.
//! * Ports, queues and lcores are named by typed ids ([`PortId`], [`QueueId`], [`LcoreId`]),
//!   not DPDK's bare integers, so one cannot be passed where another belongs.
//! * **Telemetry** ([`TelemetryCommand`]): the application's own commands on DPDK's telemetry
//!   socket, answered by `'static` providers (see the module's soundness notes).
//!
//! Every call into DPDK is made here; each `unsafe` block says why it holds. The one other
//! module of the workspace with `unsafe` code is `dataplane::dma`: it calls this crate's two
//! `unsafe` functions ([`DmaChannel::copy`], [`DmaChannel::attach`]) under the contracts they
//! state, and declares the `unsafe` trait of DMA engines, whose completions hand buffers back.
//!
//! DPDK's per-packet calls are static-inline C in its headers; this crate has them in Rust
//! (`fastpath.rs`, over the bindgen structs `rte_eth_fp_ops`, `rte_dma_fp_objs` and the
//! mempool's), so that they inline into the caller's loop as they do in a C application.
//! [`via_shim`] runs the same operations through the C shim's compiled copies of DPDK's own,
//! for the test that checks both agree.
//!
//! ## Soundness
//!
//! No safe call of this crate can cause undefined behaviour, whatever the caller does:
//!
//! * Lifetimes tie every handle to what it needs alive: pools, ports and DMA devices borrow the
//!   [`Eal`]; a [`Port`] borrows the [`Mempool`] its RX queues allocate from; an [`Mbuf`],
//!   [`Burst`] or [`FreeBatch`] borrows the pool of its buffers (through the port that received
//!   them); queue handles borrow their port, so it cannot be stopped or closed under them.
//! * A port id and a dmadev id are owned by one handle per process, and each queue or vchan
//!   by one handle ([`RxQueue`], [`TxQueue`], [`DmaChannel`]).
//! * Only the owner of a DMA device can remove it ([`DmaDev::unplug`] takes it by value), and
//!   never while another handle owns a dmadev of the same bus device.
//! * What Rust cannot check is `unsafe` with its contract written down: [`DmaChannel::copy`]
//!   (the engine writes memory after the call returns) and [`DmaChannel::attach`] (a channel
//!   handle not tied to its device by a borrow).
//! * Ids that DPDK only checks with `RTE_ASSERT` (compiled out) are checked here: lcores in
//!   [`Eal::run_on_lcores`], reader ids in [`RcuQsbr`].
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod burst;
mod crc;
mod devevent;
mod dmadev;
mod eal;
mod error;
mod ethdev;
mod fastpath;
mod ids;
#[cfg(test)]
mod injected;
mod mbuf;
mod rcu;
mod telemetry;
pub mod via_shim;

pub use burst::{Burst, MAX_BURST};
pub use crc::crc32c_2x64;
pub use devevent::{DevEvent, DevEventMonitor};
pub use dmadev::{
    bus_device_of, canonical_pci_name, capability_names, DmaChannel, DmaCompletion, DmaDev,
    DmaDevInfo, DmaStats,
};
pub use eal::{hotplug_add, rdtsc, tsc_hz, Eal};
pub use error::{Error, Result};
pub use ethdev::{LinkStatus, MacAddr, Port, PortConfig, PortInfo, PortStats, RxQueue, TxQueue};
pub use ids::{LcoreId, PortId, QueueId};
pub use mbuf::{FreeBatch, Mbuf, Mempool};
pub use rcu::RcuQsbr;
pub use telemetry::{TelValue, TelemetryCommand};
