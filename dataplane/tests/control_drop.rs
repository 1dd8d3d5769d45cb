//! A control thread dropped, or shut down, while a worker still runs (its end of the shared
//! state online): the DMA devices it owns must not be stopped or closed under that worker; they
//! are left open (leaked). Its own test process: the device stays claimed for good.

use dataplane::control::Control;
use dataplane::shared::Shared;
use pmd::{DmaDev, Eal, LcoreId};
use std::time::Duration;

#[test]
fn devices_stay_open_while_a_worker_runs() {
    let eal = Eal::init(&[
        "control_drop",
        "--no-huge",
        "--no-pci",
        "-m",
        "128",
        "-l",
        "0",
        "--log-level=error",
        "--vdev=dma_skeleton0",
        "--vdev=dma_skeleton1",
        &format!("--file-prefix=ctldrop{}", std::process::id()),
    ])
    .expect("EAL init");
    let dev0 = DmaDev::open(&eal, "dma_skeleton0", 64).unwrap();
    let dev1 = DmaDev::open(&eal, "dma_skeleton1", 64).unwrap();
    // One worker, online (it has not parked), holding dma_skeleton0; dma_skeleton1 would be
    // dealt to it too, so two shared states, one device each.
    let shared0 = Shared::new(&[LcoreId::new(1)], vec![dev0]);
    let shared1 = Shared::new(&[LcoreId::new(1)], vec![dev1]);
    let w0 = shared0.worker(0).unwrap();
    let w1 = shared1.worker(0).unwrap();

    // Dropped while the worker runs: dma_skeleton0 stays open, and owned.
    let c0 = Control::new(&eal, &shared0, false, Duration::from_secs(1), 64).unwrap();
    drop(c0);
    let e = DmaDev::open(&eal, "dma_skeleton0", 64)
        .err()
        .expect("still owned");
    assert!(e.to_string().contains("already in use"), "{e}");

    // Shut down while the worker runs: the same.
    let c1 = Control::new(&eal, &shared1, false, Duration::from_secs(1), 64).unwrap();
    let reports = c1.shutdown();
    assert_eq!(reports.len(), 1);
    assert!(
        DmaDev::open(&eal, "dma_skeleton1", 64).is_err(),
        "still owned"
    );

    // Once the workers park, nothing is left to protect (the devices stay leaked).
    w0.offline();
    w1.offline();
}
