//! Synthetic workloads for throughput runs against the reference config
//! `configs/rampart.toml`: `rampart gen --traffic` and `--syn-flood`, and
//! the captures `rampart bench` replays (established flows, new
//! connections, SYN cookies, FullNAT and DR client sides). Frames are built
//! with [`crate::gen`]; which backend a Maglev VIP gives a flow comes from
//! the stateless simulator ([`pick_backend`]).

use std::path::Path;

use crate::config::{self, Config};
use crate::conntrack::addr_hash;
use crate::flow::{tcp_flags::*, Addr, FlowKey, Mac};
use crate::gen::{self, Eth, TcpSeg};
use crate::io::PcapWriter;
use crate::sched::SchedKind;
use crate::snapshot::{Snapshot, MAGLEV_SEED};

/// The reference config the workloads (and the golden fixtures) are
/// written against.
pub const CONFIG_TEXT: &str = include_str!("../configs/rampart.toml");
pub const CONFIG_PATH: &str = "configs/rampart.toml";

/// Capture time of the first frame: 2023-11-14T22:13:20Z.
pub const T0_NS: u64 = 1_700_000_000_000_000_000;

/// The reference config, parsed.
pub fn reference_config() -> Config {
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
        Some(v) => v.index(),
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
    let b = &snap.backends[vip.backends[slot as usize].index()];
    (b.key.addr, b.key.port, b.mac)
}

pub fn eth(src: Mac, dst: Mac) -> Eth {
    Eth {
        src,
        dst,
        vlan: None,
    }
}

pub fn seg(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> TcpSeg {
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

/// The fixtures' segment with its own window and options.
#[allow(clippy::too_many_arguments)]
pub fn segment(
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    options: Vec<u8>,
    payload: &[u8],
) -> TcpSeg {
    TcpSeg {
        window,
        options,
        ..seg(sport, dport, seq, ack, flags, payload)
    }
}

pub fn tcp_key(src: Addr, sport: u16, dst: Addr, dport: u16) -> FlowKey {
    FlowKey {
        src,
        dst,
        sport,
        dport,
        proto: crate::flow::proto::TCP,
    }
}

/// Frame `i`'s capture time: one millisecond apart.
pub fn timestamp(i: usize) -> u64 {
    T0_NS + i as u64 * 1_000_000
}

/// A synthetic capture for throughput runs: `flows` TCP connections from
/// distinct clients (198.18.128.0/17, ports 1024-65535) to the reference
/// config's NAT VIP `web`, each a handshake followed by data segments from
/// both sides, `packets_per_flow` frames per flow in all (at least 3).
/// Flows are interleaved round by round, so every connection stays live
/// until the end: a replay holds `flows` entries at once.
pub fn write_traffic(path: &Path, flows: u32, packets_per_flow: u32) -> Result<u64, String> {
    use net::*;
    let snap = Snapshot::build(&reference_config());
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

/// A capture of client-side traffic only, for throughput runs of modes
/// whose replies do not come back through the load balancer's input (DR),
/// or where only the forward path is measured (FullNAT): `flows`
/// connections from distinct clients to `vip`, each a SYN and then ACKs
/// with 64 bytes of data, `packets_per_flow` frames per flow in all,
/// interleaved round by round so every connection stays live.
pub fn write_client_flows(
    path: &Path,
    flows: u32,
    packets_per_flow: u32,
    vip: (Addr, u16),
) -> Result<u64, String> {
    use net::*;
    let mut w = PcapWriter::create(path).map_err(|e| e.to_string())?;
    let payload = [0x5au8; 64];
    let mut written = 0u64;
    for round in 0..packets_per_flow.max(1) {
        for i in 0..flows {
            let host = 0x8000 + i / 64_512;
            let caddr = Addr::from_v4([198, 18, (host >> 8) as u8, host as u8]);
            let cport = 1024 + (i % 64_512) as u16;
            let (flags, data): (u8, &[u8]) = if round == 0 {
                (SYN, b"")
            } else {
                (ACK | PSH, &payload)
            };
            let frame = gen::tcp(
                &eth(GATEWAY_MAC, NODE_MAC),
                caddr,
                vip.0,
                64,
                0,
                &seg(cport, vip.1, 1 + round, 1, flags, data),
            );
            w.write(&frame, T0_NS + written * 1_000)
                .map_err(|e| e.to_string())?;
            written += 1;
        }
    }
    w.finish().map_err(|e| e.to_string())?;
    Ok(written)
}

/// A capture of short connections for throughput runs over a capture that
/// loops (net_pcap `infinite_rx`): per client (198.18.128.0/17, as in
/// [`write_traffic`]) a SYN to the NAT VIP `web` and the client's RST.
/// The RST closes the connection, so the next pass's SYN starts a new one
/// (port reuse after close): every SYN is a new connection, Maglev pick
/// and table write included, on every pass.
pub fn write_new_connections(path: &Path, clients: u32) -> Result<u64, String> {
    use net::*;
    let mut w = PcapWriter::create(path).map_err(|e| e.to_string())?;
    let mut written = 0u64;
    for i in 0..clients {
        let host = 0x8000 + i / 64_512;
        let caddr = Addr::from_v4([198, 18, (host >> 8) as u8, host as u8]);
        let cport = 1024 + (i % 64_512) as u16;
        for (seq, flags) in [(1, SYN), (2, RST)] {
            let frame = gen::tcp(
                &eth(GATEWAY_MAC, NODE_MAC),
                caddr,
                WEB4,
                64,
                0,
                &seg(cport, 80, seq, 0, flags, b""),
            );
            w.write(&frame, T0_NS + written * 1_000)
                .map_err(|e| e.to_string())?;
            written += 1;
        }
    }
    w.finish().map_err(|e| e.to_string())?;
    Ok(written)
}

/// The VIP a SYN flood from [`write_syn_flood`] targets: `shield`, port 443.
pub const FLOOD_VIP: (Addr, u16) = (Addr::from_v4([198, 18, 100, 40]), 443);

/// SYN number `i` of a flood: a spoofed source in 198.19.0.0/16 (inside
/// the RFC 2544 benchmarking range, apart from every address the reference
/// config uses), a pseudo-random port and ISN, and the options Linux puts
/// in a SYN, so every SYN-ACK takes the full cookie path.
pub fn flood_syn(i: u32) -> Vec<u8> {
    use net::{GATEWAY_MAC, NODE_MAC};
    // splitmix32-style mixing: distinct, well spread values per i.
    let mut x = i.wrapping_mul(0x9e37_79b9) ^ 0x5bd1_e995;
    x ^= x >> 15;
    x = x.wrapping_mul(0x2c1b_3c6d);
    x ^= x >> 12;
    let src = Addr::from_v4([198, 19, (i >> 8) as u8, i as u8]);
    let sport = 1024 + (x % 64_512) as u16;
    let isn = x.rotate_left(13) ^ i;
    gen::tcp(
        &eth(GATEWAY_MAC, NODE_MAC),
        src,
        FLOOD_VIP.0,
        64,
        (i >> 16) as u16,
        &segment(
            sport,
            FLOOD_VIP.1,
            isn,
            0,
            SYN,
            64_240,
            gen::tcp_opts(Some(1460), Some(7), true, Some((x, 0))),
            b"",
        ),
    )
}

/// Writes `count` flood SYNs ([`flood_syn`]), 100 ns apart.
pub fn write_syn_flood(path: &Path, count: u32) -> Result<u64, String> {
    let mut w = PcapWriter::create(path).map_err(|e| e.to_string())?;
    for i in 0..count {
        w.write(&flood_syn(i), timestamp(0) + u64::from(i) * 100)
            .map_err(|e| e.to_string())?;
    }
    w.finish().map_err(|e| e.to_string())?;
    Ok(u64::from(count))
}
