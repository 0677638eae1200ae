//! The worker's half of TCP health checks: sending the probe SYNs the
//! control thread ordered and recognizing the backends' answers.
//!
//! A probe is a bare SYN (RFC 9293 §3.5) from one of the node's own
//! addresses (`node.addresses`) and a source port in
//! [`PROBE_PORT_MIN`]`..=`[`PROBE_PORT_MAX`] to a backend's address and
//! port, written into the worker's [`Outbox`] so it leaves through the same
//! NIC port and next hop as forwarded traffic. The backend answers to the
//! node address; software steering hands that answer to the worker that
//! owns `(node address, source port)`, which is the worker the control
//! thread gave the order to. A SYN-ACK means the port is open; the worker
//! rewrites it in place into the RST a closed port would send
//! (`<SEQ=SEG.ACK><CTL=RST>`, RFC 9293 §3.10.7.1) so the backend drops the
//! half-open connection at once instead of retransmitting its SYN-ACK. A
//! RST acknowledging the SYN means the port is closed. Either way the
//! result goes back to the control thread, which owns timeouts and the
//! rise/fall state ([`crate::control::health`]).
//!
//! Invariants: all memory is allocated in [`Prober::new`]; queueing,
//! sending and matching never allocate and never panic on packet bytes.
//! Outstanding probes are indexed by source port, one slot per port: a
//! newer probe on a port replaces the older one, whose answer then matches
//! nothing (the control thread has already given up on it, or never reuses
//! a port while its probe is outstanding).

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::VecDeque;

use crate::flow::{tcp_flags, Addr, FlowDesc, L3Kind, Mac};
use crate::outbox::Outbox;
use crate::stats::{Event, WorkerStats};
use crate::wire::segment::{self, Segment};
use crate::wire::{ethernet, tcpopt, EthernetFrame, TcpPacket};

/// First source port probes use on node addresses. The range
/// `PROBE_PORT_MIN..=PROBE_PORT_MAX` lies in the dynamic port range
/// (RFC 6335 §6) and is reserved for health checks: nothing else on the
/// node may use these ports on its node addresses, since every TCP answer
/// to them is taken for a probe's.
pub const PROBE_PORT_MIN: u16 = 61000;
/// Last source port probes use (inclusive); see [`PROBE_PORT_MIN`].
pub const PROBE_PORT_MAX: u16 = 61999;
/// How many probes can be outstanding at once, one per source port.
pub const PROBE_PORTS: usize = (PROBE_PORT_MAX - PROBE_PORT_MIN) as usize + 1;

/// Orders a worker holds before they fit in an outbox.
pub const QUEUE_CAPACITY: usize = 1024;
/// Results a worker holds between two [`Prober::take_results`] calls; a
/// result that finds no room is lost and the control thread sees a timeout.
pub const RESULT_CAPACITY: usize = 1024;

/// TTL (IPv4) or hop limit (IPv6) of probe SYNs and the RSTs that end them.
const TTL: u8 = 64;
/// Receive window the probe SYN advertises.
const WINDOW: u16 = 65535;
/// MSS the probe SYN advertises over IPv4 (a 1500-byte MTU); IPv6 headers
/// are 20 bytes longer. The backend never sends data on a probe, so this
/// only makes the SYN look like any other.
const MSS_V4: u16 = 1460;
const MSS_V6: u16 = 1440;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;

/// One probe to send: a SYN from `src:sport` (a node address, a port in the
/// probe range) to the backend `dst:dport` through the next hop `dst_mac`,
/// with initial sequence number `isn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeOrder {
    pub id: u32,
    pub src: Addr,
    pub sport: u16,
    pub dst: Addr,
    pub dport: u16,
    pub dst_mac: Mac,
    pub isn: u32,
}

/// What a backend answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// SYN-ACK: something listens on the port.
    Open,
    /// RST: nothing listens on the port.
    Refused,
}

/// The answer to the probe `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    pub id: u32,
    pub outcome: ProbeOutcome,
}

/// What the datapath does with a frame the prober recognized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeVerdict {
    /// The frame was taken; nothing to send.
    Consumed,
    /// The frame was rewritten in place into a RST of this length: transmit it.
    Reply(usize),
}

/// One worker's probes: orders waiting for outbox room, probes waiting for
/// an answer, and answers waiting for the control thread.
pub struct Prober {
    queue: VecDeque<ProbeOrder>,
    /// Indexed by `sport - PROBE_PORT_MIN`.
    outstanding: Box<[Option<ProbeOrder>]>,
    results: Vec<ProbeResult>,
}

impl Default for Prober {
    fn default() -> Prober {
        Prober::new()
    }
}

impl Prober {
    pub fn new() -> Prober {
        Prober {
            queue: VecDeque::with_capacity(QUEUE_CAPACITY),
            outstanding: vec![None; PROBE_PORTS].into_boxed_slice(),
            results: Vec::with_capacity(RESULT_CAPACITY),
        }
    }

    /// Queues an order; returns false (order dropped) when the queue is
    /// full, or when the order could never be matched or written: a source
    /// port outside the probe range, or addresses of two families.
    pub fn queue(&mut self, o: ProbeOrder) -> bool {
        if self.queue.len() >= QUEUE_CAPACITY
            || port_slot(o.sport).is_none()
            || o.src.is_v4() != o.dst.is_v4()
        {
            return false;
        }
        self.queue.push_back(o);
        true
    }

    /// Orders queued and not yet sent.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Writes a SYN for every queued order into the outbox, as many as fit
    /// (the rest stay queued for the next call), and marks them
    /// outstanding. The frames go wherever the outbox's current position
    /// puts them and count as originated frames. Returns how many were
    /// sent.
    pub fn emit(&mut self, outbox: &mut Outbox, src_mac: Mac, stats: &mut WorkerStats) -> usize {
        let mut sent = 0;
        while let Some(o) = self.queue.front().copied() {
            let Some(slot) = outbox.slot() else {
                break;
            };
            let written = write_syn(slot, &o, src_mac);
            self.queue.pop_front();
            // `queue` admitted only writable orders; should one still fail,
            // dropping it beats retrying it forever (the control thread
            // counts it as a timeout).
            let Some(len) = written else {
                continue;
            };
            outbox.commit(len);
            if let Some(s) = port_slot(o.sport).and_then(|i| self.outstanding.get_mut(i)) {
                *s = Some(o);
            }
            stats.event(Event::ProbeSent);
            stats.originated_packets += 1;
            stats.originated_bytes += len as u64;
            sent += 1;
        }
        sent
    }

    /// A TCP frame addressed to a node address (`d` describes it; the
    /// datapath calls this only for those). A SYN-ACK or a RST|ACK from an
    /// outstanding probe's backend to its node address and port,
    /// acknowledging `isn + 1`, answers that probe: the result is recorded,
    /// the slot freed, and the SYN-ACK rewritten in place into a RST
    /// (`Reply`) while the RST is `Consumed`. Anything else is not ours:
    /// `None`, and the datapath counts its usual drop. A RST without ACK
    /// is not acceptable in SYN-SENT (RFC 9293 §3.10.7.3) and is ignored.
    pub fn on_frame(
        &mut self,
        frame: &mut [u8],
        d: &FlowDesc,
        our_mac: Mac,
        stats: &mut WorkerStats,
    ) -> Option<ProbeVerdict> {
        if !d.is_tcp() {
            return None;
        }
        let k = &d.key;
        let i = port_slot(k.dport)?;
        let slot = self.outstanding.get_mut(i)?;
        let o = (*slot)?;
        if k.src != o.dst || k.sport != o.dport || k.dst != o.src {
            return None;
        }
        let ack = TcpPacket::new_unchecked(frame.get(usize::from(d.l4_off)..)?).ack();
        if ack != o.isn.wrapping_add(1) {
            return None;
        }
        let outcome = match d.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST) {
            f if f == tcp_flags::SYN | tcp_flags::ACK => ProbeOutcome::Open,
            f if f == tcp_flags::RST | tcp_flags::ACK => ProbeOutcome::Refused,
            _ => return None,
        };
        *slot = None;
        if self.results.len() < RESULT_CAPACITY {
            self.results.push(ProbeResult { id: o.id, outcome });
        }
        match outcome {
            ProbeOutcome::Open => {
                stats.event(Event::ProbeOpen);
                let back = EthernetFrame::new_unchecked(&*frame).src();
                let rst = Segment {
                    src: (k.dst, k.dport),
                    dst: (k.src, k.sport),
                    seq: ack,
                    ack: 0,
                    flags: tcp_flags::RST,
                    window: 0,
                    options: &[],
                    ttl: TTL,
                    src_mac: our_mac,
                    dst_mac: back,
                };
                // The frame holds at least the SYN-ACK's headers, which are
                // no shorter than the RST's, so this only fails on a
                // descriptor that is not the frame's.
                Some(match segment::write(frame, d, &rst) {
                    Some(len) => ProbeVerdict::Reply(len),
                    None => ProbeVerdict::Consumed,
                })
            }
            ProbeOutcome::Refused => {
                stats.event(Event::ProbeRefused);
                Some(ProbeVerdict::Consumed)
            }
        }
    }

    /// Moves the results gathered since the last call to `out`.
    pub fn take_results(&mut self, out: &mut Vec<ProbeResult>) {
        // `append` empties `results` but keeps its allocation.
        out.append(&mut self.results);
    }
}

/// The outstanding-probe slot for a source port, if it is a probe port.
#[inline]
fn port_slot(sport: u16) -> Option<usize> {
    if (PROBE_PORT_MIN..=PROBE_PORT_MAX).contains(&sport) {
        Some(usize::from(sport - PROBE_PORT_MIN))
    } else {
        None
    }
}

/// Writes the probe SYN for `o` as a fresh untagged Ethernet frame at the
/// start of `buf`; returns its length.
fn write_syn(buf: &mut [u8], o: &ProbeOrder, src_mac: Mac) -> Option<usize> {
    let v4 = o.src.is_v4();
    let (l3, ethertype, mss) = if v4 {
        (L3Kind::Ipv4, ETHERTYPE_IPV4, MSS_V4)
    } else {
        (L3Kind::Ipv6, ETHERTYPE_IPV6, MSS_V6)
    };
    // `segment::write` keeps the Ethernet header's EtherType and fills in
    // everything from the IP header on; only the IP header's offset and
    // family matter to it.
    let d = FlowDesc {
        l3,
        l3_off: ethernet::HEADER_LEN as u16,
        ..FlowDesc::default()
    };
    let mut opts = [0u8; tcpopt::MAX_LEN];
    let n = tcpopt::encode(&mut opts, Some(mss), None, false, None);
    let syn = Segment {
        src: (o.src, o.sport),
        dst: (o.dst, o.dport),
        seq: o.isn,
        ack: 0,
        flags: tcp_flags::SYN,
        window: WINDOW,
        options: opts.get(..n).unwrap_or(&[]),
        ttl: TTL,
        src_mac,
        dst_mac: o.dst_mac,
    };
    EthernetFrame::new_unchecked(&mut *buf).set_ethertype(ethertype);
    segment::write(buf, &d, &syn)
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
mod tests {
    //! Frames are checked with etherparse (headers and both checksums
    //! recomputed there) and answers are built with [`crate::gen`], so no
    //! code is shared with the writer under test.

    use super::*;
    use crate::gen::{self, Eth, TcpSeg};
    use crate::wire::parse;
    use etherparse::{
        LinkHeader, NetHeaders, PacketHeaders, TcpHeader, TcpOptionElement, TransportHeader,
    };

    const OUR_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
    const HOP_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x0b]);

    fn node(v6: bool) -> Addr {
        if v6 {
            Addr::from("2001:2::1".parse::<std::net::Ipv6Addr>().unwrap())
        } else {
            Addr::from_v4([198, 18, 0, 1])
        }
    }

    fn backend(v6: bool) -> Addr {
        if v6 {
            Addr::from("2001:2:0:1::11".parse::<std::net::Ipv6Addr>().unwrap())
        } else {
            Addr::from_v4([198, 18, 1, 11])
        }
    }

    fn order(v6: bool, id: u32, sport: u16) -> ProbeOrder {
        ProbeOrder {
            id,
            src: node(v6),
            sport,
            dst: backend(v6),
            dport: 8080,
            dst_mac: HOP_MAC,
            isn: 0xfeed_0000 + id,
        }
    }

    /// A parsed frame: Ethernet header, IP addresses, TCP header; panics
    /// unless both checksums are right.
    struct Seen {
        src_mac: Mac,
        dst_mac: Mac,
        ethertype: u16,
        src: Addr,
        dst: Addr,
        ttl: u8,
        tcp: TcpHeader,
        payload_len: usize,
    }

    fn inspect(frame: &[u8]) -> Seen {
        let h = PacketHeaders::from_ethernet_slice(frame).unwrap();
        let Some(LinkHeader::Ethernet2(eth)) = h.link else {
            panic!("no Ethernet header");
        };
        let Some(TransportHeader::Tcp(tcp)) = h.transport.clone() else {
            panic!("not TCP");
        };
        let payload = h.payload.slice();
        let (src, dst, ttl) = match h.net.as_ref().unwrap() {
            NetHeaders::Ipv4(ip, _) => {
                assert_eq!(
                    ip.header_checksum,
                    ip.calc_header_checksum(),
                    "IPv4 checksum"
                );
                assert!(ip.dont_fragment);
                assert_eq!(
                    tcp.checksum,
                    tcp.calc_checksum_ipv4(ip, payload).unwrap(),
                    "TCP checksum"
                );
                (
                    Addr::from_v4(ip.source),
                    Addr::from_v4(ip.destination),
                    ip.time_to_live,
                )
            }
            NetHeaders::Ipv6(ip, _) => {
                assert_eq!(
                    tcp.checksum,
                    tcp.calc_checksum_ipv6(ip, payload).unwrap(),
                    "TCP checksum"
                );
                (
                    Addr::from_v6(ip.source),
                    Addr::from_v6(ip.destination),
                    ip.hop_limit,
                )
            }
            NetHeaders::Arp(_) => panic!("ARP"),
        };
        Seen {
            src_mac: Mac(eth.source),
            dst_mac: Mac(eth.destination),
            ethertype: eth.ether_type.0,
            src,
            dst,
            ttl,
            tcp,
            payload_len: payload.len(),
        }
    }

    /// The backend's answer to `o`: flags, and the ack it carries.
    fn answer(o: &ProbeOrder, flags: u8, ack: u32) -> Vec<u8> {
        let eth = Eth {
            src: HOP_MAC,
            dst: OUR_MAC,
            vlan: None,
        };
        let syn = flags & tcp_flags::SYN != 0;
        let seg = TcpSeg {
            sport: o.dport,
            dport: o.sport,
            seq: if syn { 0x7777_0000 } else { 0 },
            ack,
            flags,
            window: if syn { 64240 } else { 0 },
            options: if syn {
                gen::tcp_opts(Some(1460), Some(7), true, None)
            } else {
                Vec::new()
            },
            payload: Vec::new(),
        };
        gen::tcp(&eth, o.dst, o.src, 61, 0x1234, &seg)
    }

    fn stats() -> WorkerStats {
        WorkerStats::new(0, 0)
    }

    fn sent(p: &mut Prober, orders: &[ProbeOrder], st: &mut WorkerStats) {
        for o in orders {
            assert!(p.queue(*o));
        }
        let mut ob = Outbox::new(orders.len());
        assert_eq!(p.emit(&mut ob, OUR_MAC, st), orders.len());
    }

    fn results(p: &mut Prober) -> Vec<ProbeResult> {
        let mut out = Vec::new();
        p.take_results(&mut out);
        out
    }

    #[test]
    fn emits_a_syn() {
        for v6 in [false, true] {
            let mut p = Prober::new();
            let mut st = stats();
            let o = order(v6, 1, 61007);
            assert!(p.queue(o));
            let mut ob = Outbox::new(4);
            assert_eq!(p.emit(&mut ob, OUR_MAC, &mut st), 1);
            assert_eq!(p.queued(), 0);
            let frames: Vec<_> = ob.iter().map(|(_, f)| f.to_vec()).collect();
            assert_eq!(frames.len(), 1);
            let s = inspect(&frames[0]);
            assert_eq!(s.src_mac, OUR_MAC);
            assert_eq!(s.dst_mac, HOP_MAC);
            assert_eq!(s.ethertype, if v6 { 0x86dd } else { 0x0800 });
            assert_eq!((s.src, s.dst), (node(v6), backend(v6)));
            assert_eq!(s.ttl, 64);
            assert_eq!((s.tcp.source_port, s.tcp.destination_port), (61007, 8080));
            assert!(s.tcp.syn && !s.tcp.ack && !s.tcp.rst && !s.tcp.fin);
            assert_eq!(s.tcp.sequence_number, o.isn);
            assert_eq!(s.tcp.acknowledgment_number, 0);
            assert_eq!(s.tcp.window_size, 65535);
            let opts: Vec<_> = s.tcp.options.elements_iter().map(|e| e.unwrap()).collect();
            let mss = if v6 { 1440 } else { 1460 };
            assert_eq!(opts, vec![TcpOptionElement::MaximumSegmentSize(mss)]);
            assert_eq!(s.payload_len, 0);
            assert_eq!(st.events[Event::ProbeSent as usize], 1);
            assert_eq!(st.originated_packets, 1);
            assert_eq!(st.originated_bytes, frames[0].len() as u64);
        }
    }

    #[test]
    fn syn_ack_is_answered_with_a_rst() {
        for v6 in [false, true] {
            let mut p = Prober::new();
            let mut st = stats();
            let o = order(v6, 9, 61500);
            sent(&mut p, &[o], &mut st);
            let mut f = answer(&o, tcp_flags::SYN | tcp_flags::ACK, o.isn + 1);
            let d = parse(&f).unwrap();
            let v = p.on_frame(&mut f, &d, OUR_MAC, &mut st);
            let Some(ProbeVerdict::Reply(len)) = v else {
                panic!("{v:?}");
            };
            assert_eq!(len, 14 + if v6 { 40 } else { 20 } + 20);
            let s = inspect(&f[..len]);
            assert_eq!((s.src_mac, s.dst_mac), (OUR_MAC, HOP_MAC));
            assert_eq!((s.src, s.dst), (node(v6), backend(v6)));
            assert_eq!((s.tcp.source_port, s.tcp.destination_port), (61500, 8080));
            assert!(s.tcp.rst && !s.tcp.ack && !s.tcp.syn);
            assert_eq!(s.tcp.sequence_number, o.isn + 1);
            assert_eq!(s.tcp.options.as_slice(), &[] as &[u8]);
            assert_eq!(
                results(&mut p),
                vec![ProbeResult {
                    id: 9,
                    outcome: ProbeOutcome::Open
                }]
            );
            assert_eq!(st.events[Event::ProbeOpen as usize], 1);
            // The slot is free: a retransmitted SYN-ACK is no longer ours.
            let mut g = answer(&o, tcp_flags::SYN | tcp_flags::ACK, o.isn + 1);
            let d = parse(&g).unwrap();
            assert_eq!(p.on_frame(&mut g, &d, OUR_MAC, &mut st), None);
            assert!(results(&mut p).is_empty());
        }
    }

    #[test]
    fn rst_means_refused() {
        for v6 in [false, true] {
            let mut p = Prober::new();
            let mut st = stats();
            let o = order(v6, 3, PROBE_PORT_MAX);
            sent(&mut p, &[o], &mut st);
            let mut f = answer(&o, tcp_flags::RST | tcp_flags::ACK, o.isn + 1);
            let before = f.clone();
            let d = parse(&f).unwrap();
            assert_eq!(
                p.on_frame(&mut f, &d, OUR_MAC, &mut st),
                Some(ProbeVerdict::Consumed)
            );
            assert_eq!(f, before);
            assert_eq!(
                results(&mut p),
                vec![ProbeResult {
                    id: 3,
                    outcome: ProbeOutcome::Refused
                }]
            );
            assert_eq!(st.events[Event::ProbeRefused as usize], 1);
        }
    }

    #[test]
    fn answers_that_are_not_ours() {
        let sa = tcp_flags::SYN | tcp_flags::ACK;
        let o = order(false, 5, 61100);
        let mut wrong_port = o;
        wrong_port.dport = 8081;
        let mut wrong_src = o;
        wrong_src.dst = Addr::from_v4([198, 18, 1, 12]);
        let mut wrong_dst = o;
        wrong_dst.src = Addr::from_v4([198, 18, 0, 2]);
        let mut other_sport = o;
        other_sport.sport = 61101;
        let mut outside = o;
        outside.sport = PROBE_PORT_MIN - 1;
        let cases = [
            ("wrong ack", answer(&o, sa, o.isn)),
            (
                "wrong ack on a RST",
                answer(&o, tcp_flags::RST | tcp_flags::ACK, o.isn + 2),
            ),
            ("RST without ACK", answer(&o, tcp_flags::RST, o.isn + 1)),
            ("bare ACK", answer(&o, tcp_flags::ACK, o.isn + 1)),
            ("SYN without ACK", answer(&o, tcp_flags::SYN, o.isn + 1)),
            ("wrong backend port", answer(&wrong_port, sa, o.isn + 1)),
            ("wrong backend", answer(&wrong_src, sa, o.isn + 1)),
            ("other node address", answer(&wrong_dst, sa, o.isn + 1)),
            ("no probe on the port", answer(&other_sport, sa, o.isn + 1)),
            ("outside the probe range", answer(&outside, sa, o.isn + 1)),
        ];
        let mut p = Prober::new();
        let mut st = stats();
        sent(&mut p, &[o], &mut st);
        for (what, mut f) in cases {
            let before = f.clone();
            let d = parse(&f).unwrap();
            assert_eq!(p.on_frame(&mut f, &d, OUR_MAC, &mut st), None, "{what}");
            assert_eq!(f, before, "{what}");
        }
        assert!(results(&mut p).is_empty());
        // Nothing was outstanding on a fresh prober.
        let mut fresh = Prober::new();
        let mut f = answer(&o, sa, o.isn + 1);
        let d = parse(&f).unwrap();
        assert_eq!(fresh.on_frame(&mut f, &d, OUR_MAC, &mut st), None);
        // UDP to the probe port is not an answer either.
        let eth = Eth {
            src: HOP_MAC,
            dst: OUR_MAC,
            vlan: None,
        };
        let mut u = gen::udp(&eth, o.dst, o.src, 64, 1, o.dport, o.sport, b"x");
        let d = parse(&u).unwrap();
        assert_eq!(p.on_frame(&mut u, &d, OUR_MAC, &mut st), None);
        // The real answer still matches after all that.
        let mut f = answer(&o, sa, o.isn + 1);
        let d = parse(&f).unwrap();
        assert!(matches!(
            p.on_frame(&mut f, &d, OUR_MAC, &mut st),
            Some(ProbeVerdict::Reply(_))
        ));
        assert_eq!(st.events[Event::ProbeOpen as usize], 1);
        assert_eq!(st.events[Event::ProbeRefused as usize], 0);
    }

    #[test]
    fn a_newer_probe_on_a_port_replaces_the_older() {
        let mut p = Prober::new();
        let mut st = stats();
        let old = order(false, 1, 61010);
        let mut new = order(false, 2, 61010);
        new.dst = Addr::from_v4([198, 18, 1, 12]);
        sent(&mut p, &[old, new], &mut st);
        let mut f = answer(&old, tcp_flags::RST | tcp_flags::ACK, old.isn + 1);
        let d = parse(&f).unwrap();
        assert_eq!(p.on_frame(&mut f, &d, OUR_MAC, &mut st), None);
        let mut f = answer(&new, tcp_flags::RST | tcp_flags::ACK, new.isn + 1);
        let d = parse(&f).unwrap();
        assert_eq!(
            p.on_frame(&mut f, &d, OUR_MAC, &mut st),
            Some(ProbeVerdict::Consumed)
        );
        assert_eq!(results(&mut p)[0].id, 2);
    }

    #[test]
    fn a_full_outbox_keeps_orders_for_later() {
        let mut p = Prober::new();
        let mut st = stats();
        for i in 0..5u16 {
            assert!(p.queue(order(i % 2 == 1, u32::from(i) + 1, 61000 + i)));
        }
        let mut ob = Outbox::new(2);
        assert!(ob.push(&[0u8; 60]));
        assert_eq!(p.emit(&mut ob, OUR_MAC, &mut st), 1);
        assert_eq!(p.queued(), 4);
        assert_eq!(p.emit(&mut ob, OUR_MAC, &mut st), 0, "still full");
        ob.clear();
        assert_eq!(p.emit(&mut ob, OUR_MAC, &mut st), 2);
        ob.clear();
        assert_eq!(p.emit(&mut ob, OUR_MAC, &mut st), 2);
        assert_eq!(p.queued(), 0);
        // Sent in order: the last two are orders 4 and 5.
        let sports: Vec<_> = ob.iter().map(|(_, f)| inspect(f).tcp.source_port).collect();
        assert_eq!(sports, vec![61003, 61004]);
        assert_eq!(st.events[Event::ProbeSent as usize], 5);
    }

    #[test]
    fn queue_refuses_what_it_cannot_hold_or_send() {
        let mut p = Prober::new();
        let mut o = order(false, 1, PROBE_PORT_MIN - 1);
        assert!(!p.queue(o), "port below the range");
        o.sport = PROBE_PORT_MAX + 1;
        assert!(!p.queue(o), "port above the range");
        o.sport = PROBE_PORT_MIN;
        o.dst = backend(true);
        assert!(!p.queue(o), "mixed families");
        for i in 0..QUEUE_CAPACITY {
            assert!(p.queue(order(false, i as u32, PROBE_PORT_MIN)));
        }
        assert!(!p.queue(order(false, 0, PROBE_PORT_MIN)), "full");
        assert_eq!(p.queued(), QUEUE_CAPACITY);
    }
}
