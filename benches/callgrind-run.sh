#!/bin/bash
# Instructions per packet of `rampart run` itself on DPDK, under callgrind:
# one worker over a net_pcap vdev looping a capture from memory
# (infinite_rx=1, tx dropped), so every poll is a full burst of 32, and
# only rampart::runtime::Worker::poll (one call per burst: rx, datapath,
# tx, aging, the control link) is counted. The PMD's own rx and tx are
# included, as they are in dpdk-testpmd's figures.
#
#   benches/callgrind-run.sh [BINARY] [CAPTURE] [SECONDS]
#
# Defaults: target/release/rampart (built with --features dpdk), a capture
# of 4096 established NAT connections x 16 frames, 40 s under valgrind.
set -euo pipefail
bin=${1:-target/release/rampart}
cap=${2:-}
secs=${3:-40}
work=$(mktemp -d /tmp/rampart-cg.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ -z "$cap" ]; then
    cap=$work/established.pcap
    "$bin" gen --traffic "$cap" --flows 4096 --packets-per-flow 16 >/dev/null
fi
{
    printf '[control]\nsocket = ""\nprometheus = ""\n\n'
    cat configs/rampart.toml
    printf '\n[dpdk]\nworkers = 1\nlcores = [1]\ncontrol_lcore = 0\nmempool_size = 131071\nmempool_cache = 256\nstats_interval = 1\nidle_exit_ms = 0\n\n'
    printf '[[port]]\nname = "net_pcap0,rx_pcap=%s,infinite_rx=1"\n' "$cap"
} >"$work/run.toml"
# --fair-sched=yes: valgrind runs one thread at a time, and with its
# default lock the busy-polling worker can keep it, starving the control
# thread, which then never sees the SIGINT. After the INT, a bounded wait
# for the shutdown (the run exits, callgrind writes its file), then KILL.
RUST_LOG=warn timeout -k 120 -s INT "$secs" valgrind --tool=callgrind --fair-sched=yes \
    --callgrind-out-file="$work/cg.out" --toggle-collect='*Worker*poll*' \
    "$bin" run --config "$work/run.toml" -- --no-pci --no-telemetry --no-huge -m 1024 --no-shconf \
    >"$work/log" 2>&1 || true
total=$(callgrind_annotate "$work/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
polls=$(callgrind_annotate --tree=calling --inclusive=yes "$work/cg.out" 2>/dev/null |
    grep -A1 '\*  .*runtime.rs:std::sys::backtrace' | grep -o 'poll ([0-9,]*x)' | tr -dc 0-9)
if [ -z "$total" ] || [ -z "$polls" ] || [ "$polls" = 0 ]; then
    echo "no polls measured; rampart's output:" >&2
    tail -5 "$work/log" >&2
    exit 1
fi
awk -v t="$total" -v p="$polls" 'BEGIN { printf "%d polls of 32 frames, %.1f instructions per packet\n", p, t / (p * 32) }'
