//! The connection lifecycle, beside the table that stores it: opening an
//! entry for a scheduled flow (its bound forwarding mode, FullNAT local
//! port, reply key, least-connection and per-VIP/backend counts), moving its
//! state as packets pass, and giving everything back when it goes
//! (expired, reset, replaced). The pipeline ([`crate::datapath`]) and the
//! SYN proxy ([`crate::synproxy`]) both open and close connections through
//! here, and neither imports the other.
//!
//! [`forward`] and [`reply`] run one packet of a tracked connection through
//! the transform its entry was bound to ([`Xmit`]).

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::conntrack::{addr_hash, expired, flags as cflags, flow_hash, ConnEntry, ConnState, Dir};
use crate::flow::{Addr, FlowDesc, FlowKey};
use crate::ids::{BackendId, VipId};
use crate::sched::source::Sources;
use crate::sched::Scheduler;
use crate::snapshot::{BackendInfo, Snapshot, VipInfo, MAGLEV_SEED};
use crate::state::{Verdict, WorkerState};
use crate::stats::{DropReason, WorkerStats};
use crate::synproxy::SynproxyState;
use crate::wire;
use crate::xmit::lport::LocalPorts;
use crate::xmit::{Ends, Tx, Xmit};

/// The VIP's scheduler's choice for a new flow (a scheduler slot): over
/// the client's source pool when the VIP has `[[vip.source]]` entries and
/// the pool has a backend taking connections, else over every backend.
pub(crate) fn schedule(
    d: &FlowDesc,
    vi: VipId,
    vip: &VipInfo,
    ws: &mut WorkerState,
) -> Option<u32> {
    let fh = flow_hash(&d.key, MAGLEV_SEED);
    let sh = addr_hash(&d.key.src, MAGLEV_SEED);
    if let Some(sources) = vip.sources.as_deref() {
        if let Some(slot) = steer(d, vi, sources, fh, sh, ws) {
            return Some(slot);
        }
    }
    ws.scheds.get_mut(vi.index())?.pick(&vip.maglev, fh, sh)
}

/// The pick over the pool of the client's longest matching source prefix;
/// `None` when it matches none, or when no backend of its pool takes new
/// connections (counted: the flow goes to the whole VIP).
#[inline(never)]
fn steer(
    d: &FlowDesc,
    vi: VipId,
    sources: &Sources,
    fh: u64,
    sh: u64,
    ws: &mut WorkerState,
) -> Option<u32> {
    let p = sources.pool_of(&d.key.src)?;
    let table = &sources.pool(p)?.maglev;
    match ws.scheds.get_mut(vi.index())?.pick_pool(p, table, fh, sh) {
        Some(slot) => {
            ws.stats.event(crate::stats::Event::SourceSteered);
            Some(slot)
        }
        None => {
            ws.stats.event(crate::stats::Event::SourceFallback);
            None
        }
    }
}

/// Why [`open`] made no entry.
pub(crate) enum OpenError {
    Drop(DropReason),
    /// Every entry is taken; the caller decides whether the flow can go
    /// without state.
    TableFull,
}

/// Creates the entry for a new flow of `vip` to scheduler slot `slot`,
/// bound to the VIP's forwarding mode: FullNAT port, reply key (a live
/// connection holding it refuses the flow), least-connections and
/// per-VIP/backend counts. Returns the entry number.
#[allow(clippy::too_many_arguments)]
pub(crate) fn open(
    d: &FlowDesc,
    vi: VipId,
    vip: &VipInfo,
    fwd_hash: u32,
    slot: u32,
    state: ConnState,
    flags: u8,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Result<u32, OpenError> {
    let no_backend = OpenError::Drop(DropReason::NoBackend);
    let backend_id = vip.backend(slot).ok_or(no_backend)?;
    let backend = snap
        .backends
        .get(backend_id.index())
        .ok_or(OpenError::Drop(DropReason::NoBackend))?;
    let xmit = Xmit::of(vip.mode);
    // A backend the mode cannot reach gets no entry.
    xmit.admits(backend).map_err(OpenError::Drop)?;

    let mut entry = ConnEntry {
        client: d.key.src,
        client_port: d.key.sport,
        fwd_hash,
        backend: backend_id,
        vip: vi,
        proto: d.key.proto,
        state: state as u8,
        flags,
        xmit,
        ..ConnEntry::default()
    };
    entry.expires = ws.now.wrapping_add(snap.timeouts.get(state));

    let mut local = None;
    if xmit.local_port() {
        let (laddr, lport) = ws
            .lports
            .alloc(&vip.local_addrs)
            .ok_or(OpenError::Drop(DropReason::FullnatPortsExhausted))?;
        entry.laddr = laddr;
        entry.lport = lport;
        entry.flags |= cflags::HAS_LPORT;
        let addr = snap
            .local_addrs
            .get(laddr as usize)
            .copied()
            .unwrap_or_default();
        local = Some((addr, lport));
    }
    let ends = Ends {
        client: (d.key.src, d.key.sport),
        backend: (backend.key.addr, backend.key.port),
        local,
        proto: d.key.proto,
    };
    if let Some(rk) = xmit.reply_key(&ends) {
        let rh = ws.conns.hash(&rk);
        if let Some(other) = ws
            .conns
            .lookup(rh, Dir::Reverse, |e| is_reply_of(e, &rk, snap))
        {
            let now = ws.now;
            let dead = ws
                .conns
                .get(other)
                .is_none_or(|e| expired(e.expires, now) || e.state().is_closing());
            if dead {
                expire(ws, snap, other);
            } else {
                give_back_port(&entry, &mut ws.lports);
                return Err(OpenError::Drop(DropReason::ConnCollision));
            }
        }
        entry.rev_hash = rh;
        entry.flags |= cflags::HAS_REVERSE;
    }
    match ws.conns.insert(entry) {
        Ok(idx) => {
            if flags & cflags::PROXY != 0 {
                crate::proxy_protocol::path::opened(ws, idx, &d.key.src);
            }
            if let Some(s) = ws.scheds.get_mut(vi.index()) {
                s.conn_opened(slot);
            }
            if let Some(c) = ws.stats.vip_mut(vi) {
                c.connections += 1;
            }
            if let Some(c) = ws.stats.backend_mut(backend_id) {
                c.connections += 1;
            }
            Ok(idx)
        }
        Err(_) => {
            give_back_port(&entry, &mut ws.lports);
            Err(OpenError::TableFull)
        }
    }
}

/// Gives back what a connection held when its entry goes away.
pub(crate) fn release(
    idx: u32,
    e: &ConnEntry,
    snap: &Snapshot,
    scheds: &mut [Scheduler],
    lports: &mut LocalPorts,
    sp: Option<&mut SynproxyState>,
    stats: &mut WorkerStats,
) {
    if let Some(c) = stats.vip_mut(e.vip) {
        c.closed += 1;
    }
    if let Some(c) = stats.backend_mut(e.backend) {
        c.closed += 1;
    }
    if e.flags & cflags::SYNPROXY != 0 {
        if let Some(sp) = sp {
            sp.release(idx);
        }
    }
    give_back_port(e, lports);
    if let (Some(vip), Some(s)) = (snap.vips.get(e.vip.index()), scheds.get_mut(e.vip.index())) {
        if let Some(i) = vip.backends.iter().position(|b| *b == e.backend) {
            s.conn_closed(i as u32);
        }
    }
}

/// Ends connection `idx` before its time (reset, refused, replaced by a
/// new handshake): the entry goes and what it held is given back.
pub(crate) fn remove(ws: &mut WorkerState, snap: &Snapshot, idx: u32) {
    if let Some(e) = ws.conns.remove(idx) {
        release(
            idx,
            &e,
            snap,
            &mut ws.scheds,
            &mut ws.lports,
            ws.synproxy.as_deref_mut(),
            &mut ws.stats,
        );
    }
}

/// Removes connection `idx`, found past its expiry (or closed and replaced)
/// when a packet arrived before the aging sweep reached it: counted as
/// expired exactly as the sweep counts the entries it removes.
pub(crate) fn expire(ws: &mut WorkerState, snap: &Snapshot, idx: u32) {
    if ws.conns.get(idx).is_some() {
        remove(ws, snap, idx);
        ws.stats.event(crate::stats::Event::ConnExpired);
    }
}

pub(crate) fn give_back_port(e: &ConnEntry, lports: &mut LocalPorts) {
    if e.flags & cflags::HAS_LPORT != 0 {
        lports.release(e.laddr, e.lport);
    }
}

/// Whether `key` (a packet from a backend) is the reply direction of `e`.
#[inline]
pub(crate) fn is_reply_of(e: &ConnEntry, key: &FlowKey, snap: &Snapshot) -> bool {
    let Some(b) = snap.backends.get(e.backend.index()) else {
        return false;
    };
    if e.proto != key.proto || b.key.port != key.sport || b.key.addr != key.src {
        return false;
    }
    if e.flags & cflags::HAS_LPORT != 0 {
        e.lport == key.dport && snap.local_addrs.get(e.laddr as usize) == Some(&key.dst)
    } else {
        e.client_port == key.dport && e.client == key.dst
    }
}

/// A tracked connection saw a packet going `dir`: move its state and push
/// its expiry out by the new state's timeout. Inlined into every caller:
/// the established path must not pay a call for it.
#[inline(always)]
pub(crate) fn advance(e: &mut ConnEntry, d: &FlowDesc, dir: Dir, now: u32, snap: &Snapshot) {
    let st = if d.is_tcp() {
        e.state().next(dir, d.tcp_flags)
    } else {
        ConnState::Udp
    };
    e.state = st as u8;
    e.expires = now.wrapping_add(snap.timeouts.get(st));
}

/// The FullNAT local address number and port of entry `e`, if it has one.
#[inline]
pub(crate) fn local_of(e: &ConnEntry) -> Option<(u8, u16)> {
    (e.flags & cflags::HAS_LPORT != 0).then_some((e.laddr, e.lport))
}

/// What a packet of a tracked connection needs from its entry, read once
/// after its state moved.
#[derive(Clone, Copy)]
pub(crate) struct Bound {
    pub vi: VipId,
    pub backend: BackendId,
    pub xmit: Xmit,
    pub client: (Addr, u16),
    pub local: Option<(u8, u16)>,
}

/// Moves the state of entry `e` for a packet going `dir` and reads what
/// its transform needs.
#[inline(always)]
pub(crate) fn step(e: &mut ConnEntry, d: &FlowDesc, dir: Dir, now: u32, snap: &Snapshot) -> Bound {
    advance(e, d, dir, now, snap);
    Bound {
        vi: e.vip,
        backend: e.backend,
        xmit: e.xmit,
        client: (e.client, e.client_port),
        local: local_of(e),
    }
}

/// What a packet of tracked connection `idx` finds in its entry.
pub(crate) enum Stepped {
    /// No entry under that number.
    Gone,
    /// A connection whose two sides number their bytes differently (SYN
    /// proxy, PROXY header), left as it is for its own path.
    Proxied,
    /// The state moved; what the transform needs.
    Plain(Bound),
}

/// Looks entry `idx` up once for a packet going `dir` and moves its state,
/// unless `proxied_apart` and it is a SYN proxy or PROXY header connection.
#[inline(always)]
pub(crate) fn step_entry(
    ws: &mut WorkerState,
    idx: u32,
    d: &FlowDesc,
    dir: Dir,
    snap: &Snapshot,
    proxied_apart: bool,
) -> Stepped {
    let now = ws.now;
    let Some(e) = ws.conns.get_mut(idx) else {
        return Stepped::Gone;
    };
    if proxied_apart && e.flags & cflags::SPLICED != 0 {
        return Stepped::Proxied;
    }
    Stepped::Plain(step(e, d, dir, now, snap))
}

/// A client packet of tracked connection `idx`: its state moves and the
/// frame goes through the connection's bound transform.
#[inline(always)]
pub(crate) fn forward(
    frame: &mut [u8],
    d: &FlowDesc,
    idx: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let Stepped::Plain(b) = step_entry(ws, idx, d, Dir::Forward, snap, false) else {
        return Verdict::Drop(DropReason::NoConn);
    };
    let Some(vip) = snap.vips.get(b.vi.index()) else {
        return Verdict::Drop(DropReason::NoVip);
    };
    send(frame, d, vip, &b, ws, snap)
}

/// Sends a client packet to `backend_id` through `xmit` and counts it. For
/// a tracked connection and for a flow that goes without an entry alike.
#[inline(always)]
pub(crate) fn send(
    frame: &mut [u8],
    d: &FlowDesc,
    vip: &VipInfo,
    b: &Bound,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let Bound {
        vi,
        backend: backend_id,
        xmit,
        client,
        local,
    } = *b;
    let Some(backend) = snap.backends.get(backend_id.index()) else {
        return Verdict::Drop(DropReason::NoBackend);
    };
    let len = frame.len() as u64;
    let tx = Tx {
        snap,
        vip,
        backend,
        client,
        local,
    };
    match xmit.inbound(frame, d, &tx, &mut ws.front) {
        Ok(()) => {}
        Err(DropReason::TunnelTooBig) => return too_big(frame, d, vip, backend, ws, snap),
        Err(r) => return Verdict::Drop(r),
    }
    ws.stats.count_flow(vi, backend_id, len, Dir::Forward);
    Verdict::Forward
}

/// A backend's packet of tracked connection `idx`, on its way back to the
/// client through the connection's bound transform.
#[inline(always)]
pub(crate) fn reply(
    frame: &mut [u8],
    d: &FlowDesc,
    idx: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let Stepped::Plain(b) = step_entry(ws, idx, d, Dir::Reverse, snap, false) else {
        return Verdict::Drop(DropReason::NoConn);
    };
    send_back(frame, d, &b, ws, snap)
}

/// Sends a backend's packet back to the client through the connection's
/// transform and counts it.
#[inline(always)]
pub(crate) fn send_back(
    frame: &mut [u8],
    d: &FlowDesc,
    b: &Bound,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let Bound {
        vi,
        backend: backend_id,
        xmit,
        client,
        local,
    } = *b;
    let (Some(vip), Some(backend)) = (
        snap.vips.get(vi.index()),
        snap.backends.get(backend_id.index()),
    ) else {
        return Verdict::Drop(DropReason::NoVip);
    };
    let len = frame.len() as u64;
    let tx = Tx {
        snap,
        vip,
        backend,
        client,
        local,
    };
    if let Err(r) = xmit.outbound(frame, d, &tx) {
        return Verdict::Drop(r);
    }
    ws.stats.count_flow(vi, backend_id, len, Dir::Reverse);
    Verdict::Forward
}

/// Moves the sequence spaces of a packet of connection `idx` going `dir`,
/// after its transform, by the offsets its entry's flags name: the SYN
/// proxy's (the backend's ISN and timestamp clock against the cookie's,
/// and window scales) and the PROXY header's (the client's bytes after the
/// header). One pass over the header and options, one checksum update.
#[inline]
pub(crate) fn translate(frame: &mut [u8], d: &FlowDesc, idx: u32, dir: Dir, ws: &WorkerState) {
    let Some(flags) = ws.conns.get(idx).map(|e| e.flags) else {
        return;
    };
    let mut t = wire::tcpopt::Translate::default();
    if flags & cflags::SYNPROXY != 0 {
        crate::synproxy::path::offsets(ws, idx, dir, &mut t);
    }
    if flags & cflags::PROXY != 0 {
        crate::proxy_protocol::path::offsets(ws, idx, dir, &mut t);
    }
    let moves = t.seq_add != 0
        || t.ack_add != 0
        || t.sack_add != 0
        || t.tsval_add != 0
        || t.tsecr_add != 0
        || t.window_shift.is_some()
        || t.ack_floor.is_some();
    if moves {
        let o = wire::tcpopt::parse(frame, d);
        wire::tcpopt::translate(frame, d, &o, &t);
    }
}

/// A client packet too big for the tunnel once wrapped: the client is told
/// the largest packet that fits (RFC 1191 / RFC 8201), from the VIP it
/// wrote to, and the packet goes no further. The answer leaves through the
/// outbox; the packet itself is consumed.
#[cold]
#[inline(never)]
fn too_big(
    frame: &[u8],
    d: &FlowDesc,
    vip: &VipInfo,
    backend: &BackendInfo,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let encap = vip.encap.unwrap_or(crate::config::Encap::Ipip);
    let mtu = crate::xmit::tunnel::inner_mtu(snap.mtu, encap, &backend.key.addr);
    // IPv6 links carry at least 1280 bytes (RFC 8200 §5).
    let mtu = if d.is_v4() { mtu } else { mtu.max(1280) };
    let Some(slot) = ws.outbox.slot() else {
        return Verdict::Drop(DropReason::OutboxFull);
    };
    let ttl = snap.synproxy.ttl;
    match wire::icmp::write_too_big(slot, frame, d, d.key.dst, u32::from(mtu), ttl, snap.mac) {
        Some(len) => {
            ws.outbox.commit(len);
            ws.stats.originated(len);
            ws.stats.event(crate::stats::Event::IcmpTooBig);
            Verdict::Consumed
        }
        None => Verdict::Drop(DropReason::TunnelTooBig),
    }
}
