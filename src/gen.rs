//! Packet builder for `rampart gen`, `rampart bench`'s captures, the golden
//! fixtures (rampart-testkit) and tests.
//!
//! Golden tests state the packet they expect field by field, so this builder
//! is deliberately independent of the datapath: it writes every header by
//! hand from the RFC layouts (Ethernet + 802.1Q, IPv4 RFC 791, IPv6 RFC 8200,
//! TCP RFC 9293, UDP RFC 768, ICMP RFC 792 / RFC 4443, ARP RFC 826,
//! Neighbor Discovery RFC 4861) and computes its own RFC 1071 checksums. It
//! shares no code with `wire`, so a bug there cannot hide in both.
//!
//! Conventions: the address family of a packet is the family of its
//! addresses ([`Addr::is_v4`]); IPv4 packets carry DF and no options unless a
//! builder says otherwise; `ttl` is the hop limit for IPv6; frames are not
//! padded to the 60-byte Ethernet minimum (see [`pad_to_min`]).
//!
//! This is test tooling, not datapath code: it panics (`assert!` with a
//! message) on nonsense input such as mixed address families or more than 40
//! bytes of TCP options. Every valid input builds without panicking.

use crate::flow::{proto, Addr, Mac};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// TTL / hop limit of the builders that take none.
pub const DEFAULT_TTL: u8 = 64;

/// Neighbor Advertisement flag bits (RFC 4861 §4.4), as the first 32-bit word
/// after the checksum.
pub mod nd_flags {
    pub const ROUTER: u32 = 0x8000_0000;
    pub const SOLICITED: u32 = 0x4000_0000;
    pub const OVERRIDE: u32 = 0x2000_0000;
}

/// The Ethernet header of a frame; `vlan` adds one 802.1Q tag (PCP 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Eth {
    pub src: Mac,
    pub dst: Mac,
    pub vlan: Option<u16>,
}

/// A TCP segment. `flags` are [`crate::flow::tcp_flags`] bits; `options` are
/// raw TCP options (see [`tcp_opts`]) and are padded with End-of-Option-List
/// bytes to a multiple of four here if the caller did not.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TcpSeg {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub options: Vec<u8>,
    pub payload: Vec<u8>,
}

// ---- checksums (RFC 1071) -------------------------------------------------

/// One's-complement sum of big-endian 16-bit words; an odd tail byte is
/// padded with zero.
fn sum16(mut acc: u32, data: &[u8]) -> u32 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The TCP/UDP/ICMPv6 pseudo-header sum (RFC 9293 §3.1, RFC 8200 §8.1).
fn pseudo_sum(src: Addr, dst: Addr, proto: u8, len: usize) -> u32 {
    if src.is_v4() {
        let acc = sum16(0, &src.v4_octets());
        let acc = sum16(acc, &dst.v4_octets());
        acc + u32::from(proto) + len as u32
    } else {
        let acc = sum16(0, &src.v6_octets());
        let acc = sum16(acc, &dst.v6_octets());
        acc + u32::from(proto) + (len as u32 >> 16) + (len as u32 & 0xffff)
    }
}

/// Fill in the checksum at `at` of a transport segment `l4`.
fn set_l4_checksum(src: Addr, dst: Addr, proto: u8, l4: &mut [u8], at: usize) {
    l4[at] = 0;
    l4[at + 1] = 0;
    let mut c = fold(sum16(pseudo_sum(src, dst, proto, l4.len()), l4));
    if proto == proto::UDP && c == 0 {
        // RFC 768: a computed zero is sent as all ones; zero means "none".
        c = 0xffff;
    }
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

// ---- layer 2 / layer 3 ----------------------------------------------------

fn push_eth(out: &mut Vec<u8>, eth: &Eth, ethertype: u16) {
    out.extend_from_slice(&eth.dst.0);
    out.extend_from_slice(&eth.src.0);
    if let Some(vid) = eth.vlan {
        assert!(vid < 4096, "VLAN ID {vid} does not fit 12 bits");
        out.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        out.extend_from_slice(&vid.to_be_bytes());
    }
    out.extend_from_slice(&ethertype.to_be_bytes());
}

/// IPv4 header fields a builder may vary.
struct V4 {
    ttl: u8,
    tos: u8,
    id: u16,
    proto: u8,
    /// Flags + fragment offset word (DF = 0x4000, MF = 0x2000).
    frag: u16,
    options: Vec<u8>,
}

fn push_ipv4(out: &mut Vec<u8>, src: Addr, dst: Addr, h: &V4, payload_len: usize) {
    assert!(
        h.options.len() & 3 == 0 && h.options.len() <= 40,
        "IPv4 options must be 4-byte aligned, at most 40 bytes"
    );
    let start = out.len();
    let hlen = 20 + h.options.len();
    let total = hlen + payload_len;
    assert!(total <= 0xffff, "IPv4 packet of {total} bytes is too long");
    out.push(0x40 | (hlen / 4) as u8);
    out.push(h.tos);
    out.extend_from_slice(&(total as u16).to_be_bytes());
    out.extend_from_slice(&h.id.to_be_bytes());
    out.extend_from_slice(&h.frag.to_be_bytes());
    out.push(h.ttl);
    out.push(h.proto);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&src.v4_octets());
    out.extend_from_slice(&dst.v4_octets());
    out.extend_from_slice(&h.options);
    let c = fold(sum16(0, &out[start..]));
    out[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
}

/// IPv6 header fields besides the addresses and lengths.
struct V6 {
    hop_limit: u8,
    traffic_class: u8,
    flow_label: u32,
    next: u8,
}

fn push_ipv6(out: &mut Vec<u8>, src: Addr, dst: Addr, h: &V6, payload_len: usize) {
    assert!(
        payload_len <= 0xffff,
        "IPv6 payload of {payload_len} bytes needs a jumbogram"
    );
    assert!(
        h.flow_label <= 0xf_ffff,
        "flow label {:#x} does not fit 20 bits",
        h.flow_label
    );
    let first = 6u32 << 28 | u32::from(h.traffic_class) << 20 | h.flow_label;
    out.extend_from_slice(&first.to_be_bytes());
    out.extend_from_slice(&(payload_len as u16).to_be_bytes());
    out.push(h.next);
    out.push(h.hop_limit);
    out.extend_from_slice(&src.v6_octets());
    out.extend_from_slice(&dst.v6_octets());
}

fn same_family(src: Addr, dst: Addr) {
    assert!(
        src.is_v4() == dst.is_v4(),
        "source {src} and destination {dst} are of different address families"
    );
}

/// The IP header fields a caller may set besides the addresses: TTL / hop
/// limit, TOS / traffic class, and for IPv4 the ID and DF (no options, not
/// a fragment), for IPv6 the flow label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpHdr {
    pub ttl: u8,
    pub tos: u8,
    pub id: u16,
    pub df: bool,
    pub flow_label: u32,
}

impl IpHdr {
    /// TTL `ttl`, IPv4 ID `id` and DF set; TOS and flow label 0: what the
    /// builders that take only a TTL and an ID write.
    pub fn new(ttl: u8, id: u16) -> IpHdr {
        IpHdr {
            ttl,
            tos: 0,
            id,
            df: true,
            flow_label: 0,
        }
    }
}

/// An Ethernet frame carrying `payload` as IP protocol `proto` over IPv4
/// or IPv6, with the header fields of `h`. The payload is taken as it is:
/// its checksums are the caller's.
pub fn ip(eth: &Eth, src: Addr, dst: Addr, h: &IpHdr, proto: u8, payload: &[u8]) -> Vec<u8> {
    same_family(src, dst);
    let mut out = Vec::with_capacity(18 + 40 + payload.len());
    if src.is_v4() {
        push_eth(&mut out, eth, ETHERTYPE_IPV4);
        let v4 = V4 {
            ttl: h.ttl,
            tos: h.tos,
            id: h.id,
            proto,
            frag: if h.df { 0x4000 } else { 0 },
            options: Vec::new(),
        };
        push_ipv4(&mut out, src, dst, &v4, payload.len());
    } else {
        push_eth(&mut out, eth, ETHERTYPE_IPV6);
        let v6 = V6 {
            hop_limit: h.ttl,
            traffic_class: h.tos,
            flow_label: h.flow_label,
            next: proto,
        };
        push_ipv6(&mut out, src, dst, &v6, payload.len());
    }
    out.extend_from_slice(payload);
    out
}

/// Wrap a finished transport segment in Ethernet + IP (DF set for IPv4).
fn ip_frame(eth: &Eth, src: Addr, dst: Addr, ttl: u8, ip_id: u16, proto: u8, l4: &[u8]) -> Vec<u8> {
    ip(eth, src, dst, &IpHdr::new(ttl, ip_id), proto, l4)
}

/// The IP packet a frame carries: everything after the Ethernet header and
/// its 802.1Q tag, if it has one.
pub fn l3_packet(frame: &[u8]) -> &[u8] {
    assert!(frame.len() >= 14, "a frame has at least an Ethernet header");
    let tagged = frame[12..14] == ETHERTYPE_VLAN.to_be_bytes();
    let l2 = if tagged { 18 } else { 14 };
    assert!(frame.len() >= l2, "a tagged frame has its 4-byte tag");
    &frame[l2..]
}

// ---- transport ------------------------------------------------------------

/// The TCP segment bytes with a correct checksum for `src` -> `dst`.
fn tcp_segment(src: Addr, dst: Addr, seg: &TcpSeg) -> Vec<u8> {
    let opt_len = seg.options.len().div_ceil(4) * 4;
    assert!(
        opt_len <= 40,
        "TCP options are at most 40 bytes, got {}",
        seg.options.len()
    );
    let hlen = 20 + opt_len;
    let mut l4 = Vec::with_capacity(hlen + seg.payload.len());
    l4.extend_from_slice(&seg.sport.to_be_bytes());
    l4.extend_from_slice(&seg.dport.to_be_bytes());
    l4.extend_from_slice(&seg.seq.to_be_bytes());
    l4.extend_from_slice(&seg.ack.to_be_bytes());
    l4.push(((hlen / 4) as u8) << 4);
    l4.push(seg.flags);
    l4.extend_from_slice(&seg.window.to_be_bytes());
    l4.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    l4.extend_from_slice(&seg.options);
    l4.resize(hlen, 0); // End-of-Option-List padding
    l4.extend_from_slice(&seg.payload);
    set_l4_checksum(src, dst, proto::TCP, &mut l4, 16);
    l4
}

/// An Ethernet frame carrying one TCP segment over IPv4 (DF set) or IPv6.
pub fn tcp(eth: &Eth, src: Addr, dst: Addr, ttl: u8, ip_id: u16, seg: &TcpSeg) -> Vec<u8> {
    same_family(src, dst);
    let l4 = tcp_segment(src, dst, seg);
    ip_frame(eth, src, dst, ttl, ip_id, proto::TCP, &l4)
}

/// [`tcp`] with every IP header field of `h`.
pub fn tcp_with(eth: &Eth, src: Addr, dst: Addr, h: &IpHdr, seg: &TcpSeg) -> Vec<u8> {
    same_family(src, dst);
    let l4 = tcp_segment(src, dst, seg);
    ip(eth, src, dst, h, proto::TCP, &l4)
}

/// An Ethernet frame carrying one UDP datagram over IPv4 (DF set) or IPv6.
#[allow(clippy::too_many_arguments)]
pub fn udp(
    eth: &Eth,
    src: Addr,
    dst: Addr,
    ttl: u8,
    ip_id: u16,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    same_family(src, dst);
    let len = 8 + payload.len();
    assert!(len <= 0xffff, "UDP datagram of {len} bytes is too long");
    let mut l4 = Vec::with_capacity(len);
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&dport.to_be_bytes());
    l4.extend_from_slice(&(len as u16).to_be_bytes());
    l4.extend_from_slice(&[0, 0]);
    l4.extend_from_slice(payload);
    set_l4_checksum(src, dst, proto::UDP, &mut l4, 6);
    ip_frame(eth, src, dst, ttl, ip_id, proto::UDP, &l4)
}

/// TCP options the way Linux lays out a SYN: MSS, SACK-permitted +
/// timestamps, window scale, NOP-padded so the length is a multiple of 4.
pub fn tcp_opts(
    mss: Option<u16>,
    wscale: Option<u8>,
    sack_perm: bool,
    ts: Option<(u32, u32)>,
) -> Vec<u8> {
    let mut o = Vec::with_capacity(20);
    if let Some(mss) = mss {
        o.extend_from_slice(&[2, 4]);
        o.extend_from_slice(&mss.to_be_bytes());
    }
    match (sack_perm, ts) {
        (true, Some(_)) => o.extend_from_slice(&[4, 2]),
        (true, None) => o.extend_from_slice(&[1, 1, 4, 2]),
        (false, Some(_)) => o.extend_from_slice(&[1, 1]),
        (false, None) => {}
    }
    if let Some((val, ecr)) = ts {
        o.extend_from_slice(&[8, 10]);
        o.extend_from_slice(&val.to_be_bytes());
        o.extend_from_slice(&ecr.to_be_bytes());
    }
    if let Some(shift) = wscale {
        o.extend_from_slice(&[1, 3, 3, shift]);
    }
    o
}

// ---- ICMP -----------------------------------------------------------------

fn icmp_echo(eth: &Eth, src: Addr, dst: Addr, id: u16, seq: u16, reply: bool) -> Vec<u8> {
    same_family(src, dst);
    let (kind, proto) = match (src.is_v4(), reply) {
        (true, false) => (8, proto::ICMP),
        (true, true) => (0, proto::ICMP),
        (false, false) => (128, proto::ICMPV6),
        (false, true) => (129, proto::ICMPV6),
    };
    let mut l4 = vec![kind, 0, 0, 0];
    l4.extend_from_slice(&id.to_be_bytes());
    l4.extend_from_slice(&seq.to_be_bytes());
    l4.extend_from_slice(ECHO_PAYLOAD);
    if src.is_v4() {
        // ICMPv4 has no pseudo-header (RFC 792).
        let c = fold(sum16(0, &l4));
        l4[2..4].copy_from_slice(&c.to_be_bytes());
    } else {
        set_l4_checksum(src, dst, proto, &mut l4, 2);
    }
    ip_frame(eth, src, dst, DEFAULT_TTL, 0, proto, &l4)
}

/// The payload every echo built here carries.
pub const ECHO_PAYLOAD: &[u8] = b"rampart-echo";

/// ICMP / ICMPv6 echo request (TTL 64, IP ID 0, payload [`ECHO_PAYLOAD`]).
pub fn icmp_echo_request(eth: &Eth, src: Addr, dst: Addr, id: u16, seq: u16) -> Vec<u8> {
    icmp_echo(eth, src, dst, id, seq, false)
}

/// ICMP / ICMPv6 echo reply, otherwise like [`icmp_echo_request`].
pub fn icmp_echo_reply(eth: &Eth, src: Addr, dst: Addr, id: u16, seq: u16) -> Vec<u8> {
    icmp_echo(eth, src, dst, id, seq, true)
}

/// An ICMP (over IPv4) or ICMPv6 (over IPv6) message: `kind` and `code`,
/// the checksum, the 4-byte rest of the header `rest` (echo identifier and
/// sequence number, an error's unused word, pointer or MTU), then `body`.
/// The checksum is summed in full, over the ICMPv6 pseudo-header too.
#[allow(clippy::too_many_arguments)]
pub fn icmp(
    eth: &Eth,
    src: Addr,
    dst: Addr,
    h: &IpHdr,
    kind: u8,
    code: u8,
    rest: [u8; 4],
    body: &[u8],
) -> Vec<u8> {
    same_family(src, dst);
    let mut l4 = vec![kind, code, 0, 0];
    l4.extend_from_slice(&rest);
    l4.extend_from_slice(body);
    let proto = if src.is_v4() {
        // ICMPv4 has no pseudo-header (RFC 792).
        let c = fold(sum16(0, &l4));
        l4[2..4].copy_from_slice(&c.to_be_bytes());
        proto::ICMP
    } else {
        set_l4_checksum(src, dst, proto::ICMPV6, &mut l4, 2);
        proto::ICMPV6
    };
    ip(eth, src, dst, h, proto, &l4)
}

// ---- tunnels --------------------------------------------------------------

/// The outer headers of a tunnelled packet. `gue` is `None` for IP in IP
/// (RFC 2003 / RFC 2473: protocol 4 or 41 after the inner packet's
/// version), or the UDP source and destination ports of a GUE variant 0
/// header with no options (draft-ietf-intarea-gue) whose protocol field
/// names the inner packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outer {
    pub src: Addr,
    pub dst: Addr,
    pub ip: IpHdr,
    pub gue: Option<(u16, u16)>,
}

/// `eth`, then the outer headers of `outer`, then `inner` (a whole IP
/// packet, see [`l3_packet`]) unchanged. The GUE UDP checksum is zero
/// (none) over IPv4 and summed over IPv6, where it is mandatory.
pub fn tunnel(eth: &Eth, outer: &Outer, inner: &[u8]) -> Vec<u8> {
    let inner_proto = match inner.first().map(|b| b >> 4) {
        Some(4) => 4,
        Some(6) => 41,
        v => panic!("the inner packet is not IP (version {v:?})"),
    };
    let Some((sport, dport)) = outer.gue else {
        return ip(eth, outer.src, outer.dst, &outer.ip, inner_proto, inner);
    };
    let len = 8 + 4 + inner.len();
    assert!(len <= 0xffff, "GUE datagram of {len} bytes is too long");
    let mut l4 = Vec::with_capacity(len);
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&dport.to_be_bytes());
    l4.extend_from_slice(&(len as u16).to_be_bytes());
    l4.extend_from_slice(&[0, 0]);
    // Version 0, C 0, no options; the inner protocol; no flags.
    l4.extend_from_slice(&[0, inner_proto, 0, 0]);
    l4.extend_from_slice(inner);
    if !outer.src.is_v4() {
        set_l4_checksum(outer.src, outer.dst, proto::UDP, &mut l4, 6);
    }
    ip(eth, outer.src, outer.dst, &outer.ip, proto::UDP, &l4)
}

// ---- ARP and Neighbor Discovery -------------------------------------------

fn arp(op: u16, src_mac: Mac, dst_mac: Mac, tha: Mac, sender_ip: Addr, target_ip: Addr) -> Vec<u8> {
    assert!(
        sender_ip.is_v4() && target_ip.is_v4(),
        "ARP carries IPv4 addresses only"
    );
    let mut out = Vec::with_capacity(42);
    push_eth(
        &mut out,
        &Eth {
            src: src_mac,
            dst: dst_mac,
            vlan: None,
        },
        ETHERTYPE_ARP,
    );
    out.extend_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
    out.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    out.extend_from_slice(&[6, 4]);
    out.extend_from_slice(&op.to_be_bytes());
    out.extend_from_slice(&src_mac.0);
    out.extend_from_slice(&sender_ip.v4_octets());
    out.extend_from_slice(&tha.0);
    out.extend_from_slice(&target_ip.v4_octets());
    out
}

/// Broadcast ARP request "who has `target_ip`? tell `sender_ip`" (42 bytes,
/// target hardware address zero).
pub fn arp_request(src_mac: Mac, sender_ip: Addr, target_ip: Addr) -> Vec<u8> {
    arp(
        1,
        src_mac,
        Mac::BROADCAST,
        Mac([0; 6]),
        sender_ip,
        target_ip,
    )
}

/// ARP reply "`sender_ip` is at `src_mac`", unicast to `dst_mac`, which is
/// also the target hardware address.
pub fn arp_reply(src_mac: Mac, dst_mac: Mac, sender_ip: Addr, target_ip: Addr) -> Vec<u8> {
    arp(2, src_mac, dst_mac, dst_mac, sender_ip, target_ip)
}

/// The solicited-node multicast address of `target` (RFC 4291 §2.7.1).
pub fn solicited_node(target: Addr) -> Addr {
    let t = target.v6_octets();
    let mut a = [0u8; 16];
    a[0] = 0xff;
    a[1] = 0x02;
    a[11] = 0x01;
    a[12] = 0xff;
    a[13..].copy_from_slice(&t[13..]);
    Addr::from_v6(a)
}

/// The Ethernet multicast MAC an IPv6 multicast address maps to (RFC 2464 §7).
pub fn multicast_mac(group: Addr) -> Mac {
    let g = group.v6_octets();
    Mac([0x33, 0x33, g[12], g[13], g[14], g[15]])
}

fn nd_frame(src_mac: Mac, dst_mac: Mac, src_ip: Addr, dst_ip: Addr, icmp: &mut [u8]) -> Vec<u8> {
    set_l4_checksum(src_ip, dst_ip, proto::ICMPV6, icmp, 2);
    // RFC 4861 §7.1.1: ND messages are sent, and accepted, with hop limit 255.
    let eth = Eth {
        src: src_mac,
        dst: dst_mac,
        vlan: None,
    };
    ip_frame(&eth, src_ip, dst_ip, 255, 0, proto::ICMPV6, icmp)
}

/// Neighbor Solicitation for `target`, sent to its solicited-node group.
/// Carries a Source Link-Layer Address option unless `src_ip` is the
/// unspecified address (duplicate address detection, RFC 4861 §4.3).
pub fn neighbor_solicitation(src_mac: Mac, src_ip: Addr, target: Addr) -> Vec<u8> {
    assert!(
        !src_ip.is_v4() && !target.is_v4(),
        "Neighbor Discovery is IPv6 only"
    );
    let group = solicited_node(target);
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&target.v6_octets());
    if src_ip != Addr::UNSPECIFIED {
        icmp.extend_from_slice(&[1, 1]);
        icmp.extend_from_slice(&src_mac.0);
    }
    nd_frame(src_mac, multicast_mac(group), src_ip, group, &mut icmp)
}

/// Neighbor Advertisement for `target`; `flags` are [`nd_flags`] bits and
/// `tlla` an optional Target Link-Layer Address option.
pub fn neighbor_advertisement(
    src_mac: Mac,
    dst_mac: Mac,
    src_ip: Addr,
    dst_ip: Addr,
    target: Addr,
    flags: u32,
    tlla: Option<Mac>,
) -> Vec<u8> {
    assert!(
        !src_ip.is_v4() && !dst_ip.is_v4() && !target.is_v4(),
        "Neighbor Discovery is IPv6 only"
    );
    let mut icmp = vec![136, 0, 0, 0];
    icmp.extend_from_slice(&(flags & 0xe000_0000).to_be_bytes());
    icmp.extend_from_slice(&target.v6_octets());
    if let Some(mac) = tlla {
        icmp.extend_from_slice(&[2, 1]);
        icmp.extend_from_slice(&mac.0);
    }
    nd_frame(src_mac, dst_mac, src_ip, dst_ip, &mut icmp)
}

// ---- frames the parser must refuse ----------------------------------------

/// IPv4 TCP with IP header options (TTL 64). `options` are raw bytes, padded
/// with End-of-Options to a multiple of 4 (at most 40). Refused: rampart
/// does not rewrite packets with IPv4 options.
pub fn ipv4_with_options(
    eth: &Eth,
    src: Addr,
    dst: Addr,
    ip_id: u16,
    options: &[u8],
    seg: &TcpSeg,
) -> Vec<u8> {
    assert!(
        src.is_v4() && dst.is_v4(),
        "IPv4 options need IPv4 addresses"
    );
    let l4 = tcp_segment(src, dst, seg);
    let mut opts = options.to_vec();
    opts.resize(options.len().div_ceil(4) * 4, 0);
    let mut out = Vec::new();
    push_eth(&mut out, eth, ETHERTYPE_IPV4);
    let h = V4 {
        ttl: DEFAULT_TTL,
        tos: 0,
        id: ip_id,
        proto: proto::TCP,
        frag: 0x4000,
        options: opts,
    };
    push_ipv4(&mut out, src, dst, &h, l4.len());
    out.extend_from_slice(&l4);
    out
}

/// One IPv4 fragment (TTL 64, DF clear): `offset` in 8-byte units, `more` the
/// MF bit, `payload` the raw bytes after the IP header.
#[allow(clippy::too_many_arguments)]
pub fn ipv4_fragment(
    eth: &Eth,
    src: Addr,
    dst: Addr,
    ip_id: u16,
    proto: u8,
    offset: u16,
    more: bool,
    payload: &[u8],
) -> Vec<u8> {
    assert!(
        src.is_v4() && dst.is_v4(),
        "an IPv4 fragment needs IPv4 addresses"
    );
    assert!(
        offset < 0x2000,
        "fragment offset {offset} does not fit 13 bits"
    );
    let frag = offset | if more { 0x2000 } else { 0 };
    let mut out = Vec::new();
    push_eth(&mut out, eth, ETHERTYPE_IPV4);
    let h = V4 {
        ttl: DEFAULT_TTL,
        tos: 0,
        id: ip_id,
        proto,
        frag,
        options: Vec::new(),
    };
    push_ipv4(&mut out, src, dst, &h, payload.len());
    out.extend_from_slice(payload);
    out
}

/// IPv6 with a Fragment extension header (hop limit 64): `ident` the
/// fragment identification, `offset` in 8-byte units, `more` the M bit,
/// `next` the upper-layer protocol, `payload` the bytes after the fragment
/// header.
#[allow(clippy::too_many_arguments)]
pub fn ipv6_with_fragment_header(
    eth: &Eth,
    src: Addr,
    dst: Addr,
    ident: u32,
    next: u8,
    offset: u16,
    more: bool,
    payload: &[u8],
) -> Vec<u8> {
    assert!(
        !src.is_v4() && !dst.is_v4(),
        "an IPv6 fragment header needs IPv6 addresses"
    );
    assert!(
        offset < 0x2000,
        "fragment offset {offset} does not fit 13 bits"
    );
    let mut out = Vec::new();
    push_eth(&mut out, eth, ETHERTYPE_IPV6);
    let h = V6 {
        hop_limit: DEFAULT_TTL,
        traffic_class: 0,
        flow_label: 0,
        next: 44,
    };
    push_ipv6(&mut out, src, dst, &h, 8 + payload.len());
    out.push(next);
    out.push(0);
    out.extend_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
    out.extend_from_slice(&ident.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Splits a whole IP packet's frame (no IPv4 options, no IPv6 extension
/// headers) into fragments of at most `chunk` data bytes each (a multiple
/// of 8), in order, as a sender fragments it (RFC 791 §3.2, RFC 8200 §4.5):
/// every fragment keeps the frame's L2 header and the IP header's fields;
/// IPv4 fragments get their offset, MF (DF cleared) and a new header
/// checksum, IPv6 ones a fragment header with identification `ident` (IPv4
/// keeps the packet's own ID).
pub fn fragments(frame: &[u8], chunk: usize, ident: u32) -> Vec<Vec<u8>> {
    assert!(
        chunk >= 8 && chunk % 8 == 0,
        "fragment data is a multiple of 8 bytes"
    );
    let ip = l3_packet(frame);
    let l2 = &frame[..frame.len() - ip.len()];
    let v4 = ip[0] >> 4 == 4;
    let (hlen, end) = if v4 {
        assert_eq!(ip[0] & 0x0f, 5, "IPv4 options are not fragmented here");
        (20, usize::from(u16::from_be_bytes([ip[2], ip[3]])))
    } else {
        (40, 40 + usize::from(u16::from_be_bytes([ip[4], ip[5]])))
    };
    let data = &ip[hlen..end];
    let mut out = Vec::new();
    for (i, piece) in data.chunks(chunk).enumerate() {
        let offset = i * chunk;
        let more = offset + piece.len() < data.len();
        let mut f = l2.to_vec();
        let start = f.len();
        f.extend_from_slice(&ip[..hlen]);
        if v4 {
            let total = (20 + piece.len()) as u16;
            f[start + 2..start + 4].copy_from_slice(&total.to_be_bytes());
            let word = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
            f[start + 6..start + 8].copy_from_slice(&word.to_be_bytes());
            f[start + 10..start + 12].copy_from_slice(&[0, 0]);
            let c = fold(sum16(0, &f[start..start + 20]));
            f[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
        } else {
            let plen = (8 + piece.len()) as u16;
            f[start + 4..start + 6].copy_from_slice(&plen.to_be_bytes());
            let next = f[start + 6];
            f[start + 6] = 44;
            f.push(next);
            f.push(0);
            f.extend_from_slice(&((offset as u16) | u16::from(more)).to_be_bytes());
            f.extend_from_slice(&ident.to_be_bytes());
        }
        f.extend_from_slice(piece);
        out.push(f);
    }
    out
}

/// Insert a VLAN tag (`tpid`, `vid`) right after the MAC addresses of an
/// existing frame, outside any tag it already has.
pub fn push_vlan(frame: &[u8], tpid: u16, vid: u16) -> Vec<u8> {
    assert!(frame.len() >= 14, "a frame has at least an Ethernet header");
    assert!(vid < 4096, "VLAN ID {vid} does not fit 12 bits");
    let mut out = Vec::with_capacity(frame.len() + 4);
    out.extend_from_slice(&frame[..12]);
    out.extend_from_slice(&tpid.to_be_bytes());
    out.extend_from_slice(&vid.to_be_bytes());
    out.extend_from_slice(&frame[12..]);
    out
}

/// A QinQ frame: an 802.1ad outer tag `outer_vlan` around the 802.1Q tag
/// `eth.vlan` (VLAN 0 when `None`) around a TCP segment (TTL 64, IP ID 0).
/// Refused: rampart handles at most one VLAN tag.
pub fn stacked_vlan(eth: &Eth, outer_vlan: u16, src: Addr, dst: Addr, seg: &TcpSeg) -> Vec<u8> {
    let inner = Eth {
        vlan: Some(eth.vlan.unwrap_or(0)),
        ..*eth
    };
    push_vlan(
        &tcp(&inner, src, dst, DEFAULT_TTL, 0, seg),
        ETHERTYPE_QINQ,
        outer_vlan,
    )
}

/// Pad a frame with zeros to the 60-byte Ethernet minimum (without FCS), as
/// a NIC does on transmit.
pub fn pad_to_min(frame: &mut Vec<u8>) {
    if frame.len() < 60 {
        frame.resize(60, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::tcp_flags;
    use etherparse::{
        ArpOperation, LinkSlice, NetSlice, SlicedPacket, TcpOptionElement, TransportSlice,
    };

    const A: Mac = Mac([2, 0, 0, 0, 0, 1]);
    const B: Mac = Mac([2, 0, 0, 0, 0, 2]);

    fn v4(d: u8) -> Addr {
        Addr::from_v4([198, 18, 0, d])
    }

    fn v6(d: u8) -> Addr {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[0x20, 0x01, 0x00, 0x02]);
        a[13] = 0x42;
        a[15] = d;
        Addr::from_v6(a)
    }

    fn eth(vlan: Option<u16>) -> Eth {
        Eth {
            src: A,
            dst: B,
            vlan,
        }
    }

    fn seg() -> TcpSeg {
        TcpSeg {
            sport: 40000,
            dport: 80,
            seq: 0x0102_0304,
            ack: 0xa0b0_c0d0,
            flags: tcp_flags::SYN | tcp_flags::ACK,
            window: 29200,
            options: tcp_opts(Some(1460), Some(7), true, Some((11, 22))),
            payload: b"hello".to_vec(),
        }
    }

    fn macs(p: &SlicedPacket) -> (Mac, Mac) {
        let Some(LinkSlice::Ethernet2(e)) = &p.link else {
            panic!("no Ethernet")
        };
        (Mac(e.source()), Mac(e.destination()))
    }

    /// Source and destination as parsed, checking the IPv4 header checksum
    /// on the way.
    fn ip_addrs(p: &SlicedPacket) -> (Addr, Addr) {
        match &p.net {
            Some(NetSlice::Ipv4(ip)) => {
                let h = ip.header();
                assert_eq!(
                    h.header_checksum(),
                    h.to_header().calc_header_checksum(),
                    "IPv4 checksum"
                );
                (Addr::from_v4(h.source()), Addr::from_v4(h.destination()))
            }
            Some(NetSlice::Ipv6(ip)) => {
                let h = ip.header();
                (Addr::from_v6(h.source()), Addr::from_v6(h.destination()))
            }
            _ => panic!("no IP layer"),
        }
    }

    #[test]
    fn tcp_v4_and_v6_parse_with_valid_checksums() {
        for (src, dst, vlan) in [
            (v4(1), v4(2), None),
            (v4(1), v4(2), Some(100)),
            (v6(1), v6(2), None),
            (v6(1), v6(2), Some(4095)),
        ] {
            let f = tcp(&eth(vlan), src, dst, 61, 0x1234, &seg());
            let p = SlicedPacket::from_ethernet(&f).unwrap();
            assert_eq!(macs(&p), (A, B));
            assert_eq!(p.vlan_ids().first().map(|v| v.value()), vlan);
            assert_eq!(ip_addrs(&p), (src, dst));
            match &p.net {
                Some(NetSlice::Ipv4(ip)) => {
                    let h = ip.header();
                    assert_eq!(
                        (h.ttl(), h.identification(), h.dont_fragment(), h.ihl()),
                        (61, 0x1234, true, 5)
                    );
                    assert_eq!(
                        usize::from(h.total_len()),
                        f.len() - 14 - vlan.map_or(0, |_| 4)
                    );
                }
                Some(NetSlice::Ipv6(ip)) => assert_eq!(ip.header().hop_limit(), 61),
                _ => unreachable!(),
            }
            let Some(TransportSlice::Tcp(t)) = &p.transport else {
                panic!("no TCP")
            };
            assert_eq!((t.source_port(), t.destination_port()), (40000, 80));
            assert_eq!(
                (t.sequence_number(), t.acknowledgment_number()),
                (0x0102_0304, 0xa0b0_c0d0)
            );
            assert!(t.syn() && t.ack() && !t.fin() && !t.rst() && !t.psh());
            assert_eq!(t.window_size(), 29200);
            assert_eq!(t.payload(), b"hello");
            let expect = if src.is_v4() {
                t.calc_checksum_ipv4(src.v4_octets(), dst.v4_octets())
                    .unwrap()
            } else {
                t.calc_checksum_ipv6(src.v6_octets(), dst.v6_octets())
                    .unwrap()
            };
            assert_eq!(t.checksum(), expect, "TCP checksum");
            let opts: Vec<TcpOptionElement> = t.options_iterator().map(|o| o.unwrap()).collect();
            assert!(opts.contains(&TcpOptionElement::MaximumSegmentSize(1460)));
            assert!(opts.contains(&TcpOptionElement::WindowScale(7)));
            assert!(opts.contains(&TcpOptionElement::SelectiveAcknowledgementPermitted));
            assert!(opts.contains(&TcpOptionElement::Timestamp(11, 22)));
        }
    }

    #[test]
    fn tcp_options_are_padded() {
        let mut s = seg();
        s.options = vec![2, 4, 5, 0xb4, 1, 1, 4]; // 7 bytes: padded to 8
        let f = tcp(&eth(None), v4(1), v4(2), 64, 0, &s);
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(TransportSlice::Tcp(t)) = &p.transport else {
            panic!("no TCP")
        };
        assert_eq!(t.data_offset(), 7);
        assert_eq!(t.options(), &[2, 4, 5, 0xb4, 1, 1, 4, 0]);
        for (mss, ws, sack, ts) in [
            (None, None, false, None),
            (Some(536), None, false, None),
            (None, Some(0), false, None),
            (None, None, true, None),
            (None, None, false, Some((1, 2))),
            (Some(9000), Some(14), true, Some((u32::MAX, 0))),
        ] {
            assert_eq!(tcp_opts(mss, ws, sack, ts).len() % 4, 0);
        }
        assert!(tcp_opts(Some(1460), Some(7), true, Some((1, 2))).len() == 20);
    }

    #[test]
    fn udp_parses_with_valid_checksum() {
        for (src, dst) in [(v4(3), v4(4)), (v6(3), v6(4))] {
            let f = udp(&eth(None), src, dst, 64, 7, 5353, 53, b"query");
            let p = SlicedPacket::from_ethernet(&f).unwrap();
            assert_eq!(ip_addrs(&p), (src, dst));
            let Some(TransportSlice::Udp(u)) = &p.transport else {
                panic!("no UDP")
            };
            assert_eq!(
                (u.source_port(), u.destination_port(), u.length()),
                (5353, 53, 13)
            );
            assert_eq!(u.payload(), b"query");
            let h = u.to_header();
            let expect = if src.is_v4() {
                h.calc_checksum_ipv4_raw(src.v4_octets(), dst.v4_octets(), u.payload())
                    .unwrap()
            } else {
                h.calc_checksum_ipv6_raw(src.v6_octets(), dst.v6_octets(), u.payload())
                    .unwrap()
            };
            assert_eq!(u.checksum(), expect, "UDP checksum");
        }
    }

    #[test]
    fn icmp_echo_parses_with_valid_checksum() {
        for (src, dst) in [(v4(5), v4(6)), (v6(5), v6(6))] {
            for reply in [false, true] {
                let f = if reply {
                    icmp_echo_reply(&eth(None), src, dst, 0x4242, 9)
                } else {
                    icmp_echo_request(&eth(None), src, dst, 0x4242, 9)
                };
                let p = SlicedPacket::from_ethernet(&f).unwrap();
                assert_eq!(ip_addrs(&p), (src, dst));
                match &p.transport {
                    Some(TransportSlice::Icmpv4(i)) => {
                        assert_eq!(i.type_u8(), if reply { 0 } else { 8 });
                        assert_eq!(i.bytes5to8(), [0x42, 0x42, 0, 9]);
                        assert_eq!(i.payload(), ECHO_PAYLOAD);
                        assert_eq!(
                            i.checksum(),
                            i.icmp_type().calc_checksum(i.payload()),
                            "ICMP checksum"
                        );
                    }
                    Some(TransportSlice::Icmpv6(i)) => {
                        assert_eq!(i.type_u8(), if reply { 129 } else { 128 });
                        assert_eq!(i.bytes5to8(), [0x42, 0x42, 0, 9]);
                        assert_eq!(i.payload(), ECHO_PAYLOAD);
                        assert!(
                            i.is_checksum_valid(src.v6_octets(), dst.v6_octets()),
                            "ICMPv6 checksum"
                        );
                    }
                    _ => panic!("no ICMP"),
                }
            }
        }
    }

    #[test]
    fn arp_request_and_reply() {
        let f = arp_request(A, v4(1), v4(2));
        assert_eq!(f.len(), 42);
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        assert_eq!(macs(&p), (A, Mac::BROADCAST));
        let Some(NetSlice::Arp(a)) = &p.net else {
            panic!("no ARP")
        };
        assert_eq!(a.operation(), ArpOperation::REQUEST);
        assert_eq!(a.sender_hw_addr(), &A.0);
        assert_eq!(a.sender_protocol_addr(), &[198, 18, 0, 1]);
        assert_eq!(a.target_hw_addr(), &[0; 6]);
        assert_eq!(a.target_protocol_addr(), &[198, 18, 0, 2]);

        let f = arp_reply(B, A, v4(2), v4(1));
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        assert_eq!(macs(&p), (B, A));
        let Some(NetSlice::Arp(a)) = &p.net else {
            panic!("no ARP")
        };
        assert_eq!(a.operation(), ArpOperation::REPLY);
        assert_eq!(a.sender_hw_addr(), &B.0);
        assert_eq!(a.sender_protocol_addr(), &[198, 18, 0, 2]);
        assert_eq!(a.target_hw_addr(), &A.0);
        assert_eq!(a.target_protocol_addr(), &[198, 18, 0, 1]);

        let mut f = arp_reply(B, A, v4(2), v4(1));
        pad_to_min(&mut f);
        assert_eq!(f.len(), 60);
    }

    #[test]
    fn neighbor_solicitation_layout() {
        let target = v6(0x99);
        let f = neighbor_solicitation(A, v6(1), target);
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let group = solicited_node(target);
        assert_eq!(group.to_string(), "ff02::1:ff42:99");
        assert_eq!(macs(&p), (A, Mac([0x33, 0x33, 0xff, 0x42, 0, 0x99])));
        assert_eq!(ip_addrs(&p), (v6(1), group));
        let Some(NetSlice::Ipv6(ip)) = &p.net else {
            panic!("no IPv6")
        };
        assert_eq!(ip.header().hop_limit(), 255);
        let Some(TransportSlice::Icmpv6(i)) = &p.transport else {
            panic!("no ICMPv6")
        };
        assert_eq!((i.type_u8(), i.code_u8()), (135, 0));
        assert!(
            i.is_checksum_valid(v6(1).v6_octets(), group.v6_octets()),
            "ICMPv6 checksum"
        );
        // Reserved word, then the target, then the SLLA option.
        assert_eq!(i.bytes5to8(), [0; 4]);
        assert_eq!(&i.payload()[..16], &target.v6_octets());
        assert_eq!(&i.payload()[16..], &[1, 1, 2, 0, 0, 0, 0, 1]);

        // Duplicate address detection: unspecified source, no option.
        let f = neighbor_solicitation(A, Addr::UNSPECIFIED, target);
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(TransportSlice::Icmpv6(i)) = &p.transport else {
            panic!("no ICMPv6")
        };
        assert_eq!(i.payload().len(), 16);
        assert!(i.is_checksum_valid([0; 16], group.v6_octets()));
    }

    #[test]
    fn neighbor_advertisement_layout() {
        let flags = nd_flags::SOLICITED | nd_flags::OVERRIDE;
        for tlla in [Some(B), None] {
            let f = neighbor_advertisement(B, A, v6(2), v6(1), v6(2), flags, tlla);
            let p = SlicedPacket::from_ethernet(&f).unwrap();
            assert_eq!(macs(&p), (B, A));
            assert_eq!(ip_addrs(&p), (v6(2), v6(1)));
            let Some(NetSlice::Ipv6(ip)) = &p.net else {
                panic!("no IPv6")
            };
            assert_eq!(ip.header().hop_limit(), 255);
            let Some(TransportSlice::Icmpv6(i)) = &p.transport else {
                panic!("no ICMPv6")
            };
            assert_eq!(i.type_u8(), 136);
            assert_eq!(i.bytes5to8(), [0x60, 0, 0, 0]);
            assert!(
                i.is_checksum_valid(v6(2).v6_octets(), v6(1).v6_octets()),
                "ICMPv6 checksum"
            );
            assert_eq!(&i.payload()[..16], &v6(2).v6_octets());
            match tlla {
                Some(m) => assert_eq!(
                    &i.payload()[16..],
                    &[2, 1, m.0[0], m.0[1], m.0[2], m.0[3], m.0[4], m.0[5]]
                ),
                None => assert_eq!(i.payload().len(), 16),
            }
        }
    }

    #[test]
    fn ip_header_fields_are_what_the_caller_set() {
        let h = IpHdr {
            ttl: 9,
            tos: 0xb8,
            id: 0xbeef,
            df: false,
            flow_label: 0xa_bcde,
        };
        let f = tcp_with(&eth(None), v4(1), v4(2), &h, &seg());
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        ip_addrs(&p);
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!("no IPv4")
        };
        let i = ip.header();
        assert_eq!((i.ttl(), i.identification()), (9, 0xbeef));
        assert_eq!((i.dcp().value(), i.ecn().value()), (0x2e, 0));
        assert!(!i.dont_fragment() && !i.more_fragments());

        let f = tcp_with(&eth(None), v6(1), v6(2), &h, &seg());
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv6(ip)) = &p.net else {
            panic!("no IPv6")
        };
        let i = ip.header();
        assert_eq!(
            (i.hop_limit(), i.traffic_class(), i.flow_label().value()),
            (9, 0xb8, 0xa_bcde)
        );
        let Some(TransportSlice::Tcp(t)) = &p.transport else {
            panic!("no TCP")
        };
        assert_eq!(
            t.checksum(),
            t.calc_checksum_ipv6(v6(1).v6_octets(), v6(2).v6_octets())
                .unwrap()
        );
    }

    #[test]
    fn icmp_errors_quote_and_sum_in_full() {
        let quoted = tcp(&eth(None), v4(2), v4(1), 60, 7, &seg());
        let quote = l3_packet(&quoted);
        let f = icmp(
            &eth(None),
            v4(3),
            v4(2),
            &IpHdr::new(64, 0),
            3,
            4,
            [0, 0, 0x05, 0xdc],
            &quote[..28],
        );
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        ip_addrs(&p);
        let Some(TransportSlice::Icmpv4(i)) = &p.transport else {
            panic!("no ICMP")
        };
        assert_eq!((i.type_u8(), i.code_u8()), (3, 4));
        assert_eq!(i.bytes5to8(), [0, 0, 0x05, 0xdc]);
        assert_eq!(i.payload(), &quote[..28]);
        assert_eq!(i.checksum(), i.icmp_type().calc_checksum(i.payload()));

        let quoted = tcp(&eth(None), v6(2), v6(1), 60, 0, &seg());
        let f = icmp(
            &eth(Some(7)),
            v6(3),
            v6(2),
            &IpHdr::new(64, 0),
            2,
            0,
            1280u32.to_be_bytes(),
            l3_packet(&quoted),
        );
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(TransportSlice::Icmpv6(i)) = &p.transport else {
            panic!("no ICMPv6")
        };
        assert_eq!(i.type_u8(), 2);
        assert_eq!(i.payload(), l3_packet(&quoted));
        assert!(i.is_checksum_valid(v6(3).v6_octets(), v6(2).v6_octets()));
    }

    #[test]
    fn tunnels_wrap_the_inner_packet_unchanged() {
        for (inner_src, inner_dst) in [(v4(1), v4(2)), (v6(1), v6(2))] {
            let inner = tcp(&eth(Some(5)), inner_src, inner_dst, 61, 3, &seg());
            let inner_ip = l3_packet(&inner);
            for (outer_src, outer_dst) in [(v4(8), v4(9)), (v6(8), v6(9))] {
                for gue in [None, Some((49_153, 6080))] {
                    let o = Outer {
                        src: outer_src,
                        dst: outer_dst,
                        ip: IpHdr::new(64, 0),
                        gue,
                    };
                    let f = tunnel(&eth(Some(5)), &o, inner_ip);
                    let ip_len = if outer_src.is_v4() { 20 } else { 40 };
                    let outer_len = ip_len + gue.map_or(0, |_| 12);
                    assert_eq!(l3_packet(&f).len(), outer_len + inner_ip.len());
                    assert_eq!(&f[f.len() - inner_ip.len()..], inner_ip);
                    let p = SlicedPacket::from_ethernet(&f).unwrap();
                    assert_eq!(ip_addrs(&p), (outer_src, outer_dst));
                    let want = if inner_src.is_v4() { 4 } else { 41 };
                    match gue {
                        None => {
                            let Some(net) = &p.net else { panic!("no IP") };
                            let n = match net {
                                NetSlice::Ipv4(i) => i.header().protocol().0,
                                NetSlice::Ipv6(i) => i.header().next_header().0,
                                _ => unreachable!(),
                            };
                            assert_eq!(n, want);
                        }
                        Some((sport, dport)) => {
                            let Some(TransportSlice::Udp(u)) = &p.transport else {
                                panic!("no UDP")
                            };
                            assert_eq!((u.source_port(), u.destination_port()), (sport, dport));
                            assert_eq!(&u.payload()[..4], &[0, want, 0, 0]);
                            assert_eq!(&u.payload()[4..], inner_ip);
                            if outer_src.is_v4() {
                                assert_eq!(u.checksum(), 0, "no UDP checksum over IPv4");
                            } else {
                                let h = u.to_header();
                                assert_eq!(
                                    u.checksum(),
                                    h.calc_checksum_ipv6_raw(
                                        outer_src.v6_octets(),
                                        outer_dst.v6_octets(),
                                        u.payload()
                                    )
                                    .unwrap()
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn refusal_builders_carry_what_they_say() {
        let f = ipv4_with_options(&eth(None), v4(1), v4(2), 9, &[0x94, 0x04, 0, 0], &seg());
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!("no IPv4")
        };
        assert_eq!(ip.header().ihl(), 6);
        assert_eq!(ip.header().options(), &[0x94, 0x04, 0, 0]);
        ip_addrs(&p);
        let Some(TransportSlice::Tcp(t)) = &p.transport else {
            panic!("no TCP")
        };
        assert_eq!(
            t.checksum(),
            t.calc_checksum_ipv4(v4(1).v4_octets(), v4(2).v4_octets())
                .unwrap()
        );

        let f = ipv4_fragment(
            &eth(None),
            v4(1),
            v4(2),
            77,
            proto::UDP,
            0,
            true,
            &[0u8; 24],
        );
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        ip_addrs(&p);
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!("no IPv4")
        };
        let h = ip.header();
        assert!(h.more_fragments() && !h.dont_fragment() && h.is_fragmenting_payload());
        let f = ipv4_fragment(
            &eth(None),
            v4(1),
            v4(2),
            77,
            proto::UDP,
            3,
            false,
            &[0u8; 8],
        );
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!("no IPv4")
        };
        assert_eq!(ip.header().fragments_offset().value(), 3);
        assert!(ip.is_payload_fragmented());

        let f = ipv6_with_fragment_header(
            &eth(None),
            v6(1),
            v6(2),
            0xdead_beef,
            proto::UDP,
            0,
            true,
            &[0u8; 16],
        );
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv6(ip)) = &p.net else {
            panic!("no IPv6")
        };
        assert_eq!(ip.header().next_header().0, 44);
        assert!(ip.is_payload_fragmented());
        assert_eq!(ip.payload().ip_number.0, proto::UDP);

        let f = stacked_vlan(&eth(Some(20)), 10, v4(1), v4(2), &seg());
        assert_eq!(&f[12..20], &[0x88, 0xa8, 0, 10, 0x81, 0x00, 0, 20]);
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let ids: Vec<u16> = p.vlan_ids().iter().map(|v| v.value()).collect();
        assert_eq!(ids, vec![10, 20]);
        let Some(TransportSlice::Tcp(_)) = &p.transport else {
            panic!("no TCP under the tags")
        };
    }

    /// RFC 1071's worked example (§3): the sum of these words is ddf2.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum16(0, &data)), !0xddf2);
        assert_eq!(fold(sum16(0, &[0xff])), !0xff00);
    }

    #[test]
    #[should_panic(expected = "different address families")]
    fn mixed_families_panic_with_a_message() {
        tcp(&eth(None), v4(1), v6(2), 64, 0, &seg());
    }
}
