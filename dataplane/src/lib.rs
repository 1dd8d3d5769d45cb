//! The data plane: the engine that runs on the lcores, and nothing else (the tools that use it
//! live under `apps/`, each with its own domain code). The design, as built, is `DESIGN.md`
//! beside this crate's `Cargo.toml`.
//!
//! * [`engine`]: one forwarder run wired from a config: pool, ports, dealing to lcores,
//!   launch, the control loop, and the shutdown order.
//! * [`ports`]: l2fwd's port mask, port pairing and the assignment of ports to worker lcores.
//! * [`stats`]: per-lcore counters, each lcore's on its own cache lines, written by that lcore
//!   only and read by the main lcore for periodic stats and the report.
//! * [`fwd`]: the worker loops of the l2fwd forwarder (plain, and with a copy stage).
//! * [`gaps`]: loop-gap windows: each worker's longest loop iteration per window of time the
//!   control thread opens and closes (a drill's steps).
//! * [`copy`]: the net_dma-style copy stage: CPU or DMA copy, in order, never dropped.
//! * [`dma`]: DMA engines as the copy stage drives them, owning the buffers of every copy in
//!   flight; the one module with `unsafe` code (its invariants are written at its top).
//! * [`ether`]: the Ethernet header: its length and l2fwd's MAC rewrite.
//! * [`tuner`]: `--copy auto`'s run-time choice of the copybreak.
//! * [`qsbr`]: quiescent-state-based reclamation of DMA channels for hot-remove.
//! * [`control`]: the control thread: DMA channel registry, hot-remove and hot-add.
//! * [`shared`]: what the control thread and the workers share (QSBR slots, retired-lane
//!   queues, fault switches, copybreak commands), built from the DMA devices.
//! * [`ctlsock`]: the control socket (one JSON request and response per line).
//! * [`report`]: the JSON report an app writes at exit.
//! * [`sysfs`]: what the kernel says about a PCI device (its driver, its NUMA node), from an
//!   injectable sysfs root: uio and kernel-driver bindings refused or warned about.
//! * [`telemetry`]: the same counters, live, on DPDK's telemetry socket (`/l2fwd/stats`, ...).
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
pub mod control;
pub mod copy;
pub mod ctlsock;
pub mod dma;
pub mod engine;
pub mod ether;
pub mod fwd;
pub mod gaps;
pub mod placement;
pub mod ports;
pub mod qsbr;
pub mod report;
pub mod shared;
pub mod stats;
pub mod sysfs;
pub mod telemetry;
pub mod tuner;
