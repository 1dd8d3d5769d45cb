//! The targets of a drill: an l2fwd and a pktgen the drill starts on the two ends of a veth
//! pair in a private network namespace, or ones already running that it attaches to.
//!
//! Everything started is owned by a guard that undoes it when dropped, on every exit path
//! (success, error, Ctrl-C): children are stopped (SIGINT, then SIGKILL), the veth pair and the
//! namespace deleted, the scratch directory removed. Children run in their own process group,
//! so that a Ctrl-C at the terminal reaches the drill alone, which then stops them in order.

use crate::ctl::Ctl;
use crate::spec::Start;
use crate::Interrupt;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a started target has to answer on its control socket.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a stopped target has to exit (pktgen drains, l2fwd waits for its workers).
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// A child process, stopped on drop if still running.
pub struct Proc {
    pub name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// The last non-empty line of its output, for error messages.
    pub fn last_line(&self) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_owned())
            .unwrap_or_else(|| "(no output)".into())
    }

    /// An error if it has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(s) => bail!("{} exited ({s}): {}", self.name, self.last_line()),
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Stops it as Ctrl-C does and waits for it to exit.
    pub fn stop(&mut self, intr: &Interrupt) -> Result<ExitStatus> {
        if let Some(s) = self.child.try_wait()? {
            return Ok(s);
        }
        self.signal("-INT");
        let t = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait()? {
                return Ok(s);
            }
            if t.elapsed() > EXIT_TIMEOUT {
                bail!(
                    "{} did not exit within {} s of SIGINT",
                    self.name,
                    EXIT_TIMEOUT.as_secs()
                );
            }
            intr.sleep(Duration::from_millis(20))?;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal("-INT");
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A network namespace holding a veth pair, both deleted on drop.
pub struct Netns {
    pub name: String,
    /// (l2fwd's end, pktgen's end)
    pub veth: (String, String),
}

impl Netns {
    fn create(id: u32) -> Result<Self> {
        let ns = Netns {
            name: format!("drill{id}"),
            veth: (format!("dd{id}"), format!("dp{id}")),
        };
        let _ = run_quiet("ip", &["netns", "del", &ns.name]);
        run_checked("ip", &["netns", "add", &ns.name])?;
        // From here on, the drop undoes what was made.
        ns.exec(&[
            "ip", "link", "add", &ns.veth.0, "type", "veth", "peer", "name", &ns.veth.1,
        ])?;
        for i in ["lo", &ns.veth.0, &ns.veth.1] {
            ns.exec(&["ip", "link", "set", i, "up"])?;
        }
        // No IPv6 autoconfiguration chatter on the link (pktgen would count it as foreign).
        let _ = ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        Ok(ns)
    }

    fn exec(&self, cmd: &[&str]) -> Result<()> {
        let mut a = vec!["netns", "exec", &self.name];
        a.extend_from_slice(cmd);
        run_checked("ip", &a)
    }

    fn command(&self, bin: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(bin);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run_quiet(
            "ip",
            &[
                "netns",
                "exec",
                &self.name,
                "ip",
                "link",
                "del",
                &self.veth.0,
            ],
        );
        let _ = run_quiet("ip", &["netns", "del", &self.name]);
    }
}

fn run_quiet(cmd: &str, args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new(cmd).args(args).stdin(Stdio::null()).output()
}

fn run_checked(cmd: &str, args: &[&str]) -> Result<()> {
    let out = run_quiet(cmd, args)
        .with_context(|| format!("cannot run {cmd} (is iproute2 installed?)"))?;
    if !out.status.success() {
        bail!(
            "{cmd} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The DPDK runtime directories of the targets' file prefixes (`/var/run/dpdk/PREFIX` as
/// root), removed on drop, once the targets have exited (DPDK leaves them behind).
struct RuntimeDirs(Vec<PathBuf>);

impl Drop for RuntimeDirs {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a drill runs against. Fields drop in order: the children first, then the veth pair
/// and the namespace, then the scratch directory.
pub struct Targets {
    pub l2fwd: Ctl,
    pub pktgen: Ctl,
    pub started: Option<Started>,
}

/// The processes and the network a drill started.
pub struct Started {
    pub pktgen: Proc,
    pub l2fwd: Proc,
    pub netns: Netns,
    pub l2fwd_report: PathBuf,
    pub pktgen_report: PathBuf,
    _runtime: RuntimeDirs,
    _dir: Scratch,
}

impl Targets {
    /// Attaches to running targets: both must answer `stats`.
    pub fn attach(l2fwd: &Path, pktgen: &Path) -> Result<Self> {
        let t = Targets {
            l2fwd: Ctl::new("l2fwd", l2fwd),
            pktgen: Ctl::new("pktgen", pktgen),
            started: None,
        };
        t.l2fwd.stats()?;
        t.pktgen.stats()?;
        Ok(t)
    }

    /// Starts l2fwd, then pktgen, on a fresh veth pair, and waits until both answer on their
    /// control sockets.
    pub fn start(spec: &Start, intr: &Interrupt) -> Result<Self> {
        let id = std::process::id();
        let dir = std::env::temp_dir().join(format!("drill-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let dir = Scratch(dir);
        let bin = |given: &Option<PathBuf>, name: &str| -> Result<PathBuf> {
            let b = match given {
                Some(b) => b.clone(),
                None => std::env::current_exe()?
                    .parent()
                    .ok_or_else(|| anyhow!("the drill's own directory"))?
                    .join(name),
            };
            if !b.is_file() {
                bail!(
                    "{} not found: build it (cargo build --release -p {name}) or give [targets.start] {name}_bin",
                    b.display()
                );
            }
            Ok(b)
        };
        let (l2fwd_bin, pktgen_bin) = (
            bin(&spec.l2fwd_bin, "l2fwd")?,
            bin(&spec.pktgen_bin, "pktgen")?,
        );
        // Declared before the processes: dropped after them, on an early return too.
        let runtime = RuntimeDirs(
            ["dut", "pg"]
                .iter()
                .map(|k| Path::new("/var/run/dpdk").join(format!("drill{id}-{k}")))
                .collect(),
        );
        let netns = Netns::create(id)?;
        let d = &dir.0;
        let (l2fwd_sock, pktgen_sock) = (d.join("l2fwd.sock"), d.join("pktgen.sock"));
        let (l2fwd_report, pktgen_report) = (d.join("l2fwd.json"), d.join("pktgen.json"));
        let l2fwd = spawn(
            "l2fwd",
            &netns,
            &l2fwd_bin,
            &spec.l2fwd,
            &[
                format!("--file-prefix=drill{id}-dut"),
                format!("--vdev=net_af_packet0,iface={},framecnt=4096", netns.veth.0),
            ],
            &[
                "--control".into(),
                l2fwd_sock.display().to_string(),
                "--report".into(),
                l2fwd_report.display().to_string(),
            ],
            &d.join("l2fwd.log"),
        )?;
        let mut l2fwd = l2fwd;
        let l2fwd_ctl = Ctl::new("l2fwd", &l2fwd_sock);
        await_ready(&l2fwd_ctl, &mut l2fwd, intr)?;
        let mut pktgen = spawn(
            "pktgen",
            &netns,
            &pktgen_bin,
            &spec.pktgen,
            &[
                format!("--file-prefix=drill{id}-pg"),
                format!("--vdev=net_af_packet0,iface={},framecnt=4096", netns.veth.1),
            ],
            &[
                // A year: the drill ends the run (stop, then SIGINT).
                "--duration".into(),
                "31536000".into(),
                "--control".into(),
                pktgen_sock.display().to_string(),
                "--report".into(),
                pktgen_report.display().to_string(),
            ],
            &d.join("pktgen.log"),
        )?;
        let pktgen_ctl = Ctl::new("pktgen", &pktgen_sock);
        await_ready(&pktgen_ctl, &mut pktgen, intr)?;
        Ok(Targets {
            l2fwd: l2fwd_ctl,
            pktgen: pktgen_ctl,
            started: Some(Started {
                pktgen,
                l2fwd,
                netns,
                l2fwd_report,
                pktgen_report,
                _runtime: runtime,
                _dir: dir,
            }),
        })
    }

    /// An error if a target the drill started has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(s) = &mut self.started {
            s.l2fwd.check_alive()?;
            s.pktgen.check_alive()?;
        }
        Ok(())
    }
}

/// Reads a report a target wrote on exit.
pub fn read_report(p: &Proc, path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{} wrote no report: {}", p.name, p.last_line()))?;
    serde_json::from_str(&text).with_context(|| format!("{}'s report is not JSON", p.name))
}

/// `bin EAL extra_eal -- APP extra_app` in `netns`, its output in `log`.
fn spawn(
    name: &'static str,
    netns: &Netns,
    bin: &Path,
    args: &[String],
    extra_eal: &[String],
    extra_app: &[String],
    log: &Path,
) -> Result<Proc> {
    let split = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let (eal, app) = (&args[..split], args.get(split + 1..).unwrap_or_default());
    let out =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let err = out.try_clone()?;
    let child = netns
        .command(bin)
        .args(eal)
        .args(extra_eal)
        .arg("--")
        .args(app)
        .args(extra_app)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    Ok(Proc {
        name,
        child,
        log: log.to_owned(),
    })
}

/// Waits until `ctl` answers `stats`, or `p` exits, or the timeout.
fn await_ready(ctl: &Ctl, p: &mut Proc, intr: &Interrupt) -> Result<()> {
    let t = Instant::now();
    loop {
        p.check_alive()
            .with_context(|| format!("{} did not start", p.name))?;
        if ctl.path.exists() && ctl.stats().is_ok() {
            return Ok(());
        }
        if t.elapsed() > READY_TIMEOUT {
            bail!(
                "{} did not answer on its control socket within {} s: {}",
                p.name,
                READY_TIMEOUT.as_secs(),
                p.last_line()
            );
        }
        intr.sleep(Duration::from_millis(50))?;
    }
}
