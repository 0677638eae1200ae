//! Frame classification: the one place rampart validates packet bytes.
//!
//! [`parse`] walks Ethernet II, at most one 802.1Q tag, then ARP, IPv4 or
//! IPv6 and the transport header, using etherparse's header slices (each a
//! length check plus field reads, no copying), and fills a [`FlowDesc`]
//! whose offsets every later stage may trust. What rampart refuses on
//! purpose gets its own [`DropReason`] (STYLE 5):
//!
//! * 0x88a8 / 0x9100 outer tags, or a second 0x8100 tag: `StackedVlan`;
//! * IPv4 options: `Ipv4Options`;
//! * an IPv6 extension header straight after the fixed header other than a
//!   fragment header: `Ipv6ExtHeader`;
//! * any EtherType but IPv4, IPv6 and ARP: `UnsupportedEtherType`;
//! * ARP for anything but Ethernet/IPv4: `ArpNotForUs`;
//! * anything shorter than its headers claim: `Malformed`.
//!
//! A fragment (IPv4 with MF set or a non-zero offset, IPv6 with a fragment
//! header) is not a packet [`parse`] describes: it answers `Ipv4Fragment` /
//! `Ipv6Fragment`, and the datapath, on that answer only, takes it to
//! [`parse_fragment`] and [`crate::frag`]. So a whole packet pays nothing
//! for fragment support beyond the test it always had.
//!
//! IP protocols other than TCP, UDP, ICMP and ICMPv6 are not refused here:
//! the descriptor carries the protocol with zero ports and the datapath
//! decides. Bytes past the IP total/payload length are Ethernet padding and
//! are excluded from `l4_len`.
//!
//! Checksums are not verified: NICs verify them in hardware, and rampart's
//! incremental updates carry a wrong checksum through unchanged, so the end
//! host still drops the packet.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use etherparse::{
    ArpPacketSlice, EtherType, Ethernet2HeaderSlice, IpNumber, Ipv4HeaderSlice, Ipv6HeaderSlice,
    SingleVlanHeaderSlice, TcpHeaderSlice, UdpHeaderSlice,
};

use crate::flow::{proto, Addr, FlowDesc, FlowKey, L3Kind, Mac};
use crate::frag::Frag;
use crate::stats::DropReason;

const ETH_LEN: usize = 14;
const VLAN_LEN: usize = 4;
const IPV6_LEN: usize = 40;
/// ICMP and ICMPv6 messages start with type, code, checksum and 4 more bytes.
const ICMP_MIN_LEN: usize = 8;
const ARP_ETH_IPV4_LEN: usize = 28;
const ARP_HW_ETHERNET: u16 = 1;

/// Whether the destination MAC admits the frame: ours, broadcast or any
/// multicast group (IPv6 ND solicitations go to solicited-node multicast).
/// A frame too short to hold a destination MAC is not accepted.
#[inline]
pub fn mac_accepts(frame: &[u8], our: Mac) -> bool {
    match frame.get(..6) {
        // The I/G bit (multicast, broadcast included) is bit 0 of byte 0.
        Some(dst) => dst == our.0 || dst.first().is_some_and(|b| b & 1 == 1),
        None => false,
    }
}

/// Classifies one Ethernet frame into a [`FlowDesc`], or names why rampart
/// refuses it. Never panics, whatever the bytes.
#[inline]
pub fn parse(frame: &[u8]) -> Result<FlowDesc, DropReason> {
    let mut d = FlowDesc::default();
    parse_into(frame, &mut d)?;
    Ok(d)
}

/// [`parse`] into the caller's descriptor: the datapath keeps descriptors
/// in place (a burst's worth on the stack) instead of moving them through
/// return values. On `Err`, `d` holds no meaning.
#[inline]
pub fn parse_into(frame: &[u8], d: &mut FlowDesc) -> Result<(), DropReason> {
    if ipv4_common(frame, d) {
        return Ok(());
    }
    general(frame, d)
}

/// [`parse_into`] for every frame the fast path leaves: the one definition
/// of what rampart accepts and refuses.
#[inline]
fn general(frame: &[u8], d: &mut FlowDesc) -> Result<(), DropReason> {
    let (ethertype, l3_off, vlan) = layer2(frame)?;
    let l3 = frame.get(l3_off..).unwrap_or_default();
    match ethertype {
        EtherType::IPV4 => parse_ipv4(l3, l3_off, d)?,
        EtherType::IPV6 => parse_ipv6(l3, l3_off, d)?,
        EtherType::ARP => parse_arp(l3, l3_off, d)?,
        _ => return Err(DropReason::UnsupportedEtherType),
    }
    d.vlan = vlan;
    Ok(())
}

/// Frame offset of the IPv4 header on the fast path (no VLAN tag).
const FAST_L3: usize = ETH_LEN;
/// Frame offset of the transport header on the fast path (no IPv4 options).
const FAST_L4: usize = ETH_LEN + 20;

/// The fast path of [`parse_into`]: an untagged IPv4 packet without
/// options, not a fragment, carrying a whole TCP or UDP header, which is
/// nearly every packet a load balancer sees. Fills `d` exactly as the
/// general path would and returns true; returns false, leaving `d` to the
/// general path, for anything else, valid or not, so every refusal and
/// every rarer shape keeps a single definition. Reads fixed offsets of a
/// fixed-size prefix (the shortest TCP frame): one length check instead
/// of one per header.
#[inline(always)]
fn ipv4_common(frame: &[u8], d: &mut FlowDesc) -> bool {
    let Some(h) = frame.first_chunk::<{ FAST_L4 + 20 }>() else {
        return false;
    };
    // EtherType IPv4, version 4 with a 20-byte header, MF clear and a zero
    // fragment offset (DF and the reserved bit are not looked at, as in
    // the general path).
    if h[12..14] != [0x08, 0x00]
        || h[FAST_L3] != 0x45
        || h[FAST_L3 + 6] & 0x3f != 0
        || h[FAST_L3 + 7] != 0
    {
        return false;
    }
    let total = usize::from(u16::from_be_bytes([h[FAST_L3 + 2], h[FAST_L3 + 3]]));
    if total < 20 || total > frame.len() - FAST_L3 {
        return false;
    }
    let l4_len = total - 20;
    let proto = h[FAST_L3 + 9];
    let t = |i: usize| h.get(FAST_L4 + i).copied().unwrap_or(0);
    let tcp_flags = match proto {
        proto::TCP => {
            // The data offset: at least 5 words, all of them present.
            let words = usize::from(h[FAST_L4 + 12] >> 4);
            if words < 5 || words * 4 > l4_len {
                return false;
            }
            h[FAST_L4 + 13]
        }
        proto::UDP => {
            let len = usize::from(u16::from_be_bytes([t(4), t(5)]));
            if len < 8 || len > l4_len {
                return false;
            }
            0
        }
        _ => return false,
    };
    let src = [
        h[FAST_L3 + 12],
        h[FAST_L3 + 13],
        h[FAST_L3 + 14],
        h[FAST_L3 + 15],
    ];
    let dst = [
        h[FAST_L3 + 16],
        h[FAST_L3 + 17],
        h[FAST_L3 + 18],
        h[FAST_L3 + 19],
    ];
    *d = FlowDesc {
        l3: L3Kind::Ipv4,
        vlan: None,
        l3_off: FAST_L3 as u16,
        l4_off: FAST_L4 as u16,
        l4_len: l4_len as u16,
        ttl: h[FAST_L3 + 8],
        key: FlowKey {
            src: Addr::from_v4(src),
            dst: Addr::from_v4(dst),
            sport: u16::from_be_bytes([t(0), t(1)]),
            dport: u16::from_be_bytes([t(2), t(3)]),
            proto,
        },
        tcp_flags,
        icmp_type: 0,
        arp_op: 0,
    };
    true
}

/// The Ethernet header and at most one VLAN tag: the EtherType they name,
/// the offset of what follows and the VLAN ID.
#[inline(always)]
fn layer2(frame: &[u8]) -> Result<(EtherType, usize, Option<u16>), DropReason> {
    let eth = Ethernet2HeaderSlice::from_slice(frame).map_err(|_| DropReason::Malformed)?;
    let mut ethertype = eth.ether_type();
    let mut l3_off = ETH_LEN;
    let mut vlan = None;

    if ethertype == EtherType::VLAN_TAGGED_FRAME {
        let rest = frame.get(ETH_LEN..).unwrap_or_default();
        let tag = SingleVlanHeaderSlice::from_slice(rest).map_err(|_| DropReason::Malformed)?;
        vlan = Some(tag.vlan_identifier().value());
        ethertype = tag.ether_type();
        l3_off += VLAN_LEN;
    }
    if is_vlan_tpid(ethertype) {
        // Either an S-tag outer header or a second C-tag: QinQ.
        return Err(DropReason::StackedVlan);
    }
    Ok((ethertype, l3_off, vlan))
}

#[inline]
fn is_vlan_tpid(t: EtherType) -> bool {
    t == EtherType::VLAN_TAGGED_FRAME
        || t == EtherType::PROVIDER_BRIDGING
        || t == EtherType::VLAN_DOUBLE_TAGGED_FRAME
}

#[inline]
fn parse_ipv4(l3: &[u8], l3_off: usize, d: &mut FlowDesc) -> Result<(), DropReason> {
    let ip = Ipv4HeaderSlice::from_slice(l3).map_err(|_| DropReason::Malformed)?;
    let hlen = usize::from(ip.ihl()) * 4;
    let total = usize::from(ip.total_len());
    if total < hlen || total > l3.len() {
        return Err(DropReason::Malformed);
    }
    if hlen != 20 {
        return Err(DropReason::Ipv4Options);
    }
    if ip.more_fragments() || ip.fragments_offset().value() != 0 {
        return Err(DropReason::Ipv4Fragment);
    }
    let payload = l3.get(hlen..total).unwrap_or_default();
    *d = FlowDesc {
        l3: L3Kind::Ipv4,
        l3_off: l3_off as u16,
        l4_off: (l3_off + hlen) as u16,
        l4_len: payload.len() as u16,
        ttl: ip.ttl(),
        key: FlowKey {
            src: Addr::from_v4(ip.source()),
            dst: Addr::from_v4(ip.destination()),
            proto: ip.protocol().0,
            ..FlowKey::default()
        },
        ..FlowDesc::default()
    };
    parse_l4(payload, d)
}

#[inline]
fn parse_ipv6(l3: &[u8], l3_off: usize, d: &mut FlowDesc) -> Result<(), DropReason> {
    let ip = Ipv6HeaderSlice::from_slice(l3).map_err(|_| DropReason::Malformed)?;
    let end = IPV6_LEN + usize::from(ip.payload_length());
    let payload = l3.get(IPV6_LEN..end).ok_or(DropReason::Malformed)?;
    let next = ip.next_header();
    if next.is_ipv6_ext_header_value() {
        return Err(if next == IpNumber::IPV6_FRAGMENTATION_HEADER {
            DropReason::Ipv6Fragment
        } else {
            DropReason::Ipv6ExtHeader
        });
    }
    *d = FlowDesc {
        l3: L3Kind::Ipv6,
        l3_off: l3_off as u16,
        l4_off: (l3_off + IPV6_LEN) as u16,
        l4_len: payload.len() as u16,
        ttl: ip.hop_limit(),
        key: FlowKey {
            src: Addr::from_v6(ip.source()),
            dst: Addr::from_v6(ip.destination()),
            proto: next.0,
            ..FlowKey::default()
        },
        ..FlowDesc::default()
    };
    parse_l4(payload, d)
}

/// Fills ports, flags or ICMP type from the IP payload (padding excluded).
#[inline]
fn parse_l4(payload: &[u8], d: &mut FlowDesc) -> Result<(), DropReason> {
    match IpNumber(d.key.proto) {
        IpNumber::TCP => {
            let tcp = TcpHeaderSlice::from_slice(payload).map_err(|_| DropReason::Malformed)?;
            d.key.sport = tcp.source_port();
            d.key.dport = tcp.destination_port();
            // Byte 13 holds CWR..FIN; `tcp_flags` names the bits.
            d.tcp_flags = tcp.slice().get(13).copied().unwrap_or(0);
        }
        IpNumber::UDP => {
            let udp = UdpHeaderSlice::from_slice(payload).map_err(|_| DropReason::Malformed)?;
            let len = usize::from(udp.length());
            if len < 8 || len > payload.len() {
                return Err(DropReason::Malformed);
            }
            d.key.sport = udp.source_port();
            d.key.dport = udp.destination_port();
        }
        _ if d.key.proto == proto::ICMP && d.l3 == L3Kind::Ipv4
            || d.key.proto == proto::ICMPV6 && d.l3 == L3Kind::Ipv6 =>
        {
            // Type, code and checksum plus the 4-byte rest-of-header.
            if payload.len() < ICMP_MIN_LEN {
                return Err(DropReason::Malformed);
            }
            d.icmp_type = payload.first().copied().unwrap_or(0);
        }
        _ => {}
    }
    Ok(())
}

#[inline]
fn parse_arp(l3: &[u8], l3_off: usize, d: &mut FlowDesc) -> Result<(), DropReason> {
    let arp = ArpPacketSlice::from_slice(l3).map_err(|_| DropReason::Malformed)?;
    if arp.hw_addr_type().0 != ARP_HW_ETHERNET || arp.proto_addr_type() != EtherType::IPV4 {
        return Err(DropReason::ArpNotForUs);
    }
    if arp.hw_addr_size() != 6 || arp.proto_addr_size() != 4 {
        return Err(DropReason::Malformed);
    }
    let spa: [u8; 4] = arp
        .sender_protocol_addr()
        .try_into()
        .map_err(|_| DropReason::Malformed)?;
    let tpa: [u8; 4] = arp
        .target_protocol_addr()
        .try_into()
        .map_err(|_| DropReason::Malformed)?;
    *d = FlowDesc {
        l3: L3Kind::Arp,
        l3_off: l3_off as u16,
        // No transport: point past the ARP body with an empty length.
        l4_off: (l3_off + ARP_ETH_IPV4_LEN) as u16,
        l4_len: 0,
        arp_op: arp.operation().0,
        key: FlowKey {
            src: Addr::from_v4(spa),
            dst: Addr::from_v4(tpa),
            ..FlowKey::default()
        },
        ..FlowDesc::default()
    };
    Ok(())
}

/// Length of the IPv6 fragment header (RFC 8200 §4.5).
const FRAG_HEADER_LEN: usize = 8;
/// Largest IP datagram (IPv4 total length, IPv6 payload length).
const MAX_DATAGRAM: usize = 65535;

/// Classifies a fragment (a frame [`parse`] answered `Ipv4Fragment` or
/// `Ipv6Fragment`): its descriptor and its place in the datagram.
///
/// The descriptor is that of a whole packet except that `l4_off` is where
/// the fragment's data starts (after the IPv6 fragment header) and
/// `l4_len` is the fragment's data. A first fragment (offset 0) also has
/// its ports and TCP flags, and must hold the whole TCP or UDP header (RFC
/// 7112 asks the same of IPv6 first fragments; for IPv4 it is what RFC 1858
/// guards against); a later fragment has ports 0 and `tcp_flags` 0.
///
/// Refused: a fragment of a protocol other than TCP and UDP (`Ipv4Fragment`
/// / `Ipv6Fragment`: rampart does not forward them), data past 65535 bytes,
/// a fragment that is not the last with data not a multiple of 8 bytes, a
/// TCP fragment at offset 8, which could rewrite the flags of the first
/// (RFC 1858 §3.2) (`FragmentMalformed`).
pub fn parse_fragment(frame: &[u8]) -> Result<(FlowDesc, Frag), DropReason> {
    let (ethertype, l3_off, vlan) = layer2(frame)?;
    let l3 = frame.get(l3_off..).unwrap_or_default();
    let mut d = FlowDesc::default();
    let (frag, data, unfragmentable) = match ethertype {
        EtherType::IPV4 => {
            let ip = Ipv4HeaderSlice::from_slice(l3).map_err(|_| DropReason::Malformed)?;
            let hlen = usize::from(ip.ihl()) * 4;
            let total = usize::from(ip.total_len());
            if total < hlen || total > l3.len() {
                return Err(DropReason::Malformed);
            }
            if hlen != 20 {
                return Err(DropReason::Ipv4Options);
            }
            d = FlowDesc {
                l3: L3Kind::Ipv4,
                l3_off: l3_off as u16,
                l4_off: (l3_off + hlen) as u16,
                l4_len: (total - hlen) as u16,
                ttl: ip.ttl(),
                key: FlowKey {
                    src: Addr::from_v4(ip.source()),
                    dst: Addr::from_v4(ip.destination()),
                    proto: ip.protocol().0,
                    ..FlowKey::default()
                },
                ..d
            };
            let frag = Frag {
                id: u32::from(ip.identification()),
                offset: ip.fragments_offset().value() * 8,
                len: (total - hlen) as u16,
                more: ip.more_fragments(),
            };
            (frag, l3.get(hlen..total).unwrap_or_default(), hlen)
        }
        EtherType::IPV6 => {
            let ip = Ipv6HeaderSlice::from_slice(l3).map_err(|_| DropReason::Malformed)?;
            let end = IPV6_LEN + usize::from(ip.payload_length());
            let payload = l3.get(IPV6_LEN..end).ok_or(DropReason::Malformed)?;
            if ip.next_header() != IpNumber::IPV6_FRAGMENTATION_HEADER {
                return Err(DropReason::Ipv6ExtHeader);
            }
            let (fh, data) = payload
                .split_first_chunk::<FRAG_HEADER_LEN>()
                .ok_or(DropReason::Malformed)?;
            let [next, _, off_hi, off_lo, id @ ..] = *fh;
            let off = u16::from_be_bytes([off_hi, off_lo]);
            d = FlowDesc {
                l3: L3Kind::Ipv6,
                l3_off: l3_off as u16,
                l4_off: (l3_off + IPV6_LEN + FRAG_HEADER_LEN) as u16,
                l4_len: data.len() as u16,
                ttl: ip.hop_limit(),
                key: FlowKey {
                    src: Addr::from_v6(ip.source()),
                    dst: Addr::from_v6(ip.destination()),
                    proto: next,
                    ..FlowKey::default()
                },
                ..d
            };
            let frag = Frag {
                id: u32::from_be_bytes(id),
                offset: off & !7,
                len: data.len() as u16,
                more: off & 1 == 1,
            };
            (frag, data, FRAG_HEADER_LEN)
        }
        _ => return Err(DropReason::UnsupportedEtherType),
    };
    d.vlan = vlan;
    if d.key.proto != proto::TCP && d.key.proto != proto::UDP {
        return Err(if d.is_v4() {
            DropReason::Ipv4Fragment
        } else {
            DropReason::Ipv6Fragment
        });
    }
    let end = usize::from(frag.offset) + usize::from(frag.len);
    // IPv4 counts its header in the 65535, IPv6 its fragment header (the
    // unfragmentable part rampart accepts is that header alone).
    if end + unfragmentable > MAX_DATAGRAM
        || frag.more && (frag.len % 8 != 0 || frag.len == 0)
        || d.is_tcp() && frag.offset == 8
    {
        return Err(DropReason::FragmentMalformed);
    }
    if frag.offset == 0 {
        first_l4(data, frag.more, &mut d)?;
    }
    Ok((d, frag))
}

/// Ports and flags of a first fragment, whose TCP or UDP header must be
/// whole; a UDP length beyond this fragment is the datagram's.
fn first_l4(data: &[u8], more: bool, d: &mut FlowDesc) -> Result<(), DropReason> {
    if d.is_tcp() {
        let tcp = TcpHeaderSlice::from_slice(data).map_err(|_| DropReason::FragmentMalformed)?;
        d.key.sport = tcp.source_port();
        d.key.dport = tcp.destination_port();
        d.tcp_flags = tcp.slice().get(13).copied().unwrap_or(0);
    } else {
        let udp = UdpHeaderSlice::from_slice(data).map_err(|_| DropReason::FragmentMalformed)?;
        let len = usize::from(udp.length());
        // An atomic fragment (no more to come) is a whole datagram.
        if len < 8 || !more && len > data.len() {
            return Err(DropReason::FragmentMalformed);
        }
        d.key.sport = udp.source_port();
        d.key.dport = udp.destination_port();
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod fast_path_tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn frames() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for payload in [0usize, 1, 6, 40, 300] {
            let data = vec![0xabu8; payload];
            let mut f = Vec::new();
            PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
                .ipv4([198, 18, 50, 1], [198, 18, 100, 10], 64)
                .tcp(40000, 80, 7, 1024)
                .ack(9)
                .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
                .unwrap()
                .write(&mut f, &data)
                .unwrap();
            out.push(f);
            let mut f = Vec::new();
            PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
                .ipv4([198, 18, 50, 2], [198, 18, 100, 10], 3)
                .tcp(1, 443, 0, 0)
                .syn()
                .write(&mut f, &data)
                .unwrap();
            out.push(f);
            let mut f = Vec::new();
            PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
                .ipv4([198, 18, 50, 3], [198, 18, 100, 20], 1)
                .udp(5353, 53)
                .write(&mut f, &data)
                .unwrap();
            out.push(f);
        }
        out
    }

    /// The fast path takes every well-formed untagged IPv4 TCP or UDP frame
    /// (at least the shortest TCP frame long) and describes it exactly as
    /// the general path does; for thousands of frames with corrupted
    /// header bytes, cut short or padded, whatever it takes it describes
    /// as the general path does too.
    #[test]
    fn fast_path_agrees_with_the_general_path() {
        let mut taken = 0;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for base in frames() {
            if base.len() >= FAST_L4 + 20 {
                let mut d = FlowDesc::default();
                assert!(ipv4_common(&base, &mut d), "fast path refused {base:02x?}");
            }
            for _ in 0..5000 {
                let mut f = base.clone();
                match rnd() % 4 {
                    0 => f.truncate((rnd() as usize) % (f.len() + 1)),
                    1 => f.extend(std::iter::repeat_n(0, (rnd() % 20) as usize)),
                    _ => {
                        for _ in 0..1 + rnd() % 3 {
                            let at = (rnd() as usize) % f.len().min(FAST_L4 + 20);
                            f[at] = rnd() as u8;
                        }
                    }
                }
                let mut fast = FlowDesc::default();
                if ipv4_common(&f, &mut fast) {
                    taken += 1;
                    let mut slow = FlowDesc::default();
                    assert_eq!(general(&f, &mut slow), Ok(()), "{f:02x?}");
                    assert_eq!(fast, slow, "{f:02x?}");
                }
            }
        }
        assert!(taken > 10_000, "the fast path took only {taken} frames");
    }
}
