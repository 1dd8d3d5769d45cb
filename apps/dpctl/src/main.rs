//! dpctl: talks to a running l2fwd over its control socket.
//!
//! ```text
//! dpctl [-f PREFIX | --socket PATH] stats
//! dpctl --socket PATH dma list
//! dpctl --socket PATH dma remove NAME
//! dpctl --socket PATH dma add DEVARGS          (for example dma_skeleton1,lcore=0)
//! dpctl --socket PATH dma fault NAME stall|none (l2fwd --allow-fault-injection only)
//! dpctl --socket PATH copybreak BYTES
//! ```
//!
//! Prints the JSON result; on error prints the reason and exits 1.
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
    /// The control socket itself (l2fwd --control PATH), instead of finding it by prefix.
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

fn run() -> Result<Value> {
    let cli = Cli::try_parse().map_err(apps_common::usage_error)?;
    let req = request(cli.cmd);
    let (socket, hint) = match cli.socket {
        Some(path) => (
            path,
            "is l2fwd running with --control at this path?".to_owned(),
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
        bail!("{}", resp["error"].as_str().unwrap_or("unknown error"))
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
                    "stall", "none", "copybreak", "512", "0", "-1", "4294967296", "--", "-h",
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
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
