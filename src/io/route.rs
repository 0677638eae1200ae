//! Which port a frame leaves by, when the runtime has several: the subnets
//! behind each `[[port]]`, matched longest prefix first against the frame's
//! destination (IPv4 / IPv6 destination address, or the target address of an
//! ARP packet). A frame whose destination is behind no listed subnet leaves
//! by the port it came in on (frames rampart originates: by the first port).
//!
//! Pure Rust and allocation-free per lookup, so it is tested without DPDK.
//! The lookup reads only a few fixed offsets of the Ethernet, 802.1Q and IP
//! headers; the datapath already validated whatever it forwards.

use std::net::IpAddr;

use crate::config::{prefix_mask_v4, prefix_mask_v6, Subnet};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;

/// Longest-prefix-match table from destination to port index.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// (network, mask, port), longest prefix first.
    v4: Vec<(u32, u32, usize)>,
    v6: Vec<(u128, u128, usize)>,
}

impl Routes {
    /// The table for ports whose subnets are `ports[i]`.
    pub fn new<'a>(ports: impl IntoIterator<Item = &'a [Subnet]>) -> Routes {
        let mut v4: Vec<(u8, u32, u32, usize)> = Vec::new();
        let mut v6: Vec<(u8, u128, u128, usize)> = Vec::new();
        for (port, subnets) in ports.into_iter().enumerate() {
            for s in subnets {
                match s.addr {
                    IpAddr::V4(a) => {
                        let m = prefix_mask_v4(s.prefix_len);
                        v4.push((s.prefix_len, u32::from(a) & m, m, port));
                    }
                    IpAddr::V6(a) => {
                        let m = prefix_mask_v6(s.prefix_len);
                        v6.push((s.prefix_len, u128::from(a) & m, m, port));
                    }
                }
            }
        }
        // Longest prefix first; ties keep config order (stable sort).
        v4.sort_by_key(|r| std::cmp::Reverse(r.0));
        v6.sort_by_key(|r| std::cmp::Reverse(r.0));
        Routes {
            v4: v4.into_iter().map(|(_, n, m, p)| (n, m, p)).collect(),
            v6: v6.into_iter().map(|(_, n, m, p)| (n, m, p)).collect(),
        }
    }

    /// No subnet at all: every frame goes back the way it came.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// The port behind which `ip` lies.
    pub fn lookup(&self, ip: IpAddr) -> Option<usize> {
        match ip {
            IpAddr::V4(a) => self.lookup_v4(u32::from(a)),
            IpAddr::V6(a) => self.lookup_v6(u128::from(a)),
        }
    }

    #[inline]
    fn lookup_v4(&self, a: u32) -> Option<usize> {
        self.v4
            .iter()
            .find(|(net, mask, _)| a & mask == *net)
            .map(|r| r.2)
    }

    #[inline]
    fn lookup_v6(&self, a: u128) -> Option<usize> {
        self.v6
            .iter()
            .find(|(net, mask, _)| a & mask == *net)
            .map(|r| r.2)
    }

    /// The port for a whole frame: by its destination (see [`destination`]).
    #[inline]
    pub fn lookup_frame(&self, frame: &[u8]) -> Option<usize> {
        if self.is_empty() {
            return None;
        }
        match destination(frame)? {
            Dest::V4(a) => self.lookup_v4(a),
            Dest::V6(a) => self.lookup_v6(a),
        }
    }
}

/// A frame's destination, as routing sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    V4(u32),
    V6(u128),
}

/// The destination address of an Ethernet frame: IPv4 / IPv6 destination,
/// or an ARP packet's target protocol address; one or two VLAN tags are
/// skipped. `None` for anything else or a frame too short to hold it.
pub fn destination(frame: &[u8]) -> Option<Dest> {
    let mut off = 12;
    let mut ethertype = be16(frame, off)?;
    for _ in 0..2 {
        if ethertype != ETHERTYPE_VLAN && ethertype != ETHERTYPE_QINQ {
            break;
        }
        off += 4;
        ethertype = be16(frame, off)?;
    }
    let l3 = off + 2;
    match ethertype {
        ETHERTYPE_IPV4 => be32(frame, l3 + 16).map(Dest::V4),
        // ARP for IPv4 over Ethernet: the target protocol address follows
        // htype, ptype, hlen, plen, oper (8 bytes), sha (6), spa (4), tha (6).
        ETHERTYPE_ARP => be32(frame, l3 + 24).map(Dest::V4),
        ETHERTYPE_IPV6 => {
            let b = frame.get(l3 + 24..l3 + 40)?;
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Some(Dest::V6(u128::from_be_bytes(a)))
        }
        _ => None,
    }
}

#[inline]
fn be16(f: &[u8], at: usize) -> Option<u16> {
    let b = f.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

#[inline]
fn be32(f: &[u8], at: usize) -> Option<u32> {
    let b = f.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{Addr, Mac};
    use crate::gen;

    fn subnet(s: &str) -> Subnet {
        let (a, l) = s.split_once('/').unwrap();
        Subnet {
            addr: a.parse().unwrap(),
            prefix_len: l.parse().unwrap(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn table() -> Routes {
        let clients = [subnet("198.18.0.0/15"), subnet("2001:2::/48")];
        let backends = [subnet("198.18.1.0/24"), subnet("2001:2:0:1::/64")];
        let default = [subnet("0.0.0.0/0")];
        Routes::new([&clients[..], &backends[..], &default[..]])
    }

    #[test]
    fn longest_prefix_wins_whatever_the_order() {
        let r = table();
        assert_eq!(r.lookup(ip("198.18.1.11")), Some(1));
        assert_eq!(r.lookup(ip("198.18.7.1")), Some(0));
        assert_eq!(r.lookup(ip("198.19.255.255")), Some(0));
        assert_eq!(r.lookup(ip("203.0.113.9")), Some(2));
        assert_eq!(r.lookup(ip("2001:2:0:1::b")), Some(1));
        assert_eq!(r.lookup(ip("2001:2:0:2::1")), Some(0));
        assert_eq!(r.lookup(ip("2001:db8::1")), None, "no IPv6 default route");
    }

    #[test]
    fn empty_table_matches_nothing() {
        let r = Routes::new(std::iter::empty::<&[Subnet]>());
        assert!(r.is_empty());
        assert_eq!(r.lookup(ip("198.18.1.1")), None);
        assert_eq!(r.lookup_frame(&[0u8; 60]), None);
    }

    #[test]
    fn frames_route_by_destination() {
        let r = table();
        let mac = |b: u8| Mac([2, 0, 0, 0, 0, b]);
        let eth = gen::Eth {
            src: mac(1),
            dst: mac(2),
            vlan: None,
        };
        let seg = gen::TcpSeg {
            sport: 1234,
            dport: 80,
            ..Default::default()
        };
        let a = |s: &str| Addr::from(ip(s));
        let v4 = gen::tcp(&eth, a("198.18.200.1"), a("198.18.1.11"), 64, 1, &seg);
        assert_eq!(
            destination(&v4),
            Some(Dest::V4(u32::from_be_bytes([198, 18, 1, 11])))
        );
        assert_eq!(r.lookup_frame(&v4), Some(1));

        // The same frame with one and with two tags.
        let tagged = gen::push_vlan(&v4, gen::ETHERTYPE_VLAN, 7);
        assert_eq!(r.lookup_frame(&tagged), Some(1));
        let qinq = gen::push_vlan(&tagged, gen::ETHERTYPE_QINQ, 8);
        assert_eq!(r.lookup_frame(&qinq), Some(1));

        let v6 = gen::tcp(&eth, a("2001:2::99"), a("2001:2:0:1::b"), 64, 0, &seg);
        assert_eq!(r.lookup_frame(&v6), Some(1));

        // An ARP reply goes toward its target protocol address.
        let arp = gen::arp_reply(mac(1), mac(2), a("198.18.0.1"), a("198.18.1.12"));
        assert_eq!(
            destination(&arp),
            Some(Dest::V4(u32::from_be_bytes([198, 18, 1, 12])))
        );
        assert_eq!(r.lookup_frame(&arp), Some(1));

        // Too short, or not IP / ARP: no destination.
        assert_eq!(destination(&v4[..20]), None);
        assert_eq!(destination(&[0u8; 13]), None);
        let mut other = v4.clone();
        other[12..14].copy_from_slice(&[0x88, 0xb5]);
        assert_eq!(destination(&other), None);
    }
}
