//! pktgen's domain code: the test frames it sends, the analyzer that judges what comes back,
//! its options, its report and its pass criteria.
//!
//! * [`frames`]: Ethernet/IPv4/UDP test frames whose payload carries a magic number, stream,
//!   sequence number, TSC timestamp and CRC-32; frame sizes (fixed, range, IMIX); the TSC token
//!   bucket that holds the rate.
//! * [`analyzer`]: per-stream loss, duplicates, reordering (exact within a sliding window),
//!   late and foreign frames, corruption, and latency percentiles.
//! * [`control`]: the runtime control socket's requests, the TX side's pause and rate, the
//!   `stats` it reports (also `/pktgen/stats` on DPDK's telemetry).
//! * [`options`]: the command line and `[pktgen]` table (one type), and the settings of a run.
//! * [`report`]: the JSON report and the final summary, in Mpps, Gbit/s and bytes.
//! * [`verdict`]: the pass criteria (`--max-loss`, latency bounds) behind the exit status.
pub mod analyzer;
pub mod control;
pub mod frames;
pub mod options;
pub mod report;
pub mod verdict;
