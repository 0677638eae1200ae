//! TCP (RFC 9293) with options, UDP (RFC 768), ICMP echo and errors
//! (RFC 792 / RFC 4443), and the IP-in-IP and GUE tunnels around them.

use super::ip::*;
use super::*;
use crate::flow::{proto, Addr};

/// The TCP segment bytes with a correct checksum for `src` -> `dst`.
pub(super) fn tcp_segment(src: Addr, dst: Addr, seg: &TcpSeg) -> Vec<u8> {
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
