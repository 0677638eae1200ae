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
//! addresses ([`Addr::is_v4`](crate::flow::Addr::is_v4)); IPv4 packets carry
//! DF and no options unless a builder says otherwise; `ttl` is the hop
//! limit for IPv6; frames are not padded to the 60-byte Ethernet minimum
//! (see [`pad_to_min`]).
//!
//! This is test tooling, not datapath code: it panics (`assert!` with a
//! message) on nonsense input such as mixed address families or more than 40
//! bytes of TCP options. Every valid input builds without panicking.
//!
//! One file per layer: `ip` (Ethernet, IPv4/IPv6, checksums),
//! `transport` (TCP, UDP, ICMP, tunnels), `neighbor` (ARP, ND),
//! `fragment` (a packet split into fragments) and `refused` (what the
//! parser refuses on purpose, and single fragments).

use crate::flow::Mac;

mod fragment;
mod ip;
mod neighbor;
mod refused;
mod transport;

pub use fragment::fragments;
pub use ip::{ip, l3_packet, IpHdr};
pub use neighbor::{
    arp_reply, arp_request, multicast_mac, neighbor_advertisement, neighbor_solicitation,
    solicited_node,
};
pub use refused::{
    ipv4_fragment, ipv4_with_options, ipv6_with_fragment_header, pad_to_min, push_vlan,
    stacked_vlan,
};
pub use transport::{
    icmp, icmp_echo_reply, icmp_echo_request, tcp, tcp_opts, tcp_with, tunnel, udp, Outer,
    ECHO_PAYLOAD,
};

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

#[cfg(test)]
mod tests;
