//! pktgen's domain code: the test frames it sends, the analyzer that judges what comes back,
//! its options, its report and its pass criteria.
//!
//! * [`frames`]: test frames (optional 802.1Q tag, IPv4 or IPv6, UDP or TCP) whose payload
//!   carries a magic number, stream, sequence number, TSC timestamp and CRC-32 of that stamp,
//!   built from per-flow templates with incremental checksums; frame sizes (fixed, range,
//!   IMIX); the TSC token bucket that holds the rate.
//! * [`analyzer`]: per-stream loss, duplicates, reordering (exact within a sliding window),
//!   late and foreign frames, corruption, and latency percentiles.
//! * [`control`]: the runtime control socket's requests, the TX side's pause and rate, the
//!   `stats` it reports (also `/pktgen/stats` on DPDK's telemetry).
//! * [`options`]: the command line and `[pktgen]` table (one type), and the settings of a run.
//! * [`report`]: the JSON report and the final summary, in Mpps, Gbit/s and bytes.
//! * [`verdict`]: the pass criteria (`--max-loss`, latency bounds) behind the exit status.
//! * [`search`]: the RFC 2544 throughput search (NDR/PDR) over trials of a fixed duration.
//! * [`series`]: the bounded time series of a run (tx, rx, missing per sample period).
pub mod analyzer;
pub mod control;
pub mod frames;
pub mod options;
pub mod report;
pub mod search;
pub mod series;
pub mod verdict;
