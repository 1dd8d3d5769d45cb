//! The data plane: what runs on the lcores.
//!
//! * [`ports`]: l2fwd's port mask, port pairing and the assignment of ports to worker lcores.
//! * [`stats`]: per-lcore counters, each lcore's on its own cache lines, written by that lcore
//!   only and read by the main lcore for periodic stats and the report.
//! * [`fwd`]: the worker loop of the l2fwd forwarder.
//! * [`config`]: the TOML configuration shared by the apps.
//! * [`report`]: the JSON report an app writes at exit.
pub mod config;
pub mod fwd;
pub mod ports;
pub mod report;
pub mod stats;
