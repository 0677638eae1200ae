//! Flow identity: the address-family generic [`Addr`], the 5-tuple [`FlowKey`]
//! and the compact [`FlowDesc`] the parser produces once per packet.
//!
//! Every later stage (VIP lookup, connection table, schedulers, rewrite)
//! takes the `FlowDesc`; nothing parses the packet a second time. Offsets in
//! the descriptor were validated by the parser, so the rewrite views can trust
//! them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 or IPv6 address in one 16-byte form. IPv4 addresses are stored
/// IPv4-mapped (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2), so one key type and one
/// hash serve both families.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(transparent)]
pub struct Addr(pub [u8; 16]);

const V4_MAPPED_PREFIX: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

impl Addr {
    pub const UNSPECIFIED: Addr = Addr([0; 16]);

    #[inline]
    pub const fn from_v4(octets: [u8; 4]) -> Addr {
        // Built as one integer so it is stored in whole words: the hashes
        // read addresses back as 64-bit words, and a wide load over several
        // narrow stores stalls on store forwarding.
        let v = (0xffff_u128 << 32) | u32::from_be_bytes(octets) as u128;
        Addr(v.to_be_bytes())
    }

    #[inline]
    pub const fn from_v6(octets: [u8; 16]) -> Addr {
        Addr(octets)
    }

    #[inline]
    pub fn is_v4(&self) -> bool {
        self.0[..12] == V4_MAPPED_PREFIX
    }

    /// The four IPv4 octets (meaningful only when `is_v4`).
    #[inline]
    pub fn v4_octets(&self) -> [u8; 4] {
        [self.0[12], self.0[13], self.0[14], self.0[15]]
    }

    #[inline]
    pub fn v6_octets(&self) -> [u8; 16] {
        self.0
    }

    pub fn to_ip(&self) -> IpAddr {
        if self.is_v4() {
            IpAddr::V4(Ipv4Addr::from(self.v4_octets()))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.0))
        }
    }

    pub fn family(&self) -> Family {
        if self.is_v4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

impl From<IpAddr> for Addr {
    fn from(ip: IpAddr) -> Addr {
        match ip {
            IpAddr::V4(v4) => Addr::from_v4(v4.octets()),
            IpAddr::V6(v6) => Addr::from_v6(v6.octets()),
        }
    }
}

impl From<Ipv4Addr> for Addr {
    fn from(ip: Ipv4Addr) -> Addr {
        Addr::from_v4(ip.octets())
    }
}

impl From<Ipv6Addr> for Addr {
    fn from(ip: Ipv6Addr) -> Addr {
        Addr::from_v6(ip.octets())
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_ip().fmt(f)
    }
}

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_ip().fmt(f)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

/// IP protocol numbers rampart looks at.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
}

/// TCP flag bits as they sit in byte 13 of the TCP header.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// A transport 5-tuple in packet direction (source first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    pub src: Addr,
    pub dst: Addr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
}

impl FlowKey {
    /// The same flow seen from the other end.
    #[inline]
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            proto: self.proto,
        }
    }
}

/// What the parser found at layer 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum L3Kind {
    #[default]
    Arp,
    Ipv4,
    Ipv6,
}

/// The once-per-packet parse result. All offsets are from the start of the
/// frame and were bounds-checked by [`crate::wire::parse`].
///
/// * ARP: `key.src`/`key.dst` are the sender / target protocol addresses and
///   `arp_op` the opcode; ports and `proto` are zero.
/// * ICMP / ICMPv6: `icmp_type` is set; ports are zero.
/// * TCP / UDP: ports and (TCP) `tcp_flags` are set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlowDesc {
    pub l3: L3Kind,
    /// VLAN ID of the single 802.1Q tag, if the frame carried one.
    pub vlan: Option<u16>,
    /// Offset of the IPv4/IPv6 header (or the ARP body).
    pub l3_off: u16,
    /// Offset of the transport (TCP/UDP/ICMP) header.
    pub l4_off: u16,
    /// Bytes from `l4_off` to the end of the IP payload (excludes Ethernet padding).
    pub l4_len: u16,
    pub key: FlowKey,
    pub tcp_flags: u8,
    pub icmp_type: u8,
    pub arp_op: u16,
    pub ttl: u8,
}

impl FlowDesc {
    #[inline]
    pub fn is_v4(&self) -> bool {
        self.l3 == L3Kind::Ipv4
    }

    #[inline]
    pub fn is_tcp(&self) -> bool {
        self.key.proto == proto::TCP
    }

    #[inline]
    pub fn has_flags(&self, flags: u8) -> bool {
        self.tcp_flags & flags == flags
    }
}

/// A 6-byte Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const BROADCAST: Mac = Mac([0xff; 6]);

    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Mac {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Mac, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in out.iter_mut() {
            let part = parts
                .next()
                .ok_or("a MAC address has six colon-separated bytes")?;
            if part.len() != 2 {
                return Err("each MAC byte is two hex digits");
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| "MAC bytes are hex digits")?;
        }
        if parts.next().is_some() {
            return Err("a MAC address has six colon-separated bytes");
        }
        Ok(Mac(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_mapped_round_trip() {
        let a = Addr::from(Ipv4Addr::new(198, 18, 0, 1));
        assert!(a.is_v4());
        assert_eq!(a.v4_octets(), [198, 18, 0, 1]);
        assert_eq!(a.to_string(), "198.18.0.1");
        let b = Addr::from("2001:2::1".parse::<Ipv6Addr>().unwrap());
        assert!(!b.is_v4());
        assert_eq!(b.to_string(), "2001:2::1");
    }

    #[test]
    fn mac_parse() {
        let m: Mac = "02:00:00:00:00:fe".parse().unwrap();
        assert_eq!(m.0, [2, 0, 0, 0, 0, 0xfe]);
        assert_eq!(m.to_string(), "02:00:00:00:00:fe");
        assert!("02:00:00:00:00".parse::<Mac>().is_err());
        assert!("02:00:00:00:00:00:01".parse::<Mac>().is_err());
        assert!("0g:00:00:00:00:00".parse::<Mac>().is_err());
    }
}
