//! What the apps share: DPDK-style command lines (`APP [EAL options] -- [app options]`) with
//! their options and config files ([`options`], [`config`]), one error line and exit 1, output
//! that survives a closed pipe, and (feature `testing`) the helpers of their integration tests.

pub mod config;
pub mod eal;
pub mod options;
pub mod outfile;
#[cfg(feature = "testing")]
pub mod testing;
pub mod units;

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::process::ExitCode;

/// The NUMA socket to create a port's mbuf pool on: the NIC's own node (its packets are DMAed
/// into the pool by the NIC), and only where DPDK does not know it (`nic` None: a vdev, or a
/// `numa_node` of -1) the socket of the lcore creating the pool (`lcore`, `rte_socket_id`).
pub fn pool_socket(nic: Option<u32>, lcore: i32) -> i32 {
    nic.and_then(|n| i32::try_from(n).ok()).unwrap_or(lcore)
}

/// Writes to stdout and ignores failures: a reader that went away (`APP | head`) must not
/// stop the run, which still has ports to close (net_pcap flushes its output then), a report
/// and a control socket to clean up. `print!`/`println!` panic on EPIPE, and the release
/// profile aborts on panic.
pub fn write_stdout(args: fmt::Arguments) {
    let _ = std::io::stdout().lock().write_fmt(args);
}

/// Like [`write_stdout`], for stderr.
pub fn write_stderr(args: fmt::Arguments) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `print!` that never panics (see [`write_stdout`]).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::write_stdout(format_args!($($arg)*)) };
}

/// `println!` that never panics (see [`write_stdout`]).
#[macro_export]
macro_rules! outln {
    () => { $crate::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` that never panics (see [`write_stdout`]).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => { $crate::write_stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

/// An app's `main`: runs `run`, and on failure prints one line `APP: error: REASON` (with its
/// causes) and exits 1.
pub fn main_with(app: &str, run: impl FnOnce() -> anyhow::Result<()>) -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            errln!("{app}: error: {}", one_line(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// `text` on one line: line breaks (from DPDK, or a TOML parser's excerpt) become spaces.
pub fn one_line(text: &str) -> String {
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// clap's verdict on a command line: `--help` and `--version` (and a bare command that needs
/// a subcommand, which shows the help) print and exit as clap does; a usage error becomes one
/// line for [`main_with`] to print, exit 1 (see [`usage_message`]).
pub fn usage_error(e: clap::Error) -> anyhow::Error {
    match usage_message(&e) {
        Some(m) => anyhow::anyhow!(m),
        None => e.exit(),
    }
}

/// A usage error on one line: `invalid value 'x' for '-T <STATS_PERIOD>': invalid digit found
/// in string (see --help)`, with clap's tips kept: `unexpected argument '--rat' found (tip: a
/// similar argument exists: '--rate'; see --help)`; None for the help and version "errors".
pub fn usage_message(e: &clap::Error) -> Option<String> {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        return None;
    }
    let text = e.to_string();
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let first = first.strip_prefix("error: ").unwrap_or(first).trim();
    let mut notes: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("tip:"))
        .collect();
    notes.push("see --help");
    Some(format!("{} ({})", one_line(first), notes.join("; ")))
}

/// Splits a DPDK-style command line at the first `--`: the EAL arguments (program name first)
/// and the application's (program name first too, for clap). Without a `--`, everything is the
/// application's.
pub fn split_args<I: IntoIterator<Item = OsString>>(args: I) -> (Vec<String>, Vec<OsString>) {
    split(args, false)
}

/// As [`split_args`], but without a `--` the EAL options found are the EAL's and the rest the
/// application's ([`eal::take_eal_options`]), so that `APP --config FILE --file-prefix=x` means
/// `APP --file-prefix=x -- --config FILE`: for the apps whose options come with a config file
/// ([`options::load`]).
pub fn split_args_picking_eal<I: IntoIterator<Item = OsString>>(
    args: I,
) -> (Vec<String>, Vec<OsString>) {
    split(args, true)
}

fn split<I: IntoIterator<Item = OsString>>(
    args: I,
    pick_eal: bool,
) -> (Vec<String>, Vec<OsString>) {
    let mut it = args.into_iter();
    let prog = it.next().unwrap_or_else(|| "app".into());
    let rest: Vec<OsString> = it.collect();
    let prog_s = prog.to_string_lossy().into_owned();
    match rest.iter().position(|a| a == "--") {
        Some(i) => {
            let eal = std::iter::once(prog_s)
                .chain(rest[..i].iter().map(|a| a.to_string_lossy().into_owned()))
                .collect();
            let app = std::iter::once(prog)
                .chain(rest[i + 1..].iter().cloned())
                .collect();
            (eal, app)
        }
        None if pick_eal => {
            let all: Vec<String> = std::iter::once(prog_s)
                .chain(rest.iter().map(|a| a.to_string_lossy().into_owned()))
                .collect();
            let (eal, app) = eal::take_eal_options(all);
            (eal, app.into_iter().map(OsString::from).collect())
        }
        None => (vec![prog_s], std::iter::once(prog).chain(rest).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn split_args_takes_anything(args in prop::collection::vec(
            prop_oneof![Just("--".to_owned()), ".*"], 0..8)
        ) {
            let n = args.len();
            let (eal, app) = split_args(args.into_iter().map(OsString::from));
            prop_assert!(!eal.is_empty() && !app.is_empty());
            // Everything but the program name and one `--` goes to one side or the other.
            prop_assert!(eal.len() + app.len() >= n.max(1) && eal.len() + app.len() <= n.max(1) + 1);
        }

        #[test]
        fn one_line_is_one_line(text in ".*") {
            let l = one_line(&text);
            prop_assert!(!l.contains('\n') && !l.contains('\r'));
        }
    }

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn split_at_double_dash() {
        let (eal, app) = split_args(os(&["l2fwd", "-l", "0-1", "--", "-p", "0x3"]));
        assert_eq!(eal, ["l2fwd", "-l", "0-1"]);
        assert_eq!(app, os(&["l2fwd", "-p", "0x3"]));
    }

    #[test]
    fn no_double_dash_is_all_app() {
        let (eal, app) = split_args(os(&["l2fwd", "--config", "x.toml"]));
        assert_eq!(eal, ["l2fwd"]);
        assert_eq!(app, os(&["l2fwd", "--config", "x.toml"]));
    }

    #[test]
    fn only_first_double_dash_splits() {
        let (eal, app) = split_args(os(&["a", "--", "x", "--", "y"]));
        assert_eq!(eal, ["a"]);
        assert_eq!(app, os(&["a", "x", "--", "y"]));
    }

    #[test]
    fn usage_errors_keep_clap_s_tips() {
        #[derive(clap::Parser, Debug)]
        struct Cli {
            #[arg(long)]
            rate: Option<String>,
        }
        use clap::Parser;
        let e = Cli::try_parse_from(["app", "--rat", "5"]).unwrap_err();
        assert_eq!(
            usage_message(&e).unwrap(),
            "unexpected argument '--rat' found (tip: a similar argument exists: '--rate'; see --help)"
        );
        let e = Cli::try_parse_from(["app", "--zzz"]).unwrap_err();
        assert_eq!(
            usage_message(&e).unwrap(),
            "unexpected argument '--zzz' found (see --help)"
        );
        let e = Cli::try_parse_from(["app", "--help"]).unwrap_err();
        assert_eq!(usage_message(&e), None);
    }
}

#[cfg(test)]
mod pool_socket_tests {
    use super::pool_socket;

    /// The lab case: the main lcore on socket 0, the NIC on socket 1: the pool goes to 1.
    #[test]
    fn a_pool_follows_the_nic_not_the_main_lcore() {
        assert_eq!(pool_socket(Some(1), 0), 1);
        assert_eq!(pool_socket(Some(0), 1), 0);
        assert_eq!(pool_socket(None, 1), 1, "unknown: the lcore's");
        assert_eq!(pool_socket(None, 0), 0);
        assert_eq!(pool_socket(None, -1), -1, "SOCKET_ID_ANY stays any");
    }
}
