//! DMA devices (dmadev): Intel IOAT/CBDMA and DSA (idxd), `dma_skeleton`, any DPDK dmadev.
//!
//! A device has virtual channels (vchans); each vchan is a ring of copy descriptors. The fast
//! path, used by one lcore per vchan:
//!
//! 1. [`DmaChannel::copy`] (`unsafe`: the engine writes memory outside Rust's view until the
//!    copy completes) writes a descriptor (does not start the engine yet) and returns its
//!    ring index; it fails with `-ENOSPC` when the ring is full.
//! 2. [`DmaChannel::submit`] rings the doorbell once for every descriptor written since the last
//!    submit (once per burst, not per packet).
//! 3. [`DmaChannel::completed`] returns how many descriptors finished, strictly in ring order.
//!    When one failed, [`DmaChannel::completed_status`] gives the status of each.
//!
//! DMA engines see IO addresses (IOVA); the EAL here runs in IOVA-as-VA mode with
//! `--no-huge`, and with vfio-pci and hugepages in the lab; `Mbuf::data_iova` gives the right one
//! either way.

use crate::eal::{cstr, Eal};
use crate::error::{check, Error, Result};
use std::ffi::CStr;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// What a DMA device can do (`rte_dma_info_get`).
#[derive(Debug, Clone)]
pub struct DmaDevInfo {
    pub id: i16,
    pub name: String,
    pub max_vchans: u16,
    pub min_desc: u16,
    pub max_desc: u16,
    pub numa_node: i16,
    pub mem_to_mem: bool,
    pub copy: bool,
    /// Shared virtual addressing: the device can use process virtual addresses.
    pub sva: bool,
    /// The raw `dev_capa` bits (`RTE_DMA_CAPA_*`); [`capability_names`] spells them out.
    pub capa: u64,
    /// The device (`rte_device`) this dmadev belongs to: `dma_skeleton0` for a vdev, the PCI
    /// function (`0000:6a:01.0`) for IOAT and DSA. The dmadevs of one DSA function (its work
    /// queues, `0000:6a:01.0-q0`, `-q1`, ...) share it, and removing it removes all of them.
    pub device: String,
    /// The bus of that device (`vdev`, `pci`).
    pub bus: String,
}

/// Counters of one vchan (`rte_dma_stats_get`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DmaStats {
    pub submitted: u64,
    pub completed: u64,
    pub errors: u64,
}

/// Result of [`DmaChannel::completed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaCompletion {
    /// Descriptors finished successfully, in ring order.
    pub count: u16,
    /// Ring index of the last one (meaningful when `count > 0`).
    pub last_idx: u16,
    /// The descriptor after those `count` failed: call `completed_status` next.
    pub has_error: bool,
}

/// Device ids with a live [`DmaDev`]: a dmadev is owned by one handle per process, so no second
/// handle can stop or close it under the first.
static CLAIMED: Mutex<Vec<i16>> = Mutex::new(Vec::new());

/// Whether some dmadev is still owned (a live or leaked handle, or one whose stop failed).
pub(crate) fn any_owned() -> bool {
    !claimed().is_empty()
}

fn claimed() -> std::sync::MutexGuard<'static, Vec<i16>> {
    // A poisoned lock only means a panic elsewhere while holding it; the list is still valid.
    CLAIMED.lock().unwrap_or_else(|e| e.into_inner())
}

/// A configured DMA device with one MEM_TO_MEM vchan, owned by this handle alone (one per
/// device id per process). Stopped and closed when dropped.
pub struct DmaDev<'eal> {
    id: i16,
    name: String,
    nb_desc: u16,
    started: bool,
    channel_taken: AtomicBool,
    _eal: PhantomData<&'eal ()>,
}

impl<'eal> DmaDev<'eal> {
    /// Every dmadev the EAL knows, with its info.
    pub fn list(_eal: &Eal) -> Vec<DmaDevInfo> {
        let mut out = Vec::new();
        // SAFETY: rte_dma_next_dev only reads the device table.
        let mut id = unsafe { dpdk_sys::rte_dma_next_dev(0) };
        while id >= 0 {
            if let Ok(i) = info(id) {
                out.push(i);
            }
            // SAFETY: as above.
            id = unsafe { dpdk_sys::rte_dma_next_dev(id + 1) };
        }
        out
    }

    /// The device id of `name`.
    pub fn id_by_name(_eal: &Eal, name: &str) -> Result<i16> {
        let c = cstr(name)?;
        // SAFETY: c is a valid C string.
        let id = unsafe { dpdk_sys::rte_dma_get_dev_id_by_name(c.as_ptr()) };
        if id < 0 {
            return Err(Error::Invalid(format!("no DMA device named {name:?}")));
        }
        Ok(id as i16)
    }

    /// The info of dmadev `name`.
    pub fn info_by_name(eal: &Eal, name: &str) -> Result<DmaDevInfo> {
        info(Self::id_by_name(eal, name)?)
    }

    /// Configures device `name` with one MEM_TO_MEM vchan of `nb_desc` descriptors (clamped to
    /// what the device supports) and starts it. Fails if another handle owns the device.
    pub fn open(eal: &'eal Eal, name: &str, nb_desc: u16) -> Result<Self> {
        // Held from the name lookup to the claim: an unplug (which holds it too) cannot remove
        // the device, and let another take its id, in between.
        let mut owned = claimed();
        let id = Self::id_by_name(eal, name)?;
        let inf = info(id)?;
        if !inf.mem_to_mem || !inf.copy {
            return Err(Error::Invalid(format!(
                "DMA device {name} cannot copy memory to memory"
            )));
        }
        // A software dmadev (a vdev such as dma_skeleton) copies with the CPU, so the IO
        // addresses it is given must be virtual addresses: with --iova-mode=pa it would write
        // wherever a physical address points in the process.
        // SAFETY: a read of the EAL's configuration, valid after init (`eal` proves it).
        let iova_va = unsafe { dpdk_sys::rte_eal_iova_mode() } == dpdk_sys::RTE_IOVA_VA;
        if inf.bus == "vdev" && !iova_va {
            return Err(Error::Invalid(format!(
                "DMA device {name} is a software engine and needs --iova-mode=va"
            )));
        }
        {
            if owned.contains(&id) {
                return Err(Error::Invalid(format!(
                    "DMA device {name} is already in use"
                )));
            }
            owned.push(id);
        }
        drop(owned);
        let nb_desc = nb_desc.clamp(inf.min_desc.max(1), inf.max_desc.max(1));
        if let Err(e) = configure_and_start(id, nb_desc) {
            // Never started: leave the device as it was (closing it would make it unusable
            // for good) and release the claim.
            claimed().retain(|&c| c != id);
            return Err(e);
        }
        Ok(DmaDev {
            id,
            name: inf.name,
            nb_desc,
            started: true,
            channel_taken: AtomicBool::new(false),
            _eal: PhantomData,
        })
    }

    pub fn id(&self) -> i16 {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// This device's info (its `device` names the bus device it belongs to).
    pub fn info(&self) -> Result<DmaDevInfo> {
        info(self.id)
    }

    /// Descriptors in the vchan's ring.
    pub fn nb_desc(&self) -> u16 {
        self.nb_desc
    }

    /// Whether the device is stopped (a stopped engine writes no more memory).
    pub fn is_stopped(&self) -> bool {
        !self.started
    }

    pub fn stats(&self) -> Result<DmaStats> {
        let mut s = dpdk_sys::rte_dma_stats::default();
        // SAFETY: valid device and vchan 0; stats reads are allowed from any thread.
        check("rte_dma_stats_get", unsafe {
            dpdk_sys::rte_dma_stats_get(self.id, 0, &mut s)
        })?;
        Ok(DmaStats {
            submitted: s.submitted,
            completed: s.completed,
            errors: s.errors,
        })
    }

    /// The unique handle to vchan 0's fast path.
    pub fn channel(&self) -> Result<DmaChannel<'_>> {
        // Control path: an RMW is fine. Relaxed: it only detects a second taker.
        if self.channel_taken.swap(true, Ordering::Relaxed) {
            return Err(Error::Invalid(format!(
                "the channel of {} is already owned by a worker",
                self.name
            )));
        }
        Ok(DmaChannel {
            dev: self.id,
            vchan: 0,
            _dev: PhantomData,
        })
    }

    /// Removes this device's bus device (`rte_dev_remove`): the driver's remove releases the
    /// dmadev, closing it. Stops it first. Only the owner can call this (it takes `self`), and
    /// it refuses when the bus device carries other dmadevs owned by other handles (the work
    /// queues of one DSA function): removing it would close them under their owners. On
    /// failure the handle is given back, still owned (stopped if the stop succeeded).
    pub fn unplug(mut self, _eal: &Eal) -> std::result::Result<(), (Self, Error)> {
        let name = self.name.clone();
        let (bus, device) = bus_device_of(&name);
        // Held from the sibling check until the claim is released: no sibling can be opened
        // (claimed and started) between the check and the removal.
        let mut owned = claimed();
        let siblings: Vec<String> = {
            let claimed = &owned;
            let mut out = Vec::new();
            // SAFETY: rte_dma_next_dev only reads the device table.
            let mut id = unsafe { dpdk_sys::rte_dma_next_dev(0) };
            while id >= 0 {
                if let Ok(i) = info(id) {
                    if id != self.id && i.device == device && claimed.contains(&id) {
                        out.push(i.name);
                    }
                }
                // SAFETY: as above.
                id = unsafe { dpdk_sys::rte_dma_next_dev(id + 1) };
            }
            out
        };
        if !siblings.is_empty() {
            return Err((
                self,
                Error::Invalid(format!(
                    "device {device} also carries {} in use: remove those first",
                    siblings.join(", ")
                )),
            ));
        }
        let names = match (cstr(bus), cstr(device)) {
            (Ok(b), Ok(d)) => (b, d),
            (Err(e), _) | (_, Err(e)) => return Err((self, e)),
        };
        if let Err(e) = self.stop() {
            return Err((self, e));
        }
        // SAFETY: valid C strings. The bus device is the one of the dmadev we own, stopped
        // above; no other handle owns a dmadev of it (checked above), so the driver's remove
        // closes nothing anyone else uses.
        let ret = unsafe { dpdk_sys::rte_eal_hotplug_remove(names.0.as_ptr(), names.1.as_ptr()) };
        if let Err(e) = check("rte_eal_hotplug_remove", ret) {
            return Err((self, e));
        }
        // The driver released (and closed) the dmadev: release the claim, nothing else to do
        // (the name is the only thing the handle still owns).
        owned.retain(|&c| c != self.id);
        drop(owned);
        let mut this = std::mem::ManuallyDrop::new(self);
        drop(std::mem::take(&mut this.name));
        Ok(())
    }

    /// Gives the device back without closing it: stops it and releases the claim, leaving the
    /// dmadev in DPDK's table, stopped and configurable again, so that a later [`Self::open`]
    /// (this process's next `dma add`) can take it. For a device this handle did not probe
    /// (closing it would destroy it for good: a closed dmadev is gone until its bus device is
    /// removed and probed again). On a failed stop the handle is given back, still owned.
    pub fn release(mut self) -> std::result::Result<(), (Self, Error)> {
        if let Err(e) = self.stop() {
            return Err((self, e));
        }
        claimed().retain(|&c| c != self.id);
        // Stopped and no longer claimed: skip Drop's close; only the name is left to free.
        let mut this = std::mem::ManuallyDrop::new(self);
        drop(std::mem::take(&mut this.name));
        Ok(())
    }

    /// Removes bus device `device` of `bus` (`rte_eal_hotplug_remove`; the driver's remove
    /// closes its dmadevs) when none of its dmadevs is owned by a handle: the undo of a probe
    /// whose dmadevs were all [released](Self::release) or never opened. Refuses, naming them,
    /// while any is owned. (Close none of them first: some drivers' remove, dma_skeleton's,
    /// then fails.)
    pub fn unplug_device(_eal: &Eal, bus: &str, device: &str) -> Result<()> {
        // Held until the removal is done: nothing can be opened in between.
        let owned = claimed();
        let mut in_use = Vec::new();
        // SAFETY: rte_dma_next_dev only reads the device table.
        let mut id = unsafe { dpdk_sys::rte_dma_next_dev(0) };
        while id >= 0 {
            if let Ok(i) = info(id) {
                if i.device == device && owned.contains(&id) {
                    in_use.push(i.name);
                }
            }
            // SAFETY: as above.
            id = unsafe { dpdk_sys::rte_dma_next_dev(id + 1) };
        }
        if !in_use.is_empty() {
            return Err(Error::Invalid(format!(
                "device {device} carries {} in use: not removed",
                in_use.join(", ")
            )));
        }
        let (b, d) = (cstr(bus)?, cstr(device)?);
        // SAFETY: valid C strings; no handle owns a dmadev of this device (checked above, with
        // the claims locked), so the driver's remove closes nothing anyone uses, and none of
        // them is started (only a handle starts one, and stops it before giving it up).
        check("rte_eal_hotplug_remove", unsafe {
            dpdk_sys::rte_eal_hotplug_remove(b.as_ptr(), d.as_ptr())
        })?;
        drop(owned);
        Ok(())
    }

    /// Stops the device. Needs `&mut self`: no channel handle can still be in use. Marked
    /// stopped only once `rte_dma_stop` succeeded, so a failed stop can be retried.
    pub fn stop(&mut self) -> Result<()> {
        if self.started {
            #[cfg(test)]
            check("rte_dma_stop", crate::injected::stop_result())?;
            // SAFETY: started device, no channel handle alive (borrow rules).
            check("rte_dma_stop", unsafe { dpdk_sys::rte_dma_stop(self.id) })?;
            self.started = false;
        }
        Ok(())
    }
}

impl Drop for DmaDev<'_> {
    fn drop(&mut self) {
        if self.stop().is_err() {
            // A device that would not stop may still be writing memory: leave it open (and
            // claimed) rather than close it under a running engine.
            return;
        }
        // SAFETY: stopped above and no channel handle remains.
        unsafe { dpdk_sys::rte_dma_close(self.id) };
        claimed().retain(|&c| c != self.id);
    }
}

/// One MEM_TO_MEM vchan of `nb_desc` descriptors, then start. The caller owns device `id`.
fn configure_and_start(id: i16, nb_desc: u16) -> Result<()> {
    let conf = dpdk_sys::rte_dma_conf {
        nb_vchans: 1,
        enable_silent: false,
    };
    // SAFETY: valid device id, conf initialised; the caller owns the device.
    check("rte_dma_configure", unsafe {
        dpdk_sys::rte_dma_configure(id, &conf)
    })?;
    let vconf = dpdk_sys::rte_dma_vchan_conf {
        direction: dpdk_sys::RTE_DMA_DIR_MEM_TO_MEM,
        nb_desc,
        ..Default::default()
    };
    // SAFETY: device configured with one vchan; vconf initialised.
    check("rte_dma_vchan_setup", unsafe {
        dpdk_sys::rte_dma_vchan_setup(id, 0, &vconf)
    })?;
    // SAFETY: configured device.
    check("rte_dma_start", unsafe { dpdk_sys::rte_dma_start(id) })?;
    Ok(())
}

fn info(id: i16) -> Result<DmaDevInfo> {
    let mut i = dpdk_sys::rte_dma_info::default();
    // SAFETY: valid out-parameter; an invalid id is reported as an error.
    check("rte_dma_info_get", unsafe {
        dpdk_sys::rte_dma_info_get(id, &mut i)
    })?;
    let name = if i.dev_name.is_null() {
        format!("dma{id}")
    } else {
        // SAFETY: dev_name points at the device's NUL-terminated name, valid while it exists.
        unsafe { CStr::from_ptr(i.dev_name) }
            .to_string_lossy()
            .into_owned()
    };
    let (bus, device) = bus_device_of(&name);
    let (bus, device) = (bus.to_string(), device.to_string());
    let capa = |bit: u64| i.dev_capa & bit != 0;
    Ok(DmaDevInfo {
        id,
        name,
        max_vchans: i.max_vchans,
        min_desc: i.min_desc,
        max_desc: i.max_desc,
        numa_node: i.numa_node,
        mem_to_mem: capa(dpdk_sys::SHIM_DMA_CAPA_MEM_TO_MEM),
        copy: capa(dpdk_sys::SHIM_DMA_CAPA_OPS_COPY),
        sva: capa(dpdk_sys::SHIM_DMA_CAPA_SVA),
        capa: i.dev_capa,
        device,
        bus,
    })
}

impl DmaDevInfo {
    /// Whether the device reports a failed copy as an error completion
    /// (`RTE_DMA_CAPA_HANDLES_ERRORS`). Without it a bad copy is not reported at all: DPDK's
    /// ioat driver sets it only for IOAT version 3.4 and later (not Skylake-era CBDMA, 3.3).
    pub fn handles_errors(&self) -> bool {
        self.capa & dpdk_sys::SHIM_DMA_CAPA_HANDLES_ERRORS != 0
    }

    /// [`capability_names`] of this device's `dev_capa`.
    pub fn capabilities(&self) -> Vec<&'static str> {
        capability_names(self.capa)
    }
}

/// The `RTE_DMA_CAPA_*` bits of `dev_capa` that matter to a memory-copy user, by name, in bit
/// order: `mem_to_mem`, `sva` (shared virtual addressing), `silent` (no completions needed),
/// `handles_errors` (a failed copy comes back as an error completion), and the operations
/// `copy`, `copy_sg`, `fill`. Other bits (device-side directions, future ones) are left out.
pub fn capability_names(capa: u64) -> Vec<&'static str> {
    [
        (dpdk_sys::SHIM_DMA_CAPA_MEM_TO_MEM, "mem_to_mem"),
        (dpdk_sys::SHIM_DMA_CAPA_SVA, "sva"),
        (dpdk_sys::SHIM_DMA_CAPA_SILENT, "silent"),
        (dpdk_sys::SHIM_DMA_CAPA_HANDLES_ERRORS, "handles_errors"),
        (dpdk_sys::SHIM_DMA_CAPA_OPS_COPY, "copy"),
        (dpdk_sys::SHIM_DMA_CAPA_OPS_COPY_SG, "copy_sg"),
        (dpdk_sys::SHIM_DMA_CAPA_OPS_FILL, "fill"),
    ]
    .into_iter()
    .filter(|&(bit, _)| capa & bit != 0)
    .map(|(_, n)| n)
    .collect()
}

/// The bus and bus-device name of dmadev `name`. DPDK 22.11 gives applications no pointer from
/// a dmadev to its `rte_device`, so this follows the drivers' naming: a PCI address
/// (`0000:00:04.0`, IOAT) is its own device, and idxd names the work queues of one DSA function
/// `0000:6a:01.0-q0`, `-q1`, ... when it drives the function over PCI; a work queue the kernel
/// driver hands to DPDK is a device of idxd's `dsa` bus named `wqD.Q` (drivers/dma/idxd/
/// idxd_bus.c), each its own; anything else (`dma_skeleton0`) is a vdev of that name.
pub fn bus_device_of(name: &str) -> (&'static str, &str) {
    let num = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if let Some((d, q)) = name.strip_prefix("wq").and_then(|r| r.split_once('.')) {
        if num(d) && num(q) {
            return ("dsa", name);
        }
    }
    let base = match name.rsplit_once("-q") {
        Some((b, q)) if !q.is_empty() && q.bytes().all(|c| c.is_ascii_digit()) => b,
        _ => name,
    };
    let is_pci = base.len() >= 7
        && base
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        && base.contains(':')
        && base.contains('.');
    if is_pci {
        ("pci", base)
    } else {
        ("vdev", name)
    }
}

/// The name DPDK gives a PCI device or one of its dmadevs, from any way a user may write it:
/// `00:04.0` (no domain, as `dpdk-devbind.py --status` and `lspci` print it), `0000:00:04.0`,
/// upper- or lower-case hex, with a dmadev's `-qN` suffix kept: always `DDDD:BB:DD.F[-qN]`,
/// lower case, as `rte_pci_device_name` formats it (and as the ioat and idxd drivers name their
/// dmadevs). So `-a 00:04.0`, `dpctl dma add 00:04.0` and a device event naming
/// `0000:00:04.0` all mean one device. Anything that is not a PCI address comes back as it is.
pub fn canonical_pci_name(name: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let (base, suffix) = match name.rsplit_once("-q") {
        Some((b, q)) if !q.is_empty() && q.bytes().all(|c| c.is_ascii_digit()) => {
            (b, &name[b.len()..])
        }
        _ => (name, ""),
    };
    let hex = |s: &str, max: usize| -> Option<u32> {
        (!s.is_empty() && s.len() <= max && s.bytes().all(|c| c.is_ascii_hexdigit()))
            .then(|| u32::from_str_radix(s, 16).ok())
            .flatten()
    };
    let parse = || -> Option<(u32, u32, u32, u32)> {
        let (rest, func) = base.rsplit_once('.')?;
        let parts: Vec<&str> = rest.split(':').collect();
        let (domain, bus, dev) = match parts[..] {
            [b, d] => (0, hex(b, 2)?, hex(d, 2)?),
            [dom, b, d] => (hex(dom, 8)?, hex(b, 2)?, hex(d, 2)?),
            _ => return None,
        };
        let func = hex(func, 1)?;
        // PCI: 32 devices a bus, 8 functions a device.
        (dev < 32 && func < 8).then_some((domain, bus, dev, func))
    };
    match parse() {
        Some((domain, bus, dev, func)) => {
            let canonical = format!("{domain:04x}:{bus:02x}:{dev:02x}.{func:x}{suffix}");
            if canonical == name {
                Cow::Borrowed(name)
            } else {
                Cow::Owned(canonical)
            }
        }
        None => Cow::Borrowed(name),
    }
}

/// The one handle to one vchan's fast path.
pub struct DmaChannel<'d> {
    dev: i16,
    vchan: u16,
    _dev: PhantomData<&'d ()>,
}

impl DmaChannel<'static> {
    /// A fast-path handle to vchan `vchan` of device `dev_id`, not tied to a [`DmaDev`]
    /// borrow: for a worker that learns its channel from a control thread at run time.
    ///
    /// # Safety
    /// Until the handle is dropped, the device must stay configured and started, and no other
    /// handle may use the same vchan. The data plane guarantees both with its QSBR protocol:
    /// the control thread publishes a channel to exactly one worker and stops or closes the
    /// device only after that worker has declared it will not touch it again.
    pub unsafe fn attach(dev_id: i16, vchan: u16) -> Self {
        DmaChannel {
            dev: dev_id,
            vchan,
            _dev: PhantomData,
        }
    }
}

impl DmaChannel<'_> {
    pub fn dev_id(&self) -> i16 {
        self.dev
    }

    pub fn vchan(&self) -> u16 {
        self.vchan
    }

    /// Writes a copy descriptor (not yet submitted). Returns its ring index, or `None` when the
    /// ring is full.
    ///
    /// # Safety
    /// Once submitted, the engine reads `len` bytes at `src_iova` and writes `len` bytes at
    /// `dst_iova` at a time of its choosing, outside Rust's view. The caller must make sure that
    /// both ranges are IO addresses of memory that stays allocated (never freed or reused) until
    /// [`Self::completed`] or [`Self::completed_status`] has reported this descriptor, or until
    /// the device is stopped; that nothing reads the destination or writes the source in the
    /// meantime; and that the destination range is memory nothing else owns.
    #[inline]
    pub unsafe fn copy(&mut self, src_iova: u64, dst_iova: u64, len: u32) -> Option<u16> {
        // SAFETY: this handle is the vchan's only user (`&mut self`, unique by construction);
        // the caller guarantees the buffers' lifetimes (see above).
        let r =
            unsafe { crate::fastpath::dma_copy(self.dev, self.vchan, src_iova, dst_iova, len, 0) };
        (r >= 0).then_some(r as u16)
    }

    /// Rings the doorbell for the descriptors written since the last submit.
    #[inline]
    pub fn submit(&mut self) {
        // SAFETY: as in `copy`.
        unsafe { crate::fastpath::dma_submit(self.dev, self.vchan) };
    }

    /// Finished descriptors, up to `max`, in ring order.
    #[inline]
    pub fn completed(&mut self, max: u16) -> DmaCompletion {
        let mut last_idx = 0u16;
        let mut has_error = false;
        // SAFETY: as in `copy`; out-parameters are valid.
        let count = unsafe {
            crate::fastpath::dma_completed(self.dev, self.vchan, max, &mut last_idx, &mut has_error)
        };
        DmaCompletion {
            count,
            last_idx,
            has_error,
        }
    }

    /// Finished descriptors with their status codes (0 = success), up to `status.len()`.
    #[inline]
    pub fn completed_status(&mut self, status: &mut [u32]) -> u16 {
        let mut last_idx = 0u16;
        let n = status.len().min(u16::MAX as usize) as u16;
        // SAFETY: as in `copy`; `status` has room for n codes (rte_dma_status_code is a C enum,
        // 32 bits on every ABI DPDK supports).
        unsafe {
            crate::fastpath::dma_completed_status(
                self.dev,
                self.vchan,
                n,
                &mut last_idx,
                status.as_mut_ptr() as *mut dpdk_sys::rte_dma_status_code,
            )
        }
    }

    /// Descriptors that can be written before the ring is full.
    #[inline]
    pub fn burst_capacity(&self) -> u16 {
        // SAFETY: a read of the vchan's ring state by its only user.
        unsafe { crate::fastpath::dma_burst_capacity(self.dev, self.vchan) }
    }

    /// [`Self::copy`] through the C shim's `rte_dma_copy` (see [`crate::via_shim`]).
    ///
    /// # Safety
    /// As [`Self::copy`].
    pub(crate) unsafe fn copy_via_shim(
        &mut self,
        src_iova: u64,
        dst_iova: u64,
        len: u32,
    ) -> Option<u16> {
        // SAFETY: as in `copy`.
        let r =
            unsafe { dpdk_sys::shim_dma_copy(self.dev, self.vchan, src_iova, dst_iova, len, 0) };
        (r >= 0).then_some(r as u16)
    }

    /// [`Self::submit`] through the C shim.
    pub(crate) fn submit_via_shim(&mut self) {
        // SAFETY: as in `copy`.
        unsafe { dpdk_sys::shim_dma_submit(self.dev, self.vchan) };
    }

    /// [`Self::completed`] through the C shim.
    pub(crate) fn completed_via_shim(&mut self, max: u16) -> DmaCompletion {
        let mut last_idx = 0u16;
        let mut has_error = false;
        // SAFETY: as in `copy`; out-parameters are valid.
        let count = unsafe {
            dpdk_sys::shim_dma_completed(self.dev, self.vchan, max, &mut last_idx, &mut has_error)
        };
        DmaCompletion {
            count,
            last_idx,
            has_error,
        }
    }

    /// [`Self::completed_status`] through the C shim.
    pub(crate) fn completed_status_via_shim(&mut self, status: &mut [u32]) -> u16 {
        let mut last_idx = 0u16;
        let n = status.len().min(u16::MAX as usize) as u16;
        // SAFETY: as in `completed_status`.
        unsafe {
            dpdk_sys::shim_dma_completed_status(
                self.dev,
                self.vchan,
                n,
                &mut last_idx,
                status.as_mut_ptr() as *mut dpdk_sys::rte_dma_status_code,
            )
        }
    }

    /// [`Self::burst_capacity`] through the C shim.
    pub(crate) fn burst_capacity_via_shim(&self) -> u16 {
        // SAFETY: as in `burst_capacity`.
        unsafe { dpdk_sys::shim_dma_burst_capacity(self.dev, self.vchan) }
    }
}

#[cfg(test)]
mod tests {
    use super::{bus_device_of, canonical_pci_name, capability_names};

    /// The bits as DPDK 22.11's drivers set them: ioat (drivers/dma/ioat/ioat_dmadev.c) on a
    /// 3.4 device and on Skylake-era CBDMA (3.3: no HANDLES_ERRORS), idxd
    /// (drivers/dma/idxd/idxd_common.c, with SVA) and dma_skeleton.
    #[test]
    fn capability_bits_are_named() {
        let bit = |n: u32| 1u64 << n;
        let ioat_34 = bit(0) | bit(32) | bit(34) | bit(6);
        assert_eq!(
            capability_names(ioat_34),
            ["mem_to_mem", "handles_errors", "copy", "fill"]
        );
        let ioat_33 = bit(0) | bit(32) | bit(34);
        assert_eq!(capability_names(ioat_33), ["mem_to_mem", "copy", "fill"]);
        let skeleton = bit(0) | bit(4) | bit(32);
        assert_eq!(capability_names(skeleton), ["mem_to_mem", "sva", "copy"]);
        let idxd = bit(0) | bit(4) | bit(6) | bit(32) | bit(34);
        assert_eq!(
            capability_names(idxd),
            ["mem_to_mem", "sva", "handles_errors", "copy", "fill"]
        );
        assert_eq!(capability_names(bit(33)), ["copy_sg"]);
        // Directions to and from devices, and unknown bits, are not a copy user's business.
        assert!(capability_names(bit(1) | bit(2) | bit(3) | bit(40)).is_empty());
        assert_eq!(capability_names(u64::MAX).len(), 7);
    }

    #[test]
    fn pci_names_are_made_canonical_and_everything_else_is_left_alone() {
        for (given, canonical) in [
            ("00:04.0", "0000:00:04.0"),
            ("0000:00:04.0", "0000:00:04.0"),
            ("0:0:4.0", "0000:00:04.0"),
            ("0000:6A:01.0", "0000:6a:01.0"),
            ("6a:01.0-q1", "0000:6a:01.0-q1"),
            ("10000:3b:00.1", "10000:3b:00.1"),
            ("0001:3B:1f.7-q12", "0001:3b:1f.7-q12"),
        ] {
            assert_eq!(canonical_pci_name(given), canonical, "{given}");
            // Canonical names are fixed points.
            assert_eq!(canonical_pci_name(canonical), canonical);
        }
        for other in [
            "dma_skeleton0",
            "wq0.0",
            "00:20.0", // device 32 does not exist
            "00:04.8", // nor does function 8
            "00:04",   // no function
            "000:00:04.0.1",
            "123:04.0", // a bus is two digits
            "gg:04.0",
            "00:04.0-qx",
            "",
            ":.",
        ] {
            assert_eq!(canonical_pci_name(other), other, "{other}");
        }
    }

    #[test]
    fn buses() {
        assert_eq!(bus_device_of("dma_skeleton1"), ("vdev", "dma_skeleton1"));
        assert_eq!(bus_device_of("0000:00:04.0"), ("pci", "0000:00:04.0"));
        assert_eq!(bus_device_of("0000:6a:01.0-q1"), ("pci", "0000:6a:01.0"));
        assert_eq!(bus_device_of("0000:6a:01.0-q12"), ("pci", "0000:6a:01.0"));
        // Not a queue suffix: the whole name is the device.
        assert_eq!(bus_device_of("dma-qx"), ("vdev", "dma-qx"));
    }
}
