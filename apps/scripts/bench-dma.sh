#!/usr/bin/env bash
# Benchmark: our l2fwd's copy offload against DPDK's dmafwd example, side by side on the same
# vdevs (a net_null pair with frames of SIZE bytes, two dma_skeleton devices whose copy threads
# run on CPU 0) and one forwarding core each on CPU 1 (dmafwd -l 0-1 forwards on lcore 1, its
# main lcore 0 prints stats; ours -l 1, its control thread on CPU 0), alternating, ROUNDS rounds:
#   ours --copy dma  vs  dmafwd -c hw
#   ours --copy cpu  vs  dmafwd -c sw
#   ours --copy auto vs  the better of the two dmafwd runs
# Usage: apps/scripts/bench-dma.sh [ROUNDS] [SECONDS] [SIZES]   (default 3 6 "64 1500")
# Rate = median of the per-second TX rates, first second skipped.
# L2FWD=PATH runs that l2fwd binary instead of building and running target/release/l2fwd (to
# compare two builds of ours, alternating, against the same peer).
set -euo pipefail
cd "$(dirname "$0")/../.."
. apps/scripts/bench-lib.sh
ROUNDS=${1:-3}
SECS=${2:-6}
SIZES=${3:-"64 1500"}
OUT=${BENCH_OUT:-bench-out}
mkdir -p "$OUT"

if [ -z "${L2FWD:-}" ]; then
    cargo build --release -q
fi
ours=${L2FWD:-./target/release/l2fwd}
peer=$(build_example dma dmafwd)

eal() { echo "-l 0-1 --no-huge --no-pci -m 1024 --log-level=warning --vdev=net_null0,size=$1 --vdev=net_null1,size=$1 --vdev=dma_skeleton0,lcore=0 --vdev=dma_skeleton1,lcore=0"; }

ours_rate() { { rates_from_totals "$1" || true; } | median_skip1; }
# dmafwd prints "Total packets Tx: N [pkt/s]" every second.
peer_rate() { { grep -a "Total packets Tx:" "$1" || true; } | awk '{ printf "%.6f\n", $4 / 1e6 }' | median_skip1; }
# A run that printed no rate (on a loaded machine a peer may not reach its first stats line
# before its time is up) gives no ratio ("-") and is left out of the medians.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.3f", a / b }'; }
record() { [ "$1" = "-" ] || echo "$1" >> "$2"; }
med() { if [ -s "$1" ]; then median < "$1"; else echo "-"; fi; }

run_ours() { # size mode tag
    # shellcheck disable=SC2046
    # One forwarding lcore, as dmafwd's: every lcore of ours forwards, so -l 1.
    "$ours" $(eal "$1" | sed 's/^-l 0-1 /-l 1 /') --file-prefix=bench-ours -- -p 0x3 -T 1 --duration "$SECS" --copy "$2" \
        > "$OUT/ours-$3.txt" 2>&1
    ours_rate "$OUT/ours-$3.txt"
}
run_peer() { # size mode tag
    # shellcheck disable=SC2046
    timeout -s INT "$SECS" "$peer" $(eal "$1") --file-prefix=bench-peer -- -p 0x3 -q 1 -c "$2" -i 1 \
        > "$OUT/peer-$3.txt" 2>&1 || true
    peer_rate "$OUT/peer-$3.txt"
}

printf "%-5s %-6s %10s %10s %10s %10s %10s  %8s %8s %8s\n" size round "ours dma" "dmafwd hw" "ours cpu" "dmafwd sw" "ours auto" "dma/hw" "cpu/sw" "auto/best"
for size in $SIZES; do
    : > "$OUT/r-dma-$size"; : > "$OUT/r-cpu-$size"; : > "$OUT/r-auto-$size"
    for r in $(seq 1 "$ROUNDS"); do
        od=$(run_ours "$size" dma "dma-$size-$r")
        ph=$(run_peer "$size" hw "hw-$size-$r")
        oc=$(run_ours "$size" cpu "cpu-$size-$r")
        ps=$(run_peer "$size" sw "sw-$size-$r")
        oa=$(run_ours "$size" auto "auto-$size-$r")
        best=$(awk -v a="$ph" -v b="$ps" 'BEGIN { print (a + 0 > b + 0) ? a : b }')
        rd=$(ratio "$od" "$ph"); rc=$(ratio "$oc" "$ps"); ra=$(ratio "$oa" "$best")
        record "$rd" "$OUT/r-dma-$size"; record "$rc" "$OUT/r-cpu-$size"; record "$ra" "$OUT/r-auto-$size"
        printf "%-5s %-6s %10s %10s %10s %10s %10s  %8s %8s %8s\n" "$size" "$r" "$od" "$ph" "$oc" "$ps" "$oa" "$rd" "$rc" "$ra"
    done
    printf "%-5s %-6s %54s  %8s %8s %8s\n" "$size" median "" "$(med "$OUT/r-dma-$size")" "$(med "$OUT/r-cpu-$size")" "$(med "$OUT/r-auto-$size")"
done
