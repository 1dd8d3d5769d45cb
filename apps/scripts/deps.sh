#!/usr/bin/env bash
# Installs the Debian packages the data plane needs (idempotent). Run as root (or with sudo).
#   dpdk, libdpdk-dev : DPDK 22.11, the device layer (EAL, ethdev, dmadev, vdev drivers)
#   dpdk-doc          : DPDK's example apps (l2fwd, dmafwd), the benchmark peers
#   dpdk-dev          : dpdk-testpmd, the cross-check peer of pktgen's end-to-end test
#                       and dpdk-test, whose rcu_qsbr_perf_autotest refbench --dpdk-autotest runs
#   libclang-dev clang: bindgen, which generates dpdk-sys's bindings at build time
#   pkg-config make   : finding DPDK; building the DPDK examples
#   libpcap-dev       : net_pcap and the pcap examples
#   tcpdump iproute2  : reading test captures; veth pairs for two-process runs
#   binutils          : objdump, for the test that inspects the compiled worker loop
#   socat             : talking to the control socket without dpctl (README)
set -euo pipefail
pkgs=(dpdk libdpdk-dev dpdk-dev dpdk-doc libclang-dev clang pkg-config make gcc binutils libpcap-dev tcpdump iproute2 python3 socat)
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
echo "deps: ${pkgs[*]} installed"
