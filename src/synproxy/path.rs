//! The SYN proxy's part of the datapath: what happens to a packet of a
//! `synproxy` VIP at each step of the splice (see the module above for the
//! whole picture). Called from [`crate::datapath`] with the frame already
//! parsed; like the rest of the datapath it never panics on packet bytes and
//! never allocates.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::cookie::{self, SynOptions};
use super::hold::NIL;
use super::{spflags, SpConn, SynproxyState, NO_WSCALE};
use crate::conn::{self, OpenError};
use crate::conntrack::{expired, flags as cflags, ConnState, Dir};
use crate::flow::{tcp_flags, FlowDesc, Mac};
use crate::ids::VipId;
use crate::outbox::FRAME_ROOM;
use crate::snapshot::{Snapshot, VipInfo};
use crate::state::{Verdict, WorkerState};
use crate::stats::{DropReason, Event};
use crate::wire::segment::{self, Segment};
use crate::wire::tcpopt::{self, Translate};
use crate::wire::{self, TcpPacket};

/// The SYN proxy state for a worker. The cookie master key comes from
/// `synproxy.secret`, else the OS random source ([`crate::random`]). The
/// DPDK runtime draws one key at start for every worker (so a cookie
/// checks on any of them); should the OS fail a worker that draws its own
/// later (a reload that brings the first SYN proxy VIP), the worker logs
/// it and keeps a key made from its connection-hash seed and the clock,
/// which the OS seeded at start.
pub fn new_state(snap: &Snapshot, capacity: u32, seed: u64) -> SynproxyState {
    match SynproxyState::new(snap, capacity, seed, 0) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("SYN cookie secret: {e}; keying the cookies from the worker's seed");
            let mut snap = snap.clone();
            snap.synproxy.secret = Some(seed_key(seed));
            match SynproxyState::new(&snap, capacity, seed, 0) {
                Ok(s) => s,
                // Unreachable: a configured key needs no random source.
                Err(_) => std::process::abort(),
            }
        }
    }
}

/// A 128-bit key spread from a 64-bit seed and the time (SipHash).
fn seed_key(seed: u64) -> [u8; 16] {
    use siphasher::sip128::{Hasher128, SipHasher13};
    use std::hash::Hasher;
    let mut h = SipHasher13::new_with_keys(seed, seed.rotate_left(32));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(now);
    h.finish128().as_bytes()
}

// ---- reading the TCP header -------------------------------------------------

/// The TCP header the parser found (an empty view, reading zeros, for a
/// descriptor that does not fit the frame).
#[inline]
fn tcp_of<'a>(frame: &'a [u8], d: &FlowDesc) -> TcpPacket<&'a [u8]> {
    TcpPacket::new_unchecked(frame.get(d.l4_off as usize..).unwrap_or(&[]))
}

#[inline]
fn seq_of(frame: &[u8], d: &FlowDesc) -> u32 {
    tcp_of(frame, d).seq()
}

#[inline]
fn ack_of(frame: &[u8], d: &FlowDesc) -> u32 {
    tcp_of(frame, d).ack()
}

/// Whether the segment occupies sequence space beyond its header: data or FIN.
#[inline]
fn has_payload(frame: &[u8], d: &FlowDesc) -> bool {
    usize::from(d.l4_len) > tcp_of(frame, d).header_len() || d.tcp_flags & tcp_flags::FIN != 0
}

/// The frame's source MAC: where an answer to it goes.
#[inline]
fn sender_mac(frame: &[u8]) -> Mac {
    Mac(wire::read_array(frame, 6..12))
}

/// Millisecond TCP timestamp clock (RFC 7323 §5.4 allows 1 ms to 1 s ticks).
#[inline]
fn ts_clock(ws: &WorkerState) -> u32 {
    (ws.now_ns / 1_000_000) as u32
}

/// MSS our SYN-ACK advertises: `synproxy.mss` over IPv4; 20 bytes less over
/// IPv6, whose header is that much longer.
#[inline]
fn our_mss(snap: &Snapshot, d: &FlowDesc) -> u16 {
    if d.is_v4() {
        snap.synproxy.mss
    } else {
        snap.synproxy.mss.saturating_sub(20)
    }
}

// ---- a packet with no entry -----------------------------------------------

/// A client packet to a SYN-proxy VIP that matches no connection.
pub(crate) fn first_packet(
    frame: &mut [u8],
    d: &FlowDesc,
    vi: VipId,
    vip: &VipInfo,
    hash: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let f = d.tcp_flags;
    if f & tcp_flags::RST != 0 {
        return Verdict::Drop(DropReason::NoConn);
    }
    match f & (tcp_flags::SYN | tcp_flags::ACK) {
        tcp_flags::SYN => syn(frame, d, ws, snap),
        tcp_flags::ACK => cookie_ack(frame, d, vi, vip, hash, ws, snap),
        _ => Verdict::Drop(DropReason::CookieInvalid),
    }
}

/// Step 1: answer a SYN with a cookie SYN-ACK in the same buffer.
fn syn(frame: &mut [u8], d: &FlowDesc, ws: &mut WorkerState, snap: &Snapshot) -> Verdict {
    let now_ns = ws.now_ns;
    let ts_now = ts_clock(ws);
    let Some(sp) = ws.synproxy.as_deref_mut() else {
        return Verdict::Drop(DropReason::NoVip);
    };
    if !sp.sources.take(&d.key.src, now_ns) {
        return Verdict::Drop(DropReason::SynRateLimited);
    }
    let cfg = &snap.synproxy;
    let o = tcpopt::parse(frame, d);
    let client_isn = seq_of(frame, d);
    let mut offered = SynOptions {
        mss: o.mss,
        wscale: o.wscale,
        sack_perm: o.sack_perm && cfg.sack,
        timestamp: if cfg.timestamps { o.timestamp } else { None },
    };
    // Options go back only if the client offered them, so they fit where its
    // own were; should they not (odd option packing), retry with MSS only.
    for _ in 0..2 {
        let (isn, tsval, data) = cookie::make(&sp.secrets, &d.key, client_isn, &offered, ts_now);
        let mut opts = [0u8; tcpopt::MAX_LEN];
        let n = tcpopt::encode(
            &mut opts,
            o.mss.map(|_| our_mss(snap, d)),
            data.wscale.map(|_| cfg.wscale),
            data.sack_perm,
            tsval
                .zip(o.timestamp)
                .map(|(ours, (theirs, _))| (ours, theirs)),
        );
        let seg = Segment {
            src: (d.key.dst, d.key.dport),
            dst: (d.key.src, d.key.sport),
            seq: isn,
            ack: client_isn.wrapping_add(1),
            flags: tcp_flags::SYN | tcp_flags::ACK,
            window: cfg.window,
            options: opts.get(..n).unwrap_or(&[]),
            ttl: cfg.ttl,
            src_mac: snap.mac,
            // Back to the hop the SYN came from, as an ARP reply goes.
            dst_mac: sender_mac(frame),
        };
        if let Some(len) = segment::write(frame, d, &seg) {
            ws.trim = Some(len);
            ws.stats.event(Event::SynCookieSent);
            return Verdict::Reply;
        }
        offered = SynOptions {
            mss: o.mss,
            ..SynOptions::default()
        };
    }
    Verdict::Drop(DropReason::Malformed)
}

/// Step 2: an ACK that may complete a cookie handshake.
fn cookie_ack(
    frame: &mut [u8],
    d: &FlowDesc,
    vi: VipId,
    vip: &VipInfo,
    hash: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let cfg = &snap.synproxy;
    let now_ns = ws.now_ns;
    let o = tcpopt::parse(frame, d);
    let (seq, ack) = (seq_of(frame, d), ack_of(frame, d));
    let data = {
        let Some(sp) = ws.synproxy.as_deref_mut() else {
            return Verdict::Drop(DropReason::NoVip);
        };
        if !sp.cookie_checks.take(now_ns) {
            return Verdict::Drop(DropReason::AckRateLimited);
        }
        let Some(data) = cookie::check(&sp.secrets, &d.key, seq, ack, o.timestamp.map(|t| t.1))
        else {
            return invalid_cookie(frame, d, ack, ws, snap);
        };
        if !sp.new_conns.take(now_ns) {
            return Verdict::Drop(DropReason::ConnRateLimited);
        }
        data
    };
    ws.stats.event(Event::CookieValid);

    let Some(slot) = conn::schedule(d, vi, vip, ws) else {
        return Verdict::Drop(DropReason::NoBackend);
    };
    let idx = match conn::open(
        d,
        vi,
        vip,
        hash,
        slot,
        ConnState::SynSent,
        cflags::SYNPROXY | if vip.proxy_protocol { cflags::PROXY } else { 0 },
        ws,
        snap,
    ) {
        Ok(idx) => idx,
        Err(OpenError::Drop(r)) => return Verdict::Drop(r),
        // Without an entry there is nothing to splice with.
        Err(OpenError::TableFull) => return Verdict::Drop(DropReason::ConnTableFull),
    };
    ws.stats.event(Event::ConnNew);
    if vip.proxy_protocol {
        // The ACK's sequence number is the client's ISN + 1: where the
        // header goes.
        crate::proxy_protocol::path::client_next(ws, idx, seq);
    }

    let Some(e) = ws.conns.get(idx).copied() else {
        return Verdict::Drop(DropReason::NoConn);
    };
    let Some(backend) = snap.backends.get(e.backend.index()) else {
        conn::remove(ws, snap, idx);
        return Verdict::Drop(DropReason::NoBackend);
    };
    let src = if e.flags & cflags::HAS_LPORT != 0 {
        (
            snap.local_addrs
                .get(e.laddr as usize)
                .copied()
                .unwrap_or_default(),
            e.lport,
        )
    } else {
        (e.client, e.client_port)
    };
    let window = tcp_of(frame, d).window();
    let mut sc = SpConn {
        our_isn: ack.wrapping_sub(1),
        client_isn: seq.wrapping_sub(1),
        client_tsval: o.timestamp.map_or(0, |t| t.0),
        our_tsval: o.timestamp.map_or(0, |t| t.1),
        retry_at: ws.now.wrapping_add(cfg.syn_retry_interval),
        client_window: window,
        client_wscale: data.wscale.unwrap_or(NO_WSCALE),
        our_wscale: data.wscale.map_or(NO_WSCALE, |_| cfg.wscale),
        flags: (if data.sack_perm { spflags::SACK } else { 0 })
            | (if data.timestamps { spflags::TS } else { 0 }),
        ..SpConn::default()
    };

    // The backend's SYN, written over a copy of the ACK's headers (it keeps
    // the VLAN tag) and kept in the hold pool for resends.
    let syn_window = (u32::from(window) << data.wscale.unwrap_or(0)).min(0xffff) as u16;
    let mut opts = [0u8; tcpopt::MAX_LEN];
    let n = tcpopt::encode(
        &mut opts,
        Some(data.mss),
        data.wscale,
        data.sack_perm,
        data.timestamps.then_some((sc.client_tsval, 0)),
    );
    let seg = Segment {
        src,
        dst: (backend.key.addr, backend.key.port),
        seq: sc.client_isn,
        ack: 0,
        flags: tcp_flags::SYN,
        window: syn_window,
        options: opts.get(..n).unwrap_or(&[]),
        ttl: cfg.ttl,
        src_mac: snap.mac,
        dst_mac: backend.mac,
    };
    let mut tmp = [0u8; FRAME_ROOM];
    let Some(len) = write_over_copy(&mut tmp, frame, d, &seg) else {
        conn::remove(ws, snap, idx);
        return Verdict::Drop(DropReason::Malformed);
    };
    let syn_frame = tmp.get(..len).unwrap_or(&[]);
    let Some(sp) = ws.synproxy.as_deref_mut() else {
        return Verdict::Drop(DropReason::NoVip);
    };
    let Some(template) = sp.hold.store(syn_frame) else {
        conn::remove(ws, snap, idx);
        return Verdict::Drop(DropReason::SynproxyHoldFull);
    };
    sc.syn_slot = template;
    if let Some(c) = sp.conns.get_mut(idx as usize) {
        *c = sc;
    }
    if sp.pending.len() < pending_limit(sp) {
        sp.pending.push_back((idx, sc.our_isn));
    }
    if !ws.outbox.push(syn_frame) {
        conn::remove(ws, snap, idx);
        return Verdict::Drop(DropReason::OutboxFull);
    }
    originated(ws, len);
    ws.stats.event(Event::BackendSyn);

    if has_payload(frame, d) {
        return hold(frame, idx, ws, snap);
    }
    Verdict::Consumed
}

/// Most handshakes a worker tracks for resends at once.
fn pending_limit(sp: &SynproxyState) -> usize {
    sp.conns.len().min(1 << 20)
}

/// An ACK with no entry and no valid cookie: dropped, or answered with a
/// RST when `synproxy.rst_invalid_ack` asks for it (RFC 9293 §3.10.7.1:
/// `<SEQ=SEG.ACK><CTL=RST>`).
fn invalid_cookie(
    frame: &mut [u8],
    d: &FlowDesc,
    ack: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let cfg = &snap.synproxy;
    if !cfg.rst_invalid_ack {
        return Verdict::Drop(DropReason::CookieInvalid);
    }
    let seg = Segment {
        src: (d.key.dst, d.key.dport),
        dst: (d.key.src, d.key.sport),
        seq: ack,
        ack: 0,
        flags: tcp_flags::RST,
        window: 0,
        options: &[],
        ttl: cfg.ttl,
        src_mac: snap.mac,
        dst_mac: sender_mac(frame),
    };
    match segment::write(frame, d, &seg) {
        Some(len) => {
            ws.trim = Some(len);
            ws.stats.event(Event::RstSent);
            Verdict::Reply
        }
        None => Verdict::Drop(DropReason::CookieInvalid),
    }
}

/// Copies the headers of `frame` into `buf` and writes `seg` over them.
fn write_over_copy(buf: &mut [u8], frame: &[u8], d: &FlowDesc, seg: &Segment) -> Option<usize> {
    let hdr = (d.l4_off as usize).min(frame.len());
    buf.get_mut(..hdr)?.copy_from_slice(frame.get(..hdr)?);
    segment::write(buf, d, seg)
}

fn originated(ws: &mut WorkerState, len: usize) {
    ws.stats.originated(len);
}

// ---- a proxied connection ------------------------------------------------

/// Parks a client packet until the backend answers.
fn hold(frame: &[u8], idx: u32, ws: &mut WorkerState, snap: &Snapshot) -> Verdict {
    let Some(sp) = ws.synproxy.as_deref_mut() else {
        return Verdict::Drop(DropReason::NoConn);
    };
    let Some(sc) = sp.conns.get(idx as usize).copied() else {
        return Verdict::Drop(DropReason::NoConn);
    };
    if sc.held >= snap.synproxy.hold_packets {
        return Verdict::Drop(DropReason::SynproxyHoldFull);
    }
    let Some(slot) = sp.hold.store(frame) else {
        return Verdict::Drop(DropReason::SynproxyHoldFull);
    };
    if sc.held_tail == NIL {
        if let Some(c) = sp.conns.get_mut(idx as usize) {
            c.held_head = slot;
        }
    } else {
        sp.hold.link(sc.held_tail, slot);
    }
    if let Some(c) = sp.conns.get_mut(idx as usize) {
        c.held_tail = slot;
        c.held += 1;
    }
    ws.stats.event(Event::SynproxyHeld);
    Verdict::Consumed
}

/// A client packet of a proxied connection whose backend has not answered
/// yet: held, or answered by the handshake already under way. `None` once
/// the connection is spliced (the caller forwards and translates).
pub(crate) fn client_pending(
    frame: &mut [u8],
    d: &FlowDesc,
    idx: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Option<Verdict> {
    let sp = ws.synproxy.as_deref()?;
    if sp.conns.get(idx as usize)?.established() {
        return None;
    }
    let f = d.tcp_flags;
    if f & tcp_flags::RST != 0 {
        // The backend may already hold our SYN: let the reset reach it. Its
        // sequence number is the client's own, which the backend knows.
        return None;
    }
    if f & tcp_flags::SYN != 0 || !has_payload(frame, d) {
        return Some(Verdict::Drop(DropReason::SynproxyPending));
    }
    Some(hold(frame, idx, ws, snap))
}

/// A backend packet of a proxied connection: the SYN-ACK that completes
/// the splice (step 3), a refusal (step 4), or a resent SYN-ACK. `None`
/// for an ordinary packet of a spliced connection.
pub(crate) fn backend_pending(
    frame: &mut [u8],
    d: &FlowDesc,
    idx: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Option<Verdict> {
    let sc = *ws.synproxy.as_deref()?.conns.get(idx as usize)?;
    let e = *ws.conns.get(idx)?;
    let f = d.tcp_flags;
    let synack =
        f & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST) == tcp_flags::SYN | tcp_flags::ACK;
    if sc.established() {
        if !synack {
            return None;
        }
        // Our ACK was lost and the backend resends its SYN-ACK: ACK again.
        let backend_isn = sc.our_isn.wrapping_add(sc.seq_delta);
        if seq_of(frame, d) != backend_isn {
            return Some(Verdict::Drop(DropReason::SynproxyBadSynAck));
        }
        let o = tcpopt::parse(frame, d);
        return Some(ack_backend(
            frame,
            d,
            idx,
            &sc,
            backend_isn,
            o.timestamp,
            ws,
            snap,
        ));
    }
    if e.state() != ConnState::SynSent {
        // The client reset the connection while it was pending.
        return Some(Verdict::Drop(DropReason::NoConn));
    }
    if f & tcp_flags::RST != 0 {
        return Some(backend_refused(frame, d, idx, &sc, ws, snap));
    }
    if !synack || ack_of(frame, d) != sc.client_isn.wrapping_add(1) {
        return Some(Verdict::Drop(DropReason::SynproxyBadSynAck));
    }

    let o = tcpopt::parse(frame, d);
    let backend_isn = seq_of(frame, d);
    let mut done = sc;
    done.seq_delta = backend_isn.wrapping_sub(sc.our_isn);
    if let (Some((tsval, _)), true) = (o.timestamp, sc.flags & spflags::TS != 0) {
        done.ts_delta = tsval.wrapping_sub(sc.our_tsval);
    }
    done.backend_wscale = o.wscale.unwrap_or(NO_WSCALE);
    done.flags |= spflags::ESTABLISHED;
    done.syn_slot = NIL;
    done.held_head = NIL;
    done.held_tail = NIL;
    done.held = 0;
    let now = ws.now;
    if let Some(sp) = ws.synproxy.as_deref_mut() {
        if sc.syn_slot != NIL {
            sp.hold.release(sc.syn_slot);
        }
        if let Some(c) = sp.conns.get_mut(idx as usize) {
            *c = done;
        }
    }
    if let Some(e) = ws.conns.get_mut(idx) {
        e.state = ConnState::Established as u8;
        e.expires = now.wrapping_add(snap.timeouts.get(ConnState::Established));
    }
    ws.stats.event(Event::SynproxyEstablished);
    if e.flags & cflags::PROXY != 0 {
        crate::proxy_protocol::path::backend_next(ws, idx, backend_isn.wrapping_add(1));
    }
    let v = ack_backend(frame, d, idx, &done, backend_isn, o.timestamp, ws, snap);
    release_held(sc.held_head, idx, ws, snap);
    Some(v)
}

/// Turns the backend's SYN-ACK into our ACK of it, in place; for a
/// connection with a PROXY header, the ACK carries the header and goes out
/// through the outbox, the SYN-ACK consumed.
#[allow(clippy::too_many_arguments)]
fn ack_backend(
    frame: &mut [u8],
    d: &FlowDesc,
    idx: u32,
    sc: &SpConn,
    backend_isn: u32,
    backend_ts: Option<(u32, u32)>,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let Some(e) = ws.conns.get(idx).copied() else {
        return Verdict::Drop(DropReason::NoConn);
    };
    let backend = e.backend;
    let cfg = &snap.synproxy;
    let mut opts = [0u8; tcpopt::MAX_LEN];
    let n = match backend_ts {
        Some((tsval, _)) if sc.flags & spflags::TS != 0 => {
            tcpopt::encode_ts_only(&mut opts, sc.client_tsval, tsval)
        }
        _ => 0,
    };
    let dst_mac = snap
        .backends
        .get(backend.index())
        .map_or(snap.gateway_mac, |b| b.mac);
    let seg = Segment {
        src: (d.key.dst, d.key.dport),
        dst: (d.key.src, d.key.sport),
        seq: sc.client_isn.wrapping_add(1),
        ack: backend_isn.wrapping_add(1),
        flags: tcp_flags::ACK,
        window: match window_shift(sc, Dir::Forward) {
            Some((from, to)) => tcpopt::rescale_window(sc.client_window, from, to),
            None => sc.client_window,
        },
        options: opts.get(..n).unwrap_or(&[]),
        ttl: cfg.ttl,
        src_mac: snap.mac,
        dst_mac,
    };
    if e.flags & cflags::PROXY != 0 {
        let seg = Segment {
            flags: tcp_flags::ACK | tcp_flags::PSH,
            ..seg
        };
        let tsval = (n > 0).then_some(sc.client_tsval);
        return match crate::proxy_protocol::path::send_header(frame, d, idx, &seg, tsval, ws, snap)
        {
            Ok(()) => Verdict::Consumed,
            Err(r) => Verdict::Drop(r),
        };
    }
    match segment::write(frame, d, &seg) {
        Some(len) => {
            ws.trim = Some(len);
            Verdict::Reply
        }
        None => Verdict::Drop(DropReason::Malformed),
    }
}

/// How far the backend's sequence numbers of spliced connection `idx` lie
/// from the ones the client sees (backend = client-facing + delta), once
/// the splice is complete.
pub(crate) fn seq_delta(ws: &WorkerState, idx: u32) -> Option<u32> {
    let sc = ws.synproxy.as_deref()?.conns.get(idx as usize)?;
    sc.established().then_some(sc.seq_delta)
}

/// A client packet of a spliced SYN proxy connection: forwarded through
/// the connection's transform, then its sequence numbers translated.
pub(crate) fn forward_spliced(
    frame: &mut [u8],
    d: &FlowDesc,
    idx: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let v = conn::forward(frame, d, idx, ws, snap);
    if v == Verdict::Forward {
        conn::translate(frame, d, idx, Dir::Forward, ws);
    }
    v
}

/// Sends the packets held for `idx` through the now spliced connection,
/// in the order they arrived.
fn release_held(mut slot: u32, idx: u32, ws: &mut WorkerState, snap: &Snapshot) {
    let mut tmp = [0u8; FRAME_ROOM];
    while slot != NIL {
        let Some(sp) = ws.synproxy.as_deref_mut() else {
            return;
        };
        let next = sp.hold.next(slot);
        let held = sp.hold.get(slot);
        let len = held.len();
        if let Some(dst) = tmp.get_mut(..len) {
            dst.copy_from_slice(held);
        }
        sp.hold.release(slot);
        slot = next;
        let Some(frame) = tmp.get_mut(..len) else {
            continue;
        };
        // The packet was counted when it was held (consumed); one that
        // cannot go out now is counted as a lost held packet.
        let mut d = FlowDesc::default();
        let sent = wire::parse_into(frame, &mut d).is_ok()
            && forward_spliced(frame, &d, idx, ws, snap) == Verdict::Forward
            && ws.outbox.push(frame);
        if sent {
            originated(ws, len);
        } else {
            ws.stats.event(Event::HeldLost);
        }
    }
}

/// The backend refused our SYN: reset the client (in the RST's buffer) and
/// free the entry.
fn backend_refused(
    frame: &mut [u8],
    d: &FlowDesc,
    idx: u32,
    sc: &SpConn,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let v = match client_reset(frame, d, idx, sc, ws, snap) {
        Some(len) => {
            ws.trim = Some(len);
            ws.stats.event(Event::RstSent);
            Verdict::Forward
        }
        None => Verdict::Drop(DropReason::Malformed),
    };
    ws.stats.event(Event::BackendRefused);
    conn::remove(ws, snap, idx);
    v
}

/// Writes, over the frame `d` describes, the RST that tells the client of
/// entry `idx` its connection is gone: from the VIP, at the sequence number
/// the client expects next.
fn client_reset(
    buf: &mut [u8],
    d: &FlowDesc,
    idx: u32,
    sc: &SpConn,
    ws: &WorkerState,
    snap: &Snapshot,
) -> Option<usize> {
    let e = ws.conns.get(idx)?;
    let vip = snap.vips.get(e.vip.index())?;
    let seg = Segment {
        src: (vip.addr, vip.port),
        dst: (e.client, e.client_port),
        seq: sc.our_isn.wrapping_add(1),
        ack: 0,
        flags: tcp_flags::RST,
        window: 0,
        options: &[],
        ttl: snap.synproxy.ttl,
        src_mac: snap.mac,
        dst_mac: snap.next_hop(&e.client),
    };
    segment::write(buf, d, &seg)
}

/// Adds spliced connection `idx`'s seq/ack, SACK, timestamp and window
/// offsets for a packet going `dir` to `t` (applied by
/// [`conn::translate`] after the NAT rewrite); nothing before the backend
/// answered.
#[inline]
pub(crate) fn offsets(ws: &WorkerState, idx: u32, dir: Dir, t: &mut Translate) {
    let Some(sc) = ws
        .synproxy
        .as_deref()
        .and_then(|sp| sp.conns.get(idx as usize))
    else {
        return;
    };
    if !sc.established() {
        return;
    }
    t.window_shift = window_shift(sc, dir);
    match dir {
        Dir::Forward => {
            t.ack_add = t.ack_add.wrapping_add(sc.seq_delta);
            t.sack_add = t.sack_add.wrapping_add(sc.seq_delta);
            t.tsecr_add = t.tsecr_add.wrapping_add(sc.ts_delta);
        }
        Dir::Reverse => {
            t.seq_add = t.seq_add.wrapping_sub(sc.seq_delta);
            t.tsval_add = t.tsval_add.wrapping_sub(sc.ts_delta);
        }
    }
}

/// How a window field going `dir` is rescaled, `(from, to)`, or `None`
/// when the receiver reads it in the sender's units. Scaling is on for
/// one side of the splice only when both of its SYNs carried the option
/// (RFC 7323 §2.2): the client's side when our SYN-ACK announced a factor,
/// the backend's when it answered our SYN (which offered the client's
/// factor) with one of its own. A side without scaling counts as factor 0.
fn window_shift(sc: &SpConn, dir: Dir) -> Option<(u8, u8)> {
    if sc.our_wscale == NO_WSCALE {
        // Our SYN offered the backend no factor either: nothing scales.
        return None;
    }
    let backend_scales = sc.backend_wscale != NO_WSCALE;
    let (from, to) = match dir {
        Dir::Forward => (
            sc.client_wscale,
            if backend_scales { sc.client_wscale } else { 0 },
        ),
        Dir::Reverse => (
            if backend_scales { sc.backend_wscale } else { 0 },
            sc.our_wscale,
        ),
    };
    (from != to).then_some((from, to))
}

// ---- timers ---------------------------------------------------------------

/// Resends SYNs to backends that have not answered within
/// `syn_retry_interval`; after `syn_retries` resends, resets the client and
/// frees the entry. Bounded by the outbox room.
pub(crate) fn retry_pending(ws: &mut WorkerState, snap: &Snapshot) {
    let cfg = &snap.synproxy;
    ws.outbox.set_position(usize::from(u16::MAX));
    loop {
        let now = ws.now;
        let Some(sp) = ws.synproxy.as_deref_mut() else {
            return;
        };
        let Some(&(idx, isn)) = sp.pending.front() else {
            return;
        };
        let waiting = ws
            .conns
            .get(idx)
            .is_some_and(|e| e.flags & cflags::SYNPROXY != 0 && e.state() == ConnState::SynSent);
        let sc = match sp.conns.get(idx as usize) {
            Some(c) if waiting && c.our_isn == isn && !c.established() && c.syn_slot != NIL => *c,
            _ => {
                sp.pending.pop_front();
                continue;
            }
        };
        if !expired(sc.retry_at, now) || ws.outbox.room() == 0 {
            return;
        }
        sp.pending.pop_front();
        let template = sp.hold.get(sc.syn_slot);
        let len = template.len();
        let mut tmp = [0u8; FRAME_ROOM];
        if let Some(dst) = tmp.get_mut(..len) {
            dst.copy_from_slice(template);
        }
        if sc.retries < cfg.syn_retries {
            if let Some(c) = sp.conns.get_mut(idx as usize) {
                c.retries += 1;
                c.retry_at = now.wrapping_add(cfg.syn_retry_interval);
            }
            sp.pending.push_back((idx, isn));
            if ws.outbox.push(tmp.get(..len).unwrap_or(&[])) {
                originated(ws, len);
                ws.stats.event(Event::BackendSyn);
            }
            continue;
        }
        // Out of retries: reset the client, written over the SYN's headers.
        let mut d = FlowDesc::default();
        let rst_len = match tmp.get(..len) {
            Some(f) if wire::parse_into(f, &mut d).is_ok() => {
                client_reset(&mut tmp, &d, idx, &sc, ws, snap)
            }
            _ => None,
        };
        if let Some(n) = rst_len {
            if ws.outbox.push(tmp.get(..n).unwrap_or(&[])) {
                originated(ws, n);
                ws.stats.event(Event::RstSent);
            }
        }
        ws.stats.event(Event::BackendTimeout);
        conn::remove(ws, snap, idx);
    }
}
