//! TOML configuration files.
//!
//! One file may configure several apps: a top-level `eal` array holds the EAL arguments (so
//! that `APP --config FILE` alone runs), and a table per app (`[l2fwd]`, `[pktgen]`, ...) holds
//! that app's options under the names of its command-line options. Unknown keys are errors, so
//! a typo is reported instead of silently ignored.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {msg}")]
    Parse { path: PathBuf, msg: String },
}

/// A parsed config file: the EAL arguments and the per-app tables, checked when an app asks
/// for its own.
#[derive(Debug, Default)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub eal: Vec<String>,
    tables: toml::Table,
}

#[derive(Deserialize)]
struct Top {
    #[serde(default)]
    eal: Vec<String>,
    #[serde(flatten)]
    rest: toml::Table,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let err = |msg: String| ConfigError::Parse {
            path: path.to_owned(),
            msg,
        };
        let top: Top = toml::from_str(text).map_err(|e| err(e.to_string().trim().to_owned()))?;
        for (k, v) in &top.rest {
            if !v.is_table() {
                return Err(err(format!(
                    "unknown top-level key `{k}` (expected `eal = [...]` and app tables such as [l2fwd])"
                )));
            }
        }
        Ok(ConfigFile {
            path: path.to_owned(),
            eal: top.eal,
            tables: top.rest,
        })
    }

    /// The `[name]` table as `T` (its default when absent).
    pub fn section<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T, ConfigError> {
        match self.tables.get(name) {
            None => Ok(T::default()),
            Some(v) => v
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: self.path.clone(),
                    msg: format!("[{name}]: {}", e.to_string().trim()),
                }),
        }
    }
}

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

/// The `[pktgen]` table: each key is the command-line option of the same name.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PktgenSection {
    pub tx_port: Option<u16>,
    pub rx_port: Option<u16>,
    pub rate: Option<String>,
    pub size: Option<String>,
    pub flows: Option<u16>,
    pub count: Option<u64>,
    pub duration: Option<f64>,
    pub drain_ms: Option<u64>,
    pub dst_mac: Option<String>,
    pub stats_period: Option<u64>,
    pub report: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(Path::new("t.toml"), s)
    }

    #[test]
    fn eal_and_section() {
        let c = parse(
            r#"
            eal = ["-l", "0-1", "--no-huge"]
            [l2fwd]
            portmask = "0x3"
            stats_period = 2
            mac_updating = false
            [pktgen]
            anything = 1
            "#,
        )
        .unwrap();
        assert_eq!(c.eal, ["-l", "0-1", "--no-huge"]);
        let s: L2fwdSection = c.section("l2fwd").unwrap();
        assert_eq!(s.portmask, Some(PortMaskValue::Text("0x3".into())));
        assert_eq!(s.stats_period, Some(2));
        assert_eq!(s.mac_updating, Some(false));
        let absent: L2fwdSection = c.section("nothing").unwrap();
        assert_eq!(absent, L2fwdSection::default());
    }

    #[test]
    fn integer_portmask() {
        let c = parse("[l2fwd]\nportmask = 5\n").unwrap();
        let s: L2fwdSection = c.section("l2fwd").unwrap();
        assert_eq!(s.portmask.unwrap().to_text(), "0x5");
    }

    #[test]
    fn errors_are_clear() {
        let e = parse("eal = \"-l 0\"").unwrap_err().to_string();
        assert!(e.contains("t.toml") && e.contains("eal"), "{e}");
        let e = parse("portmask = 3").unwrap_err().to_string();
        assert!(e.contains("unknown top-level key `portmask`"), "{e}");
        let sec = |t: &str| {
            parse(t)
                .unwrap()
                .section::<L2fwdSection>("l2fwd")
                .unwrap_err()
                .to_string()
        };
        let e = sec("[l2fwd]\nportmsk = 3");
        assert!(e.contains("portmsk") && e.contains("[l2fwd]"), "{e}");
        let e = sec("[l2fwd]\nstats_period = \"x\"");
        assert!(e.contains("stats_period"), "{e}");
        let e = parse("this is not toml").unwrap_err().to_string();
        assert!(e.starts_with("invalid config t.toml"), "{e}");
        let e = ConfigFile::load(Path::new("/nonexistent/x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read config /nonexistent/x.toml"), "{e}");
    }
}
