//! Behaviour tests of the PROXY protocol v2 header (`rampart::proxy_protocol`)
//! with real frames, for NAT and FullNAT, IPv4 and IPv6, with and without the
//! SYN proxy.
//!
//! Frames built with `rampart::gen` go through `process`; every frame that
//! comes out (the burst's own or one the worker originated) is decoded by
//! the small parser below, which checks the lengths and recomputes the IP
//! and TCP checksums from scratch, and the PROXY header is read back by a
//! decoder written from the spec's layout. Expected numbers are worked out
//! here from the design in the module doc: client -> backend `seq += H`,
//! backend -> client `ack -= H` and SACK edges likewise, acknowledgments
//! inside the header raised to the client's ISN + 1 until the backend has
//! acknowledged it all.
//!
//! After every packet the counters must add up:
//! `rx_packets == tx_packets + consumed + dropped_total()`.

use std::net::IpAddr;

use rampart::config::{self, Mode};
use rampart::datapath::{process, Verdict, WorkerState};
use rampart::flow::tcp_flags::{ACK, FIN, PSH, RST, SYN};
use rampart::flow::{proto, Addr, Mac};
use rampart::gen::{self, Eth, TcpSeg};
use rampart::snapshot::Snapshot;
use rampart::stats::{DropReason, Event};
use rampart::xmit::lport::FIRST_PORT;
use rampart_testkit::toml::{self, Vip};

const SEED: u64 = 0x5050_7632_7465_7374;
const NODE_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
const GATEWAY_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0xfe]);
const CLIENT_ISN: u32 = 0xffff_fff0; // the header straddles the wrap
const BACKEND_ISN: u32 = 0x7000_0000;
const OUR_TTL: u8 = 61;

fn ip(s: &str) -> Addr {
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => Addr::from_v4(a.octets()),
        Ok(IpAddr::V6(a)) => Addr::from_v6(a.octets()),
        Err(e) => panic!("{s}: {e}"),
    }
}

fn config_text() -> String {
    let vip = |name, address, port, mode| Vip::new(name, address, port, "tcp", mode).table_size(7);
    let vips = [
        vip("nat4", "198.18.100.10", 80, "nat")
            .proxy_v2()
            .backends(&["198.18.1.11"], 8080),
        vip("full4", "198.18.100.20", 443, "fullnat")
            .local_addresses(&["198.18.0.200"])
            .proxy_v2()
            .backends(&["198.18.1.12"], 8443),
        vip("nat6", "2001:2::100:10", 80, "nat")
            .proxy_v2()
            .backends(&["2001:2:0:1::11"], 8080),
        vip("full6", "2001:2::100:20", 443, "fullnat")
            .local_addresses(&["2001:2::200"])
            .proxy_v2()
            .backends(&["2001:2:0:1::12"], 8443),
        vip("spnat4", "198.18.100.10", 81, "nat")
            .synproxy()
            .proxy_v2()
            .backends(&["198.18.1.11"], 8081),
        vip("spfull4", "198.18.100.20", 444, "fullnat")
            .local_addresses(&["198.18.0.201"])
            .synproxy()
            .proxy_v2()
            .backends(&["198.18.1.12"], 8444),
        vip("spnat6", "2001:2::100:10", 81, "nat")
            .synproxy()
            .proxy_v2()
            .backends(&["2001:2:0:1::11"], 8081),
        vip("spfull6", "2001:2::100:20", 444, "fullnat")
            .local_addresses(&["2001:2::201"])
            .synproxy()
            .proxy_v2()
            .backends(&["2001:2:0:1::12"], 8444),
        // The same backend without the header: its connections stay plain.
        vip("plain4", "198.18.100.30", 80, "nat").backends(&["198.18.1.13"], 8080),
    ];
    format!(
        "{}\n[conntrack]\ncapacity = 256\n\n[synproxy]\nsecret = \"0f1e2d3c4b5a69788796a5b4c3d2e1f0\"\nttl = {OUR_TTL}\n{}",
        toml::node(
            &["198.18.0.1", "2001:2::1"],
            &[
                "198.18.1.11",
                "198.18.1.12",
                "198.18.1.13",
                "2001:2:0:1::11",
                "2001:2:0:1::12"
            ],
        ),
        vips.map(|v| v.to_string()).concat()
    )
}

/// One connection's ends and where the backend sees the client.
#[derive(Clone, Copy, Debug)]
struct Ends {
    client: Addr,
    cport: u16,
    vip: Addr,
    vport: u16,
    backend: Addr,
    bport: u16,
    bmac: Mac,
    seen_as: (Addr, u16),
    synproxy: bool,
}

fn ends(mode: Mode, v6: bool, synproxy: bool) -> Ends {
    let (vip, vport, backend, bport, bmac, local) = match (mode, v6) {
        (Mode::Nat, false) => ("198.18.100.10", 80, "198.18.1.11", 8080, 0x0b, None),
        (Mode::FullNat, false) => (
            "198.18.100.20",
            443,
            "198.18.1.12",
            8443,
            0x0c,
            Some(if synproxy {
                "198.18.0.201"
            } else {
                "198.18.0.200"
            }),
        ),
        (Mode::Nat, true) => ("2001:2::100:10", 80, "2001:2:0:1::11", 8080, 0x0b, None),
        (Mode::FullNat, true) => (
            "2001:2::100:20",
            443,
            "2001:2:0:1::12",
            8443,
            0x0c,
            Some(if synproxy {
                "2001:2::201"
            } else {
                "2001:2::200"
            }),
        ),
        _ => panic!("no such service"),
    };
    let client = if v6 {
        ip("2001:2:0:50::7")
    } else {
        ip("198.18.50.7")
    };
    let cport = 40_001;
    let step = u16::from(synproxy);
    Ends {
        client,
        cport,
        vip: ip(vip),
        vport: vport + step,
        backend: ip(backend),
        bport: bport + step,
        bmac: Mac([0x02, 0, 0, 0, if v6 { 2 } else { 1 }, bmac]),
        seen_as: match local {
            Some(l) => (ip(l), FIRST_PORT),
            None => (client, cport),
        },
        synproxy,
    }
}

fn seg(seq: u32, ack: u32, flags: u8, options: Vec<u8>, payload: &[u8]) -> TcpSeg {
    TcpSeg {
        sport: 0,
        dport: 0,
        seq,
        ack,
        flags,
        window: 5000,
        options,
        payload: payload.to_vec(),
    }
}

fn ts(val: u32, ecr: u32) -> Vec<u8> {
    let mut o = vec![1, 1, 8, 10];
    o.extend_from_slice(&val.to_be_bytes());
    o.extend_from_slice(&ecr.to_be_bytes());
    o
}

fn ts_sack(val: u32, ecr: u32, blocks: &[(u32, u32)]) -> Vec<u8> {
    let mut o = ts(val, ecr);
    o.extend_from_slice(&[1, 1, 5, 2 + 8 * blocks.len() as u8]);
    for (l, r) in blocks {
        o.extend_from_slice(&l.to_be_bytes());
        o.extend_from_slice(&r.to_be_bytes());
    }
    o
}

impl Ends {
    fn client_sends(&self, s: TcpSeg) -> Vec<u8> {
        let eth = Eth {
            src: GATEWAY_MAC,
            dst: NODE_MAC,
            vlan: None,
        };
        let s = TcpSeg {
            sport: self.cport,
            dport: self.vport,
            ..s
        };
        gen::tcp(&eth, self.client, self.vip, 57, 0x1111, &s)
    }

    fn backend_sends(&self, s: TcpSeg) -> Vec<u8> {
        let eth = Eth {
            src: self.bmac,
            dst: NODE_MAC,
            vlan: None,
        };
        let s = TcpSeg {
            sport: self.bport,
            dport: self.seen_as.1,
            ..s
        };
        gen::tcp(&eth, self.backend, self.seen_as.0, 63, 0x2222, &s)
    }

    fn header_len(&self) -> u32 {
        if self.client.is_v4() {
            28
        } else {
            52
        }
    }

    #[track_caller]
    fn assert_to_backend(&self, t: &Tcp) {
        assert_eq!(t.dst_mac, self.bmac);
        assert_eq!(t.src_mac, NODE_MAC);
        assert_eq!(
            (t.src, t.sport),
            self.seen_as,
            "the backend's view of the client"
        );
        assert_eq!((t.dst, t.dport), (self.backend, self.bport));
    }

    #[track_caller]
    fn assert_to_client(&self, t: &Tcp) {
        assert_eq!(t.dst_mac, GATEWAY_MAC);
        assert_eq!((t.src, t.sport), (self.vip, self.vport));
        assert_eq!((t.dst, t.dport), (self.client, self.cport));
    }
}

// ---- an independent decoder ---------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Tcp {
    src_mac: Mac,
    dst_mac: Mac,
    src: Addr,
    dst: Addr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    ts: Option<(u32, u32)>,
    sack: Vec<(u32, u32)>,
    payload: Vec<u8>,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn sum16(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|w| u32::from(w[0]) << 8 | u32::from(*w.get(1).unwrap_or(&0)))
        .sum()
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Decodes Ethernet + IPv4/IPv6 + TCP; panics unless lengths agree and both
/// checksums verify.
#[track_caller]
fn decode(f: &[u8]) -> Tcp {
    let mac = |at: usize| Mac(f[at..at + 6].try_into().unwrap());
    let ipb = &f[14..];
    let (src, dst, tcp, pseudo) = match be16(f, 12) {
        0x0800 => {
            assert_eq!(ipb[0], 0x45);
            assert_eq!(usize::from(be16(ipb, 2)), ipb.len(), "IPv4 total length");
            assert_eq!(ipb[9], proto::TCP);
            assert_eq!(fold(sum16(&ipb[..20])), 0xffff, "IPv4 header checksum");
            let tcp = &ipb[20..];
            let p = sum16(&ipb[12..20]) + u32::from(proto::TCP) + tcp.len() as u32;
            (
                Addr::from_v4(ipb[12..16].try_into().unwrap()),
                Addr::from_v4(ipb[16..20].try_into().unwrap()),
                tcp,
                p,
            )
        }
        0x86dd => {
            assert_eq!(
                40 + usize::from(be16(ipb, 4)),
                ipb.len(),
                "IPv6 payload length"
            );
            assert_eq!(ipb[6], proto::TCP);
            let tcp = &ipb[40..];
            let p = sum16(&ipb[8..40]) + u32::from(proto::TCP) + tcp.len() as u32;
            (
                Addr::from_v6(ipb[8..24].try_into().unwrap()),
                Addr::from_v6(ipb[24..40].try_into().unwrap()),
                tcp,
                p,
            )
        }
        t => panic!("EtherType {t:#06x}"),
    };
    assert_eq!(fold(pseudo + sum16(tcp)), 0xffff, "TCP checksum");
    let hlen = usize::from(tcp[12] >> 4) * 4;
    let mut out = Tcp {
        src_mac: mac(6),
        dst_mac: mac(0),
        src,
        dst,
        sport: be16(tcp, 0),
        dport: be16(tcp, 2),
        seq: be32(tcp, 4),
        ack: be32(tcp, 8),
        flags: tcp[13],
        window: be16(tcp, 14),
        payload: tcp[hlen..].to_vec(),
        ..Tcp::default()
    };
    let mut o = &tcp[20..hlen];
    while let Some(&kind) = o.first() {
        match kind {
            0 => break,
            1 => {
                o = &o[1..];
                continue;
            }
            _ => {}
        }
        let len = usize::from(o[1]);
        let body = &o[2..len];
        match kind {
            8 => out.ts = Some((be32(body, 0), be32(body, 4))),
            5 => out.sack = body.chunks(8).map(|c| (be32(c, 0), be32(c, 4))).collect(),
            _ => {}
        }
        o = &o[len..];
    }
    out
}

/// A PROXY v2 header read from the spec's layout (proxy-protocol.txt §2.2):
/// ((source address, port), (destination address, port)) and its length.
#[track_caller]
fn decode_proxy(b: &[u8]) -> ((IpAddr, u16), (IpAddr, u16), usize) {
    assert_eq!(&b[..12], b"\r\n\r\n\0\r\nQUIT\n", "signature");
    assert_eq!(b[12], 0x21, "version 2, PROXY");
    let len = usize::from(be16(b, 14));
    let a = &b[16..16 + len];
    let (s, d, ports) = match b[13] {
        0x11 => {
            assert_eq!(len, 12);
            let v4 = |o: usize| IpAddr::from(<[u8; 4]>::try_from(&a[o..o + 4]).unwrap());
            (v4(0), v4(4), 8)
        }
        0x21 => {
            assert_eq!(len, 36);
            let v6 = |o: usize| IpAddr::from(<[u8; 16]>::try_from(&a[o..o + 16]).unwrap());
            (v6(0), v6(16), 32)
        }
        f => panic!("family/transport {f:#04x}"),
    };
    ((s, be16(a, ports)), (d, be16(a, ports + 2)), 16 + len)
}

fn std_ip(a: Addr) -> IpAddr {
    if a.is_v4() {
        IpAddr::from(a.v4_octets())
    } else {
        IpAddr::from(a.0)
    }
}

// ---- the load balancer under test --------------------------------------------

struct Lb {
    snap: Snapshot,
    ws: WorkerState,
}

impl Lb {
    fn new() -> Lb {
        let text = config_text();
        let snap = match config::parse(&text, "proxy-test.toml") {
            Ok(c) => Snapshot::build(&c),
            Err(e) => panic!("test config is invalid: {e}\n{text}"),
        };
        let ws = WorkerState::new(&snap, 0, 1, SEED);
        Lb { snap, ws }
    }

    #[track_caller]
    fn send(&mut self, mut frame: Vec<u8>) -> (Verdict, Vec<u8>) {
        let v = process(&mut frame, &mut self.ws, &self.snap);
        let s = &self.ws.stats;
        assert_eq!(
            s.rx_packets,
            s.tx_packets + s.consumed + s.dropped_total(),
            "rx = tx + consumed + dropped"
        );
        (v, frame)
    }

    #[track_caller]
    fn forward(&mut self, frame: Vec<u8>) -> Tcp {
        let (v, out) = self.send(frame);
        assert_eq!(v, Verdict::Forward);
        assert!(self.ws.outbox.is_empty(), "nothing originated");
        decode(&out)
    }

    /// Sends a frame the worker takes over; returns what it originated.
    #[track_caller]
    fn consumed(&mut self, frame: Vec<u8>) -> Vec<Tcp> {
        let (v, _) = self.send(frame);
        assert_eq!(v, Verdict::Consumed);
        self.outbox()
    }

    fn outbox(&mut self) -> Vec<Tcp> {
        let out = self.ws.outbox.iter().map(|(_, f)| decode(f)).collect();
        self.ws.outbox.clear();
        out
    }

    fn event(&self, e: Event) -> u64 {
        self.ws.stats.events[e as usize]
    }
}

/// What a test knows of one connection once the header went out.
struct Conn {
    /// The client's ISN + 1: the header's first byte.
    c1: u32,
    /// Backend sequence numbers as the client sees them = backend's - this.
    delta: u32,
    /// The backend's ISN + 1 in its own space.
    b1: u32,
}

#[track_caller]
fn assert_header(e: &Ends, t: &Tcp, c1: u32, b1: u32) {
    e.assert_to_backend(t);
    assert_eq!(t.seq, c1, "the header is the first byte after the SYN");
    assert_eq!(t.ack, b1);
    assert_eq!(t.flags, ACK | PSH);
    let (src, dst, n) = decode_proxy(&t.payload);
    assert_eq!(n, t.payload.len(), "the segment carries the header alone");
    assert_eq!(n as u32, e.header_len());
    assert_eq!(src, (std_ip(e.client), e.cport), "source: the client");
    assert_eq!(dst, (std_ip(e.vip), e.vport), "destination: the VIP");
}

/// The handshake, up to the header's departure (no client data).
#[track_caller]
fn open(lb: &mut Lb, e: Ends) -> Conn {
    let c1 = CLIENT_ISN.wrapping_add(1);
    let b1 = BACKEND_ISN.wrapping_add(1);
    if e.synproxy {
        let synack = {
            let (v, out) = lb.send(e.client_sends(seg(
                CLIENT_ISN,
                0,
                SYN,
                gen::tcp_opts(Some(1460), Some(7), true, Some((100, 0))),
                b"",
            )));
            assert_eq!(v, Verdict::Reply, "a cookie SYN-ACK");
            decode(&out)
        };
        let cookie = synack.seq;
        let our_ts = synack.ts.expect("timestamps").0;
        let syn =
            lb.consumed(e.client_sends(seg(c1, cookie.wrapping_add(1), ACK, ts(101, our_ts), b"")));
        assert_eq!(syn.len(), 1);
        e.assert_to_backend(&syn[0]);
        assert_eq!(syn[0].flags, SYN);
        assert_eq!(
            syn[0].seq, CLIENT_ISN,
            "the client's ISN goes to the backend"
        );
        let out = lb.consumed(e.backend_sends(seg(
            BACKEND_ISN,
            c1,
            SYN | ACK,
            gen::tcp_opts(Some(1460), Some(7), true, Some((9000, 101))),
            b"",
        )));
        assert_eq!(
            out.len(),
            1,
            "the ACK of the backend's SYN-ACK carries the header"
        );
        assert_header(&e, &out[0], c1, b1);
        assert_eq!(
            out[0].ts,
            Some((101, 9000)),
            "the client's TSval, the backend's echoed"
        );
        Conn {
            c1,
            delta: BACKEND_ISN.wrapping_sub(cookie),
            b1,
        }
    } else {
        let t = lb.forward(e.client_sends(seg(
            CLIENT_ISN,
            0,
            SYN,
            gen::tcp_opts(Some(1460), Some(7), true, Some((100, 0))),
            b"",
        )));
        e.assert_to_backend(&t);
        assert_eq!(
            (t.seq, t.flags),
            (CLIENT_ISN, SYN),
            "the SYN goes unchanged"
        );
        let t = lb.forward(e.backend_sends(seg(
            BACKEND_ISN,
            c1,
            SYN | ACK,
            gen::tcp_opts(Some(1460), Some(7), true, Some((9000, 100))),
            b"",
        )));
        e.assert_to_client(&t);
        assert_eq!(
            (t.seq, t.ack),
            (BACKEND_ISN, c1),
            "the SYN-ACK goes unchanged"
        );
        assert_eq!(
            lb.event(Event::ProxyHeaderSent),
            0,
            "not before the client's ACK"
        );
        let out = lb.consumed(e.client_sends(seg(c1, b1, ACK, ts(101, 9000), b"")));
        assert_eq!(
            out.len(),
            1,
            "the client's ACK becomes the header's segment"
        );
        assert_header(&e, &out[0], c1, b1);
        assert_eq!(out[0].ts, Some((101, 9000)), "the client ACK's timestamps");
        assert_eq!(out[0].window, 5000, "the client ACK's window");
        Conn { c1, delta: 0, b1 }
    }
}

fn each(f: impl Fn(Ends)) {
    for synproxy in [false, true] {
        for mode in [Mode::Nat, Mode::FullNat] {
            for v6 in [false, true] {
                f(ends(mode, v6, synproxy));
            }
        }
    }
}

#[test]
fn header_goes_right_after_the_handshake() {
    each(|e| {
        let mut lb = Lb::new();
        open(&mut lb, e);
        assert_eq!(lb.event(Event::ProxyHeaderSent), 1, "{e:?}");
        assert_eq!(lb.event(Event::ProxyHeaderResent), 0);
    });
}

#[test]
fn both_directions_translate_for_the_life_of_the_connection() {
    each(|e| {
        let mut lb = Lb::new();
        let c = open(&mut lb, e);
        let h = e.header_len();
        // Client data: shifted past the header.
        let t = lb.forward(e.client_sends(seg(
            c.c1,
            c.b1.wrapping_sub(c.delta),
            ACK | PSH,
            ts(102, 9000),
            b"GET / HTTP/1.0\r\n\r\n",
        )));
        e.assert_to_backend(&t);
        assert_eq!(t.seq, c.c1.wrapping_add(h), "{e:?}");
        assert_eq!(t.ack, c.b1, "acknowledgment in the backend's space");
        assert_eq!(t.payload, b"GET / HTTP/1.0\r\n\r\n");
        // The backend acknowledges header and data and answers.
        let end = c.c1.wrapping_add(h + 18);
        let t = lb.forward(e.backend_sends(seg(
            c.b1,
            end,
            ACK | PSH,
            ts(9001, 102),
            b"HTTP/1.0 200 OK\r\n",
        )));
        e.assert_to_client(&t);
        assert_eq!(
            t.ack,
            c.c1.wrapping_add(18),
            "the client's own bytes acknowledged"
        );
        assert_eq!(t.seq, c.b1.wrapping_sub(c.delta));
        assert_eq!(t.payload, b"HTTP/1.0 200 OK\r\n");
        // SACK blocks number the client's bytes: shifted back too.
        let blocks = [
            (end.wrapping_add(100), end.wrapping_add(200)),
            (end.wrapping_add(300), end.wrapping_add(310)),
        ];
        let t = lb.forward(e.backend_sends(seg(
            c.b1.wrapping_add(17),
            end,
            ACK,
            ts_sack(9002, 102, &blocks),
            b"",
        )));
        assert_eq!(t.ack, c.c1.wrapping_add(18));
        let want: Vec<_> = blocks
            .iter()
            .map(|(l, r)| (l.wrapping_sub(h), r.wrapping_sub(h)))
            .collect();
        assert_eq!(t.sack, want, "{e:?}");
        // The client's SACK of backend bytes is in the backend's space.
        let t = lb.forward(e.client_sends(seg(
            c.c1.wrapping_add(18),
            c.b1.wrapping_add(17).wrapping_sub(c.delta),
            ACK,
            ts_sack(
                103,
                9002,
                &[(
                    c.b1.wrapping_add(50).wrapping_sub(c.delta),
                    c.b1.wrapping_add(60).wrapping_sub(c.delta),
                )],
            ),
            b"",
        )));
        assert_eq!(t.seq, c.c1.wrapping_add(18 + h));
        assert_eq!(t.sack, vec![(c.b1.wrapping_add(50), c.b1.wrapping_add(60))]);
        // A FIN from the client, and the backend's answer.
        let t = lb.forward(e.client_sends(seg(
            c.c1.wrapping_add(18),
            c.b1.wrapping_add(17).wrapping_sub(c.delta),
            FIN | ACK,
            ts(104, 9002),
            b"",
        )));
        assert_eq!(t.seq, c.c1.wrapping_add(18 + h));
        let t = lb.forward(e.backend_sends(seg(
            c.b1.wrapping_add(17),
            end.wrapping_add(1),
            FIN | ACK,
            ts(9003, 104),
            b"",
        )));
        assert_eq!(t.ack, c.c1.wrapping_add(19));
        assert_eq!(lb.event(Event::ProxyHeaderResent), 0);
    });
}

#[test]
fn resets_carry_translated_numbers() {
    each(|e| {
        let mut lb = Lb::new();
        let c = open(&mut lb, e);
        let h = e.header_len();
        let t = lb.forward(e.client_sends(seg(c.c1.wrapping_add(5), 0, RST, vec![], b"")));
        assert_eq!(t.seq, c.c1.wrapping_add(5 + h), "{e:?}");
        assert_eq!(t.flags, RST);

        let mut lb = Lb::new();
        let c = open(&mut lb, e);
        let t = lb.forward(e.backend_sends(seg(
            c.b1,
            c.c1.wrapping_add(h + 7),
            RST | ACK,
            vec![],
            b"",
        )));
        e.assert_to_client(&t);
        assert_eq!(t.ack, c.c1.wrapping_add(7));
        assert_eq!(t.seq, c.b1.wrapping_sub(c.delta));
    });
}

#[test]
fn client_reset_before_the_header_is_not_shifted() {
    for mode in [Mode::Nat, Mode::FullNat] {
        for v6 in [false, true] {
            let e = ends(mode, v6, false);
            let mut lb = Lb::new();
            let c1 = CLIENT_ISN.wrapping_add(1);
            lb.forward(e.client_sends(seg(CLIENT_ISN, 0, SYN, vec![], b"")));
            lb.forward(e.backend_sends(seg(BACKEND_ISN, c1, SYN | ACK, vec![], b"")));
            let t = lb.forward(e.client_sends(seg(c1, 0, RST, vec![], b"")));
            assert_eq!(t.seq, c1, "the backend expects the client's own number");
            assert_eq!(lb.event(Event::ProxyHeaderSent), 0);
        }
    }
}

#[test]
fn lost_header_is_sent_again_when_the_backend_repeats_its_syn_ack() {
    for mode in [Mode::Nat, Mode::FullNat] {
        for v6 in [false, true] {
            let e = ends(mode, v6, false);
            let mut lb = Lb::new();
            let c = open(&mut lb, e);
            // The header was lost: the backend, still in SYN-RECEIVED,
            // repeats its SYN-ACK.
            let (v, out) = lb.send(e.backend_sends(seg(
                BACKEND_ISN,
                c.c1,
                SYN | ACK,
                gen::tcp_opts(Some(1460), Some(7), true, Some((9500, 100))),
                b"",
            )));
            assert_eq!(v, Verdict::Forward);
            let t = decode(&out);
            e.assert_to_client(&t);
            assert_eq!(t.ack, c.c1, "nothing of the client's acknowledged");
            let again = lb.outbox();
            assert_eq!(again.len(), 1);
            assert_header(&e, &again[0], c.c1, c.b1);
            assert_eq!(
                again[0].ts,
                Some((101, 9500)),
                "echoes the repeated SYN-ACK"
            );
            assert_eq!(lb.event(Event::ProxyHeaderResent), 1);
        }
    }
}

#[test]
fn synproxy_resends_the_header_with_its_ack() {
    for mode in [Mode::Nat, Mode::FullNat] {
        for v6 in [false, true] {
            let e = ends(mode, v6, true);
            let mut lb = Lb::new();
            let c = open(&mut lb, e);
            // Our ACK, and the header with it, was lost: the backend repeats
            // its SYN-ACK and gets both again.
            let out = lb.consumed(e.backend_sends(seg(
                BACKEND_ISN,
                c.c1,
                SYN | ACK,
                gen::tcp_opts(Some(1460), Some(7), true, Some((9500, 101))),
                b"",
            )));
            assert_eq!(out.len(), 1);
            assert_header(&e, &out[0], c.c1, c.b1);
            assert_eq!(out[0].ts, Some((101, 9500)));
            assert_eq!(lb.event(Event::ProxyHeaderResent), 1);
        }
    }
}

#[test]
fn lost_header_is_sent_again_on_an_ack_short_of_it() {
    each(|e| {
        let mut lb = Lb::new();
        let c = open(&mut lb, e);
        let h = e.header_len();
        // Client data reaches the backend, the header did not.
        let t = lb.forward(e.client_sends(seg(
            c.c1,
            c.b1.wrapping_sub(c.delta),
            ACK | PSH,
            ts(102, 9000),
            b"hello",
        )));
        assert_eq!(t.seq, c.c1.wrapping_add(h));
        // The backend acknowledges up to the header's first byte and SACKs
        // the data.
        let sacked = (c.c1.wrapping_add(h), c.c1.wrapping_add(h + 5));
        let (v, out) =
            lb.send(e.backend_sends(seg(c.b1, c.c1, ACK, ts_sack(9001, 102, &[sacked]), b"")));
        assert_eq!(v, Verdict::Forward);
        let t = decode(&out);
        assert_eq!(t.ack, c.c1, "{e:?}");
        assert_eq!(t.sack, vec![(c.c1, c.c1.wrapping_add(5))]);
        let again = lb.outbox();
        assert_eq!(again.len(), 1, "the header again");
        assert_header(&e, &again[0], c.c1, c.b1);
        assert_eq!(again[0].ts, Some((101, 9001)));
        assert_eq!(lb.event(Event::ProxyHeaderResent), 1);
        // Part of the header acknowledged: the client hears of nothing.
        let t =
            lb.forward(e.backend_sends(seg(c.b1, c.c1.wrapping_add(10), ACK, ts(9002, 102), b"")));
        assert_eq!(
            t.ack, c.c1,
            "no acknowledgment of bytes the client never sent"
        );
        // All of it, and the data: from then on plain translation.
        let t = lb.forward(e.backend_sends(seg(
            c.b1,
            c.c1.wrapping_add(h + 5),
            ACK,
            ts(9003, 102),
            b"",
        )));
        assert_eq!(t.ack, c.c1.wrapping_add(5));
        let t = lb.forward(e.backend_sends(seg(
            c.b1,
            c.c1.wrapping_add(h + 5),
            ACK,
            ts(9004, 102),
            b"",
        )));
        assert_eq!(t.ack, c.c1.wrapping_add(5));
        assert!(lb.outbox().is_empty());
        assert_eq!(
            lb.event(Event::ProxyHeaderResent),
            1,
            "no more once acknowledged"
        );
    });
}

#[test]
fn data_on_the_handshake_ack_follows_the_header() {
    for mode in [Mode::Nat, Mode::FullNat] {
        for v6 in [false, true] {
            let e = ends(mode, v6, false);
            let mut lb = Lb::new();
            let c1 = CLIENT_ISN.wrapping_add(1);
            let b1 = BACKEND_ISN.wrapping_add(1);
            lb.forward(e.client_sends(seg(CLIENT_ISN, 0, SYN, vec![], b"")));
            lb.forward(e.backend_sends(seg(BACKEND_ISN, c1, SYN | ACK, vec![], b"")));
            // The client's bare ACK was lost; its first data carries it.
            let out = lb.consumed(e.client_sends(seg(c1, b1, ACK | PSH, vec![], b"data")));
            assert_eq!(out.len(), 2, "header, then the data");
            assert_header(&e, &out[0], c1, b1);
            e.assert_to_backend(&out[1]);
            assert_eq!(out[1].seq, c1.wrapping_add(e.header_len()));
            assert_eq!(out[1].payload, b"data");
            assert_eq!(out[1].flags, ACK | PSH);
        }
    }
}

#[test]
fn client_bytes_before_the_handshake_are_refused() {
    let e = ends(Mode::FullNat, false, false);
    let mut lb = Lb::new();
    let c1 = CLIENT_ISN.wrapping_add(1);
    lb.forward(e.client_sends(seg(CLIENT_ISN, 0, SYN, vec![], b"")));
    // No SYN-ACK yet: nowhere to put the bytes.
    let (v, _) = lb.send(e.client_sends(seg(c1, 12345, ACK, vec![], b"early")));
    assert_eq!(v, Verdict::Drop(DropReason::ProxyUntranslatable));
    lb.forward(e.backend_sends(seg(BACKEND_ISN, c1, SYN | ACK, vec![], b"")));
    // An acknowledgment of something the backend never sent.
    let (v, _) = lb.send(e.client_sends(seg(c1, 12345, ACK, vec![], b"")));
    assert_eq!(v, Verdict::Drop(DropReason::ProxyUntranslatable));
    assert_eq!(lb.event(Event::ProxyHeaderSent), 0);
}

#[test]
fn other_vips_stay_plain() {
    let mut lb = Lb::new();
    let eth = Eth {
        src: GATEWAY_MAC,
        dst: NODE_MAC,
        vlan: None,
    };
    let syn = TcpSeg {
        sport: 40_000,
        dport: 80,
        ..seg(1, 0, SYN, vec![], b"")
    };
    let f = gen::tcp(&eth, ip("198.18.50.9"), ip("198.18.100.30"), 57, 1, &syn);
    lb.forward(f);
    let ack = TcpSeg {
        sport: 40_000,
        dport: 80,
        ..seg(2, 5, ACK, vec![], b"x")
    };
    let t = lb.forward(gen::tcp(
        &eth,
        ip("198.18.50.9"),
        ip("198.18.100.30"),
        57,
        2,
        &ack,
    ));
    assert_eq!(t.seq, 2);
    assert_eq!(lb.event(Event::ProxyHeaderSent), 0);
}

// ---- config ---------------------------------------------------------------

fn one_vip(mode: &str, protocol: &str, value: &str) -> String {
    let mut v = Vip::new("v", "198.18.100.10", 80, protocol, mode)
        .key("proxy_protocol", format!("\"{value}\""));
    if mode == "fullnat" {
        v = v.local_addresses(&["198.18.0.200"]);
    }
    if mode == "tunnel" {
        v = v.key("encap", "\"ipip\"");
    }
    format!(
        "{}{}",
        toml::node(&["198.18.0.1"], &["198.18.1.11"]),
        v.backends(&["198.18.1.11"], 80)
    )
}

#[test]
fn proxy_protocol_needs_nat_or_fullnat_and_tcp() {
    for mode in ["nat", "fullnat"] {
        let c = config::parse(&one_vip(mode, "tcp", "v2"), "t.toml").unwrap();
        assert_eq!(c.vips[0].proxy_protocol, config::ProxyProtocol::V2);
        let c = config::parse(&one_vip(mode, "tcp", "off"), "t.toml").unwrap();
        assert_eq!(c.vips[0].proxy_protocol, config::ProxyProtocol::Off);
    }
    for (mode, protocol, says) in [
        ("dr", "tcp", "needs nat or fullnat"),
        ("tunnel", "tcp", "needs nat or fullnat"),
        ("nat", "udp", "is for TCP"),
    ] {
        let e = config::parse(&one_vip(mode, protocol, "v2"), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("vip[0].proxy_protocol") && e.contains(says),
            "{mode}/{protocol}: {e}"
        );
    }
    // Off is fine anywhere.
    config::parse(&one_vip("dr", "udp", "off"), "t.toml").unwrap();
    let e = config::parse(&one_vip("nat", "tcp", "v1"), "t.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("vip[0].proxy_protocol"), "{e}");
}

// ---- ICMP -----------------------------------------------------------------

/// A router on the backend's side tells the sender of `to_backend` (a
/// frame rampart forwarded) that it is too big; it quotes the packet whole.
fn too_big_from_backend_side(e: &Ends, to_backend: &[u8]) -> Vec<u8> {
    let packet = &to_backend[14..];
    let eth = Eth {
        src: e.bmac,
        dst: NODE_MAC,
        vlan: None,
    };
    let (router, kind, rest) = if e.client.is_v4() {
        (ip("198.18.1.1"), 3, [0, 0, 0x05, 0x78]) // frag needed, next-hop MTU 1400
    } else {
        (ip("2001:2:0:1::1"), 2, [0, 0, 0x05, 0x78]) // packet too big, MTU 1400
    };
    let code = if e.client.is_v4() { 4 } else { 0 };
    gen::icmp(
        &eth,
        router,
        e.seen_as.0,
        &gen::IpHdr::new(64, 9),
        kind,
        code,
        rest,
        packet,
    )
}

#[test]
fn icmp_quoting_a_shifted_client_packet_gets_the_clients_number_back() {
    for mode in [Mode::Nat, Mode::FullNat] {
        for v6 in [false, true] {
            let e = ends(mode, v6, false);
            let mut lb = Lb::new();
            let c = open(&mut lb, e);
            let (v, sent) =
                lb.send(e.client_sends(seg(c.c1, c.b1, ACK | PSH, vec![], &[7u8; 600])));
            assert_eq!(v, Verdict::Forward);
            assert_eq!(decode(&sent).seq, c.c1.wrapping_add(e.header_len()));
            let (v, out) = lb.send(too_big_from_backend_side(&e, &sent));
            assert_eq!(v, Verdict::Forward, "{e:?}");
            // Ethernet, outer IP, ICMP header, quoted IP, then the quoted
            // TCP header: its sequence number is the client's own again.
            let (outer, quoted_ip) = if v6 { (40, 40) } else { (20, 20) };
            let at = 14 + outer + 8 + quoted_ip + 4;
            assert_eq!(be32(&out, at), c.c1, "{e:?}");
            let quoted_dst = if v6 {
                &out[14 + 40 + 8 + 24..14 + 40 + 8 + 40]
            } else {
                &out[14 + 20 + 8 + 16..14 + 20 + 8 + 20]
            };
            assert_eq!(
                quoted_dst,
                &if v6 {
                    e.vip.0.to_vec()
                } else {
                    e.vip.v4_octets().to_vec()
                }[..],
                "the quote names the VIP"
            );
        }
    }
}
