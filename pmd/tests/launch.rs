//! `Eal::run_on_lcores` when a launch fails part-way: the jobs already running are told to
//! stop (`abort`), waited for, and the launch's error comes back; `main` never runs. One test
//! function: DPDK allows one EAL per process.

use pmd::{Eal, LcoreId};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[test]
fn a_failed_launch_stops_the_jobs_already_running() {
    let eal = Eal::init(&[
        "launch_test",
        "--no-huge",
        "--no-pci",
        "-m",
        "64",
        "--lcores=0@0,1@0,2@1",
        "--log-level=error",
        &format!("--file-prefix=launch{}", std::process::id()),
    ])
    .expect("EAL init");
    let (l1, l2) = (LcoreId::new(1), LcoreId::new(2));
    let stop = AtomicBool::new(false);
    let gave_up = AtomicBool::new(false);
    // A job that polls until told to stop; it gives up after 20 s (and says so) rather than
    // hang the test if nobody tells it.
    let spin = || -> Box<dyn FnOnce() -> i32 + Send + '_> {
        let (stop, gave_up) = (&stop, &gave_up);
        Box::new(move || {
            let t = Instant::now();
            // Relaxed: flags read after the lcores are joined.
            while !stop.load(Ordering::Relaxed) {
                if t.elapsed() > Duration::from_secs(20) {
                    gave_up.store(true, Ordering::Relaxed);
                    return 1;
                }
                std::hint::spin_loop();
            }
            0
        })
    };
    let main_ran = AtomicBool::new(false);
    // Lcore 1 is busy with the outer run's job, so the inner run's second launch (on lcore 1)
    // fails after its first (on lcore 2) started a job that runs until told to stop.
    let (inner, outer_codes) = eal
        .run_on_lcores(
            vec![(l1, spin())],
            || {
                let inner = eal.run_on_lcores(
                    vec![(l2, spin()), (l1, Box::new(|| 0))],
                    || main_ran.store(true, Ordering::Relaxed),
                    || stop.store(true, Ordering::Relaxed),
                );
                // The outer job too stops on the flag the abort set; make sure it does.
                stop.store(true, Ordering::Relaxed);
                inner.map(|(_, codes)| codes)
            },
            || (),
        )
        .expect("the outer launch");
    let err = inner.expect_err("lcore 1 was busy").to_string();
    assert!(err.contains("rte_eal_remote_launch"), "{err}");
    assert!(
        !main_ran.load(Ordering::Relaxed),
        "main must not run after a failed launch"
    );
    // The job on lcore 2 ended because the abort set the flag, not by its own timeout.
    assert!(
        !gave_up.load(Ordering::Relaxed),
        "the abort did not stop the running job"
    );
    assert_eq!(outer_codes, vec![0]);
    // The lcores are free again: a new run launches on both.
    let (_, codes) = eal
        .run_on_lcores(
            vec![(l1, Box::new(|| 0)), (l2, Box::new(|| 7))],
            || (),
            || (),
        )
        .expect("a launch on free lcores");
    assert_eq!(codes, vec![0, 7]);
    drop(eal);
}
