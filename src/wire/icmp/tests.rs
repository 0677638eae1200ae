//! Tests for [`super`]. Expected frames are built field by field with
//! etherparse's `PacketBuilder`, which sums every checksum from scratch,
//! never copied from rampart's output; a textbook RFC 1071 loop then sums
//! each checksum of the result once more, sharing no code with
//! `wire::checksum` or etherparse.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::*;
use crate::wire::parse;
use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::{
    Icmpv4Type, Icmpv6Type, IpDscp, IpHeaders, IpNumber, Ipv4Header, Ipv4Options, Ipv6Header,
    PacketBuilder, PacketBuilderStep, SlicedPacket, TransportSlice, VlanId,
};
use proptest::prelude::*;

const OUR: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
const PEER: Mac = Mac([0x02, 0, 0, 0, 0, 0x02]);

// ---- addresses by role ------------------------------------------------------

fn v6addr(net: u8, last: u8) -> Addr {
    Addr::from_v6([
        0x20, 0x01, 0x0d, 0xb8, 0, net, 0, 0, 0, 0, 0, 0, 0, 0, 0, last,
    ])
}

fn client(v6: bool) -> Addr {
    if v6 {
        v6addr(0xc, 7)
    } else {
        Addr::from_v4([198, 51, 100, 7])
    }
}

fn vip(v6: bool) -> Addr {
    if v6 {
        v6addr(0xa, 10)
    } else {
        Addr::from_v4([192, 0, 2, 10])
    }
}

fn backend(v6: bool) -> Addr {
    if v6 {
        v6addr(0xb, 20)
    } else {
        Addr::from_v4([10, 0, 0, 20])
    }
}

/// rampart's own address on the backend side (the FullNAT source).
fn local(v6: bool) -> Addr {
    if v6 {
        v6addr(0xb, 200)
    } else {
        Addr::from_v4([10, 0, 0, 200])
    }
}

fn router(v6: bool) -> Addr {
    if v6 {
        v6addr(0xd, 1)
    } else {
        Addr::from_v4([203, 0, 113, 1])
    }
}

// ---- packets built with etherparse -----------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum L4 {
    Tcp,
    Udp,
}

impl L4 {
    fn proto(self) -> u8 {
        match self {
            L4::Tcp => proto::TCP,
            L4::Udp => proto::UDP,
        }
    }
}

/// IP headers from `src` to `dst`; etherparse fills in the lengths, the
/// protocol and the IPv4 checksum when it writes them.
fn ip_hdr(src: Addr, dst: Addr, ttl: u8, options: &[u8]) -> IpHeaders {
    if src.is_v4() {
        let mut h =
            Ipv4Header::new(0, ttl, IpNumber::UDP, src.v4_octets(), dst.v4_octets()).unwrap();
        h.identification = 0x1234;
        h.options = Ipv4Options::try_from(options).unwrap();
        IpHeaders::Ipv4(h, Default::default())
    } else {
        let h = Ipv6Header {
            traffic_class: 0,
            flow_label: Default::default(),
            payload_length: 0,
            next_header: IpNumber::UDP,
            hop_limit: ttl,
            source: src.v6_octets(),
            destination: dst.v6_octets(),
        };
        IpHeaders::Ipv6(h, Default::default())
    }
}

/// Ethernet (with an optional 802.1Q tag) in front of `ip`.
fn link(src: Mac, dst: Mac, vlan: Option<u16>, ip: IpHeaders) -> PacketBuilderStep<IpHeaders> {
    let eth = PacketBuilder::ethernet2(src.0, dst.0);
    match vlan {
        Some(v) => eth.single_vlan(VlanId::try_new(v).unwrap()).ip(ip),
        None => eth.ip(ip),
    }
}

/// A TCP or UDP packet (IP header first, no link layer) as its sender
/// wrote it. `udp_zero` sends a UDP checksum of 0 ("none", IPv4 only).
fn ip_packet(
    l4: L4,
    src: (Addr, u16),
    dst: (Addr, u16),
    payload: &[u8],
    options: &[u8],
    udp_zero: bool,
) -> Vec<u8> {
    let b = PacketBuilder::ip(ip_hdr(src.0, dst.0, 61, options));
    let mut out = Vec::new();
    match l4 {
        L4::Tcp => b
            .tcp(src.1, dst.1, 0x0102_0304, 4096)
            .ack(0x0a0b_0c0d)
            .psh()
            .write(&mut out, payload)
            .unwrap(),
        L4::Udp => b.udp(src.1, dst.1).write(&mut out, payload).unwrap(),
    }
    if udp_zero {
        assert!(l4 == L4::Udp && src.0.is_v4());
        let at = 20 + options.len() + 6;
        out[at..at + 2].copy_from_slice(&[0, 0]);
    }
    out
}

/// An ICMP or ICMPv6 message of `kind` (type, code, rest of header) from
/// `src` to `dst` carrying `body`, in an Ethernet frame to us.
fn icmp_frame(
    vlan: Option<u16>,
    src: Addr,
    dst: Addr,
    kind: (u8, u8, [u8; 4]),
    body: &[u8],
) -> Vec<u8> {
    let b = link(PEER, OUR, vlan, ip_hdr(src, dst, 250, &[]));
    let mut out = Vec::new();
    if src.is_v4() {
        b.icmpv4_raw(kind.0, kind.1, kind.2)
            .write(&mut out, body)
            .unwrap();
    } else {
        b.icmpv6_raw(kind.0, kind.1, kind.2)
            .write(&mut out, body)
            .unwrap();
    }
    out
}

// ---- independent checksum verification -------------------------------------

/// The folded one's-complement sum of `data`, word by word (RFC 1071 §4.1).
fn ones_sum(data: &[u8]) -> u16 {
    let mut s: u64 = 0;
    for pair in data.chunks(2) {
        let hi = u64::from(pair[0]) << 8;
        let lo = pair.get(1).map_or(0, |b| u64::from(*b));
        s += hi | lo;
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Data that carries its own correct checksum sums to 0xffff.
fn sums_ok(data: &[u8]) -> bool {
    ones_sum(data) == 0xffff
}

/// The pseudo-header of RFC 768 / RFC 9293 §3.1 (IPv4) or RFC 8200 §8.1
/// (IPv6), followed by `data`.
fn with_pseudo(src: Addr, dst: Addr, proto: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    if src.is_v4() {
        v.extend_from_slice(&src.v4_octets());
        v.extend_from_slice(&dst.v4_octets());
        v.extend_from_slice(&[0, proto]);
        v.extend_from_slice(&(data.len() as u16).to_be_bytes());
    } else {
        v.extend_from_slice(&src.v6_octets());
        v.extend_from_slice(&dst.v6_octets());
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, proto]);
    }
    v.extend_from_slice(data);
    v
}

/// Sums every checksum of an ICMP error frame in full: the outer IPv4
/// header, the ICMP message (ICMPv6 with its pseudo-header), the quoted
/// IPv4 header, and the quoted TCP/UDP segment when the quote holds all
/// of it (a UDP/IPv4 checksum of 0 means "none" and is not summed).
fn check_error_sums(frame: &[u8]) {
    let d = parse(frame).unwrap();
    let v6 = !d.is_v4();
    let (l3, l4) = (usize::from(d.l3_off), usize::from(d.l4_off));
    let msg = &frame[l4..l4 + usize::from(d.l4_len)];
    if v6 {
        assert!(
            sums_ok(&with_pseudo(d.key.src, d.key.dst, proto::ICMPV6, msg)),
            "ICMPv6 checksum"
        );
    } else {
        assert!(sums_ok(&frame[l3..l4]), "outer IPv4 header checksum");
        assert!(sums_ok(msg), "ICMP checksum");
    }
    let quote = &msg[HEADER_LEN..];
    let (src, dst, l4_proto, hl, seg_len) = if v6 {
        let src = Addr::from_v6(quote[8..24].try_into().unwrap());
        let dst = Addr::from_v6(quote[24..40].try_into().unwrap());
        let len = usize::from(u16::from_be_bytes([quote[4], quote[5]]));
        (src, dst, quote[6], 40, len)
    } else {
        let hl = usize::from(quote[0] & 0x0f) * 4;
        assert!(sums_ok(&quote[..hl]), "quoted IPv4 header checksum");
        let src = Addr::from_v4(quote[12..16].try_into().unwrap());
        let dst = Addr::from_v4(quote[16..20].try_into().unwrap());
        let total = usize::from(u16::from_be_bytes([quote[2], quote[3]]));
        (src, dst, quote[9], hl, total - hl)
    };
    if quote.len() >= hl + seg_len {
        let seg = &quote[hl..hl + seg_len];
        let udp_none = l4_proto == proto::UDP && !v6 && seg[6..8] == [0, 0];
        if !udp_none {
            assert!(
                sums_ok(&with_pseudo(src, dst, l4_proto, seg)),
                "quoted transport checksum"
            );
        }
    }
}

// ---- translate_error --------------------------------------------------------

/// An address and port.
type Endpoint = (Addr, u16);

/// One ICMP error about one offending packet, and one translation of it.
#[derive(Clone, Debug)]
struct Case {
    l4: L4,
    vlan: Option<u16>,
    /// Type, code and rest of header of the error.
    kind: (u8, u8, [u8; 4]),
    /// The offending packet's source and destination.
    orig: (Endpoint, Endpoint),
    payload: Vec<u8>,
    /// IPv4 options of the offending packet.
    options: Vec<u8>,
    udp_zero: bool,
    /// How many bytes of the offending IP packet the error quotes, at most.
    quote_limit: usize,
    /// The error's own source and destination.
    outer: (Addr, Addr),
    new_outer: (Option<Addr>, Option<Addr>),
    new_quoted: (Option<Endpoint>, Option<Endpoint>),
}

impl Case {
    fn offending(&self, src: (Addr, u16), dst: (Addr, u16)) -> Vec<u8> {
        ip_packet(
            self.l4,
            src,
            dst,
            &self.payload,
            &self.options,
            self.udp_zero,
        )
    }

    fn frame(&self) -> Vec<u8> {
        let orig = self.offending(self.orig.0, self.orig.1);
        let n = self.quote_limit.min(orig.len());
        icmp_frame(self.vlan, self.outer.0, self.outer.1, self.kind, &orig[..n])
    }

    /// The error as if the offending packet had been sent with the new
    /// addresses and ports, quoted to the same length, between the new
    /// outer addresses.
    ///
    /// One byte is the exception: a quote that ends inside the transport
    /// checksum holds half of it, and half a checksum cannot be updated
    /// (the carry out of the missing half is unknown), so that byte keeps
    /// its value from the original quote.
    fn expected(&self) -> Vec<u8> {
        let src = self.new_quoted.0.unwrap_or(self.orig.0);
        let dst = self.new_quoted.1.unwrap_or(self.orig.1);
        let mut orig = self.offending(src, dst);
        let n = self.quote_limit.min(orig.len());
        let ip = if self.orig.0 .0.is_v4() {
            20 + self.options.len()
        } else {
            40
        };
        let sum_at = ip + if self.l4 == L4::Tcp { 16 } else { 6 };
        if n == sum_at + 1 {
            orig[sum_at] = self.offending(self.orig.0, self.orig.1)[sum_at];
        }
        let outer_src = self.new_outer.0.unwrap_or(self.outer.0);
        let outer_dst = self.new_outer.1.unwrap_or(self.outer.1);
        icmp_frame(self.vlan, outer_src, outer_dst, self.kind, &orig[..n])
    }

    fn translate(&self, f: &mut [u8], d: &FlowDesc, q: &Quoted) -> bool {
        translate_error(
            f,
            d,
            q,
            self.new_outer.0,
            self.new_outer.1,
            self.new_quoted.0,
            self.new_quoted.1,
        )
    }

    /// Locates the quote, translates, and compares with [`Case::expected`].
    fn run(&self) -> Vec<u8> {
        let mut f = self.frame();
        let d = parse(&f).unwrap();
        let q = quoted(&f, &d).expect("quote");
        let ((sa, sp), (da, dp)) = self.orig;
        assert_eq!(
            q.key,
            FlowKey {
                src: sa,
                dst: da,
                sport: sp,
                dport: dp,
                proto: self.l4.proto()
            }
        );
        let orig_len = self.offending(self.orig.0, self.orig.1).len();
        let ip_len = usize::from(q.l4_off - q.l3_off);
        assert_eq!(usize::from(q.l3_off), usize::from(d.l4_off) + HEADER_LEN);
        assert_eq!(
            usize::from(q.l4_avail),
            self.quote_limit.min(orig_len) - ip_len
        );
        assert!(self.translate(&mut f, &d, &q), "{self:?}");
        assert_eq!(f, self.expected(), "{self:?}");
        check_error_sums(&f);
        f
    }
}

/// Error kinds worth covering per family: the port unreachable a UDP
/// service provokes, time exceeded (traceroute), and the PMTU signal.
fn kinds(v6: bool) -> [(u8, u8, [u8; 4]); 3] {
    if v6 {
        [
            (v6::DEST_UNREACHABLE, 4, [0; 4]),
            (v6::TIME_EXCEEDED, 0, [0; 4]),
            (v6::PACKET_TOO_BIG, 0, 1400u32.to_be_bytes()),
        ]
    } else {
        [
            (v4::DEST_UNREACHABLE, 3, [0; 4]),
            (v4::TIME_EXCEEDED, 0, [0; 4]),
            (
                v4::DEST_UNREACHABLE,
                v4::CODE_FRAG_NEEDED,
                [0, 0, 0x05, 0x78],
            ),
        ]
    }
}

/// NAT, reply path: the backend's reply (backend:8080 -> client) left
/// rampart as vip:80 -> client; a router on the client side reports on it
/// to the VIP. rampart hands the error to the backend.
fn nat_case(v6: bool, l4: L4, quote_limit: usize) -> Case {
    Case {
        l4,
        vlan: None,
        kind: kinds(v6)[0],
        orig: ((vip(v6), 80), (client(v6), 40000)),
        payload: (0..200u8).collect(),
        options: Vec::new(),
        udp_zero: false,
        quote_limit,
        outer: (router(v6), vip(v6)),
        new_outer: (None, Some(backend(v6))),
        new_quoted: (Some((backend(v6), 8080)), None),
    }
}

/// FullNAT, forward path: client:40000 -> vip:80 left rampart as
/// local:61000 -> backend:8080; a router on the backend side reports on it
/// to the local address. rampart hands the error to the client, from the
/// VIP, quoting the packet the client sent. Every part changes.
fn fullnat_case(v6: bool, l4: L4, quote_limit: usize) -> Case {
    Case {
        l4,
        vlan: Some(100),
        kind: kinds(v6)[1],
        orig: ((local(v6), 61000), (backend(v6), 8080)),
        payload: (0..200u8).rev().collect(),
        options: Vec::new(),
        udp_zero: false,
        quote_limit,
        outer: (router(v6), local(v6)),
        new_outer: (Some(vip(v6)), Some(client(v6))),
        new_quoted: (Some((client(v6), 40000)), Some((vip(v6), 80))),
    }
}

/// Quote lengths: the RFC 792 minimum (IP header + 8), TCP's checksum just
/// inside, a few hundred bytes, and more than the packet (the whole of it).
fn quote_limits(v6: bool) -> [usize; 4] {
    let ip = if v6 { 40 } else { 20 };
    [ip + 8, ip + 18, ip + 150, 10_000]
}

#[test]
fn translates_nat_and_fullnat_errors() {
    for v6 in [false, true] {
        for l4 in [L4::Tcp, L4::Udp] {
            for limit in quote_limits(v6) {
                for kind in kinds(v6) {
                    let mut c = nat_case(v6, l4, limit);
                    c.kind = kind;
                    c.run();
                    let mut c = fullnat_case(v6, l4, limit);
                    c.kind = kind;
                    c.run();
                }
            }
        }
    }
}

#[test]
fn each_part_alone() {
    for v6 in [false, true] {
        for l4 in [L4::Tcp, L4::Udp] {
            let full = fullnat_case(v6, l4, 10_000);
            let parts = [
                (full.new_outer.0, None, None, None),
                (None, full.new_outer.1, None, None),
                (None, None, full.new_quoted.0, None),
                (None, None, None, full.new_quoted.1),
                (None, None, None, None),
            ];
            for (os, od, qs, qd) in parts {
                let mut c = full.clone();
                c.new_outer = (os, od);
                c.new_quoted = (qs, qd);
                c.run();
            }
        }
    }
}

#[test]
fn truncated_quote_holds_only_the_ports_and_sequence() {
    // RFC 792's minimum: 8 transport bytes. TCP's checksum is not among
    // them, so only the ports change in the transport header.
    for v6 in [false, true] {
        let c = nat_case(v6, L4::Tcp, if v6 { 48 } else { 28 });
        let before = c.frame();
        let after = c.run();
        let q = usize::from(parse(&after).unwrap().l4_off) + HEADER_LEN + if v6 { 40 } else { 20 };
        assert_eq!(after.len() - q, 8);
        assert_ne!(after[q..q + 2], before[q..q + 2], "source port rewritten");
        assert_eq!(after[q + 2..q + 8], before[q + 2..q + 8]);
    }
}

#[test]
fn a_quote_ending_inside_the_transport_checksum() {
    // Found by `translate_matches_a_full_rebuild`: an odd-length quote that
    // holds one byte of the TCP or UDP checksum. That byte stays as it was
    // (see `Case::expected`) and the ICMP checksum still verifies.
    for v6 in [false, true] {
        let ip = if v6 { 40 } else { 20 };
        for (l4, at) in [(L4::Tcp, 16), (L4::Udp, 6)] {
            let c = fullnat_case(v6, l4, ip + at + 1);
            let before = c.frame();
            let f = c.run();
            let last = f.len() - 1;
            assert_eq!(f[last], before[last]);
        }
    }
}

#[test]
fn udp_zero_checksum_over_ipv4_stays_zero() {
    for limit in [28, 10_000] {
        for mut c in [
            nat_case(false, L4::Udp, limit),
            fullnat_case(false, L4::Udp, limit),
        ] {
            c.udp_zero = true;
            let f = c.run();
            let q = parse(&f).unwrap().l4_off as usize + HEADER_LEN + 20;
            assert_eq!(f[q + 6..q + 8], [0, 0]);
        }
    }
}

#[test]
fn quoted_ipv4_options_are_stepped_over() {
    // Record Route with room for one address, then end of options.
    let rr = [7, 7, 4, 0, 0, 0, 0, 0];
    for l4 in [L4::Tcp, L4::Udp] {
        for limit in [28 + 8, 10_000] {
            let mut c = fullnat_case(false, l4, limit);
            c.options = rr.to_vec();
            let f = c.run();
            let d = parse(&f).unwrap();
            let q = quoted(&f, &d).unwrap();
            assert_eq!(q.l4_off - q.l3_off, 28);
        }
    }
}

#[test]
fn quote_stops_at_the_quoted_length() {
    // Bytes after the quoted packet (here: zero padding, as RFC 4884 adds
    // before extensions) are not its transport header.
    for v6 in [false, true] {
        let c = nat_case(v6, L4::Udp, 10_000);
        let mut orig = c.offending(c.orig.0, c.orig.1);
        let n = orig.len();
        orig.extend_from_slice(&[0; 24]);
        let f = icmp_frame(None, c.outer.0, c.outer.1, c.kind, &orig);
        let d = parse(&f).unwrap();
        let q = quoted(&f, &d).unwrap();
        assert_eq!(usize::from(q.l4_avail), n - if v6 { 40 } else { 20 });
    }
}

#[test]
fn quoted_refusals() {
    for v6 in [false, true] {
        let c = nat_case(v6, L4::Udp, 10_000);
        let orig = c.offending(c.orig.0, c.orig.1);
        let ip = if v6 { 40 } else { 20 };
        let err = |body: &[u8]| icmp_frame(None, c.outer.0, c.outer.1, c.kind, body);
        let none = |f: &[u8]| quoted(f, &parse(f).unwrap());

        // The IP header and 3 transport bytes: not both ports.
        assert_eq!(none(&err(&orig[..ip + 3])), None);
        assert!(none(&err(&orig[..ip + 4])).is_some());
        // Not even a whole IP header.
        assert_eq!(none(&err(&orig[..ip - 1])), None);
        // The other family's packet.
        let other = nat_case(!v6, L4::Udp, 10_000);
        assert_eq!(
            none(&err(&other.offending(other.orig.0, other.orig.1))),
            None
        );
        // A quoted ICMP message (an error about a ping, say).
        let mut icmp = orig.clone();
        icmp[if v6 { 6 } else { 9 }] = if v6 { proto::ICMPV6 } else { proto::ICMP };
        assert_eq!(none(&err(&icmp)), None);
        // Not an error: an echo request carrying the same bytes.
        let echo = if v6 {
            v6::ECHO_REQUEST
        } else {
            v4::ECHO_REQUEST
        };
        let f = icmp_frame(None, c.outer.0, c.outer.1, (echo, 0, [0; 4]), &orig);
        assert_eq!(none(&f), None);
    }

    // IPv4: a fragment past the first carries no ports.
    let c = nat_case(false, L4::Udp, 10_000);
    let mut frag = c.offending(c.orig.0, c.orig.1);
    frag[6..8].copy_from_slice(&[0x20, 0x10]); // MF, offset 16 * 8
    let f = icmp_frame(None, c.outer.0, c.outer.1, c.kind, &frag);
    assert_eq!(quoted(&f, &parse(&f).unwrap()), None);

    // IPv6: a Hop-by-Hop header (PadN) in front of UDP.
    let c = nat_case(true, L4::Udp, 10_000);
    let orig = c.offending(c.orig.0, c.orig.1);
    let mut ext = orig[..40].to_vec();
    ext[6] = 0; // Hop-by-Hop Options
    let len = u16::from_be_bytes([ext[4], ext[5]]) + 8;
    ext[4..6].copy_from_slice(&len.to_be_bytes());
    ext.extend_from_slice(&[proto::UDP, 0, 1, 4, 0, 0, 0, 0]);
    ext.extend_from_slice(&orig[40..]);
    let f = icmp_frame(None, c.outer.0, c.outer.1, c.kind, &ext);
    assert_eq!(quoted(&f, &parse(&f).unwrap()), None);
}

#[test]
fn translate_refusals_change_nothing() {
    for v6 in [false, true] {
        let c = fullnat_case(v6, L4::Tcp, 10_000);
        let f = c.frame();
        let d = parse(&f).unwrap();
        let q = quoted(&f, &d).unwrap();
        let other = client(!v6);
        let refuse = |d: &FlowDesc, q: &Quoted, os, od, qs, qd| {
            let mut g = f.clone();
            assert!(!translate_error(&mut g, d, q, os, od, qs, qd));
            assert_eq!(g, f);
        };
        // An address of the other family, in each position.
        let (os, od) = c.new_outer;
        let (qs, qd) = c.new_quoted;
        refuse(&d, &q, Some(other), od, qs, qd);
        refuse(&d, &q, os, Some(other), qs, qd);
        refuse(&d, &q, os, od, Some((other, 1)), qd);
        refuse(&d, &q, os, od, qs, Some((other, 1)));
        // A quote that is not where `quoted` puts it, or reaches past the message.
        for bad in [
            Quoted {
                l3_off: q.l3_off + 4,
                ..q
            },
            Quoted {
                l4_off: q.l4_off + 2,
                ..q
            },
            Quoted {
                l4_off: q.l3_off,
                ..q
            },
            Quoted {
                l4_avail: q.l4_avail + 1,
                ..q
            },
            Quoted { l4_avail: 3, ..q },
            Quoted {
                key: FlowKey {
                    proto: proto::ICMP,
                    ..q.key
                },
                ..q
            },
        ] {
            refuse(&d, &bad, os, od, qs, qd);
        }
        // Not an error.
        let echo = FlowDesc {
            icmp_type: if v6 {
                v6::ECHO_REQUEST
            } else {
                v4::ECHO_REQUEST
            },
            ..d
        };
        refuse(&echo, &q, os, od, qs, qd);
        // A descriptor of the other family.
        let wrong = FlowDesc {
            l3: if v6 { L3Kind::Ipv4 } else { L3Kind::Ipv6 },
            ..d
        };
        refuse(&wrong, &q, None, None, qs, None);
    }
}

#[test]
fn a_bad_icmp_checksum_stays_bad() {
    // rampart does not vouch for an error it never verified: the message
    // is off by exactly as much after the translation as before, so its
    // receiver still sees the damage (and drops the error).
    for v6 in [false, true] {
        for limit in [48, 10_000] {
            let c = fullnat_case(v6, L4::Udp, limit);
            let mut f = c.frame();
            let d = parse(&f).unwrap();
            let (at, end) = (usize::from(d.l4_off), usize::from(d.l4_off + d.l4_len));
            f[at + 2] ^= 0x5a;
            let icmp_sum = |f: &[u8], src: Addr, dst: Addr| {
                if v6 {
                    ones_sum(&with_pseudo(src, dst, proto::ICMPV6, &f[at..end]))
                } else {
                    ones_sum(&f[at..end])
                }
            };
            let before = icmp_sum(&f, c.outer.0, c.outer.1);
            assert_ne!(before, 0xffff);
            let q = quoted(&f, &d).unwrap();
            assert!(c.translate(&mut f, &d, &q));
            let (src, dst) = (c.new_outer.0.unwrap(), c.new_outer.1.unwrap());
            assert_eq!(icmp_sum(&f, src, dst), before);
            // Everything else is what a correct error would have become.
            let want = c.expected();
            assert_eq!(f[..at + 2], want[..at + 2]);
            assert_eq!(f[at + 4..], want[at + 4..]);
        }
    }
}

// ---- echo -------------------------------------------------------------------

const ECHO_DATA: &[u8] = b"rampart ping payload";

fn echo(request: bool, v6: bool, vlan: Option<u16>, ttl: u8, data: &[u8]) -> Vec<u8> {
    // A request goes client -> VIP; its reply VIP -> client, from our MAC.
    let (src, dst, smac, dmac) = if request {
        (client(v6), vip(v6), PEER, OUR)
    } else {
        (vip(v6), client(v6), OUR, PEER)
    };
    let b = link(smac, dmac, vlan, ip_hdr(src, dst, ttl, &[]));
    let mut out = Vec::new();
    match (v6, request) {
        (false, true) => b.icmpv4_echo_request(0x4242, 7).write(&mut out, data),
        (false, false) => b.icmpv4_echo_reply(0x4242, 7).write(&mut out, data),
        (true, true) => b.icmpv6_echo_request(0x4242, 7).write(&mut out, data),
        (true, false) => b.icmpv6_echo_reply(0x4242, 7).write(&mut out, data),
    }
    .unwrap();
    out
}

#[test]
fn echo_reply_v4_v6_with_and_without_vlan() {
    for v6 in [false, true] {
        for vlan in [None, Some(4000)] {
            for data in [ECHO_DATA, b"odd" as &[u8], &[]] {
                let mut f = echo(true, v6, vlan, 57, data);
                // Short frames arrive padded to the Ethernet minimum; the
                // padding is not part of the message.
                let pad = 64usize.saturating_sub(f.len());
                f.extend(std::iter::repeat_n(0xee, pad));
                let d = parse(&f).unwrap();
                assert!(echo_reply_in_place(&mut f, &d, OUR, 64));
                let mut want = echo(false, v6, vlan, 64, data);
                want.extend(std::iter::repeat_n(0xee, pad));
                assert_eq!(f, want, "v6 {v6} vlan {vlan:?} data {}", data.len());

                let s = SlicedPacket::from_ethernet(&f).unwrap();
                match s.transport {
                    Some(TransportSlice::Icmpv4(i)) => {
                        assert!(!v6);
                        assert_eq!(i.checksum(), i.icmp_type().calc_checksum(i.payload()));
                    }
                    Some(TransportSlice::Icmpv6(i)) => {
                        assert!(v6);
                        let c = i
                            .icmp_type()
                            .calc_checksum(vip(v6).v6_octets(), client(v6).v6_octets(), i.payload())
                            .unwrap();
                        assert_eq!(i.checksum(), c);
                    }
                    other => panic!("{other:?}"),
                }
                let d2 = parse(&f).unwrap();
                let l3 = usize::from(d2.l3_off);
                if !v6 {
                    assert!(sums_ok(&f[l3..l3 + 20]));
                }
            }
        }
    }
}

#[test]
fn echo_with_a_nonzero_code_gets_code_zero() {
    for v6 in [false, true] {
        let ty = if v6 {
            v6::ECHO_REQUEST
        } else {
            v4::ECHO_REQUEST
        };
        let mut f = icmp_frame(
            Some(9),
            client(v6),
            vip(v6),
            (ty, 3, [0x42, 0x42, 0, 7]),
            ECHO_DATA,
        );
        let d = parse(&f).unwrap();
        assert!(echo_reply_in_place(&mut f, &d, OUR, 250));
        assert_eq!(f, echo(false, v6, Some(9), 250, ECHO_DATA));
    }
}

#[test]
fn echo_refusals_change_nothing() {
    for v6 in [false, true] {
        // An echo reply, an error, and a request whose bytes disagree with `d`.
        let reply = echo(false, v6, None, 64, ECHO_DATA);
        let c = nat_case(v6, L4::Udp, 10_000);
        let error = c.frame();
        for f in [reply, error] {
            let d = parse(&f).unwrap();
            let mut g = f.clone();
            assert!(!echo_reply_in_place(&mut g, &d, OUR, 64));
            assert_eq!(g, f);
        }
        let f = echo(true, v6, None, 64, ECHO_DATA);
        let d = parse(&f).unwrap();
        let mut g = f.clone();
        let at = usize::from(d.l4_off);
        g[at] = 0;
        let before = g.clone();
        assert!(!echo_reply_in_place(&mut g, &d, OUR, 64));
        assert_eq!(g, before);
        // Truncated below what `d` says.
        let mut short = f[..f.len() - 1].to_vec();
        assert!(!echo_reply_in_place(&mut short, &d, OUR, 64));
        assert_eq!(short, f[..f.len() - 1]);
    }
}

// ---- packet too big ---------------------------------------------------------

/// A client's TCP packet to the VIP of `ip_total` IP bytes.
fn big_packet(v6: bool, vlan: Option<u16>, ip_total: usize) -> Vec<u8> {
    let ip = if v6 { 40 } else { 20 };
    let payload: Vec<u8> = (0..ip_total - ip - 20).map(|i| i as u8).collect();
    let mut out = Vec::new();
    link(PEER, OUR, vlan, ip_hdr(client(v6), vip(v6), 64, &[]))
        .tcp(40000, 443, 1, 65535)
        .ack(2)
        .write(&mut out, &payload)
        .unwrap();
    out
}

/// The too-big error etherparse builds: from the VIP to the client, on the
/// same VLAN, quoting `quote`.
fn expected_too_big(v6: bool, vlan: Option<u16>, mtu: u32, ttl: u8, quote: &[u8]) -> Vec<u8> {
    let (from, to) = (vip(v6), client(v6));
    let mut out = Vec::new();
    if v6 {
        let ip = IpHeaders::Ipv6(
            Ipv6Header {
                traffic_class: 0,
                flow_label: Default::default(),
                payload_length: 0,
                next_header: IpNumber::IPV6_ICMP,
                hop_limit: ttl,
                source: from.v6_octets(),
                destination: to.v6_octets(),
            },
            Default::default(),
        );
        link(OUR, PEER, vlan, ip)
            .icmpv6(Icmpv6Type::PacketTooBig { mtu })
            .write(&mut out, quote)
            .unwrap();
    } else {
        let mut h =
            Ipv4Header::new(0, ttl, IpNumber::ICMP, from.v4_octets(), to.v4_octets()).unwrap();
        h.dscp = IpDscp::CS6;
        h.dont_fragment = false;
        h.identification = 0;
        let ty = Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
            next_hop_mtu: mtu as u16,
        });
        link(OUR, PEER, vlan, IpHeaders::Ipv4(h, Default::default()))
            .icmpv4(ty)
            .write(&mut out, quote)
            .unwrap();
    }
    out
}

#[test]
fn too_big_for_large_and_small_packets() {
    // (family, IP bytes of the original, IP bytes the error must quote)
    // The quote limits: 576 - 20 - 8 = 548 for IPv4, 1280 - 40 - 8 = 1232
    // for IPv6.
    let rows = [
        (false, 1500, 548),
        (false, 9000, 548),
        (false, 548, 548),
        (false, 100, 100),
        (true, 1500, 1232),
        (true, 9000, 1232),
        (true, 200, 200),
    ];
    for (v6, total, quoted_len) in rows {
        for vlan in [None, Some(100)] {
            let orig = big_packet(v6, vlan, total);
            let d = parse(&orig).unwrap();
            let l3 = usize::from(d.l3_off);
            let mut out = vec![0xa5u8; 10_000];
            let len = write_too_big(&mut out, &orig, &d, vip(v6), 1400, 64, OUR).unwrap();
            let want = expected_too_big(v6, vlan, 1400, 64, &orig[l3..l3 + quoted_len]);
            assert_eq!(out[..len], want[..], "v6 {v6} total {total} vlan {vlan:?}");
            assert!(out[len..].iter().all(|b| *b == 0xa5));
            let ip_total = len - l3;
            assert!(ip_total <= if v6 { 1280 } else { 576 });
            check_error_sums(&out[..len]);
        }
    }
}

#[test]
fn too_big_quote_excludes_ethernet_padding() {
    let mut orig = Vec::new();
    link(PEER, OUR, None, ip_hdr(client(false), vip(false), 64, &[]))
        .udp(5353, 53)
        .write(&mut orig, b"x")
        .unwrap();
    assert_eq!(orig.len(), 14 + 29);
    orig.resize(60, 0);
    let d = parse(&orig).unwrap();
    let mut out = [0u8; 200];
    let len = write_too_big(&mut out, &orig, &d, vip(false), 1280, 64, OUR).unwrap();
    assert_eq!(
        out[..len],
        expected_too_big(false, None, 1280, 64, &orig[14..43])[..]
    );
}

#[test]
fn too_big_quote_shrinks_to_the_buffer() {
    for v6 in [false, true] {
        let orig = big_packet(v6, Some(7), 1500);
        let d = parse(&orig).unwrap();
        let l3 = usize::from(d.l3_off);
        let hdrs = l3 + if v6 { 48 } else { 28 };
        // Room for 150 quoted bytes.
        let mut out = vec![0u8; hdrs + 150];
        let len = write_too_big(&mut out, &orig, &d, vip(v6), 1400, 9, OUR).unwrap();
        assert_eq!(len, out.len());
        assert_eq!(
            out,
            expected_too_big(v6, Some(7), 1400, 9, &orig[l3..l3 + 150])
        );

        // The least it accepts: the quoted IP and TCP headers' first 8 bytes.
        let least = hdrs + if v6 { 48 } else { 28 };
        let mut out = vec![0x11u8; least];
        assert_eq!(
            write_too_big(&mut out, &orig, &d, vip(v6), 1400, 9, OUR),
            Some(least)
        );
        check_error_sums(&out);
        let mut out = vec![0x11u8; least - 1];
        assert_eq!(
            write_too_big(&mut out, &orig, &d, vip(v6), 1400, 9, OUR),
            None
        );
        assert!(out.iter().all(|b| *b == 0x11));
    }
}

#[test]
fn too_big_mtu_fields() {
    // IPv4's field is 16 bits; IPv6's is 32.
    let orig = big_packet(false, None, 1500);
    let d = parse(&orig).unwrap();
    let mut out = [0u8; 1000];
    let len = write_too_big(&mut out, &orig, &d, vip(false), 70_000, 64, OUR).unwrap();
    assert_eq!(out[34 + 6..34 + 8], [0xff, 0xff]);
    check_error_sums(&out[..len]);
    let orig = big_packet(true, None, 1500);
    let d = parse(&orig).unwrap();
    let mut out = [0u8; 2000];
    let len = write_too_big(&mut out, &orig, &d, vip(true), 70_000, 64, OUR).unwrap();
    assert_eq!(out[54 + 4..54 + 8], 70_000u32.to_be_bytes());
    check_error_sums(&out[..len]);
}

#[test]
fn too_big_refusals_leave_out_alone() {
    for v6 in [false, true] {
        let orig = big_packet(v6, None, 1500);
        let d = parse(&orig).unwrap();
        let mut out = [0x33u8; 2000];
        // `from` of the other family.
        assert_eq!(
            write_too_big(&mut out, &orig, &d, vip(!v6), 1400, 64, OUR),
            None
        );
        // An error about an error.
        let err = nat_case(v6, L4::Udp, 10_000).frame();
        let de = parse(&err).unwrap();
        assert_eq!(
            write_too_big(&mut out, &err, &de, vip(v6), 1400, 64, OUR),
            None
        );
        // A descriptor that promises more than `orig` holds.
        assert_eq!(
            write_too_big(&mut out, &orig[..100], &d, vip(v6), 1400, 64, OUR),
            None
        );
        assert!(out.iter().all(|b| *b == 0x33));
        // An echo request is not an error: it may be answered.
        let ping = echo(true, v6, None, 64, ECHO_DATA);
        let dp = parse(&ping).unwrap();
        assert!(write_too_big(&mut out, &ping, &dp, vip(v6), 1400, 64, OUR).is_some());
    }
    let arp = crate::gen::arp_request(PEER, client(false), vip(false));
    let d = parse(&arp).unwrap();
    let mut out = [0u8; 200];
    assert_eq!(
        write_too_big(&mut out, &arp, &d, vip(false), 1400, 64, OUR),
        None
    );
}

// ---- properties -------------------------------------------------------------

fn arb_addr(v6: bool) -> impl Strategy<Value = Addr> {
    any::<[u8; 16]>().prop_map(move |b| {
        if v6 {
            // Keep clear of the v4-mapped prefix.
            let mut b = b;
            b[0] = 0x20;
            Addr::from_v6(b)
        } else {
            Addr::from_v4([b[0], b[1], b[2], b[3]])
        }
    })
}

fn arb_case() -> impl Strategy<Value = Case> {
    any::<bool>().prop_flat_map(|v6| {
        let ep = move || (arb_addr(v6), any::<u16>());
        (
            (
                any::<bool>(),
                proptest::option::of(0u16..4096),
                0usize..3,
                any::<bool>(),
            ),
            (ep(), ep(), proptest::collection::vec(any::<u8>(), 0..80)),
            (0usize..200, arb_addr(v6), arb_addr(v6)),
            (
                proptest::option::of(arb_addr(v6)),
                proptest::option::of(arb_addr(v6)),
                proptest::option::of(ep()),
                proptest::option::of(ep()),
            ),
        )
            .prop_map(
                move |((tcp, vlan, kind, zero), (s, d, payload), (limit, os, od), new)| {
                    let l4 = if tcp { L4::Tcp } else { L4::Udp };
                    let ip = if v6 { 40 } else { 20 };
                    Case {
                        l4,
                        vlan,
                        kind: kinds(v6)[kind],
                        orig: (s, d),
                        payload,
                        options: Vec::new(),
                        udp_zero: zero && !v6 && l4 == L4::Udp,
                        // From the RFC 792 minimum up to past the end.
                        quote_limit: ip + 8 + limit,
                        outer: (os, od),
                        new_outer: (new.0, new.1),
                        new_quoted: (new.2, new.3),
                    }
                },
            )
    })
}

proptest! {
    /// Every translation, of any quote length, equals the error built
    /// from scratch about the rewritten packet.
    #[test]
    fn translate_matches_a_full_rebuild(c in arb_case()) {
        c.run();
    }

    #[test]
    fn random_bytes_never_panic(
        mut bytes in proptest::collection::vec(any::<u8>(), 0..200),
        a in arb_addr(false), b in arb_addr(true), ports in any::<(u16, u16)>(),
        l3 in 0u8..3, offs in any::<(u16, u16, u16)>(), qoffs in any::<(u16, u16, u16)>(),
        icmp_type in any::<u8>(), proto_byte in any::<u8>(), out_len in 0usize..1500,
    ) {
        let len = bytes.len();
        let foreign = FlowDesc {
            l3: [L3Kind::Arp, L3Kind::Ipv4, L3Kind::Ipv6][usize::from(l3)],
            l3_off: offs.0 % 256,
            l4_off: offs.1 % 256,
            l4_len: offs.2 % 256,
            icmp_type,
            key: FlowKey { proto: proto_byte, ..FlowKey::default() },
            ..FlowDesc::default()
        };
        let mut descs = vec![foreign];
        if let Ok(d) = parse(&bytes) {
            descs.push(d);
        }
        for d in descs {
            let mut qs = vec![Quoted {
                l3_off: qoffs.0 % 256,
                l4_off: qoffs.1 % 256,
                l4_avail: qoffs.2 % 256,
                key: FlowKey { proto: proto_byte, ..FlowKey::default() },
            }];
            if let Some(q) = quoted(&bytes, &d) {
                prop_assert!(usize::from(q.l4_off) + usize::from(q.l4_avail) <= len);
                qs.push(q);
            }
            for q in qs {
                for x in [a, b] {
                    let _ = translate_error(&mut bytes, &d, &q, Some(x), Some(x),
                                            Some((x, ports.0)), Some((x, ports.1)));
                }
            }
            let _ = echo_reply_in_place(&mut bytes, &d, OUR, 64);
            let mut out = vec![0u8; out_len];
            for from in [a, b] {
                if let Some(n) = write_too_big(&mut out, &bytes, &d, from, 1280, 64, OUR) {
                    prop_assert!(n <= out_len);
                }
            }
            prop_assert_eq!(bytes.len(), len);
        }
    }

    /// Errors damaged at a few random bytes: whatever still parses is
    /// either translated or left exactly as it was.
    #[test]
    fn damaged_errors_never_panic(
        c in arb_case(),
        hits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..4),
        cut in any::<u16>(),
    ) {
        let mut f = c.frame();
        for (at, v) in hits {
            let i = usize::from(at) % f.len();
            f[i] = v;
        }
        f.truncate(f.len() - usize::from(cut) % 8);
        if let Ok(d) = parse(&f) {
            if let Some(q) = quoted(&f, &d) {
                let before = f.clone();
                if !c.translate(&mut f, &d, &q) {
                    prop_assert_eq!(&f, &before);
                }
            }
            let mut out = [0u8; 600];
            let _ = write_too_big(&mut out, &f, &d, c.outer.0, 1280, 64, OUR);
        }
    }
}
