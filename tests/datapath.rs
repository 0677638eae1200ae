//! Behaviour tests of the datapath: [`process`] driven with frames built by
//! `rampart::gen`, on configs written inline as TOML, with every transmitted
//! frame parsed back by etherparse and checked field by field.
//!
//! Each test states one rule of the policy in the `rampart::datapath`
//! module doc (flows without entries, table full, per-state timeouts, local
//! ports, schedulers, counters). Which backend Maglev picks is taken from
//! the stateless simulator (`VipInfo::maglev_backend`); everything else the
//! test computes on its own.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use etherparse::{LinkSlice, NetSlice, SlicedPacket, TransportSlice};
use proptest::prelude::*;

use rampart::config;
use rampart::conntrack::{addr_hash, ConnState};
use rampart::datapath::{process, Verdict, WorkerState};
use rampart::flow::tcp_flags::{ACK, FIN, PSH, RST, SYN};
use rampart::flow::{proto, Addr, FlowKey, Mac};
use rampart::gen::{self, Eth, TcpSeg};
use rampart::ids::BackendId;
use rampart::snapshot::{Snapshot, MAGLEV_SEED};
use rampart::stats::{DropReason, Event, FlowCounters};
use rampart::xmit::lport::FIRST_PORT;
use rampart_testkit::fixtures::{
    self,
    net::{parse as ip, GATEWAY_MAC, NODE_MAC},
};
use rampart_testkit::toml::{self, Vip};

const SEED: u64 = 0x5eed_0f7e_5700;

// ---- configs ----------------------------------------------------------------

/// The node and its neighbors. 198.18.1.14 deliberately has no neighbor entry.
fn node() -> String {
    toml::node(
        &["198.18.0.1", "2001:2::1"],
        &[
            "198.18.1.11",
            "198.18.1.12",
            "198.18.1.13",
            "2001:2:0:1::11",
            "2001:2:0:1::12",
        ],
    )
}

/// NAT, Maglev, three backends that serve no other VIP.
fn web_nat() -> String {
    Vip::new("web", "198.18.100.10", 80, "tcp", "nat")
        .table_size(1009)
        .backends(&["198.18.1.11", "198.18.1.12", "198.18.1.13"], 8080)
        .to_string()
}

/// UDP NAT on the web VIP's address.
fn dns_nat() -> String {
    Vip::new("dns", "198.18.100.10", 53, "udp", "nat")
        .table_size(1009)
        .backends(&["198.18.1.11", "198.18.1.12"], 5353)
        .to_string()
}

/// FullNAT, Maglev, one local address.
fn api_fullnat() -> String {
    api(&["198.18.0.200"])
}

/// FullNAT, Maglev, on `locals`.
fn api(locals: &[&str]) -> String {
    Vip::new("api", "198.18.100.20", 443, "tcp", "fullnat")
        .table_size(1009)
        .local_addresses(locals)
        .backends(&["198.18.1.11", "198.18.1.12"], 8443)
        .to_string()
}

/// DR, Maglev, two adjacent backends.
fn static_dr() -> String {
    static_dr_on(&["198.18.1.12", "198.18.1.13"])
}

/// DR, Maglev, on `backends`.
fn static_dr_on(backends: &[&str]) -> String {
    Vip::new("static", "198.18.100.30", 80, "tcp", "dr")
        .table_size(1009)
        .backends_without_port(backends)
        .to_string()
}

/// Short, distinct timeouts so each state's can be told apart.
const SHORT_TIMEOUTS: &str = "capacity = 64
tcp_syn_sent = 5
tcp_syn_recv = 6
tcp_established = 50
tcp_fin_wait = 20
tcp_close_wait = 21
tcp_time_wait = 7
tcp_close = 3
udp = 30";

fn snapshot(conntrack: &str, vips: &str) -> Snapshot {
    let text = format!("{}\n[conntrack]\n{conntrack}\n{vips}", node());
    match config::parse(&text, "test.toml") {
        Ok(c) => Snapshot::build(&c),
        Err(e) => panic!("test config is invalid: {e}\n{text}"),
    }
}

/// A NAT VIP on 198.18.100.10:80 with `scheduler` and backends
/// 198.18.1.11.. with `weights`.
fn nat_vip(scheduler: &str, weights: &[u32]) -> String {
    let mut vip = Vip::new("web", "198.18.100.10", 80, "tcp", "nat")
        .scheduler(scheduler)
        .table_size(1009);
    for (i, w) in (11..).zip(weights) {
        vip = vip.weighted(&format!("198.18.1.{i}"), 8080, *w);
    }
    vip.to_string()
}

// ---- the load balancer under test -------------------------------------------

struct Lb {
    snap: Snapshot,
    ws: WorkerState,
}

/// A backend as the test expects to see it on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Backend {
    id: BackendId,
    addr: Addr,
    port: u16,
    mac: Mac,
}

impl Lb {
    fn new(conntrack: &str, vips: &str) -> Lb {
        Lb::worker(conntrack, vips, 0, 1)
    }

    fn worker(conntrack: &str, vips: &str, id: u16, workers: u16) -> Lb {
        let snap = snapshot(conntrack, vips);
        let ws = WorkerState::new(&snap, id, workers, SEED);
        Lb { snap, ws }
    }

    fn send(&mut self, frame: &mut Vec<u8>) -> Verdict {
        process(frame, &mut self.ws, &self.snap)
    }

    /// Sends a frame that must be forwarded; returns what went out.
    #[track_caller]
    fn forward(&mut self, mut frame: Vec<u8>) -> Seen {
        let before = seen(&frame);
        let v = self.send(&mut frame);
        assert_eq!(v, Verdict::Forward, "input {before:?}");
        seen(&frame)
    }

    /// Sends a frame that must be dropped; returns the reason.
    #[track_caller]
    fn dropped(&mut self, mut frame: Vec<u8>) -> DropReason {
        match self.send(&mut frame) {
            Verdict::Drop(r) => r,
            v => panic!("expected a drop, got {v:?}: {:?}", seen(&frame)),
        }
    }

    fn event(&self, e: Event) -> u64 {
        self.ws.stats.events[e as usize]
    }

    fn drops(&self, r: DropReason) -> u64 {
        self.ws.stats.drops[r as usize]
    }

    /// Sets the clock and runs one aging sweep over the whole table.
    fn age_at(&mut self, now: u32) -> u32 {
        self.ws.set_clock(now);
        self.ws.age_with_budget(&self.snap, u32::MAX)
    }

    fn conns(&self) -> u32 {
        self.ws.conns.len()
    }

    fn states(&self) -> Vec<ConnState> {
        self.ws.conns.iter().map(|(_, e)| e.state()).collect()
    }

    fn vip_index(&self, key: &FlowKey) -> usize {
        match self.snap.vip(&key.dst, key.dport, key.proto) {
            Some(v) => v.index(),
            None => panic!("{key:?} is not for a VIP"),
        }
    }

    fn backend(&self, id: BackendId) -> Backend {
        let b = &self.snap.backends[id.index()];
        Backend {
            id,
            addr: b.key.addr,
            port: b.key.port,
            mac: b.mac,
        }
    }

    fn backend_at(&self, addr: Addr, port: u16) -> Backend {
        match self
            .snap
            .backends
            .iter()
            .position(|b| b.key.addr == addr && b.key.port == port)
        {
            Some(id) => self.backend(BackendId::new(id as u32)),
            None => panic!("no backend {addr}:{port}"),
        }
    }

    /// The Maglev choice for a forward flow (the `which_backend` simulator).
    fn maglev(&self, key: &FlowKey) -> Backend {
        let vi = self.vip_index(key);
        match self.snap.vips[vi].maglev_backend(key) {
            Some(id) => self.backend(id),
            None => panic!("VIP {vi} has no Maglev backend"),
        }
    }

    /// The single connection entry's backend.
    fn only_entry_backend(&self) -> BackendId {
        let all: Vec<BackendId> = self.ws.conns.iter().map(|(_, e)| e.backend).collect();
        assert_eq!(all.len(), 1, "expected exactly one entry");
        all[0]
    }
}

// ---- frames -----------------------------------------------------------------

const FROM_CLIENTS: Eth = Eth {
    src: GATEWAY_MAC,
    dst: NODE_MAC,
    vlan: None,
};

const TO_CLIENTS: Eth = Eth {
    src: NODE_MAC,
    dst: GATEWAY_MAC,
    vlan: None,
};

fn from_backend(b: &Backend) -> Eth {
    Eth {
        src: b.mac,
        dst: NODE_MAC,
        vlan: None,
    }
}

fn to_backend(b: &Backend) -> Eth {
    Eth {
        src: NODE_MAC,
        dst: b.mac,
        vlan: None,
    }
}

fn seg(sport: u16, dport: u16, flags: u8, payload: &[u8]) -> TcpSeg {
    TcpSeg {
        sport,
        dport,
        seq: 0x1000,
        ack: if flags & ACK != 0 { 0x2000 } else { 0 },
        flags,
        window: 8192,
        options: Vec::new(),
        payload: payload.to_vec(),
    }
}

/// Client number `n` (distinct for n < 50_000): 198.18.50.1 and up.
fn client(n: u32) -> Addr {
    Addr::from_v4([198, 18, 50 + (n / 250) as u8, 1 + (n % 250) as u8])
}

fn tcp_key(client: Addr, cport: u16, vip: Addr, vport: u16) -> FlowKey {
    FlowKey {
        src: client,
        dst: vip,
        sport: cport,
        dport: vport,
        proto: proto::TCP,
    }
}

fn udp_key(client: Addr, cport: u16, vip: Addr, vport: u16) -> FlowKey {
    FlowKey {
        proto: proto::UDP,
        ..tcp_key(client, cport, vip, vport)
    }
}

/// A client's TCP segment (no payload) for `key`.
fn client_tcp(key: &FlowKey, flags: u8) -> Vec<u8> {
    gen::tcp(
        &FROM_CLIENTS,
        key.src,
        key.dst,
        64,
        1,
        &seg(key.sport, key.dport, flags, b""),
    )
}

/// A backend's TCP segment towards `dst:dport` (the client for NAT, a local
/// address for FullNAT).
fn backend_tcp(b: &Backend, dst: Addr, dport: u16, flags: u8) -> Vec<u8> {
    gen::tcp(
        &from_backend(b),
        b.addr,
        dst,
        64,
        2,
        &seg(b.port, dport, flags, b""),
    )
}

fn client_udp(key: &FlowKey, payload: &[u8]) -> Vec<u8> {
    gen::udp(
        &FROM_CLIENTS,
        key.src,
        key.dst,
        64,
        3,
        key.sport,
        key.dport,
        payload,
    )
}

fn backend_udp(b: &Backend, dst: Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    gen::udp(&from_backend(b), b.addr, dst, 64, 4, b.port, dport, payload)
}

// ---- reading outputs ----------------------------------------------------------

/// The header fields of a frame, as etherparse reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    src_mac: Mac,
    dst_mac: Mac,
    src: Addr,
    dst: Addr,
    sport: u16,
    dport: u16,
    proto: u8,
}

fn seen(frame: &[u8]) -> Seen {
    let p = match SlicedPacket::from_ethernet(frame) {
        Ok(p) => p,
        Err(e) => panic!("frame does not parse: {e:?}"),
    };
    let Some(LinkSlice::Ethernet2(e)) = &p.link else {
        panic!("no Ethernet header")
    };
    let (src, dst) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => (
            Addr::from_v4(ip.header().source()),
            Addr::from_v4(ip.header().destination()),
        ),
        Some(NetSlice::Ipv6(ip)) => (
            Addr::from_v6(ip.header().source()),
            Addr::from_v6(ip.header().destination()),
        ),
        _ => panic!("no IP header"),
    };
    let (sport, dport, proto) = match &p.transport {
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port(), proto::TCP),
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port(), proto::UDP),
        _ => panic!("no TCP/UDP header"),
    };
    Seen {
        src_mac: Mac(e.source()),
        dst_mac: Mac(e.destination()),
        src,
        dst,
        sport,
        dport,
        proto,
    }
}

/// The transport checksum field of a TCP/UDP frame.
fn l4_checksum_field(frame: &[u8]) -> u16 {
    match SlicedPacket::from_ethernet(frame).map(|p| p.transport) {
        Ok(Some(TransportSlice::Tcp(t))) => t.checksum(),
        Ok(Some(TransportSlice::Udp(u))) => u.checksum(),
        _ => panic!("no TCP/UDP header"),
    }
}

/// Recomputes the IPv4 header checksum and the TCP/UDP checksum of `frame`
/// from scratch and compares them with the fields. A UDP/IPv4 checksum of 0
/// means "none" (RFC 768) and passes.
fn verify_checksums(frame: &[u8]) -> Result<(), String> {
    let p = SlicedPacket::from_ethernet(frame).map_err(|e| format!("{e:?}"))?;
    let (src, dst) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            let want = h.to_header().calc_header_checksum();
            if h.header_checksum() != want {
                return Err(format!(
                    "IPv4 header checksum {:04x}, want {want:04x}",
                    h.header_checksum()
                ));
            }
            (
                Addr::from_v4(h.source()).v6_octets(),
                Addr::from_v4(h.destination()).v6_octets(),
            )
        }
        Some(NetSlice::Ipv6(ip)) => (ip.header().source(), ip.header().destination()),
        _ => return Err("no IP header".into()),
    };
    let v4 = matches!(p.net, Some(NetSlice::Ipv4(_)));
    let v4_of = |a: [u8; 16]| Addr::from_v6(a).v4_octets();
    let (got, want) = match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let want = if v4 {
                t.calc_checksum_ipv4(v4_of(src), v4_of(dst))
            } else {
                t.calc_checksum_ipv6(src, dst)
            };
            (t.checksum(), want.map_err(|e| format!("{e:?}"))?)
        }
        Some(TransportSlice::Udp(u)) => {
            if v4 && u.checksum() == 0 {
                return Ok(());
            }
            let h = u.to_header();
            let want = if v4 {
                h.calc_checksum_ipv4_raw(v4_of(src), v4_of(dst), u.payload())
            } else {
                h.calc_checksum_ipv6_raw(src, dst, u.payload())
            };
            (u.checksum(), want.map_err(|e| format!("{e:?}"))?)
        }
        _ => return Err("no TCP/UDP header".into()),
    };
    if got == want {
        Ok(())
    } else {
        Err(format!("transport checksum {got:04x}, want {want:04x}"))
    }
}

fn ipv4_udp_checksum_at() -> std::ops::Range<usize> {
    // Ethernet (no tag) + IPv4 without options, then the checksum word.
    let at = 14 + 20 + 6;
    at..at + 2
}

// ---- 1. table full ------------------------------------------------------------

#[test]
fn full_table_sends_new_nat_flows_to_their_maglev_backend_without_state() {
    let mut lb = Lb::new("capacity = 4", &web_nat());
    let vip = ip("198.18.100.10");
    let mut picked = BTreeMap::new();
    for n in 0..40 {
        let key = tcp_key(client(n), 40_000, vip, 80);
        let b = lb.maglev(&key);
        *picked.entry(b.id).or_insert(0) += 1;
        let out = lb.forward(client_tcp(&key, SYN));
        assert_eq!(
            out,
            Seen {
                src_mac: NODE_MAC,
                dst_mac: b.mac,
                src: key.src,
                dst: b.addr,
                sport: 40_000,
                dport: b.port,
                proto: proto::TCP,
            },
            "flow {n}"
        );
        assert_eq!(lb.conns(), (n + 1).min(4), "flow {n}");
        // The backend's answer comes back from the VIP, with or without an entry.
        let back = lb.forward(backend_tcp(&b, key.src, 40_000, SYN | ACK));
        assert_eq!(
            back,
            Seen {
                src_mac: NODE_MAC,
                dst_mac: GATEWAY_MAC,
                src: vip,
                dst: key.src,
                sport: 80,
                dport: 40_000,
                proto: proto::TCP,
            },
            "answer of flow {n}"
        );
    }
    assert!(picked.len() > 1, "Maglev spread 40 flows: {picked:?}");
    assert_eq!(lb.event(Event::ConnNew), 4);
    assert_eq!(lb.event(Event::StatelessNew), 36);
    assert_eq!(lb.event(Event::StatelessReply), 36);
    assert_eq!(lb.ws.stats.dropped_total(), 0);
    assert_eq!(lb.conns(), 4);
}

#[test]
fn stateless_replies_stop_once_the_overflow_is_an_established_timeout_old() {
    let mut lb = Lb::new("capacity = 1\ntcp_established = 50", &web_nat());
    let vip = ip("198.18.100.10");
    lb.ws.set_clock(1000);
    let first = tcp_key(client(1), 40_000, vip, 80);
    lb.forward(client_tcp(&first, SYN));
    // The table is full from here on: this flow goes out without state.
    let key = tcp_key(client(2), 40_000, vip, 80);
    let b = lb.maglev(&key);
    lb.forward(client_tcp(&key, SYN));
    assert_eq!(lb.event(Event::StatelessNew), 1);
    lb.ws.set_clock(1049);
    let back = lb.forward(backend_tcp(&b, key.src, 40_000, ACK));
    assert_eq!((back.src, back.sport), (vip, 80));
    assert_eq!(lb.event(Event::StatelessReply), 1);
    // An established timeout after the last stateless flow, nothing that
    // went out without state can still be alive.
    lb.ws.set_clock(1050);
    assert_eq!(
        lb.dropped(backend_tcp(&b, key.src, 40_000, ACK)),
        DropReason::NoConn
    );
    assert_eq!(lb.event(Event::StatelessReply), 1);
}

#[test]
fn full_table_drops_new_fullnat_flows_and_returns_their_local_port() {
    let mut lb = Lb::new("capacity = 2\ntcp_syn_sent = 5", &api_fullnat());
    let vip = ip("198.18.100.20");
    let local = ip("198.18.0.200");
    let total = lb.ws.lports.free(0);
    lb.ws.set_clock(100);
    let mut held = Vec::new();
    for n in 0..2 {
        let out = lb.forward(client_tcp(&tcp_key(client(n), 40_000, vip, 443), SYN));
        assert_eq!(out.src, local);
        held.push(out.sport);
    }
    assert_eq!(lb.ws.lports.free(0), total - 2);

    let third = tcp_key(client(2), 40_000, vip, 443);
    assert_eq!(
        lb.dropped(client_tcp(&third, SYN)),
        DropReason::ConnTableFull
    );
    assert_eq!(
        lb.ws.lports.free(0),
        total - 2,
        "the dropped flow's port is given back"
    );
    assert_eq!(lb.drops(DropReason::ConnTableFull), 1);
    assert_eq!(lb.event(Event::StatelessNew), 0);
    assert_eq!(lb.conns(), 2);

    // Once the two SYN-only flows have aged out, a new flow gets a port.
    assert_eq!(lb.age_at(105), 2);
    assert_eq!(lb.ws.lports.free(0), total);
    let out = lb.forward(client_tcp(&third, SYN));
    assert_eq!(out.src, local);
    assert!(out.sport >= FIRST_PORT);
    // Ports are reused first-in first-out: the ones just released come last.
    assert!(!held.contains(&out.sport), "{} reused at once", out.sport);
    assert_eq!(lb.ws.lports.free(0), total - 1);
    assert_eq!(lb.conns(), 1);
}

// ---- 2. RST without an entry --------------------------------------------------

#[test]
fn rst_without_entry_creates_none_nat_and_dr_forward_fullnat_drops() {
    let mut lb = Lb::new("", &[web_nat(), api_fullnat(), static_dr()].concat());
    let (web, api, stat) = (
        ip("198.18.100.10"),
        ip("198.18.100.20"),
        ip("198.18.100.30"),
    );
    for (n, flags) in [RST, RST | ACK].into_iter().enumerate() {
        let n = n as u32;
        let key = tcp_key(client(n), 41_000, web, 80);
        let b = lb.maglev(&key);
        let out = lb.forward(client_tcp(&key, flags));
        assert_eq!((out.dst, out.dport, out.dst_mac), (b.addr, b.port, b.mac));
        assert_eq!(out.src, key.src);
        assert_eq!(lb.conns(), 0, "NAT RST {flags:#x} made an entry");

        let key = tcp_key(client(n), 41_000, stat, 80);
        let b = lb.maglev(&key);
        let mut frame = client_tcp(&key, flags);
        assert_eq!(lb.send(&mut frame), Verdict::Forward);
        let mut want = client_tcp(&key, flags);
        want[..12].copy_from_slice(&[b.mac.0, NODE_MAC.0].concat());
        assert_eq!(frame, want, "DR changes only the MACs");
        assert_eq!(lb.conns(), 0, "DR RST {flags:#x} made an entry");

        let key = tcp_key(client(n), 41_000, api, 443);
        assert_eq!(lb.dropped(client_tcp(&key, flags)), DropReason::NoConn);
        assert_eq!(lb.conns(), 0, "FullNAT RST {flags:#x} made an entry");
    }
    assert_eq!(lb.event(Event::StatelessForward), 4);
    assert_eq!(lb.event(Event::ConnNew), 0);
    assert_eq!(lb.event(Event::MidflowPickup), 0);
    assert_eq!(lb.drops(DropReason::NoConn), 2);
}

// ---- 3. mid-flow pickup ---------------------------------------------------------

#[test]
fn midflow_ack_is_picked_up_on_its_maglev_backend_nat_and_dr() {
    let mut lb = Lb::new("", &[web_nat(), static_dr()].concat());
    let (web, stat) = (ip("198.18.100.10"), ip("198.18.100.30"));

    let key = tcp_key(client(1), 42_000, web, 80);
    let b = lb.maglev(&key);
    let out = lb.forward(client_tcp(&key, ACK | PSH));
    assert_eq!((out.dst, out.dport, out.dst_mac), (b.addr, b.port, b.mac));
    assert_eq!(lb.event(Event::MidflowPickup), 1);
    assert_eq!(lb.event(Event::ConnNew), 0);
    assert_eq!(lb.only_entry_backend(), b.id);
    assert_eq!(lb.states(), vec![ConnState::Established]);
    // The backend's answer finds the new entry (no stateless translation).
    let back = lb.forward(backend_tcp(&b, key.src, 42_000, ACK));
    assert_eq!((back.src, back.sport), (web, 80));
    assert_eq!(lb.event(Event::StatelessReply), 0);

    let key = tcp_key(client(2), 42_000, stat, 80);
    let b = lb.maglev(&key);
    let out = lb.forward(client_tcp(&key, ACK));
    assert_eq!((out.dst, out.dport, out.dst_mac), (stat, 80, b.mac));
    assert_eq!(lb.event(Event::MidflowPickup), 2);
    assert_eq!(lb.conns(), 2);
    let dr_entry = lb
        .ws
        .conns
        .iter()
        .find(|(_, e)| e.client == key.src)
        .map(|(_, e)| e.backend);
    assert_eq!(dr_entry, Some(b.id));
}

#[test]
fn midflow_pickup_uses_maglev_even_when_the_vip_schedules_otherwise() {
    let mut lb = Lb::new("", &nat_vip("rr", &[1, 1, 1]));
    let vip = ip("198.18.100.10");
    for n in 0..12 {
        let key = tcp_key(client(n), 42_001, vip, 80);
        let b = lb.maglev(&key);
        let out = lb.forward(client_tcp(&key, ACK));
        assert_eq!((out.dst, out.dport), (b.addr, b.port), "flow {n}");
    }
    assert_eq!(lb.event(Event::MidflowPickup), 12);
}

// ---- 4. per-state timeouts ----------------------------------------------------------

#[test]
fn syn_only_flow_expires_after_tcp_syn_sent_then_late_replies_drop() {
    let mut lb = Lb::new(SHORT_TIMEOUTS, &web_nat());
    let vip = ip("198.18.100.10");
    let key = tcp_key(client(1), 43_000, vip, 80);
    let b = lb.maglev(&key);
    lb.ws.set_clock(1000);
    lb.forward(client_tcp(&key, SYN));
    assert_eq!(lb.states(), vec![ConnState::SynSent]);
    assert_eq!(lb.age_at(1004), 0);
    assert_eq!(lb.conns(), 1);
    assert_eq!(lb.age_at(1005), 1);
    assert_eq!(lb.conns(), 0);
    assert_eq!(lb.event(Event::ConnExpired), 1);
    // The table never overflowed, so no flow went out without an entry:
    // the late answer is not a reply of ours.
    assert_eq!(
        lb.dropped(backend_tcp(&b, key.src, 43_000, SYN | ACK)),
        DropReason::NoConn
    );
    assert_eq!(lb.event(Event::StatelessReply), 0);
    assert_eq!(lb.conns(), 0);
}

/// Entries that a packet finds past their expiry, before the aging sweep
/// reached them, are counted as expired like the ones the sweep removes:
/// new + pickups = expired + active at every point.
#[test]
fn entries_found_expired_by_their_next_packet_count_as_expired() {
    let mut lb = Lb::new(SHORT_TIMEOUTS, &web_nat());
    let vip = ip("198.18.100.10");
    let books = |lb: &Lb| {
        let opened = lb.event(Event::ConnNew) + lb.event(Event::MidflowPickup);
        let closed = lb.event(Event::ConnExpired) + u64::from(lb.conns());
        assert_eq!(opened, closed, "new + pickups != expired + active");
    };
    lb.ws.set_clock(1000);
    let keys: Vec<FlowKey> = (0..8)
        .map(|i| tcp_key(client(i), 44_000, vip, 80))
        .collect();
    for k in &keys {
        lb.forward(client_tcp(k, SYN));
    }
    books(&lb);
    // Past tcp_syn_sent, with no sweep: the next packet of each idle flow
    // (a retransmitted SYN, a mid-flow ACK, a late reply) finds it dead.
    lb.ws.set_clock(1010);
    lb.forward(client_tcp(&keys[0], SYN));
    lb.forward(client_tcp(&keys[1], ACK));
    let b = lb.maglev(&keys[2]);
    assert_eq!(
        lb.dropped(backend_tcp(&b, keys[2].src, keys[2].sport, SYN | ACK)),
        DropReason::NoConn
    );
    assert_eq!(lb.event(Event::ConnExpired), 3);
    books(&lb);
    assert_eq!(lb.age_at(1010), 5);
    books(&lb);
    assert_eq!(lb.conns(), 2);
}

#[test]
fn expired_fullnat_flow_drops_late_replies_no_conn() {
    let mut lb = Lb::new(SHORT_TIMEOUTS, &api_fullnat());
    let key = tcp_key(client(1), 43_001, ip("198.18.100.20"), 443);
    let b = lb.maglev(&key);
    lb.ws.set_clock(1000);
    let out = lb.forward(client_tcp(&key, SYN));
    assert_eq!(lb.age_at(1005), 1);
    assert_eq!(
        lb.dropped(backend_tcp(&b, out.src, out.sport, SYN | ACK)),
        DropReason::NoConn
    );
}

#[test]
fn established_flow_outlives_syn_timeout_and_expires_after_tcp_established() {
    let mut lb = Lb::new(SHORT_TIMEOUTS, &web_nat());
    let key = tcp_key(client(1), 43_002, ip("198.18.100.10"), 80);
    let b = lb.maglev(&key);
    lb.ws.set_clock(1000);
    lb.forward(client_tcp(&key, SYN));
    lb.forward(backend_tcp(&b, key.src, key.sport, SYN | ACK));
    assert_eq!(lb.states(), vec![ConnState::SynRecv]);
    lb.forward(client_tcp(&key, ACK));
    assert_eq!(lb.states(), vec![ConnState::Established]);
    assert_eq!(lb.age_at(1005), 0);
    assert_eq!(lb.age_at(1006), 0);
    assert_eq!(lb.age_at(1049), 0);
    assert_eq!(lb.conns(), 1);
    assert_eq!(lb.age_at(1050), 1);
    assert_eq!(lb.conns(), 0);
    assert_eq!(lb.event(Event::ConnExpired), 1);
}

#[test]
fn udp_flow_expires_after_udp_timeout() {
    let mut lb = Lb::new(SHORT_TIMEOUTS, &dns_nat());
    let key = udp_key(client(1), 5300, ip("198.18.100.10"), 53);
    lb.ws.set_clock(1000);
    lb.forward(client_udp(&key, b"query"));
    assert_eq!(lb.states(), vec![ConnState::Udp]);
    assert_eq!(lb.age_at(1005), 0);
    assert_eq!(lb.age_at(1029), 0);
    assert_eq!(lb.age_at(1030), 1);
    assert_eq!(lb.event(Event::ConnExpired), 1);
}

#[test]
fn fin_fin_close_uses_the_time_wait_timeout() {
    let mut lb = Lb::new(SHORT_TIMEOUTS, &web_nat());
    let key = tcp_key(client(1), 43_003, ip("198.18.100.10"), 80);
    let b = lb.maglev(&key);
    lb.ws.set_clock(1000);
    lb.forward(client_tcp(&key, SYN));
    lb.forward(backend_tcp(&b, key.src, key.sport, SYN | ACK));
    lb.forward(client_tcp(&key, ACK));
    lb.forward(client_tcp(&key, FIN | ACK));
    assert_eq!(lb.states(), vec![ConnState::FinWait]);
    lb.forward(backend_tcp(&b, key.src, key.sport, FIN | ACK));
    assert_eq!(lb.states(), vec![ConnState::TimeWait]);
    lb.forward(client_tcp(&key, ACK));
    assert_eq!(lb.states(), vec![ConnState::TimeWait]);
    assert_eq!(lb.age_at(1006), 0);
    assert_eq!(lb.age_at(1007), 1);
    assert_eq!(lb.conns(), 0);
}

#[test]
fn entries_refreshed_by_packets_do_not_expire() {
    let mut lb = Lb::new(SHORT_TIMEOUTS, &[web_nat(), dns_nat()].concat());
    let vip = ip("198.18.100.10");
    let tcp = tcp_key(client(1), 43_004, vip, 80);
    let udp = udp_key(client(2), 5300, vip, 53);
    let tb = lb.maglev(&tcp);
    lb.ws.set_clock(1000);
    lb.forward(client_tcp(&tcp, SYN));
    lb.forward(backend_tcp(&tb, tcp.src, tcp.sport, SYN | ACK));
    lb.forward(client_tcp(&tcp, ACK));
    let out = lb.forward(client_udp(&udp, b"q"));
    let ub = lb.backend_at(out.dst, out.dport);
    // The client keeps the TCP flow alive (every 40 s < 50 s), the backend
    // the UDP one (every 20 s < 30 s), for far longer than either timeout.
    for t in (1020..=1400).step_by(20) {
        lb.ws.set_clock(t);
        if (t - 1000) % 40 == 0 {
            lb.forward(client_tcp(&tcp, ACK | PSH));
        }
        lb.forward(backend_udp(&ub, udp.src, udp.sport, b"a"));
        assert_eq!(lb.age_at(t), 0, "at {t}");
    }
    assert_eq!(lb.conns(), 2);
    assert_eq!(lb.age_at(1429), 0);
    assert_eq!(lb.age_at(1430), 1, "UDP, 30 s after its last answer");
    assert_eq!(lb.states(), vec![ConnState::Established]);
    assert_eq!(lb.age_at(1449), 0);
    assert_eq!(lb.age_at(1450), 1, "TCP, 50 s after its last packet");
    assert_eq!(lb.event(Event::ConnExpired), 2);
}

// ---- 5. reopening a closed connection -----------------------------------------------

#[test]
fn new_syn_on_time_wait_or_close_makes_a_fresh_entry() {
    let mut lb = Lb::new(SHORT_TIMEOUTS, &web_nat());
    let key = tcp_key(client(1), 44_000, ip("198.18.100.10"), 80);
    let b = lb.maglev(&key);
    lb.ws.set_clock(1000);
    lb.forward(client_tcp(&key, SYN));
    lb.forward(backend_tcp(&b, key.src, key.sport, SYN | ACK));
    lb.forward(client_tcp(&key, ACK));
    lb.forward(client_tcp(&key, FIN | ACK));
    lb.forward(backend_tcp(&b, key.src, key.sport, FIN | ACK));
    assert_eq!(lb.states(), vec![ConnState::TimeWait]);

    lb.ws.set_clock(1002);
    let out = lb.forward(client_tcp(&key, SYN));
    assert_eq!((out.dst, out.dport), (b.addr, b.port));
    assert_eq!(lb.event(Event::ConnNew), 2);
    assert_eq!(lb.conns(), 1);
    assert_eq!(lb.states(), vec![ConnState::SynSent]);
    let expires: Vec<u32> = lb.ws.conns.iter().map(|(_, e)| e.expires).collect();
    assert_eq!(
        expires,
        vec![1002 + 5],
        "the fresh entry has the SYN timeout"
    );

    // A reset closes it; the next SYN opens a third connection.
    lb.forward(client_tcp(&key, RST | ACK));
    assert_eq!(lb.states(), vec![ConnState::Close]);
    lb.forward(client_tcp(&key, SYN));
    assert_eq!(lb.event(Event::ConnNew), 3);
    assert_eq!(lb.conns(), 1);
    assert_eq!(lb.states(), vec![ConnState::SynSent]);
}

#[test]
fn reopened_fullnat_connection_gets_a_new_port_and_frees_the_old() {
    let mut lb = Lb::new(SHORT_TIMEOUTS, &api_fullnat());
    let key = tcp_key(client(1), 44_001, ip("198.18.100.20"), 443);
    let b = lb.maglev(&key);
    let total = lb.ws.lports.free(0);
    lb.ws.set_clock(1000);
    let first = lb.forward(client_tcp(&key, SYN));
    lb.forward(backend_tcp(&b, first.src, first.sport, SYN | ACK));
    lb.forward(client_tcp(&key, ACK));
    lb.forward(client_tcp(&key, FIN | ACK));
    lb.forward(backend_tcp(&b, first.src, first.sport, FIN | ACK));
    assert_eq!(lb.states(), vec![ConnState::TimeWait]);

    let second = lb.forward(client_tcp(&key, SYN));
    assert_ne!(second.sport, first.sport, "a fresh local port");
    assert_eq!(lb.ws.lports.free(0), total - 1, "the old port went back");
    assert_eq!(lb.event(Event::ConnNew), 2);
    assert_eq!(lb.conns(), 1);
    // The scheduler's count of active connections follows: one, not two.
    let vi = lb.vip_index(&key);
    let active: u32 = (0..2).map(|i| lb.ws.scheds[vi].active(i)).sum();
    assert_eq!(active, 1);
    // The old port no longer leads anywhere.
    assert_eq!(
        lb.dropped(backend_tcp(&b, first.src, first.sport, ACK)),
        DropReason::NoConn
    );
}

// ---- 6. FullNAT local ports -----------------------------------------------------------

fn api_two_locals() -> String {
    api(&["198.18.0.200", "198.18.0.201"])
}

#[test]
fn fullnat_alternates_local_addresses_and_uses_the_workers_ports() {
    let mut lb = Lb::worker("", &api_two_locals(), 1, 4);
    let vip = ip("198.18.100.20");
    let locals = [ip("198.18.0.200"), ip("198.18.0.201")];
    let mut used = std::collections::HashSet::new();
    for n in 0..40 {
        let key = tcp_key(client(n), 45_000, vip, 443);
        let b = lb.maglev(&key);
        let out = lb.forward(client_tcp(&key, SYN));
        assert_eq!(out.src, locals[n as usize % 2], "flow {n}");
        assert_eq!(out.sport % 4, 1, "port {} is not worker 1's", out.sport);
        assert!(out.sport >= FIRST_PORT);
        assert!(
            used.insert((out.src, out.sport)),
            "{out:?} handed out twice"
        );
        assert_eq!((out.dst, out.dport, out.dst_mac), (b.addr, b.port, b.mac));
        let back = lb.forward(backend_tcp(&b, out.src, out.sport, SYN | ACK));
        assert_eq!(
            (back.src, back.sport, back.dst, back.dport),
            (vip, 443, key.src, 45_000)
        );
    }
}

#[test]
fn fullnat_exhausting_the_workers_ports_drops_until_one_is_freed() {
    let conntrack = "capacity = 40000\ntcp_syn_sent = 100\ntcp_close = 2";
    let mut lb = Lb::worker(conntrack, &api_two_locals(), 1, 4);
    let vip = ip("198.18.100.20");
    let share = (FIRST_PORT as u32..=65_535).filter(|p| p % 4 == 1).count();
    assert_eq!(lb.ws.lports.free(0), share);
    assert_eq!(lb.ws.lports.free(1), share);
    let total = 2 * share as u32;
    lb.ws.set_clock(1000);
    for n in 0..total {
        let mut frame = client_tcp(&tcp_key(client(n), 45_001, vip, 443), SYN);
        assert_eq!(lb.send(&mut frame), Verdict::Forward, "flow {n}");
    }
    assert_eq!(lb.ws.lports.free(0) + lb.ws.lports.free(1), 0);
    assert_eq!(lb.conns(), total);
    let late = tcp_key(client(total), 45_001, vip, 443);
    assert_eq!(
        lb.dropped(client_tcp(&late, SYN)),
        DropReason::FullnatPortsExhausted
    );
    assert_eq!(lb.conns(), total);

    // Flow 0 resets; once its closed entry ages out, its port is free again.
    let first = tcp_key(client(0), 45_001, vip, 443);
    let out = lb.forward(client_tcp(&first, RST | ACK));
    assert_eq!(lb.age_at(1002), 1);
    let again = lb.forward(client_tcp(&late, SYN));
    assert_eq!((again.src, again.sport), (out.src, out.sport));
    assert_eq!(lb.drops(DropReason::FullnatPortsExhausted), 1);
}

// ---- 7. drained backends ----------------------------------------------------------------

#[test]
fn drained_backend_gets_no_new_flows_with_any_scheduler() {
    for sched in ["rr", "wrr", "lc", "sh", "maglev"] {
        let mut lb = Lb::new("capacity = 2048", &nat_vip(sched, &[1, 0, 2]));
        let vip = ip("198.18.100.10");
        let mut per: BTreeMap<Addr, u32> = BTreeMap::new();
        for n in 0..1000 {
            let key = tcp_key(client(n), 46_000 + (n % 7) as u16, vip, 80);
            let out = lb.forward(client_tcp(&key, SYN));
            *per.entry(out.dst).or_insert(0) += 1;
        }
        assert_eq!(per.get(&ip("198.18.1.12")), None, "{sched}: {per:?}");
        assert!(per[&ip("198.18.1.11")] > 0, "{sched}: {per:?}");
        assert!(per[&ip("198.18.1.13")] > 0, "{sched}: {per:?}");
    }
}

#[test]
fn drained_backend_keeps_its_established_flows_across_a_reload() {
    let vips_before = nat_vip("maglev", &[1, 1, 1]);
    let mut lb = Lb::new("", &vips_before);
    let vip = ip("198.18.100.10");
    let drained = ip("198.18.1.12");
    let keys: Vec<FlowKey> = (0..60)
        .map(|n| tcp_key(client(n), 46_100, vip, 80))
        .collect();
    let mut on_drained = Vec::new();
    for key in &keys {
        let out = lb.forward(client_tcp(key, SYN));
        if out.dst == drained {
            on_drained.push(*key);
        }
    }
    assert!(!on_drained.is_empty());
    // The same backends, 198.18.1.12 now weight 0: registry numbers stay.
    lb.snap = snapshot("", &nat_vip("maglev", &[1, 0, 1]));
    for key in &on_drained {
        let out = lb.forward(client_tcp(key, ACK));
        assert_eq!(out.dst, drained, "established flow moved");
    }
    for n in 100..400 {
        let out = lb.forward(client_tcp(&tcp_key(client(n), 46_100, vip, 80), SYN));
        assert_ne!(out.dst, drained, "new flow {n} to a drained backend");
    }
}

// ---- 8. scheduler distribution -----------------------------------------------------------

fn count_new_flows(lb: &mut Lb, flows: u32, port: u16) -> Vec<Addr> {
    let vip = ip("198.18.100.10");
    (0..flows)
        .map(|n| {
            lb.forward(client_tcp(&tcp_key(client(n), port, vip, 80), SYN))
                .dst
        })
        .collect()
}

#[test]
fn wrr_three_to_one_gives_exactly_300_and_100() {
    let mut lb = Lb::new("", &nat_vip("wrr", &[3, 1]));
    let picks = count_new_flows(&mut lb, 400, 47_000);
    let heavy = ip("198.18.1.11");
    assert_eq!(picks.iter().filter(|a| **a == heavy).count(), 300);
    assert_eq!(
        picks.iter().filter(|a| **a == ip("198.18.1.12")).count(),
        100
    );
    // Every round of sum(weights) picks has each backend `weight` times.
    for round in picks.chunks(4) {
        assert_eq!(round.iter().filter(|a| **a == heavy).count(), 3);
    }
}

#[test]
fn rr_cycles_through_backends_in_config_order() {
    let mut lb = Lb::new("", &nat_vip("rr", &[1, 1, 1]));
    let picks = count_new_flows(&mut lb, 300, 47_001);
    for (i, a) in picks.iter().enumerate() {
        assert_eq!(
            *a,
            Addr::from_v4([198, 18, 1, 11 + (i % 3) as u8]),
            "pick {i}"
        );
    }
}

#[test]
fn lc_spreads_evenly_and_refills_a_backend_whose_flows_ended() {
    let mut lb = Lb::new(
        "capacity = 1024\ntcp_close = 2",
        &nat_vip("lc", &[1, 1, 1, 1]),
    );
    let vip = ip("198.18.100.10");
    lb.ws.set_clock(1000);
    let picks = count_new_flows(&mut lb, 400, 47_002);
    for i in 0..4u8 {
        let a = Addr::from_v4([198, 18, 1, 11 + i]);
        assert_eq!(picks.iter().filter(|x| **x == a).count(), 100, "{a}");
    }
    // Every flow on 198.18.1.11 resets and ages out: it has the fewest
    // connections now and takes the next 100 new flows.
    let first = ip("198.18.1.11");
    for (n, a) in picks.iter().enumerate() {
        if *a == first {
            lb.forward(client_tcp(
                &tcp_key(client(n as u32), 47_002, vip, 80),
                RST | ACK,
            ));
        }
    }
    assert_eq!(lb.age_at(1002), 100);
    for n in 1000..1100 {
        let out = lb.forward(client_tcp(&tcp_key(client(n), 47_002, vip, 80), SYN));
        assert_eq!(out.dst, first, "new flow {n}");
    }
}

#[test]
fn sh_sends_every_port_of_one_client_to_one_backend() {
    let mut lb = Lb::new("", &nat_vip("sh", &[1, 1, 1]));
    let vip = ip("198.18.100.10");
    let vi = 0;
    let mut backends = std::collections::BTreeSet::new();
    for c in 0..30 {
        let src = client(c);
        let slot = lb.snap.vips[vi]
            .maglev
            .lookup(addr_hash(&src, MAGLEV_SEED))
            .map(|s| lb.snap.vips[vi].backends[s as usize]);
        let want = lb.backend(slot.unwrap_or(BackendId::new(u32::MAX)));
        for port in 0..20 {
            let out = lb.forward(client_tcp(&tcp_key(src, 30_000 + port * 7, vip, 80), SYN));
            assert_eq!(
                (out.dst, out.dport),
                (want.addr, want.port),
                "{src} port {port}"
            );
        }
        backends.insert(want.addr);
    }
    assert!(backends.len() > 1, "30 clients all on {backends:?}");
}

// ---- 9. reply-key collision --------------------------------------------------------------

fn two_vips_one_backend() -> String {
    let vip = |name, address| {
        Vip::new(name, address, 80, "tcp", "nat")
            .table_size(1009)
            .backends(&["198.18.1.11"], 8080)
    };
    format!("{}{}", vip("a", "198.18.100.10"), vip("b", "198.18.100.11"))
}

#[test]
fn same_client_to_two_nat_vips_sharing_a_backend_collides_while_alive() {
    let mut lb = Lb::new("", &two_vips_one_backend());
    let (a, b) = (ip("198.18.100.10"), ip("198.18.100.11"));
    let c = client(1);
    let backend = lb.backend_at(ip("198.18.1.11"), 8080);
    lb.forward(client_tcp(&tcp_key(c, 48_000, a, 80), SYN));
    assert_eq!(
        lb.dropped(client_tcp(&tcp_key(c, 48_000, b, 80), SYN)),
        DropReason::ConnCollision
    );
    assert_eq!(lb.conns(), 1);
    assert_eq!(lb.event(Event::ConnNew), 1);
    // The backend's answers still belong to the first connection.
    let back = lb.forward(backend_tcp(&backend, c, 48_000, SYN | ACK));
    assert_eq!((back.src, back.sport), (a, 80));

    // Once the first connection is reset the reply key is free.
    lb.forward(client_tcp(&tcp_key(c, 48_000, a, 80), RST | ACK));
    lb.forward(client_tcp(&tcp_key(c, 48_000, b, 80), SYN));
    assert_eq!(lb.event(Event::ConnNew), 2);
    assert_eq!(lb.conns(), 1);
    let back = lb.forward(backend_tcp(&backend, c, 48_000, SYN | ACK));
    assert_eq!((back.src, back.sport), (b, 80));
    assert_eq!(lb.drops(DropReason::ConnCollision), 1);
    // Serving two NAT VIPs, the backend's packets with no entry cannot be
    // translated back without state: which VIP would they come from?
    assert_eq!(
        lb.dropped(backend_tcp(&backend, c, 48_001, ACK)),
        DropReason::NoVip
    );
    assert_eq!(lb.event(Event::StatelessReply), 0);
}

// ---- 10. DR without a neighbor -------------------------------------------------------------

fn dr_half_adjacent() -> String {
    static_dr_on(&["198.18.1.12", "198.18.1.14"])
}

#[test]
fn dr_backend_without_neighbor_entry_drops_dr_no_neighbor() {
    let mut lb = Lb::new("", &dr_half_adjacent());
    let vip = ip("198.18.100.30");
    let (mut fwd, mut dropped) = (0, 0);
    for n in 0..50 {
        let key = tcp_key(client(n), 49_000, vip, 80);
        let b = lb.maglev(&key);
        let mut frame = client_tcp(&key, SYN);
        let v = lb.send(&mut frame);
        if b.addr == ip("198.18.1.14") {
            assert_eq!(v, Verdict::Drop(DropReason::DrNoNeighbor), "flow {n}");
            dropped += 1;
        } else {
            assert_eq!(v, Verdict::Forward, "flow {n}");
            assert_eq!(seen(&frame).dst_mac, b.mac);
            fwd += 1;
        }
    }
    assert!(fwd > 0 && dropped > 0, "{fwd} forwarded, {dropped} dropped");
    assert_eq!(lb.drops(DropReason::DrNoNeighbor), dropped);
}

#[test]
fn dr_flow_dropped_for_no_neighbor_leaves_no_entry_and_no_counts() {
    let mut lb = Lb::new("", &dr_half_adjacent());
    let vip = ip("198.18.100.30");
    let key = (0..)
        .map(|n| tcp_key(client(n), 49_001, vip, 80))
        .find(|k| lb.maglev(k).addr == ip("198.18.1.14"))
        .unwrap_or_default();
    let unreachable = lb.maglev(&key);
    assert_eq!(lb.dropped(client_tcp(&key, SYN)), DropReason::DrNoNeighbor);
    assert_eq!(lb.conns(), 0, "an entry for a flow that went nowhere");
    assert_eq!(lb.event(Event::ConnNew), 0);
    assert_eq!(lb.ws.stats.vips[0].connections, 0);
    assert_eq!(lb.ws.stats.backends[unreachable.id.index()].connections, 0);
}

// ---- 11. drop accounting ---------------------------------------------------------------------

/// Sends `frame` and checks that the outcome moved exactly the counters it
/// should: one drop reason by one, or tx by one. A fragment that spoils its
/// datagram also drops the fragments held for it, under the same reason,
/// each counted in `fragments_held_dropped` too (they were counted as
/// consumed when held).
fn accounted(lb: &mut Lb, mut frame: Vec<u8>) -> Verdict {
    let before = lb.ws.stats.clone();
    let v = lb.send(&mut frame);
    let after = &lb.ws.stats;
    assert_eq!(after.rx_packets, before.rx_packets + 1);
    let held = Event::FragmentHeldDropped as usize;
    let released = after.events[held] - before.events[held];
    match v {
        Verdict::Drop(r) => {
            for (i, (a, b)) in after.drops.iter().zip(before.drops.iter()).enumerate() {
                let want = b + if i == r as usize { 1 + released } else { 0 };
                assert_eq!(*a, want, "{v:?} moved drop counter {i}");
            }
            assert_eq!(after.tx_packets, before.tx_packets);
        }
        Verdict::Forward | Verdict::Reply => {
            assert_eq!(after.drops, before.drops, "{v:?} moved a drop counter");
            assert_eq!(after.tx_packets, before.tx_packets + 1);
            assert_eq!(after.tx_bytes, before.tx_bytes + frame.len() as u64);
        }
        Verdict::Consumed | Verdict::Handover(_) | Verdict::Kernel => {
            assert_eq!(after.drops, before.drops, "{v:?} moved a drop counter");
            assert_eq!(after.consumed, before.consumed + 1);
        }
    }
    v
}

/// A small xorshift for deterministic mutations.
fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn every_drop_counts_its_own_reason_and_rx_equals_tx_plus_drops() {
    let mut seen_reasons = std::collections::BTreeSet::new();
    let mut note = |v: Verdict| {
        if let Verdict::Drop(r) = v {
            seen_reasons.insert(r as usize);
        }
    };

    // The golden scenarios (reference config), as is and with bytes flipped.
    let snap = Snapshot::build(&fixtures::config());
    let ws = WorkerState::new(&snap, 0, 1, SEED);
    let mut lb = Lb { snap, ws };
    let mut x = 0x0123_4567_89ab_cdefu64;
    for sc in fixtures::scenarios() {
        for row in &sc.rows {
            note(accounted(&mut lb, row.input.clone()));
            let mut m = row.input.clone();
            for _ in 0..3 {
                let at = xorshift(&mut x) as usize % m.len();
                m[at] ^= 1 << (xorshift(&mut x) % 8);
            }
            note(accounted(&mut lb, m));
        }
    }
    for len in [0, 1, 13, 14, 33, 60] {
        note(accounted(&mut lb, vec![0xff; len]));
    }
    let s = &lb.ws.stats;
    let held_dropped = s.events[Event::FragmentHeldDropped as usize];
    assert_eq!(
        s.rx_packets,
        s.tx_packets + s.consumed + s.dropped_total() - held_dropped
    );

    // The reasons the reference config cannot produce, on small configs.
    let mut lb = Lb::new(
        "capacity = 3",
        &[two_vips_one_backend(), api_fullnat(), dr_half_adjacent()].concat(),
    );
    let (a, b, api, stat) = (
        ip("198.18.100.10"),
        ip("198.18.100.11"),
        ip("198.18.100.20"),
        ip("198.18.100.30"),
    );
    note(accounted(
        &mut lb,
        client_tcp(&tcp_key(client(1), 1, a, 80), SYN),
    ));
    note(accounted(
        &mut lb,
        client_tcp(&tcp_key(client(1), 1, b, 80), SYN),
    ));
    let no_neighbor = (0..)
        .map(|n| tcp_key(client(n), 2, stat, 80))
        .find(|k| lb.maglev(k).addr == ip("198.18.1.14"))
        .unwrap_or_default();
    note(accounted(&mut lb, client_tcp(&no_neighbor, SYN)));
    for n in 10..14 {
        note(accounted(
            &mut lb,
            client_tcp(&tcp_key(client(n), 3, api, 443), SYN),
        ));
    }
    note(accounted(
        &mut lb,
        client_tcp(&tcp_key(client(20), 3, api, 443), ACK),
    ));
    let s = &lb.ws.stats;
    assert_eq!(s.rx_packets, s.tx_packets + s.consumed + s.dropped_total());
    for r in [
        DropReason::ConnCollision,
        DropReason::DrNoNeighbor,
        DropReason::ConnTableFull,
        DropReason::NoConn,
    ] {
        assert!(seen_reasons.contains(&(r as usize)), "{r:?} never seen");
    }
    assert!(seen_reasons.len() >= 12, "only {seen_reasons:?}");
}

// ---- 12. checksums -----------------------------------------------------------------------------

fn v6_vips() -> String {
    let vip = |name, address, port, protocol, mode| {
        Vip::new(name, address, port, protocol, mode).table_size(1009)
    };
    [
        vip("web6", "2001:2:0:100::10", 80, "tcp", "nat").backends(&["2001:2:0:1::11"], 8080),
        vip("dns6", "2001:2:0:100::10", 53, "udp", "nat").backends(&["2001:2:0:1::11"], 5353),
        vip("api6", "2001:2:0:100::20", 443, "tcp", "fullnat")
            .local_addresses(&["2001:2::200"])
            .backends(&["2001:2:0:1::12"], 8443),
        vip("dnsf6", "2001:2:0:100::20", 53, "udp", "fullnat")
            .local_addresses(&["2001:2::200"])
            .backends(&["2001:2:0:1::12"], 5353),
    ]
    .map(|v| v.to_string())
    .concat()
}

/// Sends `input`, expects Forward and exactly `want`, with valid checksums.
#[track_caller]
fn forwards_exactly(lb: &mut Lb, mut input: Vec<u8>, want: &[u8], what: &str) {
    assert_eq!(lb.send(&mut input), Verdict::Forward, "{what}");
    if let Err(e) = verify_checksums(&input) {
        panic!("{what}: {e}");
    }
    assert_eq!(seen(&input), seen(want), "{what}");
    assert_eq!(input, want, "{what}");
}

#[test]
fn ipv6_nat_and_fullnat_outputs_have_valid_checksums() {
    let mut lb = Lb::new("", &v6_vips());
    let c = ip("2001:2:0:50::7");
    let nat_vip6 = ip("2001:2:0:100::10");
    let fnat_vip6 = ip("2001:2:0:100::20");
    let local = ip("2001:2::200");
    let nb = lb.backend_at(ip("2001:2:0:1::11"), 8080);
    let nu = lb.backend_at(ip("2001:2:0:1::11"), 5353);
    let fb = lb.backend_at(ip("2001:2:0:1::12"), 8443);
    let fu = lb.backend_at(ip("2001:2:0:1::12"), 5353);
    let odd = b"rampart odd".as_slice();

    // NAT TCP, both ways, with an odd-length payload.
    let s = seg(50_000, 80, ACK | PSH, odd);
    let input = gen::tcp(&FROM_CLIENTS, c, nat_vip6, 60, 0, &s);
    let want = gen::tcp(
        &to_backend(&nb),
        c,
        nb.addr,
        60,
        0,
        &TcpSeg {
            dport: 8080,
            ..s.clone()
        },
    );
    forwards_exactly(&mut lb, input, &want, "NAT TCP in");
    let r = seg(8080, 50_000, ACK | PSH, odd);
    let input = gen::tcp(&from_backend(&nb), nb.addr, c, 64, 0, &r);
    let want = gen::tcp(
        &TO_CLIENTS,
        nat_vip6,
        c,
        64,
        0,
        &TcpSeg {
            sport: 80,
            ..r.clone()
        },
    );
    forwards_exactly(&mut lb, input, &want, "NAT TCP out");

    // NAT UDP, both ways.
    let input = gen::udp(&FROM_CLIENTS, c, nat_vip6, 60, 0, 5300, 53, odd);
    let want = gen::udp(&to_backend(&nu), c, nu.addr, 60, 0, 5300, 5353, odd);
    forwards_exactly(&mut lb, input, &want, "NAT UDP in");
    let input = gen::udp(&from_backend(&nu), nu.addr, c, 64, 0, 5353, 5300, odd);
    let want = gen::udp(&TO_CLIENTS, nat_vip6, c, 64, 0, 53, 5300, odd);
    forwards_exactly(&mut lb, input, &want, "NAT UDP out");

    // FullNAT TCP: the local port is whatever the worker handed out.
    let s = seg(50_001, 443, SYN, b"");
    let mut input = gen::tcp(&FROM_CLIENTS, c, fnat_vip6, 60, 0, &s);
    assert_eq!(lb.send(&mut input), Verdict::Forward);
    let lport = seen(&input).sport;
    let want = gen::tcp(
        &to_backend(&fb),
        local,
        fb.addr,
        60,
        0,
        &TcpSeg {
            sport: lport,
            dport: 8443,
            ..s.clone()
        },
    );
    assert_eq!(input, want, "FullNAT TCP in");
    verify_checksums(&input).unwrap_or_else(|e| panic!("FullNAT TCP in: {e}"));
    let r = seg(8443, lport, ACK | PSH, odd);
    let input = gen::tcp(&from_backend(&fb), fb.addr, local, 64, 0, &r);
    let want = gen::tcp(
        &TO_CLIENTS,
        fnat_vip6,
        c,
        64,
        0,
        &TcpSeg {
            sport: 443,
            dport: 50_001,
            ..r.clone()
        },
    );
    forwards_exactly(&mut lb, input, &want, "FullNAT TCP out");

    // FullNAT UDP.
    let mut input = gen::udp(&FROM_CLIENTS, c, fnat_vip6, 60, 0, 5301, 53, odd);
    assert_eq!(lb.send(&mut input), Verdict::Forward);
    let lport = seen(&input).sport;
    let want = gen::udp(&to_backend(&fu), local, fu.addr, 60, 0, lport, 5353, odd);
    assert_eq!(input, want, "FullNAT UDP in");
    let input = gen::udp(&from_backend(&fu), fu.addr, local, 64, 0, 5353, lport, odd);
    let want = gen::udp(&TO_CLIENTS, fnat_vip6, c, 64, 0, 53, 5301, odd);
    forwards_exactly(&mut lb, input, &want, "FullNAT UDP out");
}

fn v4_udp_fullnat() -> String {
    Vip::new("dnsf", "198.18.100.20", 53, "udp", "fullnat")
        .table_size(1009)
        .local_addresses(&["198.18.0.200"])
        .backends(&["198.18.1.13"], 5353)
        .to_string()
}

fn without_udp_checksum(mut frame: Vec<u8>) -> Vec<u8> {
    frame[ipv4_udp_checksum_at()].fill(0);
    frame
}

#[test]
fn ipv4_udp_without_checksum_stays_without_checksum() {
    let mut lb = Lb::new("", &[dns_nat(), v4_udp_fullnat()].concat());
    let c = client(9);
    let vip = ip("198.18.100.10");
    let key = udp_key(c, 5300, vip, 53);
    let b = lb.maglev(&key);
    let q = b"no checksum here";

    let input = without_udp_checksum(client_udp(&key, q));
    let want = without_udp_checksum(gen::udp(&to_backend(&b), c, b.addr, 64, 3, 5300, b.port, q));
    forwards_exactly(&mut lb, input, &want, "NAT in");
    let input = without_udp_checksum(backend_udp(&b, c, 5300, q));
    let want = without_udp_checksum(gen::udp(&TO_CLIENTS, vip, c, 64, 4, 53, 5300, q));
    forwards_exactly(&mut lb, input, &want, "NAT out");

    let fvip = ip("198.18.100.20");
    let local = ip("198.18.0.200");
    let fb = lb.backend_at(ip("198.18.1.13"), 5353);
    let mut input = without_udp_checksum(client_udp(&udp_key(c, 5301, fvip, 53), q));
    assert_eq!(lb.send(&mut input), Verdict::Forward);
    assert_eq!(l4_checksum_field(&input), 0, "FullNAT in");
    let lport = seen(&input).sport;
    let want = without_udp_checksum(gen::udp(
        &to_backend(&fb),
        local,
        fb.addr,
        64,
        3,
        lport,
        5353,
        q,
    ));
    assert_eq!(input, want, "FullNAT in");
    let input = without_udp_checksum(backend_udp(&fb, local, lport, q));
    let want = without_udp_checksum(gen::udp(&TO_CLIENTS, fvip, c, 64, 4, 53, 5301, q));
    forwards_exactly(&mut lb, input, &want, "FullNAT out");
}

/// A two-byte payload whose UDP checksum, sent as `frame(payload)`, computes
/// to zero and is therefore carried as 0xffff (RFC 768).
fn payload_with_zero_sum(frame: impl Fn(&[u8]) -> Vec<u8>) -> [u8; 2] {
    for w in 0..=u16::MAX {
        let p = w.to_be_bytes();
        if l4_checksum_field(&frame(&p)) == 0xffff {
            return p;
        }
    }
    panic!("no payload word gives a zero checksum")
}

#[test]
fn udp_checksum_that_becomes_zero_is_sent_as_all_ones() {
    let mut lb = Lb::new("", &[dns_nat(), v6_vips()].concat());
    for (c, vip, baddr) in [
        (client(3), ip("198.18.100.10"), ip("198.18.1.11")),
        (
            ip("2001:2:0:50::3"),
            ip("2001:2:0:100::10"),
            ip("2001:2:0:1::11"),
        ),
    ] {
        let b = lb.backend_at(baddr, 5353);
        // Towards the backend: the rewritten datagram's sum is zero.
        let p =
            payload_with_zero_sum(|p| gen::udp(&to_backend(&b), c, b.addr, 64, 3, 5300, 5353, p));
        let want = gen::udp(&to_backend(&b), c, b.addr, 64, 3, 5300, 5353, &p);
        let input = gen::udp(&FROM_CLIENTS, c, vip, 64, 3, 5300, 53, &p);
        assert_ne!(l4_checksum_field(&input), 0xffff);
        forwards_exactly(&mut lb, input, &want, "to the backend");
        // Back to the client.
        let p = payload_with_zero_sum(|p| gen::udp(&TO_CLIENTS, vip, c, 64, 4, 53, 5300, p));
        let want = gen::udp(&TO_CLIENTS, vip, c, 64, 4, 53, 5300, &p);
        let input = gen::udp(&from_backend(&b), b.addr, c, 64, 4, 5353, 5300, &p);
        forwards_exactly(&mut lb, input, &want, "to the client");
    }
}

// ---- 13. robustness ------------------------------------------------------------------------------

/// The reference snapshot and every golden scenario's input frames, built once.
fn corpus() -> &'static (Snapshot, Vec<Vec<Vec<u8>>>) {
    static CORPUS: OnceLock<(Snapshot, Vec<Vec<Vec<u8>>>)> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let snap = Snapshot::build(&fixtures::config());
        let frames = fixtures::scenarios()
            .into_iter()
            .map(|sc| sc.rows.into_iter().map(|r| r.input).collect())
            .collect();
        (snap, frames)
    })
}

fn check_one(snap: &Snapshot, ws: &mut WorkerState, mut frame: Vec<u8>) {
    let len = frame.len();
    let v = process(&mut frame, ws, snap);
    if matches!(v, Verdict::Forward | Verdict::Reply) {
        // The SYN proxy's answers (a SYN-ACK, an ACK, a RST written over
        // the frame) may be shorter than what came in; only encapsulation
        // grows a frame, by at most its outer headers.
        assert!(
            frame.len() <= len + rampart::xmit::FRONT_MAX,
            "a frame grew from {len} to {}",
            frame.len()
        );
        assert!(frame.len() >= 14, "{}-byte frame transmitted", frame.len());
    }
    ws.outbox.clear();
    let s = &ws.stats;
    assert_eq!(s.rx_packets, s.tx_packets + s.consumed + s.dropped_total());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let (snap, _) = corpus();
        let mut ws = WorkerState::new(snap, 0, 1, SEED);
        check_one(snap, &mut ws, bytes.clone());
        // Again with our MAC in front, so the bytes get past the MAC check.
        let mut framed = bytes;
        if framed.len() >= 6 {
            framed[..6].copy_from_slice(&NODE_MAC.0);
        }
        check_one(snap, &mut ws, framed);
    }

    #[test]
    fn mutated_fixture_frames_never_panic(
        scenario in any::<prop::sample::Index>(),
        row in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..5),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let (snap, frames) = corpus();
        let rows = &frames[scenario.index(frames.len())];
        let i = row.index(rows.len());
        let mut ws = WorkerState::new(snap, 0, 1, SEED);
        // The rows before it, unchanged, so replies find their connections.
        for f in &rows[..i] {
            check_one(snap, &mut ws, f.clone());
        }
        let mut m = rows[i].clone();
        for (at, x) in flips {
            let at = at.index(m.len());
            m[at] ^= x;
        }
        if let Some(c) = cut {
            m.truncate(c.index(m.len() + 1));
        }
        check_one(snap, &mut ws, m);
    }
}

// ---- 14. per-VIP and per-backend counters ------------------------------------------------------

/// Expected per-VIP and per-backend counters, kept by the test.
struct Expect {
    vips: Vec<FlowCounters>,
    backends: Vec<FlowCounters>,
}

impl Expect {
    /// Sends `frame`, which must be forwarded, and counts it for `vi` and `b`.
    fn send(&mut self, lb: &mut Lb, vi: usize, b: &Backend, frame: Vec<u8>, dir: Dir3) {
        let len = frame.len() as u64;
        lb.forward(frame);
        for c in [&mut self.vips[vi], &mut self.backends[b.id.index()]] {
            match dir {
                Dir3::NewIn | Dir3::In => {
                    c.packets_in += 1;
                    c.bytes_in += len;
                }
                Dir3::Out => {
                    c.packets_out += 1;
                    c.bytes_out += len;
                }
            }
            c.connections += u64::from(dir == Dir3::NewIn);
        }
    }
}

/// Which way a counted frame goes, and whether it opens a connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir3 {
    NewIn,
    In,
    Out,
}

#[test]
fn vip_and_backend_counters_follow_a_conversation() {
    let mut lb = Lb::new("", &[web_nat(), dns_nat()].concat());
    let vip = ip("198.18.100.10");
    let web = lb.vip_index(&tcp_key(vip, 1, vip, 80));
    let dns = lb.vip_index(&udp_key(vip, 1, vip, 53));
    let mut want = Expect {
        vips: vec![FlowCounters::default(); lb.snap.vips.len()],
        backends: vec![FlowCounters::default(); lb.snap.backends.len()],
    };
    let k1 = tcp_key(client(1), 50_000, vip, 80);
    let b1 = lb.maglev(&k1);
    let k2 = tcp_key(client(2), 50_000, vip, 80);
    let b2 = lb.maglev(&k2);
    let q = udp_key(client(3), 5300, vip, 53);
    let qb = lb.maglev(&q);

    want.send(&mut lb, web, &b1, client_tcp(&k1, SYN), Dir3::NewIn);
    let syn_ack = backend_tcp(&b1, k1.src, k1.sport, SYN | ACK);
    want.send(&mut lb, web, &b1, syn_ack, Dir3::Out);
    want.send(&mut lb, web, &b2, client_tcp(&k2, SYN), Dir3::NewIn);
    want.send(&mut lb, dns, &qb, client_udp(&q, b"question"), Dir3::NewIn);
    want.send(&mut lb, web, &b1, client_tcp(&k1, ACK), Dir3::In);
    let req = seg(50_000, 80, ACK | PSH, b"GET /");
    let req = gen::tcp(&FROM_CLIENTS, k1.src, vip, 64, 9, &req);
    want.send(&mut lb, web, &b1, req, Dir3::In);
    let resp = seg(b1.port, 50_000, ACK | PSH, b"200 OK, a longer body");
    let resp = gen::tcp(&from_backend(&b1), b1.addr, k1.src, 64, 9, &resp);
    want.send(&mut lb, web, &b1, resp, Dir3::Out);
    let answer = backend_udp(&qb, q.src, 5300, b"answer!");
    want.send(&mut lb, dns, &qb, answer, Dir3::Out);
    // A drop counts for no VIP and no backend.
    assert_eq!(
        lb.dropped(client_tcp(&tcp_key(client(4), 1, vip, 81), SYN)),
        DropReason::NoService
    );

    assert_eq!(lb.ws.stats.vips, want.vips);
    assert_eq!(lb.ws.stats.backends, want.backends);
    let w = &lb.ws.stats.vips[web];
    assert_eq!((w.connections, w.packets_in, w.packets_out), (2, 4, 2));
    let d = &lb.ws.stats.vips[dns];
    assert_eq!((d.connections, d.packets_in, d.packets_out), (1, 1, 1));
}

// ---- probes ----------------------------------------------------------------

#[test]
fn expiry_works_across_the_clock_wrap() {
    let mut lb = Lb::new(SHORT_TIMEOUTS, &web_nat());
    let key = tcp_key(client(1), 43_005, ip("198.18.100.10"), 80);
    lb.ws.set_clock(u32::MAX - 2);
    lb.forward(client_tcp(&key, SYN));
    assert_eq!(lb.age_at(u32::MAX), 0);
    assert_eq!(lb.age_at(1), 0);
    assert_eq!(lb.age_at(2), 1, "SYN timeout of 5 s across the wrap");
}

#[test]
fn reply_to_an_expired_entry_not_yet_aged_is_treated_as_no_entry() {
    let mut lb = Lb::new(SHORT_TIMEOUTS, &api_fullnat());
    let key = tcp_key(client(1), 43_006, ip("198.18.100.20"), 443);
    let b = lb.maglev(&key);
    lb.ws.set_clock(1000);
    let out = lb.forward(client_tcp(&key, SYN));
    // 10 s later the SYN-only entry (5 s) is dead; no sweep has run.
    lb.ws.set_clock(1010);
    assert_eq!(
        lb.dropped(backend_tcp(&b, out.src, out.sport, SYN | ACK)),
        DropReason::NoConn
    );
}

// ---- source-prefix steering -------------------------------------------------

/// Pool clients: 198.19.0.0/16 goes to .11 and .12, its upper half
/// (198.19.128.0/17, the longer prefix) to .13 alone.
fn steered_vip(scheduler: &str) -> String {
    Vip::new("web", "198.18.100.10", 80, "tcp", "nat")
        .scheduler(scheduler)
        .table_size(1009)
        .backends(&["198.18.1.11", "198.18.1.12", "198.18.1.13"], 8080)
        .source(
            &["198.19.0.0/16"],
            &["198.18.1.11:8080", "198.18.1.12:8080"],
        )
        .source(&["198.19.128.0/17"], &["198.18.1.13:8080"])
        .to_string()
}

/// Client `n` of 198.19.0.0/17 (`upper`: of 198.19.128.0/17).
fn pool_client(n: u32, upper: bool) -> Addr {
    let hi = (n / 250) as u8 % 128 + if upper { 128 } else { 0 };
    Addr::from_v4([198, 19, hi, 1 + (n % 250) as u8])
}

/// Where the SYNs of `clients` go, by backend address.
fn syn_spread(lb: &mut Lb, clients: impl Iterator<Item = Addr>, port: u16) -> BTreeMap<Addr, u32> {
    let vip = ip("198.18.100.10");
    let mut per = BTreeMap::new();
    for c in clients {
        let out = lb.forward(client_tcp(&tcp_key(c, port, vip, 80), SYN));
        *per.entry(out.dst).or_insert(0) += 1;
    }
    per
}

#[test]
fn clients_in_two_prefixes_reach_only_their_pools_with_every_scheduler() {
    for sched in ["maglev", "rr", "wrr", "lc", "sh"] {
        let mut lb = Lb::new("capacity = 4096", &steered_vip(sched));
        let low = syn_spread(&mut lb, (0..300).map(|n| pool_client(n, false)), 41_000);
        let keys: Vec<_> = low.keys().copied().collect();
        assert_eq!(
            keys,
            [ip("198.18.1.11"), ip("198.18.1.12")],
            "{sched}: {low:?}"
        );
        let high = syn_spread(&mut lb, (0..300).map(|n| pool_client(n, true)), 41_001);
        assert_eq!(
            high.keys().copied().collect::<Vec<_>>(),
            [ip("198.18.1.13")],
            "{sched}"
        );
        assert_eq!(lb.event(Event::SourceSteered), 600, "{sched}");
        // Everyone else is spread over all three; lc counts a backend's
        // connections from any pool, so it levels the load: the 300
        // pool flows on .13 keep it out until the others catch up.
        let rest = syn_spread(&mut lb, (0..300).map(client), 41_002);
        if sched == "lc" {
            let want = [(ip("198.18.1.11"), 150), (ip("198.18.1.12"), 150)];
            assert_eq!(rest, BTreeMap::from(want), "{sched}");
        } else {
            assert_eq!(rest.len(), 3, "{sched}: {rest:?}");
        }
        assert_eq!(lb.event(Event::SourceSteered), 600, "{sched}");
        assert_eq!(lb.event(Event::SourceFallback), 0, "{sched}");
        assert_eq!(lb.event(Event::ConnNew), 900, "{sched}");
    }
}

#[test]
fn ipv6_clients_reach_only_their_pool() {
    let vip6 = Vip::new("web6", "2001:2:0:100::10", 80, "tcp", "nat")
        .table_size(1009)
        .backends(&["2001:2:0:1::11", "2001:2:0:1::12"], 8080)
        .source(&["2001:2:0:8000::/49"], &["[2001:2:0:1::12]:8080"])
        .to_string();
    let mut lb = Lb::new("", &vip6);
    let vip = ip("2001:2:0:100::10");
    let mut rest = BTreeMap::new();
    for n in 0..200u16 {
        let steered = Addr::from_v6(
            std::net::Ipv6Addr::new(0x2001, 2, 0, 0x8000 + n * 97, 0, 0, 0, n + 1).octets(),
        );
        let out = lb.forward(client_tcp(&tcp_key(steered, 42_000, vip, 80), SYN));
        assert_eq!(out.dst, ip("2001:2:0:1::12"), "{steered}");
        let other =
            Addr::from_v6(std::net::Ipv6Addr::new(0x2001, 2, 0, 0x50, 0, 0, 0, n + 1).octets());
        let out = lb.forward(client_tcp(&tcp_key(other, 42_000, vip, 80), SYN));
        *rest.entry(out.dst).or_insert(0) += 1;
    }
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert_eq!(lb.event(Event::SourceSteered), 200);
}

#[test]
fn a_pool_with_every_backend_down_or_drained_falls_back_to_the_whole_vip() {
    let text = format!(
        "{}\n[conntrack]\ncapacity = 4096\n{}",
        node(),
        steered_vip("maglev")
    );
    let cfg = config::parse(&text, "t.toml").unwrap();
    let mut lb = Lb::new("capacity = 4096", &steered_vip("maglev"));
    let down = ip("198.18.1.13");
    let state = |k: &rampart::maglev::BackendKey| {
        if k.addr == down {
            rampart::snapshot::BackendState::Down
        } else {
            rampart::snapshot::BackendState::Up
        }
    };
    lb.snap = Snapshot::derive(&cfg, Some(&lb.snap), state, 1);
    lb.ws.adopt(&lb.snap);
    let high = syn_spread(&mut lb, (0..200).map(|n| pool_client(n, true)), 43_000);
    assert_eq!(
        high.keys().copied().collect::<Vec<_>>(),
        [ip("198.18.1.11"), ip("198.18.1.12")]
    );
    assert_eq!(lb.event(Event::SourceFallback), 200);
    assert_eq!(lb.event(Event::SourceSteered), 0);
    // The other pool is unaffected.
    let low = syn_spread(&mut lb, (0..100).map(|n| pool_client(n, false)), 43_001);
    assert!(!low.contains_key(&down));
    assert_eq!(lb.event(Event::SourceSteered), 100);

    // Drained by weight 0: the same, and the stateless choice agrees.
    let drained = steered_vip("rr").replace(
        "address = \"198.18.1.13\"\nport = 8080\n",
        "address = \"198.18.1.13\"\nport = 8080\nweight = 0\n",
    );
    let mut lb = Lb::new("capacity = 4096", &drained);
    let high = syn_spread(&mut lb, (0..200).map(|n| pool_client(n, true)), 43_002);
    assert!(!high.contains_key(&down), "{high:?}");
    assert_eq!(lb.event(Event::SourceFallback), 200);
    let vi = 0;
    for n in 0..50 {
        let key = tcp_key(pool_client(n, true), 43_003, ip("198.18.100.10"), 80);
        let b = lb.snap.vips[vi].maglev_backend(&key).unwrap();
        assert_ne!(lb.snap.backends[b.index()].key.addr, down);
    }
}

/// A flow that goes without an entry (table full, RST) or is picked up
/// mid-way lands where a tracked Maglev flow of its client would: on its
/// pool's table.
#[test]
fn flows_without_entries_follow_the_pool_table() {
    let mut lb = Lb::new("capacity = 4096", &steered_vip("maglev"));
    let vip = ip("198.18.100.10");
    let mut tracked = Vec::new();
    for n in 0..100 {
        let key = tcp_key(pool_client(n, false), 44_000, vip, 80);
        tracked.push((key, lb.forward(client_tcp(&key, SYN)).dst));
    }
    // The same flows seen mid-way by a fresh worker: the same backends.
    let mut fresh = Lb::new("capacity = 4096", &steered_vip("maglev"));
    for (key, dst) in &tracked {
        assert_eq!(fresh.forward(client_tcp(key, ACK)).dst, *dst, "{key:?}");
        assert_eq!(fresh.forward(client_tcp(key, RST)).dst, *dst, "{key:?}");
    }
    assert_eq!(fresh.event(Event::MidflowPickup), 100);
    assert_eq!(
        fresh.event(Event::StatelessForward),
        0,
        "RST of a picked-up flow is tracked"
    );
    // A full table: new flows go without state, to the same backends.
    let mut full = Lb::new("capacity = 16", &steered_vip("maglev"));
    for n in 200..216 {
        full.forward(client_tcp(&tcp_key(client(n), 44_001, vip, 80), SYN));
    }
    for (key, dst) in &tracked {
        assert_eq!(full.forward(client_tcp(key, SYN)).dst, *dst, "{key:?}");
    }
    assert_eq!(full.event(Event::StatelessNew), 100);
    let pool: Vec<Addr> = tracked.iter().map(|(_, d)| *d).collect();
    assert!(pool
        .iter()
        .all(|d| *d == ip("198.18.1.11") || *d == ip("198.18.1.12")));
}

/// The SYN proxy opens its connections through the same scheduling: a
/// completed handshake's backend SYN goes to the client's pool.
#[test]
fn synproxy_connections_are_steered_too() {
    let shield = Vip::new("shield", "198.18.100.40", 80, "tcp", "nat")
        .synproxy()
        .table_size(1009)
        .backends(&["198.18.1.11", "198.18.1.12", "198.18.1.13"], 8080)
        .source(&["198.19.128.0/17"], &["198.18.1.13:8080"])
        .to_string();
    let mut lb = Lb::new("", &shield);
    let vip = ip("198.18.100.40");
    let mut others = BTreeMap::new();
    for n in 0..40 {
        for upper in [true, false] {
            let c = if upper {
                pool_client(n, true)
            } else {
                client(n)
            };
            let key = tcp_key(c, 45_000, vip, 80);
            let mut syn = client_tcp(&key, SYN);
            assert_eq!(lb.send(&mut syn), Verdict::Reply);
            let cookie = match SlicedPacket::from_ethernet(&syn).unwrap().transport {
                Some(TransportSlice::Tcp(t)) => t.sequence_number(),
                _ => panic!("no SYN-ACK"),
            };
            let mut s = seg(key.sport, 80, ACK, b"");
            s.seq = 0x1001;
            s.ack = cookie.wrapping_add(1);
            let mut ack = gen::tcp(&FROM_CLIENTS, c, vip, 64, 1, &s);
            lb.ws.outbox.clear();
            assert_eq!(lb.send(&mut ack), Verdict::Consumed, "{c}");
            let (_, backend_syn) = lb.ws.outbox.iter().next().expect("a backend SYN");
            let dst = seen(backend_syn).dst;
            if upper {
                assert_eq!(dst, ip("198.18.1.13"), "{c}");
            } else {
                *others.entry(dst).or_insert(0) += 1;
            }
        }
    }
    assert_eq!(others.len(), 3, "{others:?}");
    assert_eq!(lb.event(Event::SourceSteered), 40);
}
