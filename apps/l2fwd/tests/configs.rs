//! The repository's configs as a user runs them, changed from the command line: an EAL option
//! given with a config replaces the file's own and keeps the rest, on either side of `--`; a
//! mistyped table is an error; relative paths in a config are relative to the file.

use apps_common::testing::*;
use dataplane::report::L2fwdReport;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_l2fwd");

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

fn prefix() -> String {
    format!("cfgtest{}", std::process::id())
}

/// The control socket l2fwd printed: it lives in the runtime directory of its file prefix.
fn control_socket(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Control socket: "))
        .expect("l2fwd prints its control socket")
        .to_owned()
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

#[test]
fn an_eal_option_on_the_command_line_changes_only_that_option_of_the_config() {
    let cfg = configs().join("l2fwd-vdev.toml");
    let cfg = cfg.to_str().unwrap();
    let p = prefix();
    let fp = format!("--file-prefix={p}a");
    // DPDK's form: EAL options before `--`. The file's --no-huge and vdevs stay.
    let out = run(&[
        &fp,
        "-l",
        "0",
        "--",
        "--config",
        cfg,
        "-T",
        "0",
        "--duration",
        "0.5",
    ]);
    assert_success("l2fwd --file-prefix=... -- --config", &out);
    assert!(
        control_socket(&out.stdout).ends_with(&format!("/dpdk/{p}a/l2fwd.sock")),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // -l 0 replaced the file's -l 0-1: the main lcore forwards alone.
    assert!(String::from_utf8_lossy(&out.stdout).contains("Lcore 0: "));
    // Without `--`: the EAL options are picked out by name.
    let fp = format!("--file-prefix={p}b");
    let out = run(&["--config", cfg, &fp, "-T", "0", "--duration", "0.5"]);
    assert_success("l2fwd --config ... --file-prefix=...", &out);
    assert!(control_socket(&out.stdout).ends_with(&format!("/dpdk/{p}b/l2fwd.sock")));
    // A vdev added on the command line comes on top of the file's two.
    let fp = format!("--file-prefix={p}c");
    let out = run(&[
        "--config",
        cfg,
        &fp,
        "--vdev=net_null2",
        "-p",
        "0x7",
        "-T",
        "0",
        "--duration",
        "0.5",
    ]);
    assert_success("l2fwd --config ... --vdev=net_null2", &out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Port 2 (net_null2)"));
}

#[test]
fn a_mistyped_table_is_an_error() {
    let dir = scratch("mistyped-table");
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, "[L2fwd]\nportmask = \"0x3\"\n").unwrap();
    let out = run(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("unknown table [L2fwd] (did you mean [l2fwd]?)"),
        "{e}"
    );
}

#[test]
fn a_config_reads_its_captures_and_writes_its_report_beside_itself() {
    let dir = scratch("relative-paths");
    std::fs::create_dir_all(dir.join("pcap")).unwrap();
    let frames = random_frames(5, 100, 60, 1514);
    write_pcap(&dir.join("pcap/in.pcap"), &frames);
    let text = format!(
        "eal = [\"-l\", \"0-1\", \"--no-huge\", \"--no-pci\", \"-m\", \"256\", \
         \"--vdev=net_pcap0,rx_pcap=pcap/in.pcap,tx_pcap=out.pcap\", \
         \"--file-prefix={}d\", \"--log-level=warning\"]\n\
         [l2fwd]\nportmask = 1\nstats_period = 0\nduration = 1\nreport = \"report.json\"\n",
        prefix()
    );
    std::fs::write(dir.join("c.toml"), text).unwrap();
    // Run from elsewhere: the paths are the file's, not the current directory's.
    let out = Command::new(BIN)
        .args(["--config", dir.join("c.toml").to_str().unwrap()])
        .current_dir("/")
        .output()
        .unwrap();
    assert_success("l2fwd --config with relative paths", &out);
    let r: L2fwdReport =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(r.rx_packets, frames.len() as u64);
    assert_eq!(read_pcap(&dir.join("out.pcap")).len(), frames.len());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The DMA demo as a user runs it: l2fwd lists each DMA channel with its capabilities at
/// start (dma_skeleton does not report copy errors, so the listing says the stall timeout is
/// the protection), and warns about no uio device (there is no PCI device at all).
#[test]
fn the_dma_config_lists_each_channel_with_its_capabilities() {
    let cfg = configs().join("l2fwd-dma-vdev.toml");
    let fp = format!("--file-prefix={}e", prefix());
    let out = run(&[
        "--config",
        cfg.to_str().unwrap(),
        &fp,
        "-T",
        "0",
        "--duration",
        "0.3",
    ]);
    assert_success("l2fwd --config l2fwd-dma-vdev.toml", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("DMA dev 0 (dma_skeleton0): "))
        .unwrap_or_else(|| panic!("no capability line:\n{stdout}"));
    assert!(line.contains(": mem_to_mem,sva,copy desc "), "{line}");
    assert!(
        line.ends_with("(copy errors not reported: the stall timeout protects)"),
        "{line}"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("(uio)"));
}

/// The lab templates parse and resolve as they are (they cannot run here: no PCI devices),
/// and their EAL arguments allow the devices they name.
#[test]
fn the_lab_templates_parse_and_name_their_devices() {
    for (file, devices) in [
        ("l2fwd-lab-nic.toml", &["0000:3b:00.0", "0000:3b:00.1"][..]),
        (
            "l2fwd-lab-ioat.toml",
            &[
                "0000:3b:00.0",
                "0000:3b:00.1",
                "0000:00:04.0",
                "0000:00:04.1",
            ][..],
        ),
        (
            "l2fwd-lab-dsa.toml",
            &["0000:3b:00.0", "0000:3b:00.1", "0000:6a:01.0,max_queues=2"][..],
        ),
    ] {
        let path = configs().join(file);
        let loaded = apps_common::options::load_from::<l2fwd::options::L2fwdOptions, _>([
            std::ffi::OsString::from("l2fwd"),
            "--config".into(),
            path.clone().into_os_string(),
        ])
        .unwrap_or_else(|e| panic!("{file}: {e:#}"));
        loaded
            .options
            .resolve()
            .unwrap_or_else(|e| panic!("{file}: {e:#}"));
        for d in devices {
            assert!(
                loaded.eal.windows(2).any(|w| w[0] == "-a" && w[1] == *d),
                "{file}: -a {d} in {:?}",
                loaded.eal
            );
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for prerequisite in ["intel_iommu=on iommu=pt", "iommu_group", "numa_node"] {
            assert!(text.contains(prerequisite), "{file}: {prerequisite}");
        }
    }
    let dsa = std::fs::read_to_string(configs().join("l2fwd-lab-dsa.toml")).unwrap();
    assert!(dsa.contains("dmadev_idxd_pci") && dsa.contains("accel-config enable-wq"));
}
