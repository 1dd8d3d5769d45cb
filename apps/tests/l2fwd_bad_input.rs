//! Bad input gets a clear one-line reason and a non-zero exit, never a panic.

mod common;

use common::*;
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
