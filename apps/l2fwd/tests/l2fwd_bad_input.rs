//! Bad input gets a clear one-line reason and a non-zero exit, never a panic.

use apps_common::testing::*;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_l2fwd");

fn null_pair() -> Vec<String> {
    let mut eal = eal_base();
    eal.push("--vdev=net_null0".into());
    eal.push("--vdev=net_null1".into());
    eal
}

fn expect_failure(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should fail; stderr:\n{stderr}");
    assert!(
        !stderr.contains("panicked"),
        "must not panic; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains(needle),
        "stderr should mention {needle:?}:\n{stderr}"
    );
}

#[test]
fn missing_config_file() {
    let out = Command::new(BIN)
        .args(["--config", "/nonexistent/l2fwd.toml"])
        .output()
        .unwrap();
    expect_failure(&out, "cannot read config /nonexistent/l2fwd.toml");
}

#[test]
fn malformed_config_file() {
    let dir = scratch("badcfg");
    for (i, (text, needle)) in [
        ("eal = [\"-l\", \"0-1\"\n", "invalid config"),
        (
            "[l2fwd]\nportmask = \"0x3\"\nstats = 1\n",
            "unknown field `stats`",
        ),
        ("[l2fwd]\nportmask = true\n", "portmask"),
        ("[l2fwd]\nportmask = \"0xq\"\n", "invalid portmask"),
        (
            "[l2fwd]\nportmask = \"0x3\"\nduration = -1.0\n",
            "invalid duration",
        ),
    ]
    .iter()
    .enumerate()
    {
        let p = dir.join(format!("c{i}.toml"));
        std::fs::write(&p, text).unwrap();
        let out = Command::new(BIN)
            .args(["--config", p.to_str().unwrap()])
            .output()
            .unwrap();
        expect_failure(&out, needle);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_portmask() {
    let out = run_app(BIN, &null_pair(), &["-p", "xyz", "-T", "0"]);
    expect_failure(&out, "invalid portmask \"xyz\"");
    let out = run_app(BIN, &null_pair(), &["-p", "0", "-T", "0"]);
    expect_failure(&out, "no port enabled");
}

#[test]
fn missing_portmask() {
    let out = run_app(BIN, &null_pair(), &["-T", "0"]);
    expect_failure(&out, "no portmask given");
}

#[test]
fn portmask_names_a_port_that_does_not_exist() {
    let out = run_app(
        BIN,
        &null_pair(),
        &["-p", "0x7", "-T", "0", "--duration", "1"],
    );
    expect_failure(&out, "names port 2, but only 2 port(s) exist");
}

/// A vdev whose driver refuses it (here: a capture file that is not there) makes no port; the
/// error names that vdev instead of suggesting that none was given.
#[test]
fn a_vdev_that_made_no_port_is_named() {
    let dir = scratch("vdev-no-port");
    let mut eal = eal_base();
    eal.push(format!(
        "--vdev=net_pcap0,rx_pcap={},tx_pcap={}",
        dir.join("missing.pcap").display(),
        dir.join("out.pcap").display()
    ));
    let out = run_app(BIN, &eal, &["-p", "0x1", "-T", "0", "--duration", "1"]);
    expect_failure(&out, "DPDK made no port of --vdev net_pcap0");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("no --vdev given"), "{stderr}");
}

#[test]
fn eal_failure() {
    let mut eal = eal_base();
    eal.push("--vdev=net_nosuchdriver0".into());
    let out = run_app(BIN, &eal, &["-p", "0x1", "-T", "0", "--duration", "1"]);
    expect_failure(&out, "rte_eal_init failed");
    let out = run_app(BIN, &["--no-such-eal-option".into()], &["-p", "0x1"]);
    expect_failure(&out, "rte_eal_init failed");
}

#[test]
fn unknown_app_option() {
    let out = run_app(BIN, &null_pair(), &["-p", "0x3", "--frobnicate"]);
    expect_failure(&out, "--frobnicate");
}

#[test]
fn bad_copy_options() {
    let out = run_app(BIN, &null_pair(), &["-p", "0x3", "--copy", "fast"]);
    expect_failure(&out, "invalid copy mode \"fast\"");
    let out = run_app(
        BIN,
        &null_pair(),
        &["-p", "0x3", "-T", "0", "--copy", "dma"],
    );
    expect_failure(&out, "--copy dma needs a DMA device");
    let mut eal = null_pair();
    eal.push("--vdev=dma_skeleton0,lcore=0".into());
    let out = run_app(
        BIN,
        &eal,
        &[
            "-p",
            "0x3",
            "-T",
            "0",
            "--copy",
            "dma",
            "--dma",
            "dma_nosuch9",
        ],
    );
    expect_failure(&out, "no DMA device named \"dma_nosuch9\"");
    let out = run_app(
        BIN,
        &null_pair(),
        &["-p", "0x3", "-T", "0", "--dma", "dma_skeleton0"],
    );
    expect_failure(&out, "--dma needs --copy dma or --copy auto");
}

/// Exactly one line on stderr, `l2fwd: error: ...` mentioning `needle`, and exit code 1 (not a
/// panic, an abort or clap's exit 2).
fn expect_one_line_error(what: &str, out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: exit status {}; stderr:\n{stderr}",
        out.status
    );
    assert_eq!(lines.len(), 1, "{what}: one line on stderr, got:\n{stderr}");
    assert!(
        lines[0].starts_with("l2fwd: error: ") && lines[0].contains(needle),
        "{what}: expected `l2fwd: error: ...{needle}...`, got:\n{stderr}"
    );
}

/// Runs l2fwd on the null pair with `args` and, where `args` leaves them out, `-p 0x3 -T 0
/// --duration 1` (the duration bounds a run that wrongly starts); expects one error line
/// naming `needle`.
fn refused(args: &[&str], needle: &str) {
    let has = |names: &[&str]| args.iter().any(|a| names.contains(a));
    let mut app: Vec<&str> = Vec::new();
    for (names, default) in [
        (&["-p", "--portmask"][..], ["-p", "0x3"]),
        (&["-T", "--stats-period"][..], ["-T", "0"]),
        (&["--duration"][..], ["--duration", "1"]),
    ] {
        if !has(names) {
            app.extend_from_slice(&default);
        }
    }
    app.extend_from_slice(args);
    let out = run_app(BIN, &null_pair(), &app);
    expect_one_line_error(&args.join(" "), &out, needle);
}

#[test]
fn huge_stats_period_is_refused_before_anything_starts() {
    // It used to start the ports, then panic on `Instant + Duration` overflow (an abort).
    refused(
        &["-T", "18446744073709551615"],
        "invalid -T/--stats-period 18446744073709551615: expected 0..=86400 seconds",
    );
    refused(&["-T", "86401"], "expected 0..=86400 seconds (0 = quiet)");
    refused(&["--stats-period", "86401"], "0..=86400");
}

#[test]
fn dma_timeout_out_of_range_is_refused() {
    // 0 retired every DMA channel at its first burst.
    refused(
        &["--dma-timeout-ms", "0"],
        "invalid --dma-timeout-ms 0: expected 1..=60000 milliseconds",
    );
    refused(&["--dma-timeout-ms", "60001"], "1..=60000 milliseconds");
    refused(&["--dma-timeout-ms", "18446744073709551615"], "1..=60000");
}

#[test]
fn grace_out_of_range_is_refused() {
    // A huge grace made a hot-remove, and with it SIGINT, wait (practically) forever.
    refused(
        &["--grace-ms", "18446744073709551615"],
        "invalid --grace-ms 18446744073709551615: expected 1..=60000 milliseconds",
    );
    refused(&["--grace-ms", "60001"], "1..=60000");
    refused(&["--grace-ms", "0"], "invalid --grace-ms 0");
}

#[test]
fn copybreak_out_of_range_is_refused() {
    refused(
        &["--copy", "cpu", "--copybreak", "0"],
        "invalid --copybreak 0: expected 1..=65535 bytes",
    );
    refused(&["--copybreak", "65536"], "invalid --copybreak 65536");
    refused(&["--copybreak", "4294967295"], "1..=65535 bytes");
}

#[test]
fn duration_out_of_range_is_refused() {
    for d in ["0", "inf", "NaN", "1e300", "31536001", "-1"] {
        refused(&["--duration", d], "expected 0.001 to 31536000 seconds");
    }
}

#[test]
fn unparsable_values_get_one_line_too() {
    // clap's own errors were several lines and exit 2.
    refused(&["-T", "-1"], "unexpected argument '-1'");
    refused(&["-T", "18446744073709551616"], "number too large");
    refused(&["--grace-ms", "x"], "invalid value 'x'");
    refused(&["--frobnicate"], "unexpected argument '--frobnicate'");
    refused(&["-p", "0x10000000000000000"], "invalid portmask");
    refused(&["-p", ""], "invalid portmask \"\": empty");
    refused(&["--copy", ""], "invalid copy mode \"\"");
}

#[test]
fn out_of_range_config_values_are_refused() {
    let dir = scratch("rangecfg");
    for (i, (line, needle)) in [
        (
            "dma_timeout_ms = 0",
            "[l2fwd] invalid dma_timeout_ms = 0: expected 1..=60000",
        ),
        (
            "grace_ms = 9223372036854775807",
            "invalid grace_ms = 9223372036854775807",
        ),
        (
            "stats_period = 86401",
            "invalid stats_period = 86401: expected 0..=86400",
        ),
        ("copybreak = 0", "invalid copybreak = 0"),
        ("duration = inf", "invalid duration = inf"),
        ("stats_period = -1", "stats_period"),
        // TOML's own errors span several lines: they come out on one.
        ("copybreak = [", "invalid config"),
    ]
    .iter()
    .enumerate()
    {
        let p = dir.join(format!("c{i}.toml"));
        std::fs::write(&p, format!("[l2fwd]\nportmask = \"0x3\"\n{line}\n")).unwrap();
        let out = Command::new(BIN)
            .args(["--config", p.to_str().unwrap()])
            .output()
            .unwrap();
        expect_one_line_error(line, &out, needle);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_hugepages_says_how_to_fix_it() {
    // A --huge-dir that is no hugetlbfs mount: the EAL finds no hugepages, as on a box with
    // none reserved, whatever this box has.
    let mut eal: Vec<String> = eal_base()
        .into_iter()
        .filter(|a| a != "--no-huge" && a != "-m" && a != "256")
        .collect();
    eal.push("--huge-dir=/nonexistent-hugetlbfs".into());
    eal.push("--vdev=net_null0".into());
    let out = run_app(BIN, &eal, &["-p", "0x1", "-T", "0", "--duration", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The EAL logs its own lines first; ours is the last, and one line.
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("l2fwd: error: rte_eal_init failed")
            && last.contains("no hugepages available?")
            && last.contains("dpdk-hugepages.py --setup 1G")
            && last.contains("--no-huge"),
        "{stderr}"
    );
    // With --no-huge the hint would be wrong: none.
    let out = run_app(BIN, &["--no-huge".into(), "--bogus".into()], &["-p", "0x1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rte_eal_init failed") && !stderr.contains("hugepages available"),
        "{stderr}"
    );
}

/// A second primary process on a prefix in use: DPDK itself says only "Success"; l2fwd names
/// the prefix and what to do. The first run goes on unharmed.
#[test]
fn a_file_prefix_in_use_is_named() {
    let eal = null_pair();
    let prefix = file_prefix(&eal);
    let sock = scratch("prefix-in-use").join("ctl.sock");
    let mut first = Command::new(BIN)
        .args(&eal)
        .args([
            "--",
            "-p",
            "0x3",
            "-T",
            "0",
            "--duration",
            "30",
            "--control",
        ])
        .arg(&sock)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first holds the prefix once its control socket (made after the EAL) is there.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !sock.exists() {
        assert!(first.try_wait().unwrap().is_none(), "the first run ended");
        assert!(std::time::Instant::now() < deadline, "no socket {sock:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = Command::new(BIN)
        .args(&eal)
        .args(["--", "-p", "0x3", "-T", "0", "--duration", "1"])
        .output()
        .unwrap();
    let _ = Command::new("kill")
        .args(["-INT", &first.id().to_string()])
        .status();
    let first = first.wait_with_output().unwrap();
    expect_failure(
        &out,
        &format!("another DPDK process uses --file-prefix {prefix}"),
    );
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
}

/// A report that cannot be written fails the run at start, not after it.
#[test]
fn an_unwritable_report_fails_before_the_run() {
    let out = run_app(
        BIN,
        &null_pair(),
        &[
            "-p",
            "0x3",
            "-T",
            "0",
            "--duration",
            "30",
            "--report",
            "/nonexistent/dir/r.json",
        ],
    );
    expect_failure(
        &out,
        "--report /nonexistent/dir/r.json: the directory /nonexistent/dir does not exist",
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("Port 0"),
        "nothing started"
    );
}
