#!/usr/bin/env bash
# Benchmark: pktgen's transmit rate on one core against `dpdk-testpmd --forward-mode=txonly` on
# the same core and the same vdev (a net_null port), alternating, ROUNDS rounds of SECONDS each,
# for each frame SIZE.
#
#   ours  pktgen --lcores '0@0,1@1,2@0': TX on lcore 1 (CPU 1), RX on lcore 2 and the main lcore
#         (stats) on CPU 0; --rate max, one flow
#   peer  dpdk-testpmd -l 0-1: its one forwarding core on lcore 1 (CPU 1), txonly, --txpkts=SIZE-4
#         (testpmd's sizes exclude the FCS; pktgen's include it)
#
# Then the two-core scaling at 64 bytes: each tool with two TX queues on two TX lcores (CPUs 0
# and 1) against itself with one, alternating, ROUNDS rounds:
#
#   ours  pktgen --lcores '0@0,1@0,2@1,3@0' --txq 2 --tx-lcores 1,2 --rx-lcores 3 --flows 2
#         (each TX queue owns a flow; its one-core run sends the same two flows)
#   peer  dpdk-testpmd --lcores '0@0,1@0,2@1' --nb-cores=2 --txq=2 --rxq=2
#
# On a two-CPU box the RX side (and the main lcore) shares CPU 0 with a TX lcore, so this
# shows how far the sending scales when one of its cores is shared; on a lab server give each
# its own CPU (LCORES2 and TESTPMD_LCORES2 override the maps). SCALING=0 skips it.
#
# Then what one RX core costs per frame against what one TX core does, in the same run: a
# net_ring loopback at --rate max, 64 bytes, TX on CPU 1 and RX on CPU 0, for each flow count
# in RX_FLOWS (default "1 256"), ROUNDS runs each; pktgen's "lcore time per frame" line gives
# both sides' time per frame (TSC cycles of their busy loops over the frames they moved, in
# ns). RXTX=0 skips it.
#
# Usage: apps/scripts/bench-pktgen.sh [ROUNDS] [SECONDS] [SIZES]   (default 3 5 "64 1518")
# Rate = median of the per-second TX rates, first second skipped; ratio = ours / testpmd.
# PKTGEN=PATH runs that pktgen binary instead of building target/release/pktgen.
set -euo pipefail
cd "$(dirname "$0")/../.."
. apps/scripts/bench-lib.sh
ROUNDS=${1:-3}
SECS=${2:-5}
SIZES=${3:-"64 1518"}
OUT=${BENCH_OUT:-bench-out}
mkdir -p "$OUT"

if [ -z "${PKTGEN:-}" ]; then
    cargo build --release -q -p pktgen
fi
ours=${PKTGEN:-./target/release/pktgen}
command -v dpdk-testpmd >/dev/null || { echo "dpdk-testpmd not found: run apps/scripts/deps.sh" >&2; exit 1; }

eal=(--no-huge --no-pci -m 512 --log-level=warning --vdev=net_null0)

# pktgen's stats lines: "[   1.0s] tx   8300096 (...": per-second differences of the count.
ours_rate() { { grep -a '^\[.*s\] tx' "$1" || true; } | sed -E 's/^[^]]*\] tx +([0-9]+).*/\1/' | awk '{ if (NR > 1) printf "%.6f\n", ($1 - p) / 1e6; p = $1 }' | median_skip1; }
# testpmd's "Tx-pps: N" every second (--stats-period 1); its first is the zero before the start.
peer_rate() { { grep -a "Tx-pps:" "$1" || true; } | awk '$2 > 0 { printf "%.6f\n", $2 / 1e6 }' | median_skip1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.3f", a / b }'; }

printf "%-5s %-6s %12s %14s %8s\n" size round "pktgen Mpps" "testpmd Mpps" ratio
for size in $SIZES; do
    : > "$OUT/pktgen-ratio-$size"
    for r in $(seq 1 "$ROUNDS"); do
        # A run that fails its pass criteria (nothing comes back on net_null) exits 2: the rate
        # is what is wanted here.
        "$ours" --lcores '0@0,1@1,2@0' "${eal[@]}" --file-prefix=bench-pktgen -- \
            --rate max --size "$size" --duration "$SECS" -T 1 --max-loss 100% \
            > "$OUT/pktgen-$size-$r.txt" 2>&1 || true
        timeout -s INT "$((SECS + 1))" dpdk-testpmd -l 0-1 "${eal[@]}" --file-prefix=bench-testpmd -- \
            --forward-mode=txonly --txpkts="$((size - 4))" --nb-cores=1 --stats-period 1 \
            --total-num-mbufs=8192 < /dev/null > "$OUT/testpmd-$size-$r.txt" 2>&1 || true
        o=$(ours_rate "$OUT/pktgen-$size-$r.txt"); p=$(peer_rate "$OUT/testpmd-$size-$r.txt"); x=$(ratio "$o" "$p")
        [ "$x" = "-" ] || echo "$x" >> "$OUT/pktgen-ratio-$size"
        printf "%-5s %-6s %12s %14s %8s\n" "$size" "$r" "$o" "$p" "$x"
    done
    m=$( [ -s "$OUT/pktgen-ratio-$size" ] && median < "$OUT/pktgen-ratio-$size" || echo - )
    echo "median ratio, $size bytes, one TX core each (pktgen / testpmd txonly): $m"
done

rx_tx() {
    [ "${RXTX:-1}" = 0 ] && return 0
    printf "\n%-6s %-6s %10s %10s %8s %10s\n" flows round "tx ns" "rx ns" "rx/tx" lost
    for flows in ${RX_FLOWS:-1 256}; do
        : > "$OUT/rxtx-$flows"
        for r in $(seq 1 "$ROUNDS"); do
            f="$OUT/rxtx-$flows-$r.txt"
            "$ours" --lcores '0@0,1@1,2@0' --no-huge --no-pci -m 512 --log-level=warning \
                --vdev=net_ring0 --file-prefix=bench-pktgen -- \
                --rate max --size 64 --flows "$flows" --duration "$SECS" -T 0 > "$f" 2>&1 || true
            # "lcore time per frame (busy loops): tx 31.2 ns (...), rx 40.8 ns (...)"
            c=$({ grep -a '^lcore time per frame' "$f" || true; } | sed -E 's/.* tx ([0-9.]+) ns.* rx ([0-9.]+) ns.*/\1 \2/')
            t=${c% *}; x=${c#* }; lost=$({ grep -a '^ total' "$f" || true; } | awk '{ print $4 }')
            q=$(ratio "$x" "$t"); [ -z "$c" ] && { t=-; x=-; q=-; }
            [ "$q" = "-" ] || echo "$q" >> "$OUT/rxtx-$flows"
            printf "%-6s %-6s %10s %10s %8s %10s\n" "$flows" "$r" "$t" "$x" "$q" "${lost:--}"
        done
        m=$( [ -s "$OUT/rxtx-$flows" ] && median < "$OUT/rxtx-$flows" || echo - )
        echo "median RX / TX lcore time per frame, 64 bytes, $flows flow(s): $m"
    done
}

if [ "${SCALING:-1}" = 0 ]; then
    rx_tx
    exit 0
fi
LCORES2=${LCORES2:-0@0,1@0,2@1,3@0}
TESTPMD_LCORES2=${TESTPMD_LCORES2:-0@0,1@0,2@1}
printf "\n%-6s %16s %16s %16s %16s\n" round "pktgen 1 core" "pktgen 2 cores" "testpmd 1 core" "testpmd 2 cores"
: > "$OUT/scale-ours"; : > "$OUT/scale-peer"
for r in $(seq 1 "$ROUNDS"); do
    "$ours" --lcores '0@0,1@1,2@0' "${eal[@]}" --file-prefix=bench-pktgen -- \
        --flows 2 --rate max --size 64 --duration "$SECS" -T 1 --max-loss 100% > "$OUT/scale-pktgen1-$r.txt" 2>&1 || true
    "$ours" --lcores "$LCORES2" "${eal[@]}" --file-prefix=bench-pktgen -- \
        --txq 2 --tx-lcores 1,2 --rx-lcores 3 --flows 2 \
        --rate max --size 64 --duration "$SECS" -T 1 --max-loss 100% > "$OUT/scale-pktgen2-$r.txt" 2>&1 || true
    timeout -s INT "$((SECS + 1))" dpdk-testpmd -l 0-1 "${eal[@]}" --file-prefix=bench-testpmd -- \
        --forward-mode=txonly --txpkts=60 --nb-cores=1 --stats-period 1 \
        --total-num-mbufs=8192 < /dev/null > "$OUT/scale-testpmd1-$r.txt" 2>&1 || true
    timeout -s INT "$((SECS + 1))" dpdk-testpmd --lcores "$TESTPMD_LCORES2" "${eal[@]}" --file-prefix=bench-testpmd -- \
        --forward-mode=txonly --txpkts=60 --nb-cores=2 --txq=2 --rxq=2 --stats-period 1 \
        --total-num-mbufs=16384 < /dev/null > "$OUT/scale-testpmd2-$r.txt" 2>&1 || true
    o1=$(ours_rate "$OUT/scale-pktgen1-$r.txt"); o2=$(ours_rate "$OUT/scale-pktgen2-$r.txt")
    p1=$(peer_rate "$OUT/scale-testpmd1-$r.txt"); p2=$(peer_rate "$OUT/scale-testpmd2-$r.txt")
    x=$(ratio "$o2" "$o1"); [ "$x" = "-" ] || echo "$x" >> "$OUT/scale-ours"
    x=$(ratio "$p2" "$p1"); [ "$x" = "-" ] || echo "$x" >> "$OUT/scale-peer"
    printf "%-6s %16s %16s %16s %16s\n" "$r" "$o1" "$o2" "$p1" "$p2"
done
so=$( [ -s "$OUT/scale-ours" ] && median < "$OUT/scale-ours" || echo - )
sp=$( [ -s "$OUT/scale-peer" ] && median < "$OUT/scale-peer" || echo - )
echo "median two-core scaling, 64 bytes (2 TX cores / 1): pktgen $so, testpmd txonly $sp"
rx_tx
