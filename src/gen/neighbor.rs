//! ARP (RFC 826) and IPv6 Neighbor Discovery (RFC 4861).

use super::ip::*;
use super::*;
use crate::flow::{proto, Addr, Mac};

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
