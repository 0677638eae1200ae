//! Behaviour tests of the SYN proxy (`rampart::synproxy`) with real frames.
//!
//! Frames built with `rampart::gen` go through `process` / `process_burst`
//! on a config written inline, with a fixed `[synproxy] secret` so cookies
//! are reproducible. Every frame that comes out, whether the burst's own
//! (`Verdict::Reply` / `Forward`) or one the worker originated
//! (`ws.outbox`), is decoded by the small parser below, which recomputes the
//! IPv4 header and TCP checksums from scratch (RFC 1071), and then compared
//! field by field with what the test works out on its own from the design in
//! the `synproxy` and `synproxy::cookie` module docs: the cookie layout and
//! option bits, the sequence offset `backend ISN - cookie`, the timestamp
//! offset, the window rescale. Cookies are validated with
//! `synproxy::cookie::check` under the same master key; frames the proxy
//! originates are also compared byte for byte with the frame `gen` builds
//! from the expected fields.
//!
//! After every packet the counters must add up:
//! `rx_packets == tx_packets + consumed + dropped_total()`.

use std::net::IpAddr;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use proptest::prelude::*;

use rampart::config::{self, Mode};
use rampart::datapath::{process, process_burst, Verdict, WorkerState, MAX_BURST};
use rampart::flow::tcp_flags::{ACK, FIN, PSH, RST, SYN};
use rampart::flow::{proto, Addr, FlowKey, Mac};
use rampart::gen::{self, Eth, TcpSeg};
use rampart::snapshot::Snapshot;
use rampart::stats::{DropReason, Event};
use rampart::synproxy::cookie::{check, CookieData, Secrets};
use rampart::xmit::lport::FIRST_PORT;
use rampart_testkit::common::{failed, output};
use rampart_testkit::toml::{self, Vip};

const SEED: u64 = 0x5359_4e50_7465_7374;
const NS: u64 = 1_000_000_000;

// ---- the config under test --------------------------------------------------

const SECRET_HEX: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const SECRET: [u8; 16] = [
    0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0,
];
const ROTATE: u32 = 60;
/// What our SYN-ACKs advertise; chosen unlike every default so a default
/// leaking through shows.
const OUR_MSS: u16 = 1400;
const OUR_WSCALE: u8 = 9;
const OUR_WINDOW: u16 = 29200;
const OUR_TTL: u8 = 61;
const SYN_RETRIES: u32 = 2;
const SYN_RETRY_INTERVAL: u32 = 3;
/// TTLs of the frames the test sends, kept by forwarding.
const CLIENT_TTL: u8 = 57;
const BACKEND_TTL: u8 = 63;

const NODE_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
const GATEWAY_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0xfe]);

fn node() -> String {
    toml::node(
        &["198.18.0.1", "2001:2::1"],
        &[
            "198.18.1.11",
            "198.18.1.12",
            "2001:2:0:1::11",
            "2001:2:0:1::12",
        ],
    )
}

/// One proxied VIP per mode and family, each with its own backend.
fn services() -> String {
    let vip = |name, address, port, mode| Vip::new(name, address, port, "tcp", mode).table_size(7);
    [
        vip("nat4", "198.18.100.10", 80, "nat")
            .synproxy()
            .backends(&["198.18.1.11"], 8080),
        vip("full4", "198.18.100.20", 443, "fullnat")
            .local_addresses(&["198.18.0.200"])
            .synproxy()
            .backends(&["198.18.1.12"], 8443),
        vip("nat6", "2001:2::100:10", 80, "nat")
            .synproxy()
            .backends(&["2001:2:0:1::11"], 8080),
        vip("full6", "2001:2::100:20", 443, "fullnat")
            .local_addresses(&["2001:2::200"])
            .synproxy()
            .backends(&["2001:2:0:1::12"], 8443),
    ]
    .map(|v| v.to_string())
    .concat()
}

/// The config with `extra` appended to its `[synproxy]` section.
fn config_text(extra: &str) -> String {
    format!(
        "{}
[conntrack]
capacity = 1024

[synproxy]
secret = \"{SECRET_HEX}\"
secret_rotate = {ROTATE}
mss = {OUR_MSS}
wscale = {OUR_WSCALE}
window = {OUR_WINDOW}
ttl = {OUR_TTL}
syn_retries = {SYN_RETRIES}
syn_retry_interval = {SYN_RETRY_INTERVAL}
hold_slots = 64
{extra}
{}",
        node(),
        services()
    )
}

fn ip(s: &str) -> Addr {
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => Addr::from_v4(a.octets()),
        Ok(IpAddr::V6(a)) => Addr::from_v6(a.octets()),
        Err(e) => panic!("{s}: {e}"),
    }
}

/// The two ends of one connection through a service, and where the
/// backend sees the client: the client itself (NAT) or our local address
/// and the first port this worker hands out (FullNAT).
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
}

/// Client number `n` (< 5000) of the family: 198.18.50.1.. or 2001:2:0:50::1..
fn client_addr(v6: bool, n: u16) -> Addr {
    if v6 {
        let mut o = [0x20, 0x01, 0, 0x02, 0, 0, 0, 0x50, 0, 0, 0, 0, 0, 0, 0, 0];
        o[14..].copy_from_slice(&(n + 1).to_be_bytes());
        Addr::from_v6(o)
    } else {
        Addr::from_v4([198, 18, 50 + (n / 250) as u8, 1 + (n % 250) as u8])
    }
}

fn ends(mode: Mode, v6: bool, client: u16, cport: u16) -> Ends {
    let (vip, vport, backend, bport, bmac, local) = match (mode, v6) {
        (Mode::Nat, false) => ("198.18.100.10", 80, "198.18.1.11", 8080, 0x0b, None),
        (Mode::FullNat, false) => (
            "198.18.100.20",
            443,
            "198.18.1.12",
            8443,
            0x0c,
            Some("198.18.0.200"),
        ),
        (Mode::Nat, true) => ("2001:2::100:10", 80, "2001:2:0:1::11", 8080, 0x0b, None),
        (Mode::FullNat, true) => (
            "2001:2::100:20",
            443,
            "2001:2:0:1::12",
            8443,
            0x0c,
            Some("2001:2::200"),
        ),
        (Mode::Dr | Mode::Tunnel, _) => panic!("no direct-return service here"),
    };
    let client = client_addr(v6, client);
    Ends {
        client,
        cport,
        vip: ip(vip),
        vport,
        backend: ip(backend),
        bport,
        bmac: Mac([0x02, 0, 0, 0, if v6 { 2 } else { 1 }, bmac]),
        seen_as: match local {
            Some(l) => (ip(l), FIRST_PORT),
            None => (client, cport),
        },
    }
}

impl Ends {
    fn key(&self) -> FlowKey {
        FlowKey {
            src: self.client,
            dst: self.vip,
            sport: self.cport,
            dport: self.vport,
            proto: proto::TCP,
        }
    }

    fn client_sends(&self, seg: TcpSeg) -> Vec<u8> {
        let eth = Eth {
            src: GATEWAY_MAC,
            dst: NODE_MAC,
            vlan: None,
        };
        let seg = TcpSeg {
            sport: self.cport,
            dport: self.vport,
            ..seg
        };
        gen::tcp(&eth, self.client, self.vip, CLIENT_TTL, 0x1111, &seg)
    }

    fn backend_sends(&self, seg: TcpSeg) -> Vec<u8> {
        let eth = Eth {
            src: self.bmac,
            dst: NODE_MAC,
            vlan: None,
        };
        let seg = TcpSeg {
            sport: self.bport,
            dport: self.seen_as.1,
            ..seg
        };
        gen::tcp(
            &eth,
            self.backend,
            self.seen_as.0,
            BACKEND_TTL,
            0x2222,
            &seg,
        )
    }

    /// The addressing of a frame to the client (from the VIP).
    fn towards_client(&self, ttl: u8) -> Tcp {
        Tcp {
            src_mac: NODE_MAC,
            dst_mac: GATEWAY_MAC,
            src: self.vip,
            dst: self.client,
            ttl,
            sport: self.vport,
            dport: self.cport,
            ..Tcp::default()
        }
    }

    /// The addressing of a frame to the backend.
    fn towards_backend(&self, ttl: u8) -> Tcp {
        Tcp {
            src_mac: NODE_MAC,
            dst_mac: self.bmac,
            src: self.seen_as.0,
            dst: self.backend,
            ttl,
            sport: self.seen_as.1,
            dport: self.bport,
            ..Tcp::default()
        }
    }
}

fn seg(seq: u32, ack: u32, flags: u8, window: u16, options: Vec<u8>, payload: &[u8]) -> TcpSeg {
    TcpSeg {
        sport: 0,
        dport: 0,
        seq,
        ack,
        flags,
        window,
        options,
        payload: payload.to_vec(),
    }
}

/// Options of a data segment: timestamps and SACK blocks in Linux's layout
/// (NOP NOP TS, NOP NOP SACK) or, with `odd`, an unusual but legal one that
/// puts every SACK edge and both timestamps on odd offsets of the TCP
/// header (NOP SACK TS), where incremental checksum updates are easy to get
/// wrong. `gen` pads with EOL.
fn data_opts(ts: Option<(u32, u32)>, sack: &[(u32, u32)], odd: bool) -> Vec<u8> {
    let mut o = Vec::new();
    let push_ts = |o: &mut Vec<u8>| {
        if let Some((val, ecr)) = ts {
            o.extend_from_slice(&[8, 10]);
            o.extend_from_slice(&val.to_be_bytes());
            o.extend_from_slice(&ecr.to_be_bytes());
        }
    };
    let push_sack = |o: &mut Vec<u8>| {
        if !sack.is_empty() {
            o.extend_from_slice(&[5, 2 + 8 * sack.len() as u8]);
            for (l, r) in sack {
                o.extend_from_slice(&l.to_be_bytes());
                o.extend_from_slice(&r.to_be_bytes());
            }
        }
    };
    if odd {
        if ts.is_some() || !sack.is_empty() {
            o.push(1);
        }
        push_sack(&mut o);
        push_ts(&mut o);
    } else {
        if ts.is_some() {
            o.extend_from_slice(&[1, 1]);
            push_ts(&mut o);
        }
        if !sack.is_empty() {
            o.extend_from_slice(&[1, 1]);
            push_sack(&mut o);
        }
    }
    o
}

// ---- what the design says, computed here ---------------------------------------

/// The cookie MSS table of the `synproxy::cookie` module doc.
const MSS_TABLE: [u16; 8] = [536, 1220, 1300, 1360, 1400, 1440, 1452, 1460];

/// Index of the largest table entry not above `mss` (0 below all).
fn mss_index(mss: u16) -> u32 {
    MSS_TABLE.iter().rposition(|&m| m <= mss).unwrap_or(0) as u32
}

/// What a client offered in its SYN.
#[derive(Clone, Copy, Debug)]
struct Offer {
    mss: Option<u16>,
    wscale: Option<u8>,
    sack: bool,
    ts: bool,
}

/// (a) in the task: everything Linux offers.
const FULL: Offer = Offer {
    mss: Some(1460),
    wscale: Some(7),
    sack: true,
    ts: true,
};

/// What the cookie keeps of an offer: the MSS rounded down to the table
/// (RFC 9293 default when absent), and window scale (at most 14) and SACK
/// only when timestamps carry them.
fn kept(o: &Offer, v6: bool) -> CookieData {
    let default_mss = if v6 { 1220 } else { 536 };
    CookieData {
        mss: MSS_TABLE[mss_index(o.mss.unwrap_or(default_mss)) as usize],
        wscale: if o.ts {
            o.wscale.map(|w| w.min(14))
        } else {
            None
        },
        sack_perm: o.ts && o.sack,
        timestamps: o.ts,
    }
}

/// The low 6 bits of our SYN-ACK's TSval: marker | SACK | window scale
/// (0xF for none); 0 without timestamps.
fn opt_bits(k: &CookieData) -> u32 {
    if !k.timestamps {
        return 0;
    }
    0x20 | if k.sack_perm { 0x10 } else { 0 } | k.wscale.map_or(0xF, u32::from)
}

/// Our SYN-ACK's TSval at worker time `now_ns`: the millisecond clock with
/// its low 6 bits replaced by the option bits.
fn our_tsval(now_ns: u64, k: &CookieData) -> u32 {
    ((now_ns / 1_000_000) as u32 & !0x3f) | opt_bits(k)
}

/// A window field in units of `2^from` re-expressed in units of `2^to`,
/// rounded down and capped at the largest field.
fn rescale(window: u16, from: u8, to: u8) -> u16 {
    ((u32::from(window) << from) >> to).min(65_535) as u16
}

// ---- decoding what comes out -------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Opts {
    mss: Option<u16>,
    wscale: Option<u8>,
    sack_perm: bool,
    sack: Vec<(u32, u32)>,
    ts: Option<(u32, u32)>,
}

/// A TCP frame, field by field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Tcp {
    src_mac: Mac,
    dst_mac: Mac,
    src: Addr,
    dst: Addr,
    ttl: u8,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    opts: Opts,
    payload: Vec<u8>,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// RFC 1071 sum of big-endian 16-bit words (an odd last byte padded with 0).
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

/// The TCP pseudo-header sum (RFC 9293 §3.1, RFC 8200 §8.1).
fn pseudo(src: Addr, dst: Addr, tcp_len: usize) -> u32 {
    let (s, d) = if src.is_v4() {
        (sum16(&src.v4_octets()), sum16(&dst.v4_octets()))
    } else {
        (sum16(&src.0), sum16(&dst.0))
    };
    s + d + u32::from(proto::TCP) + tcp_len as u32
}

/// Decodes an Ethernet + IPv4/IPv6 + TCP frame; panics unless the lengths
/// agree with the frame and both checksums verify. A checksum field is
/// right when the one's-complement sum over what it covers, the field
/// included, is 0xffff.
#[track_caller]
fn decode(f: &[u8]) -> Tcp {
    let mac = |at: usize| Mac(f[at..at + 6].try_into().unwrap());
    assert_ne!(be16(f, 12), 0x8100, "no VLAN tags in these tests");
    let ipb = &f[14..];
    let (src, dst, ttl, tcp) = match be16(f, 12) {
        0x0800 => {
            assert_eq!(ipb[0], 0x45, "IPv4 without options");
            let total = usize::from(be16(ipb, 2));
            assert_eq!(total, ipb.len(), "IPv4 total length against the frame");
            assert_eq!(ipb[9], proto::TCP);
            assert_eq!(fold(sum16(&ipb[..20])), 0xffff, "IPv4 header checksum");
            (
                Addr::from_v4(ipb[12..16].try_into().unwrap()),
                Addr::from_v4(ipb[16..20].try_into().unwrap()),
                ipb[8],
                &ipb[20..],
            )
        }
        0x86dd => {
            assert_eq!(ipb[0] >> 4, 6);
            assert_eq!(
                40 + usize::from(be16(ipb, 4)),
                ipb.len(),
                "IPv6 payload length against the frame"
            );
            assert_eq!(ipb[6], proto::TCP);
            (
                Addr::from_v6(ipb[8..24].try_into().unwrap()),
                Addr::from_v6(ipb[24..40].try_into().unwrap()),
                ipb[7],
                &ipb[40..],
            )
        }
        t => panic!("EtherType {t:#06x}"),
    };
    assert_eq!(
        fold(pseudo(src, dst, tcp.len()) + sum16(tcp)),
        0xffff,
        "TCP checksum"
    );
    let hlen = usize::from(tcp[12] >> 4) * 4;
    assert!((20..=tcp.len()).contains(&hlen), "TCP header length {hlen}");
    assert_eq!(tcp[12] & 0x0f, 0, "reserved bits");
    Tcp {
        src_mac: mac(6),
        dst_mac: mac(0),
        src,
        dst,
        ttl,
        sport: be16(tcp, 0),
        dport: be16(tcp, 2),
        seq: be32(tcp, 4),
        ack: be32(tcp, 8),
        flags: tcp[13],
        window: be16(tcp, 14),
        opts: parse_opts(&tcp[20..hlen]),
        payload: tcp[hlen..].to_vec(),
    }
}

fn parse_opts(mut o: &[u8]) -> Opts {
    let mut out = Opts::default();
    while let Some(&kind) = o.first() {
        match kind {
            0 => {
                assert!(o.iter().all(|b| *b == 0), "only padding after EOL");
                break;
            }
            1 => {
                o = &o[1..];
                continue;
            }
            _ => {}
        }
        let len = usize::from(o[1]);
        assert!((2..=o.len()).contains(&len), "option {kind} length {len}");
        let body = &o[2..len];
        match (kind, len) {
            (2, 4) => out.mss = Some(be16(body, 0)),
            (3, 3) => out.wscale = Some(body[0]),
            (4, 2) => out.sack_perm = true,
            (5, _) if (len - 2) % 8 == 0 => {
                out.sack = body.chunks(8).map(|c| (be32(c, 0), be32(c, 4))).collect();
            }
            (8, 10) => out.ts = Some((be32(body, 0), be32(body, 4))),
            _ => panic!("unexpected option kind {kind} length {len}"),
        }
        o = &o[len..];
    }
    out
}

/// The frame `gen` builds for `t` (IP ID 0, DF, options in Linux's SYN
/// layout): what a frame the proxy writes from scratch must be, byte for byte.
fn frame_of(t: &Tcp) -> Vec<u8> {
    assert!(t.opts.sack.is_empty());
    let eth = Eth {
        src: t.src_mac,
        dst: t.dst_mac,
        vlan: None,
    };
    let o = &t.opts;
    let seg = TcpSeg {
        sport: t.sport,
        dport: t.dport,
        seq: t.seq,
        ack: t.ack,
        flags: t.flags,
        window: t.window,
        options: gen::tcp_opts(o.mss, o.wscale, o.sack_perm, o.ts),
        payload: t.payload.clone(),
    };
    gen::tcp(&eth, t.src, t.dst, t.ttl, 0, &seg)
}

/// A frame the proxy originated: its fields, then every byte.
#[track_caller]
fn assert_originated(frame: &[u8], want: &Tcp) {
    assert_eq!(&decode(frame), want);
    assert_eq!(frame, &frame_of(want)[..], "bytes of {want:?}");
}

// ---- the load balancer under test --------------------------------------------

/// The flood measures the process's memory, so it runs alone: every other
/// test holds this lock shared while it has a worker.
static PROCESS: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    PROCESS.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    PROCESS.write().unwrap_or_else(|e| e.into_inner())
}

struct Lb {
    snap: Snapshot,
    ws: WorkerState,
    _shared: Option<RwLockReadGuard<'static, ()>>,
}

impl Lb {
    fn new(extra: &str) -> Lb {
        Lb::build(extra, Some(shared()))
    }

    fn build(extra: &str, guard: Option<RwLockReadGuard<'static, ()>>) -> Lb {
        let text = config_text(extra);
        let snap = match config::parse(&text, "synproxy-test.toml") {
            Ok(c) => Snapshot::build(&c),
            Err(e) => panic!("test config is invalid: {e}\n{text}"),
        };
        let ws = WorkerState::new(&snap, 0, 1, SEED);
        Lb {
            snap,
            ws,
            _shared: guard,
        }
    }

    #[track_caller]
    fn send(&mut self, mut frame: Vec<u8>) -> (Verdict, Vec<u8>) {
        let v = process(&mut frame, &mut self.ws, &self.snap);
        self.assert_counts();
        (v, frame)
    }

    #[track_caller]
    fn assert_counts(&self) {
        let s = &self.ws.stats;
        assert_eq!(
            s.rx_packets,
            s.tx_packets + s.consumed + s.dropped_total(),
            "rx = tx + consumed + dropped (tx {}, consumed {}, dropped {})",
            s.tx_packets,
            s.consumed,
            s.dropped_total()
        );
    }

    /// Sends a frame that must be answered; returns the answer's bytes.
    #[track_caller]
    fn reply(&mut self, frame: Vec<u8>) -> Vec<u8> {
        let (v, out) = self.send(frame);
        assert_eq!(v, Verdict::Reply);
        out
    }

    /// Sends a frame that must be forwarded; returns what went out.
    #[track_caller]
    fn forward(&mut self, frame: Vec<u8>) -> Vec<u8> {
        let (v, out) = self.send(frame);
        assert_eq!(v, Verdict::Forward);
        out
    }

    #[track_caller]
    fn consumed(&mut self, frame: Vec<u8>) {
        assert_eq!(self.send(frame).0, Verdict::Consumed);
    }

    #[track_caller]
    fn dropped(&mut self, frame: Vec<u8>) -> DropReason {
        match self.send(frame).0 {
            Verdict::Drop(r) => r,
            v => panic!("expected a drop, got {v:?}"),
        }
    }

    /// The frames the worker originated since the last call.
    fn outbox(&mut self) -> Vec<Vec<u8>> {
        let out = self.ws.outbox.iter().map(|(_, f)| f.to_vec()).collect();
        self.ws.outbox.clear();
        out
    }

    fn event(&self, e: Event) -> u64 {
        self.ws.stats.events[e as usize]
    }

    fn drops(&self, r: DropReason) -> u64 {
        self.ws.stats.drops[r as usize]
    }

    fn hold_free(&self) -> usize {
        self.ws.synproxy.as_ref().unwrap().hold.free_slots()
    }

    /// Free FullNAT ports per local address.
    fn ports_free(&self) -> Vec<usize> {
        (0..self.snap.local_addrs.len())
            .map(|i| self.ws.lports.free(i as u8))
            .collect()
    }

    fn age_at(&mut self, now_ns: u64) {
        self.ws.set_clock_ns(now_ns);
        self.ws.age(&self.snap);
        self.assert_counts();
    }
}

/// A client's SYN offering `o`.
fn syn_opts(o: &Offer, tsval: u32) -> Vec<u8> {
    gen::tcp_opts(o.mss, o.wscale, o.sack, o.ts.then_some((tsval, 0)))
}

/// Sends the client's SYN and returns the cookie after checking the
/// SYN-ACK in full.
#[track_caller]
fn syn_ack(lb: &mut Lb, e: &Ends, isn: u32, o: &Offer, tsval: u32) -> u32 {
    let v6 = !e.client.is_v4();
    let k = kept(o, v6);
    let now = lb.ws.clock_ns();
    let out = lb.reply(e.client_sends(seg(isn, 0, SYN, 64240, syn_opts(o, tsval), b"")));
    let cookie = decode(&out).seq;
    let ours = our_tsval(now, &k);
    // The cookie is ours, for this tuple and ISN, and keeps what it should.
    let secrets = Secrets::new(SECRET, ROTATE, (now / NS) as u32);
    assert_eq!(
        check(
            &secrets,
            &e.key(),
            isn.wrapping_add(1),
            cookie.wrapping_add(1),
            k.timestamps.then_some(ours)
        ),
        Some(k),
        "cookie {cookie:#010x}"
    );
    let gen = (now / NS) as u32 / ROTATE;
    assert_eq!(cookie >> 31, gen & 1, "parity bit of generation {gen}");
    assert_eq!((cookie >> 28) & 7, mss_index(k.mss), "MSS index");
    let our_mss = if v6 { OUR_MSS - 20 } else { OUR_MSS };
    let want = Tcp {
        seq: cookie,
        ack: isn.wrapping_add(1),
        flags: SYN | ACK,
        window: OUR_WINDOW,
        opts: Opts {
            mss: o.mss.map(|_| our_mss),
            wscale: k.wscale.map(|_| OUR_WSCALE),
            sack_perm: k.sack_perm,
            sack: Vec::new(),
            ts: k.timestamps.then_some((ours, tsval)),
        },
        ..e.towards_client(OUR_TTL)
    };
    assert_originated(&out, &want);
    assert!(lb.outbox().is_empty(), "a SYN-ACK originates nothing");
    cookie
}

/// Completes the client's handshake (SYN, SYN-ACK, ACK without options
/// but timestamps) and returns (cookie, the SYN sent to the backend).
#[track_caller]
fn to_backend_syn(lb: &mut Lb, e: &Ends, isn: u32) -> (u32, Vec<u8>) {
    let k = kept(&FULL, !e.client.is_v4());
    let ours = our_tsval(lb.ws.clock_ns(), &k);
    let cookie = syn_ack(lb, e, isn, &FULL, 5000);
    let opts = data_opts(Some((5001, ours)), &[], false);
    lb.consumed(e.client_sends(seg(
        isn.wrapping_add(1),
        cookie.wrapping_add(1),
        ACK,
        500,
        opts,
        b"",
    )));
    let mut out = lb.outbox();
    assert_eq!(out.len(), 1, "one SYN to the backend");
    let syn = out.pop().unwrap();
    let want = Tcp {
        seq: isn,
        flags: SYN,
        window: 500 << 7,
        opts: Opts {
            mss: Some(k.mss),
            wscale: Some(7),
            sack_perm: true,
            sack: Vec::new(),
            ts: Some((5001, 0)),
        },
        ..e.towards_backend(OUR_TTL)
    };
    assert_originated(&syn, &want);
    (cookie, syn)
}

// ---- 1, 2. the splice ----------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct Case {
    mode: Mode,
    v6: bool,
    offer: Offer,
    client_isn: u32,
    backend_isn: u32,
    client_ts: u32,
    backend_ts: u32,
    /// What the backend's SYN-ACK announces if our SYN offered scaling;
    /// `None`: the backend does not scale (RFC 7323 §2.2 then turns scaling
    /// off on the backend's side of the splice, in both directions).
    backend_wscale: Option<u8>,
    /// The client's window field (scaled by its own factor).
    client_window: u16,
    backend_window: u16,
    /// Client segments use the odd-offset option layout.
    odd: bool,
    now_ns: u64,
}

/// One connection through the proxy from the client's SYN to data both
/// ways, every frame checked.
fn splice(c: &Case) {
    let mut lb = Lb::new("");
    lb.ws.set_clock_ns(c.now_ns);
    let e = ends(c.mode, c.v6, 7, 40_001);
    let hold_free = lb.hold_free();
    let k = kept(&c.offer, c.v6);
    let ours = our_tsval(c.now_ns, &k);
    let isn = c.client_isn;
    let b_isn = c.backend_isn;
    let ts = |val: u32, ecr: u32| k.timestamps.then_some((val, ecr));

    // 1. SYN: answered with a cookie; nothing stored.
    let cookie = syn_ack(&mut lb, &e, isn, &c.offer, c.client_ts);
    assert_eq!(lb.ws.conns.len(), 0);

    // 2. The client's ACK: consumed; the backend gets its first packet, a
    // SYN with the client's ISN and what the cookie kept.
    let ack_ts = c.client_ts.wrapping_add(3);
    let ack = e.client_sends(seg(
        isn.wrapping_add(1),
        cookie.wrapping_add(1),
        ACK,
        c.client_window,
        data_opts(ts(ack_ts, ours), &[], c.odd),
        b"",
    ));
    lb.consumed(ack.clone());
    let out = lb.outbox();
    assert_eq!(out.len(), 1, "exactly the SYN to the backend");
    let syn_window = (u32::from(c.client_window) << k.wscale.unwrap_or(0)).min(65_535) as u16;
    let want_syn = Tcp {
        seq: isn,
        ack: 0,
        flags: SYN,
        window: syn_window,
        opts: Opts {
            mss: Some(k.mss),
            wscale: k.wscale,
            sack_perm: k.sack_perm,
            sack: Vec::new(),
            ts: ts(ack_ts, 0),
        },
        ..e.towards_backend(OUR_TTL)
    };
    assert_originated(&out[0], &want_syn);
    assert_eq!(lb.ws.conns.len(), 1);
    assert_eq!(lb.event(Event::CookieValid), 1);
    assert_eq!(lb.event(Event::BackendSyn), 1);
    // The same ACK again (a retransmission): the handshake answers it.
    assert_eq!(lb.dropped(ack), DropReason::SynproxyPending);
    assert!(lb.outbox().is_empty());

    // 3. Client data before the backend answered, in two segments: held.
    let req = b"GET / HTTP/1.1\r\nHost: rampart.test\r\n\r\n";
    let req_ts = c.client_ts.wrapping_add(7);
    let (first, second) = req.split_at(16);
    let parts = [
        (isn.wrapping_add(1), ACK, first),
        (isn.wrapping_add(1 + first.len() as u32), PSH | ACK, second),
    ];
    for (seq, flags, bytes) in parts {
        lb.consumed(e.client_sends(seg(
            seq,
            cookie.wrapping_add(1),
            flags,
            c.client_window,
            data_opts(ts(req_ts, ours), &[], c.odd),
            bytes,
        )));
    }
    assert!(lb.outbox().is_empty(), "held, not sent");
    assert_eq!(lb.event(Event::SynproxyHeld), 2);
    assert_eq!(lb.hold_free(), hold_free - 3, "SYN template + held packets");

    // 4. The backend's SYN-ACK: we ACK it in its own buffer and release the
    // held data, translated into the backend's sequence space.
    let b_ws = k.wscale.and(c.backend_wscale);
    // Window fields towards the backend are in units of the client's
    // factor, which the backend reads only if it scales too.
    let to_backend_window = match (k.wscale, b_ws) {
        (Some(cws), None) => rescale(c.client_window, cws, 0),
        _ => c.client_window,
    };
    let synack = e.backend_sends(seg(
        b_isn,
        isn.wrapping_add(1),
        SYN | ACK,
        65_160,
        gen::tcp_opts(Some(1460), b_ws, k.sack_perm, ts(c.backend_ts, ack_ts)),
        b"",
    ));
    // One that does not acknowledge our SYN changes nothing.
    let wrong = e.backend_sends(seg(
        b_isn,
        isn.wrapping_add(2),
        SYN | ACK,
        65_160,
        gen::tcp_opts(Some(1460), b_ws, k.sack_perm, ts(c.backend_ts, ack_ts)),
        b"",
    ));
    assert_eq!(lb.dropped(wrong), DropReason::SynproxyBadSynAck);
    assert!(lb.outbox().is_empty());
    let delta = b_isn.wrapping_sub(cookie);
    let ts_delta = c.backend_ts.wrapping_sub(ours);
    let want_ack = Tcp {
        seq: isn.wrapping_add(1),
        ack: b_isn.wrapping_add(1),
        flags: ACK,
        window: to_backend_window,
        opts: Opts {
            ts: ts(ack_ts, c.backend_ts),
            ..Opts::default()
        },
        ..e.towards_backend(OUR_TTL)
    };
    let out = lb.reply(synack.clone());
    assert_originated(&out, &want_ack);
    let out = lb.outbox();
    assert_eq!(out.len(), 2, "the held packets, in order");
    for (frame, (seq, flags, bytes)) in out.iter().zip(parts) {
        let released = Tcp {
            seq,
            ack: cookie.wrapping_add(1).wrapping_add(delta),
            flags,
            window: to_backend_window,
            opts: Opts {
                ts: ts(req_ts, ours.wrapping_add(ts_delta)),
                ..Opts::default()
            },
            payload: bytes.to_vec(),
            ..e.towards_backend(CLIENT_TTL)
        };
        assert_eq!(released.ack, b_isn.wrapping_add(1));
        assert_eq!(decode(frame), released);
    }
    assert_eq!(lb.hold_free(), hold_free, "every hold buffer back");
    assert_eq!(lb.event(Event::SynproxyEstablished), 1);
    // Our ACK lost, the backend resends its SYN-ACK: the same ACK again.
    let out = lb.reply(synack);
    assert_originated(&out, &want_ack);
    assert!(lb.outbox().is_empty());

    // 5. Backend -> client: seq and TSval into our spaces, window rescaled
    // from the backend's factor to the one our SYN-ACK announced.
    let resp = b"HTTP/1.1 204 No Content\r\n\r\n";
    let b_data_ts = c.backend_ts.wrapping_add(10);
    let client_next = isn.wrapping_add(1).wrapping_add(req.len() as u32);
    let out = lb.forward(e.backend_sends(seg(
        b_isn.wrapping_add(1),
        client_next,
        PSH | ACK,
        c.backend_window,
        data_opts(ts(b_data_ts, req_ts), &[], false),
        resp,
    )));
    // ... and the client reads ours in units of the factor our SYN-ACK
    // announced; a backend that does not scale sends plain bytes.
    let window = match k.wscale {
        Some(_) => rescale(c.backend_window, b_ws.unwrap_or(0), OUR_WSCALE),
        None => c.backend_window,
    };
    let to_client = Tcp {
        seq: b_isn.wrapping_add(1).wrapping_sub(delta),
        ack: client_next,
        flags: PSH | ACK,
        window,
        opts: Opts {
            ts: ts(b_data_ts.wrapping_sub(ts_delta), req_ts),
            ..Opts::default()
        },
        payload: resp.to_vec(),
        ..e.towards_client(BACKEND_TTL)
    };
    assert_eq!(to_client.seq, cookie.wrapping_add(1));
    assert_eq!(decode(&out), to_client);

    // 5b. A router on the client's side cannot forward that segment and
    // says so to the VIP: the backend gets the error, quoting its own
    // segment: its address and port, and its own sequence numbers.
    let err = too_big_about(&out, c.v6);
    let to_backend_err = lb.forward(err);
    let quoted = quoted_tcp(&to_backend_err, c.v6);
    assert_eq!(quoted.src, e.backend);
    assert_eq!(quoted.sport, e.bport);
    assert_eq!(
        quoted.seq,
        b_isn.wrapping_add(1),
        "the backend's own sequence number"
    );
    assert_eq!(lb.event(Event::IcmpForwarded), 1);

    // 6. Client -> backend: ack, every SACK edge and TSecr into the
    // backend's spaces.
    let our_next = cookie.wrapping_add(1).wrapping_add(resp.len() as u32);
    let sack: Vec<(u32, u32)> = if k.sack_perm {
        [(100, 200), (300, 400), (600, 700)][..if c.odd { 3 } else { 2 }]
            .iter()
            .map(|&(l, r)| (our_next.wrapping_add(l), our_next.wrapping_add(r)))
            .collect()
    } else {
        Vec::new()
    };
    let c2_ts = req_ts.wrapping_add(5);
    let echo = b_data_ts.wrapping_sub(ts_delta);
    let out = lb.forward(e.client_sends(seg(
        client_next,
        our_next,
        ACK,
        c.client_window,
        data_opts(ts(c2_ts, echo), &sack, c.odd),
        b"",
    )));
    let to_backend = Tcp {
        seq: client_next,
        ack: our_next.wrapping_add(delta),
        flags: ACK,
        window: to_backend_window,
        opts: Opts {
            sack: sack
                .iter()
                .map(|&(l, r)| (l.wrapping_add(delta), r.wrapping_add(delta)))
                .collect(),
            ts: ts(c2_ts, echo.wrapping_add(ts_delta)),
            ..Opts::default()
        },
        ..e.towards_backend(CLIENT_TTL)
    };
    assert_eq!(
        to_backend.ack,
        b_isn.wrapping_add(1).wrapping_add(resp.len() as u32)
    );
    assert_eq!(
        to_backend.opts.ts.map(|t| t.1),
        ts(0, b_data_ts).map(|t| t.1)
    );
    assert_eq!(decode(&out), to_backend);

    // 7. The client closes: FIN translated like any segment.
    let out = lb.forward(e.client_sends(seg(
        client_next,
        our_next,
        FIN | ACK,
        c.client_window,
        Vec::new(),
        b"",
    )));
    let fin = Tcp {
        seq: client_next,
        ack: our_next.wrapping_add(delta),
        flags: FIN | ACK,
        window: to_backend_window,
        ..e.towards_backend(CLIENT_TTL)
    };
    assert_eq!(decode(&out), fin);

    assert_eq!(lb.ws.conns.len(), 1);
    assert!(lb.outbox().is_empty());
    assert_eq!(lb.event(Event::SynCookieSent), 1);
    assert_eq!(lb.ws.stats.consumed, 3);
    assert_eq!(lb.ws.stats.dropped_total(), 2);
}

/// A router's "fragmentation needed" (IPv4) or Packet Too Big (IPv6) to
/// the source of `frame`, quoting as much of its IP packet as the minimum
/// MTU allows.
fn too_big_about(frame: &[u8], v6: bool) -> Vec<u8> {
    use etherparse::{icmpv4::DestUnreachableHeader, Icmpv4Type, Icmpv6Type, PacketBuilder};
    let ip = &frame[14..];
    let src = |n: usize| -> [u8; 16] { ip[n..n + 16].try_into().unwrap() };
    let mut out = Vec::new();
    let eth = PacketBuilder::ethernet2(GATEWAY_MAC.0, NODE_MAC.0);
    if v6 {
        let quote = &ip[..ip.len().min(1232)];
        eth.ipv6(ip6("2001:2:0:60::1"), src(8), 64)
            .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1400 })
            .write(&mut out, quote)
            .unwrap();
    } else {
        let quote = &ip[..ip.len().min(548)];
        eth.ipv4([198, 18, 60, 1], ip[12..16].try_into().unwrap(), 64)
            .icmpv4(Icmpv4Type::DestinationUnreachable(
                DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
            ))
            .write(&mut out, quote)
            .unwrap();
    }
    out
}

fn ip6(s: &str) -> [u8; 16] {
    s.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

/// The TCP segment an ICMP error quotes, decoded; the error's own
/// checksums are checked on the way.
fn quoted_tcp(frame: &[u8], v6: bool) -> Tcp {
    let outer_ip = if v6 { 40 } else { 20 };
    let msg = &frame[14 + outer_ip..];
    let csum = if v6 {
        let src: [u8; 16] = frame[22..38].try_into().unwrap();
        let dst: [u8; 16] = frame[38..54].try_into().unwrap();
        fold(sum16(&src) + sum16(&dst) + msg.len() as u32 + 58 + sum16(msg))
    } else {
        fold(sum16(msg))
    };
    assert_eq!(csum, 0xffff, "ICMP checksum");
    let q = &msg[8..];
    let qip = if v6 { 40 } else { 20 };
    let (src, dst) = if v6 {
        (
            Addr::from_v6(q[8..24].try_into().unwrap()),
            Addr::from_v6(q[24..40].try_into().unwrap()),
        )
    } else {
        (
            Addr::from_v4(q[12..16].try_into().unwrap()),
            Addr::from_v4(q[16..20].try_into().unwrap()),
        )
    };
    let t = &q[qip..];
    Tcp {
        src,
        dst,
        sport: be16(t, 0),
        dport: be16(t, 2),
        seq: be32(t, 4),
        ack: be32(t, 8),
        ..Tcp::default()
    }
}

/// (a) timestamps + window scale + SACK and (b) MSS only; backend ISNs
/// near 2^32 and low, client ISN and timestamps near 2^32 too, so every
/// offset wraps in one direction or the other.
fn splice_all(mode: Mode, v6: bool) {
    let mss_only = Offer {
        mss: Some(if v6 { 1250 } else { 1380 }),
        wscale: None,
        sack: false,
        ts: false,
    };
    let full = Offer {
        mss: Some(if v6 { 1440 } else { 1460 }),
        ..FULL
    };
    // Unlike, equal and larger than our factor 9.
    let backend_wscale = match (mode, v6) {
        (Mode::Nat, false) => Some(7),
        (Mode::FullNat, false) => Some(12),
        (Mode::Nat, true) => Some(9),
        _ => Some(14),
    };
    for offer in [full, mss_only] {
        for backend_isn in [0xffff_fff0, 0x0000_0007] {
            let high = backend_isn > 0x8000_0000;
            splice(&Case {
                mode,
                v6,
                offer,
                client_isn: if high { 0x0000_1000 } else { 0xffff_fffe },
                backend_isn,
                client_ts: 0xffff_fff0,
                backend_ts: if high { 1000 } else { 0xffff_fffa },
                backend_wscale,
                client_window: if v6 { 1000 } else { 300 },
                backend_window: 1000,
                odd: v6,
                now_ns: 1_000_000 * NS + 123_456_789,
            });
        }
    }
}

#[test]
fn splice_nat_v4() {
    splice_all(Mode::Nat, false);
}

#[test]
fn splice_nat_v6() {
    splice_all(Mode::Nat, true);
}

#[test]
fn splice_fullnat_v4() {
    splice_all(Mode::FullNat, false);
}

#[test]
fn splice_fullnat_v6() {
    splice_all(Mode::FullNat, true);
}

/// The client scales, the backend does not: windows are rescaled between
/// the client's factor (and the one we announced) and plain bytes.
#[test]
fn splice_backend_without_window_scaling() {
    for (mode, v6) in SERVICES_ALL {
        splice(&Case {
            mode,
            v6,
            offer: FULL,
            client_isn: 0x89ab_cdef,
            backend_isn: 0x0123_4567,
            client_ts: 77,
            backend_ts: 0x8000_0000,
            backend_wscale: None,
            client_window: 200,
            backend_window: 60_000,
            odd: v6,
            now_ns: 3_000 * NS,
        });
    }
}

fn any_offer() -> impl Strategy<Value = Offer> {
    (
        proptest::option::of(any::<u16>()),
        proptest::option::of(0u8..=15),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(mss, wscale, sack, ts)| Offer {
            mss,
            wscale,
            sack,
            ts,
        })
}

fn any_case() -> impl Strategy<Value = Case> {
    (
        (any::<bool>(), any::<bool>(), any_offer(), any::<bool>()),
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        (
            proptest::option::of(0u8..=14),
            1u16..,
            any::<u16>(),
            0u64..1 << 62,
        ),
    )
        .prop_map(
            |(
                (fullnat, v6, offer, odd),
                (client_isn, backend_isn, client_ts, backend_ts),
                (backend_wscale, client_window, backend_window, now_ns),
            )| Case {
                mode: if fullnat { Mode::FullNat } else { Mode::Nat },
                v6,
                offer,
                client_isn,
                backend_isn,
                client_ts,
                backend_ts,
                backend_wscale,
                client_window,
                backend_window,
                odd,
                now_ns,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any ISNs, timestamps, clock, options and windows: the splice holds,
    /// across the 2^32 wrap in both directions.
    #[test]
    fn splice_any(c in any_case()) {
        splice(&c);
    }

    /// Both ISNs pinned near the wrap so that seq, ack and every SACK edge
    /// cross it within the connection.
    #[test]
    fn splice_across_the_wrap(
        client_back in 0u32..64, backend_back in 0u32..64,
        fullnat in any::<bool>(), v6 in any::<bool>(),
    ) {
        splice(&Case {
            mode: if fullnat { Mode::FullNat } else { Mode::Nat },
            v6,
            offer: FULL,
            client_isn: 0u32.wrapping_sub(client_back),
            backend_isn: 0u32.wrapping_sub(backend_back),
            client_ts: 0u32.wrapping_sub(client_back),
            backend_ts: 0u32.wrapping_sub(backend_back),
            backend_wscale: Some(7),
            client_window: 4000,
            backend_window: 4000,
            odd: v6,
            now_ns: 5_000 * NS,
        });
    }
}

// ---- 3. invalid cookies -----------------------------------------------------------

/// A client ACK of the handshake: `seq`, `ack`, and timestamps if given.
fn client_ack(e: &Ends, seq: u32, ack: u32, ts: Option<(u32, u32)>) -> Vec<u8> {
    e.client_sends(seg(seq, ack, ACK, 500, data_opts(ts, &[], false), b""))
}

/// ACKs that must not open a connection, each with the ack number it
/// carries, for a client whose SYN (`isn`) got `cookie`.
fn bad_acks(e: &Ends, isn: u32, cookie: u32, ours: u32) -> Vec<(&'static str, Vec<u8>, u32)> {
    let other_port = Ends {
        cport: e.cport + 1,
        ..*e
    };
    let other_addr = Ends {
        client: client_addr(!e.client.is_v4(), 99),
        ..*e
    };
    let (seq, ack) = (isn.wrapping_add(1), cookie.wrapping_add(1));
    let ts = Some((5001, ours));
    vec![
        (
            "ack number one too far",
            client_ack(e, seq, ack.wrapping_add(1), ts),
            ack.wrapping_add(1),
        ),
        (
            "an ack number out of nowhere",
            client_ack(e, seq, 0x0123_4567, ts),
            0x0123_4567,
        ),
        (
            "a cookie bit flipped",
            client_ack(e, seq, ack ^ 0x0000_0100, ts),
            ack ^ 0x0000_0100,
        ),
        (
            "another client ISN",
            client_ack(e, seq.wrapping_add(1), ack, ts),
            ack,
        ),
        (
            "another source port",
            client_ack(&other_port, seq, ack, ts),
            ack,
        ),
        (
            "another source address",
            client_ack(&other_addr, seq, ack, ts),
            ack,
        ),
        (
            "no timestamps for a cookie made with them",
            client_ack(e, seq, ack, None),
            ack,
        ),
        (
            "option bits in TSecr changed (SACK dropped)",
            client_ack(e, seq, ack, Some((5001, ours ^ 0x10))),
            ack,
        ),
    ]
}

#[test]
fn invalid_cookies_are_dropped_without_state() {
    for v6 in [false, true] {
        let mut lb = Lb::new("");
        let t0 = 7_000 * NS + 30 * NS + 5_000_000;
        lb.ws.set_clock_ns(t0);
        let e = ends(Mode::Nat, v6, 1, 40_000);
        let isn = 0x0bad_cafe;
        let ours = our_tsval(t0, &kept(&FULL, v6));
        let cookie = syn_ack(&mut lb, &e, isn, &FULL, 5000);
        for (why, frame, _) in bad_acks(&e, isn, cookie, ours) {
            assert_eq!(lb.dropped(frame), DropReason::CookieInvalid, "{why}");
            assert_eq!(lb.ws.conns.len(), 0, "{why}");
            assert!(lb.outbox().is_empty(), "{why}");
        }

        // A cookie is good for the rest of its generation and the next,
        // never after: two clients got theirs at t0.
        let late = ends(Mode::Nat, v6, 2, 40_000);
        let stale = ends(Mode::Nat, v6, 3, 40_000);
        let late_cookie = syn_ack(&mut lb, &late, isn, &FULL, 5000);
        let stale_cookie = syn_ack(&mut lb, &stale, isn, &FULL, 5000);
        lb.ws.set_clock_ns(t0 + 2 * u64::from(ROTATE) * NS);
        let frame = client_ack(
            &stale,
            isn.wrapping_add(1),
            stale_cookie.wrapping_add(1),
            Some((5001, ours)),
        );
        assert_eq!(lb.dropped(frame), DropReason::CookieInvalid, "stale");
        assert_eq!(lb.ws.conns.len(), 0);
        assert!(lb.outbox().is_empty());
        assert_eq!(lb.drops(DropReason::CookieInvalid), 9);
        assert_eq!(lb.event(Event::CookieValid), 0);
        assert_eq!(lb.event(Event::RstSent), 0);
        // (One worker at a time per thread: a second shared lock could
        // wait behind the flood's exclusive one.)
        drop(lb);

        // The control: one generation later the cookie still opens (a
        // fresh worker with the same key mints the same cookie).
        let mut lb = Lb::new("");
        lb.ws.set_clock_ns(t0);
        assert_eq!(syn_ack(&mut lb, &late, isn, &FULL, 5000), late_cookie);
        lb.ws.set_clock_ns(t0 + u64::from(ROTATE) * NS);
        lb.consumed(client_ack(
            &late,
            isn.wrapping_add(1),
            late_cookie.wrapping_add(1),
            Some((5001, ours)),
        ));
        assert_eq!(lb.ws.conns.len(), 1);
        assert_eq!(lb.outbox().len(), 1);
    }
}

#[test]
fn invalid_cookies_get_a_reset_when_asked() {
    for v6 in [false, true] {
        let mut lb = Lb::new("rst_invalid_ack = true");
        lb.ws.set_clock_ns(90 * NS);
        let e = ends(Mode::Nat, v6, 1, 40_000);
        let isn = 0xffff_ffff;
        let ours = our_tsval(90 * NS, &kept(&FULL, v6));
        let cookie = syn_ack(&mut lb, &e, isn, &FULL, 5000);
        let bad = bad_acks(&e, isn, cookie, ours);
        let n = bad.len() as u64;
        for (why, frame, ack) in bad {
            // The RST goes back to whoever sent the ACK.
            let sender = decode(&frame);
            let out = lb.reply(frame);
            let want = Tcp {
                dst: sender.src,
                dport: sender.sport,
                seq: ack,
                ack: 0,
                flags: RST,
                window: 0,
                ..e.towards_client(OUR_TTL)
            };
            assert_eq!(decode(&out), want, "{why}");
            assert_originated(&out, &want);
            assert_eq!(lb.ws.conns.len(), 0, "{why}");
            assert!(lb.outbox().is_empty(), "{why}");
        }
        assert_eq!(lb.event(Event::RstSent), n);
        assert_eq!(lb.drops(DropReason::CookieInvalid), 0);
    }
}

// ---- 4. the backend refuses or never answers ----------------------------------------

const SERVICES_ALL: [(Mode, bool); 4] = [
    (Mode::Nat, false),
    (Mode::FullNat, false),
    (Mode::Nat, true),
    (Mode::FullNat, true),
];

#[test]
fn backend_reset_resets_the_client() {
    for (mode, v6) in SERVICES_ALL {
        let mut lb = Lb::new("");
        lb.ws.set_clock_ns(300 * NS);
        let (hold_free, ports_free) = (lb.hold_free(), lb.ports_free());
        let e = ends(mode, v6, 4, 50_000);
        let isn = 0x7fff_fff0;
        let (cookie, _) = to_backend_syn(&mut lb, &e, isn);
        // Data held meanwhile must be freed too.
        lb.consumed(e.client_sends(seg(
            isn.wrapping_add(1),
            cookie.wrapping_add(1),
            PSH | ACK,
            500,
            Vec::new(),
            b"hello",
        )));
        let out =
            lb.forward(e.backend_sends(seg(0, isn.wrapping_add(1), RST | ACK, 0, Vec::new(), b"")));
        let want = Tcp {
            seq: cookie.wrapping_add(1),
            ack: 0,
            flags: RST,
            window: 0,
            ..e.towards_client(OUR_TTL)
        };
        assert_originated(&out, &want);
        assert_eq!(lb.ws.conns.len(), 0, "{mode:?} v6 {v6}");
        assert!(lb.outbox().is_empty());
        assert_eq!(lb.event(Event::BackendRefused), 1);
        assert_eq!(lb.event(Event::RstSent), 1);
        assert_eq!(lb.hold_free(), hold_free, "hold buffers back");
        assert_eq!(lb.ports_free(), ports_free, "FullNAT port back");
    }
}

/// The client's bare ACK was lost: its first data segment completes the
/// cookie handshake and is held until the backend answers.
#[test]
fn first_ack_carries_data() {
    for (mode, v6) in [(Mode::Nat, false), (Mode::FullNat, true)] {
        let mut lb = Lb::new("");
        let t0 = 700 * NS;
        lb.ws.set_clock_ns(t0);
        let hold_free = lb.hold_free();
        let e = ends(mode, v6, 8, 50_003);
        let k = kept(&FULL, v6);
        let ours = our_tsval(t0, &k);
        let isn = 0x4000_0000;
        let cookie = syn_ack(&mut lb, &e, isn, &FULL, 5000);
        let req = b"PING\r\n";
        lb.consumed(e.client_sends(seg(
            isn.wrapping_add(1),
            cookie.wrapping_add(1),
            PSH | ACK,
            500,
            data_opts(Some((5001, ours)), &[], false),
            req,
        )));
        let out = lb.outbox();
        assert_eq!(out.len(), 1, "only the SYN goes out");
        let want_syn = Tcp {
            seq: isn,
            flags: SYN,
            window: 500 << 7,
            opts: Opts {
                mss: Some(k.mss),
                wscale: Some(7),
                sack_perm: true,
                sack: Vec::new(),
                ts: Some((5001, 0)),
            },
            ..e.towards_backend(OUR_TTL)
        };
        assert_originated(&out[0], &want_syn);
        assert_eq!(lb.event(Event::SynproxyHeld), 1);
        assert_eq!(lb.hold_free(), hold_free - 2);

        let b_isn = 0xdead_0000;
        let b_ts = 0x0100_0000;
        let out = lb.reply(e.backend_sends(seg(
            b_isn,
            isn.wrapping_add(1),
            SYN | ACK,
            65_160,
            gen::tcp_opts(Some(1460), Some(9), true, Some((b_ts, 5001))),
            b"",
        )));
        let want_ack = Tcp {
            seq: isn.wrapping_add(1),
            ack: b_isn.wrapping_add(1),
            flags: ACK,
            window: 500,
            opts: Opts {
                ts: Some((5001, b_ts)),
                ..Opts::default()
            },
            ..e.towards_backend(OUR_TTL)
        };
        assert_originated(&out, &want_ack);
        let out = lb.outbox();
        assert_eq!(out.len(), 1);
        let delta = b_isn.wrapping_sub(cookie);
        let released = Tcp {
            seq: isn.wrapping_add(1),
            ack: cookie.wrapping_add(1).wrapping_add(delta),
            flags: PSH | ACK,
            window: 500,
            opts: Opts {
                ts: Some((5001, ours.wrapping_add(b_ts.wrapping_sub(ours)))),
                ..Opts::default()
            },
            payload: req.to_vec(),
            ..e.towards_backend(CLIENT_TTL)
        };
        assert_eq!(decode(&out[0]), released);
        assert_eq!(lb.hold_free(), hold_free);
        assert_eq!(lb.ws.stats.consumed, 1);
    }
}

/// The client gives up while the backend handshake is pending: its RST
/// goes on to the backend (whose SYN-ACK then finds nothing to complete)
/// and the entry's hold buffers come back when it expires.
#[test]
fn client_reset_while_pending() {
    for (mode, v6) in SERVICES_ALL {
        let mut lb = Lb::new("");
        let t0 = 600 * NS;
        lb.ws.set_clock_ns(t0);
        let (hold_free, ports_free) = (lb.hold_free(), lb.ports_free());
        let e = ends(mode, v6, 6, 50_002);
        let isn = 0xffff_fff9;
        let (cookie, _) = to_backend_syn(&mut lb, &e, isn);
        let out = lb.forward(e.client_sends(seg(
            isn.wrapping_add(1),
            cookie.wrapping_add(1),
            RST | ACK,
            0,
            Vec::new(),
            b"",
        )));
        let want = Tcp {
            seq: isn.wrapping_add(1),
            ack: cookie.wrapping_add(1),
            flags: RST | ACK,
            window: 0,
            ..e.towards_backend(CLIENT_TTL)
        };
        assert_eq!(decode(&out), want);
        let synack = e.backend_sends(seg(
            0x5555_0000,
            isn.wrapping_add(1),
            SYN | ACK,
            65_160,
            gen::tcp_opts(Some(1460), Some(7), true, Some((1, 5001))),
            b"",
        ));
        assert_eq!(lb.dropped(synack), DropReason::NoConn);
        assert!(lb.outbox().is_empty());
        // No resend for a connection the client closed.
        lb.age_at(t0 + 2 * u64::from(SYN_RETRY_INTERVAL) * NS);
        assert!(lb.outbox().is_empty());
        // tcp_close is 10 s by default.
        lb.ws.set_clock_ns(t0 + 30 * NS);
        lb.ws.age_with_budget(&lb.snap, u32::MAX);
        assert_eq!(lb.ws.conns.len(), 0, "{mode:?} v6 {v6}");
        assert_eq!(lb.hold_free(), hold_free);
        assert_eq!(lb.ports_free(), ports_free);
        assert!(lb.outbox().is_empty());
    }
}

#[test]
fn backend_silence_resends_then_resets_the_client() {
    for (mode, v6) in SERVICES_ALL {
        let mut lb = Lb::new("");
        let t0 = 1_000 * NS + NS / 4;
        lb.ws.set_clock_ns(t0);
        let (hold_free, ports_free) = (lb.hold_free(), lb.ports_free());
        let e = ends(mode, v6, 5, 50_001);
        let isn = 0x0000_0001;
        let (cookie, first) = to_backend_syn(&mut lb, &e, isn);
        lb.consumed(e.client_sends(seg(
            isn.wrapping_add(1),
            cookie.wrapping_add(1),
            PSH | ACK,
            500,
            Vec::new(),
            b"hello",
        )));
        // Resend k is due syn_retry_interval seconds (of the whole-second
        // worker clock) after the one before.
        let start = t0 / NS * NS;
        let mut resent = 0;
        for k in 1..=u64::from(SYN_RETRIES) + 1 {
            let due = start + k * u64::from(SYN_RETRY_INTERVAL) * NS;
            lb.age_at(due - 1);
            assert!(lb.outbox().is_empty(), "nothing before {due}");
            lb.age_at(due);
            let out = lb.outbox();
            assert_eq!(out.len(), 1, "one frame at {due}");
            if k <= u64::from(SYN_RETRIES) {
                assert_eq!(out[0], first, "resend {k} is the first SYN");
                resent += 1;
                assert_eq!(lb.ws.conns.len(), 1);
            } else {
                let want = Tcp {
                    seq: cookie.wrapping_add(1),
                    ack: 0,
                    flags: RST,
                    window: 0,
                    ..e.towards_client(OUR_TTL)
                };
                assert_originated(&out[0], &want);
            }
        }
        assert_eq!(resent, SYN_RETRIES);
        lb.age_at(start + 60 * NS);
        assert!(lb.outbox().is_empty(), "nothing after the reset");
        assert_eq!(lb.ws.conns.len(), 0, "{mode:?} v6 {v6}");
        assert_eq!(lb.event(Event::BackendSyn), 1 + u64::from(SYN_RETRIES));
        assert_eq!(lb.event(Event::BackendTimeout), 1);
        assert_eq!(lb.event(Event::RstSent), 1);
        assert_eq!(lb.hold_free(), hold_free);
        assert_eq!(lb.ports_free(), ports_free);
        assert_eq!(
            lb.ws.stats.originated_packets,
            1 + u64::from(SYN_RETRIES) + 1
        );
    }
}

// ---- 5. rate limits ---------------------------------------------------------------

#[test]
fn syn_rate_per_source() {
    let mut lb = Lb::new("syn_rate_per_source = 10\nsyn_burst_per_source = 4");
    let t0 = 200 * NS;
    lb.ws.set_clock_ns(t0);
    let a = ends(Mode::Nat, false, 10, 0);
    let b = ends(Mode::Nat, false, 11, 0);
    let syn = |e: &Ends, port: u16| {
        Ends { cport: port, ..*e }.client_sends(seg(7, 0, SYN, 64240, syn_opts(&FULL, 1), b""))
    };
    let mut port = 30_000;
    let mut burst = |lb: &mut Lb, e: &Ends, n: usize| {
        for _ in 0..n {
            port += 1;
            lb.reply(syn(e, port));
        }
        port += 1;
        assert_eq!(lb.dropped(syn(e, port)), DropReason::SynRateLimited);
    };
    burst(&mut lb, &a, 4);
    // Another source has its own bucket.
    burst(&mut lb, &b, 4);
    // 10 per second: one token per 100 ms, none before.
    lb.ws.set_clock_ns(t0 + 100 * 1_000_000 - 1);
    burst(&mut lb, &a, 0);
    lb.ws.set_clock_ns(t0 + 100 * 1_000_000);
    burst(&mut lb, &a, 1);
    // A long pause refills to the burst, no further.
    lb.ws.set_clock_ns(t0 + 60 * NS);
    burst(&mut lb, &a, 4);
    // IPv6 sources are limited the same way.
    burst(&mut lb, &ends(Mode::Nat, true, 10, 0), 4);
    assert_eq!(lb.event(Event::SynCookieSent), 4 + 4 + 1 + 4 + 4);
    assert_eq!(lb.drops(DropReason::SynRateLimited), 6);
    assert_eq!(lb.ws.conns.len(), 0);
    assert!(lb.outbox().is_empty());
}

#[test]
fn conn_rate() {
    let mut lb = Lb::new("conn_rate = 2\nconn_burst = 2");
    let t0 = 400 * NS;
    lb.ws.set_clock_ns(t0);
    let ours = our_tsval(t0, &kept(&FULL, false));
    let clients: Vec<(Ends, u32, u32)> = (0..3)
        .map(|i| {
            let e = ends(Mode::Nat, false, 20 + i, 41_000);
            let isn = 1000 * u32::from(i);
            let cookie = syn_ack(&mut lb, &e, isn, &FULL, 5000);
            (e, isn, cookie)
        })
        .collect();
    let ack = |(e, isn, cookie): &(Ends, u32, u32)| {
        client_ack(
            e,
            isn.wrapping_add(1),
            cookie.wrapping_add(1),
            Some((5001, ours)),
        )
    };
    lb.consumed(ack(&clients[0]));
    lb.consumed(ack(&clients[1]));
    assert_eq!(lb.outbox().len(), 2);
    // A valid cookie over the limit opens nothing.
    assert_eq!(lb.dropped(ack(&clients[2])), DropReason::ConnRateLimited);
    assert_eq!(lb.ws.conns.len(), 2);
    assert!(lb.outbox().is_empty());
    assert_eq!(lb.event(Event::CookieValid), 2);
    // 2 per second: a token after 500 ms, and the cookie is still good.
    lb.ws.set_clock_ns(t0 + 500 * 1_000_000);
    lb.consumed(ack(&clients[2]));
    assert_eq!(lb.ws.conns.len(), 3);
    assert_eq!(lb.outbox().len(), 1);
}

#[test]
fn ack_rate_is_checked_before_the_cookie() {
    let mut lb = Lb::new("ack_rate = 3\nack_burst = 3");
    let t0 = 500 * NS;
    lb.ws.set_clock_ns(t0);
    let ours = our_tsval(t0, &kept(&FULL, false));
    let e = ends(Mode::Nat, false, 30, 42_000);
    let cookie = syn_ack(&mut lb, &e, 77, &FULL, 5000);
    let good = || client_ack(&e, 78, cookie.wrapping_add(1), Some((5001, ours)));
    let bogus = |n: u32| client_ack(&e, 78, cookie.wrapping_add(2 + n), Some((5001, ours)));
    for n in 0..3 {
        assert_eq!(lb.dropped(bogus(n)), DropReason::CookieInvalid);
    }
    // The bucket is empty: even a valid cookie is not looked at.
    assert_eq!(lb.dropped(good()), DropReason::AckRateLimited);
    assert_eq!(lb.dropped(bogus(9)), DropReason::AckRateLimited);
    assert_eq!(lb.drops(DropReason::CookieInvalid), 3);
    assert_eq!(lb.event(Event::CookieValid), 0);
    assert_eq!(lb.ws.conns.len(), 0);
    assert!(lb.outbox().is_empty());
    // 3 per second: one check 333.4 ms later.
    lb.ws.set_clock_ns(t0 + 333_333_334);
    lb.consumed(good());
    assert_eq!(lb.ws.conns.len(), 1);
    assert_eq!(lb.outbox().len(), 1);
}

// ---- 6. a flood of spoofed SYNs -------------------------------------------------------

/// xorshift64*: cheap and deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Offsets into the flood's IPv4 SYN (Ethernet, IPv4 without options,
/// TCP with MSS, SACK-permitted, timestamps, window scale).
mod at {
    pub const IP_CSUM: usize = 14 + 10;
    pub const SRC: usize = 14 + 12;
    pub const IP: std::ops::Range<usize> = 14..34;
    pub const SPORT: usize = 34;
    pub const SEQ: usize = 34 + 4;
    pub const TCP_CSUM: usize = 34 + 16;
    pub const TS_KIND: usize = 34 + 20 + 4 + 2;
    pub const TSVAL: usize = TS_KIND + 2;
}

/// Writes source, port, ISN and TSval into a copy of the template and
/// recomputes both checksums.
fn patch_syn(f: &mut [u8], src: u32, sport: u16, isn: u32, tsval: u32) {
    f[at::SRC..at::SRC + 4].copy_from_slice(&src.to_be_bytes());
    f[at::SPORT..at::SPORT + 2].copy_from_slice(&sport.to_be_bytes());
    f[at::SEQ..at::SEQ + 4].copy_from_slice(&isn.to_be_bytes());
    f[at::TSVAL..at::TSVAL + 4].copy_from_slice(&tsval.to_be_bytes());
    f[at::IP_CSUM..at::IP_CSUM + 2].fill(0);
    let c = !fold(sum16(&f[at::IP]));
    f[at::IP_CSUM..at::IP_CSUM + 2].copy_from_slice(&c.to_be_bytes());
    f[at::TCP_CSUM..at::TCP_CSUM + 2].fill(0);
    let tcp = &f[at::IP.end..];
    let src = Addr::from_v4(src.to_be_bytes());
    let dst = Addr::from_v4(f[at::SRC + 4..at::SRC + 8].try_into().unwrap());
    let c = !fold(pseudo(src, dst, tcp.len()) + sum16(tcp));
    f[at::TCP_CSUM..at::TCP_CSUM + 2].copy_from_slice(&c.to_be_bytes());
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/self/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

struct Flood {
    template: Vec<u8>,
    vip: Addr,
    bufs: Vec<Vec<u8>>,
    sent: Vec<(u32, u16, u32, u32)>,
    verdicts: [Verdict; MAX_BURST],
    rng: Rng,
    now_ns: u64,
    secrets: Secrets,
    want: CookieData,
}

impl Flood {
    /// `bursts` bursts of MAX_BURST spoofed SYNs, the clock 1 µs per SYN;
    /// every answer checked.
    fn run(&mut self, lb: &mut Lb, bursts: usize) {
        for _ in 0..bursts {
            for (b, sent) in self.bufs.iter_mut().zip(self.sent.iter_mut()) {
                let r = self.rng.next();
                // Anywhere in 198.18.0.0/15, any port from 1024, any ISN.
                let src = 0xc612_0000 | (r as u32 & 0x1_ffff);
                let sport = 1024 + ((r >> 17) % (65_536 - 1024)) as u16;
                let r2 = self.rng.next();
                let (isn, tsval) = (r2 as u32, (r2 >> 32) as u32);
                b.clear();
                b.extend_from_slice(&self.template);
                patch_syn(b, src, sport, isn, tsval);
                *sent = (src, sport, isn, tsval);
            }
            lb.ws.set_clock_ns(self.now_ns);
            let now_secs = (self.now_ns / NS) as u32;
            self.secrets.set_clock(now_secs);
            let n = process_burst(&mut self.bufs, &mut self.verdicts, &mut lb.ws, &lb.snap);
            assert_eq!(n, MAX_BURST);
            let ts_high = (self.now_ns / 1_000_000) as u32 & !0x3f;
            for ((b, v), &(src, sport, isn, tsval)) in
                self.bufs.iter().zip(&self.verdicts).zip(&self.sent)
            {
                assert_eq!(*v, Verdict::Reply);
                let t = decode(b);
                let client = Addr::from_v4(src.to_be_bytes());
                assert_eq!(
                    (t.src, t.sport, t.dst, t.dport),
                    (self.vip, 80, client, sport)
                );
                assert_eq!((t.ack, t.flags), (isn.wrapping_add(1), SYN | ACK));
                let (our_ts, echo) = t.opts.ts.expect("timestamps");
                assert_eq!(echo, tsval);
                assert_eq!(our_ts, ts_high | opt_bits(&self.want));
                let key = FlowKey {
                    src: client,
                    dst: self.vip,
                    sport,
                    dport: 80,
                    proto: proto::TCP,
                };
                let got = check(
                    &self.secrets,
                    &key,
                    isn.wrapping_add(1),
                    t.seq.wrapping_add(1),
                    Some(our_ts),
                );
                assert_eq!(got, Some(self.want), "cookie of {client}:{sport}");
            }
            self.now_ns += MAX_BURST as u64 * 1_000;
        }
    }
}

/// 1M spoofed SYNs from all over 198.18.0.0/15 with the per-source limit
/// on: all answered, nothing stored, memory flat.
#[test]
fn flood_of_spoofed_syns_keeps_no_state() {
    const SYNS: usize = 1_000_000;
    let _alone = exclusive();
    // 1M SYNs over 2^17 sources and 2^16 buckets is ~15 per bucket on
    // average; a burst of 1000 never runs dry, so every SYN is answered.
    let mut lb = Lb::build(
        "syn_rate_per_source = 1000\nsyn_burst_per_source = 1000\nsource_slots = 65536",
        None,
    );
    let e = ends(Mode::Nat, false, 0, 1);
    let template = e.client_sends(seg(0, 0, SYN, 64240, syn_opts(&FULL, 0), b""));
    assert_eq!(&template[at::TS_KIND..at::TS_KIND + 2], &[8, 10]);
    // The patcher reproduces gen's checksums.
    let mut copy = template.clone();
    patch_syn(&mut copy, u32::from_be_bytes(e.client.v4_octets()), 1, 0, 0);
    assert_eq!(copy, template);

    // Start half a second before a key rotation, so the flood crosses it.
    let start_ns = 2 * u64::from(ROTATE) * NS - NS / 2;
    let mut flood = Flood {
        bufs: (0..MAX_BURST)
            .map(|_| Vec::with_capacity(template.len()))
            .collect(),
        template,
        vip: e.vip,
        sent: vec![(0, 0, 0, 0); MAX_BURST],
        verdicts: [Verdict::Consumed; MAX_BURST],
        rng: Rng(0x9e37_79b9_7f4a_7c15),
        now_ns: start_ns,
        secrets: Secrets::new(SECRET, ROTATE, (start_ns / NS) as u32),
        want: kept(&FULL, false),
    };
    let hold_free = lb.hold_free();
    // Warm up (first-touch of the test's own buffers and the code paths),
    // then measure.
    flood.run(&mut lb, 16);
    let rss_before = vm_rss_kib();
    let t = Instant::now();
    flood.run(&mut lb, SYNS / MAX_BURST);
    let took = t.elapsed();
    let rss_after = vm_rss_kib();
    let total = (SYNS / MAX_BURST + 16) * MAX_BURST;

    assert!(
        flood.now_ns > 2 * u64::from(ROTATE) * NS,
        "crossed a rotation"
    );
    assert_eq!(lb.event(Event::SynCookieSent), total as u64);
    assert_eq!(lb.ws.stats.tx_packets, total as u64);
    assert_eq!(lb.ws.stats.dropped_total(), 0);
    assert_eq!(lb.ws.conns.len(), 0, "a SYN stores nothing");
    assert_eq!(lb.hold_free(), hold_free, "hold pool untouched");
    assert!(lb.outbox().is_empty());
    lb.assert_counts();
    // Bound: 4 MiB. All worker state is allocated when the worker starts,
    // before the measurement; anything a SYN left behind, even 4 bytes
    // each, would add 4 MB over 1M SYNs.
    let grew = rss_after.saturating_sub(rss_before);
    eprintln!(
        "flood: {total} SYNs, {SYNS} timed in {:.2} s ({:.0} ns per SYN incl. the test's checks); \
         VmRSS {rss_before} -> {rss_after} KiB (+{grew} KiB)",
        took.as_secs_f64(),
        took.as_nanos() as f64 / SYNS as f64
    );
    assert!(grew < 4 * 1024, "VmRSS grew by {grew} KiB during the flood");
}

// ---- 7. configuration ---------------------------------------------------------------

fn config_error(text: &str) -> config::ConfigError {
    match config::parse(text, "bad.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// 1-based line of the first line of `text` that starts with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    1 + text
        .lines()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line {prefix}"))
}

fn one_vip(mode: &str, protocol: &str) -> String {
    let vip = Vip::new("v", "198.18.100.30", 80, protocol, mode)
        .synproxy()
        .backends_without_port(&["198.18.1.11"]);
    format!("{}{vip}", node())
}

#[test]
fn synproxy_needs_nat_or_fullnat_and_tcp() {
    let text = one_vip("dr", "tcp");
    let e = config_error(&text);
    assert_eq!(e.key(), Some("vip[0].synproxy"), "{e}");
    assert_eq!(e.line(), Some(line_of(&text, "synproxy")), "{e}");
    assert!(
        e.message().contains("nat or fullnat") && e.message().contains("SYN-ACK"),
        "{e}"
    );

    let text = one_vip("nat", "udp");
    let e = config_error(&text);
    assert_eq!(e.key(), Some("vip[0].synproxy"), "{e}");
    assert!(e.message().contains("synproxy is for TCP"), "{e}");
    assert!(e.message().contains("udp"), "{e}");

    for mode in ["nat", "fullnat"] {
        let mut text = one_vip(mode, "tcp");
        if mode == "fullnat" {
            text = text.replace(
                "synproxy = true",
                "synproxy = true\nlocal_addresses = [\"198.18.0.200\"]",
            );
        }
        if let Err(e) = config::parse(&text, "ok.toml") {
            panic!("{mode}: {e}");
        }
    }
}

#[test]
fn check_config_rejects_dr_synproxy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dr.toml");
    std::fs::write(&path, one_vip("dr", "tcp")).unwrap();
    let stderr = failed(
        output(
            rampart_testkit::rampart_bin!()
                .arg("check-config")
                .arg(&path),
        ),
        "check-config of a DR SYN proxy",
    );
    assert!(
        stderr.contains("vip[0].synproxy") && stderr.contains("nat or fullnat"),
        "{stderr}"
    );
}

#[test]
fn bad_synproxy_values_name_their_key() {
    for (kv, key, says) in [
        ("mss = 100", "synproxy.mss", "536..=9000"),
        ("wscale = 15", "synproxy.wscale", "0..=14"),
        ("secret = \"xyz\"", "synproxy.secret", "32 hex digits"),
        (
            "secret = \"0f1e2d3c4b5a69788796a5b4c3d2e1fz\"",
            "synproxy.secret",
            "32 hex digits",
        ),
        (
            "source_slots = 1000",
            "synproxy.source_slots",
            "power of two",
        ),
    ] {
        let text = format!("{}\n[synproxy]\n{kv}\n{}", node(), services());
        let e = config_error(&text);
        assert_eq!(e.key(), Some(key), "{kv}: {e}");
        assert_eq!(e.line(), Some(line_of(&text, kv)), "{kv}: {e}");
        assert!(e.message().contains(says), "{kv}: {e}");
        assert!(e.to_string().contains(key), "{kv}: {e}");
    }
}
