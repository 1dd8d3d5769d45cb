#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run the l2fwd demo on a
# net_null pair for a few seconds with stats on screen.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash apps/scripts/deps.sh
command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs) first" >&2; exit 1; }
cargo build --release
./target/release/l2fwd --config configs/l2fwd-vdev.toml --duration "${DEMO_SECONDS:-5}"
