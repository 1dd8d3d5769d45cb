//! The worker loops, as compiled, hold no atomic read-modify-write and no fence: no
//! `lock`-prefixed instruction, no `xchg` with a memory operand (implicitly locked), no
//! `mfence`. Checked on the l2fwd binary with objdump: the loop functions and every function of
//! ours they call on the per-packet path. The hot-plug paths they call (marked `#[cold]`:
//! re-assignment, handing lanes back, retiring a stalled lane) run once per hot-remove, not per
//! packet, and are listed below as such. DPDK's fast path is compiled into them from `pmd`'s
//! Rust version of its static-inline functions (rx/tx burst, mempool cache get/put, mbuf
//! reset and free, the dmadev calls), so it is inside the check; the functions it reaches
//! through DPDK's tables (the drivers' burst functions, the mempool driver's ring) and the
//! shim's `rte_pktmbuf_free` for the rare mbuf that is not plain are DPDK's own and outside it.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const L2FWD: &str = env!("CARGO_BIN_EXE_l2fwd");

/// Entry points: the worker loops.
const LOOPS: [&str; 2] = [
    "dataplane::fwd::CopyWorker::run",
    "dataplane::fwd::Worker::run",
];

/// Functions the loops call only on hot-plug or stall events, never per packet.
const COLD: [&str; 4] = [
    "dataplane::fwd::CopyWorker::reassign",
    "dataplane::fwd::CopyWorker::hand_back_drained",
    "dataplane::fwd::CopyWorker::retire_stalled",
    "dataplane::fwd::drop_runts",
];

/// Function name -> its instructions, from `objdump -d -C`.
fn functions() -> BTreeMap<String, Vec<String>> {
    let out = Command::new("objdump")
        .args(["-d", "-C", "--no-show-raw-insn", L2FWD])
        .output()
        .expect("objdump (binutils) is needed for this test: apps/scripts/deps.sh installs it");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut funcs = BTreeMap::new();
    let mut cur: Option<(String, Vec<String>)> = None;
    for line in text.lines() {
        if let Some(name) = line
            .strip_suffix(">:")
            .and_then(|l| l.split_once(" <"))
            .map(|p| p.1)
        {
            if let Some((n, body)) = cur.take() {
                funcs.insert(n, body);
            }
            cur = Some((name.to_owned(), Vec::new()));
        } else if let Some((_, body)) = cur.as_mut() {
            if let Some((_, insn)) = line.split_once(":\t") {
                body.push(insn.trim().to_owned());
            }
        }
    }
    if let Some((n, body)) = cur {
        funcs.insert(n, body);
    }
    funcs
}

fn is_ours(name: &str) -> bool {
    name.starts_with("dataplane::") || name.starts_with("pmd::")
}

/// Direct call targets of a function's instructions.
fn callees(body: &[String]) -> Vec<String> {
    body.iter()
        .filter(|i| i.starts_with("call") || i.starts_with("jmp"))
        .filter_map(|i| {
            i.split_once('<')
                .map(|p| p.1.trim_end_matches('>').to_owned())
        })
        .map(|t| t.split('+').next().unwrap_or(&t).to_owned())
        .collect()
}

fn forbidden(insn: &str) -> bool {
    let mnemonic = insn.split_whitespace().next().unwrap_or("");
    mnemonic == "lock"
        || insn.starts_with("lock ")
        || mnemonic == "mfence"
        || (mnemonic.starts_with("xchg") && insn.contains('('))
}

#[test]
fn worker_loops_have_no_locked_instruction_and_no_fence() {
    let funcs = functions();
    let mut todo: Vec<String> = LOOPS.iter().map(|s| s.to_string()).collect();
    for l in LOOPS {
        assert!(
            funcs.contains_key(l),
            "{l} not found in {L2FWD}: was it inlined?"
        );
    }
    let mut seen = BTreeSet::new();
    let mut bad = Vec::new();
    while let Some(f) = todo.pop() {
        if !seen.insert(f.clone()) {
            continue;
        }
        let Some(body) = funcs.get(&f) else { continue };
        for insn in body.iter().filter(|i| forbidden(i)) {
            bad.push(format!("{f}: {insn}"));
        }
        for c in callees(body) {
            if is_ours(&c) && !COLD.contains(&c.as_str()) && c != f {
                todo.push(c);
            }
        }
    }
    assert!(seen.len() >= LOOPS.len());
    assert!(
        bad.is_empty(),
        "atomic RMW or fence on the fast path:\n{}",
        bad.join("\n")
    );
    eprintln!("checked: {seen:?}");
}

#[test]
fn the_check_finds_what_it_looks_for() {
    // The same scan flags the atomic RMW that a reference count would compile to.
    assert!(forbidden("lock xadd %rax,(%rdi)"));
    assert!(forbidden("lock cmpxchg %rcx,0x8(%rbx)"));
    assert!(forbidden("xchg   %rax,(%rdx)"));
    assert!(forbidden("mfence"));
    assert!(!forbidden("xchg   %ax,%ax"));
    assert!(!forbidden("mov    %rax,(%rdi)"));
    // And a function of ours with a locked instruction exists in the binary (the control
    // path's queue), so the scan does see such instructions where they are.
    let funcs = functions();
    let locked = funcs
        .iter()
        .filter(|(n, _)| is_ours(n) || n.contains("crossbeam"))
        .any(|(_, b)| b.iter().any(|i| forbidden(i)));
    assert!(
        locked,
        "expected some control-path function with a locked instruction"
    );
}
