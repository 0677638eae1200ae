//! What the pipeline does with traffic that is not a VIP's connection:
//! ARP and neighbor discovery for our addresses, ICMP (echo, and errors
//! about a connection, translated to the side that sent the packet), and
//! the node's own traffic for the kernel path.

use super::*;

pub(super) fn arp(
    frame: &mut [u8],
    d: &FlowDesc,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    const REQUEST: u16 = 1;
    const REPLY: u16 = 2;
    if d.arp_op == REQUEST
        && snap.owned(&d.key.dst).is_some()
        && wire::arp::arp_reply_in_place(frame, d, snap.mac)
    {
        ws.stats.event(Event::ArpReply);
        return Verdict::Reply;
    }
    // An answer to the kernel's own request for a neighbor.
    if d.arp_op == REPLY && snap.owned(&d.key.dst) == Some(Owned::Node) {
        return to_kernel(ws, snap, DropReason::ArpNotForUs);
    }
    Verdict::Drop(DropReason::ArpNotForUs)
}

/// The node's own traffic that the datapath does not handle (a routing
/// daemon's BGP session, ssh, answers to the kernel's neighbor requests):
/// to the kernel when `rampart run` has a kernel interface, within the
/// worker's `dpdk.kernel_rate`; else dropped as `otherwise`.
#[cold]
pub(super) fn to_kernel(ws: &mut WorkerState, snap: &Snapshot, otherwise: DropReason) -> Verdict {
    if snap.kernel.is_none() {
        return Verdict::Drop(otherwise);
    }
    if !ws.kernel.take(ws.now_ns) {
        return Verdict::Drop(DropReason::KernelRateLimited);
    }
    ws.stats.event(Event::KernelPassed);
    Verdict::Kernel
}

/// ICMPv6 types of neighbor discovery (RFC 4861 §4).
const ND_ROUTER_SOLICIT: u8 = 133;
const ND_REDIRECT: u8 = 137;
const ND_NEIGHBOR_SOLICIT: u8 = 135;
const ND_NEIGHBOR_ADVERT: u8 = 136;

#[cold]
#[inline(never)]
pub(super) fn icmp(
    frame: &mut [u8],
    d: &FlowDesc,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    if d.key.proto == proto::ICMPV6 && (ND_ROUTER_SOLICIT..=ND_REDIRECT).contains(&d.icmp_type) {
        if d.icmp_type == ND_NEIGHBOR_SOLICIT {
            let ours = wire::nd::nd_target(frame, d).is_some_and(|t| snap.owned(&t).is_some());
            if ours && wire::nd::nd_advert_in_place(frame, d, snap.mac) {
                ws.stats.event(Event::NdAdvert);
                return Verdict::Reply;
            }
        }
        // An answer to the kernel's own solicitation.
        if d.icmp_type == ND_NEIGHBOR_ADVERT && snap.owned(&d.key.dst) == Some(Owned::Node) {
            return to_kernel(ws, snap, DropReason::NdNotForUs);
        }
        return Verdict::Drop(DropReason::NdNotForUs);
    }
    let v6 = d.l3 == L3Kind::Ipv6;
    if wire::icmp::is_error(v6, d.icmp_type) {
        return icmp_error(frame, d, ws, snap);
    }
    match snap.owned(&d.key.dst) {
        Some(_) if wire::icmp::is_echo_request(v6, d.icmp_type) => echo(frame, d, ws, snap),
        Some(Owned::Node) => to_kernel(ws, snap, DropReason::IcmpUnsupported),
        Some(_) => Verdict::Drop(DropReason::IcmpUnsupported),
        None => Verdict::Drop(DropReason::NoVip),
    }
}

/// An echo request to a VIP or node address, answered in place within the
/// worker's `[icmp] echo_rate`.
#[cold]
fn echo(frame: &mut [u8], d: &FlowDesc, ws: &mut WorkerState, snap: &Snapshot) -> Verdict {
    if !ws.echo.take(ws.now_ns) {
        return Verdict::Drop(DropReason::IcmpRateLimited);
    }
    if !wire::icmp::echo_reply_in_place(frame, d, snap.mac, snap.synproxy.ttl) {
        return Verdict::Drop(DropReason::Malformed);
    }
    ws.stats.event(Event::IcmpEchoReply);
    Verdict::Reply
}

/// An ICMP error (destination unreachable, fragmentation needed / packet
/// too big, time exceeded, parameter problem) is matched by the packet it
/// quotes to the connection it concerns, and delivered, translated by the
/// connection's mode, to the side that sent that packet (IPVS's
/// `ip_vs_in_icmp` / `ip_vs_out_icmp`). It never creates or moves a
/// connection, and an error about nothing of ours is dropped: rampart
/// never answers ICMP with ICMP.
#[cold]
#[inline(never)]
fn icmp_error(frame: &mut [u8], d: &FlowDesc, ws: &mut WorkerState, snap: &Snapshot) -> Verdict {
    let Some(q) = wire::icmp::quoted(frame, d) else {
        return Verdict::Drop(DropReason::IcmpNoConn);
    };
    // The quoted packet's reverse: the direction rampart tracks it in.
    let back = q.key.reversed();
    let now = ws.now;
    let live = |e: &&crate::conntrack::ConnEntry| !expired(e.expires, now);
    let h = ws.conns.hash(&back);
    let mut proxied = None;
    let (vi, backend_id, xmit, client, local, inbound) =
        if let Some(vi) = snap.vip(&q.key.src, q.key.sport, q.key.proto) {
            // It left from a VIP towards a client (our reply, or a DR or
            // tunnel backend's direct answer): the error goes to the
            // backend, of the connection or else of the flow's Maglev
            // choice, so every box of a tier sends it to the same place.
            let found = ws.conns.lookup(h, Dir::Forward, |e| {
                e.vip == vi
                    && e.client_port == back.sport
                    && e.proto == back.proto
                    && e.client == back.src
            });
            match found
                .and_then(|i| ws.conns.get(i).map(|e| (i, e)))
                .filter(|(_, e)| live(e))
            {
                Some((i, e)) => {
                    if e.flags & cflags::SYNPROXY != 0 {
                        proxied = Some(i);
                    }
                    (
                        vi,
                        e.backend,
                        e.xmit,
                        (e.client, e.client_port),
                        conn::local_of(e),
                        true,
                    )
                }
                None => {
                    let Some(vip) = snap.vips.get(vi.index()) else {
                        return Verdict::Drop(DropReason::IcmpNoConn);
                    };
                    let xmit = Xmit::of(vip.mode);
                    let Some(b) = vip.maglev_backend(&back).filter(|_| xmit.stateless()) else {
                        return Verdict::Drop(DropReason::IcmpNoConn);
                    };
                    (vi, b, xmit, (back.src, back.sport), None, true)
                }
            }
        } else {
            // It left towards a backend: a client packet rampart forwarded.
            let found = ws
                .conns
                .lookup(h, Dir::Reverse, |e| conn::is_reply_of(e, &back, snap));
            match found
                .and_then(|i| ws.conns.get(i).map(|e| (i, e)))
                .filter(|(_, e)| live(e))
            {
                Some((i, e)) => {
                    if e.flags & cflags::PROXY != 0 {
                        proxied = Some(i);
                    }
                    (
                        e.vip,
                        e.backend,
                        e.xmit,
                        (e.client, e.client_port),
                        conn::local_of(e),
                        false,
                    )
                }
                None => return Verdict::Drop(DropReason::IcmpNoConn),
            }
        };
    let (Some(vip), Some(backend)) = (
        snap.vips.get(vi.index()),
        snap.backends.get(backend_id.index()),
    ) else {
        return Verdict::Drop(DropReason::IcmpNoConn);
    };
    let tx = crate::xmit::Tx {
        snap,
        vip,
        backend,
        client,
        local,
    };
    let done = if inbound {
        xmit.icmp_in(frame, d, &q, &tx, &mut ws.front)
    } else {
        xmit.icmp_out(frame, d, &q, &tx)
    };
    // A SYN proxy connection's backend numbers its bytes from its own ISN:
    // the quoted reply's sequence number goes back into its space, or the
    // backend would take the error for a stray one (RFC 5927 §4.1).
    // Likewise a client packet quoted back from the backend's side is in
    // the backend's view of the client's bytes, shifted by a PROXY header:
    // the client gets its own number back.
    if let (Ok(()), Some(i)) = (&done, proxied) {
        if inbound {
            if let Some(delta) = synproxy::path::seq_delta(ws, i) {
                wire::icmp::add_quoted_seq(frame, d, &q, delta);
            }
        } else if let Some(shift) = proxy_protocol::path::seq_shift(ws, i) {
            wire::icmp::add_quoted_seq(frame, d, &q, shift.wrapping_neg());
        }
    }
    match done {
        Ok(()) => {
            ws.stats.event(Event::IcmpForwarded);
            Verdict::Forward
        }
        Err(r) => Verdict::Drop(r),
    }
}
