//! Transitional: l2fwd's `[l2fwd]` table as its main reads it today (the section type, its
//! check and bounds). Config files and the apps' options are `apps_common::config` and
//! `apps_common::options`; l2fwd's one options type is `l2fwd::options::L2fwdOptions`. Delete
//! this module once l2fwd's main uses that (nothing else here uses it).

use serde::Deserialize;
use std::path::PathBuf;

/// A port mask written as a hexadecimal string ("0x3") or an integer (3).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum PortMaskValue {
    Text(String),
    Number(u64),
}

impl PortMaskValue {
    pub fn to_text(&self) -> String {
        match self {
            PortMaskValue::Text(s) => s.clone(),
            PortMaskValue::Number(n) => format!("{n:#x}"),
        }
    }
}

/// The `[l2fwd]` table: each key is the command-line option of the same name.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct L2fwdSection {
    pub portmask: Option<PortMaskValue>,
    pub stats_period: Option<u64>,
    pub mac_updating: Option<bool>,
    pub duration: Option<f64>,
    pub report: Option<PathBuf>,
    pub copy: Option<String>,
    pub copybreak: Option<u32>,
    /// DMA devices to use (names as the EAL knows them, for example `dma_skeleton0`).
    pub dma: Option<Vec<String>>,
    pub dma_timeout_ms: Option<u64>,
    pub control: Option<PathBuf>,
    pub allow_fault_injection: Option<bool>,
    pub grace_ms: Option<u64>,
}

/// The bounds of l2fwd's numeric options, the same on the command line and in `[l2fwd]`.
pub mod l2fwd_limits {
    use std::ops::RangeInclusive;
    /// `-T`: seconds between statistics prints, 0 for none; at most a day.
    pub const STATS_PERIOD_S: RangeInclusive<u64> = 0..=86_400;
    /// `--duration`: seconds, at least a millisecond (a smaller positive value would round to
    /// no time at all) and at most a year.
    pub const DURATION_MIN_S: f64 = 0.001;
    /// See [`DURATION_MIN_S`].
    pub const DURATION_MAX_S: f64 = 31_536_000.0;
    /// `--copybreak`: bytes, as `dpctl copybreak` takes them (a frame is at most 64 KiB).
    pub const COPYBREAK: RangeInclusive<u32> = 1..=65_535;
    /// `--dma-timeout-ms`: 0 would retire every channel at its first burst; a minute is
    /// already far past any live engine's latency.
    pub const DMA_TIMEOUT_MS: RangeInclusive<u64> = 1..=60_000;
    /// `--grace-ms`: a hot-remove waits this long for a worker, and SIGINT waits for it.
    pub const GRACE_MS: RangeInclusive<u64> = 1..=60_000;
}

/// Why an `[l2fwd]` value (or the command-line option of the same name) is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum InvalidOption {
    /// A number outside its bounds: `key` is the config key, `expected` says the bounds.
    Range {
        key: &'static str,
        value: String,
        expected: String,
    },
    /// A value its own parser refused (portmask, copy mode); the message says why.
    Value(String),
}

impl InvalidOption {
    /// As the command line spells it: `invalid --grace-ms 0: expected 1..=60000 milliseconds`.
    pub fn for_option(&self) -> String {
        match self {
            InvalidOption::Range {
                key,
                value,
                expected,
            } => {
                let opt = match *key {
                    "stats_period" => "-T/--stats-period".to_owned(),
                    k => format!("--{}", k.replace('_', "-")),
                };
                format!("invalid {opt} {value}: expected {expected}")
            }
            InvalidOption::Value(m) => m.clone(),
        }
    }

    /// As a config file spells it: `invalid grace_ms = 0: expected 1..=60000 milliseconds`.
    pub fn for_config(&self) -> String {
        match self {
            InvalidOption::Range {
                key,
                value,
                expected,
            } => format!("invalid {key} = {value}: expected {expected}"),
            InvalidOption::Value(m) => m.clone(),
        }
    }
}

fn in_range<T: PartialOrd + std::fmt::Display>(
    key: &'static str,
    value: Option<T>,
    range: std::ops::RangeInclusive<T>,
    unit: &str,
) -> Result<(), InvalidOption> {
    match value {
        Some(v) if !range.contains(&v) => Err(InvalidOption::Range {
            key,
            value: v.to_string(),
            expected: format!("{}..={} {unit}", range.start(), range.end()),
        }),
        _ => Ok(()),
    }
}

impl L2fwdSection {
    /// Checks every value that is set against [`l2fwd_limits`] and its parser: the one check
    /// for both the command line (l2fwd builds a section from its options) and the file.
    pub fn check(&self) -> Result<(), InvalidOption> {
        use l2fwd_limits::*;
        if let Some(m) = &self.portmask {
            crate::ports::parse_portmask(&m.to_text())
                .map_err(|e| InvalidOption::Value(e.to_string()))?;
        }
        in_range(
            "stats_period",
            self.stats_period,
            STATS_PERIOD_S,
            "seconds (0 = quiet)",
        )?;
        if let Some(d) = self.duration {
            if !(d.is_finite() && (DURATION_MIN_S..=DURATION_MAX_S).contains(&d)) {
                return Err(InvalidOption::Range {
                    key: "duration",
                    value: format!("{d:?}"),
                    expected: format!("{DURATION_MIN_S} to {DURATION_MAX_S} seconds"),
                });
            }
        }
        if let Some(c) = &self.copy {
            c.parse::<crate::copy::CopyMode>()
                .map_err(InvalidOption::Value)?;
        }
        in_range("copybreak", self.copybreak, COPYBREAK, "bytes")?;
        in_range(
            "dma_timeout_ms",
            self.dma_timeout_ms,
            DMA_TIMEOUT_MS,
            "milliseconds",
        )?;
        in_range("grace_ms", self.grace_ms, GRACE_MS, "milliseconds")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive() {
        let ok = L2fwdSection {
            stats_period: Some(86_400),
            duration: Some(l2fwd_limits::DURATION_MAX_S),
            copybreak: Some(65_535),
            dma_timeout_ms: Some(1),
            grace_ms: Some(60_000),
            ..Default::default()
        };
        assert_eq!(ok.check(), Ok(()));
        let zero_t = L2fwdSection {
            stats_period: Some(0),
            ..Default::default()
        };
        assert_eq!(zero_t.check(), Ok(()));
        let e = L2fwdSection {
            grace_ms: Some(60_001),
            ..Default::default()
        }
        .check()
        .unwrap_err();
        assert_eq!(
            e.for_option(),
            "invalid --grace-ms 60001: expected 1..=60000 milliseconds"
        );
        let e = L2fwdSection {
            stats_period: Some(u64::MAX),
            ..Default::default()
        }
        .check()
        .unwrap_err();
        assert_eq!(
            e.for_option(),
            "invalid -T/--stats-period 18446744073709551615: expected 0..=86400 seconds (0 = quiet)"
        );
    }
}
