#!/usr/bin/env bash
# Benchmark: our l2fwd against DPDK's own l2fwd example on the same net_null pair and the same
# single forwarding lcore, alternating, ROUNDS rounds of SECONDS each. Prints each run's Mpps
# and the median ratio (ours / DPDK). Usage: apps/scripts/bench-l2fwd.sh [ROUNDS] [SECONDS]
#
# Rate = median of the per-second differences of "Total packets sent" (both apps print it every
# second with -T 1), skipping the first second (warm-up).
set -euo pipefail
cd "$(dirname "$0")/../.."
. apps/scripts/bench-lib.sh
ROUNDS=${1:-3}
SECONDS_PER_RUN=${2:-6}
OUT=bench-out
mkdir -p "$OUT"

cargo build --release -q
ours=./target/release/l2fwd

# DPDK's l2fwd, built from the dpdk-doc package's examples.
peer=$(build_example l2fwd l2fwd)

# Same EAL setup for both: two net_null ports, no hugepages, forwarding on CPU 1 alone.
eal=(--no-huge --no-pci -m 512 --vdev=net_null0 --vdev=net_null1 --log-level=warning)

# Median per-second rate (Mpps) of a log, first second skipped.
rate() { rates_from_totals "$1" | median_skip1; }

: > "$OUT/l2fwd-ratios.txt"
printf "%-6s %12s %12s %8s\n" round "ours Mpps" "dpdk Mpps" ratio
for r in $(seq 1 "$ROUNDS"); do
    # Ours: the main lcore prints stats, lcore 1 forwards both ports.
    "$ours" -l 0-1 "${eal[@]}" --file-prefix=bench-ours -- -p 0x3 -T 1 --duration "$SECONDS_PER_RUN" \
        > "$OUT/ours-$r.txt" 2>&1
    o=$(rate "$OUT/ours-$r.txt")
    # DPDK's: -l 1 -q 2 puts both ports on its one lcore (CPU 1), which also runs its stats timer.
    timeout -s INT "$SECONDS_PER_RUN" "$peer" -l 1 "${eal[@]}" --file-prefix=bench-dpdk -- -p 0x3 -T 1 -q 2 \
        > "$OUT/dpdk-$r.txt" 2>&1 || true
    d=$(rate "$OUT/dpdk-$r.txt")
    ratio=$(awk -v a="$o" -v b="$d" 'BEGIN { printf "%.3f", a / b }')
    echo "$ratio" >> "$OUT/l2fwd-ratios.txt"
    printf "%-6s %12s %12s %8s\n" "$r" "$o" "$d" "$ratio"
done
echo "median ratio (ours / DPDK l2fwd): $(median < "$OUT/l2fwd-ratios.txt")"
