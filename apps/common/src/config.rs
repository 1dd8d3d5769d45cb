//! TOML configuration files.
//!
//! One file may configure several apps: a top-level `eal` array holds the EAL arguments (so
//! that `APP --config FILE` alone runs), and a table per app (`[l2fwd]`, `[pktgen]`, ...) holds
//! that app's options under the names of its command-line options. Unknown keys are errors, so
//! a typo is reported instead of silently ignored. An app reads its table as its options type
//! ([`ConfigFile::options`], see [`crate::options`]).

use crate::options::AppOptions;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The TOML crate that reads config files, for the apps' tests that build tables of their own.
pub use toml;

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

    /// The app's table (`[O::TABLE]`) as its options, every value checked as on the command
    /// line ([`AppOptions::check`]) and refused in the file's words:
    /// `invalid config PATH: [l2fwd] invalid grace_ms = 0: expected 1..=60000 milliseconds`.
    /// No table: nothing set.
    pub fn options<O: AppOptions>(&self) -> Result<O, ConfigError> {
        let o: O = self.section(O::TABLE)?;
        o.check().map_err(|e| ConfigError::Parse {
            path: self.path.clone(),
            msg: format!("[{}] {}", O::TABLE, e.for_config()),
        })?;
        Ok(o)
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
}
