//! Frames the parser must refuse on purpose: IPv4 options and fragments,
//! IPv6 extension headers, stacked VLAN tags; and padding to the Ethernet
//! minimum.

use super::ip::*;
use super::transport::tcp_segment;
use super::*;
use crate::flow::{proto, Addr};

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
