//! dpctl as a user runs it, against a control socket played by the test: what it sends, what it
//! prints for an answer, and the one-line error (exit 1) for every way the other end can fail.
//!
//! (This file also makes `cargo test --workspace` build the `dpctl` binary itself, which the l2fwd
//! drills drive.)

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::Output;
use std::thread;

const DPCTL: &str = env!("CARGO_BIN_EXE_dpctl");

fn socket_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dpctl-client-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("ctl.sock")
}

/// Serves one connection: reads the request line, hands it to the test, writes `answer` (raw).
fn one_shot_server(path: &PathBuf, answer: &'static str) -> thread::JoinHandle<Value> {
    let listener = UnixListener::bind(path).unwrap();
    thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(&conn).read_line(&mut line).unwrap();
        (&conn).write_all(answer.as_bytes()).unwrap();
        serde_json::from_str(&line).unwrap()
    })
}

fn dpctl(socket: &PathBuf, args: &[&str]) -> Output {
    std::process::Command::new(DPCTL)
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn sends_the_request_and_prints_the_result() {
    let path = socket_path("ok");
    let server = one_shot_server(&path, "{\"ok\":true,\"result\":{\"copybreak\":512}}\n");
    let out = dpctl(&path, &["copybreak", "512"]);
    assert_eq!(
        server.join().unwrap(),
        json!({"cmd": "copybreak", "bytes": 512})
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, json!({"copybreak": 512}));
}

#[test]
fn dma_remove_names_the_channel() {
    let path = socket_path("remove");
    let server = one_shot_server(&path, "{\"ok\":true,\"result\":{}}\n");
    let out = dpctl(&path, &["dma", "remove", "dma_skeleton0"]);
    assert_eq!(
        server.join().unwrap(),
        json!({"cmd": "dma remove", "name": "dma_skeleton0"})
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_error_answer_is_one_line_and_exit_1() {
    let path = socket_path("err");
    let server = one_shot_server(&path, "{\"ok\":false,\"error\":\"no DMA channel nope\"}\n");
    let out = dpctl(&path, &["dma", "remove", "nope"]);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let e = stderr(&out);
    assert!(e.contains("no DMA channel nope"), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
}

#[test]
fn a_malformed_answer_is_an_error() {
    let path = socket_path("malformed");
    let server = one_shot_server(&path, "this is not json\n");
    let out = dpctl(&path, &["stats"]);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("malformed answer"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_closed_connection_is_an_error() {
    let path = socket_path("closed");
    let server = one_shot_server(&path, "");
    let out = dpctl(&path, &["dma", "list"]);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("closed the connection without answering"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_data_plane_listening_is_an_error_naming_the_socket() {
    let path = socket_path("absent");
    let out = dpctl(&path, &["stats"]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("cannot connect to") && e.contains("ctl.sock"),
        "{e}"
    );
}

#[test]
fn bad_arguments_are_a_usage_error() {
    let path = socket_path("usage");
    let out = dpctl(&path, &["copybreak", "-1"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(!stderr(&out).is_empty());
}

#[test]
fn a_prefix_and_a_socket_together_are_refused() {
    let path = socket_path("both");
    let out = std::process::Command::new(DPCTL)
        .args(["-f", "x", "--socket"])
        .arg(&path)
        .arg("stats")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn with_no_l2fwd_under_a_prefix_it_says_where_it_looked() {
    let prefix = format!("dpctl-none-{}", std::process::id());
    let out = std::process::Command::new(DPCTL)
        .args(["-f", &prefix, "stats"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains(&format!("/dpdk/{prefix}/l2fwd.sock"))
            && e.contains(&format!("--file-prefix {prefix}")),
        "{e}"
    );
}
