//! The Environment Abstraction Layer: process-wide DPDK state, lcores, device hotplug.

use crate::error::{check, last_error, Error, Result};
use crate::ids::LcoreId;
use std::ffi::{c_int, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once `rte_eal_init` has been called: DPDK allows one initialisation per process,
/// even after `rte_eal_cleanup`.
static EAL_INITIALISED: AtomicBool = AtomicBool::new(false);

/// The initialised EAL. Ports, pools and DMA devices borrow it; dropping it runs
/// `rte_eal_cleanup` (after they are gone). Its queries are thread-safe reads of the EAL's
/// configuration; launching work on lcores is checked to happen on the main lcore.
pub struct Eal {
    /// The `--vdev` arguments it was given (to explain a port that did not come up).
    vdevs: Vec<String>,
}

impl Eal {
    /// Initialises DPDK from `args` (with the program name first, as in `argv`).
    /// Fails with DPDK's reason, never panics; a second call in one process fails too.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal> {
        // Relaxed suffices: this flag only guards against a second call, it publishes no data.
        if EAL_INITIALISED.swap(true, Ordering::Relaxed) {
            return Err(Error::Invalid(
                "the EAL is already initialised in this process".into(),
            ));
        }
        let mut owned = Vec::with_capacity(args.len());
        for a in args {
            let a = a.as_ref();
            owned.push(
                CString::new(a).map_err(|_| {
                    Error::Invalid(format!("EAL argument {a:?} contains a NUL byte"))
                })?,
            );
        }
        // rte_eal_init may keep pointers into argv (and permutes the array), so the strings
        // and the array live for the rest of the process.
        let argv: &'static mut [*mut std::ffi::c_char] = Box::leak(
            owned
                .into_iter()
                .map(CString::into_raw)
                .chain(std::iter::once(std::ptr::null_mut()))
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        let argc = (argv.len() - 1) as c_int;
        // SAFETY: argv holds argc valid NUL-terminated strings followed by NULL and is never
        // freed; this is the only call of rte_eal_init in the process (checked above).
        let ret = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            let no_huge = args.iter().any(|a| a.as_ref() == "--no-huge");
            return Err(match last_error("rte_eal_init") {
                // DPDK fails some steps without setting rte_errno ("Success").
                Error::Dpdk { code: 0, .. } => {
                    let prefix = file_prefix(args);
                    let config = runtime_dir_of(&prefix).join("config");
                    Error::Invalid(if locked_by_another_process(&config) {
                        format!(
                            "rte_eal_init failed: another DPDK process uses --file-prefix \
                             {prefix} (it holds {}): stop it, or give this one its own \
                             --file-prefix",
                            config.display()
                        )
                    } else {
                        "rte_eal_init failed without a reason code: see the EAL: lines above, \
                         and check the EAL options"
                            .to_owned()
                    })
                }
                Error::Dpdk { code, reason, .. } => Error::Dpdk {
                    call: "rte_eal_init",
                    code,
                    reason: format!("{reason}: {}", init_hint(code, no_huge)),
                },
                e => e,
            });
        }
        Ok(Eal {
            vdevs: vdev_args(args),
        })
    }

    /// The `--vdev` arguments the EAL was given, in order (a virtual device that failed to
    /// probe is among them but has no port or dmadev).
    pub fn vdev_args(&self) -> &[String] {
        &self.vdevs
    }

    /// The lcore this thread runs as (the main lcore here).
    pub fn main_lcore(&self) -> LcoreId {
        // SAFETY: valid after rte_eal_init, which `self` proves happened.
        let id = unsafe { dpdk_sys::rte_get_main_lcore() };
        LcoreId::new(id)
    }

    /// The worker lcores given by `-l`/`-c`, in order, excluding the main lcore.
    pub fn worker_lcores(&self) -> Vec<LcoreId> {
        let mut out = Vec::new();
        // SAFETY: rte_get_next_lcore only reads the EAL's lcore configuration.
        let mut i = unsafe { dpdk_sys::rte_get_next_lcore(u32::MAX, 1, 0) };
        while i < dpdk_sys::RTE_MAX_LCORE {
            out.push(LcoreId::new(i));
            // SAFETY: as above.
            i = unsafe { dpdk_sys::rte_get_next_lcore(i, 1, 0) };
        }
        out
    }

    /// Every lcore given by `-l`/`-c`/`--lcores`, the main lcore included, in id order (the
    /// order of DPDK's `RTE_LCORE_FOREACH`).
    pub fn lcores(&self) -> Vec<LcoreId> {
        let mut out = Vec::new();
        // SAFETY: rte_get_next_lcore only reads the EAL's lcore configuration.
        let mut i = unsafe { dpdk_sys::rte_get_next_lcore(u32::MAX, 0, 0) };
        while i < dpdk_sys::RTE_MAX_LCORE {
            out.push(LcoreId::new(i));
            // SAFETY: as above.
            i = unsafe { dpdk_sys::rte_get_next_lcore(i, 0, 0) };
        }
        out
    }

    /// NUMA socket of `lcore` (0 where the EAL does not know it).
    pub fn lcore_socket(&self, lcore: LcoreId) -> u32 {
        if lcore.get() >= dpdk_sys::RTE_MAX_LCORE {
            return 0;
        }
        // SAFETY: lcore < RTE_MAX_LCORE (checked above); reads the EAL's configuration.
        let s = unsafe { dpdk_sys::rte_lcore_to_socket_id(lcore.get()) };
        if s == u32::MAX {
            0
        } else {
            s
        }
    }

    /// The EAL's runtime directory (`/var/run/dpdk/<file-prefix>` for root), where DPDK
    /// keeps its sockets: the natural home of an application's control socket.
    pub fn runtime_dir(&self) -> std::path::PathBuf {
        // SAFETY: returns a pointer to a NUL-terminated path owned by the EAL for its lifetime.
        let p = unsafe { std::ffi::CStr::from_ptr(dpdk_sys::rte_eal_get_runtime_dir()) };
        std::path::PathBuf::from(p.to_string_lossy().into_owned())
    }

    /// NUMA socket of the calling lcore.
    pub fn socket_id(&self) -> i32 {
        // SAFETY: no preconditions after init.
        unsafe { dpdk_sys::rte_socket_id() as i32 }
    }

    /// Runs each job on its worker lcore and `main` on the calling (main) lcore, then waits for
    /// every launched job, like `std::thread::scope`: jobs may borrow from the caller because
    /// this function does not return (or unwind) before all of them have finished.
    ///
    /// Returns `main`'s value and each job's exit code (a job that panicked returns -1).
    ///
    /// Jobs that run until told to stop must be told by `main` (or by something `main`
    /// started). If a launch fails after others succeeded, `main` is never run: `abort` is
    /// called instead, before this waits for the jobs already running, and must make them
    /// return (set their stop flag); then the launch's error is returned. If `main` panics,
    /// this still waits for the jobs, so they need another way to be stopped (a signal
    /// handler, a duration) or the process hangs instead of failing.
    pub fn run_on_lcores<'env, T>(
        &self,
        jobs: Vec<(LcoreId, Box<dyn FnOnce() -> i32 + Send + 'env>)>,
        main: impl FnOnce() -> T,
        abort: impl FnOnce(),
    ) -> Result<(T, Vec<i32>)> {
        struct WaitAll(Vec<LcoreId>);
        impl Drop for WaitAll {
            fn drop(&mut self) {
                for &lcore in &self.0 {
                    // SAFETY: `lcore` was launched by us; waiting is always allowed.
                    unsafe { dpdk_sys::rte_eal_wait_lcore(lcore.get()) };
                }
            }
        }
        // SAFETY: reads this thread's lcore id (a thread-local); no preconditions.
        let this_lcore = unsafe { dpdk_sys::shim_lcore_id() };
        if LcoreId::new(this_lcore) != self.main_lcore() {
            return Err(Error::Invalid(
                "work can be launched on lcores from the main lcore only".into(),
            ));
        }
        // Every target is checked before anything is launched: DPDK's remote launch indexes
        // its lcore table without a bounds check.
        for (i, (lcore, _)) in jobs.iter().enumerate() {
            let lcore = *lcore;
            if lcore.get() >= dpdk_sys::RTE_MAX_LCORE {
                return Err(Error::Invalid(format!(
                    "lcore {lcore} is out of range (at most {})",
                    dpdk_sys::RTE_MAX_LCORE - 1
                )));
            }
            // SAFETY: lcore < RTE_MAX_LCORE (checked above); reads the EAL's configuration.
            if unsafe { dpdk_sys::rte_lcore_is_enabled(lcore.get()) } == 0 {
                return Err(Error::Invalid(format!(
                    "lcore {lcore} is not enabled (not in the EAL's -l/-c list)"
                )));
            }
            if lcore == self.main_lcore() {
                return Err(Error::Invalid(format!(
                    "lcore {lcore} is the main lcore and cannot take a job"
                )));
            }
            if jobs[..i].iter().any(|(l, _)| *l == lcore) {
                return Err(Error::Invalid(format!("lcore {lcore} is given two jobs")));
            }
        }
        let mut launched = WaitAll(Vec::new());
        for (lcore, job) in jobs {
            let boxed: Box<Box<dyn FnOnce() -> i32 + Send + 'env>> = Box::new(job);
            let arg = Box::into_raw(boxed) as *mut c_void;
            // SAFETY: `trampoline` takes back ownership of `arg` exactly once. The job may
            // borrow 'env data: `launched` waits for it in every exit path of this function
            // (including unwinding), so the borrow ends before 'env does.
            let ret =
                unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore.get()) };
            if ret < 0 {
                // SAFETY: the launch failed, so the job was not started and we still own `arg`.
                drop(unsafe { Box::from_raw(arg as *mut Box<dyn FnOnce() -> i32 + Send + 'env>) });
                // The jobs launched so far are told to stop before `launched` waits for them.
                if !launched.0.is_empty() {
                    abort();
                }
                return check("rte_eal_remote_launch", ret).map(|_| unreachable!());
            }
            launched.0.push(lcore);
        }
        let value = main();
        let lcores = std::mem::take(&mut launched.0);
        let codes = lcores
            .iter()
            // SAFETY: each lcore was launched above and is waited for once.
            .map(|&l| unsafe { dpdk_sys::rte_eal_wait_lcore(l.get()) })
            .collect();
        Ok((value, codes))
    }
}

impl Eal {
    /// Runs `ctrl` on a DPDK control thread named `name` while `here` runs on the calling
    /// thread, and returns both values once both have finished, like a `std::thread::scope`
    /// of one thread: `ctrl` may borrow from the caller because this function does not return
    /// (or unwind) before the thread has been joined.
    ///
    /// A control thread (`rte_ctrl_thread_create`) is not an lcore: DPDK places it on the CPUs
    /// the EAL was not given for lcores (or the main lcore's when every CPU is an lcore), which
    /// is where the application's housekeeping belongs while every lcore polls. `ctrl` must
    /// not need an lcore id (no per-lcore mempool cache: puts and gets go to the ring).
    ///
    /// If `here` panics, this still waits for `ctrl`, which therefore needs its own way to
    /// end (a flag `here` does not own, a duration).
    pub fn with_ctrl_thread<C, T, H, U>(&self, name: &str, ctrl: C, here: H) -> Result<(T, U)>
    where
        C: FnOnce() -> T + Send,
        T: Send,
        H: FnOnce() -> U,
    {
        /// Joins the thread in every exit path, unwinding included.
        struct Join(libc::pthread_t);
        impl Drop for Join {
            fn drop(&mut self) {
                // SAFETY: the thread was created by rte_ctrl_thread_create, is joinable (the
                // default attributes) and is joined exactly once, here.
                unsafe { libc::pthread_join(self.0, std::ptr::null_mut()) };
            }
        }
        let name = cstr(name)?;
        let mut slot: Option<T> = None;
        let slot_ref = &mut slot;
        let job: Box<dyn FnOnce() + Send + '_> = Box::new(move || *slot_ref = Some(ctrl()));
        let arg = Box::into_raw(Box::new(job)) as *mut c_void;
        let mut thread: dpdk_sys::pthread_t = 0;
        // SAFETY: `name` is NUL-terminated; NULL attributes are the defaults (joinable);
        // `ctrl_trampoline` takes back ownership of `arg` exactly once. The job borrows the
        // caller's data and `slot`: the `Join` guard below joins the thread before this frame
        // (and those borrows) can end.
        let ret = unsafe {
            dpdk_sys::rte_ctrl_thread_create(
                &mut thread,
                name.as_ptr(),
                std::ptr::null(),
                Some(ctrl_trampoline),
                arg,
            )
        };
        if ret != 0 {
            // SAFETY: the thread was not created, so `arg` was never handed over: still ours.
            drop(unsafe { Box::from_raw(arg as *mut Box<dyn FnOnce() + Send>) });
            return check("rte_ctrl_thread_create", ret.min(-1)).map(|_| unreachable!());
        }
        let joined = Join(thread as libc::pthread_t);
        let here = here();
        drop(joined);
        match slot {
            Some(t) => Ok((t, here)),
            // The job panicked (caught in the trampoline): report it rather than unwind.
            None => Err(Error::Invalid(format!(
                "control thread {} panicked",
                name.to_string_lossy()
            ))),
        }
    }
}

unsafe extern "C" fn ctrl_trampoline(arg: *mut c_void) -> *mut c_void {
    // SAFETY: `arg` came from Box::into_raw in with_ctrl_thread and is consumed only here.
    let job = unsafe { Box::from_raw(arg as *mut Box<dyn FnOnce() + Send>) };
    // A panic must not unwind into DPDK's C frames.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    std::ptr::null_mut()
}

/// What to tell the user when `rte_eal_init` fails with `code` (a negative errno). Without
/// `--no-huge`, EACCES is what the EAL sets when it finds no usable hugepages ("Cannot get
/// hugepage information": none reserved, or hugetlbfs not mounted), and ENOMEM when the
/// reserved ones are too few: say so, and how to fix it.
/// The values of the `--vdev` options in EAL arguments.
fn vdev_args<S: AsRef<str>>(args: &[S]) -> Vec<String> {
    let mut it = args.iter().map(AsRef::as_ref);
    let mut out = Vec::new();
    while let Some(a) = it.next() {
        if let Some(v) = a.strip_prefix("--vdev=") {
            out.push(v.to_owned());
        } else if a == "--vdev" {
            out.extend(it.next().map(str::to_owned));
        }
    }
    out
}

/// The `--file-prefix` in EAL arguments (DPDK's default `rte` when none).
fn file_prefix<S: AsRef<str>>(args: &[S]) -> String {
    let mut it = args.iter().map(AsRef::as_ref);
    let mut prefix = "rte".to_owned();
    while let Some(a) = it.next() {
        if let Some(p) = a.strip_prefix("--file-prefix=") {
            prefix = p.to_owned();
        } else if a == "--file-prefix" {
            if let Some(p) = it.next() {
                prefix = p.to_owned();
            }
        }
    }
    prefix
}

/// DPDK's runtime directory for `prefix`, as `eal_create_runtime_dir` makes it: under
/// `/var/run` for root, else under `$XDG_RUNTIME_DIR` or `/tmp`.
fn runtime_dir_of(prefix: &str) -> std::path::PathBuf {
    // SAFETY: getuid has no preconditions and cannot fail.
    let root = unsafe { libc::getuid() } == 0;
    let base = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(x) if !root => std::path::PathBuf::from(x),
        _ if !root => std::path::PathBuf::from("/tmp"),
        _ => std::path::PathBuf::from("/var/run"),
    };
    base.join("dpdk").join(prefix)
}

/// Whether another process holds the write lock DPDK's primary process takes on `config`.
fn locked_by_another_process(config: &std::path::Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(config)
    else {
        return false;
    };
    // SAFETY: a zeroed flock is a valid value of a plain C struct; the fields are set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as _;
    lock.l_whence = libc::SEEK_SET as _;
    // F_GETLK only reads: it reports a conflicting lock of another process, if any.
    // SAFETY: `f` is an open file for the duration of the call; `lock` is a valid flock.
    let ret = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETLK, &mut lock) };
    ret == 0 && lock.l_type != libc::F_UNLCK as _
}

fn init_hint(code: i32, no_huge: bool) -> &'static str {
    if !no_huge && (code == -libc::EACCES || code == -libc::ENOMEM) {
        "no hugepages available? reserve some (e.g. `dpdk-hugepages.py --setup 1G`) or run \
         with --no-huge"
    } else {
        "check the EAL options"
    }
}

unsafe extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` came from Box::into_raw in run_on_lcores and is consumed only here.
    let job = unsafe { Box::from_raw(arg as *mut Box<dyn FnOnce() -> i32 + Send>) };
    // A panic must not unwind into DPDK's C frames.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or(-1)
}

impl Drop for Eal {
    fn drop(&mut self) {
        // A port or DMA device still owned here was leaked (`mem::forget` is safe) or would not
        // stop: it may still be running (a DMA engine's thread, a NIC's DMA), so releasing the
        // EAL's memory under it is not allowed. Leave the EAL as it is; the process is ending.
        if crate::ethdev::any_owned() || crate::dmadev::any_owned() {
            return;
        }
        // SAFETY: everything that borrows the EAL has been dropped (the borrow checker
        // guarantees it) and no device handle was leaked (checked above), so releasing its
        // resources is safe.
        unsafe { dpdk_sys::rte_eal_cleanup() };
    }
}

/// Reads the time-stamp counter (a plain `rdtsc`, no serialisation).
#[inline]
pub fn rdtsc() -> u64 {
    // rte_rdtsc() is a plain RDTSC (no fence) on x86 (DPDK's VMware TSC-map build reads it
    // with RDPMC instead; Debian's is not built so): the same instruction inline, rather than
    // a call into the shim, since the worker loop reads it every iteration.
    #[cfg(target_arch = "x86_64")]
    // SAFETY: RDTSC has no preconditions; every x86_64 CPU has it.
    unsafe {
        std::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: rte_rdtsc has no preconditions.
    unsafe {
        dpdk_sys::shim_rdtsc()
    }
}

/// TSC ticks per second as measured by the EAL.
pub fn tsc_hz() -> u64 {
    // SAFETY: no preconditions after init (returns 0 before it).
    unsafe { dpdk_sys::rte_get_tsc_hz() }
}

/// Hot-plugs a device: `rte_eal_hotplug_add(bus, name, args)`, as for `--vdev` at start-up.
pub fn hotplug_add(_eal: &Eal, bus: &str, name: &str, args: &str) -> Result<()> {
    let (b, n, a) = (cstr(bus)?, cstr(name)?, cstr(args)?);
    // SAFETY: all three are valid NUL-terminated strings for the duration of the call.
    check("rte_eal_hotplug_add", unsafe {
        dpdk_sys::rte_eal_hotplug_add(b.as_ptr(), n.as_ptr(), a.as_ptr())
    })
    .map(|_| ())
}

pub(crate) fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Invalid(format!("{s:?} contains a NUL byte")))
}

#[cfg(test)]
mod tests {
    use super::init_hint;

    #[test]
    fn init_failure_hints_at_hugepages_only_when_they_are_the_likely_cause() {
        assert!(init_hint(-libc::EACCES, false).contains("dpdk-hugepages.py --setup 1G"));
        assert!(init_hint(-libc::ENOMEM, false).contains("--no-huge"));
        assert_eq!(init_hint(-libc::EACCES, true), "check the EAL options");
        assert_eq!(init_hint(-libc::EINVAL, false), "check the EAL options");
    }
}
