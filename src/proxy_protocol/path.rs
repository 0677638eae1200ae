//! The PROXY header's part of the datapath: what happens to a packet of a
//! connection whose entry has [`cflags::PROXY`] (see the module above for
//! the whole picture). Called from [`crate::datapath`] and, for the header
//! that rides on the SYN proxy's ACK, from [`crate::synproxy::path`]. Like
//! the rest of the datapath it never panics on packet bytes and never
//! allocates.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::{header, ppflags, PpConn};
use crate::conn;
use crate::conntrack::{ConnEntry, Dir};
use crate::flow::{tcp_flags, Addr, FlowDesc};
use crate::snapshot::Snapshot;
use crate::state::{Verdict, WorkerState};
use crate::stats::{DropReason, Event};
use crate::wire::segment::{self, Segment};
use crate::wire::tcpopt::{self, Translate};
use crate::wire::TcpPacket;

#[cfg(doc)]
use crate::conntrack::flags as cflags;

#[inline]
fn tcp_of<'a>(frame: &'a [u8], d: &FlowDesc) -> TcpPacket<&'a [u8]> {
    TcpPacket::new_unchecked(frame.get(d.l4_off as usize..).unwrap_or(&[]))
}

/// Whether the segment occupies sequence space beyond its header: data or FIN.
#[inline]
fn has_payload(frame: &[u8], d: &FlowDesc) -> bool {
    usize::from(d.l4_len) > tcp_of(frame, d).header_len() || d.tcp_flags & tcp_flags::FIN != 0
}

/// `a` at or after `b` in sequence order (RFC 9293 §3.4).
#[inline]
fn seq_ge(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

#[inline]
fn get(ws: &WorkerState, idx: u32) -> Option<PpConn> {
    ws.proxy.as_deref()?.conns.get(idx as usize).copied()
}

#[inline]
fn update(ws: &mut WorkerState, idx: u32, f: impl FnOnce(&mut PpConn)) {
    if let Some(c) = ws
        .proxy
        .as_deref_mut()
        .and_then(|p| p.conns.get_mut(idx as usize))
    {
        f(c);
    }
}

// ---- the connection's life ----------------------------------------------

/// Entry `idx` was just opened for a client of `client`'s family: its
/// header state starts afresh.
pub(crate) fn opened(ws: &mut WorkerState, idx: u32, client: &Addr) {
    let len = header::len_for(client) as u8;
    update(ws, idx, |c| {
        *c = PpConn {
            len,
            ..PpConn::default()
        }
    });
}

/// The client's ISN + 1 is `next` (the SYN proxy learns it from the
/// client's ACK; a plain connection from its SYN).
pub(crate) fn client_next(ws: &mut WorkerState, idx: u32, next: u32) {
    update(ws, idx, |c| {
        c.client_next = next;
        c.flags |= ppflags::SYN_SEEN;
    });
}

/// The backend's ISN + 1 is `next`, in the backend's own space.
pub(crate) fn backend_next(ws: &mut WorkerState, idx: u32, next: u32) {
    update(ws, idx, |c| {
        c.backend_next = next;
        c.flags |= ppflags::SYNACK_SEEN;
    });
}

/// How far the backend's view of the client's sequence space lies ahead of
/// the client's own, once the header is on its way.
pub(crate) fn seq_shift(ws: &WorkerState, idx: u32) -> Option<u32> {
    let c = get(ws, idx)?;
    c.sent().then_some(u32::from(c.len))
}

/// Adds connection `idx`'s header offset for a packet going `dir` to `t`
/// (which may already hold the SYN proxy's offsets: each field has one
/// side's offset only, so they add up).
#[inline]
pub(crate) fn offsets(ws: &WorkerState, idx: u32, dir: Dir, t: &mut Translate) {
    let Some(c) = get(ws, idx) else {
        return;
    };
    if !c.sent() {
        return;
    }
    let h = u32::from(c.len);
    match dir {
        Dir::Forward => t.seq_add = t.seq_add.wrapping_add(h),
        Dir::Reverse => {
            t.ack_add = t.ack_add.wrapping_sub(h);
            t.sack_add = t.sack_add.wrapping_sub(h);
            if !c.acked() {
                t.ack_floor = Some(c.client_next);
            }
        }
    }
}

// ---- the header segment --------------------------------------------------

/// The segment that carries connection `e`'s header to its backend, from
/// where the backend sees the client (itself for NAT, a local address and
/// port for FullNAT), acknowledging `ack` in the backend's space.
pub(crate) fn header_segment<'a>(
    e: &ConnEntry,
    c: &PpConn,
    ack: u32,
    window: u16,
    options: &'a [u8],
    snap: &Snapshot,
) -> Option<Segment<'a>> {
    let backend = snap.backends.get(e.backend.index())?;
    let src = match conn::local_of(e) {
        Some((n, port)) => (*snap.local_addrs.get(usize::from(n))?, port),
        None => (e.client, e.client_port),
    };
    Some(Segment {
        src,
        dst: (backend.key.addr, backend.key.port),
        seq: c.client_next,
        ack,
        flags: tcp_flags::ACK | tcp_flags::PSH,
        window,
        options,
        ttl: snap.synproxy.ttl,
        src_mac: snap.mac,
        dst_mac: backend.mac,
    })
}

/// Sends `seg` with connection `idx`'s header as its payload, written into
/// the outbox over a copy of `frame`'s Ethernet header (and VLAN tag),
/// which `d` describes; `tsval` is the client timestamp it carries. The
/// first time counts as `proxy_headers_sent`, every later one as
/// `proxy_headers_resent`.
pub(crate) fn send_header(
    frame: &[u8],
    d: &FlowDesc,
    idx: u32,
    seg: &Segment,
    tsval: Option<u32>,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Result<(), DropReason> {
    let e = ws.conns.get(idx).copied().ok_or(DropReason::NoConn)?;
    let vip = snap.vips.get(e.vip.index()).ok_or(DropReason::NoVip)?;
    let mut hdr = [0u8; header::MAX_LEN];
    let n = header::encode(&mut hdr, (e.client, e.client_port), (vip.addr, vip.port));
    let payload = hdr
        .get(..n)
        .filter(|p| !p.is_empty())
        .ok_or(DropReason::ProxyUntranslatable)?;
    let l2 = usize::from(d.l3_off);
    let slot = ws.outbox.slot().ok_or(DropReason::OutboxFull)?;
    match (slot.get_mut(..l2), frame.get(..l2)) {
        (Some(dst), Some(src)) => dst.copy_from_slice(src),
        _ => return Err(DropReason::Malformed),
    }
    let len = segment::write_data(slot, d, seg, payload).ok_or(DropReason::Malformed)?;
    ws.outbox.commit(len);
    ws.stats.originated(len);
    let first = get(ws, idx).is_some_and(|c| !c.sent());
    update(ws, idx, |c| {
        c.flags |= ppflags::SENT;
        c.window = seg.window;
        if let Some(v) = tsval {
            c.tsval = v;
            c.flags |= ppflags::TS;
        }
    });
    ws.stats.event(if first {
        Event::ProxyHeaderSent
    } else {
        Event::ProxyHeaderResent
    });
    Ok(())
}

/// Sends the header again, built from the entry and what a backend
/// segment (`frame`) says: it echoes that segment's timestamp.
fn resend(frame: &[u8], d: &FlowDesc, idx: u32, ws: &mut WorkerState, snap: &Snapshot) {
    let (Some(c), Some(e)) = (get(ws, idx), ws.conns.get(idx).copied()) else {
        return;
    };
    let mut opts = [0u8; tcpopt::MAX_LEN];
    let n = match tcpopt::parse(frame, d).timestamp {
        Some((theirs, _)) if c.flags & ppflags::TS != 0 => {
            tcpopt::encode_ts_only(&mut opts, c.tsval, theirs)
        }
        _ => 0,
    };
    let Some(seg) = header_segment(
        &e,
        &c,
        c.backend_next,
        c.window,
        opts.get(..n).unwrap_or(&[]),
        snap,
    ) else {
        return;
    };
    // A header that finds no outbox room now goes with the backend's next
    // reminder; the backend's packet itself is forwarded either way.
    let _ = send_header(frame, d, idx, &seg, None, ws, snap);
}

// ---- packets of the connection -------------------------------------------

/// A client packet of a connection with a PROXY header.
pub(crate) fn forward(
    frame: &mut [u8],
    d: &FlowDesc,
    idx: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let Some(c) = get(ws, idx) else {
        return Verdict::Drop(DropReason::NoConn);
    };
    if c.sent() {
        let v = conn::forward(frame, d, idx, ws, snap);
        if v == Verdict::Forward {
            conn::translate(frame, d, idx, Dir::Forward, ws);
        }
        return v;
    }
    // Before the header the backend numbers the client's bytes as the
    // client does.
    let f = d.tcp_flags;
    let tcp = tcp_of(frame, d);
    if f & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN {
        client_next(ws, idx, tcp.seq().wrapping_add(1));
        return conn::forward(frame, d, idx, ws, snap);
    }
    if f & tcp_flags::RST != 0 {
        return conn::forward(frame, d, idx, ws, snap);
    }
    let both = ppflags::SYN_SEEN | ppflags::SYNACK_SEEN;
    let completes = c.flags & both == both
        && f & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::ACK
        && tcp.ack() == c.backend_next;
    if !completes {
        // Client bytes before the handshake completed would land where the
        // header goes.
        return Verdict::Drop(DropReason::ProxyUntranslatable);
    }
    let data = has_payload(frame, d);
    let v = conn::forward(frame, d, idx, ws, snap);
    if v != Verdict::Forward {
        return v;
    }
    // The client completed the handshake: the header goes first, with the
    // acknowledgment, window and timestamps of this (rewritten) segment.
    let Some(e) = ws.conns.get(idx).copied() else {
        return Verdict::Drop(DropReason::NoConn);
    };
    let tcp = tcp_of(frame, d);
    let (ack, window) = (tcp.ack(), tcp.window());
    let ts = tcpopt::parse(frame, d).timestamp;
    let mut opts = [0u8; tcpopt::MAX_LEN];
    let n = ts.map_or(0, |(val, ecr)| tcpopt::encode_ts_only(&mut opts, val, ecr));
    let Some(seg) = header_segment(&e, &c, ack, window, opts.get(..n).unwrap_or(&[]), snap) else {
        return Verdict::Drop(DropReason::NoBackend);
    };
    if let Err(r) = send_header(frame, d, idx, &seg, ts.map(|t| t.0), ws, snap) {
        return Verdict::Drop(r);
    }
    if !data {
        // A bare ACK: the header segment carries its acknowledgment.
        return Verdict::Consumed;
    }
    // Data (or a FIN) follows the header, shifted past it.
    conn::translate(frame, d, idx, Dir::Forward, ws);
    if ws.outbox.push(frame) {
        ws.stats.originated(frame.len());
        Verdict::Consumed
    } else {
        Verdict::Drop(DropReason::OutboxFull)
    }
}

/// A backend packet of a connection with a PROXY header (past the SYN
/// proxy's handshake, if it has one).
pub(crate) fn reply(
    frame: &mut [u8],
    d: &FlowDesc,
    idx: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let Some(c) = get(ws, idx) else {
        return Verdict::Drop(DropReason::NoConn);
    };
    let f = d.tcp_flags;
    let tcp = tcp_of(frame, d);
    let synack =
        f & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST) == tcp_flags::SYN | tcp_flags::ACK;
    if synack && !c.sent() {
        backend_next(ws, idx, tcp.seq().wrapping_add(1));
    }
    let mut acked_now = false;
    if c.sent() && !c.acked() && f & (tcp_flags::ACK | tcp_flags::RST) == tcp_flags::ACK {
        let ack = tcp.ack();
        if seq_ge(ack, c.header_end()) {
            acked_now = true;
        } else if ack == c.client_next {
            // A SYN-ACK again, or an ACK short of the header: the backend
            // has not got it.
            resend(frame, d, idx, ws, snap);
        }
    }
    let v = conn::reply(frame, d, idx, ws, snap);
    if v == Verdict::Forward {
        conn::translate(frame, d, idx, Dir::Reverse, ws);
    }
    if acked_now {
        update(ws, idx, |c| c.flags |= ppflags::ACKED);
    }
    v
}
