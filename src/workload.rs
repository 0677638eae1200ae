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
use crate::io::steer::client_owner;
use crate::io::PcapWriter;
use crate::sched::SchedKind;
use crate::snapshot::{Snapshot, MAGLEV_SEED};

/// The reference config the workloads (and the golden fixtures) are
/// written against.
pub const CONFIG_TEXT: &str = include_str!("../configs/rampart.toml");
pub const CONFIG_PATH: &str = "configs/rampart.toml";

/// The reference config's text with its connection table holding
/// `capacity` entries instead of 65536.
pub fn config_text_with_capacity(capacity: u32) -> String {
    let from = "[conntrack]\ncapacity = 65536\n";
    assert!(
        CONFIG_TEXT.contains(from),
        "the reference config sets [conntrack] capacity = 65536"
    );
    CONFIG_TEXT.replace(from, &format!("[conntrack]\ncapacity = {capacity}\n"))
}

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

/// Client number `i` of the synthetic workloads: hosts from 198.18.128.0
/// up (inside 198.18.128.0/17), ports 1024-65535 on each.
pub fn client(i: u32) -> (Addr, u16) {
    let host = 0x8000 + i / 64_512;
    let port = 1024 + (i % 64_512) as u16;
    (
        Addr::from_v4([198, 18, (host >> 8) as u8, host as u8]),
        port,
    )
}

/// The frames of [`write_traffic`]'s connections to the NAT VIP `web`,
/// with whether each comes from the client, in capture order.
struct Traffic {
    backends: Vec<(Addr, u16, Mac)>,
    per: u32,
}

impl Traffic {
    fn new(flows: u32, packets_per_flow: u32) -> Traffic {
        let snap = Snapshot::build(&reference_config());
        let backends = (0..flows)
            .map(|i| {
                let (a, p) = client(i);
                pick_backend(&snap, &tcp_key(a, p, net::WEB4, 80), 0)
            })
            .collect();
        Traffic {
            backends,
            per: packets_per_flow.max(3),
        }
    }

    /// Frame `round` of connection `i`: SYN, SYN-ACK, ACK, then data
    /// segments of 64 bytes alternately from the backend and the client.
    fn frame(&self, i: u32, round: u32) -> (Vec<u8>, bool) {
        use net::*;
        let (caddr, cport) = client(i);
        let b = self.backends[i as usize];
        let (flags, from_client) = match round {
            0 => (SYN, true),
            1 => (SYN | ACK, false),
            2 => (ACK, true),
            r => (ACK | PSH, r % 2 == 1),
        };
        let payload = [0x5au8; 64];
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
        (frame, from_client)
    }
}

/// Writes `frames` to a new capture at `path`, 1 µs apart; returns how
/// many.
fn write_frames<I>(path: &Path, frames: I) -> Result<u64, String>
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    let mut w = PcapWriter::create(path).map_err(|e| e.to_string())?;
    let mut written = 0u64;
    for f in frames {
        w.write(f.as_ref(), T0_NS + written * 1_000)
            .map_err(|e| e.to_string())?;
        written += 1;
    }
    w.finish().map_err(|e| e.to_string())?;
    Ok(written)
}

/// A synthetic capture for throughput runs: `flows` TCP connections from
/// distinct clients ([`client`]) to the reference config's NAT VIP `web`,
/// each a handshake followed by data segments from both sides,
/// `packets_per_flow` frames per flow in all (at least 3). Flows are
/// interleaved round by round, so every connection stays live until the
/// end: a replay holds `flows` entries at once.
pub fn write_traffic(path: &Path, flows: u32, packets_per_flow: u32) -> Result<u64, String> {
    let t = Traffic::new(flows, packets_per_flow);
    write_frames(
        path,
        (0..t.per)
            .flat_map(|round| (0..flows).map(move |i| (i, round)))
            .map(|(i, r)| t.frame(i, r).0),
    )
}

/// [`write_traffic`]'s connections split over two rx queues of a box with
/// two workers, as a NIC's RSS would spread them: each connection's client
/// frames arrive on the queue of the worker that owns it
/// ([`client_owner`]), and its backend's frames on the same queue for
/// even-numbered connections and on the other worker's queue for odd ones,
/// so half the replies are handed over to their owner. Returns every frame
/// with its queue, in capture order.
pub fn two_queue_frames(flows: u32, packets_per_flow: u32) -> Vec<(usize, Vec<u8>)> {
    let t = Traffic::new(flows, packets_per_flow);
    let mut out = Vec::with_capacity((flows * t.per) as usize);
    for round in 0..t.per {
        for i in 0..flows {
            let (caddr, cport) = client(i);
            let owner = usize::from(client_owner(&caddr, cport, 2));
            let (frame, from_client) = t.frame(i, round);
            let q = if from_client || i % 2 == 0 {
                owner
            } else {
                1 - owner
            };
            out.push((q, frame));
        }
    }
    out
}

/// Writes [`two_queue_frames`] to `paths` (queue 0's capture, queue 1's);
/// returns the frames of each.
pub fn write_two_queues(
    paths: [&Path; 2],
    flows: u32,
    packets_per_flow: u32,
) -> Result<[u64; 2], String> {
    let frames = two_queue_frames(flows, packets_per_flow);
    let queue = |q: usize| frames.iter().filter(move |f| f.0 == q).map(|f| &f.1);
    Ok([
        write_frames(paths[0], queue(0))?,
        write_frames(paths[1], queue(1))?,
    ])
}

/// Frame `i` of [`write_live_connections`]: client `i`'s ACK with 64 bytes
/// of data to the NAT VIP `web`, with no handshake before it.
pub fn live_connection_frame(i: u32) -> Vec<u8> {
    use net::*;
    let (caddr, cport) = client(i);
    gen::tcp(
        &eth(GATEWAY_MAC, NODE_MAC),
        caddr,
        WEB4,
        64,
        0,
        &seg(cport, 80, 1000, 1, ACK | PSH, &[0x5au8; 64]),
    )
}

/// A capture of `conns` frames, one per connection ([`live_connection_frame`]),
/// to run with a table that holds `conns` live connections: the NAT picks
/// up a mid-flow TCP segment into a new entry (see [`crate::datapath`]), so
/// the first pass over the capture opens `conns` connections and every
/// later pass is established traffic spread over all of them.
pub fn write_live_connections(path: &Path, conns: u32) -> Result<u64, String> {
    write_frames(path, (0..conns).map(live_connection_frame))
}

/// Frames of one connection's whole life in [`lifecycle_frames`].
pub const LIFECYCLE_FRAMES: u32 = 8;

/// Connections whose lives interleave in [`lifecycle_frames`].
const LIFECYCLE_WINDOW: u32 = 256;

/// `conns` TCP connections from distinct clients ([`client`]) to the NAT
/// VIP `web`, each its whole life as [`LIFECYCLE_FRAMES`] frames: the
/// client's SYN, the backend's SYN-ACK (addressed to the client, as the
/// NAT's rewrite makes it), the client's ACK, an 18-byte request, a 64-byte
/// response, the client's FIN, the backend's FIN, the client's last ACK.
/// Windows of 256 connections run side by side, frame by frame. Each entry
/// ends in `time_wait`; looped, the next pass's SYN finds it closing, so
/// the datapath retires it and opens a new connection (Maglev pick and
/// insert): every pass opens `conns` connections.
pub fn lifecycle_frames(conns: u32) -> Vec<Vec<u8>> {
    use net::*;
    let snap = Snapshot::build(&reference_config());
    let request = b"GET / HTTP/1.1\r\n\r\n";
    let response = [0x5au8; 64];
    let (c, s) = (1000u32, 5000u32);
    let (req, resp) = (request.len() as u32, response.len() as u32);
    let mut out = Vec::with_capacity((conns * LIFECYCLE_FRAMES) as usize);
    let mut start = 0;
    while start < conns {
        let end = (start + LIFECYCLE_WINDOW).min(conns);
        let peers: Vec<(Addr, u16, Addr, u16, Mac)> = (start..end)
            .map(|i| {
                let (caddr, cport) = client(i);
                let (baddr, bport, bmac) = pick_backend(&snap, &tcp_key(caddr, cport, WEB4, 80), 0);
                (caddr, cport, baddr, bport, bmac)
            })
            .collect();
        for step in 0..LIFECYCLE_FRAMES {
            for &(caddr, cport, baddr, bport, bmac) in &peers {
                // (from the client, seq, ack, flags, payload)
                let (fwd, seq, ack, flags, data): (bool, u32, u32, u8, &[u8]) = match step {
                    0 => (true, c, 0, SYN, b""),
                    1 => (false, s, c + 1, SYN | ACK, b""),
                    2 => (true, c + 1, s + 1, ACK, b""),
                    3 => (true, c + 1, s + 1, ACK | PSH, request),
                    4 => (false, s + 1, c + 1 + req, ACK | PSH, &response),
                    5 => (true, c + 1 + req, s + 1 + resp, FIN | ACK, b""),
                    6 => (false, s + 1 + resp, c + 2 + req, FIN | ACK, b""),
                    _ => (true, c + 2 + req, s + 2 + resp, ACK, b""),
                };
                out.push(if fwd {
                    gen::tcp(
                        &eth(GATEWAY_MAC, NODE_MAC),
                        caddr,
                        WEB4,
                        64,
                        0,
                        &seg(cport, 80, seq, ack, flags, data),
                    )
                } else {
                    gen::tcp(
                        &eth(bmac, NODE_MAC),
                        baddr,
                        caddr,
                        64,
                        0,
                        &seg(bport, cport, seq, ack, flags, data),
                    )
                });
            }
        }
        start = end;
    }
    out
}

/// Writes [`lifecycle_frames`]; returns how many.
pub fn write_lifecycle(path: &Path, conns: u32) -> Result<u64, String> {
    write_frames(path, lifecycle_frames(conns))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::{self, ReplayOptions};
    use crate::stats::{Event, WorkerStats};

    /// Replays `frames` through `workers` workers of the reference config.
    fn replay_frames(name: &str, frames: &[Vec<u8>], workers: u16) -> WorkerStats {
        replay_with(name, frames, workers, &reference_config())
    }

    fn replay_with(name: &str, frames: &[Vec<u8>], workers: u16, cfg: &Config) -> WorkerStats {
        let dir =
            std::env::temp_dir().join(format!("rampart-workload-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in.pcap");
        write_frames(&input, frames).unwrap();
        let opts = ReplayOptions {
            input,
            output: None,
            progress: false,
            reloads: Vec::new(),
            burst: 32,
            workers,
        };
        let (_, report) = replay::replay(cfg, &opts).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        report.stats
    }

    /// Two passes over a capture, as net_pcap's `infinite_rx` loops it.
    fn twice(frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let mut all = frames.clone();
        all.extend(frames);
        all
    }

    #[test]
    fn every_lifecycle_pass_opens_new_connections() {
        let conns = 300;
        let frames = lifecycle_frames(conns);
        assert_eq!(frames.len() as u32, conns * LIFECYCLE_FRAMES);
        let s = replay_frames("lifecycle", &twice(frames), 1);
        assert_eq!(s.dropped_total(), 0, "{:?}", s.drops);
        assert_eq!(s.tx_packets, u64::from(2 * conns * LIFECYCLE_FRAMES));
        assert_eq!(s.events[Event::ConnNew as usize], u64::from(2 * conns));
        // The second pass retired the first pass's closed entries.
        assert_eq!(s.events[Event::ConnExpired as usize], u64::from(conns));
        assert_eq!(s.events[Event::MidflowPickup as usize], 0);
        assert_eq!(s.events[Event::StatelessReply as usize], 0);
    }

    #[test]
    fn live_connections_are_opened_once_then_established() {
        let conns = 70_000; // past one client host's 64512 ports
        let frames: Vec<Vec<u8>> = (0..conns).map(live_connection_frame).collect();
        let cfg = config::parse(&config_text_with_capacity(131_072), CONFIG_PATH).unwrap();
        assert_eq!(cfg.conntrack.capacity, 131_072);
        let s = replay_with("live", &twice(frames), 1, &cfg);
        assert_eq!(s.dropped_total(), 0, "{:?}", s.drops);
        assert_eq!(s.tx_packets, u64::from(2 * conns));
        assert_eq!(s.events[Event::MidflowPickup as usize], u64::from(conns));
    }

    #[test]
    fn two_queues_hand_half_the_replies_over() {
        let (flows, per) = (512, 16);
        let frames = two_queue_frames(flows, per);
        assert_eq!(frames.len() as u32, flows * per);
        // Every reply of an odd connection sits on the queue of the worker
        // that does not own it.
        let snap = Snapshot::build(&reference_config());
        let mut d = crate::flow::FlowDesc::default();
        let foreign = frames
            .iter()
            .filter(|(q, f)| {
                let owner = crate::io::steer::owner(f, &snap, 2, &mut d).unwrap();
                usize::from(owner) != *q
            })
            .count();
        // Of each connection's 16 frames, 7 are the backend's (SYN-ACK and
        // six data segments).
        assert_eq!(foreign as u32, flows / 2 * 7);
        let all: Vec<Vec<u8>> = frames.into_iter().map(|f| f.1).collect();
        let s = replay_frames("two", &all, 2);
        assert_eq!(s.dropped_total(), 0, "{:?}", s.drops);
        assert_eq!(s.tx_packets, u64::from(flows * per));
    }
}
