//! One options type per app, serving both its command line and its config-file table.
//!
//! An app declares a single struct that derives `clap::Parser` (its command line) and
//! `serde::Deserialize` (its `[TABLE]` in a config file, `#[serde(deny_unknown_fields)]`),
//! in which:
//!
//! * every option is an `Option<T>`: None where it was not given;
//! * a flag that the file may set too is an `Option<bool>` declared
//!   `#[arg(long, num_args = 0, default_missing_value = "true")]` (Some(true) when given);
//! * what only the command line has (`--config`, a negation such as `--no-mac-updating`) is
//!   `#[serde(skip)]`, so that the file refuses it as an unknown key;
//!
//! and implements [`AppOptions`]: the name of its table, where its `--config` is, and one
//! check of every value that is set. [`load`] then parses the command line, reads the file's
//! table into the same type, checks both (each refusal in its own words, see
//! [`InvalidOption`]) and lays every option given on the command line over the file's. The
//! app applies its defaults in one place, when it turns the result into its settings.
//!
//! ```
//! use apps_common::config::ConfigFile;
//! use apps_common::options::{in_range, AppOptions, CommandLine, InvalidOption};
//! use std::path::{Path, PathBuf};
//!
//! #[derive(clap::Parser, serde::Deserialize, Default, Debug)]
//! #[serde(deny_unknown_fields)]
//! struct DemoOptions {
//!     /// Seconds between stats lines, 0..=86400 (0 = quiet).
//!     #[arg(short = 'T', long = "stats-period")]
//!     stats_period: Option<u64>,
//!     /// Say more.
//!     #[arg(long, num_args = 0, default_missing_value = "true")]
//!     verbose: Option<bool>,
//!     /// TOML config ([demo] table, `eal` list); command-line options override it.
//!     #[arg(long)]
//!     #[serde(skip)]
//!     config: Option<PathBuf>,
//! }
//!
//! impl AppOptions for DemoOptions {
//!     const TABLE: &'static str = "demo";
//!     fn config_path(&self) -> Option<&Path> {
//!         self.config.as_deref()
//!     }
//!     fn check(&self) -> Result<(), InvalidOption> {
//!         in_range("stats_period", self.stats_period, 0..=86_400, "seconds (0 = quiet)")
//!     }
//! }
//!
//! // An app's main: `let loaded = apps_common::options::load::<DemoOptions>()?;` then
//! // `Eal::init(&loaded.eal)` and its settings from `loaded.options`. Step by step:
//! let file = ConfigFile::parse(Path::new("demo.toml"), "[demo]\nstats_period = 5\nverbose = true")?;
//! let o = CommandLine::<DemoOptions>::parse_from(["demo", "-T", "2"])?.over(&file)?;
//! assert_eq!((o.stats_period, o.verbose), (Some(2), Some(true)));
//! let e = CommandLine::<DemoOptions>::parse_from(["demo", "-T", "86401"])?.over(&file);
//! assert_eq!(
//!     e.unwrap_err().to_string(),
//!     "invalid -T/--stats-period 86401: expected 0..=86400 seconds (0 = quiet)"
//! );
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! The overlay is clap's own (`FromArgMatches::update_from_arg_matches`: the options the
//! command line gave replace the file's), not a round trip through TOML, which cannot carry an
//! integer above `i64::MAX` (`pktgen --count 18446744073709551615` is valid).

use crate::config::ConfigFile;
use serde::de::DeserializeOwned;
use std::ffi::OsString;
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::path::Path;

/// An app's options: one type for its command line and its config-file table (see the
/// [module](self) docs for how to declare one).
pub trait AppOptions: clap::Parser + DeserializeOwned + Default {
    /// The app's table in a config file: `"pktgen"` for `[pktgen]`.
    const TABLE: &'static str;

    /// The config file the command line names (`--config FILE`).
    fn config_path(&self) -> Option<&Path>;

    /// Checks every value that is set: the one check for the command line and the file alike.
    fn check(&self) -> Result<(), InvalidOption>;
}

/// Why an option's value (on the command line, or under the same name in the file) is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum InvalidOption {
    /// A number outside its bounds: `key` is the config key (the clap id), `expected` says the
    /// bounds.
    Range {
        key: &'static str,
        value: String,
        expected: String,
    },
    /// A value its own parser refused; the message says why, the same wherever it was written.
    Value(String),
}

impl InvalidOption {
    /// As the command line spells it, with the option's flags as `cmd` declares them:
    /// `invalid --grace-ms 0: expected 1..=60000 milliseconds`,
    /// `invalid -T/--stats-period 86401: expected ...`.
    pub fn for_option(&self, cmd: &clap::Command) -> String {
        match self {
            InvalidOption::Range {
                key,
                value,
                expected,
            } => format!(
                "invalid {} {value}: expected {expected}",
                option_name(cmd, key)
            ),
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

/// The command-line spelling of the option whose id (field name, config key) is `key`:
/// `-T/--stats-period` where it has a short flag, else `--grace-ms`.
pub fn option_name(cmd: &clap::Command, key: &str) -> String {
    let arg = cmd.get_arguments().find(|a| a.get_id() == key);
    let long = arg
        .and_then(|a| a.get_long())
        .map_or_else(|| key.replace('_', "-"), str::to_owned);
    match arg.and_then(|a| a.get_short()) {
        Some(short) => format!("-{short}/--{long}"),
        None => format!("--{long}"),
    }
}

/// Refuses a `value` (when set) outside `range`; `unit` follows the bounds in the message.
pub fn in_range<T: PartialOrd + Display>(
    key: &'static str,
    value: Option<T>,
    range: RangeInclusive<T>,
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

/// An app's command line, parsed: its options and which of them it gave.
pub struct CommandLine<O> {
    options: O,
    matches: clap::ArgMatches,
}

impl<O: AppOptions> CommandLine<O> {
    /// Parses the app's arguments (program name first); clap's errors as clap gives them (see
    /// [`crate::usage_error`]).
    pub fn parse_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut cmd = O::command();
        let matches = cmd.try_get_matches_from_mut(args)?;
        let options = O::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
        Ok(CommandLine { options, matches })
    }

    /// The options the command line gave (None for the others).
    pub fn options(&self) -> &O {
        &self.options
    }

    /// These options over `file`'s table: the file's values are checked (refused in the
    /// file's words, see [`ConfigFile::options`]), then the command line's (in its own
    /// words), then every option the command line gave replaces the file's.
    pub fn over(self, file: &ConfigFile) -> anyhow::Result<O> {
        let mut merged: O = file.options()?;
        self.options
            .check()
            .map_err(|e| anyhow::anyhow!(e.for_option(&O::command())))?;
        merged
            .update_from_arg_matches(&self.matches)
            .map_err(|e| anyhow::anyhow!(crate::one_line(&e.to_string())))?;
        Ok(merged)
    }
}

/// An app's options as [`load`] returns them.
#[derive(Debug)]
pub struct Loaded<O> {
    /// The command line over the config file's table, every value checked; the app's
    /// defaults are still to apply.
    pub options: O,
    /// The EAL arguments (program name first): the file's `eal` changed by the command line's
    /// (see [`crate::eal`]).
    pub eal: Vec<String>,
}

/// Parses `APP [EAL options] -- [app options]` from the process's arguments and reads the
/// config file it names: see [`load_from`].
pub fn load<O: AppOptions>() -> anyhow::Result<Loaded<O>> {
    load_from(std::env::args_os())
}

/// Parses `APP [EAL options] -- [app options]` and reads the config file the options name:
/// the app's options (the command line over the file's `[O::TABLE]`, each value checked) and
/// the EAL arguments. clap's own errors (and `--help`) exit as clap does; a usage error or a
/// refused value is one line for [`crate::main_with`] to print.
pub fn load_from<O, I>(args: I) -> anyhow::Result<Loaded<O>>
where
    O: AppOptions,
    I: IntoIterator<Item = OsString>,
{
    let (eal_cmdline, app_args) = crate::split_args_picking_eal(args);
    let cli = CommandLine::<O>::parse_from(app_args).map_err(crate::usage_error)?;
    let file = match cli.options().config_path() {
        Some(p) => ConfigFile::load(p)?,
        None => ConfigFile::default(),
    };
    let options = cli.over(&file)?;
    Ok(Loaded {
        options,
        eal: crate::eal::merge(&eal_cmdline, &file.eal),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde::Deserialize;
    use std::path::PathBuf;

    #[derive(Parser, Deserialize, Default, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Demo {
        #[arg(short = 'T', long = "stats-period")]
        stats_period: Option<u64>,
        #[arg(long = "grace-ms")]
        grace_ms: Option<u64>,
        #[arg(long)]
        count: Option<u64>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "dma")]
        dma: Option<Vec<String>>,
        #[arg(
            long = "updating",
            num_args = 0,
            default_missing_value = "true",
            overrides_with = "no_updating"
        )]
        updating: Option<bool>,
        #[arg(long = "no-updating", overrides_with = "updating")]
        #[serde(skip)]
        no_updating: bool,
        #[arg(long)]
        #[serde(skip)]
        config: Option<PathBuf>,
    }

    impl AppOptions for Demo {
        const TABLE: &'static str = "demo";
        fn config_path(&self) -> Option<&Path> {
            self.config.as_deref()
        }
        fn check(&self) -> Result<(), InvalidOption> {
            in_range("stats_period", self.stats_period, 0..=86_400, "seconds")?;
            in_range("grace_ms", self.grace_ms, 1..=60_000, "milliseconds")?;
            if self.name.as_deref() == Some("") {
                return Err(InvalidOption::Value("invalid name \"\": empty".into()));
            }
            Ok(())
        }
    }

    fn file(text: &str) -> ConfigFile {
        ConfigFile::parse(Path::new("t.toml"), text).unwrap()
    }

    fn over(args: &[&str], text: &str) -> anyhow::Result<Demo> {
        CommandLine::<Demo>::parse_from(std::iter::once("demo").chain(args.iter().copied()))
            .unwrap()
            .over(&file(text))
    }

    #[test]
    fn command_line_wins_and_the_file_fills_in() {
        let text = "[demo]\nstats_period = 5\ngrace_ms = 500\nname = \"f\"\ndma = [\"a\"]\nupdating = false";
        let o = over(&["--grace-ms", "7", "--dma", "b", "--dma", "c"], text).unwrap();
        assert_eq!(o.stats_period, Some(5));
        assert_eq!(o.grace_ms, Some(7));
        assert_eq!(o.name.as_deref(), Some("f"));
        assert_eq!(o.dma, Some(vec!["b".to_owned(), "c".to_owned()]));
        assert_eq!(o.updating, Some(false));
        assert_eq!(over(&[], "").unwrap(), Demo::default());
    }

    #[test]
    fn flags_that_the_file_may_set() {
        let on = "[demo]\nupdating = true";
        let off = "[demo]\nupdating = false";
        assert_eq!(over(&["--updating"], off).unwrap().updating, Some(true));
        let o = over(&["--no-updating"], on).unwrap();
        assert!(o.no_updating && o.updating == Some(true));
        let o = over(&["--no-updating", "--updating"], off).unwrap();
        assert!(!o.no_updating && o.updating == Some(true));
        assert!(CommandLine::<Demo>::parse_from(["demo", "--updating=false"]).is_err());
        let e = file("[demo]\nno_updating = true").options::<Demo>();
        assert!(e.unwrap_err().to_string().contains("no_updating"));
        let e = file("[demo]\nconfig = \"x\"").options::<Demo>();
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("unknown field `config`"));
    }

    /// What TOML cannot hold still passes from the command line.
    #[test]
    fn integers_beyond_toml() {
        let o = over(&["--count", "18446744073709551615"], "[demo]\ncount = 3").unwrap();
        assert_eq!(o.count, Some(u64::MAX));
    }

    #[test]
    fn each_source_checked_in_its_own_words() {
        let e = over(&["--grace-ms", "0"], "").unwrap_err().to_string();
        assert_eq!(e, "invalid --grace-ms 0: expected 1..=60000 milliseconds");
        let e = over(&["-T", "86401"], "").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid -T/--stats-period 86401: expected 0..=86400 seconds"
        );
        let e = over(&["--name", ""], "").unwrap_err().to_string();
        assert_eq!(e, "invalid name \"\": empty");
        // A bad value in the file is refused even where the command line overrides it.
        let e = over(&["--grace-ms", "7"], "[demo]\ngrace_ms = 0")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "invalid config t.toml: [demo] invalid grace_ms = 0: expected 1..=60000 milliseconds"
        );
        let e = over(&[], "[demo]\nname = \"\"").unwrap_err().to_string();
        assert_eq!(e, "invalid config t.toml: [demo] invalid name \"\": empty");
        let e = over(&[], "[demo]\nstats_perod = 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[demo]") && e.contains("stats_perod"), "{e}");
    }

    #[test]
    fn option_names_from_the_command() {
        use clap::CommandFactory;
        let cmd = Demo::command();
        assert_eq!(option_name(&cmd, "stats_period"), "-T/--stats-period");
        assert_eq!(option_name(&cmd, "grace_ms"), "--grace-ms");
        assert_eq!(option_name(&cmd, "not_an_option"), "--not-an-option");
        cmd.debug_assert();
    }

    #[test]
    fn load_reads_the_named_file_and_its_eal() {
        let dir = std::env::temp_dir().join(format!("apps-common-options-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("demo.toml");
        std::fs::write(&path, "eal = [\"--no-huge\"]\n[demo]\nstats_period = 3\n").unwrap();
        let args = |v: &[&str]| -> Vec<OsString> { v.iter().map(OsString::from).collect() };
        let p = path.to_str().unwrap();
        let l: Loaded<Demo> = load_from(args(&["demo", "--config", p, "--grace-ms", "9"])).unwrap();
        assert_eq!(l.eal, ["demo", "--no-huge"]);
        assert_eq!(
            (l.options.stats_period, l.options.grace_ms),
            (Some(3), Some(9))
        );
        assert_eq!(l.options.config.as_deref(), Some(path.as_path()));
        // EAL options on the command line change the file's (see crate::eal).
        let l: Loaded<Demo> = load_from(args(&["demo", "-l", "0", "--", "--config", p])).unwrap();
        assert_eq!(l.eal, ["demo", "--no-huge", "-l", "0"]);
        let e = load_from::<Demo, _>(args(&["demo", "--config", "/nonexistent/d.toml"]));
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("cannot read config /nonexistent/d.toml"));
        let e = load_from::<Demo, _>(args(&["demo", "--frobnicate"])).unwrap_err();
        assert!(
            e.to_string().contains("unexpected argument '--frobnicate'"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
