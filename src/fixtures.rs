//! Golden fixtures as data, in the style of Katran's `lib/testing`: rows of
//! `{description, input frame, expected verdict, expected output frame}` for
//! every forwarding mode and address family, run against the reference
//! config `configs/rampart.toml`.
//!
//! Expected frames are built field by field with [`crate::gen`], never by
//! copying what the datapath produced: the NAT expectation of a SYN is "the
//! same SYN, addressed to the backend, from our MAC to the backend's MAC",
//! built from scratch with full (not incremental) checksums. The one thing
//! taken from the program is which backend a Maglev VIP picks; that comes
//! from the stateless `which_backend` simulator ([`pick_backend`]), and the
//! Maglev tests prove the table itself.
//!
//! `rampart gen` writes each scenario as `NAME.in.pcap` (the input) and
//! `NAME.expected.pcap` (every frame the datapath must transmit, in order);
//! the replay tests run the binary over the first and compare with the
//! second, and tshark checks the output for malformed frames and checksums.

use std::path::{Path, PathBuf};

use crate::config::{self, Config};
use crate::conntrack::addr_hash;
use crate::datapath::Verdict;
use crate::flow::{tcp_flags::*, Addr, FlowKey, Mac};
use crate::gen::{self, Eth, TcpSeg};
use crate::io::PcapWriter;
use crate::sched::SchedKind;
use crate::snapshot::{Snapshot, MAGLEV_SEED};
use crate::stats::DropReason;

/// The reference config the fixtures are written against.
pub const CONFIG_TEXT: &str = include_str!("../configs/rampart.toml");
pub const CONFIG_PATH: &str = "configs/rampart.toml";

/// Capture time of the first frame: 2023-11-14T22:13:20Z.
const T0_NS: u64 = 1_700_000_000_000_000_000;

pub struct Row {
    pub desc: String,
    pub input: Vec<u8>,
    pub verdict: Verdict,
    /// The frame transmitted, for `Forward` and `Reply`.
    pub output: Option<Vec<u8>>,
}

pub struct Scenario {
    pub name: &'static str,
    pub rows: Vec<Row>,
}

pub fn config() -> Config {
    match config::parse(CONFIG_TEXT, CONFIG_PATH) {
        Ok(c) => c,
        Err(e) => panic!("the shipped reference config is invalid: {e}"),
    }
}

/// Addresses and MACs of the reference config and of the test clients.
pub mod net {
    use crate::flow::{Addr, Mac};

    pub const NODE_MAC: Mac = Mac([2, 0, 0, 0, 0, 1]);
    pub const GATEWAY_MAC: Mac = Mac([2, 0, 0, 0, 0, 0xfe]);
    pub const NODE4: Addr = Addr::from_v4([198, 18, 0, 1]);
    pub const LOCAL4: Addr = Addr::from_v4([198, 18, 0, 200]);
    pub const CLIENT4_A: Addr = Addr::from_v4([198, 18, 50, 1]);
    pub const CLIENT4_B: Addr = Addr::from_v4([198, 18, 50, 2]);
    pub const WEB4: Addr = Addr::from_v4([198, 18, 100, 10]);
    pub const API4: Addr = Addr::from_v4([198, 18, 100, 20]);
    pub const STATIC4: Addr = Addr::from_v4([198, 18, 100, 30]);

    pub fn parse(s: &str) -> Addr {
        match s.parse::<std::net::IpAddr>() {
            Ok(ip) => Addr::from(ip),
            Err(_) => panic!("bad fixture address {s}"),
        }
    }
}

/// The backend (address, port, MAC) the datapath must choose for the first
/// packet of `key`, given how many connections the VIP has seen before
/// (`nth`) for the order-based schedulers.
pub fn pick_backend(snap: &Snapshot, key: &FlowKey, nth: usize) -> (Addr, u16, Mac) {
    let vi = match snap.vip(&key.dst, key.dport, key.proto) {
        Some(v) => v as usize,
        None => panic!("fixture flow {key:?} is not for a VIP"),
    };
    let vip = &snap.vips[vi];
    let slot = match vip.sched {
        SchedKind::Maglev => {
            let Some(b) = snap.which_backend(key) else {
                panic!("fixture VIP {} has no backend", vip.name)
            };
            return (b.key.addr, b.key.port, b.mac);
        }
        SchedKind::Sh => vip.maglev.lookup(addr_hash(&key.src, MAGLEV_SEED)),
        // Fixtures use equal weights for rr and lc, and only the first pick
        // of wrr (the heaviest backend).
        SchedKind::Rr | SchedKind::Lc => Some((nth % vip.backends.len()) as u32),
        SchedKind::Wrr => {
            assert_eq!(nth, 0, "fixtures only model the first wrr pick");
            let max = vip.weights.iter().max().copied().unwrap_or(0);
            vip.weights.iter().position(|w| *w == max).map(|i| i as u32)
        }
    };
    let Some(slot) = slot else {
        panic!("fixture VIP {} has no backend", vip.name)
    };
    let b = &snap.backends[vip.backends[slot as usize] as usize];
    (b.key.addr, b.key.port, b.mac)
}

fn eth(src: Mac, dst: Mac) -> Eth {
    Eth {
        src,
        dst,
        vlan: None,
    }
}

fn seg(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> TcpSeg {
    TcpSeg {
        sport,
        dport,
        seq,
        ack,
        flags,
        window: 64_240,
        options: Vec::new(),
        payload: payload.to_vec(),
    }
}

fn syn_opts() -> Vec<u8> {
    gen::tcp_opts(Some(1460), Some(7), true, Some((0x0102_0304, 0)))
}

fn forward(desc: impl Into<String>, input: Vec<u8>, output: Vec<u8>) -> Row {
    Row {
        desc: desc.into(),
        input,
        verdict: Verdict::Forward,
        output: Some(output),
    }
}

fn reply(desc: impl Into<String>, input: Vec<u8>, output: Vec<u8>) -> Row {
    Row {
        desc: desc.into(),
        input,
        verdict: Verdict::Reply,
        output: Some(output),
    }
}

fn dropped(desc: impl Into<String>, input: Vec<u8>, reason: DropReason) -> Row {
    Row {
        desc: desc.into(),
        input,
        verdict: Verdict::Drop(reason),
        output: None,
    }
}

/// A whole TCP connection through a NAT or FullNAT VIP: handshake, a request,
/// a response, and a close started by the client. `local` is the FullNAT
/// (address, port) the client is translated to, `None` for NAT.
fn tcp_conversation(
    rows: &mut Vec<Row>,
    tag: &str,
    client: (Addr, u16),
    vip: (Addr, u16),
    backend: (Addr, u16, Mac),
    local: Option<(Addr, u16)>,
) {
    use net::*;
    let (caddr, cport) = client;
    let (baddr, bport, bmac) = backend;
    let (src_seen, sport_seen) = local.unwrap_or(client);
    let from_client = eth(GATEWAY_MAC, NODE_MAC);
    let to_backend = eth(NODE_MAC, bmac);
    let from_backend = eth(bmac, NODE_MAC);
    let to_client = eth(NODE_MAC, GATEWAY_MAC);
    let (ttl_c, ttl_b) = (61, 64);
    let cisn = 0x1000_0000u32;
    // Close to 2^32 so the backend's sequence numbers wrap during the exchange.
    let bisn = 0xffff_ffe0u32;
    let request = b"GET / HTTP/1.1\r\nHost: rampart\r\n\r\n".as_slice();
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".as_slice();

    // (description, from client?, seq, ack, flags, options, payload, ip id)
    type Step<'a> = (&'a str, bool, u32, u32, u8, Vec<u8>, &'a [u8], u16);
    let steps: Vec<Step> = vec![
        ("SYN", true, cisn, 0, SYN, syn_opts(), b"", 1),
        (
            "SYN-ACK",
            false,
            bisn,
            cisn + 1,
            SYN | ACK,
            gen::tcp_opts(Some(1460), Some(9), true, Some((0x0a0b_0c0d, 0x0102_0304))),
            b"",
            0,
        ),
        (
            "ACK",
            true,
            cisn + 1,
            bisn.wrapping_add(1),
            ACK,
            Vec::new(),
            b"",
            2,
        ),
        (
            "request",
            true,
            cisn + 1,
            bisn.wrapping_add(1),
            ACK | PSH,
            Vec::new(),
            request,
            3,
        ),
        (
            "response",
            false,
            bisn.wrapping_add(1),
            cisn + 1 + request.len() as u32,
            ACK | PSH,
            Vec::new(),
            response,
            0x4d2,
        ),
        (
            "client FIN",
            true,
            cisn + 1 + request.len() as u32,
            bisn.wrapping_add(1 + response.len() as u32),
            FIN | ACK,
            Vec::new(),
            b"",
            4,
        ),
        (
            "backend FIN",
            false,
            bisn.wrapping_add(1 + response.len() as u32),
            cisn + 2 + request.len() as u32,
            FIN | ACK,
            Vec::new(),
            b"",
            0x4d3,
        ),
        (
            "last ACK",
            true,
            cisn + 2 + request.len() as u32,
            bisn.wrapping_add(2 + response.len() as u32),
            ACK,
            Vec::new(),
            b"",
            5,
        ),
    ];
    for (what, up, seq, ack, flags, opts, payload, id) in steps {
        if up {
            let mut s = seg(cport, vip.1, seq, ack, flags, payload);
            s.options = opts.clone();
            let input = gen::tcp(&from_client, caddr, vip.0, ttl_c, id, &s);
            let mut o = seg(sport_seen, bport, seq, ack, flags, payload);
            o.options = opts;
            let output = gen::tcp(&to_backend, src_seen, baddr, ttl_c, id, &o);
            rows.push(forward(
                format!("{tag}: client {what} goes to backend {baddr}:{bport}"),
                input,
                output,
            ));
        } else {
            let mut s = seg(bport, sport_seen, seq, ack, flags, payload);
            s.options = opts.clone();
            let input = gen::tcp(&from_backend, baddr, src_seen, ttl_b, id, &s);
            let mut o = seg(vip.1, cport, seq, ack, flags, payload);
            o.options = opts;
            let output = gen::tcp(&to_client, vip.0, caddr, ttl_b, id, &o);
            rows.push(forward(
                format!("{tag}: backend {what} returns from the VIP"),
                input,
                output,
            ));
        }
    }
}

fn tcp_key(src: Addr, sport: u16, dst: Addr, dport: u16) -> FlowKey {
    FlowKey {
        src,
        dst,
        sport,
        dport,
        proto: crate::flow::proto::TCP,
    }
}

fn nat(snap: &Snapshot, v6: bool) -> Scenario {
    use net::*;
    let (vip, ca, cb) = if v6 {
        (
            parse("2001:2:0:100::10"),
            parse("2001:2:0:50::1"),
            parse("2001:2:0:50::2"),
        )
    } else {
        (WEB4, CLIENT4_A, CLIENT4_B)
    };
    let mut rows = Vec::new();
    let b = pick_backend(snap, &tcp_key(ca, 40_000, vip, 80), 0);
    tcp_conversation(&mut rows, "nat", (ca, 40_000), (vip, 80), b, None);
    // A second client, its own Maglev choice; the SYN is padded to the
    // Ethernet minimum like a real frame and the padding is kept.
    let b2 = pick_backend(snap, &tcp_key(cb, 51_515, vip, 80), 0);
    let mut s = seg(51_515, 80, 7, 0, SYN, b"");
    s.options = syn_opts();
    let mut input = gen::tcp(&eth(GATEWAY_MAC, NODE_MAC), cb, vip, 50, 0x99, &s);
    s.dport = b2.1;
    let mut output = gen::tcp(&eth(NODE_MAC, b2.2), cb, b2.0, 50, 0x99, &s);
    gen::pad_to_min(&mut input);
    gen::pad_to_min(&mut output);
    rows.push(forward(
        format!("nat: second client SYN goes to its Maglev backend {}", b2.0),
        input,
        output,
    ));
    // A reply for a connection that never existed.
    let stray = gen::tcp(
        &eth(b.2, NODE_MAC),
        b.0,
        parse(if v6 { "2001:2:0:50::9" } else { "198.18.50.9" }),
        64,
        0,
        &seg(b.1, 1234, 1, 1, ACK, b""),
    );
    rows.push(stray_reply(stray));
    Scenario {
        name: if v6 { "nat-v6" } else { "nat-v4" },
        rows,
    }
}

/// A backend packet towards an unknown client, with the table never full:
/// not a reply of ours.
fn stray_reply(stray: Vec<u8>) -> Row {
    dropped(
        "nat: backend packet with no entry is dropped",
        stray,
        DropReason::NoConn,
    )
}

fn fullnat(snap: &Snapshot, v6: bool) -> Scenario {
    use net::*;
    let (vip, ca, local) = if v6 {
        (
            parse("2001:2:0:100::20"),
            parse("2001:2:0:50::1"),
            parse("2001:2::200"),
        )
    } else {
        (API4, CLIENT4_A, LOCAL4)
    };
    let mut rows = Vec::new();
    let b = pick_backend(snap, &tcp_key(ca, 40_001, vip, 443), 0);
    // The first local port handed out by worker 0 of 1.
    let lport = crate::xmit::lport::FIRST_PORT;
    tcp_conversation(
        &mut rows,
        "fullnat",
        (ca, 40_001),
        (vip, 443),
        b,
        Some((local, lport)),
    );
    // A reply to a local port nobody holds.
    let stray = gen::tcp(
        &eth(b.2, NODE_MAC),
        b.0,
        local,
        64,
        0,
        &seg(b.1, 60_000, 1, 1, ACK, b""),
    );
    rows.push(dropped(
        "fullnat: reply to an unallocated local port",
        stray,
        DropReason::NoConn,
    ));
    // FullNAT cannot pick up a flow mid-way: the backend saw another source.
    let mid = gen::tcp(
        &eth(GATEWAY_MAC, NODE_MAC),
        ca,
        vip,
        64,
        0,
        &seg(40_002, 443, 5, 5, ACK, b""),
    );
    rows.push(dropped(
        "fullnat: mid-flow ACK with no entry",
        mid,
        DropReason::NoConn,
    ));
    Scenario {
        name: if v6 { "fullnat-v6" } else { "fullnat-v4" },
        rows,
    }
}

fn dr(snap: &Snapshot, v6: bool) -> Scenario {
    use net::*;
    let (vip, ca, cb) = if v6 {
        (
            parse("2001:2:0:100::30"),
            parse("2001:2:0:50::1"),
            parse("2001:2:0:50::2"),
        )
    } else {
        (STATIC4, CLIENT4_A, CLIENT4_B)
    };
    let mut rows = Vec::new();
    for (client, port) in [(ca, 33_000u16), (cb, 33_001)] {
        let b = pick_backend(snap, &tcp_key(client, port, vip, 80), 0);
        for (what, flags, seq, payload) in [
            ("SYN", SYN, 100u32, b"".as_slice()),
            ("ACK", ACK, 101, b""),
            ("request", ACK | PSH, 101, b"GET /static HTTP/1.1\r\n\r\n"),
        ] {
            let mut s = seg(port, 80, seq, 9, flags, payload);
            if flags == SYN {
                s.options = syn_opts();
                s.ack = 0;
            }
            let input = gen::tcp(&eth(GATEWAY_MAC, NODE_MAC), client, vip, 57, 0x77, &s);
            // Same IP packet, readdressed frame only.
            let output = gen::tcp(&eth(NODE_MAC, b.2), client, vip, 57, 0x77, &s);
            rows.push(forward(
                format!("dr: {client} {what} goes unchanged to {} by MAC", b.0),
                input,
                output,
            ));
        }
    }
    Scenario {
        name: if v6 { "dr-v6" } else { "dr-v4" },
        rows,
    }
}

fn udp(snap: &Snapshot) -> Scenario {
    use net::*;
    let mut rows = Vec::new();
    let key = |c| FlowKey {
        src: c,
        dst: WEB4,
        sport: 5300,
        dport: 53,
        proto: crate::flow::proto::UDP,
    };
    for (nth, client) in [CLIENT4_A, CLIENT4_B].into_iter().enumerate() {
        let b = pick_backend(snap, &key(client), nth);
        let q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07rampart\x00\x00\x01\x00\x01";
        let input = gen::udp(
            &eth(GATEWAY_MAC, NODE_MAC),
            client,
            WEB4,
            63,
            0x10,
            5300,
            53,
            q,
        );
        let output = gen::udp(&eth(NODE_MAC, b.2), client, b.0, 63, 0x10, 5300, b.1, q);
        rows.push(forward(
            format!("udp rr: query {nth} goes to {}:{}", b.0, b.1),
            input,
            output,
        ));
        // The same question back with the response bit set and no answers.
        let mut a = q.to_vec();
        a[2] = 0x81;
        a[3] = 0x83;
        let a = a.as_slice();
        let input = gen::udp(&eth(b.2, NODE_MAC), b.0, client, 64, 0x20, b.1, 5300, a);
        let output = gen::udp(
            &eth(NODE_MAC, GATEWAY_MAC),
            WEB4,
            client,
            64,
            0x20,
            53,
            5300,
            a,
        );
        rows.push(forward(
            format!("udp rr: answer {nth} returns from the VIP"),
            input,
            output,
        ));
    }
    Scenario {
        name: "udp-nat-v4",
        rows,
    }
}

fn neighbors() -> Scenario {
    use net::*;
    let mut rows = Vec::new();
    let asker_mac = Mac([2, 0, 0, 0, 1, 0x0b]);
    let asker = parse("198.18.1.11");
    for (what, target) in [
        ("node address", NODE4),
        ("VIP", WEB4),
        ("FullNAT local address", LOCAL4),
    ] {
        let input = gen::arp_request(asker_mac, asker, target);
        let output = gen::arp_reply(NODE_MAC, asker_mac, target, asker);
        rows.push(reply(
            format!("arp: request for our {what} {target} is answered"),
            input,
            output,
        ));
    }
    let input = gen::arp_request(asker_mac, asker, parse("198.18.9.9"));
    rows.push(dropped(
        "arp: request for someone else",
        input,
        DropReason::ArpNotForUs,
    ));

    let asker6_mac = Mac([2, 0, 0, 0, 2, 0x0b]);
    let asker6 = parse("2001:2:0:1::11");
    for (what, target) in [
        ("node address", parse("2001:2::1")),
        ("VIP", parse("2001:2:0:100::10")),
        ("FullNAT local address", parse("2001:2::200")),
    ] {
        let input = gen::neighbor_solicitation(asker6_mac, asker6, target);
        // Solicited + Override, with our MAC as target link-layer address.
        let output = gen::neighbor_advertisement(
            NODE_MAC,
            asker6_mac,
            target,
            asker6,
            target,
            0x6000_0000,
            Some(NODE_MAC),
        );
        rows.push(reply(
            format!("nd: solicitation for our {what} {target} is answered"),
            input,
            output,
        ));
    }
    let input = gen::neighbor_solicitation(asker6_mac, asker6, parse("2001:2::99"));
    rows.push(dropped(
        "nd: solicitation for someone else",
        input,
        DropReason::NdNotForUs,
    ));
    Scenario {
        name: "neighbors",
        rows,
    }
}

fn refusals() -> Scenario {
    use net::*;
    let mut rows = Vec::new();
    let e = eth(GATEWAY_MAC, NODE_MAC);
    let s = seg(40_000, 80, 1, 0, SYN, b"");
    let v6vip = parse("2001:2:0:100::10");
    let v6c = parse("2001:2:0:50::1");
    rows.push(dropped(
        "IPv4 options are refused",
        gen::ipv4_with_options(&e, CLIENT4_A, WEB4, 1, &[1, 1, 1, 0], &s),
        DropReason::Ipv4Options,
    ));
    rows.push(dropped(
        "IPv4 first fragment is refused",
        gen::ipv4_fragment(
            &e,
            CLIENT4_A,
            WEB4,
            2,
            crate::flow::proto::UDP,
            0,
            true,
            &[0u8; 64],
        ),
        DropReason::Ipv4Fragment,
    ));
    rows.push(dropped(
        "IPv4 later fragment is refused",
        gen::ipv4_fragment(
            &e,
            CLIENT4_A,
            WEB4,
            2,
            crate::flow::proto::UDP,
            8,
            false,
            &[0u8; 16],
        ),
        DropReason::Ipv4Fragment,
    ));
    rows.push(dropped(
        "IPv6 fragment header is refused",
        gen::ipv6_with_fragment_header(
            &e,
            v6c,
            v6vip,
            7,
            crate::flow::proto::UDP,
            0,
            true,
            &[0u8; 64],
        ),
        DropReason::Ipv6ExtHeader,
    ));
    rows.push(dropped(
        "stacked VLANs are refused",
        gen::stacked_vlan(&e, 100, CLIENT4_A, WEB4, &s),
        DropReason::StackedVlan,
    ));
    rows.push(dropped(
        "a frame for another MAC",
        gen::tcp(
            &eth(GATEWAY_MAC, Mac([2, 9, 9, 9, 9, 9])),
            CLIENT4_A,
            WEB4,
            64,
            0,
            &s,
        ),
        DropReason::NotOurMac,
    ));
    rows.push(dropped(
        "TCP to an address that is no VIP",
        gen::tcp(&e, CLIENT4_A, parse("198.18.100.99"), 64, 0, &s),
        DropReason::NoVip,
    ));
    rows.push(dropped(
        "TCP to a VIP address on a port it does not serve",
        gen::tcp(
            &e,
            CLIENT4_A,
            WEB4,
            64,
            0,
            &seg(40_000, 8080, 1, 0, SYN, b""),
        ),
        DropReason::NoService,
    ));
    rows.push(dropped(
        "TCP to our own address",
        gen::tcp(
            &e,
            CLIENT4_A,
            NODE4,
            64,
            0,
            &seg(40_000, 22, 1, 0, SYN, b""),
        ),
        DropReason::LocalNotHandled,
    ));
    rows.push(dropped(
        "ping to our address",
        gen::icmp_echo_request(&e, CLIENT4_A, NODE4, 1, 1),
        DropReason::IcmpUnsupported,
    ));
    let mut trunc = gen::tcp(&e, CLIENT4_A, WEB4, 64, 0, &s);
    trunc.truncate(40);
    rows.push(dropped(
        "a truncated TCP header",
        trunc,
        DropReason::Malformed,
    ));
    rows.push(dropped(
        "a frame of garbage",
        vec![0xab; 20],
        DropReason::UnsupportedEtherType,
    ));
    // A VLAN-tagged SYN is handled and keeps its tag.
    Scenario {
        name: "refusals",
        rows,
    }
}

fn vlan(snap: &Snapshot) -> Scenario {
    use net::*;
    let key = tcp_key(CLIENT4_A, 44_444, WEB4, 80);
    let b = pick_backend(snap, &key, 0);
    let mut s = seg(44_444, 80, 1, 0, SYN, b"");
    s.options = syn_opts();
    let input = gen::tcp(
        &Eth {
            src: GATEWAY_MAC,
            dst: NODE_MAC,
            vlan: Some(42),
        },
        CLIENT4_A,
        WEB4,
        64,
        3,
        &s,
    );
    s.dport = b.1;
    let output = gen::tcp(
        &Eth {
            src: NODE_MAC,
            dst: b.2,
            vlan: Some(42),
        },
        CLIENT4_A,
        b.0,
        64,
        3,
        &s,
    );
    Scenario {
        name: "vlan-v4",
        rows: vec![forward(
            "vlan: tagged SYN keeps its 802.1Q tag",
            input,
            output,
        )],
    }
}

/// Every scenario, each to be run on a fresh worker.
pub fn scenarios() -> Vec<Scenario> {
    let snap = Snapshot::build(&config());
    vec![
        nat(&snap, false),
        nat(&snap, true),
        fullnat(&snap, false),
        fullnat(&snap, true),
        dr(&snap, false),
        dr(&snap, true),
        udp(&snap),
        vlan(&snap),
        neighbors(),
        refusals(),
    ]
}

/// Frame `i`'s capture time: one millisecond apart.
pub fn timestamp(i: usize) -> u64 {
    T0_NS + i as u64 * 1_000_000
}

/// Writes `NAME.in.pcap` and `NAME.expected.pcap` for every scenario.
pub fn write_all(dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for sc in scenarios() {
        let inp = dir.join(format!("{}.in.pcap", sc.name));
        let exp = dir.join(format!("{}.expected.pcap", sc.name));
        let mut wi = PcapWriter::create(&inp).map_err(|e| e.to_string())?;
        let mut we = PcapWriter::create(&exp).map_err(|e| e.to_string())?;
        for (i, row) in sc.rows.iter().enumerate() {
            wi.write(&row.input, timestamp(i))
                .map_err(|e| e.to_string())?;
            if let Some(o) = &row.output {
                we.write(o, timestamp(i)).map_err(|e| e.to_string())?;
            }
        }
        wi.finish().map_err(|e| e.to_string())?;
        we.finish().map_err(|e| e.to_string())?;
        written.push(inp);
        written.push(exp);
    }
    Ok(written)
}

/// The fuzz seed corpus: every scenario as one input (so the fuzzer starts
/// from whole conversations) and every frame alone.
pub fn fuzz_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for sc in scenarios() {
        let all: Vec<&[u8]> = sc.rows.iter().map(|r| r.input.as_slice()).collect();
        seeds.push((format!("{}-all", sc.name), crate::harness::join(&all)));
        for (i, f) in all.iter().enumerate() {
            seeds.push((format!("{}-{i:02}", sc.name), crate::harness::join(&[f])));
        }
    }
    seeds
}

/// Writes [`fuzz_seeds`] into `dir`, one file per seed.
pub fn write_fuzz_corpus(dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for (name, data) in fuzz_seeds() {
        let p = dir.join(name);
        std::fs::write(&p, data).map_err(|e| format!("{}: {e}", p.display()))?;
        written.push(p);
    }
    Ok(written)
}

/// A synthetic capture for throughput runs: `flows` TCP connections from
/// distinct clients (198.18.128.0/17, ports 1024-65535) to the reference
/// config's NAT VIP `web`, each a handshake followed by data segments from
/// both sides, `packets_per_flow` frames per flow in all (at least 3).
/// Flows are interleaved round by round, so every connection stays live
/// until the end: a replay holds `flows` entries at once.
pub fn write_traffic(path: &Path, flows: u32, packets_per_flow: u32) -> Result<u64, String> {
    use net::*;
    let snap = Snapshot::build(&config());
    let mut w = PcapWriter::create(path).map_err(|e| e.to_string())?;
    let per = packets_per_flow.max(3);
    let client = |i: u32| {
        let host = 0x8000 + i / 64_512;
        let port = 1024 + (i % 64_512) as u16;
        (
            Addr::from_v4([198, 18, (host >> 8) as u8, host as u8]),
            port,
        )
    };
    let backends: Vec<(Addr, u16, Mac)> = (0..flows)
        .map(|i| {
            let (a, p) = client(i);
            pick_backend(&snap, &tcp_key(a, p, WEB4, 80), 0)
        })
        .collect();
    let payload = [0x5au8; 64];
    let mut written = 0u64;
    for round in 0..per {
        for (i, b) in backends.iter().enumerate() {
            let (caddr, cport) = client(i as u32);
            let (flags, from_client) = match round {
                0 => (SYN, true),
                1 => (SYN | ACK, false),
                2 => (ACK, true),
                r => (ACK | PSH, r % 2 == 1),
            };
            let data: &[u8] = if round >= 3 { &payload } else { b"" };
            let frame = if from_client {
                gen::tcp(
                    &eth(GATEWAY_MAC, NODE_MAC),
                    caddr,
                    WEB4,
                    64,
                    0,
                    &seg(cport, 80, 1 + round, 1, flags, data),
                )
            } else {
                gen::tcp(
                    &eth(b.2, NODE_MAC),
                    b.0,
                    caddr,
                    64,
                    0,
                    &seg(b.1, cport, 1 + round, 1, flags, data),
                )
            };
            w.write(&frame, T0_NS + written * 1_000)
                .map_err(|e| e.to_string())?;
            written += 1;
        }
    }
    w.finish().map_err(|e| e.to_string())?;
    Ok(written)
}
