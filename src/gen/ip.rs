//! Ethernet and IP headers (802.1Q, RFC 791, RFC 8200) and the RFC 1071
//! sums every builder sets.

use super::*;
use crate::flow::{proto, Addr};

/// One's-complement sum of big-endian 16-bit words; an odd tail byte is
/// padded with zero.
pub(super) fn sum16(mut acc: u32, data: &[u8]) -> u32 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

pub(super) fn fold(mut acc: u32) -> u16 {
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
pub(super) fn set_l4_checksum(src: Addr, dst: Addr, proto: u8, l4: &mut [u8], at: usize) {
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

pub(super) fn push_eth(out: &mut Vec<u8>, eth: &Eth, ethertype: u16) {
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
pub(super) struct V4 {
    pub(super) ttl: u8,
    pub(super) tos: u8,
    pub(super) id: u16,
    pub(super) proto: u8,
    /// Flags + fragment offset word (DF = 0x4000, MF = 0x2000).
    pub(super) frag: u16,
    pub(super) options: Vec<u8>,
}

pub(super) fn push_ipv4(out: &mut Vec<u8>, src: Addr, dst: Addr, h: &V4, payload_len: usize) {
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
pub(super) struct V6 {
    pub(super) hop_limit: u8,
    pub(super) traffic_class: u8,
    pub(super) flow_label: u32,
    pub(super) next: u8,
}

pub(super) fn push_ipv6(out: &mut Vec<u8>, src: Addr, dst: Addr, h: &V6, payload_len: usize) {
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

pub(super) fn same_family(src: Addr, dst: Addr) {
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
pub(super) fn ip_frame(
    eth: &Eth,
    src: Addr,
    dst: Addr,
    ttl: u8,
    ip_id: u16,
    proto: u8,
    l4: &[u8],
) -> Vec<u8> {
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
