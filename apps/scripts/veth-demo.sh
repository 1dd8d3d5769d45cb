#!/usr/bin/env bash
# Try pktgen against a forwarder on one box: a private network namespace with a veth pair,
# the device under test (our l2fwd, or DPDK's dpdk-testpmd in io mode) on one end and pktgen on
# the other, both on net_af_packet. Everything is torn down on exit, failure or Ctrl-C.
#
#   apps/scripts/veth-demo.sh [--dut l2fwd|testpmd] [--count N] [--rate RATE] [--size S]
#                             [--flows N] [--report FILE.json] [--pktgen-args "ARGS"]
#                             [--dut-args "ARGS"] [--dut-eal "EAL ARGS"] [--dut-report FILE.json]
#                             [--dut-lcores LIST] [--dut-qpairs N] [--pg-qpairs N]
#                             [--control SOCKET] [--drill "SHELL SNIPPET"] [--search ndr|pdr]
#
# A drill runs in the background while pktgen sends, with $DPCTL set to dpctl on the l2fwd's
# control socket, for example: --drill 'sleep 1; $DPCTL dma remove dma_skeleton0'. A failing
# drill fails the script.
#
# Needs root (network namespaces, raw sockets). Binaries: $L2FWD, $PKTGEN and $DPCTL_BIN, by
# default target/release/{l2fwd,pktgen,dpctl}. Exit status is pktgen's (0 pass, 2 a pass
# criterion failed, 1 error), or the drill's when pktgen passed and the drill failed; 1 on a
# set-up error, 2 on a bad option to this script.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
    cat <<'EOF'
Usage: apps/scripts/veth-demo.sh [options]

Runs pktgen against a forwarder through a veth pair in a private network namespace (both on
net_af_packet), then tears everything down. Needs root.

Options:
  --dut l2fwd|testpmd     the device under test (default l2fwd; testpmd = DPDK's, io mode)
  --count N               frames pktgen sends (default 20000)
  --rate RATE             send rate (default 20000, packets/s; or 10Kpps, 100Mbps, max)
  --size S|MIN-MAX        frame size or range (default 64-1518)
  --flows N               flows (default 4)
  --report FILE.json      pktgen's report
  --pktgen-args "ARGS"    extra pktgen options, e.g. "--max-loss 0.1% --max-latency-us 500"
  --dut-args "ARGS"       extra l2fwd options (after its --)
  --dut-eal "EAL ARGS"    extra EAL options for the device under test
  --dut-report FILE.json  l2fwd's report
  --dut-lcores LIST       l2fwd's -l (default 1: one forwarding lcore on CPU 1, its control
                          thread and pktgen's worker on CPU 0); every lcore listed forwards
  --dut-qpairs N          queue pairs of the forwarder's net_af_packet port (default 1); the
                          kernel spreads flows over them, and l2fwd deals them to its lcores
  --pg-qpairs N           queue pairs of pktgen's net_af_packet port (default 1), for
                          pktgen's --txq/--rxq (through --pktgen-args)
  --control SOCKET        l2fwd's control socket
  --search ndr|pdr        an RFC 2544 search instead of --count: pktgen --search, with --rate as
                          the upper bound (trial length etc. through --pktgen-args, e.g.
                          "--trial-s 2 --search-resolution 2")
  --drill "SNIPPET"       shell run in the background while pktgen sends, with $DPCTL set to
                          dpctl on l2fwd's socket, e.g. 'sleep 1; $DPCTL dma remove dma_skeleton0'
  -h, --help              this text

Binaries: $L2FWD, $PKTGEN, $DPCTL_BIN (default target/release/{l2fwd,pktgen,dpctl}).
Exit status: pktgen's (0 pass, 2 a pass criterion failed, 1 error), or the drill's if pktgen
passed and the drill failed; 1 on a set-up error, 2 on a bad option to this script.
EOF
}

dut=l2fwd count=20000 rate=20000 size=64-1518 flows=4 report="" pktgen_args="" dut_args="" dut_eal="" dut_report="" control="" drill=""
dut_lcores=1 dut_qpairs=1 pg_qpairs=1 search=
while [ $# -gt 0 ]; do
    case "$1" in
        --dut|--count|--rate|--size|--flows|--report|--pktgen-args|--dut-args|--dut-eal|--dut-report|--dut-lcores|--dut-qpairs|--pg-qpairs|--control|--drill|--search)
            [ $# -ge 2 ] || { echo "veth-demo: $1 needs a value" >&2; exit 2; } ;;
    esac
    case "$1" in
        --dut) dut=$2; shift 2 ;;
        --count) count=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --flows) flows=$2; shift 2 ;;
        --report) report=$2; shift 2 ;;
        --pktgen-args) pktgen_args=$2; shift 2 ;;
        --search) search=$2; shift 2 ;;
        --dut-args) dut_args=$2; shift 2 ;;
        --dut-eal) dut_eal=$2; shift 2 ;;
        --dut-report) dut_report=$2; shift 2 ;;
        --dut-lcores) dut_lcores=$2; shift 2 ;;
        --dut-qpairs) dut_qpairs=$2; shift 2 ;;
        --pg-qpairs) pg_qpairs=$2; shift 2 ;;
        --control) control=$2; shift 2 ;;
        --drill) drill=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "veth-demo: unknown option $1" >&2; exit 2 ;;
    esac
done
L2FWD=${L2FWD:-target/release/l2fwd}
PKTGEN=${PKTGEN:-target/release/pktgen}
DPCTL_BIN=${DPCTL_BIN:-target/release/dpctl}
for b in "$PKTGEN" $( [ "$dut" = l2fwd ] && echo "$L2FWD" ); do
    [ -x "$b" ] || { echo "veth-demo: $b not found: run cargo build --release" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "veth-demo: needs root (network namespace, raw sockets)" >&2; exit 1; }

ns="dpveth$$"
work=$(mktemp -d)
dut_pid="" drill_pid="" sampler_pid=""
[ -n "$control" ] || control="$work/l2fwd.sock"
cleanup() {
    # Never fails: under set -e a failing command here would replace the exit status.
    if [ -n "$drill_pid" ]; then kill "$drill_pid" 2>/dev/null || true; fi
    if [ -n "$sampler_pid" ]; then kill "$sampler_pid" 2>/dev/null || true; fi
    if [ -n "$dut_pid" ] && kill -0 "$dut_pid" 2>/dev/null; then
        kill -INT "$dut_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$dut_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$dut_pid" 2>/dev/null || true
    fi
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$ns"
ip netns exec "$ns" ip link add pg0 type veth peer name dut0
for i in lo pg0 dut0; do ip netns exec "$ns" ip link set "$i" up; done
# No IPv6 autoconfiguration chatter on the link (pktgen would count it as foreign frames).
ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 || true

eal_common=(--no-huge --no-pci -m 512 --log-level=warning)
case "$dut" in
    l2fwd)
        # Forwarding on --dut-lcores (default CPU 1); port 0 alone forwards to itself (l2fwd's
        # odd-port rule).
        # shellcheck disable=SC2086
        extra=(--control "$control")
        [ -n "$dut_report" ] && extra+=(--report "$dut_report")
        # shellcheck disable=SC2086
        ip netns exec "$ns" "$L2FWD" -l "$dut_lcores" "${eal_common[@]}" --file-prefix="$ns-dut" \
            --vdev=net_af_packet0,iface=dut0,framecnt=4096,qpairs="$dut_qpairs" $dut_eal -- -p 0x1 -T 0 "${extra[@]}" $dut_args \
            > "$work/dut.log" 2>&1 &
        ready="Lcore "
        ;;
    testpmd)
        command -v dpdk-testpmd >/dev/null || { echo "veth-demo: dpdk-testpmd not found (apt-get install dpdk-dev)" >&2; exit 1; }
        # shellcheck disable=SC2086
        ip netns exec "$ns" dpdk-testpmd -l 0-1 "${eal_common[@]}" --file-prefix="$ns-dut" \
            --vdev=net_af_packet0,iface=dut0,framecnt=4096,qpairs="$dut_qpairs" -- --forward-mode=io --port-topology=loop \
            --auto-start --stats-period 5 --total-num-mbufs=8192 $dut_args < /dev/null > "$work/dut.log" 2>&1 &
        ready="forwards packets on"
        ;;
    *) echo "veth-demo: --dut is l2fwd or testpmd" >&2; exit 2 ;;
esac
dut_pid=$!
for _ in $(seq 100); do
    grep -q "$ready" "$work/dut.log" 2>/dev/null && break
    kill -0 "$dut_pid" 2>/dev/null || { echo "veth-demo: the $dut failed to start:" >&2; cat "$work/dut.log" >&2; exit 1; }
    sleep 0.1
done
grep -q "$ready" "$work/dut.log" || { echo "veth-demo: the $dut did not come up:" >&2; cat "$work/dut.log" >&2; exit 1; }
echo "veth-demo: $dut forwarding on dut0; pktgen on pg0 in namespace $ns"

if [ -n "$drill" ]; then
    DPCTL="$DPCTL_BIN --socket $control"
    export DPCTL
    bash -c "set -e; $drill" > "$work/drill.log" 2>&1 &
    drill_pid=$!
fi

# pktgen's worker on CPU 0, away from the DUT's.
if [ -n "$search" ]; then
    pg_args=(--search "$search" --rate "$rate" --size "$size" --flows "$flows")
else
    pg_args=(--count "$count" --rate "$rate" --size "$size" --flows "$flows")
fi
[ -n "$report" ] && pg_args+=(--report "$report")
# The kernel's count of frames leaving pg0, with the time, every second while pktgen runs:
# the rate as the link saw it, second by second (printed at the end).
# One shell in the namespace reads the clock and the counter together (no process start
# between them).
if [ -z "$search" ]; then
    # shellcheck disable=SC2016
    ip netns exec "$ns" bash -c 'while :; do read -r c < /sys/class/net/pg0/statistics/tx_packets; echo "$EPOCHREALTIME $c"; sleep 1; done' \
        > "$work/tx-per-second" 2>/dev/null &
    sampler_pid=$!
fi
# pktgen's status is the script's: set -e must not end the script on a failed run (exit 2),
# before the drill's output and the DUT's last lines.
set +e
# shellcheck disable=SC2086
ip netns exec "$ns" "$PKTGEN" -l 0-1 --main-lcore 1 "${eal_common[@]}" --file-prefix="$ns-pg" \
    --vdev=net_af_packet0,iface=pg0,framecnt=4096,qpairs="$pg_qpairs" -- "${pg_args[@]}" $pktgen_args
status=$?
if [ -n "$sampler_pid" ]; then kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null; fi
sampler_pid=""
touch "$work/tx-per-second"
# Every whole second in which frames left (not the first and last, partly before or after the
# run): frames per second, and for a --rate in packets per second how far each is from it.
awk -v rate="$rate" '
    { t[NR] = $1; n[NR] = $2 }
    END {
        for (i = 2; i <= NR; i++) { d = n[i] - n[i-1]; if (d > 0) { if (!first) first = i; last = i } }
        line = ""; worst = 0
        for (i = first + 1; i < last; i++) {
            r = (n[i] - n[i-1]) / (t[i] - t[i-1]); line = line sprintf(" %.0f", r)
            if (rate ~ /^[0-9]+$/) { e = (r - rate) / rate * 100; if (e < 0) e = -e; if (e > worst) worst = e }
        }
        if (line == "") exit
        printf "veth-demo: kernel pg0 tx frames per second:%s\n", line
        if (rate ~ /^[0-9]+$/) printf "veth-demo: worst second off --rate %d by %.2f%%\n", rate, worst
    }' "$work/tx-per-second"
# The kernel's own count of what crossed pktgen's end of the link, to check pktgen's against.
echo "veth-demo: kernel counters pg0 tx_packets=$(ip netns exec "$ns" cat /sys/class/net/pg0/statistics/tx_packets) rx_packets=$(ip netns exec "$ns" cat /sys/class/net/pg0/statistics/rx_packets)"

if [ -n "$drill_pid" ]; then
    wait "$drill_pid"; drill_status=$?
    drill_pid=""
    echo "--- drill output:"; cat "$work/drill.log"
    if [ "$drill_status" != 0 ]; then
        echo "veth-demo: the drill failed ($drill_status)" >&2
        [ "$status" = 0 ] && status=$drill_status
    fi
fi
set -e

kill -INT "$dut_pid" 2>/dev/null || true
wait "$dut_pid" 2>/dev/null || true
dut_pid=""
echo "--- $dut's last lines:"
tail -n 8 "$work/dut.log"
exit "$status"
