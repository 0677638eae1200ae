//! IP fragments through the datapath ([`rampart::frag`]): a datagram sent
//! in fragments, in order or not, must come out as the fragments of the
//! very datagram rampart sends when it arrives whole.
//!
//! The oracle is rampart's own handling of the whole datagram on a fresh
//! worker (itself checked field by field by the golden fixtures and
//! `tests/datapath.rs`): every output fragment must carry that packet's
//! MACs, IP header fields and (tunnel) outer header, each IPv4 header
//! checksum must verify, and the fragments' data, put together by offset,
//! must be exactly that packet's transport bytes, whose checksum is also
//! verified here from scratch.

use rampart::config;
use rampart::datapath::{process, Verdict, WorkerState};
use rampart::flow::Addr;
use rampart::gen::{self, Eth};
use rampart::snapshot::Snapshot;
use rampart::stats::{DropReason, Event};
use rampart_testkit::fixtures::net::{GATEWAY_MAC, NODE_MAC};
use rampart_testkit::toml::{self, Vip};

const SEED: u64 = 0xf7a6_5eed;

fn a(s: &str) -> Addr {
    Addr::from(s.parse::<std::net::IpAddr>().unwrap())
}

fn config(fragments: &str) -> String {
    let mut s = toml::node(
        &["198.18.0.1", "2001:2::1"],
        &[
            "198.18.1.11",
            "198.18.1.12",
            "2001:2:0:1::11",
            "2001:2:0:1::12",
        ],
    );
    // Room for a whole 3000-byte datagram in a tunnel: the oracle.
    s = s.replacen("gateway_mac", "mtu = 9000\ngateway_mac", 1);
    s.push_str(&format!("\n[fragments]\n{fragments}\n"));
    let v4 = ["198.18.1.11", "198.18.1.12"];
    let v6 = ["2001:2:0:1::11", "2001:2:0:1::12"];
    for vip in [
        Vip::new("nat4", "198.18.100.10", 53, "udp", "nat").backends(&v4, 5353),
        Vip::new("nat6", "2001:2:0:100::10", 53, "udp", "nat").backends(&v6, 5353),
        Vip::new("full4", "198.18.100.20", 53, "udp", "fullnat")
            .local_addresses(&["198.18.0.200"])
            .backends(&v4, 5354),
        Vip::new("full6", "2001:2:0:100::20", 53, "udp", "fullnat")
            .local_addresses(&["2001:2::200"])
            .backends(&v6, 5354),
        Vip::new("dr4", "198.18.100.30", 53, "udp", "dr").backends_without_port(&v4),
        Vip::new("dr6", "2001:2:0:100::30", 53, "udp", "dr").backends_without_port(&v6),
        Vip::new("tun4", "198.18.100.50", 53, "udp", "tunnel")
            .key("encap", "\"ipip\"")
            .backends_without_port(&["198.18.7.21"]),
        Vip::new("tun6", "2001:2:0:100::50", 53, "udp", "tunnel")
            .key("encap", "\"gue\"")
            .backends_without_port(&["2001:2:0:7::21"]),
        Vip::new("web4", "198.18.100.10", 80, "tcp", "nat").backends(&v4, 8080),
        Vip::new("sp4", "198.18.100.60", 80, "tcp", "nat")
            .synproxy()
            .backends(&v4, 8080),
    ] {
        s.push_str(&vip.table_size(1009).to_string());
    }
    s
}

fn snapshot(fragments: &str) -> Snapshot {
    let text = config(fragments);
    match config::parse(&text, "fragments.toml") {
        Ok(c) => Snapshot::build(&c),
        Err(e) => panic!("test config is invalid: {e}\n{text}"),
    }
}

/// One worker; `send` returns the verdict and what went out: the frame
/// itself when forwarded, then what the worker originated while handling it.
struct Lb {
    snap: Snapshot,
    ws: WorkerState,
}

impl Lb {
    fn new(fragments: &str) -> Lb {
        Lb::worker(fragments, 0, 1)
    }

    fn worker(fragments: &str, id: u16, workers: u16) -> Lb {
        let snap = snapshot(fragments);
        let ws = WorkerState::new(&snap, id, workers, SEED);
        Lb { snap, ws }
    }

    fn send(&mut self, frame: &[u8]) -> (Verdict, Vec<Vec<u8>>) {
        let mut buf = frame.to_vec();
        let v = process(&mut buf, &mut self.ws, &self.snap);
        let mut out = Vec::new();
        if v == Verdict::Forward {
            out.push(buf);
        }
        out.extend(self.ws.outbox.iter().map(|(_, f)| f.to_vec()));
        self.ws.outbox.clear();
        (v, out)
    }

    fn drops(&self, r: DropReason) -> u64 {
        self.ws.stats.drops[r as usize]
    }

    fn event(&self, e: Event) -> u64 {
        self.ws.stats.events[e as usize]
    }

    /// `rx = tx + consumed + drops - held fragments dropped later`.
    fn balanced(&self) {
        let s = &self.ws.stats;
        assert_eq!(
            s.rx_packets + self.event(Event::FragmentHeldDropped),
            s.tx_packets + s.consumed + s.dropped_total()
        );
    }
}

const FROM_CLIENTS: Eth = Eth {
    src: GATEWAY_MAC,
    dst: NODE_MAC,
    vlan: None,
};

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

/// A 3000-byte UDP datagram from a client to `vip`:53.
fn query(vip: Addr, cport: u16, id: u16) -> Vec<u8> {
    let client = if vip.is_v4() {
        a("198.18.200.7")
    } else {
        a("2001:2:0:200::7")
    };
    gen::udp(
        &FROM_CLIENTS,
        client,
        vip,
        64,
        id,
        cport,
        53,
        &payload(3000),
    )
}

// ---- taking frames apart ------------------------------------------------------

/// What a frame carries, as the comparison needs it.
struct Parts {
    macs: [u8; 12],
    /// Tunnel outer headers with their length and checksum fields zeroed,
    /// and IPv4's flags (DF follows the inner packet's).
    outer: Vec<u8>,
    /// The (inner) IP header's fields that fragmentation leaves alone.
    ip: Vec<u8>,
    v4: bool,
    offset: usize,
    more: bool,
    data: Vec<u8>,
    src: Addr,
    dst: Addr,
}

/// `outer`: bytes of tunnel headers after the Ethernet header.
fn parts(frame: &[u8], outer: usize) -> Parts {
    let mut o = frame[14..14 + outer].to_vec();
    if outer == 20 {
        // IPv4 in IPv4: total length, flags, checksum.
        for i in [2, 3, 6, 7, 10, 11] {
            o[i] = 0;
        }
    } else if outer > 0 {
        // IPv6 + UDP + GUE: payload length, UDP length and checksum.
        for i in [4, 5, 44, 45, 46, 47] {
            o[i] = 0;
        }
    }
    let ip = &frame[14 + outer..];
    let v4 = ip[0] >> 4 == 4;
    if v4 {
        assert_eq!(
            checksum(0, &ip[..20]),
            0,
            "IPv4 header checksum of {frame:02x?}"
        );
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let word = u16::from_be_bytes([ip[6], ip[7]]);
        let mut fields = ip[..20].to_vec();
        for i in [2, 3, 6, 7, 10, 11] {
            fields[i] = 0;
        }
        Parts {
            macs: frame[..12].try_into().unwrap(),
            outer: o,
            ip: fields,
            v4,
            offset: usize::from(word & 0x1fff) * 8,
            more: word & 0x2000 != 0,
            data: ip[20..total].to_vec(),
            src: Addr::from_v4(ip[12..16].try_into().unwrap()),
            dst: Addr::from_v4(ip[16..20].try_into().unwrap()),
        }
    } else {
        let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        let mut fields = ip[..40].to_vec();
        fields[4] = 0;
        fields[5] = 0;
        let (next, offset, more, data) = if ip[6] == 44 {
            let w = u16::from_be_bytes([ip[42], ip[43]]);
            (ip[40], usize::from(w & !7), w & 1 == 1, &ip[48..40 + plen])
        } else {
            (ip[6], 0, false, &ip[40..40 + plen])
        };
        fields[6] = next;
        Parts {
            macs: frame[..12].try_into().unwrap(),
            outer: o,
            ip: fields,
            v4,
            offset,
            more,
            data: data.to_vec(),
            src: Addr::from_v6(ip[8..24].try_into().unwrap()),
            dst: Addr::from_v6(ip[24..40].try_into().unwrap()),
        }
    }
}

fn checksum(mut sum: u32, b: &[u8]) -> u16 {
    for c in b.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The UDP checksum of `l4` between `src` and `dst` verifies.
fn udp_checksum_ok(src: Addr, dst: Addr, l4: &[u8]) -> bool {
    let mut pseudo = Vec::new();
    if src.is_v4() {
        pseudo.extend_from_slice(&src.v4_octets());
        pseudo.extend_from_slice(&dst.v4_octets());
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    } else {
        pseudo.extend_from_slice(&src.v6_octets());
        pseudo.extend_from_slice(&dst.v6_octets());
        pseudo.extend_from_slice(&(l4.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 17]);
    }
    let mut all = pseudo;
    all.extend_from_slice(l4);
    checksum(0, &all) == 0
}

/// The fragments `out` are those of `whole`: same MACs, outer and IP
/// header fields, and together exactly its transport bytes.
#[track_caller]
fn same_datagram(whole: &[u8], out: &[Vec<u8>], outer: usize) {
    let w = parts(whole, outer);
    assert!(out.len() > 1, "expected fragments, got {}", out.len());
    let mut data = vec![None; w.data.len()];
    let mut last = false;
    for f in out {
        let p = parts(f, outer);
        assert_eq!(p.macs, w.macs, "MACs");
        assert_eq!(p.outer, w.outer, "outer headers");
        assert_eq!(p.ip, w.ip, "IP header fields");
        assert_eq!(p.v4, w.v4);
        for (i, b) in p.data.iter().enumerate() {
            let slot = &mut data[p.offset + i];
            assert!(slot.is_none(), "byte {} sent twice", p.offset + i);
            *slot = Some(*b);
        }
        last |= !p.more;
    }
    assert!(last, "no last fragment");
    let data: Vec<u8> = data
        .into_iter()
        .enumerate()
        .map(|(i, b)| b.unwrap_or_else(|| panic!("byte {i} never sent")))
        .collect();
    assert_eq!(data, w.data, "reassembled data");
    assert!(udp_checksum_ok(w.src, w.dst, &data), "UDP checksum");
}

/// Sends `whole` to a fresh worker, and its fragments, in `order`, to
/// another; the second must send the first's packet, in fragments.
fn through(fragments_cfg: &str, whole: &[u8], order: &[usize], outer: usize) -> Lb {
    let mut one = Lb::new(fragments_cfg);
    let (v, sent) = one.send(whole);
    assert_eq!(v, Verdict::Forward, "the whole datagram goes");
    let expected = &sent[0];
    let frags = gen::fragments(whole, 1232, 0x5151_0001);
    assert_eq!(frags.len(), 3);
    let mut lb = Lb::new(fragments_cfg);
    let mut out = Vec::new();
    for &i in order {
        let (v, o) = lb.send(&frags[i]);
        assert!(
            matches!(v, Verdict::Forward | Verdict::Consumed),
            "fragment {i}: {v:?}"
        );
        out.extend(o);
    }
    same_datagram(expected, &out, outer);
    assert_eq!(lb.event(Event::FragmentForwarded), 3);
    assert_eq!(lb.ws.frags.len(), 0, "a whole datagram leaves no entry");
    assert_eq!(lb.ws.frags.held(), 0);
    lb.balanced();
    lb
}

const ORDERS: [[usize; 3]; 4] = [[0, 1, 2], [2, 1, 0], [1, 0, 2], [0, 2, 1]];

fn every_order(vip: &str, outer: usize) {
    for order in ORDERS {
        let lb = through("", &query(a(vip), 40000, 77), &order, outer);
        let held = order.iter().take_while(|&&i| i != 0).count() as u64;
        assert_eq!(lb.event(Event::FragmentHeld), held, "{vip} {order:?}");
        assert_eq!(lb.event(Event::FragmentReleased), held, "{vip} {order:?}");
    }
}

#[test]
fn nat_fragments_follow_their_first_in_any_order() {
    every_order("198.18.100.10", 0);
    every_order("2001:2:0:100::10", 0);
}

#[test]
fn fullnat_fragments_follow_their_first_in_any_order() {
    every_order("198.18.100.20", 0);
    every_order("2001:2:0:100::20", 0);
}

#[test]
fn dr_fragments_follow_their_first_in_any_order() {
    every_order("198.18.100.30", 0);
    every_order("2001:2:0:100::30", 0);
}

#[test]
fn tunnel_fragments_are_each_wrapped_like_their_first() {
    // IPv4 in IPv4; IPv6 in IPv6 + UDP + GUE.
    every_order("198.18.100.50", 20);
    every_order("2001:2:0:100::50", 40 + 8 + 4);
}

/// A backend's fragmented answer to a client, for the reply direction.
fn answer(lb: &Lb, vip: &str, whole_query: &[u8], out_query: &[u8]) -> Vec<u8> {
    let q = parts(out_query, 0);
    let dport = u16::from_be_bytes([q.data[2], q.data[3]]);
    let sport = u16::from_be_bytes([q.data[0], q.data[1]]);
    let backend = lb
        .snap
        .backends
        .iter()
        .find(|b| b.key.addr == q.dst)
        .unwrap();
    let eth = Eth {
        src: backend.mac,
        dst: NODE_MAC,
        vlan: None,
    };
    let _ = (vip, whole_query);
    gen::udp(&eth, q.dst, q.src, 64, 0x4242, dport, sport, &payload(2500))
}

#[test]
fn nat_and_fullnat_replies_in_fragments_go_back_like_whole_ones() {
    for vip in [
        "198.18.100.10",
        "2001:2:0:100::10",
        "198.18.100.20",
        "2001:2:0:100::20",
    ] {
        for order in ORDERS {
            let q = query(a(vip), 40001, 78);
            let mut one = Lb::new("");
            let (_, sent) = one.send(&q);
            let reply = answer(&one, vip, &q, &sent[0]);
            let (v, back) = one.send(&reply);
            assert_eq!(v, Verdict::Forward, "{vip}: the whole reply goes back");

            let mut lb = Lb::new("");
            let (v, _) = lb.send(&q);
            assert_eq!(v, Verdict::Forward);
            let frags = gen::fragments(&reply, 1232, 0x0bad_cafe);
            let mut out = Vec::new();
            for &i in &order {
                out.extend(lb.send(&frags[i]).1);
            }
            same_datagram(&back[0], &out, 0);
            lb.balanced();
        }
    }
}

#[test]
fn fragmented_first_packet_of_a_flow_and_whole_packets_share_the_connection() {
    let mut lb = Lb::new("");
    let vip = a("198.18.100.10");
    let whole = gen::udp(
        &FROM_CLIENTS,
        a("198.18.200.7"),
        vip,
        64,
        5,
        40002,
        53,
        b"small",
    );
    let (_, first) = lb.send(&whole);
    let backend = parts(&first[0], 0).dst;
    for id in 0..20u16 {
        let frags = gen::fragments(&query(vip, 40002, 100 + id), 1480, 0);
        for f in frags.iter().rev() {
            for o in lb.send(f).1 {
                assert_eq!(parts(&o, 0).dst, backend);
            }
        }
    }
    assert_eq!(lb.ws.conns.len(), 1);
    assert_eq!(lb.event(Event::ConnNew), 1);
}

#[test]
fn overlapping_fragments_spoil_their_datagram() {
    for vip in ["198.18.100.10", "2001:2:0:100::10"] {
        let whole = query(a(vip), 40003, 9);
        let frags = gen::fragments(&whole, 1232, 7);
        // Fragments of 1232 overlapping those of 1232 at another cut.
        let other = gen::fragments(&whole, 1024, 7);
        let mut lb = Lb::new("");
        assert_eq!(lb.send(&frags[0]).0, Verdict::Forward);
        assert_eq!(
            lb.send(&other[1]).0,
            Verdict::Drop(DropReason::FragmentOverlap)
        );
        // Everything after is dropped too (RFC 5722).
        for f in &frags[1..] {
            assert_eq!(lb.send(f).0, Verdict::Drop(DropReason::FragmentOverlap));
        }
        // A copy of a fragment already sent is dropped alone.
        let mut lb = Lb::new("");
        assert_eq!(lb.send(&frags[0]).0, Verdict::Forward);
        assert_eq!(lb.send(&frags[1]).0, Verdict::Forward);
        assert_eq!(
            lb.send(&frags[1]).0,
            Verdict::Drop(DropReason::FragmentDuplicate)
        );
        assert_eq!(lb.send(&frags[2]).0, Verdict::Forward);
        // A held fragment overlapped by its first: both go.
        let mut lb = Lb::new("");
        assert_eq!(lb.send(&other[1]).0, Verdict::Consumed);
        assert_eq!(
            lb.send(&frags[0]).0,
            Verdict::Drop(DropReason::FragmentOverlap)
        );
        assert_eq!(lb.drops(DropReason::FragmentOverlap), 2);
        assert_eq!(lb.ws.conns.len(), 0, "a spoiled datagram opens nothing");
        lb.balanced();
    }
}

#[test]
fn held_fragments_time_out_without_their_first() {
    let mut lb = Lb::new("timeout_ms = 200");
    let whole = query(a("2001:2:0:100::20"), 40004, 1);
    let frags = gen::fragments(&whole, 1232, 99);
    lb.ws.set_clock_ns(1_000_000_000);
    assert_eq!(lb.send(&frags[1]).0, Verdict::Consumed);
    assert_eq!(lb.send(&frags[2]).0, Verdict::Consumed);
    lb.ws.set_clock_ns(1_199_000_000);
    lb.ws.age_with_budget(&lb.snap, u32::MAX);
    assert_eq!(lb.ws.frags.held(), 2, "not yet");
    lb.ws.set_clock_ns(1_200_000_000);
    lb.ws.age_with_budget(&lb.snap, u32::MAX);
    assert_eq!(lb.ws.frags.held(), 0);
    assert_eq!(lb.drops(DropReason::FragmentTimeout), 2);
    // The first fragment, late, goes alone: its datagram starts afresh.
    assert_eq!(lb.send(&frags[0]).0, Verdict::Forward);
    assert_eq!(lb.event(Event::FragmentReleased), 0);
    lb.balanced();
}

#[test]
fn a_dropped_first_takes_its_fragments_with_it() {
    let mut lb = Lb::new("");
    // To the VIP's address on a port no VIP serves.
    let mut whole = query(a("198.18.100.10"), 40005, 3);
    whole[14 + 20 + 3] = 54;
    // (The UDP checksum is off now; rampart does not verify it.)
    let frags = gen::fragments(&whole, 1232, 0);
    assert_eq!(lb.send(&frags[2]).0, Verdict::Consumed);
    assert_eq!(lb.send(&frags[0]).0, Verdict::Drop(DropReason::NoService));
    assert_eq!(lb.drops(DropReason::FragmentFirstDropped), 1);
    assert_eq!(
        lb.send(&frags[1]).0,
        Verdict::Drop(DropReason::FragmentFirstDropped)
    );
    lb.balanced();
}

#[test]
fn a_fragment_flood_stays_within_its_bounds_and_whole_packets_pass() {
    let mut lb = Lb::new("timeout_ms = 100\nmax_held = 32\ntable_size = 64");
    let whole = query(a("198.18.100.10"), 40006, 1);
    let template = gen::fragments(&whole, 1232, 0)[1].clone();
    let mut normal = 0;
    for i in 0..20_000u32 {
        let mut f = template.clone();
        // Each its own datagram: a new IP ID and source.
        f[18..20].copy_from_slice(&(i as u16).to_be_bytes());
        f[14 + 12 + 3] = (i >> 16) as u8 + 1;
        let ck = checksum(0, &{
            let mut h = f[14..34].to_vec();
            h[10] = 0;
            h[11] = 0;
            h
        });
        f[24..26].copy_from_slice(&ck.to_be_bytes());
        lb.send(&f);
        assert!(lb.ws.frags.len() <= 64);
        assert!(lb.ws.frags.held() <= 32);
        if i % 1000 == 0 {
            // Whole packets never notice.
            let q = gen::udp(
                &FROM_CLIENTS,
                a("198.18.200.9"),
                a("198.18.100.10"),
                64,
                1,
                30000 + (i / 1000) as u16,
                53,
                b"q",
            );
            assert_eq!(lb.send(&q).0, Verdict::Forward);
            normal += 1;
        }
        lb.ws.age(&lb.snap);
    }
    assert_eq!(normal, 20);
    assert_eq!(lb.ws.frags.capacity(), 64);
    assert!(lb.drops(DropReason::FragmentTableFull) > 19_000);
    assert!(lb.drops(DropReason::FragmentHoldFull) > 0);
    // Once the flood's entries time out, a real datagram gets through.
    lb.ws.set_clock_ns(1_000_000_000);
    lb.ws.age_with_budget(&lb.snap, u32::MAX);
    assert_eq!((lb.ws.frags.len(), lb.ws.frags.held()), (0, 0));
    let frags = gen::fragments(&query(a("198.18.100.10"), 40007, 2), 1232, 0);
    let mut out = Vec::new();
    for f in frags.iter().rev() {
        out.extend(lb.send(f).1);
    }
    assert_eq!(out.len(), 3);
    lb.balanced();
}

#[test]
fn fragments_of_other_protocols_and_atomic_fragments() {
    let mut lb = Lb::new("");
    let whole = query(a("2001:2:0:100::10"), 40008, 0);
    // An atomic fragment (RFC 6946) is a whole datagram.
    let atomic = gen::fragments(&whole, 8192, 1);
    assert_eq!(atomic.len(), 1);
    let (v, out) = lb.send(&atomic[0]);
    assert_eq!(v, Verdict::Forward);
    assert_eq!(parts(&out[0], 0).data.len(), 3008);
    assert_eq!(lb.ws.frags.len(), 0);
    // ICMP in fragments is not forwarded.
    let mut f = gen::fragments(&whole, 1232, 2)[1].clone();
    f[14 + 40] = 58;
    assert_eq!(lb.send(&f).0, Verdict::Drop(DropReason::Ipv6Fragment));
}

/// A client port whose connection worker 1 of 2 owns while worker 0 is the
/// datagram's fragment owner.
fn split_port(snap: &Snapshot, vip: Addr, src: Addr, ident: u32) -> u16 {
    use rampart::flow::{proto, FlowKey};
    assert_eq!(rampart::frag::owner(&src, &vip, ident, 2), 0);
    (40000..41000)
        .find(|&p| {
            let k = FlowKey {
                src,
                dst: vip,
                sport: p,
                dport: 53,
                proto: proto::UDP,
            };
            rampart::io::steer::conn_owner(&k, snap, 2) == Some(1)
        })
        .unwrap()
}

#[test]
fn the_fragment_owner_hands_a_datagram_to_its_connections_owner() {
    let vip = a("198.18.100.10");
    let src = a("198.18.200.7");
    let mut w0 = Lb::worker("", 0, 2);
    let mut w1 = Lb::worker("", 1, 2);
    let ident = (0..u16::MAX)
        .find(|&id| rampart::frag::owner(&src, &vip, u32::from(id), 2) == 0)
        .unwrap();
    let port = split_port(&w0.snap, vip, src, u32::from(ident));
    let whole = query(vip, port, ident);
    let frags = gen::fragments(&whole, 1232, 0);
    // Worker 0 holds the last fragment, then hands over the first (and
    // the held one after it) and the middle one.
    assert_eq!(w0.send(&frags[2]).0, Verdict::Consumed);
    let mut handed = Vec::new();
    let mut b = frags[0].clone();
    let v = process(&mut b, &mut w0.ws, &w0.snap);
    assert_eq!(v, Verdict::Handover(1));
    handed.push(b);
    for (_, to, f) in w0.ws.outbox.iter_all() {
        assert_eq!(to, Some(1));
        handed.push(f.to_vec());
    }
    w0.ws.outbox.clear();
    assert_eq!(w0.send(&frags[1]).0, Verdict::Handover(1));
    handed.push(frags[1].clone());
    assert_eq!(w0.ws.frags.len(), 0, "every byte went on");
    assert_eq!(w0.ws.conns.len(), 0);
    // Worker 1 forwards them as one worker would.
    let mut out = Vec::new();
    for f in &handed {
        let (v, o) = w1.send(f);
        assert_eq!(v, Verdict::Forward);
        out.extend(o);
    }
    let (_, expected) = Lb::new("").send(&whole);
    same_datagram(&expected[0], &out, 0);
    assert_eq!(w1.ws.conns.len(), 1);
    w0.balanced();
    w1.balanced();
}

#[test]
fn a_syn_proxy_vip_takes_no_fragments() {
    let mut lb = Lb::new("");
    let seg = gen::TcpSeg {
        sport: 40009,
        dport: 80,
        flags: rampart::flow::tcp_flags::SYN,
        payload: payload(3000),
        ..Default::default()
    };
    let whole = gen::tcp(
        &FROM_CLIENTS,
        a("198.18.200.7"),
        a("198.18.100.60"),
        64,
        1,
        &seg,
    );
    let frags = gen::fragments(&whole, 1480, 0);
    assert_eq!(
        lb.send(&frags[0]).0,
        Verdict::Drop(DropReason::Ipv4Fragment)
    );
    assert_eq!(
        lb.send(&frags[1]).0,
        Verdict::Drop(DropReason::FragmentFirstDropped)
    );
    assert_eq!(lb.ws.conns.len(), 0);
}
