//! What the kernel says about a PCI device, read from sysfs: which driver it is bound to
//! (`/sys/bus/pci/devices/ADDR/driver`, a link to `/sys/bus/pci/drivers/NAME`) and its NUMA node.
//! The root is a parameter ([`PciSysfs::at`]) so that tests build a fake tree in a temporary
//! directory; the data plane reads [`PciSysfs::system`] (`/sys`).
//!
//! Why it matters to hot-plug:
//! - DPDK drives a DMA channel only when its PCI function is bound to `vfio-pci` (or a uio
//!   driver). After `echo 1 > /sys/bus/pci/rescan` a removed IOAT/CBDMA channel comes back on
//!   the kernel's `ioatdma` (a DSA function on `idxd`), and DPDK's probe then fails with
//!   nothing more than ENOTSUP: [`dma_binding`] names the driver and the exact
//!   `dpdk-devbind.py` command instead.
//! - A device bound to a uio driver (`uio_pci_generic`, `igb_uio`) is removed by the kernel
//!   without asking DPDK (vfio-pci blocks the removal and sends DPDK a request first): nothing
//!   is drained before the device goes, and DPDK remaps its BARs only after the fact (on the
//!   uevent, or on the SIGBUS of a touch). `dma add` refuses such a device, and l2fwd warns
//!   about one at start ([`uio_warnings`]).

use pmd::bus_device_of;
use std::path::{Path, PathBuf};

/// The kernel's uio drivers DPDK can use (DPDK's `RTE_PCI_KDRV_*_UIO`).
pub const UIO_DRIVERS: [&str; 3] = ["uio_pci_generic", "igb_uio", "nic_uio"];

/// A sysfs tree: `/sys`, or a test's copy of the parts read here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciSysfs {
    root: PathBuf,
}

impl Default for PciSysfs {
    fn default() -> Self {
        Self::system()
    }
}

impl PciSysfs {
    /// The system's, at `/sys`.
    pub fn system() -> Self {
        Self::at("/sys")
    }

    /// The tree under `root` (which stands for `/sys`).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        PciSysfs { root: root.into() }
    }

    /// The root (`/sys`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the tree lists PCI devices at all (`ROOT/bus/pci/devices` exists): a container
    /// without /sys/bus/pci has none, and then no device's binding can be read.
    pub fn lists_pci_devices(&self) -> bool {
        self.root.join("bus/pci/devices").is_dir()
    }

    /// `ROOT/bus/pci/devices/ADDR`.
    pub fn device_dir(&self, addr: &str) -> PathBuf {
        self.root.join("bus/pci/devices").join(addr)
    }

    /// Whether the kernel knows PCI device `addr` (it is gone after a sysfs `remove`, until a
    /// `rescan`).
    pub fn exists(&self, addr: &str) -> bool {
        self.device_dir(addr).is_dir()
    }

    /// The driver `addr` is bound to (the last component of its `driver` link), or None when it
    /// is bound to none (or does not exist).
    pub fn driver(&self, addr: &str) -> Option<String> {
        let target = std::fs::read_link(self.device_dir(addr).join("driver")).ok()?;
        target.file_name().map(|n| n.to_string_lossy().into_owned())
    }

    /// The NUMA node of `addr` (`numa_node`), or None where the kernel does not know it (-1)
    /// or the file cannot be read.
    pub fn numa_node(&self, addr: &str) -> Option<u32> {
        let s = std::fs::read_to_string(self.device_dir(addr).join("numa_node")).ok()?;
        s.trim()
            .parse::<i64>()
            .ok()
            .and_then(|n| u32::try_from(n).ok())
    }
}

/// How a PCI device is bound, for DPDK's purposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// Not in sysfs (removed, not rescanned).
    Absent,
    /// In sysfs, bound to no driver.
    Unbound,
    /// `vfio-pci`: what hot-plug needs.
    Vfio,
    /// A uio driver (see [`UIO_DRIVERS`]).
    Uio(String),
    /// Any other driver: a kernel driver (`ioatdma`, `idxd`, a NIC's), which DPDK cannot use.
    Kernel(String),
}

impl PciSysfs {
    /// How `addr` is bound.
    pub fn binding(&self, addr: &str) -> Binding {
        if !self.exists(addr) {
            return Binding::Absent;
        }
        match self.driver(addr) {
            None => Binding::Unbound,
            Some(d) if d == "vfio-pci" => Binding::Vfio,
            Some(d) if UIO_DRIVERS.contains(&d.as_str()) => Binding::Uio(d),
            Some(d) => Binding::Kernel(d),
        }
    }
}

/// Why `dma add` will not take a PCI device, in a lab engineer's words, with the command that
/// fixes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error(
        "no PCI device {addr} in {dir}: if it was removed through sysfs, bring it back with \
         `echo 1 > /sys/bus/pci/rescan`, then `dpdk-devbind.py -b vfio-pci {addr}`"
    )]
    Absent { addr: String, dir: String },
    #[error(
        "{addr} is bound to no driver; DPDK needs it on vfio-pci: `dpdk-devbind.py -b vfio-pci \
         {addr}`"
    )]
    Unbound { addr: String },
    #[error(
        "{addr} is bound to {driver} (uio): a uio device is removed without notice to DPDK (no \
         VFIO request, nothing drained, its BARs remapped only afterwards), so it cannot be \
         hot-plugged safely; bind it to vfio-pci: `dpdk-devbind.py -b vfio-pci {addr}`"
    )]
    Uio { addr: String, driver: String },
    #[error(
        "{addr} is bound to the kernel's {driver} driver{}, not vfio-pci, so DPDK cannot drive \
         it; run `dpdk-devbind.py -b vfio-pci {addr}` and add it again",
        rescan_note(driver)
    )]
    Kernel { addr: String, driver: String },
}

/// Why a DMA channel is on its kernel driver again: ` (as after a rescan: ...)` for ioatdma and
/// idxd, nothing for other drivers.
fn rescan_note(driver: &str) -> &'static str {
    if matches!(driver, "ioatdma" | "idxd") {
        " (as after `echo 1 > /sys/bus/pci/rescan`: the kernel gives a removed DMA channel back \
         to its own driver)"
    } else {
        ""
    }
}

/// Whether PCI device `addr` (canonical, `0000:00:04.0`) can be hot-added as a DMA device: it
/// must exist and be bound to vfio-pci.
pub fn dma_binding(sysfs: &PciSysfs, addr: &str) -> Result<(), BindingError> {
    let addr_s = addr.to_owned();
    match sysfs.binding(addr) {
        Binding::Vfio => Ok(()),
        Binding::Absent => Err(BindingError::Absent {
            addr: addr_s,
            dir: sysfs.root.join("bus/pci/devices").display().to_string(),
        }),
        Binding::Unbound => Err(BindingError::Unbound { addr: addr_s }),
        Binding::Uio(driver) => Err(BindingError::Uio {
            addr: addr_s,
            driver,
        }),
        Binding::Kernel(driver) => Err(BindingError::Kernel {
            addr: addr_s,
            driver,
        }),
    }
}

/// One warning line for each of `devices` (dmadev or port names; only PCI ones are looked up)
/// whose PCI function is bound to a uio driver. `what` says what the device is to the run
/// (`DMA channel`, `port`).
pub fn uio_warnings<'a>(
    sysfs: &PciSysfs,
    devices: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (what, name) in devices {
        let (bus, dev) = bus_device_of(name);
        if bus != "pci" || seen.iter().any(|s| s == dev) {
            continue;
        }
        seen.push(dev.to_owned());
        if let Binding::Uio(driver) = sysfs.binding(dev) {
            out.push(format!(
                "warning: {what} {name} is on {dev}, bound to {driver} (uio): hot-remove of it \
                 is unsafe (the kernel removes it without notice to DPDK: nothing is drained \
                 first and its BARs are remapped only afterwards); bind it to vfio-pci: \
                 dpdk-devbind.py -b vfio-pci {dev}"
            ));
        }
    }
    out
}

/// Test helpers: a fake sysfs tree.
#[cfg(test)]
pub(crate) mod fake {
    use super::PciSysfs;
    use std::path::PathBuf;

    /// A sysfs tree in a fresh temporary directory, removed when dropped.
    pub struct FakeSysfs {
        pub root: PathBuf,
    }

    impl FakeSysfs {
        pub fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let root = std::env::temp_dir().join(format!(
                "fakesys-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(root.join("bus/pci/drivers")).unwrap();
            std::fs::create_dir_all(root.join("bus/pci/devices")).unwrap();
            FakeSysfs { root }
        }

        /// Device `addr`, bound to `driver` (None: to none), on `numa` node.
        pub fn device(&self, addr: &str, driver: Option<&str>, numa: i32) -> &Self {
            let dir = self.root.join("bus/pci/devices").join(addr);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("numa_node"), format!("{numa}\n")).unwrap();
            let link = dir.join("driver");
            let _ = std::fs::remove_file(&link);
            if let Some(d) = driver {
                let target = self.root.join("bus/pci/drivers").join(d);
                std::fs::create_dir_all(&target).unwrap();
                // As the kernel writes it: relative, ../../../bus/pci/drivers/NAME.
                std::os::unix::fs::symlink(format!("../../../../bus/pci/drivers/{d}"), &link)
                    .unwrap();
            }
            self
        }

        /// `echo 1 > .../remove`: the device is gone.
        pub fn remove(&self, addr: &str) {
            std::fs::remove_dir_all(self.root.join("bus/pci/devices").join(addr)).unwrap();
        }

        pub fn sysfs(&self) -> PciSysfs {
            PciSysfs::at(&self.root)
        }
    }

    impl Drop for FakeSysfs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeSysfs;
    use super::*;

    #[test]
    fn drivers_and_nodes_are_read_from_the_tree() {
        let f = FakeSysfs::new("read");
        f.device("0000:00:04.0", Some("vfio-pci"), 0)
            .device("0000:00:04.1", Some("ioatdma"), 1)
            .device("0000:00:04.2", None, -1);
        let s = f.sysfs();
        assert_eq!(s.driver("0000:00:04.0").as_deref(), Some("vfio-pci"));
        assert_eq!(s.driver("0000:00:04.1").as_deref(), Some("ioatdma"));
        assert_eq!(s.driver("0000:00:04.2"), None);
        assert_eq!(s.driver("0000:00:04.3"), None);
        assert_eq!(s.numa_node("0000:00:04.1"), Some(1));
        assert_eq!(s.numa_node("0000:00:04.2"), None, "-1: unknown");
        assert_eq!(s.numa_node("0000:00:04.3"), None);
        assert_eq!(s.binding("0000:00:04.3"), Binding::Absent);
    }

    /// Point 5 of the lab issue: after a sysfs remove and a rescan the channel is back on
    /// ioatdma; `dma add` is told the driver and the exact command, with the canonical name.
    #[test]
    fn a_rescanned_channel_on_ioatdma_is_refused_with_the_devbind_command() {
        let f = FakeSysfs::new("rescan");
        let s = f.sysfs();
        f.device("0000:00:04.0", Some("vfio-pci"), 0);
        assert_eq!(dma_binding(&s, "0000:00:04.0"), Ok(()));
        f.remove("0000:00:04.0");
        let e = dma_binding(&s, "0000:00:04.0").unwrap_err();
        assert!(matches!(e, BindingError::Absent { .. }), "{e:?}");
        assert!(
            e.to_string().contains("echo 1 > /sys/bus/pci/rescan"),
            "{e}"
        );
        // The rescan: the kernel's driver takes it back.
        f.device("0000:00:04.0", Some("ioatdma"), 0);
        let e = dma_binding(&s, "0000:00:04.0").unwrap_err().to_string();
        assert!(e.contains("kernel's ioatdma driver"), "{e}");
        assert!(
            e.contains("`dpdk-devbind.py -b vfio-pci 0000:00:04.0`"),
            "{e}"
        );
        f.device("0000:6a:01.0", Some("idxd"), 0);
        let e = dma_binding(&s, "0000:6a:01.0").unwrap_err().to_string();
        assert!(e.contains("kernel's idxd driver"), "{e}");
        assert!(e.contains("echo 1 > /sys/bus/pci/rescan"), "{e}");
        f.device("0000:3b:00.0", Some("ice"), 0);
        let e = dma_binding(&s, "0000:3b:00.0").unwrap_err().to_string();
        assert_eq!(
            e,
            "0000:3b:00.0 is bound to the kernel's ice driver, not vfio-pci, so DPDK cannot \
             drive it; run `dpdk-devbind.py -b vfio-pci 0000:3b:00.0` and add it again"
        );
        f.device("0000:00:04.0", None, 0);
        let e = dma_binding(&s, "0000:00:04.0").unwrap_err().to_string();
        assert!(e.contains("bound to no driver"), "{e}");
    }

    /// Point 3: uio-bound DMA devices are refused, and warned about at start once per PCI
    /// function (the work queues of one DSA function are one warning), vfio ones are not.
    #[test]
    fn uio_devices_are_refused_and_warned_about_once_per_function() {
        let f = FakeSysfs::new("uio");
        f.device("0000:00:04.0", Some("uio_pci_generic"), 0)
            .device("0000:6a:01.0", Some("igb_uio"), 0)
            .device("0000:00:04.1", Some("vfio-pci"), 0)
            .device("0000:3b:00.0", Some("igb_uio"), 0);
        let s = f.sysfs();
        let e = dma_binding(&s, "0000:00:04.0").unwrap_err();
        assert_eq!(
            e,
            BindingError::Uio {
                addr: "0000:00:04.0".into(),
                driver: "uio_pci_generic".into()
            }
        );
        assert!(e
            .to_string()
            .contains("dpdk-devbind.py -b vfio-pci 0000:00:04.0"));
        let w = uio_warnings(
            &s,
            [
                ("DMA channel", "0000:00:04.0"),
                ("DMA channel", "0000:00:04.1"),
                ("DMA channel", "0000:6a:01.0-q0"),
                ("DMA channel", "0000:6a:01.0-q1"),
                ("DMA channel", "dma_skeleton0"),
                ("port", "0000:3b:00.0"),
                ("port", "net_null0"),
            ],
        );
        assert_eq!(w.len(), 3, "{w:#?}");
        assert!(w[0].starts_with(
            "warning: DMA channel 0000:00:04.0 is on 0000:00:04.0, bound to uio_pci_generic"
        ));
        assert!(w[1].contains("0000:6a:01.0-q0 is on 0000:6a:01.0, bound to igb_uio"));
        assert!(w[2].starts_with("warning: port 0000:3b:00.0"));
        assert!(w.iter().all(|l| !l.contains('\n')), "one line each");
    }
}
