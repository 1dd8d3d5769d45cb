//! The JSON report an app writes at exit (`--report FILE.json`), as specified in DESIGN.md.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Copy-stage totals.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CopyReport {
    pub cpu: u64,
    pub dma: u64,
    pub dma_errors: u64,
    pub recopied: u64,
}

/// Where a DMA channel stands, as reported: serialized (and displayed) as its lowercase name.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum DmaChannelState {
    /// A worker uses it.
    #[default]
    Active,
    /// No worker had room for it.
    Standby,
    /// Its worker gave up on it; it comes back once it completes again.
    Stalled,
    /// A removal could not stop it; its device and buffers are kept.
    Failed,
    /// Removed (by request or a device event).
    Removed,
}

impl DmaChannelState {
    /// The state's name: `active`, `standby`, `stalled`, `failed` or `removed`.
    pub fn as_str(self) -> &'static str {
        match self {
            DmaChannelState::Active => "active",
            DmaChannelState::Standby => "standby",
            DmaChannelState::Stalled => "stalled",
            DmaChannelState::Failed => "failed",
            DmaChannelState::Removed => "removed",
        }
    }
}

impl std::fmt::Display for DmaChannelState {
    /// The name, padded as the format asks (`{:<8}`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// What a DMA channel's device says it can do (`rte_dma_info_get`), as `dma list` shows it.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DmaCapabilities {
    /// The `dev_capa` bits by name ([`pmd::capability_names`]): `mem_to_mem`, `sva`, `silent`,
    /// `handles_errors`, `copy`, `copy_sg`, `fill`.
    pub flags: Vec<String>,
    /// A failed copy comes back as an error completion, which the worker re-does on the CPU.
    /// Without it (IOAT/CBDMA before version 3.4) a bad copy is not reported, and only the
    /// stall timeout (`--dma-timeout-ms`) protects the traffic.
    pub handles_errors: bool,
    pub max_vchans: u16,
    pub min_desc: u16,
    pub max_desc: u16,
    /// The device's NUMA node (-1: unknown).
    pub numa_node: i16,
}

impl From<&pmd::DmaDevInfo> for DmaCapabilities {
    fn from(i: &pmd::DmaDevInfo) -> Self {
        DmaCapabilities {
            flags: i.capabilities().into_iter().map(String::from).collect(),
            handles_errors: i.handles_errors(),
            max_vchans: i.max_vchans,
            min_desc: i.min_desc,
            max_desc: i.max_desc,
            numa_node: i.numa_node,
        }
    }
}

impl std::fmt::Display for DmaCapabilities {
    /// `mem_to_mem,copy,fill desc 32..4096 node 0`, and `(copy errors not reported)` without
    /// `handles_errors`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} desc {}..{} node {}",
            self.flags.join(","),
            self.min_desc,
            self.max_desc,
            self.numa_node
        )?;
        if !self.handles_errors {
            write!(f, " (copy errors not reported: the stall timeout protects)")?;
        }
        Ok(())
    }
}

/// One DMA channel (device vchan).
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DmaChannelReport {
    pub name: String,
    pub state: DmaChannelState,
    /// The worker using it, when active.
    #[serde(default)]
    pub worker: Option<usize>,
    /// Its engine stopped completing and a worker gave up on it, at least once.
    #[serde(default)]
    pub stalled: bool,
    /// How many times a worker gave up on it (each time it came back once it completed again).
    #[serde(default)]
    pub stalls: u64,
    /// Copies re-done by the CPU after it stalled or was removed.
    #[serde(default)]
    pub recopied: u64,
    /// Why it failed (state `failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What its device can do, as it said when the channel was registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<DmaCapabilities>,
    pub submitted: u64,
    pub completed: u64,
    pub failed: u64,
}

impl DmaChannelReport {
    /// Whether the channel is gone (removed), as opposed to registered in any other state.
    pub fn is_removed(&self) -> bool {
        self.state == DmaChannelState::Removed
    }
}

/// One completed hot-remove.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct HotRemoveReport {
    pub channel: String,
    /// The whole removal, from the request to the device's removal.
    pub latency_us: f64,
    /// Its phases: unpublishing the channel from its worker until the grace period is over
    /// (the worker passed a quiescent point and handed the lanes back), ...
    #[serde(default)]
    pub grace_us: f64,
    /// ... collecting what the workers handed back and stopping the device, ...
    #[serde(default)]
    pub stop_us: f64,
    /// ... and closing it and removing it from its bus (`rte_dev_remove`).
    #[serde(default)]
    pub unplug_us: f64,
    pub drained: u64,
    pub recopied: u64,
}

/// One port's totals.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortReport {
    /// The port id's number (`PortId::get`: the JSON holds a bare number).
    pub port: u16,
    pub name: String,
    /// The port's own MAC, the source address of what it transmits with MAC updating.
    pub mac: String,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub dropped: u64,
    /// The device's own counters (`rte_eth_stats_get`; 0 where the driver keeps none): bytes
    /// received and sent, and packets it dropped before a worker saw them (`imissed`: no free
    /// RX descriptor; `ierrors`: bad frames; `rx_nombuf`: no mbuf to refill the ring). These
    /// are outside the forwarder's own books (`rx_packets` counts what the workers received).
    #[serde(default)]
    pub rx_bytes: u64,
    #[serde(default)]
    pub tx_bytes: u64,
    #[serde(default)]
    pub imissed: u64,
    #[serde(default)]
    pub ierrors: u64,
    #[serde(default)]
    pub rx_nombuf: u64,
}

/// What one forwarding lcore did (its own counters, summed over the ports it polls).
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct LcoreReport {
    pub lcore: u32,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub dropped: u64,
    /// Copies made by the CPU and by DMA (0 without a copy stage).
    pub copies_cpu: u64,
    pub copies_dma: u64,
    /// TSC cycles of its loop iterations that received or completed something, and of idle
    /// polls.
    #[serde(default)]
    pub busy_cycles: u64,
    #[serde(default)]
    pub idle_cycles: u64,
    /// `busy_cycles` as a percentage of both (one decimal; 0 before the first iteration).
    #[serde(default)]
    pub busy_pct: f64,
    /// Its longest loop iteration so far (the longest gap between two polls of its queues),
    /// in TSC cycles and in microseconds (one decimal).
    #[serde(default)]
    pub max_loop_gap_cycles: u64,
    #[serde(default)]
    pub max_loop_gap_us: f64,
}

/// The l2fwd report.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct L2fwdReport {
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// Drop reason -> count; every reason is listed, zeros included.
    pub dropped: BTreeMap<String, u64>,
    /// Packets received but neither transmitted nor dropped when the report was taken: 0 after
    /// a clean shutdown.
    pub in_flight: u64,
    pub copies: CopyReport,
    pub dma_channels: Vec<DmaChannelReport>,
    pub hot_removes: Vec<HotRemoveReport>,
    pub ports: Vec<PortReport>,
    /// Each forwarding lcore's share, in lcore order.
    #[serde(default)]
    pub lcores: Vec<LcoreReport>,
    pub mbufs_in_use_at_exit: u64,
    pub elapsed_s: f64,
}

impl L2fwdReport {
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// `rx = tx + dropped + in_flight`.
    pub fn balances(&self) -> bool {
        self.rx_packets == self.tx_packets + self.dropped_total() + self.in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_balance() {
        let mut r = L2fwdReport {
            rx_packets: 10,
            tx_packets: 7,
            ..Default::default()
        };
        r.dropped.insert("tx_full".into(), 3);
        assert!(r.balances());
        let j = serde_json::to_string(&r).unwrap();
        let back: L2fwdReport = serde_json::from_str(&j).unwrap();
        assert_eq!(back, r);
        r.tx_packets = 6;
        assert!(!r.balances());
    }

    #[test]
    fn channel_states_are_written_and_read_as_their_lowercase_names() {
        use DmaChannelState::*;
        for (s, name) in [
            (Active, "active"),
            (Standby, "standby"),
            (Stalled, "stalled"),
            (Failed, "failed"),
            (Removed, "removed"),
        ] {
            assert_eq!(s.as_str(), name);
            assert_eq!(s.to_string(), name);
            assert_eq!(format!("{s:<8}|"), format!("{name:<8}|"));
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(json, serde_json::json!(name));
            assert_eq!(serde_json::from_value::<DmaChannelState>(json).unwrap(), s);
        }
        assert!(serde_json::from_str::<DmaChannelState>("\"Active\"").is_err());
        let r = DmaChannelReport {
            state: Removed,
            ..Default::default()
        };
        assert!(r.is_removed());
        assert_eq!(serde_json::to_value(&r).unwrap()["state"], "removed");
    }
}
