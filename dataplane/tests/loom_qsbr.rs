//! A loom model of the hot-remove protocol (`dataplane::qsbr`), the control thread against its
//! workers, under every interleaving loom explores (up to a preemption bound, below).
//!
//! * `two_workers_remove_while_both_run`, `two_workers_each_lose_a_channel`,
//!   `a_set_of_four_published_then_shrunk_is_never_read_torn` ([`model`]): the control thread
//!   hot-removes channels from workers that poll, touch their channels and drain meanwhile
//!   (one worker holding four, two workers losing one each), and grows a worker's set from one
//!   channel to four (a hot-add of three started devices) then shrinks it to two. Checked: no
//!   worker ever reads a torn set (every set it reads is the one published under that
//!   generation), no worker touches a channel before it is started, or after its grace period
//!   ends and it is closed.
//! * `hot_remove_*`: one worker with a device thread: the control thread unpublishes its
//!   channel, waits for the grace period, stops the device, closes it and frees the buffers the
//!   worker abandoned; completions either arrive or never do (surprise removal: the worker
//!   re-copies on the CPU and quarantines the destinations). Checked: nothing is closed while
//!   the worker can touch the channel, no DMA write lands in a freed buffer, every packet is
//!   delivered exactly once.
//! * `a_worker_coming_online`: a parked worker comes back online while control removes its
//!   channel: either it sees the removal or control waits for it (the `SeqCst` fences).
//!
//! Run with: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release -p
//! dataplane --test loom_qsbr`. The preemption bound is `LOOM_MAX_PREEMPTIONS` when set, else
//! 3 (2 for `two_workers_each_lose_a_channel`); loom's own default is none, unbounded, far too
//! long for CI. About two and a half minutes in all on a shared two-core box.
#![cfg(loom)]

use dataplane::qsbr::{ChannelId, Generation, Qsbr, Reader};
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use loom::sync::Arc;
use loom::thread;
use pmd::LcoreId;

/// Runs `f` under loom with the preemption bound of `LOOM_MAX_PREEMPTIONS`, 3 if unset.
fn check(f: impl Fn() + Sync + Send + 'static) {
    check_bounded(3, f)
}

/// Runs `f` under loom with the preemption bound of `LOOM_MAX_PREEMPTIONS`, `bound` if unset.
fn check_bounded(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(bound);
    }
    b.check(f);
}

fn ch(n: i16) -> ChannelId {
    ChannelId::new(n, 0)
}

/// The DMA channels as the workers and control see them. Each is a `loom::cell::UnsafeCell`
/// that a worker reads (an enqueue, a completion poll) and control writes (`rte_dma_start`,
/// `rte_dma_close`): loom reports any two accesses not ordered by happens-before (a worker
/// touching a channel whose start it cannot see, or one that control closes under it), in
/// every interleaving, without adding branches of its own. The flags beside them are plain
/// `std` atomics, invisible to loom's model: they give each explored execution's actual order,
/// so that a touch after the close, even an ordered one, fails as well.
struct Chans {
    cells: Vec<UnsafeCell<()>>,
    started: Vec<std::sync::atomic::AtomicBool>,
    closed: Vec<std::sync::atomic::AtomicBool>,
}

impl Chans {
    fn new(n: usize) -> Self {
        Chans {
            cells: (0..n).map(|_| UnsafeCell::new(())).collect(),
            started: (0..n).map(|_| Default::default()).collect(),
            closed: (0..n).map(|_| Default::default()).collect(),
        }
    }

    /// A worker enqueues to it or polls its completions.
    fn touch(&self, id: ChannelId) {
        let n = id.dev() as usize;
        self.cells[n].with(|_| ());
        assert!(
            self.started[n].load(SeqCst),
            "{id:?} touched before it was started"
        );
        assert!(
            !self.closed[n].load(SeqCst),
            "{id:?} touched after its grace period"
        );
    }

    /// Control: rte_dma_start.
    fn start(&self, n: i16) {
        self.cells[n as usize].with_mut(|_| ());
        self.started[n as usize].store(true, SeqCst);
    }

    /// Control: rte_dma_stop and rte_dma_close.
    fn close(&self, n: i16) {
        self.cells[n as usize].with_mut(|_| ());
        self.closed[n as usize].store(true, SeqCst);
    }
}

/// A model of the control thread and its workers: `sets[w][g]` is the set (channel numbers)
/// control publishes to worker `w` under generation `g` (generation 0: the set it starts
/// with). Control starts every channel first published later (a hot-add), publishes the
/// generations in turn, then waits for each worker's grace period and closes the channels that
/// worker lost. Each worker polls `polls` times, then parks.
fn model(sets: &'static [&'static [&'static [i16]]], polls: usize, bound: usize) {
    check_bounded(bound, move || {
        let n = 1 + sets
            .iter()
            .flat_map(|w| w.iter())
            .flat_map(|s| s.iter())
            .max()
            .unwrap();
        let chans = Arc::new(Chans::new(n as usize));
        for w in sets {
            for &c in w[0] {
                chans.start(c);
            }
        }
        let lcores: Vec<LcoreId> = (1..=sets.len() as u32).map(LcoreId::new).collect();
        let initial: Vec<Vec<ChannelId>> = sets.iter().map(|w| ids(w[0])).collect();
        let q = Arc::new(Qsbr::new(&lcores, &initial));
        // Each worker makes its reader itself, concurrently with control's publishes.
        let workers: Vec<_> = (0..sets.len())
            .map(|w| {
                let (q, c) = (q.clone(), chans.clone());
                thread::spawn(move || worker(q.reader(w), &c, sets[w], polls))
            })
            .collect();

        // Control: hot-adds are started before they are published.
        for w in sets {
            for s in &w[1..] {
                for &c in *s {
                    if !w[0].contains(&c) {
                        chans.start(c);
                    }
                }
            }
        }
        let generations = sets.iter().map(|w| w.len()).max().unwrap();
        for g in 1..generations {
            for (w, set) in sets.iter().enumerate() {
                if let Some(s) = set.get(g) {
                    assert_eq!(q.publish(w, &ids(s)), g as Generation);
                }
            }
        }
        // Hot-removes: the grace period of each worker, then rte_dma_stop and rte_dma_close.
        for (w, set) in sets.iter().enumerate() {
            let last = set.len() - 1;
            if last == 0 {
                continue;
            }
            while !q.quiescent(w, last as Generation) {
                thread::yield_now();
            }
            for s in &set[..last] {
                for &c in *s {
                    if !set[last].contains(&c) {
                        chans.close(c);
                    }
                }
            }
        }
        for t in workers {
            t.join().unwrap();
        }
    });
}

fn ids(s: &[i16]) -> Vec<ChannelId> {
    s.iter().map(|&n| ch(n)).collect()
}

/// A worker: `polls` times, poll the slot, check the set is whole (the one published under its
/// generation), touch every assigned channel (enqueue) and the ones just taken away
/// (completion poll, which finds them done), adopt; then park.
fn worker(mut r: Reader<'_>, chans: &Chans, sets: &[&[i16]], polls: usize) {
    let mut held: Vec<ChannelId> = Vec::new();
    for _ in 0..polls {
        let (a, changed) = r.poll();
        let now: Vec<ChannelId> = a.channels().collect();
        let g = a.generation;
        let published = sets.get(g as usize).map(|s| ids(s));
        assert_eq!(
            Some(&now),
            published.as_ref(),
            "a torn set, or a generation never published"
        );
        for &id in &now {
            chans.touch(id);
        }
        if changed {
            // The lanes no longer assigned drain (their last completions), then adopt.
            for &id in held.iter().filter(|id| !now.contains(id)) {
                chans.touch(id);
            }
            r.adopt(g);
        }
        held = now;
    }
    r.offline();
}

#[test]
fn two_workers_remove_while_both_run() {
    // Worker 0 holds four channels; worker 1 loses channel 1 while both poll and touch.
    model(&[&[&[0, 3, 4, 5]], &[&[1, 2], &[2]]], 2, 3);
}

#[test]
fn two_workers_each_lose_a_channel() {
    // Both slots published, both grace periods waited for, while both run. Three threads
    // each doing a full seqlock read: two preemptions (about a minute; three take far longer).
    model(&[&[&[0, 3], &[3]], &[&[1, 2], &[2]]], 1, 2);
}

#[test]
fn a_set_of_four_published_then_shrunk_is_never_read_torn() {
    // A hot-add of three started channels (one to four), then two removed (four to two).
    model(&[&[&[0], &[0, 3, 4, 5], &[3, 4]]], 3, 3);
}

#[test]
fn a_worker_coming_online() {
    check(|| {
        let chans = Arc::new(Chans::new(1));
        chans.start(0);
        let q = Arc::new(Qsbr::new(&[LcoreId::new(1)], &[vec![ch(0)]]));
        // The worker is parked when the model starts.
        q.reader(0).offline();
        let t = {
            let (q, chans) = (q.clone(), chans.clone());
            thread::spawn(move || {
                let mut r = q.reader(0);
                r.online();
                let (a, changed) = r.poll();
                let has = a.has(ch(0));
                let g = a.generation;
                if has {
                    chans.touch(ch(0));
                }
                if changed {
                    r.adopt(g);
                }
                r.offline();
            })
        };
        let g = q.publish(0, &[]);
        while !q.quiescent(0, g) {
            thread::yield_now();
        }
        chans.close(0);
        t.join().unwrap();
    });
}

/// The worker's one channel in the single-worker models.
const CHANNEL: ChannelId = ChannelId::new(0, 0);

/// Packets the worker receives in the single-worker models.
const PACKETS: usize = 2;

#[derive(Default)]
struct Device {
    /// Copies enqueued (written by the worker) and completed (written by the device).
    submitted: AtomicUsize,
    completed: AtomicUsize,
    /// rte_dma_close done.
    closed: AtomicBool,
    /// The destination buffers of abandoned copies went back to the pool.
    quarantine_freed: AtomicBool,
    /// Abandoned destination buffers handed to control.
    quarantined: AtomicUsize,
}

fn hot_remove(device_completes: bool) {
    check(move || {
        let q = Arc::new(Qsbr::new(&[LcoreId::new(1)], &[vec![CHANNEL]]));
        let dev = Arc::new(Device::default());

        // The engine: completes in order what was submitted, a couple of times.
        let device = device_completes.then(|| {
            let d = dev.clone();
            thread::spawn(move || {
                for _ in 0..2 {
                    let s = d.submitted.load(Acquire);
                    let c = d.completed.load(Relaxed);
                    if c < s {
                        // The DMA write into the destination buffer.
                        assert!(
                            !d.quarantine_freed.load(Relaxed),
                            "late DMA write into a freed buffer"
                        );
                        d.completed.store(c + 1, Release);
                    }
                    thread::yield_now();
                }
            })
        });

        let worker = {
            let (q, d) = (q.clone(), dev.clone());
            thread::spawn(move || {
                let mut r = q.reader(0);
                let (mut received, mut delivered) = (0usize, 0usize);
                let (mut in_flight, mut seen_completed) = (0usize, 0usize);
                let mut to_adopt: Option<Generation> = None;
                for _ in 0..3 {
                    let (a, changed) = r.poll();
                    let has = a.has(CHANNEL);
                    if changed {
                        to_adopt = Some(a.generation);
                    }
                    if received < PACKETS {
                        received += 1;
                        if has {
                            assert!(!d.closed.load(Relaxed), "enqueue on a closed channel");
                            d.submitted.store(d.submitted.load(Relaxed) + 1, Release);
                            in_flight += 1;
                        } else {
                            delivered += 1; // CPU copy
                        }
                    }
                    if in_flight > 0 {
                        assert!(
                            !d.closed.load(Relaxed),
                            "completion poll on a closed channel"
                        );
                        let c = d.completed.load(Acquire);
                        delivered += c - seen_completed;
                        in_flight -= c - seen_completed;
                        seen_completed = c;
                    }
                    if let Some(g) = to_adopt {
                        if in_flight == 0 {
                            r.adopt(g);
                            to_adopt = None;
                        }
                    }
                }
                // The bounded wait is over: copies still outstanding are re-done by the CPU
                // from their held sources, and their destinations go to control's quarantine.
                if in_flight > 0 {
                    delivered += in_flight;
                    d.quarantined.store(in_flight, Release);
                }
                // The worker stops: offline counts as quiescent.
                r.offline();
                (received, delivered)
            })
        };

        // Control: hot-remove the channel.
        let g = q.publish(0, &[]);
        while !q.quiescent(0, g) {
            thread::yield_now();
        }
        // rte_dma_stop: once it returns the engine writes nothing more.
        if let Some(t) = device {
            t.join().unwrap();
        }
        dev.closed.store(true, Release);
        let (received, delivered) = worker.join().unwrap();
        // Free the quarantined destinations: the device is stopped.
        dev.quarantine_freed.store(true, Release);
        assert_eq!(received, PACKETS);
        assert_eq!(delivered, PACKETS, "every packet delivered exactly once");
    });
}

#[test]
fn hot_remove_with_completions() {
    hot_remove(true);
}

#[test]
fn hot_remove_surprise_removal_completions_never_come() {
    hot_remove(false);
}
