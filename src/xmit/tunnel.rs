//! Tunnel: the client's IP packet goes unchanged to a routed backend
//! inside a new outer IP header, as IPVS's TUN mode, Katran and GLB do. The
//! backend decapsulates, finds the VIP on one of its own interfaces and
//! answers the client directly, so replies never pass through rampart (as
//! in DR), but the backend can be any number of routed hops away.
//!
//! Outer header: source the node address of the backend's family,
//! destination the backend; the outer family follows the backend and the
//! inner the client, so all four mixes work (RFC 2003 IPv4 in IPv4,
//! protocol 4; RFC 2473 IPv6 in IPv6, next header 41; and across). TTL /
//! hop limit 64; TOS / traffic class copied from the inner packet; an IPv4
//! outer header copies DF from an inner IPv4 packet and always sets it for
//! an inner IPv6 one (which routers never fragment); an IPv6 outer header
//! carries a flow label from the inner flow's hash (RFC 6438), so routers
//! hashing on it spread flows as they would the inner 5-tuple.
//!
//! `encap = "gue"` adds UDP and a 4-byte GUE header (variant 0, no
//! options; draft-ietf-intarea-gue) between the outer IP header and the
//! packet. The UDP source port comes from the inner flow's hash, as Linux's
//! FOU derives it, so a backend's NIC spreads flows over its queues by RSS.
//! The UDP checksum is computed over IPv6 (mandatory there) and left zero
//! over IPv4 (RFC 768: none).
//!
//! A packet that would exceed the MTU once wrapped is not sent: the
//! transform returns [`DropReason::TunnelTooBig`] and the pipeline answers
//! the client with ICMP "fragmentation needed" / "packet too big" (or,
//! for an IPv4 packet without DF, drops it as [`DropReason::TunnelNoDf`]).

use super::{Ends, Forwarding, Front, Tx, FRONT_MAX};
use crate::config::Encap;
use crate::conntrack::flow_hash;
use crate::flow::{proto, Addr, FlowDesc, FlowKey};
use crate::snapshot::MAGLEV_SEED;
use crate::stats::DropReason;
use crate::wire::icmp::Quoted;
use crate::wire::{checksum, rewrite};

pub struct Tunnel;

const IPV4_LEN: usize = 20;
const IPV6_LEN: usize = 40;
const UDP_LEN: usize = 8;
const GUE_LEN: usize = 4;
/// IP protocol numbers of the payload: IPv4 in IP, IPv6 in IP.
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_IPV6: u8 = 41;
const OUTER_TTL: u8 = 64;
/// GUE source ports: the dynamic range (RFC 6335), 16384 ports.
const GUE_SPORT_BASE: u16 = 49152;

/// Bytes the encapsulation adds in front of a packet to `backend`.
pub fn overhead(encap: Encap, backend: &Addr) -> usize {
    let ip = if backend.is_v4() { IPV4_LEN } else { IPV6_LEN };
    match encap {
        Encap::Ipip => ip,
        Encap::Gue { .. } => ip + UDP_LEN + GUE_LEN,
    }
}

/// The largest inner packet that fits the MTU once wrapped.
pub fn inner_mtu(mtu: u16, encap: Encap, backend: &Addr) -> u16 {
    usize::from(mtu).saturating_sub(overhead(encap, backend)) as u16
}

impl Forwarding for Tunnel {
    /// The backend sees the client's own packet: any packet of the flow can
    /// go to the flow's Maglev backend without an entry.
    const STATELESS: bool = true;

    #[inline]
    fn reply_key(_: &Ends) -> Option<FlowKey> {
        None
    }

    fn inbound(
        frame: &mut [u8],
        d: &FlowDesc,
        tx: &Tx,
        front: &mut Front,
    ) -> Result<(), DropReason> {
        wrap(frame, d, &d.key, tx, front)
    }

    /// Each fragment is wrapped on its own, its outer header's flow label
    /// and GUE source port those of the first fragment's flow (`d.key`),
    /// so a datagram's fragments follow one path to one backend queue.
    fn inbound_fragment(
        frame: &mut [u8],
        d: &FlowDesc,
        tx: &Tx,
        front: &mut Front,
    ) -> Result<(), DropReason> {
        wrap(frame, d, &d.key, tx, front)
    }

    #[inline]
    fn outbound_fragment(_: &mut [u8], _: &FlowDesc, _: &Tx) -> Result<(), DropReason> {
        Err(DropReason::NoConn)
    }

    /// An error about a backend's direct answer goes to that backend
    /// wrapped like the connection's packets, its outer flow label and GUE
    /// source port those of the quoted connection, so it lands on the
    /// backend's queue where that connection's packets land.
    fn icmp_in(
        frame: &mut [u8],
        d: &FlowDesc,
        q: &Quoted,
        tx: &Tx,
        front: &mut Front,
    ) -> Result<(), DropReason> {
        wrap(frame, d, &q.key.reversed(), tx, front)
    }

    /// Replies go from the backend to the client directly.
    #[inline]
    fn outbound(_: &mut [u8], _: &FlowDesc, _: &Tx) -> Result<(), DropReason> {
        Err(DropReason::NoConn)
    }
}

/// Wraps the IP packet `d` describes for the connection's backend; the
/// outer header's hash-derived fields follow the client's flow `flow`.
fn wrap(
    frame: &mut [u8],
    d: &FlowDesc,
    flow: &FlowKey,
    tx: &Tx,
    front: &mut Front,
) -> Result<(), DropReason> {
    let encap = tx.vip.encap.unwrap_or(Encap::Ipip);
    let backend = tx.backend.key.addr;
    let src = tx
        .snap
        .node_addr_for(&backend)
        .ok_or(DropReason::TunnelNoSource)?;
    let l3 = usize::from(d.l3_off);
    let inner_len = usize::from(d.l4_off - d.l3_off) + usize::from(d.l4_len);
    let inner = frame.get(l3..l3 + inner_len).ok_or(DropReason::Malformed)?;
    let df = !d.is_v4() || inner.get(6).is_some_and(|b| b & 0x40 != 0);
    if inner_len + overhead(encap, &backend) > usize::from(tx.snap.mtu) {
        return Err(if df {
            DropReason::TunnelTooBig
        } else {
            DropReason::TunnelNoDf
        });
    }
    let hash = flow_hash(flow, MAGLEV_SEED);
    let tos = if d.is_v4() {
        inner.get(1).copied().unwrap_or(0)
    } else {
        let w = u16::from_be_bytes([
            inner.first().copied().unwrap_or(0),
            inner.get(1).copied().unwrap_or(0),
        ]);
        (w >> 4) as u8
    };
    let inner_proto = if d.is_v4() {
        IPPROTO_IPIP
    } else {
        IPPROTO_IPV6
    };
    let f = front;
    let n = write_outer(
        &mut f.bytes,
        &Outer {
            src,
            dst: backend,
            encap,
            inner_proto,
            tos,
            df,
            ipv4_id: if d.is_v4() {
                u16::from_be_bytes([
                    inner.get(4).copied().unwrap_or(0),
                    inner.get(5).copied().unwrap_or(0),
                ])
            } else {
                0
            },
            hash,
        },
        inner,
    )
    .ok_or(DropReason::TunnelNoSource)?;
    f.len = n as u8;
    f.ethertype = if backend.is_v4() { 0x0800 } else { 0x86dd };
    rewrite::set_macs(frame, tx.snap.mac, tx.backend.mac);
    Ok(())
}

/// What the outer headers say.
struct Outer {
    src: Addr,
    dst: Addr,
    encap: Encap,
    /// 4 or 41: what the outer header (or GUE) says it carries.
    inner_proto: u8,
    tos: u8,
    df: bool,
    ipv4_id: u16,
    hash: u64,
}

/// Writes the outer IP header (and UDP + GUE) for `inner` into `out`;
/// returns its length, or `None` when the addresses are of two families.
fn write_outer(out: &mut [u8; FRONT_MAX], o: &Outer, inner: &[u8]) -> Option<usize> {
    if o.src.is_v4() != o.dst.is_v4() {
        return None;
    }
    let v4 = o.dst.is_v4();
    let ip_len = if v4 { IPV4_LEN } else { IPV6_LEN };
    let (l4_proto, tail) = match o.encap {
        Encap::Ipip => (o.inner_proto, 0),
        Encap::Gue { .. } => (proto::UDP, UDP_LEN + GUE_LEN),
    };
    let payload = tail + inner.len();
    let (ip, rest) = out.split_at_mut(ip_len);
    if v4 {
        let total = u16::try_from(ip_len + payload).ok()?;
        ip.copy_from_slice(&[
            0x45,
            o.tos,
            (total >> 8) as u8,
            total as u8,
            (o.ipv4_id >> 8) as u8,
            o.ipv4_id as u8,
            if o.df { 0x40 } else { 0 },
            0,
            OUTER_TTL,
            l4_proto,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ]);
        ip.get_mut(12..16)?.copy_from_slice(&o.src.v4_octets());
        ip.get_mut(16..20)?.copy_from_slice(&o.dst.v4_octets());
        let c = checksum::checksum(ip);
        ip.get_mut(10..12)?.copy_from_slice(&c.to_be_bytes());
    } else {
        let plen = u16::try_from(payload).ok()?;
        let label = (o.hash as u32 ^ (o.hash >> 32) as u32) & 0x000f_ffff;
        let first = (6u32 << 28) | (u32::from(o.tos) << 20) | label;
        ip.get_mut(0..4)?.copy_from_slice(&first.to_be_bytes());
        ip.get_mut(4..6)?.copy_from_slice(&plen.to_be_bytes());
        *ip.get_mut(6)? = l4_proto;
        *ip.get_mut(7)? = OUTER_TTL;
        ip.get_mut(8..24)?.copy_from_slice(&o.src.v6_octets());
        ip.get_mut(24..40)?.copy_from_slice(&o.dst.v6_octets());
    }
    if let Encap::Gue { port } = o.encap {
        let sport = GUE_SPORT_BASE | (o.hash as u16 & 0x3fff);
        let ulen = u16::try_from(payload).ok()?;
        let udp = rest.get_mut(..UDP_LEN + GUE_LEN)?;
        udp.copy_from_slice(&[
            (sport >> 8) as u8,
            sport as u8,
            (port >> 8) as u8,
            port as u8,
            (ulen >> 8) as u8,
            ulen as u8,
            0,
            0,
            // GUE variant 0: version 0, C = 0, no options (hlen 0); the
            // protocol of the packet that follows; no flags.
            0,
            o.inner_proto,
            0,
            0,
        ]);
        if !v4 {
            let s = checksum::pseudo_v6(
                &o.src.v6_octets(),
                &o.dst.v6_octets(),
                proto::UDP,
                u32::from(ulen),
            );
            let s = checksum::sum(udp, s);
            let s = checksum::sum(inner, s);
            // A computed zero goes out as all ones (RFC 768, RFC 8200 §8.1).
            let c = match checksum::finish(s) {
                0 => 0xffff,
                c => c,
            };
            udp.get_mut(6..8)?.copy_from_slice(&c.to_be_bytes());
        }
    }
    Some(ip_len + tail)
}
