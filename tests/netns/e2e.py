#!/usr/bin/env python3
"""End to end: `rampart run` between real Linux TCP stacks.

Builds a bed of network namespaces (created here, always deleted on exit),
runs `rampart run` on net_af_packet attached to a veth on the server LAN,
and drives real clients (curl, wrk, hping3, a Python echo client) through
it to real servers (nginx, a Python echo server):

    client ns          router ns                   lan ns (bridge br0)
    c0 198.18.0.50 --- rc0 198.18.0.1              +-- lb ns: r0, rampart (net_af_packet)
       2001:2::50          2001:2::1                |      node 198.18.1.2 / 2001:2:0:1::2
    client2 ns                                      |
    c0 198.18.3.50 --- rc2 198.18.3.1               |
       2001:2:0:3::50      2001:2:0:3::1            |
                       rl0 198.18.1.1 -------------+-- b1 198.18.1.11  nginx :80, echo :9000
                           2001:2:0:1::1            +-- b2 198.18.1.12  (same)
                       routes the VIPs              +-- b3 198.18.1.13  (same)
                       198.18.100.0/24 and          +-- b4 198.18.1.14  (same; in no VIP
                       2001:2:0:100::/64 to 1.2                          until the reload case)
                       rt0 198.18.2.1 -------------- br1 (lan ns)
                           2001:2:0:2::1            +-- t1 198.18.2.11  nginx :80, tunnel VIPs on lo,
                                                    |                  XDP decap on its veth
                                                    +-- t2 198.18.2.12  (same)

The router sends the VIPs to rampart's node address; rampart answers ARP and
ND for it. Backends route to the clients through rampart (NAT return path)
except for replies from the DR VIPs, which a policy rule sends straight to
the router. The tunnel backends t1 and t2 sit one routed hop from rampart
(through the router): rampart's encapsulated packets reach them through
its gateway, xdp/decap.c takes the outer headers off, and they answer the
client straight through the router. Spoofed floods are sent from the
client2 namespace, and their sources (198.19.0.0/16, 2001:2:0:ff::/64) are
routed back to it; its kernel drops what comes back.

Cases (IPv4 and IPv6 unless said):
  tunnel bed           before rampart starts: the client reaches t1 and t2
                       through the router, and every tunnel VIP's
                       encapsulation sent by the router is decapsulated
                       (an echo to the VIP is answered to the client).
  nat, fullnat, dr     curl reaches every backend in proportion to its
                       weight; wrk with no socket errors and no non-2xx.
  tunnel               IPIP and GUE VIPs, IPv4 and IPv6 and across families:
                       curl reaches both tunnel backends, 10 MB downloaded
                       with the right digest, the answers bypass rampart.
  steer                source-prefix steering: a NAT VIP whose [[vip.source]]
                       entries send the client's prefix to b1 and b2 and
                       client2's to b3: curl from each reaches only its
                       pool, the backends see each client's own address;
                       with b3 down, client2's requests go to the whole
                       VIP (source_fallback counted).
  ping                 ICMP echo to a NAT VIP and the node addresses.
  pmtu                 the router's client-facing MTU set to 1400: its
                       frag-needed / packet-too-big to the VIP must reach
                       the backend through rampart (NAT: translated, DR:
                       forwarded, tunnel: encapsulated) for a 10 MB
                       download to finish.
  fragments            the client's and the backends' links at MTU 1280: a
                       UDP echo of 4000-byte datagrams (a large DNS answer's
                       size), fragmented both ways by the kernels, through
                       the NAT VIP (the answer's fragments come back through
                       rampart) and the DR VIP (to the backend only); every
                       datagram comes back whole, rampart counts the
                       fragments it forwarded. IPv6 only: net_af_packet
                       (DPDK 22.11) has the kernel reassemble IPv4
                       fragments before rampart sees them.
  synproxy             handshakes complete through cookies (rampart's
                       counters), 10 MB echoed byte for byte and 10 MB
                       downloaded with the right digest; IPv4: under an
                       hping3 flood of spoofed SYNs >= 99% of curl requests
                       succeed and the connection table does not grow with
                       the flood.
  proxy                FullNAT VIPs with proxy_protocol = "v2", with the SYN
                       proxy off and on: nginx on the backends (`listen ...
                       proxy_protocol`, $proxy_protocol_addr in its log and
                       in an X-Client header) sees the client namespace's
                       address for curl and for wrk; a server that speaks
                       first (reads the header, then writes a banner naming
                       the client) answers a client that sends nothing; a
                       10 MB download with 1% of the client link's packets
                       dropped (nftables numgen) arrives intact.
  health               a backend's nginx is killed: down within the
                       configured time, requests succeed on the others,
                       up again after a restart.
  reload               `rampart ctl reload` with a new backend set while
                       wrk, a curl loop and long-lived keep-alive
                       connections run: no errors, the long-lived
                       connections keep their backend.
  faults               rampart's veth (r0) down 2 s and up: forwarding
                       resumes in the same process. SIGKILL under wrk and a
                       restart at once (once with --no-huge, once on
                       hugepages, whose files the killed run leaves): the
                       stale socket, runtime directory and hugepage files
                       do not block it, requests succeed after. A table of
                       FAULT_CAPACITY entries and three times as many wrk
                       connections: NAT and DR serve every request
                       (stateless_new), FullNAT refuses new flows
                       (conn_table_full), the table empties after, and
                       FullNAT serves normally again. An IPv6 SYN flood from
                       two of our own senders (syn6-flood: a packet socket,
                       spoofed 2001:2:0:ff::/64 sources) checked as the
                       IPv4 one.
  soak                 --soak-seconds (60) of wrk keep-alive, wrk with a new
                       connection per request and UDP request/response on a
                       VIP whose backends never go, wrk on a VIP whose do;
                       a reload every 5 s alternating two configs (weights,
                       b4 added and removed), b2's nginx killed every 30 s,
                       a 5 s SYN flood every 60 s. Checks: RSS after the
                       warm-up within 5% of its value at the end, no worker
                       stall logged (the heartbeat stood still >= 100 ms),
                       every request on the steady VIP completed, the table
                       back to its idle size, rx = tx + consumed + dropped.
  nftables             rampart stopped; the lb namespace's kernel does the
                       same job with nftables DNAT (numgen, the same
                       weights) and the router runs nftables synproxy in
                       front of the SYN proxy VIP: wrk, and curl under the
                       same flood. Reported side by side, not asserted.

Writes WORK/summary.md (the tables the README shows), WORK/summary.json and
every tool's output. Exit 0 when every assertion held.

Usage (root): python3 tests/netns/e2e.py [--quick] [--binary PATH] [--work DIR]
                 [--only CASE,...] [--no-tunnel-vips] [--soak-seconds N]
Without --binary it builds `cargo build --release --features dpdk` first.
--only runs the named cases (modes, tunnel, steer, ping, pmtu, pmtu-nat [its
NAT half], fragments, synproxy, proxy, health, reload, tier, faults, soak,
nftables); the bed
and its tunnel check
always run. --no-tunnel-vips leaves the tunnel VIPs out of the config.
Needs iproute2, ethtool, curl, wrk, hping3, nginx-light, nftables,
iputils-ping, clang, libbpf-dev, python3.

Test traffic stays inside these namespaces, on 198.18.0.0/15 and
2001:2::/48. Every load is bounded in time (wrk -d, timeout around hping3
and every command) and the whole run has a deadline.
"""

import argparse
import hashlib
import ipaddress
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SELF = os.path.abspath(__file__)

# --- addresses -----------------------------------------------------------------

CLIENT4, CLIENT6 = "198.18.0.50", "2001:2::50"
RTR_C4, RTR_C6 = "198.18.0.1", "2001:2::1"
# A second client, in another prefix: the steer case's other region.
CLIENT2_4, CLIENT2_6 = "198.18.3.50", "2001:2:0:3::50"
RTR_C2_4, RTR_C2_6 = "198.18.3.1", "2001:2:0:3::1"
RTR_L4, RTR_L6 = "198.18.1.1", "2001:2:0:1::1"
NODE4, NODE6 = "198.18.1.2", "2001:2:0:1::2"
VIPNET4, VIPNET6 = "198.18.100.0/24", "2001:2:0:100::/64"
FLOODNET = "198.19.0.0/16"
# Spoofed IPv6 flood sources (the faults case's own sender): routed back
# to the flooding namespace as FLOODNET is.
FLOODNET6 = "2001:2:0:ff::/64"
# Where the spoofed floods come from: client2's host, with its own link to
# the router, so the real clients' host does not share its link and CPU
# time with the attacker, as it would not on the internet; the floods
# still cross the router and rampart with the real clients' traffic.
FLOOD_ROLE, FLOOD_ROUTER_DEV = "client2", "rc2"

RAMPART_MAC = "02:00:00:00:00:01"
# The tier case: a second box beside rampart (lb2), both announcing over
# BGP (BIRD in lb, lb2 and the router, BFD for fast failure detection).
NODE4_B = "198.18.1.3"
RAMPART2_MAC = "02:00:00:00:00:02"
AS_ROUTER, AS_TIER = 65000, 65001

ROUTER_LAN_MAC = "02:00:00:00:00:fe"
# the tunnel backends' subnet, one routed hop (the router) from rampart
RTR_T4, RTR_T6 = "198.18.2.1", "2001:2:0:2::1"
ROUTER_TUN_MAC = "02:00:00:00:02:fe"
DECAP_C = os.path.join(os.path.dirname(SELF), "xdp", "decap.c")
DECAP_CHECK = os.path.join(os.path.dirname(SELF), "xdp", "check.py")


class Backend:
    def __init__(self, name, n, weight, net=1):
        self.name = name
        self.v4 = f"198.18.{net}.{10 + n}"
        self.v6 = f"2001:2:0:{net}::{10 + n:x}"
        self.mac = f"02:00:00:00:{net:02x}:{10 + n:02x}"
        self.weight = weight

    def addr(self, fam):
        return self.v4 if fam == 4 else self.v6


BACKENDS = [Backend("b1", 1, 1), Backend("b2", 2, 1), Backend("b3", 3, 2), Backend("b4", 4, 1)]
IN_VIPS = BACKENDS[:3]  # b4 joins in the reload case
# Tunnel backends: behind the router on 198.18.2.0/24 and 2001:2:0:2::/64,
# decapsulating in XDP (xdp/decap.c), every tunnel VIP on lo.
TUN_BACKENDS = [Backend("t1", 1, 1, net=2), Backend("t2", 2, 1, net=2)]
ECHO_PORT = 9000
BLOB_BYTES = 10 * 1024 * 1024

# One VIP per mode and family; the synproxy VIP is NAT over IPv4 and
# FullNAT over IPv6, port 80 (nginx) and port 9000 (echo).
VIPS = {
    ("nat", 4): "198.18.100.1",
    ("fullnat", 4): "198.18.100.2",
    ("dr", 4): "198.18.100.3",
    ("synproxy", 4): "198.18.100.4",
    ("nat", 6): "2001:2:0:100::1",
    ("fullnat", 6): "2001:2:0:100::2",
    ("dr", 6): "2001:2:0:100::3",
    ("synproxy", 6): "2001:2:0:100::4",
}


class Tunnel:
    """A tunnel VIP: the VIP's family, the encapsulation and the family of
    the backends' addresses (the outer header's); QUICK ones run in --quick."""

    def __init__(self, fam, encap, outer, vip, quick):
        self.fam, self.encap, self.outer, self.vip, self.quick = fam, encap, outer, vip, quick
        self.name = f"tun{fam}-{encap}" + (f"-over{outer}" if outer != fam else "")
        self.mode = f"tunnel {encap}"

    def label(self):
        return "" if self.outer == self.fam else f", over {fam_name(self.outer)}"


TUNNELS = [
    Tunnel(4, "ipip", 4, "198.18.100.5", True),       # IPv4 in IPv4, protocol 4
    Tunnel(4, "gue", 4, "198.18.100.6", False),       # IPv4 + UDP 6080 + GUE
    Tunnel(6, "ipip", 6, "2001:2:0:100::5", False),   # IPv6 in IPv6, next header 41
    Tunnel(6, "gue", 6, "2001:2:0:100::6", True),
    Tunnel(4, "ipip", 6, "198.18.100.7", True),       # IPv4 in IPv6, next header 4
    Tunnel(6, "gue", 4, "2001:2:0:100::7", False),    # IPv6 in IPv4 + UDP + GUE
]
GUE_PORT = 6080  # rampart's default gue_port; decap.c is built for it
# The steer case: a NAT VIP per family whose [[vip.source]] entries send
# the client's prefix to b1 and b2 and client2's to b3.
STEER_VIPS = {4: "198.18.100.8", 6: "2001:2:0:100::8"}
STEER_POOLS = {4: [("198.18.0.0/24", ["b1", "b2"]), ("198.18.3.0/24", ["b3"])],
               6: [("2001:2::/64", ["b1", "b2"]), ("2001:2:0:3::/64", ["b3"])]}
# The VIPs both boxes of the tier case serve: DR and tunnel, whose return
# traffic does not come back through a box, so any box can take any flow.
TIER_DR = VIPS[("dr", 4)]
TIER_TUN = TUNNELS[0]  # IPv4 in IPv4 (ipip)
TIER_DRAIN_S = 3
# The PMTU case: the router's client-facing MTU while it runs (the client's
# own stays 1500, so it still advertises an MSS of 1460).
PMTU_HOP_MTU = 1400
LOCALS = {("fullnat", 4): "198.18.1.100", ("fullnat", 6): "2001:2:0:1::100",
          ("synproxy", 6): "2001:2:0:1::101"}
# PROXY protocol v2 VIPs, FullNAT: (family, synproxy) -> (VIP, local address).
# nginx listens with `proxy_protocol` on PP_HTTP_PORT, a server that speaks
# first on PP_BANNER_PORT.
PP_VIPS = {
    (4, False): ("198.18.100.8", "198.18.1.102"),
    (4, True): ("198.18.100.9", "198.18.1.103"),
    (6, False): ("2001:2:0:100::8", "2001:2:0:1::102"),
    (6, True): ("2001:2:0:100::9", "2001:2:0:1::103"),
}
PP_HTTP_PORT = 8080
PP_BANNER_PORT = 8025
PP_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
HEALTH = {"interval_ms": 300, "timeout_ms": 200, "rise": 2, "fall": 2}
# The faults case's connection table, and the timeouts of its and the soak
# case's configs: a closed connection's entry goes within seconds.
FAULT_CAPACITY = 128
# The soak: a VIP whose backends never go (strict), one whose do (b2's
# nginx killed, b4 added and removed: reported), and when things happen.
SOAK_STEADY = VIPS[("nat", 4)]
SOAK_CHURN = VIPS[("fullnat", 4)]
SOAK_RELOAD_EVERY = 5
SOAK_KILL_EVERY, SOAK_KILL_AT = 30, 20
SOAK_FLOOD_EVERY, SOAK_FLOOD_AT = 60, 8
SHORT_TIMEOUTS = {"tcp_syn_sent": 5, "tcp_syn_recv": 5, "tcp_established": 30,
                  "tcp_fin_wait": 3, "tcp_close_wait": 3, "tcp_time_wait": 2, "tcp_close": 2,
                  "udp": 3}
# The fragments case: a UDP echo service on the NAT and DR VIPs' addresses,
# datagrams of FRAG_BYTES over links of FRAG_MTU.
UDP_PORT = 5300
FRAG_MTU = 1280
FRAG_BYTES = 4000
FRAG_DATAGRAMS = 20


def url(host, path="/", port=80):
    h = f"[{host}]" if ":" in host else host
    return f"http://{h}:{port}{path}" if port != 80 else f"http://{h}{path}"


def fam_name(fam):
    return "IPv4" if fam == 4 else "IPv6"


# --- small process helpers --------------------------------------------------------


class Failure(Exception):
    pass


def log(msg):
    print(f"e2e: {msg}", file=sys.stderr, flush=True)


def sh(args, timeout=30, check=True, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise Failure(f"{' '.join(args)} exited {r.returncode}: {r.stderr.strip() or r.stdout.strip()}")
    return r


def percentile(values, q):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def ms(v):
    return "-" if v is None else (f"{v * 1000:.2f} ms" if v < 10 else f"{v:.1f} s")


# --- the bed ------------------------------------------------------------------------


class Bed:
    """Namespaces, links, addresses and the processes started in them."""

    def __init__(self, work, tag):
        self.work = work
        self.tag = tag
        self.procs = []  # (name, Popen)
        self.names = (["client", "client2", "router", "lan", "lb", "lb2"] + [b.name for b in BACKENDS]
                      + [t.name for t in TUN_BACKENDS])

    def ns(self, role):
        return f"{self.tag}-{role}"

    def run(self, role, *args, timeout=30, check=True):
        return sh(["ip", "netns", "exec", self.ns(role), *args], timeout=timeout, check=check)

    def spawn(self, role, args, name, lifetime):
        """Starts ARGS in ROLE's namespace under `timeout LIFETIME`, its own
        process group, output to WORK/NAME.out / .err."""
        out = open(os.path.join(self.work, f"{name}.out"), "w")
        err = open(os.path.join(self.work, f"{name}.err"), "w")
        p = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(role), "timeout", "-k", "5", str(int(lifetime)), *args],
            stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append((name, p))
        return p

    def stop(self, p, sig=signal.SIGTERM, wait=10):
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(wait)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        return p.returncode

    def teardown(self):
        for _, p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for _, p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        for role in self.names:
            subprocess.run(["ip", "netns", "del", self.ns(role)], capture_output=True)
        for d in os.listdir("/var/run/dpdk") if os.path.isdir("/var/run/dpdk") else []:
            if d == self.tag or d.startswith(self.tag + "b"):
                shutil.rmtree(os.path.join("/var/run/dpdk", d), ignore_errors=True)
        # A run on hugepages (the faults case) leaves its files if killed.
        for f in os.listdir("/dev/hugepages") if os.path.isdir("/dev/hugepages") else []:
            if f.startswith(self.tag + "b"):
                os.unlink(os.path.join("/dev/hugepages", f))

    def sysctl(self, role, *kv):
        self.run(role, "sysctl", "-qw", *kv)

    def veth(self, role_a, dev_a, role_b, dev_b, mac_a=None):
        sh(["ip", "-n", self.ns(role_a), "link", "add", dev_a, "type", "veth",
            "peer", "name", dev_b, "netns", self.ns(role_b)])
        if mac_a:
            sh(["ip", "-n", self.ns(role_a), "link", "set", dev_a, "address", mac_a])
        for role, dev in ((role_a, dev_a), (role_b, dev_b)):
            # The kernel leaves TCP checksums partial on a veth (offload):
            # rampart, reading through AF_PACKET, would see them wrong.
            self.run(role, "ethtool", "-K", dev, "tx", "off")

    def up(self, role, dev):
        sh(["ip", "-n", self.ns(role), "link", "set", dev, "up"])

    def addr(self, role, dev, cidr):
        extra = ["nodad"] if ":" in cidr else []
        sh(["ip", "-n", self.ns(role), "addr", "add", cidr, "dev", dev, *extra])

    def route(self, role, *spec):
        v6 = any(":" in s for s in spec)
        sh(["ip", "-n", self.ns(role), *(["-6"] if v6 else []), "route", "add", *spec])

    def build(self):
        for role in self.names:
            sh(["ip", "netns", "add", self.ns(role)])
            self.up(role, "lo")
        # the switch
        sh(["ip", "-n", self.ns("lan"), "link", "add", "br0", "type", "bridge",
            "mcast_snooping", "0"])
        self.sysctl("lan", "net.ipv6.conf.all.disable_ipv6=1")
        self.up("lan", "br0")

        def on_lan(role, dev, port, mac):
            self.veth(role, dev, "lan", port, mac_a=mac)
            sh(["ip", "-n", self.ns("lan"), "link", "set", port, "master", "br0"])
            self.up("lan", port)
            self.up(role, dev)

        # client <-> router, a direct link
        self.veth("client", "c0", "router", "rc0", mac_a="02:00:00:00:00:50")
        self.up("client", "c0")
        self.up("router", "rc0")
        self.addr("client", "c0", f"{CLIENT4}/24")
        self.addr("client", "c0", f"{CLIENT6}/64")
        self.route("client", "default", "via", RTR_C4)
        self.route("client", "default", "via", RTR_C6)
        # many short connections from one client: reuse TIME_WAIT ports
        self.sysctl("client", "net.ipv4.tcp_tw_reuse=1")
        self.sysctl("client", f"net.ipv4.ip_local_port_range={CLIENT_PORTS}")
        # client2 <-> router: the second client's own prefix
        self.veth("client2", "c0", "router", "rc2", mac_a="02:00:00:00:00:52")
        self.up("client2", "c0")
        self.up("router", "rc2")
        self.addr("client2", "c0", f"{CLIENT2_4}/24")
        self.addr("client2", "c0", f"{CLIENT2_6}/64")
        self.route("client2", "default", "via", RTR_C2_4)
        self.route("client2", "default", "via", RTR_C2_6)
        self.sysctl("client2", "net.ipv4.tcp_tw_reuse=1")

        # router
        on_lan("router", "rl0", "p-rtr", ROUTER_LAN_MAC)
        self.addr("router", "rc0", f"{RTR_C4}/24")
        self.addr("router", "rc0", f"{RTR_C6}/64")
        self.addr("router", "rc2", f"{RTR_C2_4}/24")
        self.addr("router", "rc2", f"{RTR_C2_6}/64")
        self.addr("router", "rl0", f"{RTR_L4}/24")
        self.addr("router", "rl0", f"{RTR_L6}/64")
        for kv in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                   "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
                   "net.ipv4.conf.rc0.rp_filter=0", "net.ipv4.conf.rl0.rp_filter=0",
                   "net.ipv4.conf.rc2.rp_filter=0",
                   # nftables synproxy (the comparison) needs strict tracking
                   "net.netfilter.nf_conntrack_tcp_loose=0"):
            self.run("router", "sysctl", "-qw", kv, check=not kv.startswith("net.netfilter"))
        self.route("router", VIPNET4, "via", NODE4)
        self.route("router", VIPNET6, "via", NODE6)
        self.route("router", FLOODNET, "via", CLIENT2_4)
        self.route("router", FLOODNET6, "via", CLIENT2_6)

        # rampart's port: r0 in lb, no address (the lb kernel ignores it)
        self.sysctl("lb", "net.ipv6.conf.all.disable_ipv6=1")
        self.sysctl("lb", "net.ipv6.conf.default.disable_ipv6=1")
        on_lan("lb", "r0", "p-lb", RAMPART_MAC)
        # the second box of the tier case, the same way
        self.sysctl("lb2", "net.ipv6.conf.all.disable_ipv6=1")
        self.sysctl("lb2", "net.ipv6.conf.default.disable_ipv6=1")
        on_lan("lb2", "r0", "p-lb2", RAMPART2_MAC)
        # ECMP over the boxes hashes on L4: one flow, one box.
        self.sysctl("router", "net.ipv4.fib_multipath_hash_policy=1")

        # backends
        for b in BACKENDS:
            on_lan(b.name, "b0", f"p-{b.name}", b.mac)
            self.addr(b.name, "b0", f"{b.v4}/24")
            self.addr(b.name, "b0", f"{b.v6}/64")
            # DR: every VIP address on lo, never answered for on the LAN
            for (mode, fam), vip in VIPS.items():
                if mode == "dr":
                    self.addr(b.name, "lo", f"{vip}/{32 if fam == 4 else 128}")
            for kv in ("net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
                       "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.b0.rp_filter=0",
                       "net.core.somaxconn=4096"):
                self.sysctl(b.name, kv)
            # NAT and FullNAT: back through rampart; DR: straight to the router
            self.route(b.name, "default", "via", NODE4)
            self.route(b.name, "default", "via", NODE6)
            for fam, gw in ((4, RTR_L4), (6, RTR_L6)):
                ipf = ["-4"] if fam == 4 else ["-6"]
                sh(["ip", "-n", self.ns(b.name), *ipf, "route", "add", "default", "via", gw,
                    "table", "100"])
                sh(["ip", "-n", self.ns(b.name), *ipf, "rule", "add", "from",
                    VIPS[("dr", fam)], "table", "100"])

        self.build_tunnel_side()

        # the router's counters: flood SYNs in, SYN-ACKs to the flood
        # sources (forwarded from an LB, or sent by the router's own synproxy)
        self.nft("router", """
table ip e2e {
    counter flood_syn {}
    counter synack_forwarded {}
    counter synack_local {}
    chain pre {
        type filter hook prerouting priority -350;
        ip saddr 198.19.0.0/16 tcp flags & (syn | ack) == syn counter name flood_syn
        ip daddr 198.19.0.0/16 tcp flags & (syn | ack) == syn | ack counter name synack_forwarded
    }
    chain out {
        type filter hook output priority -350;
        ip daddr 198.19.0.0/16 tcp flags & (syn | ack) == syn | ack counter name synack_local
    }
}
table ip6 e2e6 {
    counter flood_syn6 {}
    counter synack_forwarded6 {}
    counter synack_local6 {}
    chain pre {
        type filter hook prerouting priority -350;
        ip6 saddr 2001:2:0:ff::/64 tcp flags & (syn | ack) == syn counter name flood_syn6
        ip6 daddr 2001:2:0:ff::/64 tcp flags & (syn | ack) == syn | ack counter name synack_forwarded6
    }
    chain out {
        type filter hook output priority -350;
        ip6 daddr 2001:2:0:ff::/64 tcp flags & (syn | ack) == syn | ack counter name synack_local6
    }
}
""")

    def build_tunnel_side(self):
        """The tunnel backends: the router's rt0 on a second switch (br1 in
        the lan namespace) with t1 and t2, which hold every tunnel VIP on
        lo, take the outer headers off in XDP on their veth and answer the
        client straight through the router."""
        obj = os.path.join(self.work, "decap.o")
        sh(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c",
            DECAP_C, "-o", obj], timeout=60)
        sh(["ip", "-n", self.ns("lan"), "link", "add", "br1", "type", "bridge",
            "mcast_snooping", "0"])
        self.up("lan", "br1")

        def on_tun_lan(role, dev, port, mac):
            self.veth(role, dev, "lan", port, mac_a=mac)
            sh(["ip", "-n", self.ns("lan"), "link", "set", port, "master", "br1"])
            self.up("lan", port)
            self.up(role, dev)

        # no duplicate address detection on the new links: their link-local
        # addresses are usable at once (the first IPv6 request comes soon)
        for role in ["router"] + [t.name for t in TUN_BACKENDS]:
            self.sysctl(role, "net.ipv6.conf.default.accept_dad=0")
        on_tun_lan("router", "rt0", "p-rtt", ROUTER_TUN_MAC)
        self.sysctl("router", "net.ipv4.conf.rt0.rp_filter=0")
        self.addr("router", "rt0", f"{RTR_T4}/24")
        self.addr("router", "rt0", f"{RTR_T6}/64")
        for t in TUN_BACKENDS:
            on_tun_lan(t.name, "t0", f"p-{t.name}", t.mac)
            self.addr(t.name, "t0", f"{t.v4}/24")
            self.addr(t.name, "t0", f"{t.v6}/64")
            for tun in TUNNELS:
                self.addr(t.name, "lo", f"{tun.vip}/{32 if tun.fam == 4 else 128}")
            # the decapsulated packet comes in on t0 from the client's
            # address, which t0 would not route back to: no reverse-path filter
            for kv in ("net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
                       "net.ipv4.conf.t0.rp_filter=0", "net.ipv4.conf.all.arp_ignore=1",
                       "net.core.somaxconn=4096"):
                self.sysctl(t.name, kv)
            self.route(t.name, "default", "via", RTR_T4)
            self.route(t.name, "default", "via", RTR_T6)
            sh(["ip", "-n", self.ns(t.name), "link", "set", "dev", "t0", "xdp", "obj", obj,
                "sec", "xdp"])

    def nft(self, role, ruleset):
        path = os.path.join(self.work, f"nft-{role}-{abs(hash(ruleset)) % 10**8}.nft")
        with open(path, "w") as f:
            f.write(ruleset)
        self.run(role, "nft", "-f", path)

    def counters(self):
        """The router's counters: IPv4's (flood_syn, ...) and IPv6's
        (flood_syn6, ...)."""
        out = {}
        for fam, table in (("ip", "e2e"), ("ip6", "e2e6")):
            r = self.run("router", "nft", "-j", "list", "counters", "table", fam, table)
            for item in json.loads(r.stdout)["nftables"]:
                c = item.get("counter")
                if c:
                    out[c["name"]] = c["packets"]
        return out

    def link_drops(self):
        """Per interface of the path (router, switch, lb), the packets the
        kernel counted as dropped, rx and tx: {"ns/dev": n}."""
        out = {}
        for role in ("router", "lan", "lb"):
            r = self.run(role, "ip", "-s", "-j", "link", "show", check=False)
            for link in json.loads(r.stdout or "[]"):
                st = link.get("stats64", {})
                out[f"{role}/{link['ifname']}"] = (st.get("rx", {}).get("dropped", 0)
                                                   + st.get("tx", {}).get("dropped", 0))
        return out

    def conntrack_count(self, role):
        r = self.run(role, "cat", "/proc/sys/net/netfilter/nf_conntrack_count", check=False)
        return int(r.stdout.strip()) if r.returncode == 0 and r.stdout.strip() else 0


def softnet_dropped():
    """Packets the kernel dropped for a full per-CPU input backlog (every
    namespace's veths share it): column 2 of /proc/net/softnet_stat."""
    with open("/proc/net/softnet_stat") as f:
        return sum(int(line.split()[1], 16) for line in f if line.strip())


# --- servers ------------------------------------------------------------------------


def nginx_conf(work, b):
    d = os.path.join(work, b.name)
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    return f"""
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    default_type text/plain;
    server {{
        listen 80 backlog=4096;
        listen [::]:80 ipv6only=on backlog=4096;
        add_header X-Backend {b.name} always;
        add_header X-Client $remote_addr always;
        location = / {{ return 200 "{b.name}\\n"; }}
        location = /blob {{ alias {work}/www/blob; }}
    }}
    log_format proxied '$proxy_protocol_addr $proxy_protocol_port $remote_addr';
    server {{
        listen {PP_HTTP_PORT} proxy_protocol backlog=4096;
        listen [::]:{PP_HTTP_PORT} ipv6only=on proxy_protocol backlog=4096;
        access_log {d}/proxy.log proxied;
        add_header X-Backend {b.name} always;
        add_header X-Client $proxy_protocol_addr always;
        location = / {{ return 200 "{b.name}\\n"; }}
        location = /blob {{ alias {work}/www/blob; }}
    }}
}}
"""


def start_nginx(bed, b, lifetime):
    d = os.path.join(bed.work, b.name)
    conf = os.path.join(d, "nginx.conf")
    os.makedirs(d, exist_ok=True)
    with open(conf, "w") as f:
        f.write(nginx_conf(bed.work, b))
    return bed.spawn(b.name, ["nginx", "-p", d, "-e", f"{d}/error.log", "-c", conf],
                     f"{b.name}-nginx", lifetime)


def wait_listening(bed, role, port, what, limit=10):
    deadline = time.time() + limit
    while time.time() < deadline:
        r = bed.run(role, "ss", "-Htln", f"sport = :{port}", check=False)
        if r.stdout.strip():
            return
        time.sleep(0.1)
    raise Failure(f"{what} is not listening on port {port} after {limit} s")


def echo_server(args):
    """Role: echo every byte back, one thread per connection, for LIFETIME s."""
    deadline = time.time() + args.lifetime
    socks = []
    for fam, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, args.port))
        s.listen(256)
        s.settimeout(0.5)
        socks.append(s)

    def serve(c):
        c.settimeout(30)
        with c:
            try:
                while True:
                    d = c.recv(65536)
                    if not d:
                        break
                    c.sendall(d)
            except OSError:
                pass

    while time.time() < deadline:
        for s in socks:
            try:
                c, _ = s.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=serve, args=(c,), daemon=True).start()


def recv_exact(c, n):
    buf = b""
    while len(buf) < n:
        d = c.recv(n - len(buf))
        if not d:
            raise OSError("closed")
        buf += d
    return buf


def banner_server(args):
    """Role: a server that speaks first, behind a PROXY v2 VIP: reads the
    header (and nothing else: its client sends nothing), then writes a
    banner naming the client address and port the header announced."""
    deadline = time.time() + args.lifetime
    socks = []
    for fam, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, args.port))
        s.listen(256)
        s.settimeout(0.5)
        socks.append(s)

    def serve(c):
        c.settimeout(10)
        with c:
            try:
                hdr = recv_exact(c, 16)
                if hdr[:12] != PP_SIGNATURE or hdr[12] != 0x21:
                    c.sendall(b"500 no PROXY v2 header\r\n")
                    return
                body = recv_exact(c, int.from_bytes(hdr[14:16], "big"))
                if hdr[13] == 0x11:
                    src, port = ipaddress.IPv4Address(body[0:4]), body[8:10]
                elif hdr[13] == 0x21:
                    src, port = ipaddress.IPv6Address(body[0:16]), body[32:34]
                else:
                    c.sendall(b"500 not TCP over IPv4 or IPv6\r\n")
                    return
                c.sendall(f"220 hello {src} {int.from_bytes(port, 'big')}\r\n".encode())
                c.recv(1)  # until the client closes
            except OSError:
                pass

    while time.time() < deadline:
        for s in socks:
            try:
                c, _ = s.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=serve, args=(c,), daemon=True).start()


def banner_client(args):
    """Role: connect to HOST:PORT, send nothing, read one line; print
    JSON: the line, our own address and port, seconds."""
    t0 = time.time()
    try:
        s = socket.create_connection((args.host, args.port), timeout=10)
        s.settimeout(10)
        me = s.getsockname()
        line = b""
        while not line.endswith(b"\n"):
            d = s.recv(256)
            if not d:
                break
            line += d
        s.close()
        print(json.dumps({"line": line.decode(errors="replace").strip(), "addr": me[0],
                          "port": me[1], "seconds": time.time() - t0}))
    except OSError as e:
        print(json.dumps({"line": "", "error": str(e), "seconds": time.time() - t0}))


def echo_client(args):
    """Role: send BYTES pseudo-random bytes to HOST:PORT while reading the
    echo; print one JSON line: ok, bytes sent/received, digests, seconds."""
    data = hashlib.shake_256(b"rampart-e2e").digest(args.bytes)
    t0 = time.time()
    s = socket.create_connection((args.host, args.port), timeout=10)
    s.settimeout(20)
    got = bytearray()

    def reader():
        while len(got) < len(data):
            d = s.recv(1 << 16)
            if not d:
                break
            got.extend(d)

    t = threading.Thread(target=reader)
    t.start()
    view = memoryview(data)
    for i in range(0, len(data), 1 << 16):
        s.sendall(view[i:i + (1 << 16)])
    s.shutdown(socket.SHUT_WR)
    t.join(60)
    s.close()
    sent, back = hashlib.sha256(data).hexdigest(), hashlib.sha256(bytes(got)).hexdigest()
    print(json.dumps({"ok": sent == back and len(got) == len(data), "sent": len(data),
                      "received": len(got), "sha256_sent": sent, "sha256_received": back,
                      "seconds": time.time() - t0}))


def udp_echo_server(args):
    """Role: echo every UDP datagram to its sender from the address it
    came to, on each of ADDRS at PORT, for LIFETIME s. One socket per
    address, so an answer leaves from the address the client wrote to (the
    backend's own for NAT, the VIP for DR)."""
    import select
    deadline = time.time() + args.lifetime
    socks = []
    for a in args.addrs.split(","):
        fam = socket.AF_INET6 if ":" in a else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # IP_FREEBIND / IPV6_FREEBIND: an IPv6 address may still be in
        # duplicate address detection when the server starts.
        s.setsockopt(socket.SOL_IP, 15, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, 78, 1)
        s.bind((a, args.port))
        socks.append(s)
    while time.time() < deadline:
        ready, _, _ = select.select(socks, [], [], 0.5)
        for s in ready:
            try:
                d, peer = s.recvfrom(65535)
                s.sendto(d, peer)
            except OSError:
                pass


def udp_echo_client(args):
    """Role: COUNT datagrams of BYTES distinct bytes each to HOST:PORT,
    one at a time, each sent up to 3 times until its echo comes back the
    same; print one JSON line: sent, echoed intact, tries."""
    fam = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.connect((args.host, args.port))
    s.settimeout(1.0)
    good = tries = 0
    for i in range(args.count):
        data = hashlib.shake_256(b"rampart-frag-%d" % i).digest(args.bytes)
        for _ in range(3):
            tries += 1
            s.send(data)
            try:
                if s.recv(65535) == data:
                    good += 1
                    break
            except OSError:
                pass
    print(json.dumps({"sent": args.count, "echoed": good, "tries": tries}))


def tcp_checksum6(src, dst, seg):
    """The TCP checksum of SEG between IPv6 addresses SRC and DST (bytes)."""
    data = src + dst + len(seg).to_bytes(4, "big") + b"\x00\x00\x00\x06" + seg
    if len(data) % 2:
        data += b"\x00"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def syn6_flood(args):
    """Role: IPv6 TCP SYNs to DST:PORT from spoofed sources (SOURCE plus
    0..255, source ports 1024.., 4096 distinct frames) written to DEV
    through a packet socket, as fast as one process writes, until SECONDS
    have passed or COUNT were sent; prints JSON: sent, seconds."""
    import struct
    with open(f"/sys/class/net/{args.dev}/address") as f:
        src_mac = bytes.fromhex(f.read().strip().replace(":", ""))
    dst_mac = bytes.fromhex(args.dst_mac.replace(":", ""))
    dst = ipaddress.IPv6Address(args.dst).packed
    base = int(ipaddress.IPv6Address(args.source))
    frames = []
    for i in range(4096):
        src = ipaddress.IPv6Address(base + i % 256).packed
        sport = 1024 + i
        seg = struct.pack("!HHIIBBHHH", sport, args.port, 0x5A5A0000 + i, 0, 5 << 4, 0x02,
                          64240, 0, 0)
        seg = seg[:16] + tcp_checksum6(src, dst, seg).to_bytes(2, "big") + seg[18:]
        ip6 = struct.pack("!IHBB", 0x60000000, len(seg), 6, 64) + src + dst
        frames.append(dst_mac + src_mac + b"\x86\xdd" + ip6 + seg)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((args.dev, 0))
    t0 = time.time()
    deadline = t0 + args.seconds
    sent = 0
    while sent < args.count:
        for fr in frames:
            try:
                s.send(fr)
            except OSError:
                pass  # a full device queue: the kernel drops it, as hping3's
        sent += len(frames)
        if time.time() >= deadline:
            break
    print(json.dumps({"sent": sent, "seconds": time.time() - t0}), flush=True)


# Sends of one UDP request before it counts as failed (0.5 + 1 + 2 + 4 s
# of waiting with udp-rr's default timeout).
UDP_TRIES = 4


def udp_rr_client(args):
    """Role: UDP request/response to HOST:PORT at RATE requests a second
    for SECONDS: each request a distinct payload, sent up to UDP_TRIES
    times until its echo comes back, waiting TIMEOUT s for the first
    answer and twice as long after each resend, as UDP clients back off
    (TCP resends a SYN after 1, 3 and 7 s); prints JSON: requests,
    answered, answered at the first try, failed, worst seconds."""
    fam = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.connect((args.host, args.port))
    n = answered = first = 0
    worst = 0.0
    failed_at = []  # seconds into the run of each request never answered
    t_start = time.time()
    while time.time() - t_start < args.seconds:
        t0 = time.time()
        data = b"rr-%d-%d" % (os.getpid(), n)
        n += 1
        for attempt in range(UDP_TRIES):
            s.settimeout(args.timeout * 2 ** attempt)
            try:
                s.send(data)
                got = s.recv(2048)
                while got != data:  # a late echo of an earlier try
                    got = s.recv(2048)
                answered += 1
                first += attempt == 0
                break
            except OSError:
                continue
        else:
            failed_at.append(round(t0 - t_start, 2))
        worst = max(worst, time.time() - t0)
        time.sleep(max(0.0, t_start + n / args.rate - time.time()))
    print(json.dumps({"requests": n, "answered": answered, "first_try": first,
                      "failed": n - answered, "failed_at": failed_at[:100], "worst_s": worst}),
          flush=True)


def keepalive_client(args):
    """Role: CONNS keep-alive HTTP connections to HOST, one request on each
    every INTERVAL s for SECONDS s. Prints a `ready` JSON line once every
    connection has its first answer, then a result line."""
    conns = []
    for _ in range(args.conns):
        c = http.client.HTTPConnection(args.host, 80, timeout=args.timeout)
        conns.append({"c": c, "names": [], "fail": 0, "err": None})
    deadline = time.time() + args.seconds
    first = True
    while time.time() < deadline:
        t0 = time.time()
        for k in conns:
            if k["err"]:
                continue
            try:
                k["c"].request("GET", "/")
                r = k["c"].getresponse()
                body = r.read()
                if r.status != 200:
                    raise OSError(f"status {r.status}")
                k["names"].append(body.decode().strip())
            except (OSError, http.client.HTTPException) as e:
                k["fail"] += 1
                k["err"] = str(e) or type(e).__name__
        if first:
            print(json.dumps({"ready": [k["names"][0] if k["names"] else None for k in conns]}),
                  flush=True)
            first = False
        time.sleep(max(0.0, args.interval - (time.time() - t0)))
    res = [{"requests": len(k["names"]), "backends": sorted(set(k["names"])), "fail": k["fail"],
            "error": k["err"]} for k in conns]
    print(json.dumps({"conns": res}), flush=True)


# --- clients driven from here --------------------------------------------------------


def curl_batch(bed, target, n, timeout=5, role="client"):
    """N sequential requests from ROLE's namespace, each on a new
    connection. Returns a list of (ok, seconds, backend name, client
    address the backend saw)."""
    args = ["curl", "-sg", "--max-time", str(timeout), "-H", "Connection: close", "-w",
            "%{http_code}\\t%{time_total}\\t%header{x-backend}\\t%header{x-client}\\t"
            "%{exitcode}\\t%{errormsg}\\n"]
    for _ in range(n):
        args += ["-o", "/dev/null", target]
    r = bed.run(role, *args, timeout=n * (timeout + 1) + 10, check=False)
    out = []
    for line in r.stdout.splitlines():
        f = line.split("\t")
        if len(f) < 6:
            continue
        ok = f[0] == "200"
        out.append((ok, float(f[1]), f[2] or None, f[3] or None))
        if not ok:
            # Every failed request is named with curl's own reason, so a
            # failed check says what went wrong, not only how often.
            log(f"curl {target} from {role}: HTTP {f[0]}, exit {f[4]} ({f[5]}) after {f[1]} s")
    if len(out) < n:
        log(f"curl {target} from {role}: {n - len(out)} of {n} requests printed nothing "
            f"(curl exit {r.returncode}): counted as failed")
    out += [(False, float(timeout), None, None)] * (n - len(out))
    return out


def curl_for(bed, target, seconds, batch=10, limit=100000, timeout=5):
    """Requests on new connections until SECONDS have passed."""
    res = []
    end = time.time() + seconds
    while time.time() < end and len(res) < limit:
        res += curl_batch(bed, target, batch, timeout)
    return res


# The client's ephemeral ports, and the ports of the loads that open a
# connection per request for the rampart/nftables comparison, kept apart:
# the backends hold such a load's tens of thousands of closed connections
# in TIME_WAIT, and the NAT VIPs share backends, so a later connection
# from a port the load used, to another VIP on the same backend, would
# meet one (refused: the client's TCP timestamps differ per VIP).
CLIENT_PORTS = "10000 49999"
APART_PORTS = "50000 65000"


def wrk_apart(bed, target, seconds):
    """wrk with a new connection per request from the client's APART_PORTS."""
    bed.sysctl("client", f"net.ipv4.ip_local_port_range={APART_PORTS}")
    try:
        return wrk(bed, target, seconds, close=True)
    finally:
        bed.sysctl("client", f"net.ipv4.ip_local_port_range={CLIENT_PORTS}")


def wrk(bed, target, seconds, conns=16, close=False, timeout=3):
    """wrk from the client: CONNS keep-alive connections, or with CLOSE a
    new connection for every request (`Connection: close`)."""
    hdr = ["-H", "Connection: close"] if close else []
    r = bed.run("client", "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", f"{timeout}s",
                *hdr, "--latency", target, timeout=seconds + 30, check=False)
    return parse_wrk(r.stdout + r.stderr)


UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def parse_wrk(text):
    def lat(pct):
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        return float(m.group(1)) * UNITS[m.group(2)] if m else None

    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    socket_errors = sum(int(x) for x in sock.groups()) if sock else 0
    return {
        "requests": int(m.group(1)) if m else 0,
        "socket_errors": socket_errors,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": lat(50), "p99": lat(99), "text": text,
    }


# --- rampart ------------------------------------------------------------------------


def toml_list(xs):
    return "[" + ", ".join(f'"{x}"' for x in xs) + "]"


def box_file(box, name):
    """A per-box file name in WORK: NAME for box 1, box2-NAME for box 2."""
    return name if box == 1 else f"box2-{name}"


def tier_vips():
    """Box 2's VIPs: the tier's DR and tunnel VIPs, as box 1 has them."""
    lines = []
    for b in BACKENDS:
        lines += ["[[neighbor]]", f'address = "{b.v4}"', f'mac = "{b.mac}"', ""]
    lines += ["[[vip]]", 'name = "dr-4"', f'address = "{TIER_DR}"', "port = 80",
              'protocol = "tcp"', 'mode = "dr"', "", "[vip.health]", 'kind = "tcp"']
    lines += [f"{k} = {v}" for k, v in HEALTH.items()] + [""]
    for b in IN_VIPS:
        lines += ["[[vip.backend]]", f'address = "{b.v4}"', "port = 80", f"weight = {b.weight}", ""]
    tun = TIER_TUN
    lines += ["[[vip]]", f'name = "{tun.name}"', f'address = "{tun.vip}"', "port = 80",
              'protocol = "tcp"', 'mode = "tunnel"', f'encap = "{tun.encap}"', "",
              "[vip.health]", 'kind = "tcp"']
    lines += [f"{k} = {v}" for k, v in HEALTH.items()] + [""]
    for b in TUN_BACKENDS:
        lines += ["[[vip.backend]]", f'address = "{b.v4}"', "port = 80", f"weight = {b.weight}", ""]
    return lines


# BIRD: the router peers with both boxes (eBGP, BFD), installs what they
# announce as ECMP routes; each box exports what rampart's routes file holds.
BIRD_ROUTER = """\
log "{work}/bird-router.log" all;
router id {rtr};
protocol device {{ scan time 1; }}
protocol bfd {{ interface "*" {{ min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }}; }}
protocol kernel {{ ipv4 {{ import none; export where source = RTS_BGP; }}; merge paths on; }}
template bgp box {{
  local {rtr} as {as_router};
  hold time 3; keepalive time 1; connect retry time 1; bfd on;
  # a box that died comes back in seconds, not BIRD's default minute
  error wait time 1, 2;
  ipv4 {{ import all; export none; }};
}}
protocol bgp lb1 from box {{ neighbor {lb1} as {as_tier}; }}
protocol bgp lb2 from box {{ neighbor {lb2} as {as_tier}; }}
"""

BIRD_BOX = """\
log "{work}/{log}" all;
router id {node};
protocol device {{ scan time 1; }}
protocol bfd {{ interface "*" {{ min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }}; }}
include "{routes}";
protocol bgp uplink {{
  local {node} as {as_tier}; neighbor {rtr} as {as_router};
  hold time 3; keepalive time 1; connect retry time 1; bfd on;
  error wait time 1, 2;
  ipv4 {{ import none; export where proto = "rampart4"; }};
}}
"""


def start_bird(bed, role, name, conf_text, lifetime):
    conf = os.path.join(bed.work, f"{name}.conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    sock = os.path.join(bed.work, f"{name}.ctl")
    sh(["bird", "-p", "-c", conf])
    return bed.spawn(role, ["bird", "-f", "-c", conf, "-s", sock,
                            "-P", os.path.join(bed.work, f"{name}.pid")], name, lifetime)


def router_nexthops(bed, prefix):
    """The router's next hops for PREFIX (BGP routes only)."""
    r = bed.run("router", "ip", "-4", "route", "show", prefix, "proto", "bird", check=False)
    return sorted(set(re.findall(r"via (\S+)", r.stdout)))


def wait_nexthops(bed, prefix, want, limit):
    """Waits until the router's next hops for PREFIX are WANT; returns seconds."""
    t0 = time.time()
    while True:
        got = router_nexthops(bed, prefix)
        if got == sorted(want):
            return time.time() - t0
        if time.time() - t0 > limit:
            raise Failure(f"router next hops for {prefix}: {got}, not {sorted(want)} after {limit} s")
        time.sleep(0.05)


# rampart's port on the lb side's veth r0, by `--port-driver`: the kernel's
# packet socket (the default) or AF_XDP (copy mode on a veth).
PORT_DRIVERS = {
    "af_packet": "net_af_packet0,iface=r0,qdisc_bypass=1,framecnt=4096",
    "af_xdp": "net_af_xdp0,iface=r0,start_queue=0,queue_count=1",
}
PORT_DRIVER = "af_packet"
# `[dpdk] idle_sleep_us` of every run (`--idle-sleep-us`): two boxes share
# this machine's two CPUs, so a worker with nothing to do sleeps.
IDLE_SLEEP_US = 50


def rampart_config(work, nat_backends=None, tunnels=True, box=1, conntrack=None, vips=None):
    """The config: one VIP per mode and family, and the tunnel VIPs unless
    TUNNELS is false (a rampart from before tunnel mode). NAT_BACKENDS
    replaces the NAT VIPs' backend set (the reload case). BOX 2 is the
    tier case's second box: its own node address and MAC, the DR and
    tunnel VIPs of the tier only, its worker on the other CPU. Both have a
    kernel interface (rk0) for their BIRD and announce over BGP. CONNTRACK
    replaces the [conntrack] keys (capacity, timeouts); VIPS, lines of
    [[vip]] tables, replaces every VIP of box 1 (the faults and soak
    cases' own configs)."""
    node = NODE4 if box == 1 else NODE4_B
    lines = [
        "[node]",
        f'mac = "{RAMPART_MAC if box == 1 else RAMPART2_MAC}"',
        f'addresses = ["{node}", "{NODE6}"]' if box == 1 else f'addresses = ["{node}"]',
        f'gateway_mac = "{ROUTER_LAN_MAC}"',
        "",
        "[conntrack]",
        *[f"{k} = {v}" for k, v in (conntrack or {"capacity": 262144}).items()],
        "",
        "[control]",
        f'socket = "{work}/{box_file(box, "ctl.sock")}"',
        'prometheus = ""',
        "",
        "[dpdk]",
        "workers = 1",
        "mempool_size = 16383",
        "mempool_cache = 128",
        "stats_interval = 1",
        f"idle_sleep_us = {IDLE_SLEEP_US}",
        *(["lcores = [0]", "control_lcore = 1"] if box == 2 else []),
        "",
        "[[port]]",
        f'name = "{PORT_DRIVERS[PORT_DRIVER]}"',
        'kernel_interface = "rk0"',
        "",
        "[bgp]",
        f'socket = "{work}/{box_file(box, "bird.ctl")}"',
        f'routes_file = "{work}/{box_file(box, "bird-vips.conf")}"',
        f"drain_seconds = {TIER_DRAIN_S}",
        "",
    ]
    if box == 2:
        return "\n".join(lines + tier_vips())
    for b in BACKENDS:
        for fam in (4, 6):
            lines += ["[[neighbor]]", f'address = "{b.addr(fam)}"', f'mac = "{b.mac}"', ""]
    if vips is not None:
        return "\n".join(lines + vips)
    for (mode, fam), vip in VIPS.items():
        ports = [80, ECHO_PORT] if mode == "synproxy" else [80]
        for port in ports:
            real_mode = mode if mode != "synproxy" else ("nat" if fam == 4 else "fullnat")
            name = f"{mode}-{fam}" + (f"-{port}" if port != 80 else "")
            lines += ["[[vip]]", f'name = "{name}"', f'address = "{vip}"', f"port = {port}",
                      'protocol = "tcp"', f'mode = "{real_mode}"']
            if (mode, fam) in LOCALS:
                lines.append(f"local_addresses = {toml_list([LOCALS[(mode, fam)]])}")
            if mode == "synproxy":
                lines.append("synproxy = true")
            lines += ["", "[vip.health]", 'kind = "tcp"']
            lines += [f"{k} = {v}" for k, v in HEALTH.items()]
            lines.append("")
            backends = nat_backends if (mode == "nat" and nat_backends) else IN_VIPS
            for b in backends:
                lines += ["[[vip.backend]]", f'address = "{b.addr(fam)}"', f"port = {port}",
                          f"weight = {b.weight}", ""]
    # PROXY protocol v2 VIPs (FullNAT, the SYN proxy off and on): nginx with
    # `listen ... proxy_protocol` and a server that speaks first.
    for (fam, sp), (vip, local) in PP_VIPS.items():
        for port in (PP_HTTP_PORT, PP_BANNER_PORT):
            lines += ["[[vip]]", f'name = "pp{"-sp" if sp else ""}-{fam}-{port}"',
                      f'address = "{vip}"', f"port = {port}", 'protocol = "tcp"',
                      'mode = "fullnat"', f"local_addresses = {toml_list([local])}",
                      'proxy_protocol = "v2"']
            if sp:
                lines.append("synproxy = true")
            lines += ["", "[vip.health]", 'kind = "tcp"']
            lines += [f"{k} = {v}" for k, v in HEALTH.items()]
            lines.append("")
            for b in IN_VIPS:
                lines += ["[[vip.backend]]", f'address = "{b.addr(fam)}"', f"port = {port}",
                          f"weight = {b.weight}", ""]
    # The steer case's VIPs: NAT over b1..b3, one source entry per client.
    by_name = {b.name: b for b in IN_VIPS}
    for fam, vip in STEER_VIPS.items():
        lines += ["[[vip]]", f'name = "steer-{fam}"', f'address = "{vip}"', "port = 80",
                  'protocol = "tcp"', 'mode = "nat"', "", "[vip.health]", 'kind = "tcp"']
        lines += [f"{k} = {v}" for k, v in HEALTH.items()]
        lines.append("")
        for b in IN_VIPS:
            lines += ["[[vip.backend]]", f'address = "{b.addr(fam)}"', "port = 80",
                      f"weight = {b.weight}", ""]
        for prefix, pool in STEER_POOLS[fam]:
            lines += ["[[vip.source]]", f"prefixes = {toml_list([prefix])}",
                      f"backends = {toml_list([bport(by_name[n], fam) for n in pool])}", ""]
    # UDP echo VIPs on the NAT and DR VIPs' addresses (the fragments case).
    for mode in ("nat", "dr"):
        for fam in (4, 6):
            lines += ["[[vip]]", f'name = "udp-{mode}-{fam}"', f'address = "{VIPS[(mode, fam)]}"',
                      f"port = {UDP_PORT}", 'protocol = "udp"', f'mode = "{mode}"', ""]
            for b in IN_VIPS:
                lines += ["[[vip.backend]]", f'address = "{b.addr(fam)}"', f"port = {UDP_PORT}",
                          f"weight = {b.weight}", ""]
    # Tunnel VIPs: the backends are one routed hop away (through
    # gateway_mac, no [[neighbor]]), addressed in the outer header's family.
    for tun in TUNNELS if tunnels else []:
        lines += ["[[vip]]", f'name = "{tun.name}"', f'address = "{tun.vip}"', "port = 80",
                  'protocol = "tcp"', 'mode = "tunnel"', f'encap = "{tun.encap}"']
        if tun.encap == "gue":
            lines.append(f"gue_port = {GUE_PORT}")
        lines += ["", "[vip.health]", 'kind = "tcp"']
        lines += [f"{k} = {v}" for k, v in HEALTH.items()]
        lines.append("")
        for b in TUN_BACKENDS:
            lines += ["[[vip.backend]]", f'address = "{b.addr(tun.outer)}"', "port = 80",
                      f"weight = {b.weight}", ""]
    return "\n".join(lines)


def eal_memory(huge):
    """EAL's memory arguments: 128 MB of hugepages, or 512 MB without."""
    return ["-m", "128"] if huge else ["--no-huge", "-m", "512"]


def hugepages_free():
    with open("/proc/meminfo") as f:
        m = re.search(r"^HugePages_Free:\s+(\d+)", f.read(), re.M)
    return int(m.group(1)) if m else 0


class Rampart:
    def __init__(self, bed, binary, lifetime, tunnels, box=1, run=1, cfg_text=None, huge=False):
        self.bed = bed
        self.bin = binary
        self.tunnels = tunnels
        self.box = box
        self.role = "lb" if box == 1 else "lb2"
        # Box 1 restarted in the tier case writes new output files.
        self.name = ("rampart" if box == 1 else "rampart2") + (f"-run{run}" if run > 1 else "")
        self.cfg = os.path.join(bed.work, box_file(box, "rampart.toml"))
        self.sock = os.path.join(bed.work, box_file(box, "ctl.sock"))
        self.json = os.path.join(bed.work, f"{self.name}.json")
        self.prefix = f"{bed.tag}b{box}"
        with open(self.cfg, "w") as f:
            f.write(cfg_text or rampart_config(bed.work, tunnels=tunnels, box=box))
        self.started = time.time()
        self.proc = bed.spawn(self.role, [
            binary, "run", "--config", self.cfg, "--stats-json", self.json, "--",
            *eal_memory(huge), "--no-pci", "--no-shconf", "--no-telemetry",
            "--log-level", "lib.eal:warning", "--file-prefix", self.prefix],
            self.name, lifetime)
        self.err = os.path.join(bed.work, f"{self.name}.err")
        deadline = time.time() + 30
        while time.time() < deadline:
            if "rate  rx " in open(self.err).read():
                # "1 worker(s) on CPU 1, control on CPU 0"
                m = re.search(r"worker\(s\) on CPUs? ([\d, ]+?), control",
                              open(os.path.join(bed.work, f"{self.name}.out")).read())
                self.worker_cpus = {int(c) for c in m.group(1).split(",")} if m else set()
                break
            if self.proc.poll() is not None:
                raise Failure(f"rampart exited during start-up:\n{open(self.err).read()}")
            time.sleep(0.1)
        else:
            raise Failure(f"rampart not up within 30 s:\n{open(self.err).read()}")
        self.up_after = time.time() - self.started
        # The node address on the kernel interface, for the box's BIRD.
        node = NODE4 if box == 1 else NODE4_B
        bed.run(self.role, "ip", "addr", "add", f"{node}/24", "dev", "rk0")

    def ctl(self, *args):
        r = sh([self.bin, "ctl", "--socket", self.sock, "--json", *args], timeout=15)
        return json.loads(r.stdout)

    def rx(self):
        return self.ctl("status")["rx_packets"]

    def pid(self):
        """rampart's own pid (the child of `timeout`), or None."""
        r = sh(["pgrep", "-P", str(self.proc.pid)], check=False)
        pids = r.stdout.split()
        return int(pids[0]) if pids else None

    def kill(self):
        """SIGKILL to rampart itself (the child of `timeout`)."""
        sh(["pkill", "-KILL", "-P", str(self.proc.pid)], check=False)
        self.proc.wait(10)

    def announced(self, vip):
        for a in self.ctl("status").get("announcements", []):
            if a["vip"] == vip:
                return a["announced"], a["reason"]
        return None, None

    def events(self, *names):
        """Each event's total over the workers, from one `ctl stats`."""
        workers = self.ctl("stats")["workers"]
        return {n: sum(w["events"].get(n, 0) for w in workers) for n in names}

    def drops(self):
        out = {}
        for w in self.ctl("stats")["workers"]:
            for k, v in w["drops"].items():
                out[k] = out.get(k, 0) + v
        return {k: v for k, v in out.items() if v}

    def active(self):
        return self.ctl("status")["active_conns"]

    def stop(self, sig=signal.SIGINT, wait=20):
        rc = self.bed.stop(self.proc, sig, wait=wait)
        if rc != 0:
            raise Failure(f"rampart exited {rc} on {signal.Signals(sig).name}:\n{open(self.err).read()}")


def vip_lines(name, addr, port, mode, backends, fam, proto="tcp", extra=(), health=True):
    """One [[vip]] table: BACKENDS as (Backend, weight) pairs."""
    lines = ["[[vip]]", f'name = "{name}"', f'address = "{addr}"', f"port = {port}",
             f'protocol = "{proto}"', f'mode = "{mode}"', *extra, ""]
    if health:
        lines += ["[vip.health]", 'kind = "tcp"', *[f"{k} = {v}" for k, v in HEALTH.items()], ""]
    for b, weight in backends:
        lines += ["[[vip.backend]]", f'address = "{b.addr(fam)}"', f"port = {port}",
                  f"weight = {weight}", ""]
    return lines


def bport(b, fam, port=80):
    return f"{b.v4}:{port}" if fam == 4 else f"[{b.v6}]:{port}"


def wait_health(rp, backends, fams, ports, want, limit):
    """Waits until every listed backend's state is WANT; returns seconds."""
    t0 = time.time()
    while True:
        states = {b["address"]: b["state"] for b in rp.ctl("stats")["backends"]}
        pending = [bport(b, f, p) for b in backends for f in fams for p in ports
                   if states.get(bport(b, f, p)) != want]
        if not pending:
            return time.time() - t0
        if time.time() - t0 > limit:
            raise Failure(f"not {want} after {limit} s: {pending} ({states})")
        time.sleep(0.05)


# --- the suite ------------------------------------------------------------------------


class Suite:
    def __init__(self, args, bed, binary):
        self.a = args
        self.bed = bed
        self.bin = binary
        self.rows = []  # the summary table
        self.flood_rows = []
        self.compared = []
        self.failures = []
        self.checks = []
        q = args.quick
        self.wrk_s = 3 if q else 10
        self.dist_n = 120 if q else 400
        self.flood_s = 6 if q else 15
        self.reload_s = 6 if q else 12
        self.tun_n = 40 if q else 100
        self.lifetime = args.deadline
        self.tunnels = not args.no_tunnel_vips
        self.tun_cases = [t for t in TUNNELS if t.quick or not q]

    def check(self, ok, what):
        self.checks.append((bool(ok), what))
        log(("ok   " if ok else "FAIL ") + what)
        if not ok:
            self.failures.append(what)

    def observe(self, ok, what):
        """A finding of the nftables comparison: logged and kept in
        summary.json, never a failure (the comparison is reported)."""
        self.checks.append((bool(ok), f"(nftables, reported) {what}"))
        log(("seen " if ok else "NOTE ") + what)

    def compare(self, lb, load, fam, w):
        """A wrk figure of NAT for the side-by-side table of rampart and
        nftables DNAT in the report (both from this run, the same load)."""
        self.compared.append({"lb": lb, "load": load, "family": fam_name(fam),
                              "rps": w["rps"], "p99": w["p99"],
                              "errors": w["socket_errors"] + w["non_2xx"]})

    def row(self, case, mode, fam, requests, errors, p50, p99, note="", asserted=True):
        """A row of the summary; ASSERTED false for one whose errors are the
        case's point (a fault), checked by the case itself."""
        self.rows.append({"case": case, "mode": mode, "family": fam_name(fam) if fam else "-",
                          "requests": requests, "errors": errors, "p50": p50, "p99": p99,
                          "note": note, "asserted": asserted})

    def wrk_row(self, case, mode, fam, w, asserted=True, fault=False, note=""):
        """A wrk run's row; unless it is only reported, a check that it ran
        with no socket error and no non-2xx answer. FAULT: errors are the
        point of the run (a fault case checks them itself)."""
        self.row(case, mode, fam, w["requests"], w["socket_errors"] + w["non_2xx"], w["p50"],
                 w["p99"], f"{w['rps']:.0f} req/s" + (f"; {note}" if note else ""),
                 asserted=not fault)
        if asserted:
            self.check(w["requests"] > 0 and w["socket_errors"] == 0 and w["non_2xx"] == 0,
                       f"{case}, {mode} {fam_name(fam)}: wrk {w['requests']} requests, "
                       f"{w['socket_errors']} socket errors, {w['non_2xx']} non-2xx")

    def curl_row(self, case, mode, fam, res, note=""):
        oks = [t for ok, t, *_ in res if ok]
        self.row(case, mode, fam, len(res), len(res) - len(oks), percentile(oks, 50),
                 percentile(oks, 99), note)

    # servers and rampart

    def start_servers(self):
        os.makedirs(os.path.join(self.bed.work, "www"), exist_ok=True)
        with open(os.path.join(self.bed.work, "www", "blob"), "wb") as f:
            f.write(hashlib.shake_256(b"rampart-e2e-blob").digest(BLOB_BYTES))
        self.nginx = {}
        for b in BACKENDS:
            self.nginx[b.name] = start_nginx(self.bed, b, self.lifetime)
            self.bed.spawn(b.name, [sys.executable, SELF, "echo-server", "--port", str(ECHO_PORT),
                                    "--lifetime", str(self.lifetime)], f"{b.name}-echo",
                           self.lifetime + 5)
            self.bed.spawn(b.name, [sys.executable, SELF, "banner-server", "--port",
                                    str(PP_BANNER_PORT), "--lifetime", str(self.lifetime)],
                           f"{b.name}-banner", self.lifetime + 5)
        for b in IN_VIPS:
            addrs = [b.v4, b.v6, VIPS[("dr", 4)], VIPS[("dr", 6)]]
            self.bed.spawn(b.name, [sys.executable, SELF, "udp-echo-server", "--port",
                                    str(UDP_PORT), "--addrs", ",".join(addrs), "--lifetime",
                                    str(self.lifetime)], f"{b.name}-udp-echo", self.lifetime + 5)
        for t in TUN_BACKENDS:
            self.nginx[t.name] = start_nginx(self.bed, t, self.lifetime)
        for b in BACKENDS:
            wait_listening(self.bed, b.name, 80, f"nginx on {b.name}")
            wait_listening(self.bed, b.name, ECHO_PORT, f"echo server on {b.name}")
            wait_listening(self.bed, b.name, PP_HTTP_PORT, f"nginx (proxy_protocol) on {b.name}")
            wait_listening(self.bed, b.name, PP_BANNER_PORT, f"banner server on {b.name}")
        for t in TUN_BACKENDS:
            wait_listening(self.bed, t.name, 80, f"nginx on {t.name}")

    def start_rampart(self):
        self.rp = Rampart(self.bed, self.bin, self.lifetime, self.tunnels)
        self.start_birds()
        t = wait_health(self.rp, IN_VIPS, (4, 6), (80, ECHO_PORT, PP_HTTP_PORT, PP_BANNER_PORT),
                        "up", 15)
        if self.tunnels:
            t = wait_health(self.rp, TUN_BACKENDS, (4, 6), (80,), "up", 15)
        log(f"rampart up, every backend healthy after {t:.1f} s")

    def start_birds(self):
        """BIRD on the router and on box 1; box 2's starts with box 2."""
        bed, w = self.bed, self.bed.work
        self.bird_router = start_bird(bed, "router", "bird-router", BIRD_ROUTER.format(
            work=w, rtr=RTR_L4, lb1=NODE4, lb2=NODE4_B, as_router=AS_ROUTER, as_tier=AS_TIER),
            self.lifetime)
        self.bird_box(1)

    def bird_box(self, box):
        """BIRD on a box, once its rampart has written the routes file."""
        bed = self.bed
        routes = os.path.join(bed.work, box_file(box, "bird-vips.conf"))
        deadline = time.time() + 10
        while not os.path.exists(routes):
            if time.time() > deadline:
                raise Failure(f"box {box}: rampart wrote no routes file {routes}")
            time.sleep(0.05)
        name = box_file(box, "bird")
        conf = BIRD_BOX.format(work=bed.work, log=f"{name}.log", node=NODE4 if box == 1 else NODE4_B,
                               routes=routes, rtr=RTR_L4, as_router=AS_ROUTER, as_tier=AS_TIER)
        return start_bird(bed, "lb" if box == 1 else "lb2", name, conf, self.lifetime)

    # cases

    def modes(self):
        for mode in ("nat", "fullnat", "dr"):
            for fam in (4, 6):
                vip = VIPS[(mode, fam)]
                res = curl_batch(self.bed, url(vip), self.dist_n)
                self.curl_row("curl, new connections", mode, fam, res)
                fails = [r for r in res if not r[0]]
                self.check(not fails, f"{mode} {fam_name(fam)}: {len(res)} curl requests, "
                                      f"{len(fails)} failed")
                counts = {b.name: 0 for b in IN_VIPS}
                for ok, _, name, _ in res:
                    if ok and name in counts:
                        counts[name] += 1
                total = sum(counts.values()) or 1
                wsum = sum(b.weight for b in IN_VIPS)
                spread = []
                for b in IN_VIPS:
                    p = b.weight / wsum
                    share = counts[b.name] / total
                    # 4 standard deviations of a binomial share
                    tol = 4 * (p * (1 - p) / total) ** 0.5
                    spread.append(f"{b.name} {share:.0%} (weight {p:.0%})")
                    self.check(counts[b.name] > 0 and abs(share - p) <= tol,
                               f"{mode} {fam_name(fam)}: {b.name} got {counts[b.name]} of "
                               f"{total} ({share:.1%}), weight share {p:.0%} +- {tol:.1%}")
                self.rows[-1]["note"] = ", ".join(spread)
                # Who the backend saw: the client itself (NAT, DR) or
                # rampart's local address (FullNAT).
                expect = LOCALS[(mode, fam)] if mode == "fullnat" else (
                    CLIENT4 if fam == 4 else CLIENT6)
                seen = {str(ipaddress.ip_address(c)) for ok, _, _, c in res if ok and c}
                self.check(seen == {expect}, f"{mode} {fam_name(fam)}: the backends saw the "
                                             f"client as {sorted(seen)} (expected {expect})")
                w = wrk(self.bed, url(vip), self.wrk_s)
                self.wrk_row(f"wrk {self.wrk_s} s, 16 keep-alive conns", mode, fam, w)
                if w["requests"] == 0:
                    log(w["text"])
                if mode == "nat":
                    self.compare("rampart", "keep-alive", fam, w)
                    w = wrk_apart(self.bed, url(vip), self.wrk_s)
                    self.wrk_row(f"wrk {self.wrk_s} s, 16 conns, a new connection per request",
                                 mode, fam, w, asserted=False)
                    self.compare("rampart", "new connections", fam, w)
                # DR: the backends answer the client straight through the
                # router; NAT and FullNAT answers come back through rampart.
                v = next(x for x in self.rp.ctl("stats")["vips"] if x["name"] == f"{mode}-{fam}")
                back = v["packets_out"]
                self.check(v["packets_in"] > 0 and ((back == 0) == (mode == "dr")),
                           f"{mode} {fam_name(fam)}: rampart saw {v['packets_in']} packets to the "
                           f"VIP and {back} answers from the backends")
        d = self.rp.drops()
        log(f"rampart drops after the mode cases: {d or 'none'}")

    def steer(self):
        """Two clients in different prefixes reach only their pools; with
        the one backend of client2's pool down, its requests go to the
        whole VIP and rampart counts the fallback."""
        n = max(30, self.dist_n // 4)
        clients = {"client": (CLIENT4, CLIENT6), "client2": (CLIENT2_4, CLIENT2_6)}
        pools = {"client": {"b1", "b2"}, "client2": {"b3"}}
        before = self.rp.events("source_steered", "source_fallback")
        for fam in (4, 6):
            vip = STEER_VIPS[fam]
            for role, want in pools.items():
                res = curl_batch(self.bed, url(vip), n, role=role)
                self.curl_row(f"curl from {role}", "nat, steered", fam, res)
                fails = [r for r in res if not r[0]]
                got = {name for ok, _, name, _ in res if ok}
                seen = {str(ipaddress.ip_address(c)) for ok, _, _, c in res if ok and c}
                me = clients[role][0 if fam == 4 else 1]
                self.rows[-1]["note"] = "backends " + ", ".join(sorted(got))
                self.check(not fails and got == want,
                           f"steer {fam_name(fam)}: {role} ({me}) reached {sorted(got)} "
                           f"in {len(res)} requests, {len(fails)} failed (its pool: "
                           f"{sorted(want)})")
                self.check(seen == {me}, f"steer {fam_name(fam)}: the backends saw {role} "
                                         f"as {sorted(seen)} (expected {me})")
        after = self.rp.events("source_steered", "source_fallback")
        steered = after["source_steered"] - before["source_steered"]
        self.check(steered >= 4 * n and after["source_fallback"] == before["source_fallback"],
                   f"steer: rampart counted {steered} steered flows for {4 * n} requests, "
                   f"{after['source_fallback'] - before['source_fallback']} fallbacks")
        # client2's pool down: its flows go to the whole VIP, counted.
        b3 = next(b for b in IN_VIPS if b.name == "b3")
        for fam in (4, 6):
            self.rp.ctl("backend", "down", bport(b3, fam))
        try:
            for fam in (4, 6):
                res = curl_batch(self.bed, url(STEER_VIPS[fam]), n, role="client2")
                fails = [r for r in res if not r[0]]
                got = {name for ok, _, name, _ in res if ok}
                self.check(not fails and got == {"b1", "b2"},
                           f"steer {fam_name(fam)}: with b3 down, client2 reached "
                           f"{sorted(got)} in {len(res)} requests, {len(fails)} failed")
            fell = self.rp.events("source_fallback")["source_fallback"] - after["source_fallback"]
            self.check(fell >= 2 * n, f"steer: {fell} fallbacks counted for {2 * n} requests "
                                      "with client2's pool down")
        finally:
            for fam in (4, 6):
                self.rp.ctl("backend", "clear", bport(b3, fam))
        wait_health(self.rp, [b3], (4, 6), (80,), "up", 15)

    def download(self, vip, max_time=60, port=80):
        """The 10 MB blob from VIP (on PORT): (same bytes as served, bytes
        received, seconds, curl's exit code)."""
        out = os.path.join(self.bed.work, "blob.download")
        if os.path.exists(out):
            os.unlink(out)
        r = self.bed.run("client", "curl", "-sg", "--max-time", str(max_time), "-o", out,
                         "-w", "%{size_download} %{time_total}", url(vip, "/blob", port),
                         timeout=max_time + 30, check=False)
        f = r.stdout.split()
        got = int(f[0]) if len(f) == 2 else 0
        secs = float(f[1]) if len(f) == 2 else float(max_time)
        good = (r.returncode == 0 and os.path.exists(out) and
                open(out, "rb").read() == open(os.path.join(self.bed.work, "www", "blob"),
                                               "rb").read())
        return good, got, secs, r.returncode

    def vip_stats(self, name):
        return next(x for x in self.rp.ctl("stats")["vips"] if x["name"] == name)

    # the tunnel side

    def tunnel_plumbing(self):
        """The tunnel backends without rampart: the client reaches their own
        addresses through the router, and an encapsulated echo the router
        sends them (every tunnel VIP's encapsulation) is answered from the
        VIP to the client: the XDP program decapsulates in this bed."""
        bed = self.bed
        fails = 0
        n = 0
        for t in TUN_BACKENDS:
            for fam in (4, 6):
                res = curl_batch(bed, url(t.addr(fam)), 1)
                client = CLIENT4 if fam == 4 else CLIENT6
                ok = (res[0][0] and res[0][2] == t.name
                      and res[0][3] and str(ipaddress.ip_address(res[0][3])) == client)
                n += 1
                fails += not ok
                self.check(ok, f"tunnel bed: the client reaches {t.name} at {t.addr(fam)} "
                               f"through the router ({res[0]})")
        for t in TUN_BACKENDS:
            for tun in TUNNELS:
                r = bed.run("router", sys.executable, DECAP_CHECK, "probe", "--dev", "rt0",
                            "--dst-mac", t.mac,
                            "--outer-src", RTR_T4 if tun.outer == 4 else RTR_T6,
                            "--outer-dst", t.addr(tun.outer),
                            "--inner-src", CLIENT4 if tun.fam == 4 else CLIENT6,
                            "--vip", tun.vip, "--encap", tun.encap, timeout=20, check=False)
                n += 1
                fails += r.returncode != 0
                self.check(r.returncode == 0, f"tunnel bed: XDP on {t.name}: "
                                              f"{(r.stdout or r.stderr).strip()}")
        self.row("tunnel bed without rampart: plain curl, decap probes", "tunnel", None, n,
                 fails, None, None, "router -> t1, t2: every encapsulation of the tunnel VIPs")

    def tunnel(self):
        """Tunnel VIPs: the client's packets reach t1 and t2 encapsulated,
        their answers go from the VIP straight to the client."""
        bed = self.bed
        for tun in self.tun_cases:
            fam = tun.fam
            client = CLIENT4 if fam == 4 else CLIENT6
            res = curl_batch(bed, url(tun.vip), self.tun_n)
            names = {n for ok, _, n, _ in res if ok}
            seen = {str(ipaddress.ip_address(c)) for ok, _, _, c in res if ok and c}
            fails = sum(1 for r in res if not r[0])
            self.curl_row("curl, new connections" + tun.label(), tun.mode, fam, res,
                          ", ".join(f"{t.name} {sum(1 for r in res if r[2] == t.name)}"
                                    for t in TUN_BACKENDS))
            self.check(not fails and names == {t.name for t in TUN_BACKENDS},
                       f"{tun.name}: {len(res)} curl requests, {fails} failed, answered by "
                       f"{sorted(names)} (both tunnel backends expected)")
            self.check(seen == {client}, f"{tun.name}: the backends saw the client as "
                                         f"{sorted(seen)} (expected {client})")
            good, got, secs, rc = self.download(tun.vip)
            self.row("10 MB download (curl)" + tun.label(), tun.mode, fam, 1, 0 if good else 1,
                     secs, secs, "" if good else f"{got} bytes, curl exit {rc}")
            self.check(good, f"{tun.name}: 10 MB downloaded, same bytes as served "
                             f"({got} bytes, {secs:.2f} s)")
            v = self.vip_stats(tun.name)
            self.check(v["packets_in"] > 0 and v["packets_out"] == 0,
                       f"{tun.name}: rampart saw {v['packets_in']} packets to the VIP and "
                       f"{v['packets_out']} answers from the backends (expected 0: they answer "
                       f"the client directly)")

    # ICMP

    def ping(self):
        """rampart answers ICMP echo to a VIP and to its node addresses."""
        targets = [("nat", VIPS[("nat", 4)], 4), ("nat", VIPS[("nat", 6)], 6),
                   ("node address", NODE4, 4), ("node address", NODE6, 6)]
        for what, addr, fam in targets:
            r = self.bed.run("client", "ping", f"-{fam}", "-c", "3", "-W", "2", "-i", "0.2", addr,
                             timeout=20, check=False)
            m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
            sent, got = (int(m.group(1)), int(m.group(2))) if m else (3, 0)
            rtts = [float(x) / 1000 for x in re.findall(r"time=([\d.]+) ms", r.stdout)]
            self.row(f"ping -c 3 {addr}", what, fam, sent, sent - got, percentile(rtts, 50),
                     percentile(rtts, 99))
            self.check(got == sent == 3, f"ping {what} {addr}: {got} of {sent} answered")

    def pmtu(self):
        """The router's client-facing MTU drops to PMTU_HOP_MTU while the
        client's stays 1500: the backends' full-size segments to the client
        make the router send ICMP frag-needed / packet-too-big to their
        source, the VIP, i.e. to rampart, which must hand it to the backend
        of the connection (translated for NAT, as it is for DR, encapsulated
        for a tunnel) or the download stalls. `--only pmtu-nat`: NAT only."""
        bed = self.bed
        targets = self.pmtu_targets()
        sh(["ip", "-n", bed.ns("router"), "link", "set", "rc0", "mtu", str(PMTU_HOP_MTU)])
        try:
            for mode, fam, vip in targets:
                icmp0 = self.router_icmp_errors()
                drops0 = self.rp.drops()
                good, got, secs, rc = self.download(vip, max_time=20)
                icmp = {k: v - icmp0[k] for k, v in self.router_icmp_errors().items()}
                drops = self.rp.drops()
                dd = {k: v - drops0.get(k, 0) for k, v in drops.items()
                      if v - drops0.get(k, 0) > 0}
                sent = icmp[4] if fam == 4 else icmp[6]
                what = "frag-needed" if fam == 4 else "packet-too-big"
                note = (f"router sent {sent} {what}; rampart drops "
                        + (", ".join(f"{k} +{v}" for k, v in sorted(dd.items())) or "none"))
                if not good:
                    note = f"{got} of {BLOB_BYTES} bytes in {secs:.1f} s, curl exit {rc}; " + note
                self.row(f"10 MB download, {PMTU_HOP_MTU}-byte MTU hop to the client", mode, fam,
                         1, 0 if good else 1, secs, secs, note)
                log(f"pmtu {mode} {fam_name(fam)}: {note}")
                self.check(sent > 0, f"pmtu {mode} {fam_name(fam)}: the router sent {sent} ICMP "
                                     f"{what} for the VIP (the case tests what it should)")
                self.check(good, f"pmtu {mode} {fam_name(fam)}: 10 MB downloaded through a "
                                 f"{PMTU_HOP_MTU}-byte hop, same bytes as served ({got} bytes, "
                                 f"{secs:.2f} s)")
        finally:
            sh(["ip", "-n", bed.ns("router"), "link", "set", "rc0", "mtu", "1500"])
            # the backends forget the path MTU they learnt toward the client
            for b in BACKENDS + TUN_BACKENDS:
                for fam in ("-4", "-6"):
                    sh(["ip", "-n", bed.ns(b.name), fam, "route", "flush", "cache"], check=False)

    def pmtu_targets(self):
        """(mode, family, VIP) of the pmtu case's downloads."""
        targets = [("nat", 4, VIPS[("nat", 4)]), ("nat", 6, VIPS[("nat", 6)])]
        if "pmtu-nat" not in self.a.only:
            targets += [("dr", 4, VIPS[("dr", 4)]), ("dr", 6, VIPS[("dr", 6)])]
            if self.tunnels:
                targets += [(t.mode, t.fam, t.vip) for t in TUNNELS
                            if t.name in ("tun4-ipip", "tun6-gue")]
        return targets

    def router_icmp_errors(self):
        """The router's ICMP errors sent so far: {4: destination unreachable
        (frag-needed among them), 6: packet too big}."""
        snmp = self.bed.run("router", "cat", "/proc/net/snmp").stdout.splitlines()
        heads = [line.split() for line in snmp if line.startswith("Icmp:")]
        v4 = dict(zip(heads[0][1:], map(int, heads[1][1:])))["OutDestUnreachs"]
        snmp6 = self.bed.run("router", "cat", "/proc/net/snmp6").stdout
        v6 = int(re.search(r"^Icmp6OutPktTooBigs\s+(\d+)", snmp6, re.M).group(1))
        return {4: v4, 6: v6}

    def fragments(self):
        """The client's link (both ends) and the backends' at FRAG_MTU:
        FRAG_BYTES-byte UDP datagrams leave the client in fragments, reach a
        backend through the NAT or DR VIP in fragments, and its echo leaves
        the backend in fragments (through rampart for NAT, straight to the
        router for DR)."""
        bed = self.bed
        links = [("client", "c0"), ("router", "rc0")] + [(b.name, "b0") for b in IN_VIPS]
        for role, dev in links:
            sh(["ip", "-n", bed.ns(role), "link", "set", dev, "mtu", str(FRAG_MTU)])
        try:
            # On net_af_packet IPv6 only: DPDK 22.11's driver joins its
            # socket to a fanout group with PACKET_FANOUT_FLAG_DEFRAG, so
            # the lb namespace's kernel reassembles IPv4 fragments before
            # rampart sees them (into one frame larger than the ring's);
            # there IPv4 fragments are covered by the datapath tests and
            # fixtures. net_af_xdp hands rampart every fragment.
            defrag = PORT_DRIVER == "af_packet"
            for mode in ("nat", "dr"):
                if defrag:
                    self.row("UDP echo in fragments", mode, 4, 0, 0, None, None,
                             "not run: net_af_packet hands rampart IPv4 datagrams the kernel "
                             "reassembled (PACKET_FANOUT_FLAG_DEFRAG)")
                for fam in (6,) if defrag else (4, 6):
                    vip = VIPS[(mode, fam)]
                    ev0 = self.rp.events("fragments_forwarded")["fragments_forwarded"]
                    drops0 = self.rp.drops()
                    t0 = time.time()
                    r = bed.run("client", sys.executable, SELF, "udp-echo-client", "--host", vip,
                                "--port", str(UDP_PORT), "--bytes", str(FRAG_BYTES),
                                "--count", str(FRAG_DATAGRAMS), timeout=120, check=False)
                    secs = time.time() - t0
                    try:
                        res = json.loads(r.stdout.strip().splitlines()[-1])
                    except (ValueError, IndexError):
                        res = {"sent": FRAG_DATAGRAMS, "echoed": 0, "tries": 0}
                        log(f"udp-echo-client: {r.stdout} {r.stderr}")
                    fwd = self.rp.events("fragments_forwarded")["fragments_forwarded"] - ev0
                    drops = {k: v - drops0.get(k, 0) for k, v in self.rp.drops().items()
                             if v - drops0.get(k, 0) > 0}
                    note = (f"{FRAG_BYTES}-byte datagrams over {FRAG_MTU}-byte links; "
                            f"{res['tries']} sends; rampart forwarded {fwd} fragments; drops "
                            + (", ".join(f"{k} +{v}" for k, v in sorted(drops.items())) or "none"))
                    self.row("UDP echo in fragments", mode, fam, res["sent"],
                             res["sent"] - res["echoed"], secs / max(res["sent"], 1), secs, note)
                    log(f"fragments {mode} {fam_name(fam)}: {res} {note}")
                    self.check(res["echoed"] == res["sent"],
                               f"fragments {mode} {fam_name(fam)}: {res['echoed']} of "
                               f"{res['sent']} {FRAG_BYTES}-byte datagrams echoed intact "
                               f"({res['tries']} sends)")
                    # Each datagram is at least 4 fragments one way; NAT
                    # answers come back through rampart in fragments too.
                    least = FRAG_DATAGRAMS * (3 if mode == "dr" else 6)
                    self.check(fwd >= least,
                               f"fragments {mode} {fam_name(fam)}: rampart forwarded {fwd} "
                               f"fragments (at least {least} expected)")
        finally:
            for role, dev in links:
                sh(["ip", "-n", bed.ns(role), "link", "set", dev, "mtu", "1500"])

    def synproxy(self):
        rp = self.rp
        for fam in (4, 6):
            vip = VIPS[("synproxy", fam)]
            before = rp.events("syn_cookies_sent", "cookies_valid", "synproxy_established")
            r = self.bed.run("client", sys.executable, SELF, "echo-client", "--host", vip,
                             "--port", str(ECHO_PORT), "--bytes", str(BLOB_BYTES), timeout=90,
                             check=False)
            try:
                e = json.loads(r.stdout.strip().splitlines()[-1])
            except (IndexError, ValueError):
                e = {"ok": False, "received": 0, "seconds": 0, "error": r.stderr.strip()}
            self.check(e["ok"], f"synproxy {fam_name(fam)}: 10 MB echoed through the VIP byte for "
                                f"byte ({e.get('received')} bytes back, {e.get('seconds', 0):.2f} s)")
            self.row("10 MB echo (both ways)", "synproxy", fam, 1, 0 if e["ok"] else 1,
                     e.get("seconds"), e.get("seconds"))
            good, got, t, rc = self.download(vip)
            self.check(good, f"synproxy {fam_name(fam)}: 10 MB downloaded, same bytes as served "
                             f"({got} bytes, curl exit {rc})")
            self.row("10 MB download (curl)", "synproxy", fam, 1, 0 if good else 1, t, t)
            res = curl_batch(self.bed, url(vip), 50)
            self.curl_row("curl, new connections", "synproxy", fam, res)
            self.check(all(ok for ok, *_ in res), f"synproxy {fam_name(fam)}: 50 curl requests")
            after = rp.events(*before)
            n = 2 + len(res)  # the echo, the download and the curl requests
            self.check(all(after[k] - before[k] >= n for k in before),
                       f"synproxy {fam_name(fam)}: every handshake went through a cookie: "
                       + ", ".join(f"{k} +{after[k] - before[k]}" for k in before)
                       + f" (>= {n})")
        self.flood("rampart", VIPS[("synproxy", 4)])

    def flood(self, lb, vip, conntrack_roles=(), fam=4):
        """hping3 SYN floods from spoofed 198.19.0.x sources at full speed
        while curl asks the VIP on new connections (IPv6: two of our own
        senders, syn6-flood, from spoofed 2001:2:0:ff::/64 sources, as
        hping3 has no IPv6). Fills a flood row."""
        bed = self.bed
        sfx = "" if fam == 4 else "6"
        if fam == 6:
            r = bed.run("router", "ip", "-j", "link", "show", FLOOD_ROUTER_DEV)
            self.router_mac = json.loads(r.stdout)[0]["address"]
        rp = self.rp if lb == "rampart" else None
        # Table sizes from before the flood; rates from the counters over
        # the curl loop only, which starts once the flood runs.
        active0 = rp.active() if rp else 0
        ct0 = {r: bed.conntrack_count(r) for r in conntrack_roles}
        # The flooders stay off rampart's worker CPUs (in both runs): a
        # busy-polling worker sharing its CPU with them would measure the
        # scheduler, not the datapath.
        floods = []
        for k in (1, 2):
            if fam == 4:
                floods.append(bed.spawn(FLOOD_ROLE, [*self.off_worker_cpus(), "hping3", "-q", "-S",
                                                   "-p", "80", "--flood", "-a", f"198.19.0.{k}",
                                                   vip], f"hping3-{lb}-{k}", self.flood_s + 2))
            else:
                floods.append(bed.spawn(FLOOD_ROLE, [
                    *self.off_worker_cpus(), sys.executable, SELF, "syn6-flood", "--dev", "c0",
                    "--dst-mac", self.router_mac, "--dst", vip, "--port", "80",
                    "--source", f"{FLOODNET6.split('::')[0]}::{k}:0", "--seconds",
                    str(self.flood_s + 1), "--count", "50000000"],
                    f"syn6-flood-{lb}-{k}", self.flood_s + 2))
        time.sleep(1)
        c0 = bed.counters()
        cookies0 = rp.events("syn_cookies_sent")["syn_cookies_sent"] if rp else 0
        backlog0 = softnet_dropped()
        links0 = bed.link_drops()
        t0 = time.time()
        peak_active = active0
        stop = threading.Event()

        def watch():
            nonlocal peak_active
            while not stop.is_set():
                try:
                    peak_active = max(peak_active, rp.active())
                except Failure:
                    pass
                stop.wait(0.5)

        watcher = threading.Thread(target=watch, daemon=True)
        if rp:
            watcher.start()
        # A real client's SYN lost in the flood is resent after 1, 3 and 7 s.
        res = curl_for(bed, url(vip), self.flood_s - 2, timeout=10)
        elapsed = time.time() - t0
        c1 = bed.counters()
        cookies1 = rp.events("syn_cookies_sent")["syn_cookies_sent"] if rp else 0
        backlog = softnet_dropped() - backlog0
        links = bed.link_drops()
        stop.set()
        for p in floods:
            bed.stop(p, signal.SIGINT)
        if rp:
            watcher.join()
        # hping3 ends on our SIGINT (or its `timeout`); anything else is news
        odd_exits = [p.returncode for p in floods if p.returncode not in (0, 1, 124, -2, 130)]
        ok = sum(1 for r in res if r[0])
        rate = ok / len(res) if res else 0
        syn_rate = (c1["flood_syn" + sfx] - c0["flood_syn" + sfx]) / elapsed
        answered = (c1["synack_forwarded" + sfx] - c0["synack_forwarded" + sfx]
                    + c1["synack_local" + sfx] - c0["synack_local" + sfx]) / elapsed
        if rp:
            growth = peak_active - active0
            cookies = (cookies1 - cookies0) / elapsed
            note = f"rampart syn_cookies_sent {cookies:.0f}/s"
        else:
            ct1 = {r: bed.conntrack_count(r) for r in conntrack_roles}
            note = ", ".join(f"{r} conntrack {ct0[r]} -> {ct1[r]}" for r in conntrack_roles)
            growth = sum(ct1[r] - ct0[r] for r in conntrack_roles)
        note += f"; kernel backlog drops {backlog}"
        lost = {k: v - links0.get(k, 0) for k, v in links.items() if v - links0.get(k, 0) > 0}
        note += "; link drops " + (", ".join(f"{k} {v / elapsed:.0f}/s" for k, v in lost.items())
                                   or "none")
        oks = [t for good, t, *_ in res if good]
        self.flood_rows.append({
            "lb": lb, "family": fam_name(fam), "seconds": elapsed, "flood_syn_per_s": syn_rate,
            "synack_per_s": answered, "curl": len(res), "curl_ok": ok, "success": rate,
            "p50": percentile(oks, 50), "p99": percentile(oks, 99), "table_growth": growth,
            "note": note})
        self.curl_row(f"curl under SYN flood ({lb})", "synproxy" if rp else "nft synproxy", fam, res,
                      f"flood {syn_rate:.0f} SYN/s, answered {answered:.0f}/s")
        if odd_exits:
            log(f"hping3 exit codes: {odd_exits}")

    def off_worker_cpus(self):
        """`taskset -c CPUS` for the CPUs rampart's workers do not poll on,
        or nothing when they poll on all of them."""
        others = sorted(set(os.sched_getaffinity(0)) - self.rp.worker_cpus)
        return ["taskset", "-c", ",".join(map(str, others))] if others else []

    def flood_checks(self):
        row = self.flood_rows[-1]
        f = row["family"]
        self.check(row["flood_syn_per_s"] > 1000,
                   f"synproxy {f}: the flood reached the router at {row['flood_syn_per_s']:.0f} SYN/s")
        self.check(row["curl"] >= 100,
                   f"synproxy {f}: {row['curl']} curl requests under the flood (>= 100)")
        self.check(row["success"] >= 0.99,
                   f"synproxy {f}: {row['curl_ok']}/{row['curl']} curl requests under the flood "
                   f"succeeded ({row['success']:.1%} >= 99%)")
        self.check(row["table_growth"] <= row["curl"] + 32,
                   f"synproxy {f}: the connection table grew by {row['table_growth']} at its peak "
                   f"for {row['curl']} real connections while "
                   f"{row['flood_syn_per_s'] * row['seconds']:.0f} flood SYNs arrived")

    def health(self):
        rp = self.rp
        b = BACKENDS[1]  # b2
        fall_s = (HEALTH["fall"] * HEALTH["interval_ms"] + HEALTH["timeout_ms"]) / 1000
        rise_s = (HEALTH["rise"] * HEALTH["interval_ms"] + HEALTH["timeout_ms"]) / 1000
        self.bed.stop(self.nginx[b.name], signal.SIGKILL)
        t_down = wait_health(rp, [b], (4, 6), (80,), "down", 10)
        self.check(t_down <= fall_s + 0.5,
                   f"health: {b.name}'s nginx killed, down after {t_down:.2f} s "
                   f"(fall {HEALTH['fall']} x {HEALTH['interval_ms']} ms + timeout "
                   f"{HEALTH['timeout_ms']} ms = {fall_s:.2f} s, +0.5 s)")
        for fam in (4, 6):
            res = curl_batch(self.bed, url(VIPS[("nat", fam)]), self.dist_n // 2)
            names = {n for ok, _, n, _ in res if ok}
            self.curl_row(f"curl, {b.name} killed", "nat", fam, res,
                          "answered by " + ", ".join(sorted(names)))
            self.check(all(ok for ok, *_ in res) and b.name not in names,
                       f"health {fam_name(fam)}: {len(res)} requests with {b.name} down, "
                       f"{sum(1 for r in res if not r[0])} failed, answered by {sorted(names)}")
        self.nginx[b.name] = start_nginx(self.bed, b, self.lifetime)
        t_up = wait_health(rp, [b], (4, 6), (80,), "up", 10)
        self.check(t_up <= rise_s + 1.5,
                   f"health: {b.name} restarted, up after {t_up:.2f} s (rise {HEALTH['rise']} x "
                   f"{HEALTH['interval_ms']} ms = {rise_s:.2f} s, +1.5 s for nginx to start)")
        res = curl_batch(self.bed, url(VIPS[("nat", 4)]), self.dist_n // 2)
        names = {n for ok, _, n, _ in res if ok}
        self.check(all(ok for ok, *_ in res) and b.name in names,
                   f"health: after the restart {b.name} answers again ({sorted(names)})")

    def reload(self):
        rp = self.rp
        bed = self.bed
        secs = self.reload_s
        kas = []
        for fam in (4, 6):
            kas.append(bed.spawn("client", [sys.executable, SELF, "keepalive", "--host",
                                            VIPS[("nat", fam)], "--conns", "16", "--seconds",
                                            str(secs + 3), "--interval", "0.1"],
                                 f"keepalive-{fam}", secs + 20))
        ready = []
        for fam, p in zip((4, 6), kas):
            path = os.path.join(bed.work, f"keepalive-{fam}.out")
            deadline = time.time() + 10
            while time.time() < deadline:
                lines = open(path).read().splitlines()
                if lines:
                    ready.append(json.loads(lines[0])["ready"])
                    break
                time.sleep(0.05)
            else:
                raise Failure(f"keep-alive connections not ready: {open(path).read()}")
        # The reload takes out a backend that holds long-lived connections
        # and brings in b4, which no VIP had.
        held = [n for names in ready for n in names if n]
        gone = max(IN_VIPS, key=lambda b: held.count(b.name))
        new_set = [b for b in IN_VIPS if b is not gone] + [BACKENDS[3]]
        log(f"reload: long-lived connections on {sorted(set(held))}; removing {gone.name}, "
            f"adding b4")
        w_res = {}
        wt = threading.Thread(target=lambda: w_res.update(wrk(bed, url(VIPS[("nat", 4)]), secs)))
        wt.start()
        c_res = []
        ct = threading.Thread(target=lambda: c_res.extend(
            curl_for(bed, url(VIPS[("nat", 6)]), secs - 1, batch=5)))
        ct.start()
        time.sleep(secs / 2)
        with open(rp.cfg, "w") as f:
            f.write(rampart_config(bed.work, nat_backends=new_set, tunnels=rp.tunnels))
        rep = rp.ctl("reload")
        self.check(sorted(rep.get("vips_changed", [])) == ["nat-4", "nat-6"],
                   f"reload: generation {rep.get('generation')}, changed {rep.get('vips_changed')}")
        wt.join()
        ct.join()
        results = []
        for fam, p in zip((4, 6), kas):
            p.wait(secs + 20)
            lines = open(os.path.join(bed.work, f"keepalive-{fam}.out")).read().splitlines()
            results.append(json.loads(lines[-1])["conns"])
        self.wrk_row(f"wrk {secs} s across the reload", "nat", 4, w_res)
        self.curl_row("curl across the reload", "nat", 6, c_res)
        self.check(c_res and all(ok for ok, *_ in c_res),
                   f"reload: {len(c_res)} new connections across the reload, "
                   f"{sum(1 for r in c_res if not r[0])} failed")
        for fam, conns in zip((4, 6), results):
            reqs = sum(c["requests"] for c in conns)
            fails = sum(c["fail"] for c in conns)
            moved = [c for c in conns if len(c["backends"]) != 1]
            on_gone = sum(1 for c in conns if c["backends"] == [gone.name])
            self.row("16 long-lived conns across the reload", "nat", fam, reqs, fails, None, None,
                     f"{on_gone} on the removed {gone.name}")
            self.check(fails == 0 and not moved and all(c["requests"] > 10 * secs for c in conns),
                       f"reload {fam_name(fam)}: 16 keep-alive connections, {reqs} requests, "
                       f"{fails} failed, {len(moved)} changed backend, {on_gone} stayed on "
                       f"the removed {gone.name}")
        for fam in (4, 6):
            res = curl_batch(bed, url(VIPS[("nat", fam)]), self.dist_n // 2)
            names = {n for ok, _, n, _ in res if ok}
            self.check(all(ok for ok, *_ in res) and gone.name not in names and "b4" in names,
                       f"reload {fam_name(fam)}: new connections go to {sorted(names)} "
                       f"(not {gone.name}, b4 among them)")

    def proxy_log_lines(self):
        """Each backend nginx's PROXY access log: {backend: lines of
        `proxy_protocol_addr proxy_protocol_port remote_addr`}."""
        out = {}
        for b in IN_VIPS:
            path = os.path.join(self.bed.work, b.name, "proxy.log")
            lines = open(path).read().splitlines() if os.path.exists(path) else []
            out[b.name] = [line.split() for line in lines if line.strip()]
        return out

    def proxy(self):
        """FullNAT VIPs with proxy_protocol = "v2": the backends learn the
        client's address from the header, the SYN proxy off and on."""
        bed = self.bed
        before = self.rp.events("proxy_headers_sent", "proxy_headers_resent")
        for (fam, sp), (vip, local) in PP_VIPS.items():
            client = CLIENT4 if fam == 4 else CLIENT6
            mode = "fullnat + PROXY v2" + (" + synproxy" if sp else "")
            seen_before = {k: len(v) for k, v in self.proxy_log_lines().items()}
            res = curl_batch(bed, url(vip, port=PP_HTTP_PORT), self.dist_n // 4)
            self.curl_row("curl, new connections", mode, fam, res)
            fails = sum(1 for r in res if not r[0])
            said = {str(ipaddress.ip_address(c)) for ok, _, _, c in res if ok and c}
            self.check(not fails and said == {client},
                       f"proxy {mode} {fam_name(fam)}: {len(res)} curl requests, {fails} failed, "
                       f"nginx's $proxy_protocol_addr {sorted(said)} (expected {client})")
            w = wrk(bed, url(vip, port=PP_HTTP_PORT), self.wrk_s)
            self.wrk_row(f"wrk {self.wrk_s} s, 16 keep-alive conns", mode, fam, w)
            # Let nginx finish the lines of wrk's last requests.
            time.sleep(0.5)
            logged = [f for name, lines in self.proxy_log_lines().items()
                      for f in lines[seen_before[name]:]]
            addrs = {str(ipaddress.ip_address(f[0])) for f in logged if f}
            remote = {str(ipaddress.ip_address(f[2])) for f in logged if len(f) > 2}
            self.check(len(logged) >= len(res) + w["requests"] and addrs == {client}
                       and remote == {local},
                       f"proxy {mode} {fam_name(fam)}: nginx logged {len(logged)} requests "
                       f"(curl {len(res)} + wrk {w['requests']}) from $proxy_protocol_addr "
                       f"{sorted(addrs)} over connections from {sorted(remote)} (expected "
                       f"{client} over {local})")
            # A server that speaks first: the client sends nothing.
            r = bed.run("client", sys.executable, SELF, "banner-client", "--host", vip,
                        "--port", str(PP_BANNER_PORT), timeout=30, check=False)
            try:
                got = json.loads(r.stdout.strip().splitlines()[-1])
            except (IndexError, ValueError):
                got = {"line": "", "error": r.stderr.strip(), "seconds": 10.0}
            want_line = f"220 hello {ipaddress.ip_address(client)} {got.get('port')}"
            self.row("server speaks first (banner)", mode, fam, 1,
                     0 if got["line"] == want_line else 1, got["seconds"], got["seconds"],
                     got["line"] or got.get("error", ""))
            self.check(got["line"] == want_line,
                       f"proxy {mode} {fam_name(fam)}: a client that sends nothing got "
                       f"{got['line']!r} (expected {want_line!r})")
        # 1% of the client link's packets dropped, both directions, while
        # 10 MB come down through the header's offset.
        bed.nft("router", """
table inet lossy {
    chain forward_loss {
        type filter hook forward priority -10;
        iifname "rc0" numgen random mod 100 < 1 counter drop
        oifname "rc0" numgen random mod 100 < 1 counter drop
    }
}
""")
        try:
            for key in ((4, False), (6, False), (4, True)):
                vip = PP_VIPS[key][0]
                mode = "fullnat + PROXY v2" + (" + synproxy" if key[1] else "")
                good, got, secs, rc = self.download(vip, port=PP_HTTP_PORT)
                self.row("10 MB download, 1% loss on the client link", mode, key[0], 1,
                         0 if good else 1, secs, secs, "" if good else f"{got} bytes, curl exit {rc}")
                self.check(good, f"proxy {mode} {fam_name(key[0])}: 10 MB downloaded with 1% loss, "
                                 f"same bytes as served ({got} bytes, {secs:.2f} s)")
            lost = bed.run("router", "nft", "list", "table", "inet", "lossy").stdout
            dropped = sum(int(x) for x in re.findall(r"packets (\d+)", lost))
            self.check(dropped > 0, f"proxy: the lossy client link dropped {dropped} packets")
        finally:
            bed.run("router", "nft", "delete", "table", "inet", "lossy", check=False)
        after = self.rp.events("proxy_headers_sent", "proxy_headers_resent")
        sent = after["proxy_headers_sent"] - before["proxy_headers_sent"]
        self.check(sent > 0, f"proxy: rampart sent {sent} PROXY headers "
                             f"({after['proxy_headers_resent'] - before['proxy_headers_resent']} "
                             f"resent)")

    def nftables(self):
        """rampart is stopped; the lb namespace's kernel takes its place."""
        bed = self.bed
        bed.sysctl("lb", "net.ipv6.conf.all.disable_ipv6=0")
        bed.sysctl("lb", "net.ipv6.conf.r0.disable_ipv6=0")
        bed.addr("lb", "r0", f"{NODE4}/24")
        bed.addr("lb", "r0", f"{NODE6}/64")
        for kv in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                   "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.r0.rp_filter=0"):
            bed.sysctl("lb", kv)
        bed.route("lb", "198.18.0.0/24", "via", RTR_L4)
        bed.route("lb", "2001:2::/64", "via", RTR_L6)
        bed.route("lb", FLOODNET, "via", RTR_L4)

        def numgen_map(fam):
            slots, i = [], 0
            for b in IN_VIPS:
                for _ in range(b.weight):
                    slots.append(f"{i} : {b.addr(fam)}")
                    i += 1
            return i, ", ".join(slots)

        n4, m4 = numgen_map(4)
        n6, m6 = numgen_map(6)
        bed.nft("lb", f"""
table ip lb {{
    chain pre {{
        type nat hook prerouting priority dstnat;
        ip daddr {{ {VIPS[('nat', 4)]}, {VIPS[('synproxy', 4)]} }} tcp dport 80 dnat to numgen inc mod {n4} map {{ {m4} }}
    }}
}}
table ip6 lb {{
    chain pre {{
        type nat hook prerouting priority dstnat;
        ip6 daddr {VIPS[('nat', 6)]} tcp dport 80 dnat to numgen inc mod {n6} map {{ {m6} }}
    }}
}}
""")
        # The kernel's SYN proxy in its own hop in front (the router): it
        # does not combine with DNAT to a non-local VIP in one namespace.
        sp = VIPS[("synproxy", 4)]
        bed.nft("router", f"""
table ip shield {{
    chain untrack {{
        type filter hook prerouting priority raw;
        ip daddr {sp} tcp dport 80 tcp flags syn notrack
    }}
    chain proxy {{
        type filter hook forward priority filter;
        ip daddr {sp} tcp dport 80 ct state invalid, untracked synproxy mss 1460 wscale 7 timestamp sack-perm
        ip daddr {sp} tcp dport 80 ct state invalid drop
    }}
}}
""")
        for fam in (4, 6):
            vip = VIPS[("nat", fam)]
            res = curl_batch(bed, url(vip), self.dist_n // 2)
            self.curl_row("curl, new connections (nftables DNAT)", "nft dnat", fam, res)
            self.observe(all(ok for ok, *_ in res),
                         f"nftables DNAT {fam_name(fam)}: {len(res)} curl requests, "
                         f"{sum(1 for r in res if not r[0])} failed")
            w = wrk(bed, url(vip), self.wrk_s)
            self.wrk_row(f"wrk {self.wrk_s} s (nftables DNAT)", "nft dnat", fam, w,
                         asserted=False)
            self.compare("nftables", "keep-alive", fam, w)
            w = wrk_apart(bed, url(vip), self.wrk_s)
            self.wrk_row(f"wrk {self.wrk_s} s, a new connection per request (nftables DNAT)",
                         "nft dnat", fam, w, asserted=False)
            self.compare("nftables", "new connections", fam, w)
        res = curl_batch(bed, url(sp), 50)
        self.curl_row("curl, new connections (nft synproxy + DNAT)", "nft synproxy", 4, res)
        self.observe(all(ok for ok, *_ in res),
                     f"nftables synproxy + DNAT: {len(res)} curl requests without a flood, "
                     f"{sum(1 for r in res if not r[0])} failed")
        self.flood("nftables", sp, conntrack_roles=("router", "lb"))

    def tier(self):
        """Two boxes announcing the same VIPs over BGP to an ECMP router:
        both carry flows; a box killed, its flows continue on the other to
        the same backends; a box stopped with SIGTERM withdraws, drains and
        exits without an error; backend failures seen by both."""
        bed = self.bed
        secs = 4 if self.a.quick else 10
        t_up = wait_nexthops(bed, f"{TIER_DR}/32", [NODE4], 30)
        log(f"tier: box 1's announcement of {TIER_DR} at the router after {t_up:.1f} s")
        rp2 = Rampart(bed, self.bin, self.lifetime, self.tunnels, box=2)
        self.bird_box(2)
        wait_health(rp2, IN_VIPS, (4,), (80,), "up", 15)
        for vip in (TIER_DR, TIER_TUN.vip):
            t = wait_nexthops(bed, f"{vip}/32", [NODE4, NODE4_B], 30)
            log(f"tier: {vip} has both boxes as next hops after {t:.1f} s")
        ann = rp2.announced("dr-4")
        self.check(ann == (True, "serving"), f"tier: box 2 says dr-4 is announced ({ann})")

        # Both boxes carry new flows (the router hashes on ports).
        rx = (self.rp.rx(), rp2.rx())
        res = curl_batch(bed, url(TIER_DR), 60 if self.a.quick else 200)
        ok = sum(1 for r in res if r[0])
        grown = (self.rp.rx() - rx[0], rp2.rx() - rx[1])
        self.check(ok == len(res), f"tier: {ok}/{len(res)} requests to the DR VIP over two boxes")
        self.check(min(grown) > len(res), f"tier: both boxes carried flows (rx +{grown[0]}, +{grown[1]})")
        self.row("tier", "dr, 2 boxes", 4, len(res), len(res) - ok,
                 percentile([r[1] for r in res], 50), percentile([r[1] for r in res], 99),
                 f"rx box1 +{grown[0]}, box2 +{grown[1]}")

        # SIGKILL box 1 under long-lived connections to the DR and tunnel VIPs.
        conns = 8
        kas = {}
        for vip in (TIER_DR, TIER_TUN.vip):
            kas[vip] = bed.spawn("client", [sys.executable, SELF, "keepalive", "--host", vip,
                                            "--conns", str(conns), "--seconds", str(secs + 6),
                                            "--interval", "0.2", "--timeout", "10"],
                                 f"tier-keepalive-{vip}", secs + 30)
        # And a rate-limited 10 MB download through each, spanning the kill.
        dls = {}
        for vip in (TIER_DR, TIER_TUN.vip):
            out = os.path.join(bed.work, f"tier-download-{vip}.blob")
            dls[vip] = (out, bed.spawn("client", [
                "curl", "-sg", "--limit-rate", f"{BLOB_BYTES // (secs + 4)}", "--max-time",
                str(secs + 30), "-o", out, url(vip, "/blob")], f"tier-download-{vip}", secs + 40))
        for vip in kas:
            path = os.path.join(bed.work, f"tier-keepalive-{vip}.out")
            deadline = time.time() + 15
            while '"ready"' not in open(path).read():
                if time.time() > deadline:
                    raise Failure(f"tier: keep-alive clients to {vip} not ready")
                time.sleep(0.05)
        time.sleep(1)
        # The connections box 1 holds when it dies (the router split them).
        on_box1 = {vip: self.rp.ctl("conns", "--vip", name)["total"]
                   for vip, name in ((TIER_DR, "dr-4"), (TIER_TUN.vip, TIER_TUN.name))}
        self.check(all(n > 0 for n in on_box1.values()),
                   f"tier: box 1 carries some of the long-lived flows when it dies ({on_box1})")
        t_kill = time.time()
        self.rp.kill()
        for vip in (TIER_DR, TIER_TUN.vip):
            wait_nexthops(bed, f"{vip}/32", [NODE4_B], 10)
        failover = time.time() - t_kill
        self.check(failover < 3, f"tier: box 1's routes left the router {failover:.2f} s after its SIGKILL (BFD)")
        for vip, p in kas.items():
            p.wait(secs + 30)
            lines = open(os.path.join(bed.work, f"tier-keepalive-{vip}.out")).read().splitlines()
            res = json.loads(lines[-1])["conns"]
            kept = sum(1 for c in res if c["fail"] == 0 and len(c["backends"]) == 1)
            self.check(kept == conns,
                       f"tier: {kept}/{conns} long-lived connections to {vip} kept their backend "
                       f"with no error across box 1's death ({[c['error'] for c in res if c['error']]})")
            self.row("tier failover", "dr" if vip == TIER_DR else "tunnel ipip", 4,
                     sum(c["requests"] for c in res), sum(c["fail"] for c in res), None, None,
                     f"box 1 SIGKILLed: routes gone in {failover:.2f} s, {kept}/{conns} connections kept")
        blob = open(os.path.join(bed.work, "www", "blob"), "rb").read()
        for vip, (out, p) in dls.items():
            rc = p.wait(secs + 40)
            same = os.path.exists(out) and open(out, "rb").read() == blob
            self.check(rc == 0 and same,
                       f"tier: a rate-limited 10 MB download from {vip} across box 1's death: "
                       f"curl exit {rc}, {'the served bytes' if same else 'NOT the served bytes'}")
        self.failover_s = failover

        # Box 1 back: it rejoins.
        self.rp = Rampart(bed, self.bin, self.lifetime, self.tunnels, run=2)
        t = wait_nexthops(bed, f"{TIER_DR}/32", [NODE4, NODE4_B], 30)
        log(f"tier: box 1 restarted, rejoined after {t:.1f} s")

        # SIGTERM box 2 under wrk: withdrawn at once, drains, exits 0, no error.
        target = url(TIER_DR)
        out = {}
        th = threading.Thread(target=lambda: out.update(w=wrk(bed, target, secs + TIER_DRAIN_S + 2)))
        th.start()
        time.sleep(1.5)
        t_term = time.time()
        sh(["pkill", "-TERM", "-P", str(rp2.proc.pid)], check=False)
        wait_nexthops(bed, f"{TIER_DR}/32", [NODE4], 10)
        withdrawn = time.time() - t_term
        rc = rp2.proc.wait(TIER_DRAIN_S + 20)
        exited = time.time() - t_term
        th.join()
        w = out["w"]
        log_text = open(rp2.err).read()
        self.check(withdrawn < 2, f"tier: box 2's routes withdrawn {withdrawn:.2f} s after SIGTERM")
        self.check(rc == 0 and exited >= TIER_DRAIN_S and "drained: stopping" in log_text,
                   f"tier: box 2 drained {TIER_DRAIN_S} s and exited {rc} after {exited:.1f} s")
        self.check(w["requests"] > 0 and w["socket_errors"] == 0 and w["non_2xx"] == 0,
                   f"tier: wrk through box 2's SIGTERM: {w['requests']} requests, "
                   f"{w['socket_errors']} socket errors, {w['non_2xx']} non-2xx")
        self.wrk_row("tier sigterm", "dr, 2 boxes", 4, w, asserted=False)

        # Box 2 back: it rejoins and takes flows again.
        rp2 = Rampart(bed, self.bin, self.lifetime, self.tunnels, box=2, run=2)
        t = wait_nexthops(bed, f"{TIER_DR}/32", [NODE4, NODE4_B], 30)
        wait_health(rp2, IN_VIPS, (4,), (80,), "up", 15)
        rx2 = rp2.rx()
        res = curl_batch(bed, url(TIER_DR), 40)
        self.check(all(r[0] for r in res) and rp2.rx() - rx2 > 20,
                   f"tier: box 2 rejoined after {t:.1f} s and carries flows again")

        # A backend fails: both boxes take it out within the health bound.
        b = IN_VIPS[0]
        self.bed.stop(self.nginx[b.name], signal.SIGTERM)
        bound = (HEALTH["fall"] + 1) * HEALTH["interval_ms"] / 1000 + HEALTH["timeout_ms"] / 1000
        t1 = wait_health(self.rp, [b], (4,), (80,), "down", 10)
        t2 = wait_health(rp2, [b], (4,), (80,), "down", 10)
        self.check(max(t1, t2) <= bound + 0.5,
                   f"tier: {b.name} down on box 1 after {t1:.2f} s, on box 2 after {t2:.2f} s")
        self.nginx[b.name] = start_nginx(bed, b, self.lifetime)
        wait_listening(bed, b.name, 80, f"nginx on {b.name}")
        wait_health(self.rp, [b], (4,), (80,), "up", 10)
        wait_health(rp2, [b], (4,), (80,), "up", 10)
        rp2.stop()

    # faults

    def next_run(self):
        """A number for box 1's next start (its output files' names)."""
        self.runs = getattr(self, "runs", 9) + 1
        return self.runs

    def wait_idle(self, limit, idle=0):
        """Waits until rampart's connection table holds at most IDLE
        entries; returns (seconds, entries)."""
        t0 = time.time()
        n = self.rp.active()
        while n > idle and time.time() - t0 < limit:
            time.sleep(0.25)
            n = self.rp.active()
        return time.time() - t0, n

    def fault_config(self):
        """The conntrack fault's config: the NAT, FullNAT and DR VIPs only,
        a table of FAULT_CAPACITY entries and short timeouts (a closed
        connection's entry goes within seconds)."""
        vips = []
        for (mode, fam), vip in VIPS.items():
            if mode == "synproxy":
                continue
            extra = ([f"local_addresses = {toml_list([LOCALS[(mode, fam)]])}"]
                     if mode == "fullnat" else [])
            vips += vip_lines(f"{mode}-{fam}", vip, 80, mode, [(b, b.weight) for b in IN_VIPS],
                              fam, extra=extra)
        return rampart_config(self.bed.work, conntrack=dict(capacity=FAULT_CAPACITY,
                                                             **SHORT_TIMEOUTS), vips=vips)

    def stale_leftovers(self, rp):
        """What a killed rampart left behind: its control socket, its EAL
        runtime directory, its hugepage files."""
        out = []
        if os.path.exists(rp.sock):
            out.append("control socket")
        if os.path.isdir(f"/var/run/dpdk/{rp.prefix}"):
            out.append("runtime dir")
        huge = [f for f in os.listdir("/dev/hugepages") if f.startswith(rp.prefix)] \
            if os.path.isdir("/dev/hugepages") else []
        if huge:
            out.append(f"{len(huge)} hugepage files")
        return out

    def kill_under_wrk(self, what, cfg_text, huge):
        """SIGKILLs rampart halfway through a wrk run on the NAT VIP and
        starts a new one at once with CFG_TEXT (same file prefix, socket,
        port and kernel interface). Returns what the killed one left."""
        bed = self.bed
        w = {}
        th = threading.Thread(target=lambda: w.update(wrk(bed, url(VIPS[("nat", 4)]), 6)))
        th.start()
        time.sleep(2.5)
        t_kill = time.time()
        self.rp.kill()
        left = self.stale_leftovers(self.rp)
        self.rp = Rampart(bed, self.bin, self.lifetime, self.tunnels, run=self.next_run(),
                          cfg_text=cfg_text, huge=huge)
        restart = time.time() - t_kill
        th.join()
        up = wait_health(self.rp, IN_VIPS, (4, 6), (80,), "up", 15)
        res = curl_batch(bed, url(VIPS[("nat", 4)]), 20) + curl_batch(bed, url(VIPS[("nat", 6)]), 20)
        fails = sum(1 for r in res if not r[0])
        mem = "hugepages" if huge else "--no-huge"
        note = (f"SIGKILL {what}; left {', '.join(left) or 'nothing'}; restarted ({mem}) and "
                f"polling {restart:.1f} s after the kill, backends up {up:.1f} s later")
        self.wrk_row("wrk across SIGKILL and restart", "nat", 4, w, asserted=False, fault=True,
                     note=note)
        self.curl_row("curl after SIGKILL and restart", "nat", None, res, note)
        self.check(fails == 0 and w["requests"] > 0,
                   f"faults: {note}; then {len(res) - fails}/{len(res)} curl requests (IPv4 and "
                   f"IPv6) succeeded")
        return left

    def faults(self):
        """Faults under real traffic: rampart's port link down and up;
        SIGKILL mid-run and a restart at once (no-huge, then hugepages);
        a connection table too small for the load; an IPv6 SYN flood."""
        self.fault_link()
        huge = hugepages_free() >= 96
        if not huge:
            log("faults: fewer than 96 free hugepages: the restarts run with --no-huge")
        left = self.kill_under_wrk("with --no-huge", self.fault_config(), huge)
        self.fault_conntrack()
        left = self.kill_under_wrk("on hugepages" if huge else "with --no-huge",
                                   rampart_config(self.bed.work, tunnels=self.tunnels), huge)
        if huge:
            self.check(any("hugepage" in x for x in left),
                       f"faults: the SIGKILLed run on hugepages left its hugepage files ({left}), "
                       f"which did not block the restart")
        wait_health(self.rp, IN_VIPS, (4, 6), (80, ECHO_PORT), "up", 15)
        self.flood("rampart", VIPS[("synproxy", 6)], fam=6)
        self.flood_checks()

    def fault_link(self):
        """r0, rampart's veth, down for 2 s and up again: forwarding
        resumes without a restart."""
        bed, rp = self.bed, self.rp
        target = {fam: url(VIPS[("nat", fam)]) for fam in (4, 6)}
        pid = rp.pid()
        drops0 = rp.drops()
        sh(["ip", "-n", bed.ns("lb"), "link", "set", "r0", "down"])
        time.sleep(1)
        during = curl_batch(bed, target[4], 1, timeout=1)
        time.sleep(1)
        sh(["ip", "-n", bed.ns("lb"), "link", "set", "r0", "up"])
        t0 = time.time()
        back = None
        while time.time() - t0 < 20:
            if curl_batch(bed, target[4], 1, timeout=2)[0][0]:
                back = time.time() - t0
                break
        res = curl_batch(bed, target[4], 20) + curl_batch(bed, target[6], 20)
        fails = sum(1 for r in res if not r[0])
        dd = {k: v - drops0.get(k, 0) for k, v in rp.drops().items() if v - drops0.get(k, 0)}
        note = (f"r0 down 2 s (a request meanwhile {'succeeded' if during[0][0] else 'failed'}), "
                f"first request through {'-' if back is None else f'{back:.1f} s'} after up; "
                f"rampart drops meanwhile " + (", ".join(f"{k} +{v}" for k, v in dd.items())
                                              or "none"))
        self.curl_row("curl after the port's link down and up", "nat", None, res, note)
        self.check(back is not None and fails == 0 and rp.proc.poll() is None
                   and rp.pid() == pid,
                   f"faults: link down/up: {note}; then {len(res) - fails}/{len(res)} requests "
                   f"succeeded, same rampart process ({pid} -> {rp.pid()})")

    def fault_conntrack(self):
        """FAULT_CAPACITY entries and three times as many wrk connections:
        NAT and DR serve the rest without state (stateless_new), FullNAT
        refuses them (conn_table_full); once the connections close the
        table empties and FullNAT serves normally again."""
        bed, rp = self.bed, self.rp
        conns = 3 * FAULT_CAPACITY
        secs = self.wrk_s + 1
        for mode in ("nat", "dr", "fullnat"):
            ev0 = rp.events("stateless_new")["stateless_new"]
            full0 = rp.drops().get("conn_table_full", 0)
            peak = []
            w = {}
            th = threading.Thread(target=lambda: w.update(wrk(bed, url(VIPS[(mode, 4)]), secs,
                                                              conns=conns)))
            th.start()
            time.sleep(secs / 2 + 1)
            peak.append(rp.active())
            th.join()
            stateless = rp.events("stateless_new")["stateless_new"] - ev0
            full = rp.drops().get("conn_table_full", 0) - full0
            idle_s, left = self.wait_idle(20)
            note = (f"{conns} conns, table of {FAULT_CAPACITY}: {peak[0]} entries mid-run, "
                    f"stateless_new +{stateless}, conn_table_full +{full}; table empty "
                    f"{idle_s:.1f} s after ({left} left)")
            self.wrk_row(f"wrk, {conns} conns, table full", mode, 4, w, asserted=False,
                         fault=(mode == "fullnat"), note=note)
            if mode == "fullnat":
                self.check(full > 0 and w["requests"] > 0 and rp.proc.poll() is None,
                           f"faults: conntrack full, fullnat: new flows refused ({note}); "
                           f"the tracked ones served {w['requests']} requests")
            else:
                self.check(w["requests"] > 0 and w["socket_errors"] == 0 and w["non_2xx"] == 0
                           and stateless >= conns - FAULT_CAPACITY and full == 0,
                           f"faults: conntrack full, {mode}: wrk {w['requests']} requests, "
                           f"{w['socket_errors']} socket errors, {w['non_2xx']} non-2xx ({note})")
            self.check(left == 0, f"faults: conntrack full, {mode}: the table emptied after the "
                                  f"load ({left} entries after {idle_s:.1f} s)")
        # Back to normal: FullNAT with fewer connections than entries.
        w = {}
        th = threading.Thread(target=lambda: w.update(wrk(bed, url(VIPS[("fullnat", 4)]),
                                                          self.wrk_s, conns=16)))
        full0 = rp.drops().get("conn_table_full", 0)
        th.start()
        time.sleep(self.wrk_s / 2)
        mid = rp.active()
        th.join()
        full = rp.drops().get("conn_table_full", 0) - full0
        self.wrk_row("wrk, 16 conns, after the table emptied", "fullnat", 4, w,
                     note=f"{mid} entries mid-run, conn_table_full +{full}")
        self.check(mid >= 16 and full == 0,
                   f"faults: conntrack full, fullnat afterwards: {mid} entries mid-run for 16 "
                   f"connections, conn_table_full +{full}")

    # soak

    def soak_config(self, variant):
        """The soak's two configs, which reloads alternate: the steady VIP
        (NAT over b1 and b3, the weights swapped between the variants;
        TCP and UDP), the churn VIP (FullNAT over b1 and b2, b2's nginx
        killed every SOAK_KILL_EVERY s; variant 1 adds b4) and the flood
        VIP (SYN proxy over b1 and b3). Short timeouts: the table empties
        within seconds of the load's end."""
        by = {b.name: b for b in BACKENDS}
        a = variant == 0
        steady = [(by["b1"], 1 if a else 2), (by["b3"], 2 if a else 1)]
        churn = [(by["b1"], 1), (by["b2"], 1)] + ([] if a else [(by["b4"], 1)])
        vips = vip_lines("steady", SOAK_STEADY, 80, "nat", steady, 4)
        vips += vip_lines("steady-udp", SOAK_STEADY, UDP_PORT, "nat", steady, 4, proto="udp",
                          health=False)
        vips += vip_lines("churn", SOAK_CHURN, 80, "fullnat", churn, 4,
                          extra=[f"local_addresses = {toml_list([LOCALS[('fullnat', 4)]])}"])
        vips += vip_lines("flood", VIPS[("synproxy", 4)], 80, "nat", steady, 4,
                          extra=["synproxy = true"])
        return rampart_config(self.bed.work, conntrack=dict(capacity=262144, **SHORT_TIMEOUTS),
                              vips=vips)

    def soak(self):
        """rampart under every load at once for SOAK seconds, with churn:
        wrk keep-alive and wrk with a new connection per request on the
        steady VIP, a UDP request/response client on it, wrk on the churn
        VIP; a reload every SOAK_RELOAD_EVERY s alternating two configs,
        b2's nginx killed every SOAK_KILL_EVERY s (back 5 s later), a 5 s
        hping3 SYN flood every SOAK_FLOOD_EVERY s. Checks: RSS after the
        warm-up within 5% of its value at the end, no worker stall logged,
        every request on the steady VIP completed, the table back to its
        idle size, rx = tx + consumed + dropped."""
        bed = self.bed
        secs = self.a.soak_seconds
        warm = min(60, secs // 3)
        self.rp.stop()
        variant = 0
        self.rp = Rampart(bed, self.bin, self.lifetime, self.tunnels, run=self.next_run(),
                          cfg_text=self.soak_config(variant))
        rp = self.rp
        wait_health(rp, [b for b in BACKENDS if b.name in ("b1", "b2", "b3")], (4,), (80,), "up",
                    15)
        pid = rp.pid()
        idle = rp.active()
        err_at = os.path.getsize(rp.err)
        log(f"soak: {secs} s, warm-up {warm} s, rampart pid {pid}, {idle} entries idle")
        results = {}

        def load(key, target, conns, close):
            results[key] = wrk(bed, target, secs, conns=conns, close=close, timeout=10)

        loads = [threading.Thread(target=load, args=a) for a in (
            ("steady keep-alive", url(SOAK_STEADY), 16, False),
            ("steady new conns", url(SOAK_STEADY), 8, True),
            ("churn keep-alive", url(SOAK_CHURN), 8, False),
            ("churn new conns", url(SOAK_CHURN), 4, True))]
        udp = bed.spawn("client", [sys.executable, SELF, "udp-rr", "--host", SOAK_STEADY,
                                   "--port", str(UDP_PORT), "--seconds", str(secs), "--rate",
                                   "200"], "soak-udp-rr", secs + 30)
        t0 = time.time()
        for th in loads:
            th.start()
        rss = []  # (seconds since start, kB)
        events = {"reloads": 0, "reload_errors": [], "kills": 0, "floods": 0}
        b2 = next(b for b in BACKENDS if b.name == "b2")
        next_sample = next_reload = 0.0
        next_reload = SOAK_RELOAD_EVERY
        kill_at, back_at, flood_at = SOAK_KILL_AT, None, SOAK_FLOOD_AT
        floods = []
        while True:
            now = time.time() - t0
            if now >= secs:
                break
            if now >= next_sample:
                try:
                    with open(f"/proc/{pid}/status") as f:
                        rss.append((now, int(re.search(r"^VmRSS:\s+(\d+)", f.read(),
                                                       re.M).group(1))))
                except (OSError, AttributeError):
                    pass
                next_sample += 1
            if now >= next_reload:
                variant ^= 1
                with open(rp.cfg, "w") as f:
                    f.write(self.soak_config(variant))
                try:
                    rep = rp.ctl("reload")
                    events["reloads"] += 1
                    if "generation" not in rep:
                        events["reload_errors"].append(str(rep))
                except Failure as e:
                    events["reload_errors"].append(str(e))
                next_reload += SOAK_RELOAD_EVERY
            if now >= kill_at:
                self.bed.stop(self.nginx["b2"], signal.SIGKILL)
                events["kills"] += 1
                back_at, kill_at = now + 5, kill_at + SOAK_KILL_EVERY
            if back_at is not None and now >= back_at:
                self.nginx["b2"] = start_nginx(bed, b2, self.lifetime)
                back_at = None
            if now >= flood_at:
                for k in (1, 2):
                    floods.append(bed.spawn(FLOOD_ROLE, [
                        *self.off_worker_cpus(), "hping3", "-q", "-S", "-p", "80", "--flood",
                        "-a", f"198.19.0.{k}", VIPS[("synproxy", 4)]],
                        f"soak-hping3-{events['floods']}-{k}", 5))
                events["floods"] += 1
                flood_at += SOAK_FLOOD_EVERY
            time.sleep(0.05)
        for th in loads:
            th.join()
        udp.wait(60)
        if back_at is not None:
            self.nginx["b2"] = start_nginx(bed, b2, self.lifetime)
        for p in floods:
            p.wait(15)
        lines = open(os.path.join(bed.work, "soak-udp-rr.out")).read().splitlines()
        u = json.loads(lines[-1]) if lines else {"requests": 0, "answered": 0, "first_try": 0,
                                                   "failed": -1, "worst_s": 0}
        idle_s, left = self.wait_idle(40, idle)
        # RSS: the peak after the warm-up against the end (the mean of the
        # last 3 samples), and the growth from the warm-up's end.
        after = [kb for t, kb in rss if t >= warm]
        end = sum(kb for _, kb in rss[-3:]) / max(1, len(rss[-3:]))
        peak = max(after) if after else 0
        at_warm = after[0] if after else 0
        # Stalls rampart logged during the soak.
        with open(rp.err) as f:
            f.seek(err_at)
            stalls = [int(x) for x in re.findall(r"stalled, no poll for (\d+) ms", f.read())]
        self.rp.stop()
        run = json.load(open(rp.json))
        held = run["events"].get("fragments_held_dropped", 0)
        rx, tx, consumed, dropped = (run["rx_packets"], run["tx_packets"], run["consumed"],
                                     run["dropped_total"])
        self.soak_figures = {
            "seconds": secs, "warm_up": warm, "rss_kb": rss, "rss_at_warm_kb": at_warm,
            "rss_peak_after_warm_kb": peak, "rss_end_kb": end, "stalls_ms": stalls,
            "udp": u, "wrk": {k: {x: v[x] for x in ("requests", "socket_errors", "non_2xx",
                                                    "rps", "p50", "p99")}
                              for k, v in results.items()},
            "events": events, "idle_entries": idle, "left_entries": left, "idle_after_s": idle_s,
            "rx": rx, "tx": tx, "consumed": consumed, "dropped": dropped,
            "fragments_held_dropped": held, "drops": {k: v for k, v in run["dropped"].items() if v},
            "tx_dropped": run["dpdk"]["tx_dropped"]}
        log(f"soak figures: {json.dumps({k: v for k, v in self.soak_figures.items() if k != 'rss_kb'})}")
        for key, w in sorted(results.items(), key=lambda kv: not kv[0].startswith("steady")):
            steady = key.startswith("steady")
            self.wrk_row(f"soak {secs} s: wrk {key.split(' ', 1)[1]}", key.split()[0], 4, w,
                         asserted=steady, fault=not steady,
                         note="" if steady else "b2 killed, b4 added and removed: reported")
        self.row(f"soak {secs} s: UDP request/response", "steady", 4, u["requests"], u["failed"],
                 None, u["worst_s"], f"{u['first_try']} answered at the first try")
        self.check(u["requests"] > 0 and u["failed"] == 0,
                   f"soak: UDP {u['answered']}/{u['requests']} requests answered ({UDP_TRIES} "
                   f"tries each, backing off), {u['first_try']} at the first try"
                   + (f"; failed at {u['failed_at']} s" if u.get("failed_at") else ""))
        self.check(not events["reload_errors"] and events["reloads"] >= secs // SOAK_RELOAD_EVERY - 1,
                   f"soak: {events['reloads']} reloads, errors {events['reload_errors']}; "
                   f"{events['kills']} kills of b2, {events['floods']} floods")
        self.check(peak <= 1.05 * end and end <= 1.05 * at_warm,
                   f"soak: RSS {at_warm} kB after the {warm} s warm-up, peak {peak} kB after it, "
                   f"{end:.0f} kB at the end (peak within 5% of the end, end within 5% of the "
                   f"warm-up's)")
        self.check(not stalls, f"soak: worker stalls over 100 ms logged: {stalls or 'none'}")
        self.check(left <= idle, f"soak: the table back to {left} entries ({idle} idle) "
                                 f"{idle_s:.1f} s after the load")
        self.check(rx == tx + consumed + dropped - held,
                   f"soak: rx {rx} = tx {tx} + consumed {consumed} + dropped {dropped} - "
                   f"fragments_held_dropped {held}")
        # The rest of the suite runs on the usual config.
        self.rp = Rampart(bed, self.bin, self.lifetime, self.tunnels, run=self.next_run())
        wait_health(self.rp, IN_VIPS, (4, 6), (80,), "up", 15)

    def run(self):
        only = self.a.only

        def want(case):
            return not only or case in only

        self.start_servers()
        self.tunnel_plumbing()
        self.start_rampart()
        if want("modes"):
            self.modes()
        if want("tunnel") and self.tunnels:
            self.tunnel()
        if want("steer"):
            self.steer()
        if want("ping"):
            self.ping()
        if want("pmtu") or want("pmtu-nat"):
            self.pmtu()
        if want("fragments"):
            self.fragments()
        if want("synproxy"):
            self.synproxy()
            self.flood_checks()
        if want("proxy"):
            self.proxy()
        if want("health"):
            self.health()
        if want("reload"):
            self.reload()
        if want("tier"):
            self.tier()
        if want("faults"):
            self.faults()
        if want("soak"):
            self.soak()
        drops = self.rp.drops()
        self.rp.stop()
        run = json.load(open(self.rp.json))
        self.rampart_stats = {k: run.get(k) for k in ("rx_packets", "tx_packets",
                                                       "dropped_total", "consumed")}
        self.rampart_stats["drops"] = drops
        self.rampart_stats["tx_dropped"] = run["dpdk"]["tx_dropped"]
        log(f"rampart stopped: {self.rampart_stats}")
        if want("nftables"):
            self.nftables()


# --- report ---------------------------------------------------------------------------


def report(suite, work, args, started):
    lines = [f"Cases ({'--quick' if args.quick else 'full run'}, {time.strftime('%Y-%m-%d')}, "
             f"{time.time() - started:.0f} s; rampart on net_{PORT_DRIVER}, idle_sleep_us "
             f"{IDLE_SLEEP_US}):", "",
             "| case | mode | family | requests | errors | p50 | p99 | notes |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for r in suite.rows:
        lines.append(f"| {r['case']} | {r['mode']} | {r['family']} | {r['requests']} | "
                     f"{r['errors']} | {ms(r['p50'])} | {ms(r['p99'])} | {r['note']} |")
    # rampart beside nftables DNAT: the same wrk loads on NAT, same run.
    by = {(c["lb"], c["load"], c["family"]): c for c in suite.compared}
    pairs = [(k[1], k[2]) for k in by if k[0] == "rampart" and ("nftables", k[1], k[2]) in by]
    if pairs:
        lines += ["", f"NAT, rampart (net_{PORT_DRIVER}, idle_sleep_us {IDLE_SLEEP_US}) beside "
                  f"nftables DNAT in the lb namespace, wrk -t1 -c16, {suite.wrk_s} s each:", "",
                  "| load | family | rampart req/s | nftables req/s | ratio | rampart p99 | "
                  "nftables p99 | errors (rampart / nftables) |",
                  "|---|---|---:|---:|---:|---:|---:|---|"]
        for load, fam in pairs:
            r, n = by[("rampart", load, fam)], by[("nftables", load, fam)]
            ratio = f"{r['rps'] / n['rps']:.2f}" if n["rps"] else "-"
            lines.append(f"| {load} | {fam} | {r['rps']:.0f} | {n['rps']:.0f} | {ratio} | "
                         f"{ms(r['p99'])} | {ms(n['p99'])} | {r['errors']} / {n['errors']} |")
    if suite.flood_rows:
        lines += ["", "SYN flood (2 spoofed sources: hping3 over IPv4, e2e.py's syn6-flood over "
                  "IPv6) against the SYN proxy VIP:", "",
                  "| in the LB's place | family | flood at the router | SYN-ACKs answered | curl ok "
                  "under flood | p50 | p99 | state growth | notes |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---|"]
        for r in suite.flood_rows:
            lines.append(
                f"| {r['lb']} | {r['family']} | {r['flood_syn_per_s']:.0f} SYN/s | "
                f"{r['synack_per_s']:.0f}/s | "
                f"{r['curl_ok']}/{r['curl']} ({r['success']:.1%}) | {ms(r['p50'])} | "
                f"{ms(r['p99'])} | {r['table_growth']} | {r['note']} |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(work, "summary.md"), "w") as f:
        f.write(text)
    with open(os.path.join(work, "summary.json"), "w") as f:
        json.dump({"rows": suite.rows, "flood": suite.flood_rows,
                   "checks": [{"ok": ok, "what": w} for ok, w in suite.checks],
                   "rampart": getattr(suite, "rampart_stats", None),
                   "soak": getattr(suite, "soak_figures", None),
                   "compared": suite.compared, "port_driver": PORT_DRIVER,
                   "idle_sleep_us": IDLE_SLEEP_US}, f, indent=1)
    print(text)


def main_suite(args):
    if os.geteuid() != 0:
        sys.exit("e2e: needs root (network namespaces, AF_PACKET)")
    missing = [t for t in ("ip", "ethtool", "curl", "wrk", "hping3", "nginx", "nft", "ss",
                           "timeout", "ping", "clang") if not shutil.which(t)]
    if not os.path.exists("/usr/include/bpf/bpf_helpers.h"):
        missing.append("bpf/bpf_helpers.h")
    if missing:
        sys.exit(f"e2e: missing {', '.join(missing)} (apt-get install iproute2 ethtool curl wrk "
                 "hping3 nginx-light nftables iputils-ping clang libbpf-dev)")
    binary = args.binary
    if not binary:
        log("building: cargo build --release --features dpdk")
        subprocess.run(["cargo", "build", "--release", "--features", "dpdk"], cwd=ROOT,
                       check=True)
        binary = os.path.join(ROOT, "target", "release", "rampart")
    binary = os.path.abspath(binary)
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    bed = Bed(work, f"re{os.getpid() % 100000}")
    started = time.time()

    def on_signal(signum, _frame):
        # SIGALRM is the deadline of the whole run, whatever hangs.
        what = "deadline" if signum == signal.SIGALRM else f"signal {signum}"
        raise Failure(f"stopped: {what}")

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(sig, on_signal)
    signal.alarm(args.deadline)
    suite = Suite(args, bed, binary)
    try:
        bed.build()
        suite.run()
    except Failure as e:
        suite.failures.append(str(e))
        log(f"FAIL: {e}")
    except Exception as e:  # noqa: BLE001 - any crash is a failed run, reported
        suite.failures.append(f"{type(e).__name__}: {e}")
        log(f"FAIL: {type(e).__name__}: {e}")
        import traceback
        traceback.print_exc()
    finally:
        signal.alarm(0)
        bed.teardown()
    report(suite, work, args, started)
    if suite.failures:
        log(f"{len(suite.failures)} failed:")
        for f in suite.failures:
            log(f"  {f}")
        sys.exit(1)
    log(f"all {len(suite.checks)} checks passed")


CASES = ("modes", "tunnel", "steer", "ping", "pmtu", "pmtu-nat", "fragments", "synproxy",
         "proxy", "health", "reload", "tier", "faults", "soak", "nftables")


def main():
    global PORT_DRIVER, IDLE_SLEEP_US
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="role")
    s = sub.add_parser("echo-server")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--lifetime", type=float, required=True)
    s = sub.add_parser("echo-client")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--bytes", type=int, required=True)
    s = sub.add_parser("banner-server")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--lifetime", type=float, required=True)
    s = sub.add_parser("banner-client")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, required=True)
    s = sub.add_parser("udp-echo-server")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--addrs", required=True)
    s.add_argument("--lifetime", type=float, required=True)
    s = sub.add_parser("udp-echo-client")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--bytes", type=int, required=True)
    s.add_argument("--count", type=int, required=True)
    s = sub.add_parser("syn6-flood")
    s.add_argument("--dev", required=True)
    s.add_argument("--dst-mac", required=True)
    s.add_argument("--dst", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--source", required=True)
    s.add_argument("--seconds", type=float, required=True)
    s.add_argument("--count", type=int, required=True)
    s = sub.add_parser("udp-rr")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--seconds", type=float, required=True)
    s.add_argument("--rate", type=float, required=True)
    s.add_argument("--timeout", type=float, default=0.5)
    s = sub.add_parser("keepalive")
    s.add_argument("--host", required=True)
    s.add_argument("--conns", type=int, required=True)
    s.add_argument("--seconds", type=float, required=True)
    s.add_argument("--interval", type=float, required=True)
    s.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--quick", action="store_true",
                   help="shorter loads (CI): wrk 3 s, floods 6 s, fewer requests")
    p.add_argument("--binary", help="rampart built with --features dpdk (default: build it)")
    p.add_argument("--work", default=os.path.join(ROOT, "target", "e2e"),
                   help="where outputs and summary.md go (default target/e2e)")
    p.add_argument("--deadline", type=int, default=900, help="seconds for the whole run")
    p.add_argument("--soak-seconds", type=int, default=60,
                   help="the soak case's length (default 60; 600 for the 10-minute soak, with a "
                        "--deadline to match)")
    p.add_argument("--only", default="",
                   help="comma-separated cases to run (the bed and its tunnel checks always): "
                        + ", ".join(CASES))
    p.add_argument("--no-tunnel-vips", action="store_true",
                   help="leave the tunnel VIPs out of rampart's config and skip their cases "
                        "(for a rampart without tunnel mode; the tunnel backends are still "
                        "built and checked)")
    p.add_argument("--port-driver", choices=sorted(PORT_DRIVERS), default=PORT_DRIVER,
                   help="rampart's port driver on the lb veth (default af_packet)")
    p.add_argument("--idle-sleep-us", type=int, default=IDLE_SLEEP_US,
                   help="[dpdk] idle_sleep_us of rampart's runs (default 50; 0 = pure polling)")
    args = p.parse_args()
    PORT_DRIVER, IDLE_SLEEP_US = args.port_driver, args.idle_sleep_us
    args.only = [c for c in args.only.split(",") if c]
    unknown = [c for c in args.only if c not in CASES]
    if unknown:
        p.error(f"unknown case(s) {unknown}; cases: {', '.join(CASES)}")
    if args.role == "echo-server":
        echo_server(args)
    elif args.role == "echo-client":
        echo_client(args)
    elif args.role == "banner-server":
        banner_server(args)
    elif args.role == "banner-client":
        banner_client(args)
    elif args.role == "udp-echo-server":
        udp_echo_server(args)
    elif args.role == "udp-echo-client":
        udp_echo_client(args)
    elif args.role == "syn6-flood":
        syn6_flood(args)
    elif args.role == "udp-rr":
        udp_rr_client(args)
    elif args.role == "keepalive":
        keepalive_client(args)
    else:
        main_suite(args)


if __name__ == "__main__":
    main()
