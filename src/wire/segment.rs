//! Writing a bare TCP segment (no payload) over the headers of an existing
//! frame: the SYN proxy answers a client's SYN with a SYN-ACK in the same
//! buffer, and builds its SYN to the backend from a copy of the client's
//! ACK headers.
//!
//! The Ethernet header keeps its EtherType and any single 802.1Q tag (the
//! answer goes back out on the VLAN it came in on); [`write`] sets the MACs
//! and rewrites every byte of the IP and TCP headers from the [`Segment`]:
//! IPv4 as RFC 791 with no options, TOS 0, ID 0 and DF set (RFC 6864 §4.1:
//! an atomic datagram's ID carries nothing), IPv6 as RFC 8200 §3 with zero
//! traffic class and flow label, TCP as RFC 9293 §3.1. Both checksums are
//! computed in full: nothing of the old headers survives to update from.
//!
//! Invariant: `write` checks the address family and the room in the buffer
//! before its first store, so a refused call leaves the buffer untouched;
//! it never panics or allocates.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::checksum;
use super::{ipv4, ipv6, tcp, write_bytes, write_u16, write_u32, write_u8};
use crate::flow::{proto, Addr, FlowDesc, L3Kind, Mac};

/// Byte offsets of the header fields `write` fills that the views do not
/// name (the views cover only fields that forwarding rewrites).
mod field {
    use core::ops::Range;

    pub mod v4 {
        use super::Range;
        pub const VER_IHL: usize = 0;
        pub const TOS: usize = 1;
        pub const TOTAL_LEN: Range<usize> = 2..4;
        pub const IDENT: Range<usize> = 4..6;
        pub const FLAGS_FRAG: Range<usize> = 6..8;
        pub const TTL: usize = 8;
        pub const PROTOCOL: usize = 9;
        pub const CHECKSUM: Range<usize> = 10..12;
        pub const SRC: Range<usize> = 12..16;
        pub const DST: Range<usize> = 16..20;
    }

    pub mod v6 {
        use super::Range;
        pub const VER_TC_FLOW: Range<usize> = 0..4;
        pub const PAYLOAD_LEN: Range<usize> = 4..6;
        pub const NEXT_HEADER: usize = 6;
        pub const HOP_LIMIT: usize = 7;
        pub const SRC: Range<usize> = 8..24;
        pub const DST: Range<usize> = 24..40;
    }

    pub mod tcp {
        pub const OPTIONS: usize = 20;
    }
}

/// A sum of 16-bit words (below 2^40) brought to 32 bits, congruent mod
/// 0xffff, as [`checksum::finish`] takes it.
#[inline]
fn reduce(s: u64) -> u32 {
    let s = (s & 0xffff_ffff) + (s >> 32);
    ((s & 0xffff_ffff) + (s >> 32)) as u32
}

/// Version 4, IHL 5 words.
const V4_VER_IHL: u8 = 0x45;
/// Don't Fragment, offset 0.
const V4_DF: u16 = 0x4000;
/// Version 6, traffic class 0, flow label 0.
const V6_VER_TC_FLOW: u32 = 0x6000_0000;

/// One TCP segment without payload. `options` are already encoded (see
/// [`super::tcpopt::encode`]): a multiple of 4 bytes, at most 40.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    pub src: (Addr, u16),
    pub dst: (Addr, u16),
    pub seq: u32,
    pub ack: u32,
    /// [`crate::flow::tcp_flags`] bits.
    pub flags: u8,
    pub window: u16,
    pub options: &'a [u8],
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    pub src_mac: Mac,
    pub dst_mac: Mac,
}

/// Writes `seg` over the frame at the start of `buf`, which `d` describes
/// (IPv4 or IPv6, of the same family as both of `seg`'s addresses). `buf`
/// is the room available: the frame itself when rewriting in place, or a
/// larger buffer the caller copied the frame's headers into. Returns the
/// new frame length, `l3_off` + IP header + 20 + options; or `None`,
/// leaving `buf` untouched, on a family mismatch, options that are not a
/// multiple of 4 or longer than 40 bytes, too little room, or a descriptor
/// whose IP header does not leave room for the Ethernet header before it.
pub fn write(buf: &mut [u8], d: &FlowDesc, seg: &Segment) -> Option<usize> {
    write_data(buf, d, seg, &[])
}

/// [`write`] with `payload` after the TCP header: the segment the PROXY
/// protocol header travels in. The IP length and both checksums cover it;
/// the returned length includes it. `None`, leaving `buf` untouched, also
/// when the payload does not fit `buf` or the IP length field.
pub fn write_data(buf: &mut [u8], d: &FlowDesc, seg: &Segment, payload: &[u8]) -> Option<usize> {
    let v4 = match d.l3 {
        L3Kind::Ipv4 => true,
        L3Kind::Ipv6 => false,
        L3Kind::Arp => return None,
    };
    if seg.src.0.is_v4() != v4 || seg.dst.0.is_v4() != v4 {
        return None;
    }
    let opt_len = seg.options.len();
    if opt_len % 4 != 0 || opt_len > super::tcpopt::MAX_LEN {
        return None;
    }
    let l3_off = usize::from(d.l3_off);
    let ip_len = if v4 {
        ipv4::HEADER_LEN
    } else {
        ipv6::HEADER_LEN
    };
    let hdr_len = tcp::HEADER_LEN + opt_len;
    let tcp_len = hdr_len + payload.len();
    if ip_len + tcp_len > usize::from(u16::MAX) {
        return None;
    }
    let end = l3_off + ip_len + tcp_len;
    // Only the Ethernet header is kept; it must precede the IP header.
    if l3_off < super::ethernet::HEADER_LEN {
        return None;
    }
    let (ip, l4) = buf.get_mut(l3_off..end)?.split_at_mut_checked(ip_len)?;

    // Both checksums come from the field values, not from reading back the
    // bytes just stored: a wide load over narrow stores stalls on store
    // forwarding, which made summing the written headers the slowest part
    // of a SYN cookie answer. `hdr_len` is at most 60 and `tcp_len` fits 16
    // bits (checked above), so casts are exact.
    let flags_word = (((hdr_len / 4) as u16) << 12) | u16::from(seg.flags);
    let tcp_fields = u64::from(seg.src.1)
        + u64::from(seg.dst.1)
        + u64::from(seg.seq >> 16)
        + u64::from(seg.seq & 0xffff)
        + u64::from(seg.ack >> 16)
        + u64::from(seg.ack & 0xffff)
        + u64::from(flags_word)
        + u64::from(seg.window);
    let pseudo = if v4 {
        checksum::pseudo_v4(
            seg.src.0.v4_octets(),
            seg.dst.0.v4_octets(),
            proto::TCP,
            tcp_len as u16,
        )
    } else {
        checksum::pseudo_v6(&seg.src.0 .0, &seg.dst.0 .0, proto::TCP, tcp_len as u32)
    };
    // The options are a multiple of 4 bytes: the payload's words start on
    // an even offset, so the two sums chain.
    let tcp_sum = checksum::sum(payload, checksum::sum(seg.options, pseudo));
    let c = checksum::finish(reduce(u64::from(tcp_sum) + tcp_fields));

    write_u16(l4, tcp::field::SRC_PORT, seg.src.1);
    write_u16(l4, tcp::field::DST_PORT, seg.dst.1);
    write_u32(l4, tcp::field::SEQ, seg.seq);
    write_u32(l4, tcp::field::ACK, seg.ack);
    // Data offset in 32-bit words; the reserved and AE bits are zero.
    write_u16(l4, tcp::field::DATA_OFF..tcp::field::FLAGS + 1, flags_word);
    write_u16(l4, tcp::field::WINDOW, seg.window);
    write_u16(l4, tcp::field::CHECKSUM, c);
    write_u16(l4, tcp::field::URGENT, 0);
    write_bytes(l4, field::tcp::OPTIONS..hdr_len, seg.options);
    write_bytes(l4, hdr_len..tcp_len, payload);

    if v4 {
        use field::v4::*;
        let total = (ip_len + tcp_len) as u16;
        let ttl_proto = u16::from(seg.ttl) << 8 | u16::from(proto::TCP);
        let [a, b, c2, d2] = seg.src.0.v4_octets();
        let [e, f, g, h] = seg.dst.0.v4_octets();
        let sum = u64::from(u16::from(V4_VER_IHL) << 8)
            + u64::from(total)
            + u64::from(V4_DF)
            + u64::from(ttl_proto)
            + u64::from(u16::from_be_bytes([a, b]))
            + u64::from(u16::from_be_bytes([c2, d2]))
            + u64::from(u16::from_be_bytes([e, f]))
            + u64::from(u16::from_be_bytes([g, h]));
        write_u16(ip, VER_IHL..TOS + 1, u16::from(V4_VER_IHL) << 8);
        write_u16(ip, TOTAL_LEN, total);
        write_u16(ip, IDENT, 0);
        write_u16(ip, FLAGS_FRAG, V4_DF);
        write_u16(ip, TTL..PROTOCOL + 1, ttl_proto);
        write_u16(ip, CHECKSUM, checksum::finish(reduce(sum)));
        write_bytes(ip, SRC, &[a, b, c2, d2]);
        write_bytes(ip, DST, &[e, f, g, h]);
    } else {
        use field::v6::*;
        write_u32(ip, VER_TC_FLOW, V6_VER_TC_FLOW);
        write_u16(ip, PAYLOAD_LEN, tcp_len as u16);
        write_u8(ip, NEXT_HEADER, proto::TCP);
        write_u8(ip, HOP_LIMIT, seg.ttl);
        write_bytes(ip, SRC, &seg.src.0 .0);
        write_bytes(ip, DST, &seg.dst.0 .0);
    }

    super::rewrite::set_macs(buf, seg.src_mac, seg.dst_mac);
    Some(end)
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
mod tests {
    //! Expected frames come from [`crate::gen`] (hand-built headers and
    //! checksums, no code shared with `wire`).

    use super::*;
    use crate::flow::tcp_flags;
    use crate::gen::{self, Eth, TcpSeg};
    use crate::wire::{parse, tcpopt};
    use proptest::prelude::*;

    const CLIENT_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x0c]);
    const OUR_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
    const BACKEND_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x0b]);

    fn ep(v6: bool, last: u8) -> Addr {
        if v6 {
            let mut a = [0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            a[15] = last;
            Addr::from_v6(a)
        } else {
            Addr::from_v4([198, 18, 51, last])
        }
    }

    /// The client's SYN to the VIP, as it arrives (IP ID and TTL of a real
    /// client, so the test sees `write` replace them).
    fn client_syn(v6: bool, vlan: Option<u16>, payload: &[u8]) -> Vec<u8> {
        let eth = Eth {
            src: CLIENT_MAC,
            dst: OUR_MAC,
            vlan,
        };
        let seg = TcpSeg {
            sport: 40000,
            dport: 443,
            seq: 0x1111_1111,
            ack: 0,
            flags: tcp_flags::SYN,
            window: 64240,
            options: gen::tcp_opts(Some(1460), Some(7), true, Some((0xdead_beef, 0))),
            payload: payload.to_vec(),
        };
        gen::tcp(&eth, ep(v6, 7), ep(v6, 10), 57, 0x4242, &seg)
    }

    /// What `write` must produce for `s` on a frame with `vlan`: gen's
    /// frame with IP ID 0 and no payload.
    fn expected(s: &Segment, vlan: Option<u16>) -> Vec<u8> {
        let eth = Eth {
            src: s.src_mac,
            dst: s.dst_mac,
            vlan,
        };
        let seg = TcpSeg {
            sport: s.src.1,
            dport: s.dst.1,
            seq: s.seq,
            ack: s.ack,
            flags: s.flags,
            window: s.window,
            options: s.options.to_vec(),
            payload: Vec::new(),
        };
        gen::tcp(&eth, s.src.0, s.dst.0, s.ttl, 0, &seg)
    }

    fn syn_ack<'a>(v6: bool, opts: &'a [u8]) -> Segment<'a> {
        Segment {
            src: (ep(v6, 10), 443),
            dst: (ep(v6, 7), 40000),
            seq: 0x5eed_0000,
            ack: 0x1111_1112,
            flags: tcp_flags::SYN | tcp_flags::ACK,
            window: 65535,
            options: opts,
            ttl: 64,
            src_mac: OUR_MAC,
            dst_mac: CLIENT_MAC,
        }
    }

    #[test]
    fn syn_ack_in_place_matches_gen() {
        let mut opts = [0; tcpopt::MAX_LEN];
        for (v6, vlan) in [
            (false, None),
            (false, Some(100)),
            (true, None),
            (true, Some(7)),
        ] {
            for n in [
                tcpopt::encode(&mut opts, Some(1400), Some(9), true, Some((7, 0xdead_beef))),
                tcpopt::encode(&mut opts, Some(1400), None, false, None),
                0,
            ] {
                let mut f = client_syn(v6, vlan, b"");
                let d = parse(&f).unwrap();
                let s = syn_ack(v6, &opts[..n]);
                let len = write(&mut f, &d, &s).unwrap();
                assert!(len <= f.len());
                f.truncate(len);
                assert_eq!(f, expected(&s, vlan), "v6 {v6} vlan {vlan:?} opts {n}");
            }
        }
    }

    /// A segment with data (the PROXY header's), odd and even lengths,
    /// with and without options, written into a buffer larger than the
    /// frame: gen's frame with that payload, both checksums over it.
    #[test]
    fn data_segment_matches_gen() {
        let mut opts = [0; tcpopt::MAX_LEN];
        for (v6, vlan) in [(false, None), (false, Some(100)), (true, None)] {
            for payload in [
                &b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c0123456789ab"[..],
                b"odd",
            ] {
                for n in [tcpopt::encode_ts_only(&mut opts, 11, 22), 0] {
                    let f = client_syn(v6, vlan, b"");
                    let d = parse(&f).unwrap();
                    let mut buf = [0x5au8; 2048];
                    buf[..f.len()].copy_from_slice(&f);
                    let s = Segment {
                        flags: tcp_flags::ACK | tcp_flags::PSH,
                        ..syn_ack(v6, &opts[..n])
                    };
                    let len = write_data(&mut buf, &d, &s, payload).unwrap();
                    let mut want = expected(&s, vlan);
                    want.clear();
                    let eth = Eth {
                        src: s.src_mac,
                        dst: s.dst_mac,
                        vlan,
                    };
                    let seg = TcpSeg {
                        sport: s.src.1,
                        dport: s.dst.1,
                        seq: s.seq,
                        ack: s.ack,
                        flags: s.flags,
                        window: s.window,
                        options: s.options.to_vec(),
                        payload: payload.to_vec(),
                    };
                    want.extend(gen::tcp(&eth, s.src.0, s.dst.0, s.ttl, 0, &seg));
                    assert_eq!(&buf[..len], &want[..], "v6 {v6} vlan {vlan:?} opts {n}");
                }
            }
        }
        // No room for the payload: nothing written.
        let f = client_syn(false, None, b"");
        let d = parse(&f).unwrap();
        let mut small = f.clone();
        assert_eq!(
            write_data(&mut small, &d, &syn_ack(false, &[]), &[1u8; 64]),
            None
        );
        assert_eq!(small, f);
    }

    #[test]
    fn shorter_than_the_frame_drops_the_payload() {
        let mut f = client_syn(false, None, b"TFO data in the SYN");
        let d = parse(&f).unwrap();
        let s = syn_ack(false, &[]);
        assert_eq!(write(&mut f, &d, &s), Some(14 + 20 + 20));
        assert_eq!(f[..54], expected(&s, None)[..]);
    }

    #[test]
    fn syn_to_backend_in_a_fresh_buffer() {
        for (v6, vlan) in [(false, None), (false, Some(100)), (true, Some(4095))] {
            // The client's final ACK (no options), whose headers the proxy
            // copies into a 2 KiB buffer still holding an old packet.
            let ack = client_syn(v6, vlan, b"GET /");
            let d = parse(&ack).unwrap();
            let mut buf = [0xa5u8; 2048];
            buf[..usize::from(d.l4_off)].copy_from_slice(&ack[..usize::from(d.l4_off)]);
            let mut opts = [0; tcpopt::MAX_LEN];
            let n = tcpopt::encode(&mut opts, Some(1460), Some(7), true, Some((1, 0)));
            let s = Segment {
                src: (ep(v6, 200), 61000),
                dst: (ep(v6, 20), 8443),
                seq: 0x1111_1111,
                ack: 0,
                flags: tcp_flags::SYN,
                window: 64240,
                options: &opts[..n],
                ttl: 64,
                src_mac: OUR_MAC,
                dst_mac: BACKEND_MAC,
            };
            let len = write(&mut buf, &d, &s).unwrap();
            assert_eq!(buf[..len], expected(&s, vlan)[..], "v6 {v6} vlan {vlan:?}");
            assert!(buf[len..].iter().all(|b| *b == 0xa5));
        }
    }

    #[test]
    fn refusals_leave_the_buffer_alone() {
        let mut opts = [0; tcpopt::MAX_LEN];
        let n = tcpopt::encode_ts_only(&mut opts, 1, 2);
        let f4 = client_syn(false, Some(3), b"");
        let d4 = parse(&f4).unwrap();
        let f6 = client_syn(true, None, b"");
        let d6 = parse(&f6).unwrap();

        // One byte short of the room the segment needs.
        let s = syn_ack(false, &opts[..n]);
        let need = 18 + 20 + 20 + n;
        let mut g = f4.clone();
        assert_eq!(write(&mut g[..need - 1], &d4, &s), None);
        assert_eq!(g, f4);
        assert_eq!(write(&mut g[..need], &d4, &s), Some(need));

        // Address family against the frame, or within the segment.
        let mut g = f4.clone();
        assert_eq!(write(&mut g, &d4, &syn_ack(true, &[])), None);
        let mut mixed = syn_ack(false, &[]);
        mixed.dst.0 = ep(true, 7);
        assert_eq!(write(&mut g, &d4, &mixed), None);
        assert_eq!(g, f4);
        let mut g = f6.clone();
        assert_eq!(write(&mut g, &d6, &syn_ack(false, &[])), None);
        assert_eq!(g, f6);

        // Options that are not whole words, or too many of them.
        let mut g = f4.clone();
        assert_eq!(write(&mut g, &d4, &syn_ack(false, &opts[..3])), None);
        let long = [1u8; 44];
        let mut big = [0u8; 200];
        big[..f4.len()].copy_from_slice(&f4);
        assert_eq!(write(&mut big, &d4, &syn_ack(false, &long)), None);
        assert_eq!(
            write(&mut big, &d4, &syn_ack(false, &long[..40])),
            Some(18 + 80)
        );

        // Not an IP frame at all.
        let arp = gen::arp_request(CLIENT_MAC, ep(false, 7), ep(false, 10));
        let da = parse(&arp).unwrap();
        let mut g = arp.clone();
        assert_eq!(write(&mut g, &da, &syn_ack(false, &[])), None);
        assert_eq!(g, arp);
    }

    proptest! {
        #[test]
        fn any_segment_matches_gen(
            v6 in any::<bool>(), vlan in proptest::option::of(0u16..4096),
            sport in any::<u16>(), dport in any::<u16>(), seq in any::<u32>(), ack in any::<u32>(),
            flags in any::<u8>(), window in any::<u16>(), ttl in any::<u8>(),
            last in (any::<u8>(), any::<u8>()),
            mss in any::<Option<u16>>(), ws in any::<Option<u8>>(), sack in any::<bool>(),
            ts in any::<Option<(u32, u32)>>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            fresh in any::<bool>(),
        ) {
            let f = client_syn(v6, vlan, &payload);
            let d = parse(&f).unwrap();
            let mut opts = [0; tcpopt::MAX_LEN];
            let n = tcpopt::encode(&mut opts, mss, ws, sack, ts);
            let s = Segment {
                src: (ep(v6, last.0), sport),
                dst: (ep(v6, last.1), dport),
                seq, ack, flags, window, ttl,
                options: &opts[..n],
                src_mac: OUR_MAC,
                dst_mac: BACKEND_MAC,
            };
            let want = expected(&s, vlan);
            let mut buf = if fresh { vec![0u8; 2048] } else { f.clone() };
            if fresh {
                buf[..f.len()].copy_from_slice(&f);
            }
            match write(&mut buf, &d, &s) {
                Some(len) => prop_assert_eq!(&buf[..len], &want[..]),
                // In place, only a segment longer than the frame is refused.
                None => prop_assert!(!fresh && want.len() > f.len()),
            }
        }

        #[test]
        fn foreign_descriptors_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..160),
            l3 in 0u8..3, l3_off in 0u16..150, v6 in any::<bool>(),
            opt_len in 0usize..=44,
        ) {
            let d = FlowDesc {
                l3: [L3Kind::Arp, L3Kind::Ipv4, L3Kind::Ipv6][usize::from(l3)],
                l3_off,
                ..FlowDesc::default()
            };
            let opts = [1u8; 44];
            let mut g = bytes.clone();
            if let Some(len) = write(&mut g, &d, &syn_ack(v6, &opts[..opt_len])) {
                prop_assert!(len <= g.len());
            }
            prop_assert_eq!(g.len(), bytes.len());
        }
    }
}
