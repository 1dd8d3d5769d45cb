#!/usr/bin/env bash
# The README's second command: the whole test suite (unit, integration on DPDK vdevs and veth
# pairs, the loom model of the hot-remove protocol, lints).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
# The drills drive other apps' binaries (pktgen, dpctl); build every binary first, so a clean
# checkout does not depend on which packages' integration tests Cargo happens to build.
cargo build --release --workspace --bins
cargo test --release --workspace
# The loom model checks the QSBR protocol under every interleaving; it needs its own build
# (cfg(loom) swaps the atomics), kept in its own target directory.
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release -p dataplane --test loom_qsbr
