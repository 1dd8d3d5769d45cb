//! pktgen's domain code: the test frames it sends and the analyzer that judges what comes back.
//!
//! * [`frames`]: Ethernet/IPv4/UDP test frames whose payload carries a magic number, stream,
//!   sequence number, TSC timestamp and CRC-32; frame sizes (fixed, range, IMIX); the TSC token
//!   bucket that holds the rate.
//! * [`analyzer`]: per-stream loss, duplicates, reordering (exact within a sliding window),
//!   late and foreign frames, corruption, and latency percentiles.
pub mod analyzer;
pub mod frames;
