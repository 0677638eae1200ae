//! ICMP (RFC 792) and ICMPv6 (RFC 4443) messages rampart handles itself:
//! errors about flows it translates, echo requests to its own addresses,
//! and the "packet too big" signal for packets it cannot forward.
//!
//! * [`quoted`] finds the offending packet an error carries. The errors
//!   rampart looks into are IPv4 Destination Unreachable, Time Exceeded and
//!   Parameter Problem, and ICMPv6 Destination Unreachable, Packet Too Big,
//!   Time Exceeded and Parameter Problem ([`is_error`]). Each has an 8-byte
//!   header followed by as much of the offending IP packet as its sender
//!   kept: at least the IP header and 8 bytes of data (RFC 792), enough for
//!   the ports; routers may quote more (RFC 1812 §4.3.2.3, RFC 4443
//!   §2.4(c)). IPv4 Redirect and Source Quench also quote a packet but are
//!   not errors a NAT carries (a redirect is about the route to rampart,
//!   Source Quench is deprecated by RFC 6633), so they are left out.
//! * [`translate_error`] carries an error across rampart's NAT, as RFC 5508
//!   asks of a NAT: the quoted packet is one rampart rewrote, so its
//!   addresses and ports are rewritten to what the receiver of the error
//!   sent, together with the outer addresses.
//! * [`echo_reply_in_place`] answers a ping in the request's buffer.
//! * [`write_too_big`] builds the RFC 1191 / RFC 4443 §3.2 message that
//!   makes a sender lower its path MTU.
//!
//! Checksums follow the rest of `wire`: a rewrite pays for each changed
//! 16-bit word with an RFC 1624 update ([`checksum::Delta`]). That holds for
//! the ICMP checksum of a translated error too. Every quoted field starts
//! on an even offset of the ICMP message (the quote starts 8 bytes in and
//! the IP header is a whole number of 32-bit words), so the changes to the
//! quoted addresses, ports and checksums fold into the ICMP checksum
//! exactly, whatever the length of the quote; and an error that arrived
//! with a bad checksum keeps a bad one, so its receiver still drops it
//! instead of rampart vouching for bytes it never checked. Only the
//! messages built from scratch ([`write_too_big`]) are summed in full.
//!
//! Invariant: nothing here panics on packet bytes or on a descriptor that
//! does not match them; every function checks all lengths it needs before
//! its first store, so a call that cannot apply leaves the buffer as it was.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use core::ops::Range;

use etherparse::{Ipv4HeaderSlice, Ipv6HeaderSlice};

use super::checksum::{self, Delta};
use super::{ethernet, ipv4, ipv6, rewrite, tcp, udp};
use super::{read_array, read_u16, read_u32, read_u8, write_bytes, write_u16, write_u32, write_u8};
use super::{EthernetFrame, Ipv4Packet, Ipv6Packet, Truncated};
use crate::flow::{proto, Addr, FlowDesc, FlowKey, L3Kind, Mac};

/// ICMPv4 message types (RFC 792) and codes rampart names.
pub mod v4 {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACHABLE: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAMETER_PROBLEM: u8 = 12;
    /// Destination Unreachable code "fragmentation needed and DF set".
    pub const CODE_FRAG_NEEDED: u8 = 4;
}

/// ICMPv6 message types (RFC 4443).
pub mod v6 {
    pub const DEST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAMETER_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
}

/// Type, code, checksum and the 4-byte rest-of-header every ICMP and
/// ICMPv6 message starts with.
pub const HEADER_LEN: usize = 8;

/// Largest IPv4 datagram an ICMP error may fill (RFC 1812 §4.3.2.3).
const V4_ERROR_MAX: usize = 576;
/// Largest IPv6 packet an ICMPv6 error may fill (RFC 4443 §2.4(c)): the
/// minimum MTU, so the error itself is never too big.
const V6_ERROR_MAX: usize = 1280;
/// The data RFC 792 promises after the quoted IP header: the ports, and for
/// TCP the sequence number, which is what a sender matches the error on.
const QUOTE_MIN_DATA: usize = 8;
/// Source and destination port: what a quote must hold to name its flow.
const PORTS_LEN: usize = 4;

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    /// Echo: identifier and sequence number; errors: unused, pointer or MTU.
    pub const REST: Range<usize> = 4..8;
    /// ICMPv4 Fragmentation Needed: the low half of the rest (RFC 1191 §4).
    pub const NEXT_HOP_MTU: Range<usize> = 6..8;
    /// ICMPv6 Packet Too Big: the whole rest (RFC 4443 §3.2).
    pub const MTU: Range<usize> = 4..8;

    /// IPv4 header fields the views leave out (`write_too_big` fills them).
    pub mod ip4 {
        use core::ops::Range;
        pub const VER_IHL: usize = 0;
        pub const TOS: usize = 1;
        pub const FLAGS_FRAG: Range<usize> = 6..8;
        pub const PROTOCOL: usize = 9;
        pub const CHECKSUM: Range<usize> = 10..12;
        pub const SRC: Range<usize> = 12..16;
        pub const DST: Range<usize> = 16..20;
    }

    /// IPv6 header fields the views leave out.
    pub mod ip6 {
        use core::ops::Range;
        pub const VER_TC_FLOW: Range<usize> = 0..4;
        pub const NEXT_HEADER: usize = 6;
        pub const SRC: Range<usize> = 8..24;
        pub const DST: Range<usize> = 24..40;
    }
}

/// Version 4, IHL 5 words.
const V4_VER_IHL: u8 = 0x45;
/// Precedence 6, Internetwork Control: RFC 1812 §4.3.2.5 asks it of every
/// ICMP error but Source Quench.
const V4_TOS_INTERNETWORK_CONTROL: u8 = 0xc0;
/// Version 6, traffic class 0, flow label 0.
const V6_VER_TC_FLOW: u32 = 0x6000_0000;

/// A view over an ICMP or ICMPv6 header, starting at the type byte.
#[derive(Debug, Clone)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Wraps a buffer without checking its length (accessors stay panic-free).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> IcmpPacket<T> {
        IcmpPacket { buffer }
    }

    /// Wraps a buffer that holds at least the 8-byte header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<IcmpPacket<T>, Truncated> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Truncated);
        }
        Ok(IcmpPacket { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn msg_type(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::TYPE)
    }

    #[inline]
    pub fn code(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::CODE)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The second 32-bit word: echo identifier and sequence number, an
    /// error's pointer or MTU.
    #[inline]
    pub fn rest(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::REST)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    #[inline]
    pub fn set_msg_type(&mut self, v: u8) {
        write_u8(self.buffer.as_mut(), field::TYPE, v);
    }

    #[inline]
    pub fn set_code(&mut self, v: u8) {
        write_u8(self.buffer.as_mut(), field::CODE, v);
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    #[inline]
    pub fn set_rest(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), field::REST, v);
    }
}

/// Whether `(family, type)` is an error that quotes an offending packet:
/// IPv4 types 3, 11 and 12; ICMPv6 types 1 to 4.
#[inline]
pub fn is_error(v6: bool, icmp_type: u8) -> bool {
    if v6 {
        matches!(
            icmp_type,
            v6::DEST_UNREACHABLE | v6::PACKET_TOO_BIG | v6::TIME_EXCEEDED | v6::PARAMETER_PROBLEM
        )
    } else {
        matches!(
            icmp_type,
            v4::DEST_UNREACHABLE | v4::TIME_EXCEEDED | v4::PARAMETER_PROBLEM
        )
    }
}

/// Whether `(family, type)` is an echo request (IPv4 type 8, ICMPv6 type 128).
#[inline]
pub fn is_echo_request(v6: bool, icmp_type: u8) -> bool {
    let request = if v6 {
        v6::ECHO_REQUEST
    } else {
        v4::ECHO_REQUEST
    };
    icmp_type == request
}

/// `Some(is IPv6)` when `d` is an ICMP message of its own family (ICMPv4
/// over IPv4, ICMPv6 over IPv6); the parser sets `icmp_type` only then.
#[inline]
fn icmp_family(d: &FlowDesc) -> Option<bool> {
    match (d.l3, d.key.proto) {
        (L3Kind::Ipv4, proto::ICMP) => Some(false),
        (L3Kind::Ipv6, proto::ICMPV6) => Some(true),
        _ => None,
    }
}

/// The offending packet an ICMP error quotes, located in the error's frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted {
    /// Frame offset of the quoted IP header (8 bytes into the ICMP message).
    pub l3_off: u16,
    /// Frame offset of the quoted transport header.
    pub l4_off: u16,
    /// Quoted transport bytes present: often fewer than the whole segment
    /// (RFC 792 guarantees 8), never more than its IP header claims.
    pub l4_avail: u16,
    /// The quoted packet's own 5-tuple, in its direction: `src` sent the
    /// packet the error is about, so the error travels to `src`.
    pub key: FlowKey,
}

/// Locates the quote of the ICMP error `d` describes, so the datapath can
/// find the flow it belongs to. `None` unless `d` is an error
/// ([`is_error`]) whose quote holds a complete IP header of the outer
/// family (IPv4 options are stepped over by IHL; an IPv6 extension header
/// is refused like the parser refuses it outside) carrying TCP or UDP, and
/// at least the 4 port bytes. A quoted IPv4 fragment other than the first
/// is refused too: it has no transport header to read ports from.
pub fn quoted(frame: &[u8], d: &FlowDesc) -> Option<Quoted> {
    let v6 = icmp_family(d)?;
    if !is_error(v6, d.icmp_type) {
        return None;
    }
    let msg_off = usize::from(d.l4_off);
    let msg = frame.get(msg_off..msg_off + usize::from(d.l4_len))?;
    let quote = msg.get(HEADER_LEN..)?;

    // What the quoted IP header says: addresses, protocol, its own length
    // and the transport length of the packet it heads (of which the quote
    // may hold only a part).
    let (src, dst, l4_proto, ip_len, l4_len) = if v6 {
        let ip = Ipv6HeaderSlice::from_slice(quote).ok()?;
        (
            Addr::from_v6(ip.source()),
            Addr::from_v6(ip.destination()),
            ip.next_header().0,
            ipv6::HEADER_LEN,
            usize::from(ip.payload_length()),
        )
    } else {
        let ip = Ipv4HeaderSlice::from_slice(quote).ok()?;
        if ip.fragments_offset().value() != 0 {
            return None;
        }
        let ip_len = ip.slice().len();
        (
            Addr::from_v4(ip.source()),
            Addr::from_v4(ip.destination()),
            ip.protocol().0,
            ip_len,
            usize::from(ip.total_len()).checked_sub(ip_len)?,
        )
    };
    // Extension headers land here too: their next-header values are not
    // TCP or UDP.
    if l4_proto != proto::TCP && l4_proto != proto::UDP {
        return None;
    }
    // Bytes past the quoted packet's own length are not its transport
    // header (RFC 4884 extensions follow a padded quote, for one).
    let l4 = quote.get(ip_len..)?;
    let l4_avail = l4.len().min(l4_len);
    if l4_avail < PORTS_LEN {
        return None;
    }
    let l3_off = msg_off + HEADER_LEN;
    Some(Quoted {
        l3_off: u16::try_from(l3_off).ok()?,
        l4_off: u16::try_from(l3_off + ip_len).ok()?,
        l4_avail: u16::try_from(l4_avail).ok()?,
        key: FlowKey {
            src,
            dst,
            sport: read_u16(l4, tcp::field::SRC_PORT),
            dport: read_u16(l4, tcp::field::DST_PORT),
            proto: l4_proto,
        },
    })
}

/// Rewrites the ICMP error `d` describes, whose quote `q` came from
/// [`quoted`], for delivery to the other side of rampart's NAT:
///
/// * `outer_src` / `outer_dst`: the error's own IP addresses (the IPv4
///   header checksum, or for ICMPv6 the pseudo-header in the ICMPv6
///   checksum, pays for them, see [`rewrite::set_l3_src`]);
/// * `quoted_src` / `quoted_dst`: address and port of each side of the
///   quoted packet, with the quoted IPv4 header checksum updated, and the
///   quoted TCP or UDP checksum when the quote holds it (TCP: 18 bytes,
///   UDP: 8; a zero UDP checksum over IPv4 stays zero, RFC 768). A quote
///   that ends halfway through that checksum keeps its half as it was:
///   without the other half the carry into it is unknown;
/// * the ICMP checksum, by the same incremental update over every word the
///   quote changed (see the module docs for why not a full sum).
///
/// `None` leaves that part alone. Returns `false`, changing nothing, if
/// `d` is not an error, an address is of the other family, or `q` does not
/// lie inside this frame's ICMP message where [`quoted`] would put it.
pub fn translate_error(
    frame: &mut [u8],
    d: &FlowDesc,
    q: &Quoted,
    outer_src: Option<Addr>,
    outer_dst: Option<Addr>,
    quoted_src: Option<(Addr, u16)>,
    quoted_dst: Option<(Addr, u16)>,
) -> bool {
    let Some(v6) = icmp_family(d) else {
        return false;
    };
    if !is_error(v6, d.icmp_type) {
        return false;
    }
    let ours = |a: Option<Addr>| a.is_none_or(|a| a.is_v4() != v6);
    if !ours(outer_src)
        || !ours(outer_dst)
        || !ours(quoted_src.map(|s| s.0))
        || !ours(quoted_dst.map(|s| s.0))
    {
        return false;
    }
    // Where the quoted transport checksum sits, and how far the quote must
    // reach to hold it.
    let l4_sum = match q.key.proto {
        proto::TCP => tcp::field::CHECKSUM,
        proto::UDP => udp::field::CHECKSUM,
        _ => return false,
    };

    // The layout `quoted` produces, checked again because `q` arrives
    // separately from the frame: the quote right after the ICMP header, a
    // quoted IP header of whole 32-bit words, the transport bytes inside
    // the ICMP message, and the outer headers in front of it.
    let l3_off = usize::from(d.l3_off);
    let msg_off = usize::from(d.l4_off);
    let msg_end = msg_off + usize::from(d.l4_len);
    let outer_ip_len = if v6 {
        ipv6::HEADER_LEN
    } else {
        ipv4::HEADER_LEN
    };
    if l3_off < ethernet::HEADER_LEN || msg_off < l3_off + outer_ip_len {
        return false;
    }
    if usize::from(q.l3_off) != msg_off + HEADER_LEN {
        return false;
    }
    let Some(q_ip_len) = usize::from(q.l4_off).checked_sub(usize::from(q.l3_off)) else {
        return false;
    };
    let ip_len_ok = if v6 {
        q_ip_len == ipv6::HEADER_LEN
    } else {
        q_ip_len >= ipv4::HEADER_LEN && q_ip_len % 4 == 0
    };
    let avail = usize::from(q.l4_avail);
    if !ip_len_ok || avail < PORTS_LEN || usize::from(q.l4_off) + avail > msg_end {
        return false;
    }
    if msg_end > frame.len() {
        return false;
    }
    let version = if v6 { 6 } else { 4 };
    if read_u8(frame, usize::from(q.l3_off)) >> 4 != version {
        return false;
    }

    // Outer addresses first: the helpers check exactly what was checked
    // above, so a refusal here comes before any byte changed.
    if let Some(a) = outer_src {
        if !rewrite::set_l3_src(frame, d, a) {
            return false;
        }
    }
    if let Some(a) = outer_dst {
        if !rewrite::set_l3_dst(frame, d, a) {
            return false;
        }
    }

    // The quote, at offsets relative to the ICMP message.
    let Some(msg) = frame.get_mut(msg_off..msg_end) else {
        return false;
    };
    let ip = HEADER_LEN;
    let l4 = ip + q_ip_len;
    let (src_at, dst_at) = if v6 {
        (at(ip, field::ip6::SRC), at(ip, field::ip6::DST))
    } else {
        (at(ip, field::ip4::SRC), at(ip, field::ip4::DST))
    };
    // `addrs` is what the quoted pseudo-header and IPv4 header saw change;
    // `icmp` collects every word of the message that changed.
    let mut addrs = Delta::new();
    let mut ports = Delta::new();
    if let Some((a, p)) = quoted_src {
        addrs = addrs.plus(swap_addr(msg, src_at, &a, v6));
        ports = ports.plus(swap_u16(msg, at(l4, tcp::field::SRC_PORT), p));
    }
    if let Some((a, p)) = quoted_dst {
        addrs = addrs.plus(swap_addr(msg, dst_at, &a, v6));
        ports = ports.plus(swap_u16(msg, at(l4, tcp::field::DST_PORT), p));
    }
    let mut icmp = addrs.plus(ports);
    if !v6 {
        let sum_at = at(ip, field::ip4::CHECKSUM);
        let old = read_u16(msg, sum_at.clone());
        let new = addrs.apply(old);
        write_u16(msg, sum_at, new);
        icmp = icmp.u16(old, new);
    }
    if avail >= l4_sum.end {
        let sum_at = at(l4, l4_sum);
        let old = read_u16(msg, sum_at.clone());
        let new = if q.key.proto == proto::UDP {
            checksum::udp_update(old, addrs.plus(ports), !v6)
        } else {
            addrs.plus(ports).apply(old)
        };
        write_u16(msg, sum_at, new);
        icmp = icmp.u16(old, new);
    }
    let mut hdr = IcmpPacket::new_unchecked(msg);
    let c = icmp.apply(hdr.checksum());
    hdr.set_checksum(c);
    true
}

/// Adds `add` to the sequence number of a quoted TCP segment (a SYN proxy
/// connection's backend counts from another initial sequence number than
/// the client sees), updating the quoted TCP checksum when the quote holds
/// it and the ICMP checksum. Returns `false`, changing nothing, when the
/// quote is not TCP or stops before the sequence number ends, or `q` does
/// not lie inside this frame's ICMP message.
pub fn add_quoted_seq(frame: &mut [u8], d: &FlowDesc, q: &Quoted, add: u32) -> bool {
    let seq = tcp::field::SEQ;
    let sum = tcp::field::CHECKSUM;
    if q.key.proto != proto::TCP || usize::from(q.l4_avail) < seq.end {
        return false;
    }
    let (msg_off, msg_end) = (
        usize::from(d.l4_off),
        usize::from(d.l4_off) + usize::from(d.l4_len),
    );
    let Some(l4) = usize::from(q.l4_off).checked_sub(msg_off) else {
        return false;
    };
    let Some(msg) = frame.get_mut(msg_off..msg_end) else {
        return false;
    };
    if l4 + usize::from(q.l4_avail) > msg.len() || msg.len() < HEADER_LEN {
        return false;
    }
    let old = read_u32(msg, at(l4, seq.clone()));
    let new = old.wrapping_add(add);
    write_u32(msg, at(l4, seq), new);
    let mut icmp = Delta::new().u32(old, new);
    if usize::from(q.l4_avail) >= sum.end {
        let old_sum = read_u16(msg, at(l4, sum.clone()));
        let new_sum = Delta::new().u32(old, new).apply(old_sum);
        write_u16(msg, at(l4, sum), new_sum);
        icmp = icmp.u16(old_sum, new_sum);
    }
    let mut hdr = IcmpPacket::new_unchecked(msg);
    let c = icmp.apply(hdr.checksum());
    hdr.set_checksum(c);
    true
}

/// `r` moved to start at `base`.
#[inline]
fn at(base: usize, r: Range<usize>) -> Range<usize> {
    base + r.start..base + r.end
}

/// Stores `new` over the address at `r`, returning the checksum delta.
#[inline]
fn swap_addr(b: &mut [u8], r: Range<usize>, new: &Addr, v6: bool) -> Delta {
    if v6 {
        let old: [u8; 16] = read_array(b, r.clone());
        write_bytes(b, r, &new.0);
        Delta::new().bytes(&old, &new.0)
    } else {
        let old = read_u32(b, r.clone());
        let new = u32::from_be_bytes(new.v4_octets());
        write_u32(b, r, new);
        Delta::new().u32(old, new)
    }
}

/// Stores `new` over the 16-bit word at `r`, returning the checksum delta.
#[inline]
fn swap_u16(b: &mut [u8], r: Range<usize>, new: u16) -> Delta {
    let old = read_u16(b, r.clone());
    write_u16(b, r, new);
    Delta::new().u16(old, new)
}

/// Turns the echo request `d` describes into its reply in the same buffer
/// (RFC 792 echo, RFC 4443 §4.2): IP source and destination swapped, TTL
/// or hop limit `ttl`, type 0 / 129 with code 0, identifier, sequence number
/// and data kept; from `our_mac` back to the request's source MAC, on the
/// same VLAN. Everything else of the IP header (IPv4 ID and flags, traffic
/// class) is kept. Both checksums are updated incrementally: swapping two
/// addresses leaves every sum over them unchanged, so only the TTL word and
/// the type word cost anything.
///
/// The caller decides whether to answer (the destination is ours, not a
/// broadcast or multicast group). Returns `false`, changing nothing, if `d`
/// is not an echo request or the frame disagrees with it.
pub fn echo_reply_in_place(frame: &mut [u8], d: &FlowDesc, our_mac: Mac, ttl: u8) -> bool {
    let Some(v6) = icmp_family(d) else {
        return false;
    };
    if !is_echo_request(v6, d.icmp_type) {
        return false;
    }
    let l3_off = usize::from(d.l3_off);
    let msg_off = usize::from(d.l4_off);
    let msg_end = msg_off + usize::from(d.l4_len);
    let ip_len = if v6 {
        ipv6::HEADER_LEN
    } else {
        ipv4::HEADER_LEN
    };
    if l3_off < ethernet::HEADER_LEN || msg_off < l3_off + ip_len {
        return false;
    }
    let Some((ip, msg)) = frame
        .get_mut(l3_off..msg_end)
        .and_then(|b| b.split_at_mut_checked(msg_off - l3_off))
    else {
        return false;
    };
    let Ok(mut icmp) = IcmpPacket::new_checked(msg) else {
        return false;
    };
    if icmp.msg_type() != d.icmp_type {
        return false;
    }

    let reply = if v6 { v6::ECHO_REPLY } else { v4::ECHO_REPLY };
    let old_word = u16::from_be_bytes([icmp.msg_type(), icmp.code()]);
    let new_word = u16::from(reply) << 8;
    icmp.set_msg_type(reply);
    icmp.set_code(0);
    let c = Delta::new().u16(old_word, new_word).apply(icmp.checksum());
    icmp.set_checksum(c);

    if v6 {
        let mut p = Ipv6Packet::new_unchecked(ip);
        let (src, dst) = (p.src(), p.dst());
        p.set_src(dst);
        p.set_dst(src);
        p.set_hop_limit(ttl);
    } else {
        let mut p = Ipv4Packet::new_unchecked(ip);
        let (src, dst) = (p.src(), p.dst());
        p.set_src(dst);
        p.set_dst(src);
        // TTL shares its header word with the protocol.
        let proto_byte = u16::from(p.protocol());
        let old = u16::from(p.ttl()) << 8 | proto_byte;
        let new = u16::from(ttl) << 8 | proto_byte;
        p.set_ttl(ttl);
        let c = Delta::new().u16(old, new).apply(p.checksum());
        p.set_checksum(c);
    }

    let mut eth = EthernetFrame::new_unchecked(frame);
    let requester = eth.src();
    eth.set_dst(requester);
    eth.set_src(our_mac);
    true
}

/// Writes into `out` a complete frame telling the sender of `orig` (parsed
/// as `d`) that its packet was too big to forward: for IPv4 a Destination
/// Unreachable, code 4 "fragmentation needed", with next-hop MTU `mtu`
/// (RFC 1191 §4; the field is 16 bits, so a larger `mtu` is sent as
/// 65535), for IPv6 a Packet Too Big with the 32-bit `mtu` (RFC 4443
/// §3.2).
///
/// Ethernet: from `src_mac` to `orig`'s source MAC, with `orig`'s
/// EtherType and VLAN tag. IP: from `from` to `orig`'s source, TTL or hop
/// limit `ttl`; IPv4 with ID 0, DF clear and precedence 6 (RFC 1812
/// §4.3.2.5), IPv6 with traffic class and flow label 0. The quote is as
/// much of `orig`'s IP packet (Ethernet padding excluded) as fits in an
/// IPv4 error of 576 bytes (RFC 1812 §4.3.2.3) or an IPv6 error of 1280
/// (RFC 4443 §2.4(c)), and in `out`. Checksums are summed in full.
///
/// Returns the frame length, or `None`, leaving `out` untouched, if `d` is
/// not IP, `from` is of the other family, `orig` is itself an ICMP error
/// (an error about an error could loop: RFC 1122 §3.2.2, RFC 4443
/// §2.4(e.1)), or `out` cannot hold the headers plus the quoted IP header
/// and the 8 bytes after it (all of `orig`'s IP packet, if shorter) that
/// RFC 792 promises: without the ports the sender cannot tell which
/// socket the error is for.
pub fn write_too_big(
    out: &mut [u8],
    orig: &[u8],
    d: &FlowDesc,
    from: Addr,
    mtu: u32,
    ttl: u8,
    src_mac: Mac,
) -> Option<usize> {
    let v6 = match d.l3 {
        L3Kind::Ipv4 => false,
        L3Kind::Ipv6 => true,
        L3Kind::Arp => return None,
    };
    if from.is_v4() == v6 {
        return None;
    }
    if icmp_family(d) == Some(v6) && is_error(v6, d.icmp_type) {
        return None;
    }
    let l3_off = usize::from(d.l3_off);
    let l4_off = usize::from(d.l4_off);
    if l3_off < ethernet::HEADER_LEN || l4_off < l3_off {
        return None;
    }
    let l2 = orig.get(..l3_off)?;
    let offending = orig.get(l3_off..l4_off + usize::from(d.l4_len))?;

    let (ip_len, max) = if v6 {
        (ipv6::HEADER_LEN, V6_ERROR_MAX)
    } else {
        (ipv4::HEADER_LEN, V4_ERROR_MAX)
    };
    let msg_off = l3_off + ip_len;
    let quote_off = msg_off + HEADER_LEN;
    let room = out.len().checked_sub(quote_off)?;
    let quote_len = offending.len().min(max - ip_len - HEADER_LEN).min(room);
    let needed = offending.len().min(l4_off - l3_off + QUOTE_MIN_DATA);
    if quote_len < needed {
        return None;
    }
    let quote = offending.get(..quote_len)?;
    let end = quote_off + quote_len;
    let msg_len = HEADER_LEN + quote_len;
    let requester = EthernetFrame::new_unchecked(l2).src();
    let to = d.key.src;

    let (eth, rest) = out.get_mut(..end)?.split_at_mut_checked(l3_off)?;
    let (ip, msg) = rest.split_at_mut_checked(ip_len)?;
    write_bytes(eth, 0..l3_off, l2);
    let mut e = EthernetFrame::new_unchecked(eth);
    e.set_dst(requester);
    e.set_src(src_mac);

    write_bytes(msg, HEADER_LEN..msg_len, quote);
    let mut icmp = IcmpPacket::new_unchecked(&mut *msg);
    icmp.set_rest(0);
    icmp.set_checksum(0);
    icmp.set_code(0);
    if v6 {
        icmp.set_msg_type(v6::PACKET_TOO_BIG);
        write_u32(msg, field::MTU, mtu);
    } else {
        icmp.set_msg_type(v4::DEST_UNREACHABLE);
        icmp.set_code(v4::CODE_FRAG_NEEDED);
        write_u16(
            msg,
            field::NEXT_HOP_MTU,
            u16::try_from(mtu).unwrap_or(u16::MAX),
        );
    }

    let icmp_sum = if v6 {
        use field::ip6::*;
        write_u32(ip, VER_TC_FLOW, V6_VER_TC_FLOW);
        write_u8(ip, NEXT_HEADER, proto::ICMPV6);
        write_bytes(ip, SRC, &from.0);
        write_bytes(ip, DST, &to.0);
        let mut p = Ipv6Packet::new_unchecked(&mut *ip);
        // `msg_len` is at most 1240 and, for IPv4, 556: the casts are exact.
        p.set_payload_len(msg_len as u16);
        p.set_hop_limit(ttl);
        checksum::pseudo_v6(&from.0, &to.0, proto::ICMPV6, msg_len as u32)
    } else {
        use field::ip4::*;
        write_u8(ip, VER_IHL, V4_VER_IHL);
        write_u8(ip, TOS, V4_TOS_INTERNETWORK_CONTROL);
        write_u16(ip, FLAGS_FRAG, 0);
        write_u8(ip, PROTOCOL, proto::ICMP);
        write_bytes(ip, SRC, &from.v4_octets());
        write_bytes(ip, DST, &to.v4_octets());
        let mut p = Ipv4Packet::new_unchecked(&mut *ip);
        p.set_total_len((ip_len + msg_len) as u16);
        p.set_ident(0);
        p.set_ttl(ttl);
        p.fill_checksum();
        // ICMPv4 has no pseudo-header.
        0
    };
    let c = checksum::finish(checksum::sum(msg, icmp_sum));
    IcmpPacket::new_unchecked(msg).set_checksum(c);
    Some(end)
}

#[cfg(test)]
mod tests;
