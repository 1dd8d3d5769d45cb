//! TOML configuration files.
//!
//! One file may configure several apps: a top-level `eal` array holds the EAL arguments (so
//! that `APP --config FILE` alone runs), and a table per app (`[l2fwd]`, `[pktgen]`, ...) holds
//! that app's options under the names of its command-line options. Unknown keys are errors, so
//! a typo is reported instead of silently ignored, and so are unknown tables (`[L2fwd]`).
//! An app reads its table as its options type ([`ConfigFile::options`], see
//! [`crate::options`]).
//!
//! Relative paths in a config file are relative to the file, not to the current directory: the
//! capture files of `net_pcap` vdevs in `eal` (`rx_pcap=`, `tx_pcap=`) and the `report` and
//! `control` keys of an app's table.

use crate::options::AppOptions;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The TOML crate that reads config files, for the apps' tests that build tables of their own.
pub use toml;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // The reason is the source, printed after this by the error chain (once).
    #[error("cannot read config {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {}: {msg}", path.display())]
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

/// The app tables a config file may hold.
pub const APP_TABLES: &[&str] = &["l2fwd", "pktgen"];

/// Keys of an app table that hold paths (resolved relative to the file).
const PATH_KEYS: &[&str] = &["report", "control"];

/// Devargs keys of vdevs that hold paths (net_pcap's capture files).
const DEVARG_PATH_KEYS: &[&str] = &["rx_pcap", "tx_pcap"];

/// `p` as seen from the current directory, when it is relative to `base`.
fn relative_to(base: &Path, p: &str) -> String {
    let path = Path::new(p);
    if path.is_absolute() || p.is_empty() {
        p.to_owned()
    } else {
        base.join(path).display().to_string()
    }
}

/// An `eal` entry with the capture paths of a `--vdev=NAME,rx_pcap=FILE,...` resolved.
/// (`--vdev` and its value as two entries keep their paths as written.)
fn resolve_vdev_paths(base: &Path, arg: &str) -> String {
    let Some(devargs) = arg.strip_prefix("--vdev=") else {
        return arg.to_owned();
    };
    let parts: Vec<String> = devargs
        .split(',')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if DEVARG_PATH_KEYS.contains(&k.trim()) => {
                format!("{k}={}", relative_to(base, v))
            }
            _ => kv.to_owned(),
        })
        .collect();
    format!("--vdev={}", parts.join(","))
}

/// Levenshtein distance, for suggesting a table name.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
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
        let mut tables = top.rest;
        for (k, v) in &tables {
            if !v.is_table() {
                return Err(err(format!(
                    "unknown top-level key `{k}` (expected `eal = [...]` and app tables such as [l2fwd])"
                )));
            }
        }
        let base = path.parent().unwrap_or(Path::new(""));
        for (_, v) in tables.iter_mut() {
            let Some(table) = v.as_table_mut() else {
                continue;
            };
            for key in PATH_KEYS {
                if let Some(toml::Value::String(p)) = table.get_mut(*key) {
                    *p = relative_to(base, p.as_str());
                }
            }
        }
        let eal = top
            .eal
            .iter()
            .map(|a| resolve_vdev_paths(base, a))
            .collect();
        Ok(ConfigFile {
            path: path.to_owned(),
            eal,
            tables,
        })
    }

    /// The app's table (`[O::TABLE]`) as its options, every value checked as on the command
    /// line ([`AppOptions::check`]) and refused in the file's words:
    /// `invalid config PATH: [l2fwd] invalid grace_ms = 0: expected 1..=60000 milliseconds`.
    /// No table: nothing set.
    pub fn options<O: AppOptions>(&self) -> Result<O, ConfigError> {
        self.check_tables(O::TABLE)?;
        let o: O = self.section(O::TABLE)?;
        o.check().map_err(|e| ConfigError::Parse {
            path: self.path.clone(),
            msg: format!("[{}] {}", O::TABLE, e.for_config()),
        })?;
        Ok(o)
    }

    /// Every table is an app's ([`APP_TABLES`], or `own`, the reader's): a misspelt table
    /// (`[L2fwd]`, `[pktgn]`) is an error, not a table silently skipped.
    pub fn check_tables(&self, own: &str) -> Result<(), ConfigError> {
        let err = |msg: String| ConfigError::Parse {
            path: self.path.clone(),
            msg,
        };
        for k in self.tables.keys() {
            if k == own || APP_TABLES.contains(&k.as_str()) {
                continue;
            }
            let near = APP_TABLES
                .iter()
                .chain(std::iter::once(&own))
                .find(|t| t.eq_ignore_ascii_case(k) || edit_distance(t, k) <= 2);
            return Err(err(match near {
                Some(t) => format!("unknown table [{k}] (did you mean [{t}]?)"),
                None => format!(
                    "unknown table [{k}] (the tables are {})",
                    APP_TABLES
                        .iter()
                        .map(|t| format!("[{t}]"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }));
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(Path::new("t.toml"), s)
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Section {
        portmask: Option<String>,
        stats_period: Option<u64>,
        mac_updating: Option<bool>,
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
        let s: Section = c.section("l2fwd").unwrap();
        assert_eq!(s.portmask.as_deref(), Some("0x3"));
        assert_eq!(s.stats_period, Some(2));
        assert_eq!(s.mac_updating, Some(false));
        let absent: Section = c.section("nothing").unwrap();
        assert_eq!(absent, Section::default());
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
                .section::<Section>("l2fwd")
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

    #[test]
    fn unknown_tables_are_errors_with_a_suggestion() {
        let tables = |t: &str| parse(t).unwrap().check_tables("l2fwd");
        let e = tables("[L2fwd]\nportmask = 3\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid config t.toml: unknown table [L2fwd] (did you mean [l2fwd]?)"
        );
        let e = tables("[pktgn]\n").unwrap_err().to_string();
        assert!(
            e.ends_with("unknown table [pktgn] (did you mean [pktgen]?)"),
            "{e}"
        );
        let e = tables("[zzz]\n").unwrap_err().to_string();
        assert!(
            e.ends_with("unknown table [zzz] (the tables are [l2fwd], [pktgen])"),
            "{e}"
        );
        tables("[l2fwd]\n[pktgen]\n").unwrap();
    }

    #[test]
    fn relative_paths_are_relative_to_the_file() {
        let text = "eal = [\"--vdev=net_pcap0,rx_pcap=pcap/in0.pcap,tx_pcap=/tmp/o.pcap\", \
                    \"--vdev=net_null0\", \"-l\", \"0-1\"]\n\
                    [l2fwd]\nreport = \"r.json\"\ncontrol = \"/tmp/c.sock\"\n";
        let c = ConfigFile::parse(Path::new("configs/x.toml"), text).unwrap();
        assert_eq!(
            c.eal,
            [
                "--vdev=net_pcap0,rx_pcap=configs/pcap/in0.pcap,tx_pcap=/tmp/o.pcap",
                "--vdev=net_null0",
                "-l",
                "0-1"
            ]
        );
        let t: toml::Table = c.section("l2fwd").unwrap();
        assert_eq!(t["report"].as_str(), Some("configs/r.json"));
        assert_eq!(t["control"].as_str(), Some("/tmp/c.sock"));
        // A file in the current directory: paths stay as written.
        let c = ConfigFile::parse(Path::new("x.toml"), "[l2fwd]\nreport = \"r.json\"\n").unwrap();
        let t: toml::Table = c.section("l2fwd").unwrap();
        assert_eq!(t["report"].as_str(), Some("r.json"));
    }
}
