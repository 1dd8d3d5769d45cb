//! Application commands on DPDK's telemetry socket (`rte_telemetry_register_cmd`), so that
//! `dpdk-telemetry.py` and the collectors that read `<runtime dir>/dpdk_telemetry.v2` (Telegraf's
//! `dpdk` input, ...) see the application's own counters beside the library's.
//!
//! A command is answered by a *provider*, a closure that returns a [`TelValue`] tree (or `None`:
//! no data, which the client sees as `{"/cmd": null}`). Providers run on DPDK's telemetry
//! threads (one per connected client), whenever a client asks, concurrently with everything
//! else; so they must be `Send + Sync`, and they must be `'static`: DPDK's callback carries no
//! user pointer and DPDK 22.11 cannot unregister a command, so a provider cannot borrow anything
//! that may die first. Apps give them an `Arc` of a snapshot that their control thread updates.
//!
//! ## Soundness of the registry
//!
//! DPDK calls one `extern "C"` function ([`serve`]) for every command registered here, with the
//! command's name. It looks the name up in a process-wide map (a `static Mutex`) from name to an
//! `Arc` of the provider, clones the `Arc`, releases the lock and calls the provider. Dropping a
//! [`TelemetryCommand`] removes its provider from the map; DPDK still routes the name to
//! [`serve`], which then finds nothing and answers "no data". A call that cloned the `Arc`
//! before the drop finishes with its own reference, and the provider owns everything it reads
//! (`'static`), so nothing it touches can be freed under it. The help text is copied into a
//! `CString` that is leaked once per name (DPDK may keep the pointer), bounded by the number of
//! distinct names. A panic in a provider is caught before it reaches DPDK's thread.

use crate::error::{check, Error, Result};
use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, CStr};
use std::sync::{Arc, Mutex, MutexGuard};

/// DPDK's limits (`rte_telemetry.h`): names and strings in containers, dict and array sizes.
const MAX_STRING_LEN: usize = dpdk_sys::RTE_TEL_MAX_STRING_LEN as usize;
const MAX_SINGLE_STRING_LEN: usize = dpdk_sys::RTE_TEL_MAX_SINGLE_STRING_LEN as usize;
const MAX_DICT_ENTRIES: usize = dpdk_sys::RTE_TEL_MAX_DICT_ENTRIES as usize;
const MAX_ARRAY_ENTRIES: usize = dpdk_sys::RTE_TEL_MAX_ARRAY_ENTRIES as usize;

/// A telemetry answer, as DPDK 22.11 can encode it: a dict or an array at the top (or a plain
/// string), holding unsigned 64-bit and signed 32-bit integers and strings, and containers.
///
/// DPDK 22.11's nesting rules ([`TelValue::check`] enforces them): a dict may hold dicts and
/// arrays of scalars, to any depth; an array is all of one scalar kind, or, at the top only, all
/// arrays of scalars. An array cannot hold dicts (DPDK refuses them: key a list of records by
/// their id in a dict instead). Dict keys are made of ASCII letters, digits, `_` and `/`.
/// Strings inside containers are cut at 127 bytes by DPDK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TelValue {
    U64(u64),
    Int(i32),
    Str(String),
    /// Keys and values, in the order they are served.
    Dict(Vec<(String, TelValue)>),
    Array(Vec<TelValue>),
}

impl From<u64> for TelValue {
    fn from(v: u64) -> Self {
        TelValue::U64(v)
    }
}

impl From<i32> for TelValue {
    fn from(v: i32) -> Self {
        TelValue::Int(v)
    }
}

impl From<&str> for TelValue {
    fn from(v: &str) -> Self {
        TelValue::Str(v.to_owned())
    }
}

impl From<String> for TelValue {
    fn from(v: String) -> Self {
        TelValue::Str(v)
    }
}

/// The kind of an array's elements, which DPDK fixes when the array starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    U64,
    Int,
    Str,
    Container,
}

impl TelValue {
    /// A dict from `(key, value)` pairs.
    pub fn dict<K: Into<String>, V: Into<TelValue>>(
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        TelValue::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    fn kind(&self) -> Kind {
        match self {
            TelValue::U64(_) => Kind::U64,
            TelValue::Int(_) => Kind::Int,
            TelValue::Str(_) => Kind::Str,
            TelValue::Dict(_) | TelValue::Array(_) => Kind::Container,
        }
    }

    /// Whether DPDK 22.11 can take this value as a command's answer; why not, if it cannot.
    pub fn check(&self) -> Result<()> {
        self.check_at(true)
    }

    fn check_at(&self, top: bool) -> Result<()> {
        let invalid = |why: String| Err(Error::Invalid(format!("telemetry value: {why}")));
        match self {
            TelValue::U64(_) | TelValue::Int(_) if top => {
                invalid("a number cannot be a whole answer: put it in a dict".into())
            }
            TelValue::U64(_) | TelValue::Int(_) => Ok(()),
            TelValue::Str(s) => {
                let max = if top {
                    MAX_SINGLE_STRING_LEN
                } else {
                    MAX_STRING_LEN
                };
                if s.contains('\0') {
                    invalid(format!("string {s:?} holds a NUL byte"))
                } else if top && s.len() >= max {
                    invalid(format!("a {}-byte answer is over DPDK's {max}", s.len()))
                } else {
                    Ok(())
                }
            }
            TelValue::Dict(entries) => {
                if entries.len() > MAX_DICT_ENTRIES {
                    return invalid(format!(
                        "a dict of {} entries is over DPDK's {MAX_DICT_ENTRIES}",
                        entries.len()
                    ));
                }
                for (k, v) in entries {
                    let ok = !k.is_empty()
                        && k.len() < MAX_STRING_LEN
                        && k.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'/');
                    if !ok {
                        return invalid(format!(
                            "key {k:?}: DPDK takes 1 to {} letters, digits, '_' or '/'",
                            MAX_STRING_LEN - 1
                        ));
                    }
                    if let TelValue::Array(a) = v {
                        if a.first().is_some_and(|e| e.kind() == Kind::Container) {
                            return invalid(format!(
                                "key {k:?}: an array of containers can only be a whole answer"
                            ));
                        }
                    }
                    v.check_at(false)?;
                }
                Ok(())
            }
            TelValue::Array(items) => {
                if items.len() > MAX_ARRAY_ENTRIES {
                    return invalid(format!(
                        "an array of {} entries is over DPDK's {MAX_ARRAY_ENTRIES}",
                        items.len()
                    ));
                }
                let kind = items.first().map_or(Kind::U64, TelValue::kind);
                if kind == Kind::Container && !top {
                    return invalid("an array of containers can only be a whole answer".into());
                }
                for v in items {
                    if v.kind() != kind {
                        return invalid(format!(
                            "an array holds one kind of value: {:?} among {:?}",
                            v.kind(),
                            kind
                        ));
                    }
                    match v {
                        TelValue::Dict(_) => {
                            return invalid(
                                "an array cannot hold dicts in DPDK 22.11: key them in a dict"
                                    .into(),
                            )
                        }
                        TelValue::Array(inner)
                            if inner.first().is_some_and(|e| e.kind() == Kind::Container) =>
                        {
                            return invalid(
                                "an array of containers cannot be inside another container".into(),
                            );
                        }
                        _ => {}
                    }
                    v.check_at(false)?;
                }
                Ok(())
            }
        }
    }
}

/// A provider: the answer to a command, given its parameters (the text after the first `,`
/// of the request, empty when none).
type Provider = dyn Fn(&str) -> Option<TelValue> + Send + Sync + 'static;

/// Every name registered with DPDK by this process, and its provider while its
/// [`TelemetryCommand`] lives (`None` after: DPDK cannot forget a name).
static REGISTRY: Mutex<BTreeMap<String, Option<Arc<Provider>>>> = Mutex::new(BTreeMap::new());

fn registry() -> MutexGuard<'static, BTreeMap<String, Option<Arc<Provider>>>> {
    // A panic while the lock was held left the map itself intact (every update is one insert).
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A command served on DPDK's telemetry socket while this handle lives. Dropping it withdraws
/// the provider: the command then answers `null` (DPDK 22.11 keeps the name in its list).
#[derive(Debug)]
pub struct TelemetryCommand {
    name: String,
}

impl TelemetryCommand {
    /// Serves `name` (`/app/what`: `/` then letters, digits, `_` and `/`, under 56 bytes) with
    /// `provider`, described by `help` (under 128 bytes) in DPDK's `/help`. Works before and
    /// after `rte_eal_init`; with `--no-telemetry` nothing asks. Fails if this process serves
    /// `name` already, or DPDK refuses it.
    pub fn register(
        name: &str,
        help: &str,
        provider: impl Fn(&str) -> Option<TelValue> + Send + Sync + 'static,
    ) -> Result<Self> {
        let mut reg = registry();
        match reg.get(name) {
            Some(Some(_)) => {
                return Err(Error::Invalid(format!(
                    "telemetry command {name} is served already"
                )))
            }
            Some(None) => {}
            None => {
                let c_name = crate::eal::cstr(name)?;
                // Leaked on purpose: DPDK may keep the help pointer for the process's life.
                let c_help: &'static CStr = Box::leak(crate::eal::cstr(help)?.into_boxed_c_str());
                // SAFETY: both strings are NUL-terminated; DPDK copies the name and keeps at most
                // the help pointer, which is never freed; `serve` is valid for any command.
                check("rte_telemetry_register_cmd", unsafe {
                    dpdk_sys::rte_telemetry_register_cmd(
                        c_name.as_ptr(),
                        Some(serve),
                        c_help.as_ptr(),
                    )
                })?;
            }
        }
        reg.insert(name.to_owned(), Some(Arc::new(provider)));
        Ok(TelemetryCommand {
            name: name.to_owned(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The answer to `name` with `params`, as the socket serves it: `None` when no provider is
    /// registered, it has no data, or it panicked. For tests, and for serving the same data
    /// elsewhere.
    pub fn answer(name: &str, params: &str) -> Option<TelValue> {
        let provider = registry().get(name).cloned().flatten()?;
        // The lock is released: a slow provider holds up no other command, and may register.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| provider(params)))
            .ok()
            .flatten()
    }
}

impl Drop for TelemetryCommand {
    fn drop(&mut self) {
        if let Some(p) = registry().get_mut(&self.name) {
            *p = None;
        }
    }
}

/// DPDK's callback for every command registered here (see the module's soundness notes).
unsafe extern "C" fn serve(
    cmd: *const c_char,
    params: *const c_char,
    d: *mut dpdk_sys::rte_tel_data,
) -> c_int {
    if cmd.is_null() || d.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: DPDK passes NUL-terminated strings (or NULL params) valid for this call.
    let (cmd, params) = unsafe {
        (
            CStr::from_ptr(cmd).to_string_lossy(),
            if params.is_null() {
                Default::default()
            } else {
                CStr::from_ptr(params).to_string_lossy()
            },
        )
    };
    let Some(v) = TelemetryCommand::answer(&cmd, &params) else {
        return -libc::ENODATA;
    };
    if v.check().is_err() {
        return -libc::EINVAL;
    }
    // SAFETY: `d` is the fresh data DPDK passed to this callback, filled by nothing else.
    match unsafe { fill(d, &v) } {
        Ok(()) => 0,
        Err(_) => -libc::EINVAL,
    }
}

/// A negative return of a `rte_tel_data_*` call as an error (a positive `E2BIG` only says a
/// string was cut).
fn ok(call: &'static str, ret: c_int) -> Result<()> {
    check(call, ret).map(|_| ())
}

/// Writes `v` (which passed [`TelValue::check`]) into `d`.
///
/// # Safety
///
/// `d` must point to a `rte_tel_data` that is fresh (as DPDK passes to a callback, or from
/// `rte_tel_data_alloc`) and that nothing else touches during the call.
unsafe fn fill(d: *mut dpdk_sys::rte_tel_data, v: &TelValue) -> Result<()> {
    use crate::eal::cstr;
    use dpdk_sys as sys;
    match v {
        TelValue::Str(s) => {
            let s = cstr(s)?;
            // SAFETY: `d` is valid (contract); DPDK copies the string.
            ok("rte_tel_data_string", unsafe {
                sys::rte_tel_data_string(d, s.as_ptr())
            })
        }
        TelValue::U64(_) | TelValue::Int(_) => Err(Error::Invalid(
            "telemetry value: a number cannot be a whole answer".into(),
        )),
        TelValue::Dict(entries) => {
            // SAFETY: `d` is valid (contract).
            ok("rte_tel_data_start_dict", unsafe {
                sys::rte_tel_data_start_dict(d)
            })?;
            for (k, v) in entries {
                let k = cstr(k)?;
                let (call, ret) = match v {
                    TelValue::U64(x) => (
                        "rte_tel_data_add_dict_u64",
                        // SAFETY: `d` is a started dict; DPDK copies the key.
                        unsafe { sys::rte_tel_data_add_dict_u64(d, k.as_ptr(), *x) },
                    ),
                    TelValue::Int(x) => (
                        "rte_tel_data_add_dict_int",
                        // SAFETY: `d` is a started dict; DPDK copies the key.
                        unsafe { sys::rte_tel_data_add_dict_int(d, k.as_ptr(), *x) },
                    ),
                    TelValue::Str(s) => {
                        let s = cstr(s)?;
                        (
                            "rte_tel_data_add_dict_string",
                            // SAFETY: `d` is a started dict; DPDK copies the key and the string.
                            unsafe { sys::rte_tel_data_add_dict_string(d, k.as_ptr(), s.as_ptr()) },
                        )
                    }
                    TelValue::Dict(_) | TelValue::Array(_) => {
                        let c = container(v)?;
                        // SAFETY: `d` is a started dict, `c` a filled container; with keep = 0
                        // DPDK frees it once encoded: on success it is DPDK's, on failure ours.
                        let ret =
                            unsafe { sys::rte_tel_data_add_dict_container(d, k.as_ptr(), c, 0) };
                        if ret < 0 {
                            // SAFETY: DPDK did not take it (the call failed); freed once.
                            unsafe { sys::rte_tel_data_free(c) };
                        }
                        ("rte_tel_data_add_dict_container", ret)
                    }
                };
                ok(call, ret)?;
            }
            Ok(())
        }
        TelValue::Array(items) => {
            let ty = match items.first().map_or(Kind::U64, TelValue::kind) {
                Kind::U64 => sys::RTE_TEL_U64_VAL,
                Kind::Int => sys::RTE_TEL_INT_VAL,
                Kind::Str => sys::RTE_TEL_STRING_VAL,
                Kind::Container => sys::RTE_TEL_CONTAINER,
            };
            // SAFETY: `d` is valid (contract).
            ok("rte_tel_data_start_array", unsafe {
                sys::rte_tel_data_start_array(d, ty)
            })?;
            for v in items {
                let (call, ret) = match v {
                    TelValue::U64(x) => (
                        "rte_tel_data_add_array_u64",
                        // SAFETY: `d` is an array of u64 (checked: one kind per array).
                        unsafe { sys::rte_tel_data_add_array_u64(d, *x) },
                    ),
                    TelValue::Int(x) => (
                        "rte_tel_data_add_array_int",
                        // SAFETY: `d` is an array of int (checked: one kind per array).
                        unsafe { sys::rte_tel_data_add_array_int(d, *x) },
                    ),
                    TelValue::Str(s) => {
                        let s = cstr(s)?;
                        (
                            "rte_tel_data_add_array_string",
                            // SAFETY: `d` is an array of strings; DPDK copies the string.
                            unsafe { sys::rte_tel_data_add_array_string(d, s.as_ptr()) },
                        )
                    }
                    TelValue::Dict(_) | TelValue::Array(_) => {
                        let c = container(v)?;
                        // SAFETY: `d` is an array of containers, `c` a filled container, taken
                        // by DPDK on success (keep = 0), as for a dict's above.
                        let ret = unsafe { sys::rte_tel_data_add_array_container(d, c, 0) };
                        if ret < 0 {
                            // SAFETY: DPDK did not take it (the call failed); freed once.
                            unsafe { sys::rte_tel_data_free(c) };
                        }
                        ("rte_tel_data_add_array_container", ret)
                    }
                };
                ok(call, ret)?;
            }
            Ok(())
        }
    }
}

/// A freshly allocated container holding `v`; the caller hands it to DPDK or frees it.
fn container(v: &TelValue) -> Result<*mut dpdk_sys::rte_tel_data> {
    // SAFETY: no preconditions; NULL on allocation failure.
    let c = unsafe { dpdk_sys::rte_tel_data_alloc() };
    if c.is_null() {
        return Err(Error::Invalid("rte_tel_data_alloc: out of memory".into()));
    }
    // SAFETY: `c` was just allocated and is used by nothing else.
    if let Err(e) = unsafe { fill(c, v) } {
        // SAFETY: still ours (never handed to DPDK); its own containers that DPDK took are
        // leaked, which only an invalid value that passed `check` could cause.
        unsafe { dpdk_sys::rte_tel_data_free(c) };
        return Err(e);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcore(n: u64) -> TelValue {
        TelValue::dict([("lcore", n), ("rx_packets", 10 * n)])
    }

    #[test]
    fn values_dpdk_can_encode_pass_the_check() {
        let stats = TelValue::Dict(vec![
            ("rx_packets".into(), 5u64.into()),
            ("name".into(), "net_null0".into()),
            ("delta".into(), TelValue::Int(-3)),
            ("dropped".into(), TelValue::dict([("tx_full", 1u64)])),
            ("ports".into(), TelValue::Dict(vec![("0".into(), lcore(1))])),
            (
                "ids".into(),
                TelValue::Array(vec![1u64.into(), 2u64.into()]),
            ),
        ]);
        stats.check().unwrap();
        let ids = |n| TelValue::Array(vec![TelValue::U64(n)]);
        TelValue::Array(vec![ids(1), ids(2)]).check().unwrap();
        TelValue::Array(vec![]).check().unwrap();
        TelValue::Str("hello".into()).check().unwrap();
    }

    #[test]
    fn values_dpdk_cannot_encode_are_refused_saying_why() {
        let refused = |v: TelValue, why: &str| {
            let e = v.check().unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        };
        refused(TelValue::U64(1), "put it in a dict");
        refused(TelValue::dict([("rx packets", 1u64)]), "key \"rx packets\"");
        refused(TelValue::dict([("", 1u64)]), "key \"\"");
        refused(
            TelValue::Array(vec![1u64.into(), "x".into()]),
            "one kind of value",
        );
        refused(
            TelValue::Dict(vec![("lcores".into(), TelValue::Array(vec![lcore(1)]))]),
            "only be a whole answer",
        );
        refused(TelValue::Array(vec![lcore(1)]), "cannot hold dicts");
        refused(
            TelValue::Array(vec![TelValue::Array(vec![TelValue::Array(vec![])])]),
            "inside another container",
        );
        refused(
            TelValue::Array((0..=MAX_ARRAY_ENTRIES as u64).map(TelValue::U64).collect()),
            "over DPDK's 512",
        );
        refused(TelValue::dict([("s", "a\0b")]), "NUL");
    }

    #[test]
    fn a_dropped_command_answers_nothing_and_its_name_can_be_served_again() {
        let name = "/pmd_test/answer";
        let data = Arc::new(Mutex::new(7u64));
        let d = Arc::clone(&data);
        let cmd = TelemetryCommand::register(name, "test", move |p| {
            Some(TelValue::dict([
                ("value", TelValue::U64(*d.lock().unwrap())),
                ("params", p.into()),
            ]))
        })
        .unwrap();
        assert_eq!(cmd.name(), name);
        assert_eq!(
            TelemetryCommand::answer(name, "x"),
            Some(TelValue::dict([
                ("value", TelValue::U64(7)),
                ("params", "x".into())
            ]))
        );
        // One provider per name at a time.
        assert!(TelemetryCommand::register(name, "test", |_| None).is_err());
        drop(cmd);
        assert_eq!(TelemetryCommand::answer(name, ""), None);
        let again = TelemetryCommand::register(name, "test", |_| panic!("provider bug")).unwrap();
        // A panicking provider is no data, not an unwind into DPDK.
        assert_eq!(TelemetryCommand::answer(name, ""), None);
        drop(again);
        assert_eq!(TelemetryCommand::answer("/pmd_test/never", ""), None);
    }

    #[test]
    fn filling_dpdk_data_succeeds_for_every_checked_shape() {
        for v in [
            TelValue::Array(vec![TelValue::Array(vec![TelValue::U64(1)])]),
            TelValue::Dict(vec![
                ("a".into(), 1u64.into()),
                ("b".into(), TelValue::Dict(vec![("c".into(), lcore(3))])),
                ("d".into(), TelValue::Array(vec!["x".into(), "y".into()])),
            ]),
            TelValue::Array(vec![TelValue::Int(-1)]),
            TelValue::Str("s".into()),
        ] {
            v.check().unwrap();
            let c = container(&v).unwrap_or_else(|e| panic!("{v:?}: {e}"));
            // SAFETY: allocated above and never handed to DPDK (its inner containers leak:
            // DPDK frees those only when it encodes the answer).
            unsafe { dpdk_sys::rte_tel_data_free(c) };
        }
    }
}
