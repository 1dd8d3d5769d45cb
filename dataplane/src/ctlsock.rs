//! The control socket: a Unix stream socket (mode 0600) carrying one JSON request per line and
//! one JSON response per line, `{"ok":true,"result":...}` or `{"ok":false,"error":"..."}`.
//!
//! Requests are [`crate::control::Request`]s, handed to the control thread through a channel;
//! the socket threads never touch the data plane. Lines are bounded ([`MAX_LINE`] bytes): a
//! longer one gets an error and the connection is closed. Malformed JSON gets an error and the
//! connection stays open. A client that disconnects mid-request costs nothing.

use crate::control::Request;
use serde_json::{json, Value};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest request line accepted, newline included.
pub const MAX_LINE: usize = 4096;

/// Most connections served at once; more are told so and closed.
pub const MAX_CONNECTIONS: usize = 16;

/// A request and where its answer goes.
pub struct Envelope {
    pub req: Request,
    pub reply: mpsc::Sender<Result<Value, String>>,
}

/// The running socket server. Dropping it stops accepting and removes the socket file.
pub struct CtlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CtlServer {
    /// Listens on `path` (replacing a stale socket there), handing requests to `tx`.
    pub fn start(path: &Path, tx: mpsc::Sender<Envelope>) -> io::Result<Self> {
        if let Ok(md) = std::fs::symlink_metadata(path) {
            if md.file_type().is_socket() {
                // A socket left by a run that did not exit cleanly: refuse if someone answers.
                if UnixStream::connect(path).is_ok() {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("{} is in use by another running data plane", path.display()),
                    ));
                }
                std::fs::remove_file(path)?;
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("ctlsock".into())
            .spawn(move || accept_loop(listener, tx, &stop2))?;
        Ok(CtlServer {
            path: path.to_owned(),
            stop,
            thread: Some(thread),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for CtlServer {
    fn drop(&mut self) {
        // Relaxed: a stop request; the join below orders everything else.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept_loop(listener: UnixListener, tx: mpsc::Sender<Envelope>, stop: &AtomicBool) {
    let open = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut conn, _)) => {
                // Control path: connection bookkeeping, not the data plane.
                if open.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS {
                    open.fetch_sub(1, Ordering::Relaxed);
                    let _ = conn.set_nonblocking(false);
                    let _ = reply(
                        &mut conn,
                        json!({"ok": false, "error": format!("too many connections (at most {MAX_CONNECTIONS})")}),
                    );
                    continue;
                }
                let (tx, mine) = (tx.clone(), Arc::clone(&open));
                let spawned = std::thread::Builder::new()
                    .name("ctlsock-conn".into())
                    .spawn(move || {
                        let _ = serve(conn, tx);
                        mine.fetch_sub(1, Ordering::Relaxed);
                    });
                if spawned.is_err() {
                    open.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn reply(out: &mut UnixStream, v: Value) -> io::Result<()> {
    let mut s = v.to_string();
    s.push('\n');
    out.write_all(s.as_bytes())
}

fn serve(conn: UnixStream, tx: mpsc::Sender<Envelope>) -> io::Result<()> {
    conn.set_nonblocking(false)?;
    // An idle client, or one that does not read its answers, is dropped after a while rather
    // than holding a thread forever.
    conn.set_read_timeout(Some(Duration::from_secs(300)))?;
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut out = conn.try_clone()?;
    let mut input = BufReader::new(conn);
    loop {
        let mut line = Vec::new();
        let n = (&mut input)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(()); // closed
        }
        if line.last() != Some(&b'\n') {
            if n >= MAX_LINE {
                reply(
                    &mut out,
                    json!({"ok": false, "error": format!("request longer than {MAX_LINE} bytes")}),
                )?;
            }
            // Too long, or the client closed mid-line: either way this connection is done.
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let req: Request = match serde_json::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                reply(
                    &mut out,
                    json!({"ok": false, "error": format!("invalid request: {e}")}),
                )?;
                continue;
            }
        };
        let (rtx, rrx) = mpsc::channel();
        if tx.send(Envelope { req, reply: rtx }).is_err() {
            reply(
                &mut out,
                json!({"ok": false, "error": "the data plane is shutting down"}),
            )?;
            return Ok(());
        }
        let answer = match rrx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(v)) => json!({"ok": true, "result": v}),
            Ok(Err(e)) => json!({"ok": false, "error": e}),
            Err(_) => json!({"ok": false, "error": "no answer from the control thread"}),
        };
        reply(&mut out, answer)?;
    }
}
