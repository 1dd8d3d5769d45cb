//! The control socket: a Unix stream socket (mode 0600) carrying one JSON request per line and
//! one JSON response per line, `{"ok":true,"result":...}` or `{"ok":false,"error":"..."}`.
//!
//! Requests are [`crate::control::Request`]s, handed to the control thread through a channel;
//! the socket threads never touch the data plane. The control thread answers with a typed
//! [`Response`] or [`ControlError`], which [`answer`] turns into the response line: this module
//! is the one place that knows the JSON of answers. Lines are bounded ([`MAX_LINE`] bytes): a
//! longer one gets an error and the connection is closed. Malformed JSON gets an error and the
//! connection stays open. A client that disconnects mid-request costs nothing, and one that
//! takes longer than the request deadline ([`REQUEST_DEADLINE`] by default) to send its next
//! request, however it dribbles it, is told so and disconnected: only a request the control
//! thread answered starts a new deadline, so blank or malformed lines cannot hold a
//! connection (one of [`MAX_CONNECTIONS`]) open.
//!
//! The socket is created with mode 0600 from the start: it is bound inside a private (0700)
//! directory next to its path, set to 0600 there, and only then renamed into place, so there
//! is no moment at which it has the umask's mode at a reachable path.
//!
//! The server is generic over its [`Protocol`]: the request type its lines parse into and the
//! JSON of its answers. l2fwd's is [`L2fwdProtocol`] (the default everywhere here); pktgen
//! serves its own commands through the same server, with the same safety.
use crate::control::{ControlError, Request, Response};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest request line accepted, newline included.
pub const MAX_LINE: usize = 4096;

/// Most connections served at once; more are told so and closed.
pub const MAX_CONNECTIONS: usize = 16;

/// How long a client has to send a whole request line, from its connection or from the
/// answer to its previous request. Blank and malformed lines do not count as requests: they
/// do not give the client more time.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

/// What a control socket carries: the request each line parses into (a JSON object, through
/// serde), and the response line's JSON for what the application made of it.
pub trait Protocol: 'static {
    type Request: DeserializeOwned + Send + 'static;
    /// What the application's control thread sends back for one request.
    type Answer: Send + 'static;
    /// The response line: `{"ok":true,"result":...}` or `{"ok":false,"error":"..."}`.
    fn answer(outcome: Self::Answer) -> Value;
}

/// l2fwd's control socket: [`Request`]s, answered with a [`Response`] or a [`ControlError`].
pub struct L2fwdProtocol;

impl Protocol for L2fwdProtocol {
    type Request = Request;
    type Answer = Result<Response, ControlError>;
    fn answer(outcome: Self::Answer) -> Value {
        answer(outcome)
    }
}

/// Parses one request line (without or with its newline): the JSON object of a
/// [`Request`], or an error message for the client.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    parse_line(line)
}

/// Parses one request line (without or with its newline) into any protocol's request type, or
/// an error message for the client.
pub fn parse_line<Q: DeserializeOwned>(line: &[u8]) -> Result<Q, String> {
    let text = std::str::from_utf8(line).map_err(|e| format!("invalid request: {e}"))?;
    serde_json::from_str(text.trim()).map_err(|e| format!("invalid request: {e}"))
}

/// A request and where its answer goes.
pub struct Envelope<P: Protocol = L2fwdProtocol> {
    pub req: P::Request,
    pub reply: mpsc::Sender<P::Answer>,
}

/// The response line's JSON for what the control thread made of a request:
/// `{"ok":true,"result":...}` or `{"ok":false,"error":"..."}`.
pub fn answer(outcome: Result<Response, ControlError>) -> Value {
    match outcome.map(|r| result(&r)) {
        Ok(Ok(v)) => json!({"ok": true, "result": v}),
        Ok(Err(e)) => json!({"ok": false, "error": format!("cannot encode the answer: {e}")}),
        Err(e) => json!({"ok": false, "error": e.to_string()}),
    }
}

/// The `result` of a request that succeeded.
fn result(r: &Response) -> serde_json::Result<Value> {
    Ok(match r {
        Response::Stats(report) => serde_json::to_value(report)?,
        Response::Channels(channels) => json!({ "channels": serde_json::to_value(channels)? }),
        Response::Removed(removal) => serde_json::to_value(removal)?,
        Response::Added(a) => {
            // Every channel the add registered (a DSA function's work queues: several).
            let channels: Vec<Value> = a
                .channels()
                .map(|c| match c.worker {
                    Some(w) => json!({ "name": c.name, "state": c.state().as_str(), "worker": w }),
                    None => json!({ "name": c.name, "state": c.state().as_str() }),
                })
                .collect();
            match a.worker {
                Some(w) => json!({
                    "added": a.name, "state": a.state().as_str(), "worker": w,
                    "channels": channels,
                }),
                None => {
                    json!({ "added": a.name, "state": a.state().as_str(), "channels": channels })
                }
            }
        }
        Response::Fault(f) => json!({ "channel": f.channel, "fault": f.fault.as_str() }),
        Response::Copybreak(bytes) => json!({ "copybreak": bytes }),
        Response::LoopGaps(w) => json!({
            "window": w.window,
            "open_us": (w.open_for.as_secs_f64() * 1e7).round() / 10.0,
            "lcores": w.workers.iter().map(|g| json!({
                "lcore": g.lcore,
                "max_loop_gap_us": g.us,
                "whole_window": g.whole_window,
            })).collect::<Vec<_>>(),
        }),
    })
}

/// The running socket server. Dropping it stops accepting and removes the socket file.
pub struct CtlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CtlServer {
    /// Listens on `path` (replacing a stale socket there), handing l2fwd's requests to `tx`.
    pub fn start(path: &Path, tx: mpsc::Sender<Envelope>) -> io::Result<Self> {
        Self::start_with_deadline(path, tx, REQUEST_DEADLINE)
    }

    /// As [`Self::start`], with `deadline` for each request (see [`REQUEST_DEADLINE`]).
    pub fn start_with_deadline(
        path: &Path,
        tx: mpsc::Sender<Envelope>,
        deadline: Duration,
    ) -> io::Result<Self> {
        Self::serve::<L2fwdProtocol>(path, tx, deadline)
    }

    /// Listens on `path` (replacing a stale socket there), handing the requests of protocol
    /// `P` to `tx`, with `deadline` for each request (see [`REQUEST_DEADLINE`]).
    pub fn serve<P: Protocol>(
        path: &Path,
        tx: mpsc::Sender<Envelope<P>>,
        deadline: Duration,
    ) -> io::Result<Self> {
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
        let listener = bind_private(path)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("ctlsock".into())
            .spawn(move || accept_loop::<P>(listener, tx, &stop2, deadline))?;
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

/// Binds a listener at `path` whose mode is 0600 before it is reachable there: bound in a
/// private directory beside `path`, chmodded, then renamed into place.
fn bind_private(path: &Path) -> io::Result<UnixListener> {
    bind_private_with(path, |_| {})
}

/// [`bind_private`], calling `at_bind` with where the socket was bound, as soon as it is
/// (before its chmod): what a test sees there is what another user could have seen.
fn bind_private_with(path: &Path, at_bind: impl FnOnce(&Path)) -> io::Result<UnixListener> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let dir = parent.join(format!(
        ".{}.{}.tmp",
        file.to_string_lossy(),
        std::process::id()
    ));
    // A leftover of a crashed run of this pid: only ever our own private directory.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    let inner = dir.join("s");
    let bound = UnixListener::bind(&inner).and_then(|l| {
        at_bind(&inner);
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&inner, path)?;
        Ok(l)
    });
    let _ = std::fs::remove_file(&inner);
    let _ = std::fs::remove_dir(&dir);
    bound
}

fn accept_loop<P: Protocol>(
    listener: UnixListener,
    tx: mpsc::Sender<Envelope<P>>,
    stop: &AtomicBool,
    deadline: Duration,
) {
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
                        let _ = serve::<P>(conn, tx, deadline);
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

/// Reads the next request line, which must arrive whole by `deadline`. `None`: the client
/// closed, or sent an incomplete line and closed. Bytes after the newline stay in `buf`.
fn read_line(
    conn: &mut UnixStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> io::Result<Option<Result<Vec<u8>, String>>> {
    let mut chunk = [0u8; 1024];
    loop {
        let window = &buf[..buf.len().min(MAX_LINE)];
        if let Some(nl) = window.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            return Ok(Some(Ok(line)));
        }
        if buf.len() >= MAX_LINE {
            return Ok(Some(Err(format!("request longer than {MAX_LINE} bytes"))));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Some(Err(
                "request not received in time: send the whole line at once".into(),
            )));
        }
        conn.set_read_timeout(Some(left))?;
        match conn.read(&mut chunk) {
            Ok(0) => return Ok(None), // closed (mid-line or not)
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

fn serve<P: Protocol>(
    mut conn: UnixStream,
    tx: mpsc::Sender<Envelope<P>>,
    deadline: Duration,
) -> io::Result<()> {
    conn.set_nonblocking(false)?;
    // A client that does not read its answers is dropped after a while rather than holding a
    // thread forever.
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut out = conn.try_clone()?;
    let mut buf = Vec::new();
    // The whole request must arrive within the deadline, however it is dribbled. Only an
    // answered request starts a new one: a blank or malformed line every few seconds must not
    // hold the connection forever.
    let mut due = Instant::now() + deadline;
    loop {
        let line = match read_line(&mut conn, &mut buf, due)? {
            None => return Ok(()),
            Some(Ok(line)) => line,
            Some(Err(e)) => {
                // Too long or too slow: either way this connection is done.
                reply(&mut out, json!({"ok": false, "error": e}))?;
                return Ok(());
            }
        };
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let req = match parse_line::<P::Request>(&line) {
            Ok(r) => r,
            Err(e) => {
                reply(&mut out, json!({"ok": false, "error": e}))?;
                continue;
            }
        };
        let (rtx, rrx) = mpsc::channel();
        if tx.send(Envelope::<P> { req, reply: rtx }).is_err() {
            reply(
                &mut out,
                json!({"ok": false, "error": "the data plane is shutting down"}),
            )?;
            return Ok(());
        }
        let line = match rrx.recv_timeout(Duration::from_secs(60)) {
            Ok(outcome) => P::answer(outcome),
            Err(_) => json!({"ok": false, "error": "no answer from the control thread"}),
        };
        reply(&mut out, line)?;
        due = Instant::now() + deadline;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::{BufRead, BufReader};

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ctlsock-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A control thread that answers every request.
    fn responder() -> mpsc::Sender<Envelope> {
        let (tx, rx) = mpsc::channel::<Envelope>();
        std::thread::spawn(move || {
            for env in rx {
                let _ = env.reply.send(Ok(Response::Copybreak(1)));
            }
        });
        tx
    }

    /// The JSON of each answer, as the socket has always sent it (dpctl and the drills read
    /// these fields).
    #[test]
    fn answers_are_the_json_they_always_were() {
        use crate::control::{Added, Fault, FaultSet};
        use crate::report::{DmaChannelReport, DmaChannelState, HotRemoveReport, L2fwdReport};
        let ok = |r: Response| answer(Ok(r));
        assert_eq!(
            ok(Response::Added(Added::one("dma_skeleton1", Some(2)))),
            json!({"ok": true, "result": {"added": "dma_skeleton1", "state": "active", "worker": 2,
                "channels": [{"name": "dma_skeleton1", "state": "active", "worker": 2}]}})
        );
        assert_eq!(
            ok(Response::Added(Added::one("dma_skeleton1", None))),
            json!({"ok": true, "result": {"added": "dma_skeleton1", "state": "standby",
                "channels": [{"name": "dma_skeleton1", "state": "standby"}]}})
        );
        // A DSA function's work queues, dealt to two workers: the first is the answer's own.
        let mut dsa = Added::one("0000:6a:01.0-q0", Some(0));
        dsa.others = vec![Added::one("0000:6a:01.0-q1", Some(1))];
        assert_eq!(
            ok(Response::Added(dsa)),
            json!({"ok": true, "result": {"added": "0000:6a:01.0-q0", "state": "active",
            "worker": 0, "channels": [
                {"name": "0000:6a:01.0-q0", "state": "active", "worker": 0},
                {"name": "0000:6a:01.0-q1", "state": "active", "worker": 1},
            ]}})
        );
        assert_eq!(
            ok(Response::Fault(FaultSet {
                channel: "dma_skeleton0".into(),
                fault: Fault::Stall,
            })),
            json!({"ok": true, "result": {"channel": "dma_skeleton0", "fault": "stall"}})
        );
        assert_eq!(
            ok(Response::Copybreak(512)),
            json!({"ok": true, "result": {"copybreak": 512}})
        );
        let closed = crate::gaps::ClosedWindow {
            window: 7,
            open_for: std::time::Duration::from_micros(100_250),
            workers: vec![crate::gaps::WorkerGap {
                worker: 0,
                lcore: 1,
                cycles: 3000,
                us: 1.5,
                whole_window: false,
            }],
        };
        assert_eq!(
            ok(Response::LoopGaps(closed)),
            json!({"ok": true, "result": {"window": 7, "open_us": 100250.0, "lcores": [
                {"lcore": 1, "max_loop_gap_us": 1.5, "whole_window": false},
            ]}})
        );
        let removal = HotRemoveReport {
            channel: "dma_skeleton0".into(),
            latency_us: 12.5,
            grace_us: 4.0,
            stop_us: 2.5,
            unplug_us: 6.0,
            drained: 3,
            recopied: 1,
        };
        assert_eq!(
            ok(Response::Removed(removal.clone())),
            json!({"ok": true, "result": serde_json::to_value(&removal).unwrap()})
        );
        let phases = &ok(Response::Removed(removal))["result"];
        assert_eq!(
            (
                phases["grace_us"].as_f64(),
                phases["stop_us"].as_f64(),
                phases["unplug_us"].as_f64()
            ),
            (Some(4.0), Some(2.5), Some(6.0))
        );
        let channel = DmaChannelReport {
            name: "dma_skeleton0".into(),
            state: DmaChannelState::Stalled,
            ..Default::default()
        };
        let listed = answer(Ok(Response::Channels(vec![channel.clone()])));
        assert_eq!(listed["result"]["channels"][0]["state"], "stalled");
        assert_eq!(
            listed["result"],
            json!({ "channels": [serde_json::to_value(&channel).unwrap()] })
        );
        let report = L2fwdReport {
            rx_packets: 5,
            ..Default::default()
        };
        assert_eq!(
            answer(Ok(Response::Stats(Box::new(report.clone())))),
            json!({"ok": true, "result": serde_json::to_value(&report).unwrap()})
        );
        assert_eq!(
            answer(Err(ControlError::FaultInjectionDisabled)),
            json!({
                "ok": false,
                "error": "fault injection is disabled: start l2fwd with --allow-fault-injection"
            })
        );
    }

    #[test]
    fn the_socket_is_0600_and_nothing_else_is_left_beside_it() {
        let dir = scratch("mode");
        let path = dir.join("l2fwd.sock");
        let server = CtlServer::start(&path, responder()).unwrap();
        let md = std::fs::symlink_metadata(&path).unwrap();
        assert!(md.file_type().is_socket());
        assert_eq!(md.permissions().mode() & 0o777, 0o600);
        let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(entries.len(), 1, "only the socket: {entries:?}");
        drop(server);
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The window between bind and chmod: at the moment the socket exists, it is not at its
    /// path (where it would have the umask's mode) but in a directory only we may enter; the
    /// server's socket was bound there and only renamed into place.
    #[test]
    fn the_socket_is_bound_in_a_private_directory_and_only_then_moved_into_place() {
        let dir = scratch("window");
        let path = dir.join("l2fwd.sock");
        let mut seen = None;
        let listener = bind_private_with(&path, |bound| {
            let private = bound.parent().unwrap().to_owned();
            let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
            seen = Some((bound.to_owned(), private, mode, path.exists()));
        })
        .unwrap();
        let (bound, private, mode, reachable) = seen.expect("bound");
        assert_ne!(bound, path, "bound at its final path, before its chmod");
        assert!(!reachable, "{} existed before its chmod", path.display());
        assert_eq!(
            private.parent(),
            Some(dir.as_path()),
            "{}",
            private.display()
        );
        assert_eq!(mode, 0o700, "{} is not private", private.display());
        assert!(!private.exists(), "the private directory is left behind");
        let md = std::fs::symlink_metadata(&path).unwrap();
        assert!(md.file_type().is_socket());
        assert_eq!(md.permissions().mode() & 0o777, 0o600);
        drop(listener);
        std::fs::remove_file(&path).unwrap();
        // The server binds the same way: the address its clients see is the private one.
        let server = CtlServer::start(&path, responder()).unwrap();
        let c = UnixStream::connect(&path).unwrap();
        let addr = c.peer_addr().unwrap();
        let at = addr.as_pathname().expect("bound to a path");
        assert_ne!(at, path, "the server bound its socket at its final path");
        assert_eq!(at.parent().and_then(Path::parent), Some(dir.as_path()));
        drop(c);
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_dribbling_client_is_disconnected_while_another_is_served() {
        let dir = scratch("dribble");
        let path = dir.join("l2fwd.sock");
        let _server =
            CtlServer::start_with_deadline(&path, responder(), Duration::from_millis(200)).unwrap();
        let mut slow = UnixStream::connect(&path).unwrap();
        slow.write_all(b"{\"cmd\":").unwrap();
        slow.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        // Served meanwhile.
        let mut fast = UnixStream::connect(&path).unwrap();
        fast.write_all(b"{\"cmd\":\"stats\"}\n").unwrap();
        let mut answer = String::new();
        BufReader::new(&fast).read_line(&mut answer).unwrap();
        assert!(answer.contains("\"ok\":true"), "{answer}");
        // One byte at a time, never a whole line: eventually told so and disconnected.
        let mut heard = Vec::new();
        let mut closed = false;
        for _ in 0..3000 {
            if slow.write_all(b" ").is_err() {
                closed = true;
                break;
            }
            let mut b = [0u8; 256];
            match slow.read(&mut b) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => heard.extend_from_slice(&b[..n]),
                Err(_) => {}
            }
        }
        assert!(closed, "the dribbling client is still connected");
        let heard = String::from_utf8_lossy(&heard);
        assert!(heard.contains("not received in time"), "{heard}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A client that sends blank or malformed lines, each well within the deadline, but never
    /// a request: the deadline runs from its connection, so it is told and disconnected rather
    /// than holding one of the [`MAX_CONNECTIONS`] slots forever.
    #[test]
    fn blank_or_malformed_lines_do_not_hold_a_connection() {
        let dir = scratch("filler");
        let path = dir.join("l2fwd.sock");
        let _server =
            CtlServer::start_with_deadline(&path, responder(), Duration::from_millis(200)).unwrap();
        for filler in [&b"\n"[..], b"   \n", b"not json\n"] {
            let mut c = UnixStream::connect(&path).unwrap();
            c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let mut heard = Vec::new();
            let mut closed = false;
            // Each round waits at least one read timeout: 1000 rounds are far beyond the
            // deadline, which before the fix every line restarted.
            'rounds: for _ in 0..1000 {
                if c.write_all(filler).is_err() {
                    closed = true;
                    break;
                }
                loop {
                    let mut b = [0u8; 256];
                    match c.read(&mut b) {
                        Ok(0) => {
                            closed = true;
                            break 'rounds;
                        }
                        Ok(n) => heard.extend_from_slice(&b[..n]),
                        Err(_) => break,
                    }
                }
            }
            let heard = String::from_utf8_lossy(&heard);
            assert!(
                closed,
                "a client sending {filler:?} is still connected: {heard}"
            );
            assert!(heard.contains("not received in time"), "{heard}");
            if filler.starts_with(b"not") {
                assert!(heard.contains("invalid request"), "{heard}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    const CMDS: [&str; 7] = [
        "stats",
        "dma list",
        "dma remove",
        "dma add",
        "dma fault",
        "copybreak",
        "loop gaps",
    ];

    /// What `parse_request` accepted must be a JSON object naming a known command.
    fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
        let parsed = parse_request(bytes);
        if parsed.is_ok() {
            let v: Value = serde_json::from_slice(bytes)
                .map_err(|e| TestCaseError::fail(format!("accepted non-JSON: {e}")))?;
            let cmd = v["cmd"].as_str().unwrap_or("");
            prop_assert!(CMDS.contains(&cmd), "accepted {v}");
        }
        if let Err(e) = &parsed {
            prop_assert!(e.starts_with("invalid request"), "{e}");
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            check(&bytes)?;
            let has_brace = bytes.contains(&b'{');
            prop_assert!(parse_request(&bytes).is_err() || has_brace);
        }

        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,300}") {
            check(s.as_bytes())?;
        }

        #[test]
        fn near_valid_requests_parse_or_fail_cleanly(
            cmd in prop_oneof![
                proptest::sample::select(CMDS.to_vec()).prop_map(String::from),
                ".{0,12}",
            ],
            fields in proptest::collection::vec(
                (
                    prop_oneof![
                        Just("name".to_string()),
                        Just("devargs".to_string()),
                        Just("fault".to_string()),
                        Just("bytes".to_string()),
                        "[a-z]{1,6}",
                    ],
                    prop_oneof![
                        any::<i64>().prop_map(|n| json!(n)),
                        ".{0,20}".prop_map(|s| json!(s)),
                        Just(json!(null)),
                        Just(json!([1, 2])),
                        Just(json!({"a": 1})),
                    ],
                ),
                0..4,
            ),
        ) {
            let mut o = serde_json::Map::new();
            o.insert("cmd".into(), json!(cmd));
            for (k, v) in fields {
                o.insert(k, v);
            }
            let line = format!("{}\n", Value::Object(o));
            check(line.trim_end().as_bytes())?;
            if let Ok(Request::Copybreak { bytes }) = parse_request(line.as_bytes()) {
                // A field of the right type, taken as given.
                let field = format!("\"bytes\":{bytes}");
                prop_assert!(line.contains(&field), "{} lacks {}", line, field);
            }
        }
    }
}
