//! Device events: DPDK's hotplug monitor (`rte_dev_event_monitor_start`), which reports a
//! device added to or removed from the system (for example a PCI DMA engine removed through
//! sysfs in the lab).

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

/// A running device-event monitor. The callback runs on DPDK's interrupt thread, so it must
/// only hand the event on (to a control thread) and return. Stopped when dropped.
pub struct DevEventMonitor<'eal> {
    cb: *mut Callback,
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
    /// Starts the monitor and registers `cb` for every device.
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
        let monitor = DevEventMonitor {
            cb,
            _eal: std::marker::PhantomData,
        };
        // SAFETY: no preconditions; fails without the privileges to open the uevent socket.
        check("rte_dev_event_monitor_start", unsafe {
            dpdk_sys::rte_dev_event_monitor_start()
        })?;
        Ok(monitor)
    }
}

impl Drop for DevEventMonitor<'_> {
    fn drop(&mut self) {
        // SAFETY: stops the monitor and unregisters our callback (waiting for a running call of
        // it to finish, as rte_dev_event_callback_unregister does with -EAGAIN retried below);
        // only then is the box freed.
        unsafe {
            dpdk_sys::rte_dev_event_monitor_stop();
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
