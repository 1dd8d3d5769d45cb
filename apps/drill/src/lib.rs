//! drill: live hot-remove drills as a tool. A drill file (TOML, [`spec`]) names the targets (an
//! l2fwd and a pktgen the drill starts on a veth pair, or running ones it attaches to by their
//! control sockets), a timeline of steps (remove, add, fault, copybreak, rate, wait, repeat,
//! exec) and pass criteria. [`run`] runs it: it waits for traffic, runs the steps in time order
//! printing a line for each, stops pktgen, collects both final reports and judges them
//! ([`verdict`]); [`plot`] draws the run.

pub mod ctl;
pub mod plot;
pub mod run;
pub mod spec;
pub mod targets;
pub mod verdict;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Set by SIGINT or SIGTERM: the drill stops where it is, undoing what it started.
#[derive(Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Registers for SIGINT and SIGTERM.
    pub fn install() -> anyhow::Result<Self> {
        let i = Interrupt::default();
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, Arc::clone(&i.0))?;
        }
        Ok(i)
    }

    /// An error once a signal came.
    pub fn check(&self) -> anyhow::Result<()> {
        // Relaxed: a flag, carrying no data.
        if self.0.load(Ordering::Relaxed) {
            anyhow::bail!("interrupted");
        }
        Ok(())
    }

    /// Sleeps `d`, in slices, returning early with an error if a signal comes.
    pub fn sleep(&self, d: Duration) -> anyhow::Result<()> {
        let end = std::time::Instant::now() + d;
        loop {
            self.check()?;
            let now = std::time::Instant::now();
            if now >= end {
                return Ok(());
            }
            std::thread::sleep((end - now).min(Duration::from_millis(20)));
        }
    }
}
