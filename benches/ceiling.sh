#!/usr/bin/env bash
# The I/O ceiling and the datapath, measured in one run on one core, so the
# datapath's rate can be quoted as a ratio to what the machine can move at
# all (these machines are noisy; absolute figures drift from run to run).
#
#   ceiling: dpdk-testpmd io and macswap forwarding on a net_pcap vdev
#            (infinite_rx, tx dropped), one forwarding core;
#   rampart: the criterion datapath benches on the same core.
#
# Needs dpdk-testpmd (apt-get install dpdk-dev) and root for hugepages.
# Usage: benches/ceiling.sh [seconds per testpmd run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
core=${CORE:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v dpdk-testpmd >/dev/null || { echo "needs dpdk-testpmd: apt-get install dpdk-dev" >&2; exit 1; }
if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt 256 ]; then echo 256 > /proc/sys/vm/nr_hugepages; fi
mkdir -p /dev/hugepages
mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages

cargo build --release --quiet
# 60-byte TCP frames of 4096 NAT flows (the handshake part of --traffic).
./target/release/rampart gen --traffic "$work/frames.pcap" --flows 4096 --packets-per-flow 3 >/dev/null

testpmd_mpps() { # $1 = forward mode
    local out="$work/testpmd-$1.log"
    timeout -s INT "$((secs + 8))" dpdk-testpmd -l "0,$core" --no-pci --no-telemetry \
        --file-prefix "rampart-ceiling-$$" \
        --vdev "net_pcap0,rx_pcap=$work/frames.pcap,infinite_rx=1" -- \
        --forward-mode="$1" --port-topology=loop --auto-start --stats-period 1 \
        --total-num-mbufs=65536 --rxd=1024 --txd=1024 >"$out" 2>&1 &
    local pid=$!
    sleep "$((secs + 3))"
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # Median of the per-second Rx-pps samples after the first two.
    grep -o 'Rx-pps: *[0-9]*' "$out" | awk '{print $2}' | tail -n +3 | sort -n |
        awk '{a[NR]=$1} END {if (NR == 0) {print "0"} else {printf "%.2f\n", a[int((NR+1)/2)] / 1e6}}'
}

io=$(testpmd_mpps io)
macswap=$(testpmd_mpps macswap)
taskset -c "$core" cargo bench --quiet --bench datapath -- --warm-up-time 2 --measurement-time "$secs" >"$work/bench.log" 2>&1

python3 - "$io" "$macswap" <<'PY'
import json, sys
io, macswap = float(sys.argv[1]), float(sys.argv[2])
rows = [("established_nat_1m", 1), ("established_nat_1m_burst32", 32),
        ("established_nat_hot", 1), ("new_tcp_flow", 1), ("parse", 1),
        ("syn_cookie_burst32", 32), ("syn_cookie_memory_io", 32)]
print(f"ceiling on one core: testpmd io {io:.2f} Mpps, macswap {macswap:.2f} Mpps")
print(f"| bench | ns/packet | Mpps | ratio to macswap |")
print(f"|---|---:|---:|---:|")
for name, per in rows:
    est = json.load(open(f"target/criterion/datapath/{name}/new/estimates.json"))
    ns = est["mean"]["point_estimate"] / per
    mpps = 1e3 / ns
    ratio = mpps / macswap if macswap > 0 else float("nan")
    print(f"| {name} | {ns:.1f} | {mpps:.2f} | {ratio:.2f} |")
PY
