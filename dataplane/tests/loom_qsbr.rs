//! A loom model of the hot-remove protocol: the control thread unpublishes a worker's DMA
//! channel, waits for the grace period, stops the device, closes it and frees the buffers the
//! worker abandoned; the worker keeps forwarding, enqueues to the channel only while it is
//! assigned, drains it, and adopts. Completions either arrive (a device thread) or never do
//! (surprise removal: the worker re-copies on the CPU and quarantines the destinations).
//!
//! Checked under every interleaving loom explores:
//! * nothing is closed while the worker can still touch the channel;
//! * no DMA write lands in a buffer after it was freed;
//! * every packet is delivered exactly once.
//!
//! Run with: `RUSTFLAGS="--cfg loom" cargo test -p dataplane --test loom_qsbr --release`
#![cfg(loom)]

use dataplane::qsbr::{ChannelId, Qsbr};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use loom::sync::Arc;
use loom::thread;
use pmd::LcoreId;

/// The worker's one channel.
const CHANNEL: ChannelId = ChannelId::new(0, 0);

/// Packets the worker receives in the model.
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

fn model(device_completes: bool) {
    loom::model(move || {
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
                let mut to_adopt: Option<u16> = None;
                for _ in 0..3 {
                    let (a, changed) = r.poll();
                    if changed {
                        to_adopt = Some(a.generation);
                    }
                    if received < PACKETS {
                        received += 1;
                        if a.has(CHANNEL) {
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
    model(true);
}

#[test]
fn surprise_removal_completions_never_come() {
    model(false);
}
