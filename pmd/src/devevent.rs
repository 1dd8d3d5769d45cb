//! Device events: a device added to or removed from the system (for example a PCI DMA engine
//! removed through sysfs in the lab), as DPDK reports them to `rte_dev_event_callback_register`
//! callbacks.
//!
//! Two paths raise `RTE_DEV_EVENT_REMOVE` in DPDK 22.11, and the callback must be registered
//! for both:
//!
//! * **The VFIO request** (the one that matters for a vfio-pci device): `echo 1 > .../remove`
//!   blocks in the kernel, which signals the device's VFIO request eventfd; DPDK's PCI bus
//!   (`pci_vfio_req_handler` -> `pci_hot_unplug_handler`) turns that into
//!   `rte_dev_event_callback_process(name, RTE_DEV_EVENT_REMOVE)` on the interrupt thread,
//!   whether or not the uevent monitor runs. The kernel waits until the process releases the
//!   device; if nobody handles the event, the `echo` hangs until the process exits.
//! * **The uevent monitor** (`rte_dev_event_monitor_start`, a netlink socket): reports kernel
//!   uevents, including the same removal again once the kernel has removed the device, and
//!   removals of devices under uio (which has no request channel). Starting it needs the
//!   privileges to open the netlink socket; when it cannot start, the callback stays
//!   registered, so VFIO removals are still handled ([`DevEventMonitor::uevent_error`] says
//!   why the monitor did not start).
//!
//! So a removal usually arrives twice; the receiver must treat a second one as done.
//!
//! The monitor also enables DPDK's hotplug handling (`rte_dev_hotplug_handle_enable`), as
//! testpmd does for hot-plug runs: a SIGBUS handler that, for a device removed under a driver
//! that cannot stop the access (uio: its BARs stay mapped to nothing), remaps the faulting
//! BAR instead of letting the process die.

use crate::eal::Eal;
use crate::error::{check, Result};
use std::ffi::{c_char, c_void, CStr};

/// What happened to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevEvent {
    Add,
    Remove,
}

type Callback = Box<dyn Fn(&str, DevEvent) + Send + Sync>;

/// A registered device-event callback, with the uevent monitor and hotplug handling started
/// where they could be. The callback runs on DPDK's interrupt thread, so it must only hand the
/// event on (to a control thread) and return. Everything is undone when dropped.
pub struct DevEventMonitor<'eal> {
    cb: *mut Callback,
    /// Why the uevent monitor did not start (None: it runs).
    uevent_error: Option<crate::Error>,
    /// Whether `rte_dev_hotplug_handle_enable` succeeded (undone on drop).
    hotplug_handling: bool,
    _eal: std::marker::PhantomData<&'eal Eal>,
}

unsafe extern "C" fn on_event(
    name: *const c_char,
    event: dpdk_sys::rte_dev_event_type,
    arg: *mut c_void,
) {
    if name.is_null() || arg.is_null() {
        return;
    }
    // SAFETY: `arg` is the Box registered in `start`, alive until the monitor is dropped (which
    // unregisters the callback first); `name` is a NUL-terminated string valid for this call.
    let (cb, name) = unsafe { (&*(arg as *const Callback), CStr::from_ptr(name)) };
    let event = match event {
        dpdk_sys::RTE_DEV_EVENT_ADD => DevEvent::Add,
        dpdk_sys::RTE_DEV_EVENT_REMOVE => DevEvent::Remove,
        _ => return,
    };
    // A panic must not unwind into DPDK's interrupt thread.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cb(&name.to_string_lossy(), event)
    }));
}

impl<'eal> DevEventMonitor<'eal> {
    /// Registers `cb` for every device, then starts the uevent monitor and DPDK's hotplug
    /// handling. Fails only if the callback cannot be registered: a monitor that cannot start
    /// is reported by [`Self::uevent_error`], and the callback still gets the VFIO-request
    /// removals.
    pub fn start(
        _eal: &'eal Eal,
        cb: impl Fn(&str, DevEvent) + Send + Sync + 'static,
    ) -> Result<Self> {
        let cb: *mut Callback = Box::into_raw(Box::new(Box::new(cb)));
        // SAFETY: NULL device name = every device; `cb` stays valid until unregistered in Drop.
        let ret = unsafe {
            dpdk_sys::rte_dev_event_callback_register(
                std::ptr::null(),
                Some(on_event),
                cb as *mut c_void,
            )
        };
        if let Err(e) = check("rte_dev_event_callback_register", ret) {
            // SAFETY: registration failed, so nothing else holds `cb`.
            drop(unsafe { Box::from_raw(cb) });
            return Err(e);
        }
        let uevent_error = check("rte_dev_event_monitor_start", monitor_start()).err();
        // SAFETY: no preconditions; installs DPDK's SIGBUS handler for removed devices.
        let hotplug_handling = unsafe { dpdk_sys::rte_dev_hotplug_handle_enable() } == 0;
        Ok(DevEventMonitor {
            cb,
            uevent_error,
            hotplug_handling,
            _eal: std::marker::PhantomData,
        })
    }

    /// Why the uevent monitor is not running (None: it is). Removals of vfio-pci devices are
    /// reported either way; uio devices' removals need the monitor.
    pub fn uevent_error(&self) -> Option<&crate::Error> {
        self.uevent_error.as_ref()
    }

    /// Whether DPDK's hotplug SIGBUS handling is enabled.
    pub fn hotplug_handling(&self) -> bool {
        self.hotplug_handling
    }
}

/// `rte_dev_event_monitor_start`, or the failure a test asked for.
fn monitor_start() -> i32 {
    #[cfg(test)]
    if let Some(ret) = crate::injected::monitor_start_result() {
        return ret;
    }
    // SAFETY: no preconditions; fails without the privileges to open the uevent socket.
    unsafe { dpdk_sys::rte_dev_event_monitor_start() }
}

impl Drop for DevEventMonitor<'_> {
    fn drop(&mut self) {
        // SAFETY: undoes what `start` did, in reverse: hotplug handling and the monitor only
        // if they started; then unregisters our callback (waiting for a running call of it to
        // finish, as rte_dev_event_callback_unregister does with -EAGAIN retried below); only
        // then is the box freed.
        unsafe {
            if self.hotplug_handling {
                dpdk_sys::rte_dev_hotplug_handle_disable();
            }
            if self.uevent_error.is_none() {
                dpdk_sys::rte_dev_event_monitor_stop();
            }
            while dpdk_sys::rte_dev_event_callback_unregister(
                std::ptr::null(),
                Some(on_event),
                self.cb as *mut c_void,
            ) == -libc::EAGAIN
            {
                std::thread::yield_now();
            }
            drop(Box::from_raw(self.cb));
        }
    }
}

/// Raises a device event as DPDK's PCI bus does for a VFIO removal request
/// (`rte_dev_event_callback_process`), for tests of what handles it.
#[cfg(test)]
pub(crate) fn raise(name: &str, event: DevEvent) {
    let name = std::ffi::CString::new(name).expect("no NUL in a device name");
    let ev = match event {
        DevEvent::Add => dpdk_sys::RTE_DEV_EVENT_ADD,
        DevEvent::Remove => dpdk_sys::RTE_DEV_EVENT_REMOVE,
    };
    // SAFETY: a NUL-terminated name valid for the call; callbacks run on this thread.
    unsafe { dpdk_sys::rte_dev_event_callback_process(name.as_ptr(), ev) }
}
