//! Byte-level tests across the wire modules. Expected packets are built
//! field by field with etherparse's `PacketBuilder` (which computes every
//! checksum from scratch), never copied from rampart's own output.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::*;
use crate::flow::{proto, tcp_flags, Addr, FlowDesc, L3Kind, Mac};
use crate::stats::DropReason;
use etherparse::{
    ArpEthIpv4Packet, ArpOperation, Icmpv6Slice, PacketBuilder, SlicedPacket, TransportSlice,
    VlanId,
};
use proptest::prelude::*;

const OUR: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
const PEER: Mac = Mac([0x02, 0, 0, 0, 0, 0x02]);

fn v4(a: [u8; 4]) -> Addr {
    Addr::from_v4(a)
}

fn v6(last: u8) -> Addr {
    let mut a = [0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    a[15] = last;
    Addr::from_v6(a)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum L4 {
    Tcp,
    Udp,
}

/// A TCP (ACK|PSH) or UDP packet between the given endpoints, checksums filled in.
fn build(l4: L4, src: (Addr, u16), dst: (Addr, u16), payload: &[u8]) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(PEER.0, OUR.0);
    let ip = if src.0.is_v4() {
        eth.ipv4(src.0.v4_octets(), dst.0.v4_octets(), 64)
    } else {
        eth.ipv6(src.0.v6_octets(), dst.0.v6_octets(), 64)
    };
    let mut out = Vec::new();
    match l4 {
        L4::Tcp => ip
            .tcp(src.1, dst.1, 0x0102_0304, 1000)
            .ack(0x0a0b_0c0d)
            .psh()
            .write(&mut out, payload)
            .unwrap(),
        L4::Udp => ip.udp(src.1, dst.1).write(&mut out, payload).unwrap(),
    }
    out
}

fn tcp4() -> Vec<u8> {
    build(
        L4::Tcp,
        (v4([198, 18, 51, 7]), 40000),
        (v4([198, 18, 2, 10]), 80),
        b"hello",
    )
}

fn udp6() -> Vec<u8> {
    build(L4::Udp, (v6(7), 5353), (v6(10), 53), b"query")
}

fn vlan_tcp4(id: u16) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(PEER.0, OUR.0)
        .single_vlan(VlanId::try_new(id).unwrap())
        .ipv4([198, 18, 51, 7], [198, 18, 2, 10], 64)
        .tcp(40000, 80, 1, 1000)
        .syn()
        .write(&mut out, &[])
        .unwrap();
    out
}

fn arp_request(vlan: Option<u16>) -> Vec<u8> {
    let req = ArpEthIpv4Packet {
        operation: ArpOperation::REQUEST,
        sender_mac: PEER.0,
        sender_ipv4: [198, 18, 2, 1],
        target_mac: [0; 6],
        target_ipv4: [198, 18, 2, 10],
    };
    arp_frame(req, [0xff; 6], PEER, vlan)
}

fn arp_frame(p: ArpEthIpv4Packet, dst: [u8; 6], src: Mac, vlan: Option<u16>) -> Vec<u8> {
    let mut out = Vec::new();
    let eth = PacketBuilder::ethernet2(src.0, dst);
    match vlan {
        Some(id) => eth
            .single_vlan(VlanId::try_new(id).unwrap())
            .arp(p.into())
            .write(&mut out)
            .unwrap(),
        None => eth.arp(p.into()).write(&mut out).unwrap(),
    }
    out
}

const SOLICITED_NODE: [u8; 16] = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 10];

/// A Neighbor Solicitation from `src` for `target`, with the given options.
fn ns(src: Addr, target: Addr, hop_limit: u8, options: &[u8]) -> Vec<u8> {
    let mut payload = target.0.to_vec();
    payload.extend_from_slice(options);
    let mut out = Vec::new();
    PacketBuilder::ethernet2(PEER.0, [0x33, 0x33, 0xff, 0, 0, 10])
        .ipv6(src.0, SOLICITED_NODE, hop_limit)
        .icmpv6_raw(135, 0, [0; 4])
        .write(&mut out, &payload)
        .unwrap();
    out
}

fn slla(mac: Mac) -> [u8; 8] {
    let m = mac.0;
    [1, 1, m[0], m[1], m[2], m[3], m[4], m[5]]
}

// ---------------------------------------------------------------- parse

#[test]
fn parse_tcp4() {
    let f = tcp4();
    let d = parse(&f).unwrap();
    assert_eq!(d.l3, L3Kind::Ipv4);
    assert_eq!(d.vlan, None);
    assert_eq!((d.l3_off, d.l4_off, d.l4_len), (14, 34, 25));
    assert_eq!(d.key.src, v4([198, 18, 51, 7]));
    assert_eq!(d.key.dst, v4([198, 18, 2, 10]));
    assert_eq!(
        (d.key.sport, d.key.dport, d.key.proto),
        (40000, 80, proto::TCP)
    );
    assert_eq!(d.tcp_flags, tcp_flags::ACK | tcp_flags::PSH);
    assert_eq!(d.ttl, 64);
}

#[test]
fn parse_vlan_and_syn() {
    let f = vlan_tcp4(100);
    let d = parse(&f).unwrap();
    assert_eq!(d.vlan, Some(100));
    assert_eq!((d.l3_off, d.l4_off, d.l4_len), (18, 38, 20));
    assert!(d.has_flags(tcp_flags::SYN));
    assert!(!d.has_flags(tcp_flags::ACK));
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut f = vlan_tcp4(5);
    let before = parse(&f).unwrap();
    f.resize(f.len() + 6, 0);
    assert_eq!(parse(&f).unwrap(), before);
    let mut u = build(L4::Udp, (v4([1, 2, 3, 4]), 1), (v4([5, 6, 7, 8]), 2), b"");
    let before = parse(&u).unwrap();
    assert_eq!(before.l4_len, 8);
    u.resize(60, 0);
    assert_eq!(parse(&u).unwrap(), before);
}

#[test]
fn parse_udp6() {
    let f = udp6();
    let d = parse(&f).unwrap();
    assert_eq!(d.l3, L3Kind::Ipv6);
    assert_eq!((d.l3_off, d.l4_off, d.l4_len), (14, 54, 13));
    assert_eq!((d.key.src, d.key.dst), (v6(7), v6(10)));
    assert_eq!(
        (d.key.sport, d.key.dport, d.key.proto),
        (5353, 53, proto::UDP)
    );
    assert_eq!(d.ttl, 64);
}

#[test]
fn parse_icmp() {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(PEER.0, OUR.0)
        .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 9)
        .icmpv4_echo_request(1, 2)
        .write(&mut f, b"ping")
        .unwrap();
    let d = parse(&f).unwrap();
    assert_eq!(
        (d.key.proto, d.icmp_type, d.key.sport, d.key.dport, d.ttl),
        (1, 8, 0, 0, 9)
    );

    let mut f = Vec::new();
    PacketBuilder::ethernet2(PEER.0, OUR.0)
        .ipv6(v6(1).0, v6(2).0, 255)
        .icmpv6_echo_request(1, 2)
        .write(&mut f, b"ping")
        .unwrap();
    let d = parse(&f).unwrap();
    assert_eq!((d.key.proto, d.icmp_type, d.ttl), (proto::ICMPV6, 128, 255));

    let f = ns(v6(1), v6(10), 255, &slla(PEER));
    let d = parse(&f).unwrap();
    assert_eq!((d.icmp_type, d.l4_len), (135, 32));
}

#[test]
fn parse_arp() {
    let f = arp_request(Some(7));
    let d = parse(&f).unwrap();
    assert_eq!(d.l3, L3Kind::Arp);
    assert_eq!((d.vlan, d.l3_off, d.arp_op), (Some(7), 18, 1));
    assert_eq!(d.key.src, v4([198, 18, 2, 1]));
    assert_eq!(d.key.dst, v4([198, 18, 2, 10]));
    assert_eq!((d.key.sport, d.key.dport, d.key.proto), (0, 0, 0));
    assert_eq!(arp::arp_target(&d), v4([198, 18, 2, 10]));
}

#[test]
fn other_protocols_pass_with_zero_ports() {
    let mut f = build(L4::Udp, (v4([1, 2, 3, 4]), 1), (v4([5, 6, 7, 8]), 2), b"x");
    f[14 + 9] = 47; // GRE
    let d = parse(&f).unwrap();
    assert_eq!(
        (d.key.proto, d.key.sport, d.key.dport, d.l4_off),
        (47, 0, 0, 34)
    );
    let mut f = udp6();
    f[14 + 6] = 59; // No Next Header is not an extension header
    let d = parse(&f).unwrap();
    assert_eq!((d.key.proto, d.key.sport, d.key.dport), (59, 0, 0));
    // ICMP number inside IPv6 (and ICMPv6 inside IPv4) is just another protocol.
    f[14 + 6] = proto::ICMP;
    assert_eq!(parse(&f).unwrap().icmp_type, 0);
}

#[test]
fn refuses_ipv4_options() {
    let mut f = tcp4();
    f.splice(34..34, [1u8, 1, 1, 0]); // NOP NOP NOP EOL
    f[14] = 0x46;
    let total = u16::from_be_bytes([f[16], f[17]]) + 4;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    assert_eq!(parse(&f), Err(DropReason::Ipv4Options));
}

#[test]
fn refuses_fragments() {
    let mut f = tcp4();
    f[20] |= 0x20; // MF
    assert_eq!(parse(&f), Err(DropReason::Ipv4Fragment));
    let mut f = tcp4();
    f[20] = 0x40; // DF alone is fine
    f[21] = 0;
    assert!(parse(&f).is_ok());
    f[21] = 1; // offset 8 bytes
    assert_eq!(parse(&f), Err(DropReason::Ipv4Fragment));
    f[20] = 0x1f;
    f[21] = 0xff;
    assert_eq!(parse(&f), Err(DropReason::Ipv4Fragment));
}

#[test]
fn refuses_stacked_vlans() {
    // 802.1ad S-tag outer header.
    let mut f = vlan_tcp4(3);
    f[12..14].copy_from_slice(&[0x88, 0xa8]);
    assert_eq!(parse(&f), Err(DropReason::StackedVlan));
    // Two 802.1Q tags.
    let mut f = vlan_tcp4(3);
    f.splice(16..16, [0x81, 0x00, 0x00, 0x04]);
    assert_eq!(parse(&f), Err(DropReason::StackedVlan));
    // 0x88a8 inside an 802.1Q tag, and the legacy 0x9100.
    let mut f = vlan_tcp4(3);
    f[16..18].copy_from_slice(&[0x88, 0xa8]);
    assert_eq!(parse(&f), Err(DropReason::StackedVlan));
    let mut f = tcp4();
    f[12..14].copy_from_slice(&[0x91, 0x00]);
    assert_eq!(parse(&f), Err(DropReason::StackedVlan));
}

#[test]
fn refuses_ipv6_extension_headers() {
    for nh in [0u8, 43, 50, 51, 60, 135, 139, 140] {
        let mut f = udp6();
        f[14 + 6] = nh;
        assert_eq!(
            parse(&f),
            Err(DropReason::Ipv6ExtHeader),
            "next header {nh}"
        );
    }
    // A fragment header is a fragment, for the fragment path.
    let mut f = udp6();
    f[14 + 6] = 44;
    assert_eq!(parse(&f), Err(DropReason::Ipv6Fragment));
}

fn a(s: &str) -> Addr {
    Addr::from(s.parse::<std::net::IpAddr>().unwrap())
}

fn big_udp(src: &str, dst: &str) -> Vec<u8> {
    use crate::gen;
    let eth = gen::Eth {
        src: Mac([2, 0, 0, 0, 0, 2]),
        dst: Mac([2, 0, 0, 0, 0, 1]),
        vlan: None,
    };
    let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    gen::udp(&eth, a(src), a(dst), 64, 0x1234, 5353, 53, &payload)
}

#[test]
fn fragments_parse_into_their_place() {
    for (src, dst) in [("198.18.0.1", "198.18.0.2"), ("2001:2::1", "2001:2::2")] {
        let whole = big_udp(src, dst);
        let frags = crate::gen::fragments(&whole, 1232, 0xabcd_0123);
        assert_eq!(frags.len(), 3);
        let v4 = src.contains('.');
        for (i, f) in frags.iter().enumerate() {
            let refused = if v4 {
                DropReason::Ipv4Fragment
            } else {
                DropReason::Ipv6Fragment
            };
            assert_eq!(parse(f), Err(refused));
            let (d, fr) = parse_fragment(f).unwrap();
            assert_eq!(fr.offset as usize, i * 1232);
            assert_eq!(fr.more, i < 2);
            assert_eq!(fr.id, if v4 { 0x1234 } else { 0xabcd_0123 });
            assert_eq!(d.l4_len, fr.len);
            assert_eq!(usize::from(d.l4_off) + usize::from(d.l4_len), f.len());
            assert_eq!(d.key.proto, proto::UDP);
            let ports = if i == 0 { (5353, 53) } else { (0, 0) };
            assert_eq!((d.key.sport, d.key.dport), ports);
        }
    }
}

#[test]
fn refuses_bad_fragments() {
    let whole = big_udp("198.18.0.1", "198.18.0.2");
    let frags = crate::gen::fragments(&whole, 1480, 0);
    // A first fragment too short for the UDP header (RFC 7112).
    let tiny = crate::gen::fragments(&whole, 8, 0);
    assert!(
        parse_fragment(&tiny[0]).is_ok(),
        "8 bytes hold a UDP header"
    );
    let mut f = frags[0].clone();
    f.truncate(14 + 20 + 4);
    f[16..18].copy_from_slice(&24u16.to_be_bytes());
    assert_eq!(parse_fragment(&f), Err(DropReason::FragmentMalformed));
    // Data past 65535 bytes.
    let mut f = frags[1].clone();
    f[20..22].copy_from_slice(&(0x2000u16 | 8100).to_be_bytes());
    assert_eq!(parse_fragment(&f), Err(DropReason::FragmentMalformed));
    // A non-last fragment not a multiple of 8 bytes.
    let mut f = frags[0].clone();
    f.pop();
    let total = u16::from_be_bytes([f[16], f[17]]) - 1;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    assert_eq!(parse_fragment(&f), Err(DropReason::FragmentMalformed));
    // A fragment of ICMP is not forwarded.
    let mut f = frags[1].clone();
    f[14 + 9] = proto::ICMP;
    assert_eq!(parse_fragment(&f), Err(DropReason::Ipv4Fragment));
    // A TCP fragment at offset 8 (RFC 1858).
    let mut f = frags[1].clone();
    f[14 + 9] = proto::TCP;
    f[20..22].copy_from_slice(&(0x2000u16 | 1).to_be_bytes());
    assert_eq!(parse_fragment(&f), Err(DropReason::FragmentMalformed));
    // A first TCP fragment must hold the whole header, options included.
    let v6 = big_udp("2001:2::1", "2001:2::2");
    let mut f = crate::gen::fragments(&v6, 16, 9)[0].clone();
    f[14 + 40] = proto::TCP;
    assert_eq!(parse_fragment(&f), Err(DropReason::FragmentMalformed));
}

#[test]
fn refuses_other_ethertypes() {
    let mut f = tcp4();
    f[12..14].copy_from_slice(&[0x88, 0xcc]); // LLDP
    assert_eq!(parse(&f), Err(DropReason::UnsupportedEtherType));
    let mut f = vlan_tcp4(1);
    f[16..18].copy_from_slice(&[0x88, 0x47]); // MPLS inside a VLAN
    assert_eq!(parse(&f), Err(DropReason::UnsupportedEtherType));
}

#[test]
fn malformed_headers() {
    // total_length beyond the frame, and below the header length.
    let mut f = tcp4();
    f[16..18].copy_from_slice(&200u16.to_be_bytes());
    assert_eq!(parse(&f), Err(DropReason::Malformed));
    f[16..18].copy_from_slice(&19u16.to_be_bytes());
    assert_eq!(parse(&f), Err(DropReason::Malformed));
    // IHL below 5, and a version that is not 4.
    let mut f = tcp4();
    f[14] = 0x44;
    assert_eq!(parse(&f), Err(DropReason::Malformed));
    f[14] = 0x65;
    assert_eq!(parse(&f), Err(DropReason::Malformed));
    // TCP data offset below 5, and past the IP payload.
    let mut f = tcp4();
    f[34 + 12] = 0x40;
    assert_eq!(parse(&f), Err(DropReason::Malformed));
    f[34 + 12] = 0xf0;
    assert_eq!(parse(&f), Err(DropReason::Malformed));
    // UDP length beyond the IP payload, and below 8.
    let mut f = udp6();
    f[54 + 4..54 + 6].copy_from_slice(&100u16.to_be_bytes());
    assert_eq!(parse(&f), Err(DropReason::Malformed));
    f[54 + 4..54 + 6].copy_from_slice(&7u16.to_be_bytes());
    assert_eq!(parse(&f), Err(DropReason::Malformed));
    // IPv6 payload_length beyond the frame; IPv6 version wrong.
    let mut f = udp6();
    f[18..20].copy_from_slice(&14u16.to_be_bytes());
    assert_eq!(parse(&f), Err(DropReason::Malformed));
    let mut f = udp6();
    f[14] = 0x40;
    assert_eq!(parse(&f), Err(DropReason::Malformed));
    // ICMP shorter than its 8-byte header.
    let mut f = build(L4::Udp, (v4([1, 2, 3, 4]), 1), (v4([5, 6, 7, 8]), 2), b"");
    f[14 + 9] = proto::ICMP;
    f[16..18].copy_from_slice(&27u16.to_be_bytes());
    assert_eq!(parse(&f), Err(DropReason::Malformed));
}

#[test]
fn arp_variants() {
    let mut f = arp_request(None);
    f[14 + 1] = 6; // hardware type IEEE 802
    assert_eq!(parse(&f), Err(DropReason::ArpNotForUs));
    let mut f = arp_request(None);
    f[14 + 2..14 + 4].copy_from_slice(&[0x86, 0xdd]);
    assert_eq!(parse(&f), Err(DropReason::ArpNotForUs));
    let mut f = arp_request(None);
    f[14 + 4] = 8;
    f.resize(14 + 8 + 2 * 8 + 2 * 4, 0);
    assert_eq!(parse(&f), Err(DropReason::Malformed));
}

#[test]
fn every_truncation_is_malformed() {
    let frames = [
        tcp4(),
        udp6(),
        vlan_tcp4(9),
        arp_request(None),
        arp_request(Some(1)),
        ns(v6(1), v6(10), 255, &slla(PEER)),
    ];
    for f in &frames {
        assert!(parse(f).is_ok());
        for len in 0..f.len() {
            assert_eq!(
                parse(&f[..len]),
                Err(DropReason::Malformed),
                "len {len} of {f:02x?}"
            );
        }
    }
}

#[test]
fn mac_admission() {
    let mut f = tcp4();
    assert!(mac_accepts(&f, OUR));
    assert!(!mac_accepts(&f, PEER));
    f[..6].copy_from_slice(&[0xff; 6]);
    assert!(mac_accepts(&f, PEER));
    f[..6].copy_from_slice(&[0x33, 0x33, 0xff, 0, 0, 1]);
    assert!(mac_accepts(&f, PEER));
    f[..6].copy_from_slice(&[0x00, 0x33, 0xff, 0, 0, 1]);
    assert!(!mac_accepts(&f, PEER));
    assert!(!mac_accepts(&f[..5], OUR));
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(d) = parse(&bytes) {
            prop_assert!(usize::from(d.l4_off) + usize::from(d.l4_len) <= bytes.len());
        }
        let _ = mac_accepts(&bytes, OUR);
    }

    /// Mutating valid frames reaches far deeper than random bytes.
    #[test]
    fn mutated_frames_never_panic(which in 0usize..5, at in any::<proptest::sample::Index>(),
                                  val in any::<u8>(), cut in any::<proptest::sample::Index>()) {
        let mut f = [tcp4(), udp6(), vlan_tcp4(2), arp_request(None),
                     ns(v6(1), v6(10), 255, &slla(PEER))][which].clone();
        let i = at.index(f.len());
        f[i] = val;
        let keep = cut.index(f.len() + 1);
        let f = &f[..keep];
        if let Ok(d) = parse(f) {
            prop_assert!(d.l4_off >= d.l3_off);
            prop_assert!(usize::from(d.l4_off) + usize::from(d.l4_len) <= f.len());
            // Every transform trusts the descriptor; none may panic.
            let mut g = f.to_vec();
            rewrite(&mut g, &d, Some((v6(3), 1)), Some((v4([1, 2, 3, 4]), 2)));
            rewrite(&mut g, &d, Some((v4([9, 9, 9, 9]), 1)), None);
            set_l4_dport(&mut g, &d, 7);
            set_tcp_seq(&mut g, &d, 7);
            arp::arp_reply_in_place(&mut g, &d, OUR);
            let _ = nd::nd_target(&g, &d);
            nd::nd_advert_in_place(&mut g, &d, OUR);
        }
    }
}

// -------------------------------------------------------------- rewrite

#[test]
fn nat_rewrite_tcp4_matches_fresh_build() {
    let client = (v4([198, 18, 51, 7]), 40000);
    let vip = (v4([198, 18, 2, 10]), 80);
    let backend = (v4([198, 18, 10, 5]), 8080);
    let mut f = build(L4::Tcp, client, vip, b"hello");
    let d = parse(&f).unwrap();
    assert!(rewrite(&mut f, &d, None, Some(backend)));
    assert_eq!(f, build(L4::Tcp, client, backend, b"hello"));
    // Back again with the single-field helpers.
    assert!(set_l3_dst(&mut f, &d, vip.0));
    assert!(set_l4_dport(&mut f, &d, vip.1));
    assert_eq!(f, build(L4::Tcp, client, vip, b"hello"));
}

#[test]
fn fullnat_rewrite_udp6_matches_fresh_build() {
    let client = (v6(7), 5353);
    let vip = (v6(10), 53);
    let local = (v6(200), 61000);
    let backend = (v6(99), 5300);
    let mut f = build(L4::Udp, client, vip, b"query");
    let d = parse(&f).unwrap();
    assert!(rewrite(&mut f, &d, Some(local), Some(backend)));
    assert_eq!(f, build(L4::Udp, local, backend, b"query"));
    assert!(set_l3_src(&mut f, &d, client.0));
    assert!(set_l4_sport(&mut f, &d, client.1));
    assert!(set_l3_dst(&mut f, &d, vip.0));
    assert!(set_l4_dport(&mut f, &d, vip.1));
    assert_eq!(f, build(L4::Udp, client, vip, b"query"));
}

#[test]
fn udp4_without_checksum_stays_without() {
    let mut f = build(
        L4::Udp,
        (v4([1, 2, 3, 4]), 1000),
        (v4([5, 6, 7, 8]), 53),
        b"abc",
    );
    let d = parse(&f).unwrap();
    f[34 + 6..34 + 8].copy_from_slice(&[0, 0]);
    assert!(rewrite(&mut f, &d, Some((v4([9, 9, 9, 9]), 2000)), None));
    assert_eq!(&f[40..42], &[0, 0]);
    let mut want = build(
        L4::Udp,
        (v4([9, 9, 9, 9]), 2000),
        (v4([5, 6, 7, 8]), 53),
        b"abc",
    );
    want[40..42].copy_from_slice(&[0, 0]);
    assert_eq!(f, want);
}

#[test]
fn refused_rewrites_change_nothing() {
    let f0 = tcp4();
    let d = parse(&f0).unwrap();
    let mut f = f0.clone();
    assert!(!set_l3_dst(&mut f, &d, v6(1)), "family mismatch");
    assert!(!rewrite(
        &mut f,
        &d,
        Some((v4([1, 1, 1, 1]), 1)),
        Some((v6(1), 1))
    ));
    assert_eq!(f, f0);
    let a = arp_request(None);
    let da = parse(&a).unwrap();
    let mut b = a.clone();
    assert!(!set_l3_src(&mut b, &da, v4([1, 1, 1, 1])));
    assert!(!set_l4_sport(&mut b, &da, 1));
    assert!(!set_tcp_ack(&mut b, &da, 1));
    assert_eq!(a, b);
    // Short buffer: nothing written, no panic.
    let mut short = f0[..20].to_vec();
    assert!(!set_l3_src(&mut short, &d, v4([1, 1, 1, 1])));
    assert_eq!(short, f0[..20]);
}

#[test]
fn icmpv6_address_rewrite_keeps_checksum_valid() {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(PEER.0, OUR.0)
        .ipv6(v6(1).0, v6(2).0, 64)
        .icmpv6_echo_request(7, 8)
        .write(&mut f, b"data")
        .unwrap();
    let d = parse(&f).unwrap();
    assert!(!set_l4_dport(&mut f, &d, 1), "ICMPv6 has no ports");
    assert!(set_l3_dst(&mut f, &d, v6(3)));
    let icmp = Icmpv6Slice::from_slice(&f[54..]).unwrap();
    assert!(icmp.is_checksum_valid(v6(1).0, v6(3).0));
}

#[test]
fn seq_ack_rewrite_matches_fresh_build() {
    let src = (v4([198, 18, 51, 7]), 40000);
    let dst = (v4([198, 18, 2, 10]), 80);
    let mut f = build(L4::Tcp, src, dst, b"x");
    let d = parse(&f).unwrap();
    assert!(set_tcp_seq(&mut f, &d, 0xffff_0000));
    assert!(set_tcp_ack(&mut f, &d, 7));
    let mut want = Vec::new();
    PacketBuilder::ethernet2(PEER.0, OUR.0)
        .ipv4(src.0.v4_octets(), dst.0.v4_octets(), 64)
        .tcp(src.1, dst.1, 0xffff_0000, 1000)
        .ack(7)
        .psh()
        .write(&mut want, b"x")
        .unwrap();
    assert_eq!(f, want);
}

#[test]
fn macs() {
    let mut f = tcp4();
    set_macs(&mut f, OUR, PEER);
    assert_eq!(&f[..12], &[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
    set_macs(&mut f[..3], OUR, PEER);
}

fn addr_strategy(v6: bool) -> BoxedStrategy<Addr> {
    if v6 {
        any::<[u8; 16]>()
            .prop_filter("not v4-mapped", |a| !Addr(*a).is_v4())
            .prop_map(Addr::from_v6)
            .boxed()
    } else {
        any::<[u8; 4]>().prop_map(Addr::from_v4).boxed()
    }
}

fn endpoints() -> impl Strategy<Value = (bool, [(Addr, u16); 4])> {
    any::<bool>().prop_flat_map(|is6| {
        let ep = (addr_strategy(is6), any::<u16>());
        (Just(is6), [ep.clone(), ep.clone(), ep.clone(), ep])
    })
}

proptest! {
    /// Incremental rewrite == full recompute for v4/v6 × TCP/UDP, any subset of fields.
    #[test]
    fn rewrite_equals_rebuild(
        (_, [s, t, ns_, nd]) in endpoints(),
        tcp in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        which in 0u8..16,
        combined in any::<bool>(),
    ) {
        let l4 = if tcp { L4::Tcp } else { L4::Udp };
        let mut f = build(l4, s, t, &payload);
        let d = parse(&f).unwrap();
        let new_s = (if which & 1 != 0 { ns_.0 } else { s.0 }, if which & 2 != 0 { ns_.1 } else { s.1 });
        let new_t = (if which & 4 != 0 { nd.0 } else { t.0 }, if which & 8 != 0 { nd.1 } else { t.1 });
        if combined {
            prop_assert!(rewrite(&mut f, &d, Some(new_s), Some(new_t)));
        } else {
            if which & 1 != 0 { prop_assert!(set_l3_src(&mut f, &d, new_s.0)); }
            if which & 2 != 0 { prop_assert!(set_l4_sport(&mut f, &d, new_s.1)); }
            if which & 4 != 0 { prop_assert!(set_l3_dst(&mut f, &d, new_t.0)); }
            if which & 8 != 0 { prop_assert!(set_l4_dport(&mut f, &d, new_t.1)); }
        }
        let want = build(l4, new_s, new_t, &payload);
        // etherparse sends a computed UDP checksum of 0 as 0xffff, as do we.
        prop_assert_eq!(f, want);
    }
}

// ------------------------------------------------------------ ARP and ND

#[test]
fn arp_reply_matches_fresh_build() {
    for vlan in [None, Some(42)] {
        let mut f = arp_request(vlan);
        let d = parse(&f).unwrap();
        assert!(arp::arp_reply_in_place(&mut f, &d, OUR));
        let reply = ArpEthIpv4Packet {
            operation: ArpOperation::REPLY,
            sender_mac: OUR.0,
            sender_ipv4: [198, 18, 2, 10],
            target_mac: PEER.0,
            target_ipv4: [198, 18, 2, 1],
        };
        assert_eq!(f, arp_frame(reply, PEER.0, OUR, vlan));
        // A reply is not answered again.
        let d2 = parse(&f).unwrap();
        assert_eq!(d2.arp_op, 2);
        assert!(!arp::arp_reply_in_place(&mut f, &d2, OUR));
    }
}

#[test]
fn arp_reply_ignores_non_arp() {
    let mut f = tcp4();
    let d = parse(&f).unwrap();
    let before = f.clone();
    assert!(!arp::arp_reply_in_place(&mut f, &d, OUR));
    assert_eq!(f, before);
}

/// The advertisement etherparse builds from scratch for the same exchange.
fn na(target: Addr, to: Addr, options: &[u8]) -> Vec<u8> {
    let mut payload = target.0.to_vec();
    payload.extend_from_slice(options);
    let mut out = Vec::new();
    PacketBuilder::ethernet2(OUR.0, PEER.0)
        .ipv6(target.0, to.0, 255)
        .icmpv6_raw(136, 0, [0x60, 0, 0, 0])
        .write(&mut out, &payload)
        .unwrap();
    out
}

#[test]
fn nd_advert_with_tlla() {
    let mut f = ns(v6(1), v6(10), 255, &slla(PEER));
    let d = parse(&f).unwrap();
    assert_eq!(nd::nd_target(&f, &d), Some(v6(10)));
    assert!(nd::nd_advert_in_place(&mut f, &d, OUR));
    let mut tlla = slla(OUR);
    tlla[0] = 2;
    assert_eq!(f, na(v6(10), v6(1), &tlla));
    // etherparse agrees the checksum is right.
    let p = SlicedPacket::from_ethernet(&f).unwrap();
    match p.transport {
        Some(TransportSlice::Icmpv6(icmp)) => {
            assert!(icmp.is_checksum_valid(v6(10).0, v6(1).0));
            assert_eq!(icmp.type_u8(), 136);
        }
        other => panic!("not ICMPv6: {other:?}"),
    }
    let d2 = parse(&f).unwrap();
    assert_eq!(
        nd::nd_target(&f, &d2),
        None,
        "an advertisement has no NS target"
    );
}

#[test]
fn nd_advert_without_slla() {
    let mut f = ns(v6(1), v6(10), 255, &[]);
    let d = parse(&f).unwrap();
    assert!(nd::nd_advert_in_place(&mut f, &d, OUR));
    assert_eq!(f, na(v6(10), v6(1), &[]));
}

#[test]
fn nd_advert_drops_extra_options_into_padding() {
    let mut opts = slla(PEER).to_vec();
    opts.extend_from_slice(&[14, 1, 1, 2, 3, 4, 5, 6]); // nonce option
    let mut f = ns(v6(1), v6(10), 255, &opts);
    let d = parse(&f).unwrap();
    let len = f.len();
    assert!(nd::nd_advert_in_place(&mut f, &d, OUR));
    assert_eq!(f.len(), len);
    let mut tlla = slla(OUR);
    tlla[0] = 2;
    let want = na(v6(10), v6(1), &tlla);
    assert_eq!(&f[..want.len()], &want[..]);
    assert!(f[want.len()..].iter().all(|b| *b == 0));
    assert_eq!(parse(&f).unwrap().l4_len, 32);
}

#[test]
fn nd_refusals() {
    // DAD: from the unspecified address.
    let mut f = ns(Addr::UNSPECIFIED, v6(10), 255, &[]);
    let d = parse(&f).unwrap();
    let before = f.clone();
    assert!(!nd::nd_advert_in_place(&mut f, &d, OUR));
    assert_eq!(f, before);
    // Hop limit not 255: may have crossed a router.
    let mut f = ns(v6(1), v6(10), 64, &slla(PEER));
    let d = parse(&f).unwrap();
    assert!(!nd::nd_advert_in_place(&mut f, &d, OUR));
    // Code not 0.
    let mut f = ns(v6(1), v6(10), 255, &slla(PEER));
    f[55] = 1;
    let d = parse(&f).unwrap();
    assert!(!nd::nd_advert_in_place(&mut f, &d, OUR));
    // Zero-length option.
    let mut f = ns(v6(1), v6(10), 255, &[1, 0, 0, 0, 0, 0, 0, 0]);
    let d = parse(&f).unwrap();
    assert!(!nd::nd_advert_in_place(&mut f, &d, OUR));
    // Option running past the message.
    let mut f = ns(v6(1), v6(10), 255, &[1, 2, 0, 0, 0, 0, 0, 0]);
    let d = parse(&f).unwrap();
    assert!(!nd::nd_advert_in_place(&mut f, &d, OUR));
    // Not a solicitation at all.
    let mut f = udp6();
    let d = parse(&f).unwrap();
    assert_eq!(nd::nd_target(&f, &d), None);
    assert!(!nd::nd_advert_in_place(&mut f, &d, OUR));
}

proptest! {
    /// The transforms trust a descriptor's offsets but must not panic even
    /// when it does not describe the buffer at all.
    #[test]
    fn foreign_descriptors_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..120),
        l3 in 0u8..3, l3_off in 0u16..140, l4_off in 0u16..140, l4_len in 0u16..140,
        proto in prop_oneof![Just(proto::TCP), Just(proto::UDP), Just(proto::ICMPV6), any::<u8>()],
        icmp_type in prop_oneof![Just(135u8), any::<u8>()],
        arp_op in 0u16..3, ttl in prop_oneof![Just(255u8), any::<u8>()],
    ) {
        let mut d = FlowDesc {
            l3: [L3Kind::Arp, L3Kind::Ipv4, L3Kind::Ipv6][usize::from(l3)],
            l3_off, l4_off, l4_len, icmp_type, arp_op, ttl,
            ..FlowDesc::default()
        };
        d.key.proto = proto;
        d.key.src = v6(1);
        let mut g = bytes.clone();
        rewrite(&mut g, &d, Some((v6(3), 1)), Some((v6(4), 2)));
        rewrite(&mut g, &d, Some((v4([1, 2, 3, 4]), 1)), Some((v4([5, 6, 7, 8]), 2)));
        set_l3_src(&mut g, &d, v4([1, 1, 1, 1]));
        set_l4_sport(&mut g, &d, 9);
        set_tcp_ack(&mut g, &d, 9);
        set_macs(&mut g, OUR, PEER);
        arp::arp_reply_in_place(&mut g, &d, OUR);
        let _ = nd::nd_target(&g, &d);
        nd::nd_advert_in_place(&mut g, &d, OUR);
        prop_assert_eq!(g.len(), bytes.len());
    }
}
