#!/usr/bin/env bash
# `rampart run` on net_af_packet, attached to a veth, between a client and a
# backend that are real Linux network stacks, each in a network namespace
# this script creates (and always deletes, trap on EXIT).
#
#   client ns            lb ns                                   backend ns
#   c0 198.18.0.50 --- cb0 ]                                [ bb0 --- b0 198.18.1.11
#                          [ br0 (bridge) ] -- rb0 === r0: rampart (af_packet)
#
# One arm: rampart's veth r0 hangs off the bridge that joins the client and
# the backend. rampart owns 198.18.0.1 (the client's next hop would be
# there, unused), 198.18.1.1 (the backend's route back to the client) and
# the NAT VIP 198.18.100.10:80, which the client reaches on-link, so the
# client ARPs for the VIP itself. The backend serves a file with a bounded
# python3 http.server; the client fetches it with curl, bounded. The port
# has a kernel interface, rk0: the lb kernel gets the node address on it and
# the client's TCP to that address reaches a server in the lb kernel through
# rampart; rk0 goes away when rampart stops and when it is SIGKILLed.
#
# Usage: af_packet.sh RAMPART_BINARY WORKDIR
# Writes into WORKDIR: af_packet.toml, run.out / run.err (rampart's stdout /
# stderr), run.json (--stats-json), arping.out, neigh.out, curl.N.out.
# Exit 0 when the network side passed (ARP answered with rampart's MAC,
# every request answered through rampart, rampart exited 0 on SIGINT); the
# caller checks rampart's summary and counters.
#
# Test traffic only inside these namespaces, addresses only from
# 198.18.0.0/15. Needs root, iproute2, ethtool, iputils-arping, curl, python3.
set -euo pipefail

BIN=${1:?usage: af_packet.sh RAMPART_BINARY WORKDIR}
WORK=${2:?usage: af_packet.sh RAMPART_BINARY WORKDIR}
mkdir -p "$WORK"

TAG="rp$$"
NS_C="$TAG-client"
NS_B="$TAG-backend"
NS_L="$TAG-lb"
RAMPART_MAC=02:00:00:00:00:01
CLIENT_MAC=02:00:00:00:00:fe # node.gateway_mac: where rampart sends the client's replies
BACKEND_MAC=02:00:00:00:01:0b
VIP=198.18.100.10
REQUESTS=3

log() { printf 'af_packet.sh: %s\n' "$*" >&2; }
fail() {
    log "FAIL: $*"
    exit 1
}

for tool in ip ethtool arping curl python3 timeout; do
    command -v "$tool" >/dev/null || fail "$tool is missing (.ci/run installs it)"
done
[[ "$(id -u)" -eq 0 ]] || fail "needs root (network namespaces, AF_PACKET)"

RAMPART_PID=
SERVER_PID=
BANNER_PID=
teardown() {
    local rc=$?
    set +e
    # TERM to the `timeout` wrappers, which relay it to rampart / the server;
    # KILL for whatever still runs 3 s later.
    for pid in $RAMPART_PID $SERVER_PID $BANNER_PID; do
        kill -TERM "$pid" 2>/dev/null
    done
    for _ in $(seq 1 30); do
        alive=
        for pid in $RAMPART_PID $SERVER_PID; do
            # alive and not a zombie waiting for us
            [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" =~ ^[^Z] ]] && alive=1
        done
        [[ -z $alive ]] && break
        sleep 0.1
    done
    for pid in $RAMPART_PID $SERVER_PID; do
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    # Deleting a namespace deletes its veth ends, their peers and the bridge.
    for ns in "$NS_C" "$NS_B" "$NS_L"; do
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "/var/run/dpdk/$TAG" "/tmp/dpdk/$TAG"
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

in_c() { ip netns exec "$NS_C" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }
in_l() { ip netns exec "$NS_L" "$@"; }

# --- the bed ----------------------------------------------------------------
for ns in "$NS_C" "$NS_B" "$NS_L"; do
    ip netns add "$ns"
    ip netns exec "$ns" ip link set lo up
done

in_l ip link add br0 type bridge
in_l sysctl -qw net.ipv6.conf.br0.disable_ipv6=1
in_l ip link set br0 up

# host end (in its namespace), bridge end (in lb)
veth() {
    local ns=$1 dev=$2 mac=$3 peer=$4
    in_l ip link add "$peer" type veth peer name "$dev"
    in_l ip link set "$dev" netns "$ns"
    ip netns exec "$ns" ip link set "$dev" address "$mac"
    ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
    # The kernel leaves TCP checksums partial on a veth; rampart (through
    # AF_PACKET) would see and forward them wrong. Full checksums instead.
    ip netns exec "$ns" ethtool -K "$dev" tx off >/dev/null
    ip netns exec "$ns" ip link set "$dev" up
    in_l sysctl -qw "net.ipv6.conf.$peer.disable_ipv6=1"
    in_l ip link set "$peer" master br0 up
}
veth "$NS_C" c0 "$CLIENT_MAC" cb0
veth "$NS_B" b0 "$BACKEND_MAC" bb0
# rampart's own veth: r0 stays in lb with no address (the kernel there
# ignores what it receives); rb0 is the bridge's end.
in_l ip link add rb0 type veth peer name r0
in_l ip link set r0 address "$RAMPART_MAC"
for dev in r0 rb0; do
    in_l sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
done
in_l ethtool -K r0 tx off >/dev/null
in_l ip link set rb0 master br0 up
in_l ip link set r0 up

in_c ip addr add 198.18.0.50/24 dev c0
in_c ip route add "$VIP/32" dev c0 # on-link: the client ARPs for the VIP
in_b ip addr add 198.18.1.11/24 dev b0
in_b ip route add 198.18.0.0/24 via 198.18.1.1 dev b0 # back through rampart

# --- the backend: a bounded HTTP server ---------------------------------------
mkdir -p "$WORK/www"
MARKER="rampart-af-packet-$$-$RANDOM"
printf '%s\n' "$MARKER" >"$WORK/www/marker.txt"
ip netns exec "$NS_B" timeout 60 python3 -m http.server 8080 --bind 198.18.1.11 \
    --directory "$WORK/www" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

# --- rampart -----------------------------------------------------------------
cat >"$WORK/af_packet.toml" <<EOF
[node]
mac = "$RAMPART_MAC"
addresses = ["198.18.0.1", "198.18.1.1"]
gateway_mac = "$CLIENT_MAC"

[[neighbor]]
address = "198.18.1.11"
mac = "$BACKEND_MAC"

[[vip]]
name = "web"
address = "$VIP"
port = 80
protocol = "tcp"
mode = "nat"

# In-band probes from 198.18.0.1 to the backend's kernel: SYN-ACK while the
# server listens, RST once it is gone.
[vip.health]
kind = "tcp"
interval_ms = 200
timeout_ms = 150
rise = 1
fall = 2

[[vip.backend]]
address = "198.18.1.11"
port = 8080

[control]
socket = "$WORK/ctl.sock"
prometheus = ""

[dpdk]
workers = 1
mempool_size = 4095
mempool_cache = 64
stats_interval = 1

[[port]]
name = "net_af_packet0,iface=r0,qdisc_bypass=1"
kernel_interface = "rk0"
EOF

# `ip netns exec` execs `timeout`, so \$! is timeout's pid: it relays our
# SIGINT to rampart, and ends rampart after 60 s whatever happens here.
ip netns exec "$NS_L" timeout -s INT -k 5 60 "$BIN" run --config "$WORK/af_packet.toml" \
    --stats-json "$WORK/run.json" -- \
    --no-huge -m 512 --no-pci --no-shconf --no-telemetry \
    --log-level lib.eal:warning --file-prefix "$TAG" \
    >"$WORK/run.out" 2>"$WORK/run.err" &
RAMPART_PID=$!

# Up when the first rate line is logged (the workers poll by then).
for _ in $(seq 1 200); do
    grep -q 'rate  rx ' "$WORK/run.err" 2>/dev/null && break
    kill -0 "$RAMPART_PID" 2>/dev/null || {
        cat "$WORK/run.out" "$WORK/run.err" >&2
        fail "rampart exited during start-up"
    }
    sleep 0.1
done
grep -q 'rate  rx ' "$WORK/run.err" || fail "rampart not up within 20 s: $(cat "$WORK/run.err")"
log "rampart up: $(head -2 "$WORK/run.out" | tr '\n' ' ')"

# The server is listening when a connect succeeds (bounded: 50 tries).
for _ in $(seq 1 50); do
    in_b timeout 1 bash -c 'exec 3<>/dev/tcp/198.18.1.11/8080' 2>/dev/null && break
    sleep 0.1
done

# --- ARP: the VIP resolves to rampart's MAC -------------------------------------
in_c timeout 10 arping -c 3 -w 5 -I c0 "$VIP" >"$WORK/arping.out" 2>&1 || true
cat "$WORK/arping.out" >&2
grep -qi "reply from $VIP \[$RAMPART_MAC\]" "$WORK/arping.out" ||
    fail "no ARP reply from $VIP with rampart's MAC $RAMPART_MAC"

# --- TCP through rampart: client -> VIP -> backend and back ---------------------
for i in $(seq 1 "$REQUESTS"); do
    in_c curl -sS --max-time 5 -o "$WORK/curl.$i.out" "http://$VIP/marker.txt" ||
        fail "request $i through rampart failed"
    [[ "$(cat "$WORK/curl.$i.out")" == "$MARKER" ]] ||
        fail "request $i: wrong body: $(head -c 200 "$WORK/curl.$i.out")"
done
log "$REQUESTS requests answered by the backend through rampart"
# NAT keeps the client's address: the backend logged each request from it.
n=$(grep -c '^198\.18\.0\.50 .*"GET /marker.txt' "$WORK/server.log" || true)
[[ $n -eq $REQUESTS ]] || fail "the backend logged $n requests from 198.18.0.50: $(cat "$WORK/server.log")"

in_c ip neigh show "$VIP" dev c0 >"$WORK/neigh.out"
cat "$WORK/neigh.out" >&2
grep -qi "lladdr $RAMPART_MAC" "$WORK/neigh.out" ||
    fail "the client's neighbor entry for $VIP is not rampart's MAC"
# The backend never saw the client's MAC: its way back is rampart.
in_b ip neigh show 198.18.1.1 dev b0 | grep -qi "lladdr $RAMPART_MAC" ||
    fail "the backend's next hop 198.18.1.1 is not rampart's MAC"

# --- health checks against the backend's kernel, read through rampart ctl --------
ctl() { "$BIN" ctl --socket "$WORK/ctl.sock" "$@"; }
backend_field() { # FIELD: of 198.18.1.11:8080 in `ctl stats --json`
    ctl stats --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print([b for b in r["backends"] if b["address"]=="198.18.1.11:8080"][0][sys.argv[1]])' "$1"
}
opens=0
for _ in $(seq 1 50); do
    opens=$(ctl stats --json | python3 -c 'import json,sys; print(sum(w["events"]["probes_open"] for w in json.load(sys.stdin)["workers"]))')
    [[ $opens -ge 3 ]] && break
    sleep 0.1
done
[[ $opens -ge 3 ]] || fail "the backend answered $opens probes with a SYN-ACK"
[[ "$(backend_field health)" == up ]] || fail "backend health is not up: $(ctl stats)"
log "health: $opens probes answered by the backend's kernel, backend up"
ctl status >&2
# The server goes away: its kernel answers RST, two in a row take it down.
kill "$SERVER_PID" 2>/dev/null || true
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=
state=up
for _ in $(seq 1 50); do
    state=$(backend_field state)
    [[ $state == down ]] && break
    sleep 0.1
done
[[ $state == down ]] || fail "the backend is still $state after its server stopped"
grep -q 'backend 198.18.1.11:8080 is down' "$WORK/run.err" ||
    fail "no log line for the transition: $(cat "$WORK/run.err")"
log "health: backend down after its server stopped ($(grep -o 'is down: .*' "$WORK/run.err" | head -1))"

# --- the kernel path: the node's own TCP through rk0 ---------------------------
# rk0 is rampart's TAP interface for port 0, with r0's MAC. The lb kernel
# gets the node address there and serves a banner on it; the client's SYN
# to the node address is nothing the datapath handles, so it reaches the
# kernel through rk0, and the kernel's answers (its ARP request for the
# client first) leave by r0.
in_l ip link show rk0 >"$WORK/rk0.out" 2>&1 || fail "no kernel interface rk0: $(cat "$WORK/run.out")"
grep -qi "link/ether $RAMPART_MAC" "$WORK/rk0.out" || fail "rk0 does not have the port's MAC: $(cat "$WORK/rk0.out")"
in_l ip addr add 198.18.0.1/24 dev rk0
in_l sysctl -qw net.ipv4.tcp_syn_retries=2
BANNER="rampart-kernel-path-$$"
in_l timeout 30 python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.0.1", 2222)); s.listen(4); s.settimeout(25)
for _ in range(2):
    c, a = s.accept(); c.sendall((sys.argv[1] + " " + a[0] + "\n").encode()); c.close()
' "$BANNER" >"$WORK/banner.log" 2>&1 &
BANNER_PID=$!
for _ in $(seq 1 50); do
    in_l timeout 1 bash -c 'exec 3<>/dev/tcp/198.18.0.1/2222' 2>/dev/null && break
    sleep 0.1
done
got=$(in_c timeout 10 bash -c 'exec 3<>/dev/tcp/198.18.0.1/2222; cat <&3' 2>&1 || true)
[[ "$got" == "$BANNER 198.18.0.50" ]] ||
    fail "the client did not reach the lb kernel's server on the node address through rk0: '$got'"
wait "$BANNER_PID" 2>/dev/null || true
passed=$(ctl stats --json | python3 -c 'import json,sys; print(sum(w["events"]["kernel_passed"] for w in json.load(sys.stdin)["workers"]))')
[[ $passed -ge 3 ]] || fail "rampart passed $passed frames to the kernel"
log "kernel path: the client's TCP reached the lb kernel through rk0 ($passed frames passed)"

# --- stop rampart: SIGINT, summary, exit 0 ----------------------------------------
kill -INT "$RAMPART_PID"
status=0
for _ in $(seq 1 200); do
    kill -0 "$RAMPART_PID" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$RAMPART_PID" 2>/dev/null; then
    fail "rampart did not stop within 20 s of SIGINT"
fi
wait "$RAMPART_PID" || status=$?
RAMPART_PID=
cat "$WORK/run.out" >&2
[[ $status -eq 0 ]] || fail "rampart exited $status: $(cat "$WORK/run.err")"
in_l ip link show rk0 >/dev/null 2>&1 && fail "rk0 is still there after rampart stopped"

# --- SIGKILL: the kernel interface goes with the process, and a restart works ----
for round in 1 2; do
    ip netns exec "$NS_L" timeout -s INT -k 5 30 "$BIN" run --config "$WORK/af_packet.toml" -- \
        --no-huge -m 512 --no-pci --no-shconf --no-telemetry \
        --log-level lib.eal:warning --file-prefix "$TAG" \
        >"$WORK/kill.$round.out" 2>"$WORK/kill.$round.err" &
    RAMPART_PID=$!
    for _ in $(seq 1 200); do
        in_l ip link show rk0 >/dev/null 2>&1 && break
        sleep 0.1
    done
    in_l ip link show rk0 >/dev/null 2>&1 || fail "round $round: rk0 did not appear: $(cat "$WORK/kill.$round.err")"
    # SIGKILL rampart itself (the child of `timeout`).
    pkill -KILL -P "$RAMPART_PID" || fail "round $round: no rampart under timeout"
    wait "$RAMPART_PID" 2>/dev/null || true
    RAMPART_PID=
    for _ in $(seq 1 50); do
        in_l ip link show rk0 >/dev/null 2>&1 || break
        sleep 0.1
    done
    in_l ip link show rk0 >/dev/null 2>&1 && fail "round $round: rk0 outlived rampart's SIGKILL"
done
log "kernel interface: gone after SIGINT and after SIGKILL; rampart started again after SIGKILL"
log "ok"
