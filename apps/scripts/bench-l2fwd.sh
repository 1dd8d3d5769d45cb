#!/usr/bin/env bash
# Benchmark: our l2fwd against DPDK's own l2fwd example on the same net_null vdevs, alternating,
# ROUNDS rounds of SECONDS each. Each round runs three comparisons and prints each run's Mpps and
# the ratio; the medians come last.
#
#   same   the same command line for both: -l LCORES -- -p 0x3 -T 1 (every lcore forwards)
#   1core  one forwarding core each: ours -l 1 -- -p 0x3, DPDK's -l 1 -- -p 0x3 -q 2
#   queues queue scaling, ours against ours: one port, -l LCORES --rxq 2 / -l 1 --rxq 1
#
# Usage: apps/scripts/bench-l2fwd.sh [ROUNDS] [SECONDS] [LCORES]   (LCORES default 0-1)
#
# Rate = median of the per-second differences of "Total packets sent" (both apps print it every
# second with -T 1), skipping the first second (warm-up).
set -euo pipefail
cd "$(dirname "$0")/../.."
. apps/scripts/bench-lib.sh
ROUNDS=${1:-3}
SECONDS_PER_RUN=${2:-6}
LCORES=${3:-0-1}
OUT=bench-out
mkdir -p "$OUT"

cargo build --release -q
ours=./target/release/l2fwd

# DPDK's l2fwd, built from the dpdk-doc package's examples.
peer=$(build_example l2fwd l2fwd)

# Same EAL setup for both: net_null ports, no hugepages.
eal=(--no-huge --no-pci -m 512 --log-level=warning)
two=(--vdev=net_null0 --vdev=net_null1)

# Median per-second rate (Mpps) of a log, first second skipped.
rate() { rates_from_totals "$1" | median_skip1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

run_ours() { # LOG ARGS...
    local log=$1; shift
    "$ours" "$@" --duration "$SECONDS_PER_RUN" > "$log" 2>&1
}
run_dpdk() { # LOG ARGS...
    local log=$1; shift
    timeout -s INT "$SECONDS_PER_RUN" "$peer" "$@" > "$log" 2>&1 || true
}

: > "$OUT/l2fwd-same.txt"; : > "$OUT/l2fwd-1core.txt"; : > "$OUT/l2fwd-queues.txt"
printf "%-6s %-7s %12s %12s %8s\n" round case "ours Mpps" "peer Mpps" ratio
for r in $(seq 1 "$ROUNDS"); do
    # The same command line: every lcore of -l forwards, in both.
    run_ours "$OUT/ours-same-$r.txt" -l "$LCORES" "${eal[@]}" "${two[@]}" --file-prefix=bench-ours \
        -- -p 0x3 -T 1
    run_dpdk "$OUT/dpdk-same-$r.txt" -l "$LCORES" "${eal[@]}" "${two[@]}" --file-prefix=bench-dpdk \
        -- -p 0x3 -T 1
    o=$(rate "$OUT/ours-same-$r.txt"); d=$(rate "$OUT/dpdk-same-$r.txt"); x=$(ratio "$o" "$d")
    echo "$x" >> "$OUT/l2fwd-same.txt"
    printf "%-6s %-7s %12s %12s %8s\n" "$r" same "$o" "$d" "$x"

    # One forwarding core each (CPU 1), both ports on it.
    run_ours "$OUT/ours-1core-$r.txt" -l 1 "${eal[@]}" "${two[@]}" --file-prefix=bench-ours \
        -- -p 0x3 -T 1
    run_dpdk "$OUT/dpdk-1core-$r.txt" -l 1 "${eal[@]}" "${two[@]}" --file-prefix=bench-dpdk \
        -- -p 0x3 -T 1 -q 2
    o=$(rate "$OUT/ours-1core-$r.txt"); d=$(rate "$OUT/dpdk-1core-$r.txt"); x=$(ratio "$o" "$d")
    echo "$x" >> "$OUT/l2fwd-1core.txt"
    printf "%-6s %-7s %12s %12s %8s\n" "$r" 1core "$o" "$d" "$x"

    # Queue scaling: one port, its RX queues spread over the lcores, against one lcore and one
    # queue.
    run_ours "$OUT/ours-rxq2-$r.txt" -l "$LCORES" "${eal[@]}" --vdev=net_null0 \
        --file-prefix=bench-ours -- -p 0x1 -T 1 --rxq 2
    run_ours "$OUT/ours-rxq1-$r.txt" -l 1 "${eal[@]}" --vdev=net_null0 \
        --file-prefix=bench-ours -- -p 0x1 -T 1 --rxq 1
    o=$(rate "$OUT/ours-rxq2-$r.txt"); d=$(rate "$OUT/ours-rxq1-$r.txt"); x=$(ratio "$o" "$d")
    echo "$x" >> "$OUT/l2fwd-queues.txt"
    printf "%-6s %-7s %12s %12s %8s\n" "$r" queues "$o" "$d" "$x"
done
echo "median ratio, same command line (ours / DPDK l2fwd, -l $LCORES): $(median < "$OUT/l2fwd-same.txt")"
echo "median ratio, one forwarding core each (ours / DPDK l2fwd -q 2): $(median < "$OUT/l2fwd-1core.txt")"
echo "median ratio, one port, --rxq 2 on -l $LCORES / --rxq 1 on one lcore: $(median < "$OUT/l2fwd-queues.txt")"
