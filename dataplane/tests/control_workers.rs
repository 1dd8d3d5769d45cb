//! Hot-remove and hot-add with two workers and more channels than the old limit of three per
//! worker, against real dmadevs (dma_skeleton, a software engine) under an EAL in this test
//! process (--no-huge --no-pci). Two threads play the workers: they poll their slots, record
//! every set they see, and adopt. The control thread deals, removes and adds while they run.
//! Its own process: it probes dma_skeleton0..6.

use dataplane::control::{Added, Control, Request, Response};
use dataplane::qsbr::{Assignment, ChannelId};
use dataplane::report::{DmaChannelState, L2fwdReport};
use dataplane::shared::Shared;
use pmd::{DmaDev, Eal, LcoreId};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

fn no_stats(_: &Control) -> L2fwdReport {
    L2fwdReport::default()
}

/// Each worker's name for a channel: the dmadev name, as the registry knows it.
fn names(c: &Control, w: usize) -> Vec<String> {
    let mut n: Vec<String> = c
        .channel_reports()
        .into_iter()
        .filter(|r| r.state == DmaChannelState::Active && r.worker == Some(w))
        .map(|r| r.name)
        .collect();
    n.sort();
    n
}

#[test]
fn two_workers_own_every_channel_and_follow_removes_and_adds() {
    let eal = Eal::init(&[
        "control_workers",
        "--no-huge",
        "--no-pci",
        "-m",
        "128",
        "-l",
        "0",
        "--log-level=error",
        &format!("--file-prefix=ctlworkers{}", std::process::id()),
    ])
    .expect("EAL init");
    // Seven channels on two workers: 4 and 3, round-robin, none on standby.
    let devs: Vec<DmaDev> = (0..7)
        .map(|i| {
            let name = format!("dma_skeleton{i}");
            pmd::hotplug_add(&eal, "vdev", &name, "").unwrap();
            DmaDev::open(&eal, &name, 64).unwrap()
        })
        .collect();
    let ids: Vec<ChannelId> = devs.iter().map(|d| ChannelId::new(d.id(), 0)).collect();
    let shared = Shared::new(&[LcoreId::new(1), LcoreId::new(2)], devs);
    assert_eq!(shared.initial(0), [ids[0], ids[2], ids[4], ids[6]]);
    assert_eq!(shared.initial(1), [ids[1], ids[3], ids[5]]);
    let mut c = Control::new(&eal, &shared, false, Duration::from_secs(20), 64).unwrap();
    assert_eq!(
        names(&c, 0),
        [
            "dma_skeleton0",
            "dma_skeleton2",
            "dma_skeleton4",
            "dma_skeleton6"
        ]
    );
    assert_eq!(
        names(&c, 1),
        ["dma_skeleton1", "dma_skeleton3", "dma_skeleton5"]
    );
    assert!(c
        .channel_reports()
        .iter()
        .all(|r| r.state == DmaChannelState::Active));

    let stop = AtomicBool::new(false);
    // Every set each worker saw, in order.
    let seen: [Mutex<Vec<Assignment>>; 2] = Default::default();
    std::thread::scope(|s| {
        for (w, seen) in seen.iter().enumerate() {
            let mut wc = shared.worker(w).unwrap();
            let stop = &stop;
            s.spawn(move || {
                let mut first = true;
                // Relaxed: a stop flag; no data depends on it.
                while !stop.load(Ordering::Relaxed) {
                    let (a, changed) = wc.poll();
                    if changed || first {
                        first = false;
                        seen.lock().unwrap().push(a.clone());
                        let g = a.generation;
                        wc.adopt(g);
                    }
                    std::thread::yield_now();
                }
                wc.offline();
            });
        }

        // Both workers have seen their first set before anything changes (on a loaded machine a
        // worker thread may start late).
        while seen.iter().any(|s| s.lock().unwrap().is_empty()) {
            std::thread::yield_now();
        }
        // Hot-remove one of worker 1's channels while both workers run.
        let hr = c.remove("dma_skeleton3").unwrap();
        assert_eq!(hr.channel, "dma_skeleton3");
        assert_eq!(
            names(&c, 1),
            ["dma_skeleton1", "dma_skeleton5"],
            "the other channels stay"
        );
        assert_eq!(names(&c, 0).len(), 4, "worker 0 is untouched");

        // Hot-add: to the worker with the fewest (worker 1 has 2, worker 0 has 4), then again
        // (3 against 4), then to the lower-numbered of two equals (4 and 4).
        let mut add = |d: &str| match c.handle(Request::DmaAdd { devargs: d.into() }, &no_stats) {
            Ok(Response::Added(a)) => a,
            other => panic!("dma add {d}: {other:?}"),
        };
        let added = |name: &str, w: usize| Added::one(name, Some(w));
        assert_eq!(add("dma_skeleton3"), added("dma_skeleton3", 1));
        assert_eq!(add("dma_skeleton7"), added("dma_skeleton7", 1));
        assert_eq!(add("dma_skeleton8"), added("dma_skeleton8", 0));
        assert_eq!(names(&c, 0).len(), 5);
        assert_eq!(names(&c, 1).len(), 4);

        // Remove one from worker 0 now: both workers are used and both follow.
        c.remove("dma_skeleton0").unwrap();
        // Relaxed: see the workers' loop.
        stop.store(true, Ordering::Relaxed);
    });

    // Every worker adopted every generation published to it, each a whole set as published.
    for (w, seen) in seen.iter().enumerate() {
        let seen = seen.lock().unwrap();
        let last = seen.last().unwrap();
        assert_eq!(
            last,
            &shared.assignment(w).unwrap(),
            "worker {w} saw the last set"
        );
        assert!(
            seen.windows(2).all(|p| p[0].generation < p[1].generation),
            "worker {w}: generations only grow"
        );
    }
    let w0 = seen[0].lock().unwrap();
    let w1 = seen[1].lock().unwrap();
    assert_eq!(w0[0].len(), 4);
    assert_eq!(w1[0].len(), 3);
    assert_eq!(w0.last().unwrap().len(), 4, "5 less the removed one");
    assert_eq!(w1.last().unwrap().len(), 4, "3 - 1 + 2");
    assert!(!w0.last().unwrap().has(ids[0]), "removed from worker 0");
    let hr: Vec<&str> = c.hot_removes.iter().map(|r| r.channel.as_str()).collect();
    assert_eq!(hr, ["dma_skeleton3", "dma_skeleton0"]);
    c.shutdown();
}
