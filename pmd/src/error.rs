use std::ffi::CStr;

/// What went wrong in the device layer, with DPDK's own reason where it gave one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A DPDK call failed; `code` is the negative errno it returned (or `-rte_errno`).
    #[error("{call} failed: {reason} ({code})")]
    Dpdk {
        call: &'static str,
        code: i32,
        reason: String,
    },
    /// The caller asked for something the device or the EAL cannot do.
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// DPDK's text for an errno value (its own codes included).
pub(crate) fn strerror(code: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated string
    // that stays valid at least until the next call on this thread; we copy it out at once.
    unsafe { CStr::from_ptr(dpdk_sys::rte_strerror(code.abs())) }
        .to_string_lossy()
        .into_owned()
}

/// Turns a DPDK return value (negative errno on failure) into a `Result`.
pub(crate) fn check(call: &'static str, ret: i32) -> Result<i32> {
    if ret < 0 {
        Err(Error::Dpdk {
            call,
            code: ret,
            reason: strerror(ret),
        })
    } else {
        Ok(ret)
    }
}

/// The error for a call that signals failure with NULL or -1 and sets `rte_errno`.
pub(crate) fn last_error(call: &'static str) -> Error {
    // SAFETY: reads the calling thread's rte_errno; no preconditions.
    let code = -unsafe { dpdk_sys::shim_rte_errno() };
    Error::Dpdk {
        call,
        code,
        reason: strerror(code),
    }
}
