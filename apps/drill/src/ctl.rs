//! A client of the control sockets (l2fwd's and pktgen's): one JSON request line, one answer
//! line, `{"ok":true,"result":...}` or `{"ok":false,"error":"..."}`. One connection per request:
//! the servers disconnect a client that sends nothing for 5 s, and a drill may wait longer
//! than that between two requests.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest answer read (an l2fwd `stats` with many channels stays far below it).
const MAX_ANSWER: u64 = 64 << 20;

/// How long an answer may take: a removal waits for its grace period, which a stalled engine
/// stretches to l2fwd's `--grace-ms`.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// The control socket of `who` (`l2fwd` or `pktgen`) at `path`.
#[derive(Debug, Clone)]
pub struct Ctl {
    pub who: &'static str,
    pub path: PathBuf,
}

impl Ctl {
    pub fn new(who: &'static str, path: &Path) -> Self {
        Ctl {
            who,
            path: path.to_owned(),
        }
    }

    /// Sends `req`; its `result`, or the error the target answered, or why there was none.
    pub fn request(&self, req: &Value) -> Result<Value> {
        let what = req["cmd"].as_str().unwrap_or("request");
        let mut s = UnixStream::connect(&self.path).with_context(|| {
            format!(
                "cannot reach {}'s control socket {}",
                self.who,
                self.path.display()
            )
        })?;
        s.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        s.set_write_timeout(Some(ANSWER_TIMEOUT))?;
        let mut line = serde_json::to_vec(req)?;
        line.push(b'\n');
        s.write_all(&line)
            .with_context(|| format!("{}: cannot send {what:?}", self.who))?;
        let mut answer = String::new();
        BufReader::new(s.take(MAX_ANSWER))
            .read_line(&mut answer)
            .with_context(|| format!("{}: no answer to {what:?}", self.who))?;
        if answer.is_empty() {
            bail!("{} hung up without answering {what:?}", self.who);
        }
        let v: Value = serde_json::from_str(&answer)
            .with_context(|| format!("{}: the answer to {what:?} is not JSON", self.who))?;
        match v["ok"].as_bool() {
            Some(true) => Ok(v["result"].clone()),
            _ => Err(anyhow!(
                "{} refused {what:?}: {}",
                self.who,
                v["error"].as_str().unwrap_or("no reason given")
            )),
        }
    }

    /// `{"cmd":"stats"}`.
    pub fn stats(&self) -> Result<Value> {
        self.request(&serde_json::json!({"cmd": "stats"}))
    }
}
