# Shared by the benchmark scripts (sourced, not run).

# Builds DPDK example NAME (a folder of the dpdk-doc examples) into target/dpdk-examples/NAME
# once; prints the path of the binary BIN.
build_example() { # NAME BIN
    local dir=target/dpdk-examples/$1
    if [ ! -x "$dir/build/$2" ]; then
        [ -d "/usr/share/dpdk/examples/$1" ] || { echo "install dpdk-doc (apps/scripts/deps.sh)" >&2; exit 1; }
        rm -rf "$dir"; mkdir -p "$(dirname "$dir")"
        cp -r "/usr/share/dpdk/examples/$1" "$dir"
        make -s -C "$dir" >/dev/null
    fi
    echo "$dir/build/$2"
}

# Median of the numbers on stdin.
median() { sort -g | awk '{v[NR]=$1} END { printf "%.3f\n", (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'; }

# Median of the per-second rates on stdin, the first (warm-up) one skipped.
median_skip1() { awk 'NR > 1' | median; }

# Per-second rates (Mpps) from a log's cumulative "Total packets sent: N" lines (-T 1).
rates_from_totals() { grep -a "Total packets sent:" "$1" | awk '{ if (NR > 1) printf "%.6f\n", ($4 - p) / 1e6; p = $4 }'; }
