//! Helpers for the apps' integration tests: pcap files, frames, running the binaries on vdevs.

use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dp-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// EAL arguments that run anywhere: no hugepages, no PCI, one worker lcore, a private runtime
/// directory so that tests may run side by side.
pub fn eal_base() -> Vec<String> {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    vec![
        "-l".into(),
        "0-1".into(),
        "--no-huge".into(),
        "--no-pci".into(),
        "-m".into(),
        "256".into(),
        "--log-level=warning".into(),
        format!("--file-prefix=dptest{}_{n}", std::process::id()),
    ]
}

/// The `--file-prefix` of EAL arguments such as [`eal_base`]'s.
pub fn file_prefix(eal: &[String]) -> String {
    eal.iter()
        .find_map(|a| a.strip_prefix("--file-prefix="))
        .expect("the EAL arguments name a --file-prefix")
        .to_owned()
}

/// `count` Ethernet frames of random length in `min..=max` and random bytes, with a valid-looking
/// Ethernet header, deterministic per `seed`.
pub fn random_frames(seed: u64, count: usize, min: usize, max: usize) -> Vec<Vec<u8>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..count)
        .map(|i| {
            let len = rng.gen_range(min..=max);
            let mut f = vec![0u8; len];
            rng.fill(&mut f[..]);
            f[0..6].copy_from_slice(&[0x02, 0xaa, 0, 0, (seed & 0xff) as u8, 1]);
            f[6..12].copy_from_slice(&[0x02, 0xbb, 0, 0, (seed & 0xff) as u8, 2]);
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            // Sequence number in the payload, so a reorder shows up as a clear diff.
            f[14..18].copy_from_slice(&(i as u32).to_be_bytes());
            f
        })
        .collect()
}

pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::new(f).unwrap();
    for (i, fr) in frames.iter().enumerate() {
        let ts = Duration::from_micros(i as u64);
        w.write_packet(&PcapPacket::new(ts, fr.len() as u32, fr))
            .unwrap();
    }
}

pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let f =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let mut r = PcapReader::new(f).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.unwrap().data.into_owned());
    }
    out
}

/// Runs an app binary with `eal -- app` arguments and returns its output.
pub fn run_app(bin: &str, eal: &[String], app: &[&str]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(eal);
    cmd.arg("--");
    cmd.args(app);
    cmd.output().expect("cannot start the app")
}

/// Runs pktgen (`bin`) with `eal` and, after `--`, `-T 0 --drain-ms DRAIN_MS --report FILE`
/// then `args`, in a scratch directory named `name`: its exit status, what it printed (stdout
/// then stderr), and its report (`Null` when it wrote none; a report that is not JSON panics,
/// showing the output).
pub fn pktgen_run(
    bin: &str,
    name: &str,
    eal: &[String],
    drain_ms: u32,
    args: &[&str],
) -> (Option<i32>, String, serde_json::Value) {
    let dir = scratch(name);
    let report = dir.join("report.json");
    let o = Command::new(bin)
        .args(eal)
        .arg("--")
        .args(["-T", "0", "--drain-ms", &drain_ms.to_string(), "--report"])
        .arg(&report)
        .args(args)
        .output()
        .expect("cannot start pktgen");
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    let r = std::fs::read_to_string(&report)
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap_or_else(|e| panic!("bad report ({e}):\n{out}")))
        .unwrap_or(serde_json::Value::Null);
    let _ = std::fs::remove_dir_all(&dir);
    (o.status.code(), out, r)
}

/// `v` as an unsigned integer, or a panic naming what it was.
pub fn u(v: &serde_json::Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not an unsigned integer: {v}"))
}

/// The `lcore` of every entry of `v["lcores"]` (an l2fwd report, its stats, a loop-gap
/// window), in order; panics if there is no such array.
pub fn lcore_ids(v: &serde_json::Value) -> Vec<&serde_json::Value> {
    v["lcores"]
        .as_array()
        .unwrap_or_else(|| panic!("no lcores in {v}"))
        .iter()
        .map(|l| &l["lcore"])
        .collect()
}

/// Panics with the app's output when it failed.
pub fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Parses a MAC written as aa:bb:cc:dd:ee:ff.
pub fn parse_mac(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

/// The path of the workspace's binary `name` (another app's, which Cargo's `CARGO_BIN_EXE_*`
/// names only inside its own package): next to the test's own `deps/` directory, as
/// `cargo test --workspace` builds it. Panics, naming the fix, if it was not built.
pub fn workspace_bin(name: &str) -> String {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} not built: run the tests with `cargo test --workspace` (or build it first)",
        bin.display()
    );
    bin.display().to_string()
}

/// Fails the test at once, saying why, unless it runs as root: the veth drills need network
/// namespaces and raw sockets. (CI runs as root; a plain `cargo test` as a user would otherwise
/// fail deep inside a shell script.)
pub fn require_root(what: &str) {
    let euid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned))
        })
        .unwrap_or_default();
    assert!(
        euid == "0",
        "{what} needs root (a network namespace with a veth pair, raw sockets): run the tests \
         as root, as CI does (`sudo -E cargo test --release --workspace`)"
    );
}

/// EAL arguments for two `net_pcap` ports reading `in0.pcap`/`in1.pcap` (written here from
/// `inputs`) and writing `out0.pcap`/`out1.pcap`, all in `dir`.
pub fn pcap_pair_eal(dir: &Path, inputs: &[Vec<Vec<u8>>; 2]) -> Vec<String> {
    let mut eal = eal_base();
    for (i, frames) in inputs.iter().enumerate() {
        let rx = dir.join(format!("in{i}.pcap"));
        write_pcap(&rx, frames);
        eal.push(format!(
            "--vdev=net_pcap{i},rx_pcap={},tx_pcap={}",
            rx.display(),
            dir.join(format!("out{i}.pcap")).display()
        ));
    }
    eal
}

/// Sends `cmds` (one per line) through `dpdk-telemetry.py -f prefix`, non-interactively, and
/// returns each answer by command; empty if the socket is not there yet.
pub fn telemetry(prefix: &str, cmds: &[&str]) -> serde_json::Map<String, serde_json::Value> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("dpdk-telemetry.py")
        .args(["-f", prefix])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dpdk-telemetry.py (Debian's dpdk package) is needed for this test");
    let mut input = child.stdin.take().unwrap();
    input
        .write_all((cmds.join("\n") + "\n").as_bytes())
        .unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    let mut answers = serde_json::Map::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Ok(serde_json::Value::Object(o)) = serde_json::from_str(line) {
            answers.extend(o);
        }
    }
    answers
}
