#!/usr/bin/env bash
# The README's second command: the whole test suite (unit, integration on DPDK vdevs, lints).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
cargo test --release --workspace
