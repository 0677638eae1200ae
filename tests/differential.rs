//! Property tests against references outside rampart's own code:
//!
//! * the frame parser (`wire::parse`) against etherparse's `SlicedPacket`
//!   on generated Ethernet / 802.1Q / IPv4 / IPv6 / TCP / UDP / ICMP frames,
//!   whole and damaged: what one accepts the other accepts with the same
//!   addresses, ports, protocol and offsets, and what rampart calls
//!   malformed etherparse refuses too, except where rampart is stricter on
//!   purpose (listed at [`deliberately_stricter`]);
//! * the datapath's incremental checksum updates (NAT, FullNAT, DR, IPv4
//!   and IPv6, TCP and UDP) against a full recompute of the forwarded frame,
//!   and a wrong checksum carried through, not repaired;
//! * the config round trip: a loaded file printed as TOML (as the control
//!   API prints its edits) loads to the same config.

use etherparse::err::packet::SliceError;
use etherparse::err::Layer;
use etherparse::{
    LinkExtSlice, NetSlice, PacketBuilder, SlicedPacket, TcpHeaderSlice, TransportSlice,
};
use proptest::prelude::*;
use rampart::datapath::{process, Verdict, WorkerState};
use rampart::flow::{Addr, FlowDesc, L3Kind};
use rampart::snapshot::Snapshot;
use rampart::stats::DropReason;
use rampart::wire;

const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];

// --- the parser against etherparse ----------------------------------------

#[derive(Clone, Debug)]
enum Net {
    V4 {
        src: [u8; 4],
        dst: [u8; 4],
        ttl: u8,
        /// 32-bit words of (NOP) options.
        opt_words: u8,
        more: bool,
        /// Fragment offset in 8-byte units.
        offset: u16,
    },
    V6 {
        src: [u8; 16],
        dst: [u8; 16],
        hop: u8,
        ext: Ext,
    },
}

#[derive(Clone, Debug)]
enum Ext {
    None,
    HopByHop,
    Fragment { offset: u16, more: bool },
}

#[derive(Clone, Debug)]
enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        flags: u8,
        opt_words: u8,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    Icmp {
        kind: u8,
    },
    /// A protocol rampart does not look into (GRE, SCTP, ...).
    Other(u8),
}

#[derive(Clone, Debug)]
enum Damage {
    None,
    /// Cut the frame at this fraction of its length.
    Truncate(proptest::sample::Index),
    /// Overwrite one byte.
    Byte(proptest::sample::Index, u8),
    /// Set the IPv4 total length / IPv6 payload length.
    IpLen(u16),
    /// Set the UDP length, or the TCP data offset (high nibble of byte 12).
    L4Len(u16),
}

#[derive(Clone, Debug)]
struct Spec {
    /// (TPID, VLAN ID) of each tag, outermost first.
    tags: Vec<(u16, u16)>,
    net: Net,
    l4: L4,
    payload: Vec<u8>,
    /// Ethernet padding after the IP datagram.
    pad: usize,
    damage: Damage,
}

fn net() -> impl Strategy<Value = Net> {
    let v4 = (
        any::<[u8; 4]>(),
        any::<[u8; 4]>(),
        any::<u8>(),
        prop_oneof![4 => Just(0u8), 1 => 1u8..=3],
        prop_oneof![4 => Just((false, 0u16)), 1 => (any::<bool>(), 0u16..16)],
    )
        .prop_map(|(src, dst, ttl, opt_words, (more, offset))| Net::V4 {
            src,
            dst,
            ttl,
            opt_words,
            more,
            offset,
        });
    let ext = prop_oneof![
        4 => Just(Ext::None),
        1 => Just(Ext::HopByHop),
        1 => (0u16..16, any::<bool>()).prop_map(|(offset, more)| Ext::Fragment { offset, more }),
    ];
    let v6 = (any::<[u8; 16]>(), any::<[u8; 16]>(), any::<u8>(), ext)
        .prop_map(|(src, dst, hop, ext)| Net::V6 { src, dst, hop, ext });
    prop_oneof![v4, v6]
}

fn l4() -> impl Strategy<Value = L4> {
    prop_oneof![
        3 => (any::<u16>(), any::<u16>(), any::<u8>(), prop_oneof![3 => Just(0u8), 1 => 1u8..=10])
            .prop_map(|(sport, dport, flags, opt_words)| L4::Tcp { sport, dport, flags, opt_words }),
        2 => (any::<u16>(), any::<u16>()).prop_map(|(sport, dport)| L4::Udp { sport, dport }),
        1 => any::<u8>().prop_map(|kind| L4::Icmp { kind }),
        1 => prop_oneof![Just(47u8), Just(132), Just(50), Just(4), Just(41)].prop_map(L4::Other),
    ]
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        6 => Just(Damage::None),
        2 => any::<proptest::sample::Index>().prop_map(Damage::Truncate),
        2 => (any::<proptest::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Damage::Byte(i, b)),
        1 => any::<u16>().prop_map(Damage::IpLen),
        1 => prop_oneof![0u16..16, any::<u16>()].prop_map(Damage::L4Len),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    let tags = prop_oneof![
        6 => Just(vec![]),
        2 => (0u16..4096).prop_map(|v| vec![(0x8100, v)]),
        1 => (prop_oneof![Just(0x8100u16), Just(0x88a8), Just(0x9100)], 0u16..4096, 0u16..4096)
            .prop_map(|(outer, a, b)| vec![(outer, a), (0x8100, b)]),
    ];
    (
        tags,
        net(),
        l4(),
        proptest::collection::vec(any::<u8>(), 0..48),
        prop_oneof![3 => Just(0usize), 1 => 1usize..20],
        damage(),
    )
        .prop_map(|(tags, net, l4, payload, pad, damage)| Spec {
            tags,
            net,
            l4,
            payload,
            pad,
            damage,
        })
}

/// The frame `s` describes, and where its IP header and transport header
/// start.
fn build(s: &Spec) -> (Vec<u8>, usize, usize) {
    let v6 = matches!(s.net, Net::V6 { .. });
    let mut l4 = Vec::new();
    let proto = match s.l4 {
        L4::Tcp {
            sport,
            dport,
            flags,
            opt_words,
        } => {
            l4.extend_from_slice(&sport.to_be_bytes());
            l4.extend_from_slice(&dport.to_be_bytes());
            l4.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
            l4.push((5 + opt_words) << 4);
            l4.push(flags);
            l4.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
            l4.extend(std::iter::repeat_n(1u8, usize::from(opt_words) * 4));
            6
        }
        L4::Udp { sport, dport } => {
            l4.extend_from_slice(&sport.to_be_bytes());
            l4.extend_from_slice(&dport.to_be_bytes());
            l4.extend_from_slice(&((8 + s.payload.len()) as u16).to_be_bytes());
            l4.extend_from_slice(&[0, 0]);
            17
        }
        L4::Icmp { kind } => {
            l4.extend_from_slice(&[kind, 0, 0, 0, 0, 1, 0, 2]);
            if v6 {
                58
            } else {
                1
            }
        }
        L4::Other(p) => p,
    };
    l4.extend_from_slice(&s.payload);

    let mut f = Vec::new();
    f.extend_from_slice(&OUR_MAC);
    f.extend_from_slice(&GW_MAC);
    for (tpid, vid) in &s.tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&if v6 { 0x86ddu16 } else { 0x0800 }.to_be_bytes());
    let l3_off = f.len();
    let l4_off = match &s.net {
        Net::V4 {
            src,
            dst,
            ttl,
            opt_words,
            more,
            offset,
        } => {
            let hlen = 20 + usize::from(*opt_words) * 4;
            let total = (hlen + l4.len()) as u16;
            f.push(0x40 | (5 + opt_words));
            f.push(0);
            f.extend_from_slice(&total.to_be_bytes());
            f.extend_from_slice(&0x1234u16.to_be_bytes());
            let frag = (u16::from(*more) << 13) | offset;
            f.extend_from_slice(&frag.to_be_bytes());
            f.push(*ttl);
            f.push(proto);
            f.extend_from_slice(&[0, 0]);
            f.extend_from_slice(src);
            f.extend_from_slice(dst);
            f.extend(std::iter::repeat_n(1u8, usize::from(*opt_words) * 4));
            f.len()
        }
        Net::V6 { src, dst, hop, ext } => {
            let ext_bytes: Vec<u8> = match ext {
                Ext::None => vec![],
                Ext::HopByHop => vec![proto, 0, 1, 4, 0, 0, 0, 0],
                Ext::Fragment { offset, more } => {
                    let o = (offset << 3) | u16::from(*more);
                    let [hi, lo] = o.to_be_bytes();
                    vec![proto, 0, hi, lo, 0, 0, 0x12, 0x34]
                }
            };
            let next = match ext {
                Ext::None => proto,
                Ext::HopByHop => 0,
                Ext::Fragment { .. } => 44,
            };
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&((ext_bytes.len() + l4.len()) as u16).to_be_bytes());
            f.push(next);
            f.push(*hop);
            f.extend_from_slice(src);
            f.extend_from_slice(dst);
            f.extend_from_slice(&ext_bytes);
            f.len()
        }
    };
    f.extend_from_slice(&l4);
    f.extend(std::iter::repeat_n(0u8, s.pad));
    (f, l3_off, l4_off)
}

fn damaged(s: &Spec) -> Vec<u8> {
    let (mut f, l3_off, l4_off) = build(s);
    match &s.damage {
        Damage::None => {}
        Damage::Truncate(at) => f.truncate(at.index(f.len())),
        Damage::Byte(at, b) => {
            let i = at.index(f.len());
            f[i] = *b;
        }
        Damage::IpLen(n) => {
            let at = l3_off
                + if matches!(s.net, Net::V4 { .. }) {
                    2
                } else {
                    4
                };
            f[at..at + 2].copy_from_slice(&n.to_be_bytes());
        }
        Damage::L4Len(n) => match s.l4 {
            L4::Udp { .. } => f[l4_off + 4..l4_off + 6].copy_from_slice(&n.to_be_bytes()),
            L4::Tcp { .. } => f[l4_off + 12] = ((*n as u8) & 0x0f) << 4,
            _ => {}
        },
    }
    f
}

/// Where rampart refuses as `Malformed` what etherparse accepts, on
/// purpose; anything else is a disagreement.
///
/// * (in [`agree`]: an ICMP timestamp message shorter than 20 bytes,
///   which rampart reads as far as its type.)
/// * An IPv6 payload length of 0, which etherparse reads as the rest of
///   the frame (a jumbogram's, RFC 2675) and rampart as an empty payload:
///   a transport header then does not fit. (Where both accept it, in
///   [`check_same`].)
/// * A UDP length of 0: etherparse reads it as "the rest of the datagram"
///   (RFC 2675 jumbograms); rampart takes RFC 768's minimum of 8 (a
///   jumbogram needs a hop-by-hop header, refused anyway).
fn deliberately_stricter(frame: &[u8], p: &SlicedPacket<'_>) -> bool {
    if matches!(&p.net, Some(NetSlice::Ipv6(v6)) if v6.header().payload_length() == 0) {
        return true;
    }
    match &p.transport {
        Some(TransportSlice::Udp(u)) => {
            let l4 = u.slice();
            let off = l4.as_ptr() as usize - frame.as_ptr() as usize;
            frame.get(off + 4..off + 6) == Some(&[0, 0][..])
        }
        _ => false,
    }
}

fn offset_in(frame: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - frame.as_ptr() as usize
}

/// rampart's parse and etherparse's slicing of the same bytes agree.
fn agree(frame: &[u8]) -> Result<(), TestCaseError> {
    let ours = wire::parse(frame);
    let theirs = SlicedPacket::from_ethernet(frame);
    let tags = |p: &SlicedPacket<'_>| -> Vec<u16> {
        p.link_exts
            .iter()
            .filter_map(|e| match e {
                LinkExtSlice::Vlan(v) => Some(v.vlan_identifier().value()),
                LinkExtSlice::Macsec(_) => None,
            })
            .collect()
    };
    match (ours, theirs) {
        (Ok(d), Ok(p)) => check_same(frame, &d, &p, &tags(&p)),
        // An ICMP timestamp (request or reply) shorter than its 20 bytes:
        // etherparse checks the length per message type, rampart only the
        // 8 bytes every message has (it answers echo requests and reads
        // errors, whose lengths its ICMP module checks; a timestamp
        // message is dropped by type).
        (Ok(d), Err(SliceError::Len(e)))
            if d.key.proto == 1
                && matches!(
                    e.layer,
                    Layer::Icmpv4Timestamp | Layer::Icmpv4TimestampReply
                ) =>
        {
            Ok(())
        }
        (Ok(d), Err(e)) => Err(TestCaseError::fail(format!(
            "rampart accepts ({d:?}) what etherparse refuses: {e}"
        ))),
        (Err(_), Err(_)) => Ok(()),
        (Err(reason), Ok(p)) => {
            let ip = |p: &SlicedPacket<'_>| match &p.net {
                Some(NetSlice::Ipv4(v4)) => {
                    Some((v4.header().ihl(), false, v4.is_payload_fragmented()))
                }
                Some(NetSlice::Ipv6(v6)) => {
                    Some((5, !v6.extensions().is_empty(), v6.is_payload_fragmented()))
                }
                _ => None,
            };
            let ok = match reason {
                DropReason::Malformed => deliberately_stricter(frame, &p),
                // A service tag (0x88a8, 0x9100) outermost is refused even
                // alone: rampart serves single 802.1Q tags only.
                DropReason::StackedVlan => {
                    p.link_exts.len() > 1
                        || matches!(frame.get(12..14), Some([0x88, 0xa8] | [0x91, 0x00]))
                }
                DropReason::Ipv4Options => ip(&p).is_some_and(|(ihl, _, _)| ihl > 5),
                // An IPv6 atomic fragment (offset 0, no more to come):
                // etherparse reads through it, rampart takes every fragment
                // header to its fragment path.
                DropReason::Ipv4Fragment | DropReason::Ipv6Fragment => {
                    ip(&p).is_some_and(|(_, ext, frag)| frag || ext)
                }
                // ESP and the other headers IANA lists as IPv6 extension
                // headers: etherparse stops at them and calls them the
                // payload, rampart refuses them all alike.
                DropReason::Ipv6ExtHeader => {
                    ip(&p).is_some_and(|(_, ext, _)| ext)
                        || matches!(&p.net, Some(NetSlice::Ipv6(v6))
                            if v6.payload().ip_number.is_ipv6_ext_header_value())
                }
                DropReason::UnsupportedEtherType => p.net.is_none(),
                DropReason::ArpNotForUs => matches!(p.net, Some(NetSlice::Arp(_))),
                _ => false,
            };
            prop_assert!(
                ok,
                "rampart refuses ({reason:?}) what etherparse reads: {p:?}"
            );
            Ok(())
        }
    }
}

fn check_same(
    frame: &[u8],
    d: &FlowDesc,
    p: &SlicedPacket<'_>,
    tags: &[u16],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(d.vlan, tags.first().copied());
    prop_assert!(tags.len() <= 1);
    let payload = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            prop_assert_eq!(d.l3, L3Kind::Ipv4);
            prop_assert_eq!(usize::from(d.l3_off), offset_in(frame, h.slice()));
            prop_assert_eq!(d.key.src.to_ip(), std::net::IpAddr::from(h.source()));
            prop_assert_eq!(d.key.dst.to_ip(), std::net::IpAddr::from(h.destination()));
            prop_assert_eq!(d.ttl, h.ttl());
            prop_assert_eq!(h.ihl(), 5);
            prop_assert!(!ip.is_payload_fragmented());
            ip.payload()
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            prop_assert_eq!(d.l3, L3Kind::Ipv6);
            prop_assert_eq!(usize::from(d.l3_off), offset_in(frame, h.slice()));
            prop_assert_eq!(d.key.src.to_ip(), std::net::IpAddr::from(h.source()));
            prop_assert_eq!(d.key.dst.to_ip(), std::net::IpAddr::from(h.destination()));
            prop_assert_eq!(d.ttl, h.hop_limit());
            prop_assert!(ip.extensions().is_empty());
            ip.payload()
        }
        Some(NetSlice::Arp(a)) => {
            prop_assert_eq!(d.l3, L3Kind::Arp);
            prop_assert_eq!(d.arp_op, a.operation().0);
            prop_assert_eq!(
                d.key.src,
                Addr::from_v4(a.sender_protocol_addr().try_into().unwrap())
            );
            return Ok(());
        }
        None => {
            return Err(TestCaseError::fail(
                "rampart parsed a frame without a network layer",
            ))
        }
    };
    prop_assert_eq!(d.key.proto, payload.ip_number.0);
    prop_assert_eq!(usize::from(d.l4_off), offset_in(frame, payload.payload));
    if matches!(p.net, Some(NetSlice::Ipv6(_)))
        && payload.len_source == etherparse::LenSource::Slice
    {
        // An IPv6 payload length of 0: etherparse takes the rest of the
        // frame (as for a jumbogram), rampart an empty payload (a
        // jumbogram needs a hop-by-hop header, which it refuses).
        prop_assert_eq!(d.l4_len, 0);
        return Ok(());
    }
    prop_assert_eq!(usize::from(d.l4_len), payload.payload.len());
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            prop_assert_eq!(d.key.sport, t.source_port());
            prop_assert_eq!(d.key.dport, t.destination_port());
            let h = TcpHeaderSlice::from_slice(t.header_slice()).unwrap();
            prop_assert_eq!(d.tcp_flags, h.slice()[13]);
        }
        Some(TransportSlice::Udp(u)) => {
            prop_assert_eq!(d.key.sport, u.source_port());
            prop_assert_eq!(d.key.dport, u.destination_port());
        }
        Some(TransportSlice::Icmpv4(i)) => prop_assert_eq!(d.icmp_type, i.type_u8()),
        Some(TransportSlice::Icmpv6(i)) => prop_assert_eq!(d.icmp_type, i.type_u8()),
        None => {
            prop_assert_eq!((d.key.sport, d.key.dport), (0, 0));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn parser_agrees_with_etherparse(s in spec()) {
        agree(&damaged(&s))?;
    }

    #[test]
    fn parser_agrees_with_etherparse_on_any_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..120),
        ethertype in prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x0806), Just(0x8100)],
    ) {
        let mut f = bytes;
        if f.len() >= 14 {
            f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        }
        agree(&f)?;
    }
}

/// Undamaged frames of every kind are accepted or refused for a reason
/// that is not `Malformed`: the generator makes valid frames, so the
/// property above does not pass by refusing everything.
#[test]
fn generated_frames_parse() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut accepted = 0;
    for _ in 0..500 {
        let mut s = proptest::strategy::ValueTree::current(&spec().new_tree(&mut runner).unwrap());
        s.damage = Damage::None;
        let (f, _, _) = build(&s);
        match wire::parse(&f) {
            Ok(_) => accepted += 1,
            Err(r) => assert_ne!(r, DropReason::Malformed, "{s:?}"),
        }
    }
    assert!(accepted > 200, "only {accepted} of 500 accepted");
}

// --- incremental checksums against a full recompute -----------------------

/// A VIP of the reference config and how to reach it.
#[derive(Clone, Copy, Debug)]
struct Target {
    vip: &'static str,
    addr: &'static str,
    port: u16,
    udp: bool,
}

const TARGETS: [Target; 7] = [
    Target {
        vip: "web",
        addr: "198.18.100.10",
        port: 80,
        udp: false,
    },
    Target {
        vip: "web6",
        addr: "2001:2:0:100::10",
        port: 80,
        udp: false,
    },
    Target {
        vip: "dns",
        addr: "198.18.100.10",
        port: 53,
        udp: true,
    },
    Target {
        vip: "api",
        addr: "198.18.100.20",
        port: 443,
        udp: false,
    },
    Target {
        vip: "api6",
        addr: "2001:2:0:100::20",
        port: 443,
        udp: false,
    },
    Target {
        vip: "static",
        addr: "198.18.100.30",
        port: 80,
        udp: false,
    },
    Target {
        vip: "static6",
        addr: "2001:2:0:100::30",
        port: 80,
        udp: false,
    },
];

fn snapshot() -> &'static Snapshot {
    static SNAP: std::sync::OnceLock<Snapshot> = std::sync::OnceLock::new();
    SNAP.get_or_init(|| {
        // Small tables: the snapshot builds fast and a fresh worker per
        // case stays cheap.
        let mut cfg = rampart_testkit::fixtures::config();
        cfg.conntrack.capacity = 64;
        cfg.synproxy.hold_slots = 8;
        for v in &mut cfg.vips {
            v.table_size = 251;
        }
        Snapshot::build(&cfg)
    })
}

/// A client's first packet to `t`: a SYN with the given options, or a UDP
/// datagram.
fn first_packet(
    t: Target,
    client: u16,
    sport: u16,
    seq: u32,
    opts: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(GW_MAC, OUR_MAC);
    let dst: std::net::IpAddr = t.addr.parse().unwrap();
    let ip = match dst {
        std::net::IpAddr::V4(d) => {
            let [a, b] = client.to_be_bytes();
            eth.ipv4([198, 19, a, b], d.octets(), 64)
        }
        std::net::IpAddr::V6(d) => {
            let mut s = [0x20, 0x01, 0x00, 0x02, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            s[14..].copy_from_slice(&client.to_be_bytes());
            eth.ipv6(s, d.octets(), 64)
        }
    };
    let mut out = Vec::new();
    if t.udp {
        ip.udp(sport, t.port).write(&mut out, payload).unwrap();
    } else {
        let mut words = opts.to_vec();
        words.resize(opts.len().div_ceil(4) * 4, 1);
        let options: Vec<etherparse::TcpOptionElement> = words
            .iter()
            .map(|_| etherparse::TcpOptionElement::Noop)
            .collect();
        ip.tcp(sport, t.port, seq, 65535)
            .syn()
            .options(&options)
            .unwrap()
            .write(&mut out, payload)
            .unwrap();
    }
    out
}

/// The IPv4 header checksum and the TCP/UDP checksum of `frame`, each as
/// found and as computed from scratch by etherparse.
fn checksums(frame: &[u8]) -> Vec<(&'static str, u16, u16)> {
    let p = SlicedPacket::from_ethernet(frame).expect("a forwarded frame slices");
    let mut out = Vec::new();
    let (payload_of, v4h, v6h) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header().to_header();
            out.push(("ipv4 header", h.header_checksum, h.calc_header_checksum()));
            (ip.payload().payload, Some(h), None)
        }
        Some(NetSlice::Ipv6(ip)) => (ip.payload().payload, None, Some(ip.header().to_header())),
        _ => panic!("a forwarded frame without IP"),
    };
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let h = t.to_header();
            let data = t.payload();
            let want = match (&v4h, &v6h) {
                (Some(v4), _) => h.calc_checksum_ipv4(v4, data).unwrap(),
                (_, Some(v6)) => h.calc_checksum_ipv6(v6, data).unwrap(),
                _ => unreachable!(),
            };
            out.push(("tcp", h.checksum, want));
        }
        Some(TransportSlice::Udp(u)) => {
            let h = u.to_header();
            let data = u.payload();
            let want = match (&v4h, &v6h) {
                (Some(v4), _) => h.calc_checksum_ipv4(v4, data).unwrap(),
                (_, Some(v6)) => h.calc_checksum_ipv6(v6, data).unwrap(),
                _ => unreachable!(),
            };
            out.push(("udp", h.checksum, want));
        }
        _ => {}
    }
    let _ = payload_of;
    out
}

/// Equal as ones'-complement sums: 0x0000 and 0xffff are both zero.
fn same_sum(a: u16, b: u16) -> bool {
    a == b || (a == 0 || a == 0xffff) && (b == 0 || b == 0xffff)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn rewritten_checksums_equal_a_full_recompute(
        which in 0usize..TARGETS.len(),
        client in any::<u16>(),
        sport in 1024u16..,
        seq in any::<u32>(),
        opts in proptest::collection::vec(Just(1u8), 0..12),
        payload in proptest::collection::vec(any::<u8>(), 0..40),
        corrupt in prop_oneof![3 => Just(0u16), 1 => 1u16..0xfffe],
    ) {
        let t = TARGETS[which];
        let snap = snapshot();
        // Worker 0 of 256: a short local-port list to set up (FullNAT).
        let mut ws = WorkerState::new(snap, 0, 256, 0x5eed);
        ws.set_clock((rampart_testkit::fixtures::timestamp(0) / 1_000_000_000) as u32);
        let mut frame = first_packet(t, client, sport, seq, &opts, &payload);
        let l4_at = match frame[12] { 0x08 => 14 + 20, _ => 14 + 40 };
        let ck_at = l4_at + if t.udp { 6 } else { 16 };
        if corrupt != 0 {
            // A wrong checksum, by a delta that keeps it wrong (never the
            // other spelling of zero).
            let c = u16::from_be_bytes([frame[ck_at], frame[ck_at + 1]]);
            let (sum, carry) = c.overflowing_add(corrupt);
            let bad = sum.wrapping_add(u16::from(carry));
            prop_assume!(!same_sum(bad, c));
            frame[ck_at..ck_at + 2].copy_from_slice(&bad.to_be_bytes());
        }
        let verdict = process(&mut frame, &mut ws, snap);
        prop_assert_eq!(verdict, Verdict::Forward, "{} did not forward", t.vip);
        for (what, found, computed) in checksums(&frame) {
            if corrupt != 0 && what != "ipv4 header" {
                prop_assert!(!same_sum(found, computed),
                    "{}: {} checksum repaired instead of carried ({:#06x})", t.vip, what, found);
            } else {
                prop_assert!(same_sum(found, computed),
                    "{}: {} checksum {:#06x}, a full recompute gives {:#06x}", t.vip, what, found, computed);
            }
        }
    }
}

// --- the config round trip -------------------------------------------------

/// Every config in `configs/` and every TOML example of the docs that
/// loads: printed back as TOML (`toml::to_string` of the parsed document,
/// as the control API prints its edits), it loads to the same config, and
/// the snapshot it builds has the same VIPs and backends.
#[test]
fn config_round_trip() {
    let mut checked = 0;
    for (name, data) in rampart_testkit::fuzz::config_seeds() {
        let text = String::from_utf8(data).unwrap();
        let Ok(cfg) = rampart::config::parse(&text, &name) else {
            continue;
        };
        let doc: toml::Table = text.parse().unwrap();
        let printed = toml::to_string(&doc).unwrap();
        let again = rampart::config::parse(&printed, &name)
            .unwrap_or_else(|e| panic!("{name} printed no longer loads: {e}\n{printed}"));
        assert_eq!(cfg, again, "{name}: the printed config loads differently");
        let (a, b) = (Snapshot::build(&cfg), Snapshot::build(&again));
        assert_eq!(format!("{:?}", a.vips), format!("{:?}", b.vips), "{name}");
        assert_eq!(
            format!("{:?}", a.backends),
            format!("{:?}", b.backends),
            "{name}"
        );
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} configs loaded");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Generated edits of the reference config (weights, ports, table
    /// sizes, a backend removed) round-trip the same way.
    #[test]
    fn edited_config_round_trip(
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), 0u8..4, any::<u16>()), 1..6),
    ) {
        let text = std::fs::read_to_string(rampart_testkit::common::root().join("configs/rampart.toml")).unwrap();
        let mut doc: toml::Table = text.parse().unwrap();
        let vips = doc.get_mut("vip").and_then(|v| v.as_array_mut()).unwrap();
        for (at, kind, v) in edits {
            let i = at.index(vips.len());
            let vip = vips[i].as_table_mut().unwrap();
            let backends = vip.get_mut("backend").and_then(|b| b.as_array_mut()).unwrap();
            let n = backends.len();
            match kind {
                0 => {
                    let b = backends[at.index(n)].as_table_mut().unwrap();
                    b.insert("weight".into(), toml::Value::Integer(i64::from(v % 100)));
                }
                1 => {
                    let b = backends[at.index(n)].as_table_mut().unwrap();
                    if b.contains_key("port") {
                        b.insert("port".into(), toml::Value::Integer(i64::from(v.max(1))));
                    }
                }
                2 => {
                    let sizes = [251i64, 1021, 4093, 65537];
                    vip.insert("table_size".into(), toml::Value::Integer(sizes[usize::from(v) % 4]));
                }
                _ => {
                    if n > 1 {
                        backends.remove(at.index(n));
                    }
                }
            }
        }
        let edited = toml::to_string(&doc).unwrap();
        let Ok(cfg) = rampart::config::parse(&edited, "edited") else {
            // An edit the validator refuses (a weight of 0 everywhere, ...)
            // must be refused the same way after the round trip.
            let printed = toml::to_string(&edited.parse::<toml::Table>().unwrap()).unwrap();
            prop_assert!(rampart::config::parse(&printed, "edited").is_err());
            return Ok(());
        };
        let reparsed: toml::Table = edited.parse().unwrap();
        let printed = toml::to_string_pretty(&reparsed).unwrap();
        let again = rampart::config::parse(&printed, "edited").unwrap();
        prop_assert_eq!(cfg, again);
    }
}
