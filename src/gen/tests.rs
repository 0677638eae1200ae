//! Every builder checked against etherparse and the RFC layouts, and the
//! checksums against a recomputation.

use super::ip::{fold, sum16};
use super::*;
use crate::flow::{proto, tcp_flags, Addr};
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
