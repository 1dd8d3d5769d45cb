//! dpctl: talks to a running l2fwd or pktgen over its control socket.
//!
//! ```text
//! dpctl [-f PREFIX | --socket PATH] stats       (l2fwd and pktgen)
//! dpctl --socket PATH dma list                  (l2fwd)
//! dpctl --socket PATH dma remove NAME
//! dpctl --socket PATH dma add DEVARGS          (for example dma_skeleton1,lcore=0)
//! dpctl --socket PATH dma fault NAME stall|none (l2fwd --allow-fault-injection only)
//! dpctl --socket PATH copybreak BYTES
//! dpctl --socket PATH loop-gaps                 (l2fwd: close the loop-gap window, open the next)
//! dpctl --socket PATH stop                      (pktgen: pause transmission)
//! dpctl --socket PATH start                     (pktgen: resume it)
//! dpctl --socket PATH rate RATE                 (pktgen: max, 10Kpps, 1Gbps, as --rate)
//! ```
//!
//! Prints the JSON result; on error prints the reason and exits 1. A command the other data
//! plane's socket does not take is refused by it, and dpctl says whose command it is.
//!
//! l2fwd listens on `l2fwd.sock` in DPDK's runtime directory of its `--file-prefix` (unless
//! given `--control PATH`), so dpctl finds it by prefix, as DPDK's `dpdk-telemetry.py -f`
//! does: `-f PREFIX` (default `rte`, DPDK's default prefix), or the whole `--socket PATH`.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "dpctl",
    version,
    about = "Control a running data plane through its control socket"
)]
struct Cli {
    /// The --file-prefix of the l2fwd to control: its socket is l2fwd.sock in DPDK's runtime
    /// directory for that prefix (/var/run/dpdk/PREFIX/ as root).
    #[arg(short = 'f', long = "file-prefix", default_value = DEFAULT_PREFIX)]
    file_prefix: String,
    /// The control socket itself (l2fwd or pktgen --control PATH), instead of finding l2fwd's
    /// by prefix.
    #[arg(long, conflicts_with = "file_prefix")]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Forwarding, copy and DMA statistics.
    Stats,
    /// DMA channels.
    Dma {
        #[command(subcommand)]
        cmd: DmaCmd,
    },
    /// Set the copybreak of every worker (bytes; packets at least this long go to DMA).
    Copybreak { bytes: u32 },
    /// Each worker's longest loop iteration since the last loop-gaps (or the start); opens the
    /// next window.
    LoopGaps,
    /// pktgen: pause transmission (receiving and analysis go on).
    Stop,
    /// pktgen: resume transmission (or begin a run started with --paused).
    Start,
    /// pktgen: set the rate, as its --rate takes it (max, 50000, 10Kpps, 1.5Mpps, 1Gbps).
    Rate { rate: String },
}

#[derive(Subcommand)]
enum DmaCmd {
    /// List the DMA channels and their state.
    List,
    /// Hot-remove a DMA channel: drain it, stop, close and unplug the device.
    Remove { name: String },
    /// Hot-add a DMA device: probe, configure, start, give it to a worker.
    Add { devargs: String },
    /// Inject a fault into a channel (stall: completions stop coming; none: clear).
    Fault { name: String, fault: String },
}

/// DPDK's default `--file-prefix`.
const DEFAULT_PREFIX: &str = "rte";

/// DPDK's runtime directory for `prefix`, as `eal_create_runtime_dir` makes it: under
/// `/var/run` for root, else under `$XDG_RUNTIME_DIR` or `/tmp`.
fn dpdk_runtime_dir(prefix: &str) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let base = if root {
        PathBuf::from("/var/run")
    } else {
        std::env::var_os("XDG_RUNTIME_DIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
    };
    base.join("dpdk").join(prefix)
}

fn main() -> ExitCode {
    apps_common::main_with("dpctl", || {
        let v = run()?;
        apps_common::outln!("{}", serde_json::to_string_pretty(&v)?);
        Ok(())
    })
}

/// The control-socket request for a parsed command.
fn request(cmd: Cmd) -> Value {
    match cmd {
        Cmd::Stats => json!({"cmd": "stats"}),
        Cmd::Copybreak { bytes } => json!({"cmd": "copybreak", "bytes": bytes}),
        Cmd::LoopGaps => json!({"cmd": "loop gaps"}),
        Cmd::Stop => json!({"cmd": "stop"}),
        Cmd::Start => json!({"cmd": "start"}),
        Cmd::Rate { rate } => json!({"cmd": "rate", "rate": rate}),
        Cmd::Dma { cmd } => match cmd {
            DmaCmd::List => json!({"cmd": "dma list"}),
            DmaCmd::Remove { name } => json!({"cmd": "dma remove", "name": name}),
            DmaCmd::Add { devargs } => json!({"cmd": "dma add", "devargs": devargs}),
            DmaCmd::Fault { name, fault } => {
                json!({"cmd": "dma fault", "name": name, "fault": fault})
            }
        },
    }
}

/// Commands only one of the data planes takes, and which.
const L2FWD_ONLY: [&str; 6] = [
    "dma list",
    "dma remove",
    "dma add",
    "dma fault",
    "copybreak",
    "loop gaps",
];
const PKTGEN_ONLY: [&str; 3] = ["start", "stop", "rate"];

/// The data plane's error message, with a word on whose command it is when the socket did not
/// know it (pktgen's commands sent to l2fwd, or l2fwd's to pktgen).
fn explain(error: &str, cmd: &str) -> String {
    if !error.contains("unknown variant") {
        return error.to_owned();
    }
    let whose = if L2FWD_ONLY.contains(&cmd) {
        "l2fwd"
    } else if PKTGEN_ONLY.contains(&cmd) {
        "pktgen"
    } else {
        return error.to_owned();
    };
    format!("`{cmd}` is {whose}'s command; this socket's data plane does not take it ({error})")
}

fn run() -> Result<Value> {
    let cli = Cli::try_parse().map_err(apps_common::usage_error)?;
    let req = request(cli.cmd);
    let (socket, hint) = match cli.socket {
        Some(path) => (
            path,
            "is l2fwd or pktgen running with --control at this path?".to_owned(),
        ),
        None => (
            dpdk_runtime_dir(&cli.file_prefix).join("l2fwd.sock"),
            format!(
                "no l2fwd running with --file-prefix {}? l2fwd listens there unless given \
                 --control PATH; then use dpctl --socket PATH",
                cli.file_prefix
            ),
        ),
    };
    let mut conn = UnixStream::connect(&socket)
        .with_context(|| format!("cannot connect to {} ({hint})", socket.display()))?;
    conn.set_read_timeout(Some(Duration::from_secs(90)))?;
    conn.write_all(format!("{req}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(&conn)
        .read_line(&mut line)
        .context("no answer from the data plane")?;
    if line.is_empty() {
        bail!("the data plane closed the connection without answering");
    }
    let resp: Value = serde_json::from_str(&line).context("malformed answer")?;
    if resp["ok"] == json!(true) {
        Ok(resp["result"].clone())
    } else {
        let error = resp["error"].as_str().unwrap_or("unknown error");
        bail!("{}", explain(error, req["cmd"].as_str().unwrap_or("")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::sample::select(
                &[
                    "--socket", "/tmp/s", "-f", "--file-prefix", "x", "stats", "dma", "list", "remove", "add", "fault",
                    "stall", "none", "copybreak", "512", "start", "stop", "rate", "1Mpps", "0", "-1", "4294967296", "--", "-h",
                    "--help", "help",
                ][..]
            )
            .prop_map(str::to_owned),
            1 => ".*",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any argument vector: parsed into a request with a command, or a one-line error.
        #[test]
        fn any_argv_parses_or_errs(args in prop::collection::vec(word(), 0..7)) {
            let argv = std::iter::once("dpctl".to_owned()).chain(args);
            match Cli::try_parse_from(argv) {
                Ok(cli) => {
                    let req = request(cli.cmd);
                    prop_assert!(req["cmd"].is_string());
                }
                Err(e) => {
                    if let Some(m) = apps_common::usage_message(&e) {
                        prop_assert!(!m.contains('\n') && !m.is_empty());
                    }
                }
            }
        }
    }

    #[test]
    fn pktgen_commands_and_whose_they_are() {
        let req = |args: &[&str]| {
            let argv = ["dpctl", "--socket", "/s"].iter().chain(args);
            request(Cli::try_parse_from(argv).unwrap().cmd)
        };
        assert_eq!(req(&["stop"]), json!({"cmd": "stop"}));
        assert_eq!(req(&["start"]), json!({"cmd": "start"}));
        assert_eq!(
            req(&["rate", "1Mpps"]),
            json!({"cmd": "rate", "rate": "1Mpps"})
        );
        let unknown = "invalid request: unknown variant `rate`, expected one of `stats`";
        assert!(explain(unknown, "rate").starts_with("`rate` is pktgen's command"));
        assert!(explain(unknown, "dma list").starts_with("`dma list` is l2fwd's command"));
        assert_eq!(explain("invalid rate", "rate"), "invalid rate");
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
