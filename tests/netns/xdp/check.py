#!/usr/bin/env python3
"""Checks decap.c on a veth between two network namespaces it creates (and
always deletes): a sender and a backend holding VIPs on `lo`, with the XDP
program on the backend's veth.

The sender writes hand-built Ethernet frames with an AF_PACKET socket:
every combination of outer IPv4/IPv6, inner IPv4/IPv6 and IPIP/GUE
encapsulation, carrying an ICMP echo request or a TCP SYN from the sender's
own address to the VIP. A case passes when the backend's kernel answers
from the VIP straight to the sender (an echo reply; a SYN-ACK from the
listener the backend runs). Then the negative cases: GUE to another UDP
port and a GUE header with flags set are not decapsulated (no answer from
the VIP), and plain traffic to the backend still passes (ping).

Usage (root): python3 tests/netns/xdp/check.py [--obj decap.o] [--control]
Without --obj it builds decap.c with clang into a temporary directory.

`check.py probe --dev DEV --dst-mac MAC --outer-src A --outer-dst B
--inner-src C --vip V --encap ipip|gue`, run inside a namespace, sends one
encapsulated echo request from C to V and exits 0 when the reply from V
is seen; tests/netns/e2e.py uses it to check its tunnel backends' XDP.
Addresses: 198.18.10.0/24, 2001:2:0:10::/64, VIPs 198.18.200.1 and
2001:2:0:200::1; nothing leaves the two namespaces.
"""

import argparse
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
S4, B4, VIP4 = "198.18.10.1", "198.18.10.2", "198.18.200.1"
S6, B6, VIP6 = "2001:2:0:10::1", "2001:2:0:10::2", "2001:2:0:200::1"
S_MAC, B_MAC = "02:00:00:00:10:01", "02:00:00:00:10:02"
PORT = 8080  # the backend's listener
GUE_PORT = 6080


def sh(*args, check=True, timeout=20):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip4(src, dst, proto, payload, ident=1, options=b""):
    """An IPv4 packet; OPTIONS (a multiple of 4 bytes) makes the IHL larger."""
    h = struct.pack("!BBHHHBBH4s4s", 0x45 + len(options) // 4, 0, 20 + len(options) + len(payload),
                    ident, 0x4000, 64, proto, 0, socket.inet_aton(src),
                    socket.inet_aton(dst)) + options
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def ip6(src, dst, nh, payload):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), nh, 64,
                       socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst)) + payload


def pseudo(fam, src, dst, proto, length):
    if fam == 4:
        return struct.pack("!4s4sBBH", socket.inet_aton(src), socket.inet_aton(dst), 0, proto,
                           length)
    return struct.pack("!16s16sIxxxB", socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst), length, proto)


def echo(fam, src, dst, ident, seq):
    """An ICMP / ICMPv6 echo request inside its IP header."""
    body = b"rampart-decap-check"
    if fam == 4:
        m = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + body
        m = m[:2] + struct.pack("!H", csum(m)) + m[4:]
        return ip4(src, dst, 1, m)
    m = struct.pack("!BBHHH", 128, 0, 0, ident, seq) + body
    m = m[:2] + struct.pack("!H", csum(pseudo(6, src, dst, 58, len(m)) + m)) + m[4:]
    return ip6(src, dst, 58, m)


def syn(fam, src, dst, sport, dport):
    t = struct.pack("!HHIIBBHHH", sport, dport, 1000, 0, 5 << 4, 0x02, 65535, 0, 0)
    t = t[:16] + struct.pack("!H", csum(pseudo(fam, src, dst, 6, len(t)) + t)) + t[18:]
    return ip4(src, dst, 6, t) if fam == 4 else ip6(src, dst, 6, t)


def encap(outer, encap_kind, inner_fam, packet, gue_port=GUE_PORT, gue_flags=0, src=None,
          dst=None):
    """PACKET (of version INNER_FAM) in an outer IP header from SRC to DST
    (default the sender and the backend), plain or with UDP + GUE."""
    proto = 4 if inner_fam == 4 else 41
    if src is None:
        src, dst = (S4, B4) if outer == 4 else (S6, B6)
    if encap_kind == "gue":
        payload = struct.pack("!BBH", 0, proto, gue_flags) + packet
        udp = struct.pack("!HHHH", 40000, gue_port, 8 + len(payload), 0) + payload
        c = csum(pseudo(outer, src, dst, 17, len(udp)) + udp) or 0xFFFF
        udp = udp[:6] + struct.pack("!H", c) + udp[8:]
        proto, packet = 17, udp
    return ip4(src, dst, proto, packet) if outer == 4 else ip6(src, dst, proto, packet)


def frame(outer_fam, l3, dst_mac=B_MAC, src_mac=S_MAC):
    mac = lambda m: bytes.fromhex(m.replace(":", ""))
    return mac(dst_mac) + mac(src_mac) + struct.pack("!H", 0x0800 if outer_fam == 4 else 0x86DD) + l3


def answered(sock, fam, kind, key, limit=1.0, vip=None):
    """Waits for the answer from the VIP to the sender: an echo reply with
    KEY = (ident, seq) or a TCP segment with KEY = (sport, dport)."""
    vip = vip or (VIP4 if fam == 4 else VIP6)
    deadline = time.time() + limit
    while time.time() < deadline:
        r, _, _ = select.select([sock], [], [], max(0.0, deadline - time.time()))
        if not r:
            break
        f = sock.recv(65535)
        et = struct.unpack("!H", f[12:14])[0]
        p = f[14:]
        if fam == 4 and et == 0x0800:
            ihl = (p[0] & 15) * 4
            src, proto, l4 = socket.inet_ntoa(p[12:16]), p[9], p[ihl:]
        elif fam == 6 and et == 0x86DD:
            src, proto, l4 = socket.inet_ntop(socket.AF_INET6, p[8:24]), p[6], p[40:]
        else:
            continue
        if src != vip:
            continue
        if kind == "echo" and proto in (1, 58) and l4[0] in (0, 129):
            if struct.unpack("!HH", l4[4:8]) == key:
                return "echo reply"
        if kind == "syn" and proto == 6:
            sport, dport = struct.unpack("!HH", l4[:4])
            flags = l4[13]
            if (dport, sport) == key:
                return {0x12: "SYN-ACK", 0x14: "RST"}.get(flags & 0x16, f"flags {flags:#x}")
    return None


def probe(a):
    """One encapsulated echo request sent on DEV; exit 0 when the echo reply
    from the VIP comes back (seen on any interface of this namespace, so a
    router can send it and see the answer it forwards to the client)."""
    vip_fam = 6 if ":" in a.vip else 4
    outer_fam = 6 if ":" in a.outer_dst else 4
    with open(f"/sys/class/net/{a.dev}/address") as f:
        src_mac = f.read().strip()
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    ident, seq = os.getpid() & 0xFFFF, 1
    l3 = encap(outer_fam, a.encap, vip_fam, echo(vip_fam, a.inner_src, a.vip, ident, seq),
               src=a.outer_src, dst=a.outer_dst)
    out = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    out.bind((a.dev, 0))
    got = None
    for _ in range(3):  # the first may wait for the backend's neighbour entry
        out.send(frame(outer_fam, l3, dst_mac=a.dst_mac, src_mac=src_mac))
        got = answered(sock, vip_fam, "echo", (ident, seq), limit=1.0, vip=a.vip)
        if got:
            break
    print(f"{a.encap} v{vip_fam}-in-v{outer_fam} to {a.outer_dst}, echo {a.inner_src} -> {a.vip}: "
          + (got or "no answer"))
    sys.exit(0 if got else 1)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "probe":
        p = argparse.ArgumentParser(prog="check.py probe", description=probe.__doc__.split("\n")[0])
        for opt in ("--dev", "--dst-mac", "--outer-src", "--outer-dst", "--inner-src", "--vip"):
            p.add_argument(opt, required=True)
        p.add_argument("--encap", choices=("ipip", "gue"), required=True)
        probe(p.parse_args(sys.argv[2:]))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--obj", help="decap.o (default: build decap.c)")
    p.add_argument("--control", action="store_true",
                   help="attach nothing and expect no answer from the VIP to any "
                        "encapsulated packet (the kernel here has no tunnel devices)")
    p.add_argument("--in-ns", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.in_ns:
        print(run_cases(decap=not a.control), end="done\n")
        return
    if os.geteuid() != 0:
        sys.exit("check.py: needs root")
    tmp = tempfile.mkdtemp(prefix="decap-check.")
    obj = a.obj
    if not obj:
        obj = os.path.join(tmp, "decap.o")
        sh("clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c",
           os.path.join(HERE, "decap.c"), "-o", obj)
    tag = f"xd{os.getpid() % 100000}"
    ns_s, ns_b = f"{tag}-snd", f"{tag}-be"
    listener = None
    failures = []
    try:
        for ns in (ns_s, ns_b):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns_s, "link", "add", "s0", "address", S_MAC, "type", "veth", "peer",
           "name", "b0", "netns", ns_b)
        sh("ip", "-n", ns_b, "link", "set", "b0", "address", B_MAC)
        for ns, dev, a4, a6 in ((ns_s, "s0", S4, S6), (ns_b, "b0", B4, B6)):
            sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off")
            sh("ip", "-n", ns, "addr", "add", f"{a4}/24", "dev", dev)
            sh("ip", "-n", ns, "addr", "add", f"{a6}/64", "dev", dev, "nodad")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", ns_b, "addr", "add", f"{VIP4}/32", "dev", "lo")
        sh("ip", "-n", ns_b, "addr", "add", f"{VIP6}/128", "dev", "lo")
        for kv in ("net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.b0.rp_filter=0"):
            sh("ip", "netns", "exec", ns_b, "sysctl", "-qw", kv)
        if not a.control:
            r = sh("ip", "-n", ns_b, "link", "set", "dev", "b0", "xdp", "obj", obj, "sec", "xdp",
                   check=False)
            if r.returncode != 0:
                sys.exit(f"check.py: loading {obj} failed: {r.stderr.strip()}")
            mode = sh("ip", "-n", ns_b, "-d", "link", "show", "b0").stdout
            print("attached:", "xdp (native)" if "prog/xdp" in mode
                  else mode.strip().splitlines()[-1])
        listener = subprocess.Popen(
            ["ip", "netns", "exec", ns_b, "timeout", "60", sys.executable, "-c",
             "import socket,time\n"
             "s=socket.socket(socket.AF_INET6);s.setsockopt(41,26,0)\n"
             f"s.bind(('::',{PORT}));s.listen(64);time.sleep(55)"])
        for _ in range(50):
            if sh("ip", "netns", "exec", ns_b, "ss", "-Htln", f"sport = :{PORT}").stdout.strip():
                break
            time.sleep(0.1)
        # resolve the neighbours once (the backend answers through them)
        sh("ip", "netns", "exec", ns_s, "ping", "-c1", "-W2", B4)
        sh("ip", "netns", "exec", ns_s, "ping", "-6", "-c1", "-W2", B6)

        # the sender's side runs in its namespace: this script again
        r = sh("ip", "netns", "exec", ns_s, sys.executable, os.path.abspath(__file__), "--in-ns",
               *(["--control"] if a.control else []), check=False, timeout=60)
        print(r.stdout, end="")
        lines = r.stdout.splitlines()
        if r.returncode != 0 or not lines or lines[-1] != "done":
            failures.append(f"the sender exited {r.returncode}: {r.stderr.strip()}")
        failures += [line for line in lines if line.startswith("FAIL")]
    finally:
        if listener:
            listener.kill()
            listener.wait()
        for ns in (ns_s, ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    if failures:
        for f in failures:
            print(f, file=sys.stderr)
        sys.exit(f"check.py: {len(failures)} failed")
    print("check.py: every case passed")


def run_cases(decap=True):
    """In the sender's namespace: sends every case, returns report lines.
    DECAP false: no program attached, so no encapsulated packet is answered."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    sock.bind(("s0", 0))
    lines = []
    n = 0

    def case(name, outer, l3, fam, kind, key, want):
        nonlocal n
        # drain whatever is queued
        while select.select([sock], [], [], 0)[0]:
            sock.recv(65535)
        sock.send(frame(outer, l3))
        got = answered(sock, fam, kind, key, limit=1.0 if want else 0.5)
        ok = bool(got) == want
        lines.append(f"{'ok  ' if ok else 'FAIL'} {name}: "
                     + (f"{got} from the VIP" if got else "no answer from the VIP"))

    for outer in (4, 6):
        for inner in (4, 6):
            for kind in ("ipip", "gue"):
                src, vip = (S4, VIP4) if inner == 4 else (S6, VIP6)
                label = f"{'ipip' if kind == 'ipip' else 'gue'} v{inner}-in-v{outer}"
                n += 1
                case(f"{label}, ICMP echo", outer,
                     encap(outer, kind, inner, echo(inner, src, vip, 0x4242, n)),
                     inner, "echo", (0x4242, n), decap)
                sport = 20000 + n
                case(f"{label}, TCP SYN to :{PORT}", outer,
                     encap(outer, kind, inner, syn(inner, src, vip, sport, PORT)),
                     inner, "syn", (sport, PORT), decap)
    n += 1
    case("ipip v4-in-v4, outer IPv4 with options (IHL 6), ICMP echo", 4,
         ip4(S4, B4, 4, echo(4, S4, VIP4, 0x4242, n), options=b"\x01\x01\x01\x00"), 4, "echo",
         (0x4242, n), decap)
    # not for us: the packet reaches the kernel as it came (no answer from the VIP)
    n += 1
    case("gue v4-in-v4 to UDP port 6081 (passed untouched)", 4,
         encap(4, "gue", 4, echo(4, S4, VIP4, 0x4242, n), gue_port=6081), 4, "echo",
         (0x4242, n), False)
    n += 1
    case("gue v4-in-v4 with GUE flags set (passed untouched)", 4,
         encap(4, "gue", 4, echo(4, S4, VIP4, 0x4242, n), gue_flags=0x8000), 4, "echo",
         (0x4242, n), False)
    n += 1
    case("ipip announcing IPv6 inside, carrying IPv4 (passed untouched)", 4,
         ip4(S4, B4, 41, echo(4, S4, VIP4, 0x4242, n)), 4, "echo", (0x4242, n), False)
    # plain traffic still reaches the backend
    r = subprocess.run(["ping", "-c", "2", "-W", "1", "-i", "0.2", B4], capture_output=True)
    lines.append(f"{'ok  ' if r.returncode == 0 else 'FAIL'} plain ping to the backend's own "
                 "address passes")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
