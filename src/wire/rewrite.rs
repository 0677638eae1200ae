//! In-place header rewrites for the forwarding modes, each paying for its
//! change with an RFC 1624 incremental checksum update (see [`checksum`]).
//!
//! Which checksums cover what:
//!
//! * IPv4 header checksum: the IPv4 addresses (IPv6 has no header checksum).
//! * TCP, UDP: ports, and the addresses through the pseudo-header.
//! * ICMPv6: the addresses through the pseudo-header (no ports).
//! * ICMPv4: neither; an address change leaves it alone.
//! * Other IP protocols: rampart does not know their checksum layout, so
//!   only the IP header is rewritten.
//!
//! [`rewrite`] does a whole NAT/FullNAT translation in one pass: it sums all
//! changed words into one [`Delta`] and folds it once into each checksum.
//! The single-field helpers are the same code with one side left out.
//!
//! Every function takes the [`FlowDesc`] the parser produced for this frame
//! and trusts its offsets and protocol; it reads the old values from the
//! frame itself (not from the descriptor), so calls compose in any order. A
//! call that does not apply (ARP frame, IPv6 address on an IPv4 packet, ports
//! on ICMP, a buffer shorter than the descriptor says) changes nothing and
//! returns `false`.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::checksum::{self, Delta};
use super::{read_u16, tcp, udp, write_u16};
use super::{EthernetFrame, Ipv4Packet, Ipv6Packet, TcpPacket};
use crate::flow::{proto, Addr, FlowDesc, L3Kind, Mac};

/// Where the transport checksum sits, and which rules it follows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum L4Sum {
    /// Covers ports and pseudo-header (TCP).
    Tcp,
    /// Covers ports and pseudo-header, with the UDP zero rules.
    Udp,
    /// Covers the pseudo-header only (ICMPv6).
    PseudoOnly,
    /// Not touched by address or port changes.
    None,
}

const ICMPV6_CHECKSUM: core::ops::Range<usize> = 2..4;

impl L4Sum {
    #[inline]
    fn of(d: &FlowDesc) -> L4Sum {
        match d.key.proto {
            proto::TCP => L4Sum::Tcp,
            proto::UDP => L4Sum::Udp,
            proto::ICMPV6 if d.l3 == L3Kind::Ipv6 => L4Sum::PseudoOnly,
            _ => L4Sum::None,
        }
    }

    #[inline]
    fn has_ports(self) -> bool {
        matches!(self, L4Sum::Tcp | L4Sum::Udp)
    }
}

/// Rewrites source and/or destination address and port in one pass:
/// NAT rewrites the destination on the way in and the source on the way
/// out, FullNAT both. `None` leaves a side alone. IPv4 header checksum and
/// TCP/UDP/ICMPv6 checksum are updated incrementally; a UDP/IPv4 checksum of
/// 0 ("none") stays 0. Returns `false`, changing nothing, if an address is of
/// the wrong family, the frame is ARP, or a port is asked of a protocol
/// without ports.
///
/// Always inlined: each forwarding mode calls it with one side constant, and
/// the copy specialised for that call is a fraction of the general one.
#[inline(always)]
pub fn rewrite(
    frame: &mut [u8],
    d: &FlowDesc,
    new_src: Option<(Addr, u16)>,
    new_dst: Option<(Addr, u16)>,
) -> bool {
    // TCP and UDP, the whole forwarding path, go through a fixed-layout
    // version of `apply`: the parser refuses IPv4 options and IPv6 extension
    // headers, so the transport header starts 20 (IPv4) or 40 (IPv6) bytes
    // after the IP header and every offset below is a constant.
    match (d.l3, d.key.proto) {
        (L3Kind::Ipv4, proto::TCP) => {
            ports::<V4, { 20 + tcp::field::CHECKSUM.end }>(frame, d, new_src, new_dst, false)
        }
        (L3Kind::Ipv4, proto::UDP) => {
            ports::<V4, { 20 + udp::HEADER_LEN }>(frame, d, new_src, new_dst, true)
        }
        // An IPv6 first fragment has its transport header after the
        // fragment header: the general path.
        (L3Kind::Ipv6, proto::TCP) if fixed_v6(d) => {
            ports::<V6, { 40 + tcp::field::CHECKSUM.end }>(frame, d, new_src, new_dst, false)
        }
        (L3Kind::Ipv6, proto::UDP) if fixed_v6(d) => {
            ports::<V6, { 40 + udp::HEADER_LEN }>(frame, d, new_src, new_dst, true)
        }
        (L3Kind::Ipv6, _) => slow(frame, d, new_src, new_dst),
        _ => {
            let (sa, sp) = split(new_src);
            let (da, dp) = split(new_dst);
            apply(frame, d, sa, sp, da, dp)
        }
    }
}

/// The address-family half of the fixed-layout rewrite.
trait Family {
    /// Length of the IP header (no options, no extension headers).
    const IP_LEN: usize;
    const SRC: core::ops::Range<usize>;
    const DST: core::ops::Range<usize>;
    /// The IPv4 header checksum; IPv6 has none.
    const IP_CHECKSUM: Option<core::ops::Range<usize>>;
    fn accepts(a: &Addr) -> bool;
    /// Swaps the address at `at` for `new`, returning the checksum delta.
    fn swap(hdr: &mut [u8], at: core::ops::Range<usize>, new: &Addr) -> Delta;
}

struct V4;
struct V6;

impl Family for V4 {
    const IP_LEN: usize = 20;
    const SRC: core::ops::Range<usize> = 12..16;
    const DST: core::ops::Range<usize> = 16..20;
    const IP_CHECKSUM: Option<core::ops::Range<usize>> = Some(10..12);

    #[inline(always)]
    fn accepts(a: &Addr) -> bool {
        is_v4(*a)
    }

    #[inline(always)]
    fn swap(hdr: &mut [u8], at: core::ops::Range<usize>, new: &Addr) -> Delta {
        let new = u32::from_be_bytes(new.v4_octets());
        let old = super::read_u32(hdr, at.clone());
        super::write_u32(hdr, at, new);
        Delta::new().u32(old, new)
    }
}

impl Family for V6 {
    const IP_LEN: usize = 40;
    const SRC: core::ops::Range<usize> = 8..24;
    const DST: core::ops::Range<usize> = 24..40;
    const IP_CHECKSUM: Option<core::ops::Range<usize>> = None;

    #[inline(always)]
    fn accepts(a: &Addr) -> bool {
        !is_v4(*a)
    }

    #[inline(always)]
    fn swap(hdr: &mut [u8], at: core::ops::Range<usize>, new: &Addr) -> Delta {
        let old: [u8; 16] = super::read_array(hdr, at.clone());
        super::write_bytes(hdr, at, &new.0);
        Delta::new().bytes(&old, &new.0)
    }
}

/// [`rewrite`] for TCP and UDP over a header of fixed layout: `N` bytes from
/// the IP header up to the end of the transport checksum. Same results as
/// [`apply`] (the property tests hold both to a full recompute).
#[inline(always)]
fn ports<F: Family, const N: usize>(
    frame: &mut [u8],
    d: &FlowDesc,
    src: Option<(Addr, u16)>,
    dst: Option<(Addr, u16)>,
    udp: bool,
) -> bool {
    if src.is_some_and(|(a, _)| !F::accepts(&a)) || dst.is_some_and(|(a, _)| !F::accepts(&a)) {
        return false;
    }
    if usize::from(d.l4_off) != usize::from(d.l3_off) + F::IP_LEN {
        return false;
    }
    let Some(hdr) = frame
        .get_mut(usize::from(d.l3_off)..)
        .and_then(|b| b.first_chunk_mut::<N>())
    else {
        return false;
    };
    let hdr: &mut [u8] = hdr;
    let l4 = F::IP_LEN;
    let mut ip = Delta::new();
    let mut ports = Delta::new();
    if let Some((a, p)) = src {
        ip = ip.plus(F::swap(hdr, F::SRC, &a));
        let at = l4 + tcp::field::SRC_PORT.start..l4 + tcp::field::SRC_PORT.end;
        ports = ports.u16(read_u16(hdr, at.clone()), p);
        write_u16(hdr, at, p);
    }
    if let Some((a, p)) = dst {
        ip = ip.plus(F::swap(hdr, F::DST, &a));
        let at = l4 + tcp::field::DST_PORT.start..l4 + tcp::field::DST_PORT.end;
        ports = ports.u16(read_u16(hdr, at.clone()), p);
        write_u16(hdr, at, p);
    }
    if let Some(at) = F::IP_CHECKSUM {
        let c = ip.apply(read_u16(hdr, at.clone()));
        write_u16(hdr, at, c);
    }
    let delta = ip.plus(ports);
    if udp {
        let at = l4 + udp::field::CHECKSUM.start..l4 + udp::field::CHECKSUM.end;
        let c = checksum::udp_update(read_u16(hdr, at.clone()), delta, F::IP_CHECKSUM.is_some());
        write_u16(hdr, at, c);
    } else {
        let at = l4 + tcp::field::CHECKSUM.start..l4 + tcp::field::CHECKSUM.end;
        let c = delta.apply(read_u16(hdr, at.clone()));
        write_u16(hdr, at, c);
    }
    true
}

/// The transport header right after the fixed IPv6 header.
#[inline(always)]
fn fixed_v6(d: &FlowDesc) -> bool {
    usize::from(d.l4_off) == usize::from(d.l3_off) + V6::IP_LEN
}

/// [`apply`] out of line, for the rare packet whose layout is not fixed.
#[cold]
#[inline(never)]
fn slow(
    frame: &mut [u8],
    d: &FlowDesc,
    src: Option<(Addr, u16)>,
    dst: Option<(Addr, u16)>,
) -> bool {
    let (sa, sp) = split(src);
    let (da, dp) = split(dst);
    apply(frame, d, sa, sp, da, dp)
}

/// Rewrites the IP addresses of a fragment that is not its datagram's
/// first: only the IPv4 header checksum covers them here. The transport
/// checksum, in the first fragment, was updated for the whole datagram
/// when that fragment was rewritten. Returns `false`, changing nothing,
/// on an address of the wrong family or an ARP frame.
pub fn rewrite_fragment(
    frame: &mut [u8],
    d: &FlowDesc,
    src: Option<Addr>,
    dst: Option<Addr>,
) -> bool {
    let l3_off = usize::from(d.l3_off);
    match d.l3 {
        L3Kind::Ipv4 => {
            if !src.is_none_or(is_v4) || !dst.is_none_or(is_v4) {
                return false;
            }
            let Some(ip) = frame
                .get_mut(l3_off..)
                .and_then(|b| b.first_chunk_mut::<{ super::ipv4::HEADER_LEN }>())
            else {
                return false;
            };
            let mut p = Ipv4Packet::new_unchecked(ip);
            let mut delta = Delta::new();
            if let Some(a) = src {
                let new = a.v4_octets();
                delta = delta.u32(u32::from_be_bytes(p.src()), u32::from_be_bytes(new));
                p.set_src(new);
            }
            if let Some(a) = dst {
                let new = a.v4_octets();
                delta = delta.u32(u32::from_be_bytes(p.dst()), u32::from_be_bytes(new));
                p.set_dst(new);
            }
            let c = delta.apply(p.checksum());
            p.set_checksum(c);
            true
        }
        L3Kind::Ipv6 => {
            if src.is_some_and(is_v4) || dst.is_some_and(is_v4) {
                return false;
            }
            let Some(ip) = frame
                .get_mut(l3_off..)
                .and_then(|b| b.first_chunk_mut::<{ super::ipv6::HEADER_LEN }>())
            else {
                return false;
            };
            let mut p = Ipv6Packet::new_unchecked(ip);
            if let Some(a) = src {
                p.set_src(a.0);
            }
            if let Some(a) = dst {
                p.set_dst(a.0);
            }
            true
        }
        L3Kind::Arp => false,
    }
}

#[inline]
fn split(side: Option<(Addr, u16)>) -> (Option<Addr>, Option<u16>) {
    match side {
        Some((a, p)) => (Some(a), Some(p)),
        None => (None, None),
    }
}

/// Rewrites the IP source address and the checksums that cover it.
#[inline]
pub fn set_l3_src(frame: &mut [u8], d: &FlowDesc, new: Addr) -> bool {
    apply(frame, d, Some(new), None, None, None)
}

/// Rewrites the IP destination address and the checksums that cover it.
#[inline]
pub fn set_l3_dst(frame: &mut [u8], d: &FlowDesc, new: Addr) -> bool {
    apply(frame, d, None, None, Some(new), None)
}

/// Rewrites the TCP/UDP source port and the transport checksum.
#[inline]
pub fn set_l4_sport(frame: &mut [u8], d: &FlowDesc, new: u16) -> bool {
    apply(frame, d, None, Some(new), None, None)
}

/// Rewrites the TCP/UDP destination port and the transport checksum.
#[inline]
pub fn set_l4_dport(frame: &mut [u8], d: &FlowDesc, new: u16) -> bool {
    apply(frame, d, None, None, None, Some(new))
}

/// Sets the Ethernet source and destination MACs (no checksum covers them).
#[inline]
pub fn set_macs(frame: &mut [u8], src: Mac, dst: Mac) {
    let mut eth = EthernetFrame::new_unchecked(frame);
    eth.set_src(src);
    eth.set_dst(dst);
}

/// Rewrites the TCP sequence number (SYN proxy translation) and the TCP checksum.
#[inline]
pub fn set_tcp_seq(frame: &mut [u8], d: &FlowDesc, new: u32) -> bool {
    tcp_u32(frame, d, tcp::field::SEQ, new)
}

/// Rewrites the TCP acknowledgment number and the TCP checksum.
#[inline]
pub fn set_tcp_ack(frame: &mut [u8], d: &FlowDesc, new: u32) -> bool {
    tcp_u32(frame, d, tcp::field::ACK, new)
}

fn tcp_u32(frame: &mut [u8], d: &FlowDesc, r: core::ops::Range<usize>, new: u32) -> bool {
    if d.l3 == L3Kind::Arp || d.key.proto != proto::TCP {
        return false;
    }
    let Some(l4) = frame.get_mut(usize::from(d.l4_off)..) else {
        return false;
    };
    if l4.len() < tcp::HEADER_LEN {
        return false;
    }
    let old = super::read_u32(l4, r.clone());
    super::write_u32(l4, r, new);
    let mut t = TcpPacket::new_unchecked(l4);
    let c = checksum::update_u32(t.checksum(), old, new);
    t.set_checksum(c);
    true
}

/// `Addr::is_v4` as one 128-bit compare (the slice compare may become a
/// `bcmp` call, which shows on the per-packet budget).
#[inline]
fn is_v4(a: Addr) -> bool {
    u128::from_be_bytes(a.0) >> 32 == 0xffff
}

/// The shared body: checks everything, then sums all changes into one
/// delta for the L3 checksum and one for the L4 checksum. Always inlined so
/// each caller's `Option`s fold away; passed through the stack, a freshly
/// written 16-byte address costs a store-forwarding stall larger than the
/// whole rewrite.
#[inline(always)]
fn apply(
    frame: &mut [u8],
    d: &FlowDesc,
    src: Option<Addr>,
    sport: Option<u16>,
    dst: Option<Addr>,
    dport: Option<u16>,
) -> bool {
    let l4sum = L4Sum::of(d);
    if (sport.is_some() || dport.is_some()) && !l4sum.has_ports() {
        return false;
    }
    let l3_off = usize::from(d.l3_off);
    let l4_off = usize::from(d.l4_off);
    if l4_off < l3_off {
        return false;
    }
    let Some((ip, l4)) = frame
        .get_mut(l3_off..)
        .and_then(|l3| l3.split_at_mut_checked(l4_off - l3_off))
    else {
        return false;
    };

    // Check every length before the first write, so a refused call changes nothing.
    let l4_need = match l4sum {
        L4Sum::Tcp => tcp::field::CHECKSUM.end,
        L4Sum::Udp => udp::HEADER_LEN,
        L4Sum::PseudoOnly => ICMPV6_CHECKSUM.end,
        L4Sum::None => 0,
    };
    if l4.len() < l4_need {
        return false;
    }

    let addr_delta = match d.l3 {
        L3Kind::Ipv4 => {
            if !src.is_none_or(is_v4) || !dst.is_none_or(is_v4) {
                return false;
            }
            let Some(ip) = ip.first_chunk_mut::<{ super::ipv4::HEADER_LEN }>() else {
                return false;
            };
            let mut p = Ipv4Packet::new_unchecked(ip);
            let mut delta = Delta::new();
            if let Some(a) = src {
                let new = a.v4_octets();
                delta = delta.u32(u32::from_be_bytes(p.src()), u32::from_be_bytes(new));
                p.set_src(new);
            }
            if let Some(a) = dst {
                let new = a.v4_octets();
                delta = delta.u32(u32::from_be_bytes(p.dst()), u32::from_be_bytes(new));
                p.set_dst(new);
            }
            let c = delta.apply(p.checksum());
            p.set_checksum(c);
            delta
        }
        L3Kind::Ipv6 => {
            if src.is_some_and(is_v4) || dst.is_some_and(is_v4) {
                return false;
            }
            let Some(ip) = ip.first_chunk_mut::<{ super::ipv6::HEADER_LEN }>() else {
                return false;
            };
            let mut p = Ipv6Packet::new_unchecked(ip);
            let mut delta = Delta::new();
            if let Some(a) = src {
                delta = delta.bytes(&p.src(), &a.0);
                p.set_src(a.0);
            }
            if let Some(a) = dst {
                delta = delta.bytes(&p.dst(), &a.0);
                p.set_dst(a.0);
            }
            delta
        }
        L3Kind::Arp => return false,
    };

    // Ports sit at the same offsets in TCP and UDP.
    let mut delta = addr_delta;
    if let Some(p) = sport {
        delta = delta.u16(read_u16(l4, tcp::field::SRC_PORT), p);
        write_u16(l4, tcp::field::SRC_PORT, p);
    }
    if let Some(p) = dport {
        delta = delta.u16(read_u16(l4, tcp::field::DST_PORT), p);
        write_u16(l4, tcp::field::DST_PORT, p);
    }
    match l4sum {
        L4Sum::Tcp => {
            let c = delta.apply(read_u16(l4, tcp::field::CHECKSUM));
            write_u16(l4, tcp::field::CHECKSUM, c);
        }
        L4Sum::Udp => {
            let old = read_u16(l4, udp::field::CHECKSUM);
            let c = checksum::udp_update(old, delta, d.l3 == L3Kind::Ipv4);
            write_u16(l4, udp::field::CHECKSUM, c);
        }
        L4Sum::PseudoOnly => {
            let c = delta.apply(read_u16(l4, ICMPV6_CHECKSUM));
            write_u16(l4, ICMPV6_CHECKSUM, c);
        }
        L4Sum::None => {}
    }
    true
}
