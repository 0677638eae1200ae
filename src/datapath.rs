//! The pipeline, one packet at a time:
//!
//! ```text
//! parse once -> FlowDesc
//!   ARP request / ICMPv6 NS for an address we own -> reply in place (Reply)
//!   TCP/UDP to a VIP:port      -> connection lookup, or schedule + insert
//!                                -> xmit::<mode>            (Forward)
//!   TCP/UDP reply of a tracked connection -> xmit::<mode>_out (Forward)
//!   anything else              -> Drop(reason)
//! ```
//!
//! [`process`] is a pure function of `(&mut frame, &mut WorkerState,
//! &Snapshot)`: replay, bench, the DPDK runtime and every test drive exactly
//! this code. It never panics on packet bytes and never allocates; every
//! drop is counted under its [`DropReason`].
//!
//! Policy for packets of flows with no entry (Maglev paper §3.3, "connection
//! tracking + consistent hashing"):
//! * TCP SYN and UDP: the VIP's scheduler picks, an entry is inserted. If the
//!   table is full the flow goes to its Maglev backend without state (NAT,
//!   DR) and `stateless_new` counts it; FullNAT cannot work without state
//!   and drops (`conn_table_full`).
//! * TCP RST never creates an entry: NAT and DR forward it to the Maglev
//!   backend statelessly, FullNAT drops it (`no_conn`).
//! * Other TCP (a flow picked up mid-way): NAT and DR insert an entry for its
//!   Maglev backend, the one that served it before if the backend set did
//!   not change; FullNAT drops it (`no_conn`): its backend saw another
//!   source port.
//! * A NAT reply with no entry whose source is a backend of exactly one NAT
//!   VIP is translated back statelessly (`stateless_reply`) while flows may
//!   have gone out without state (for an established-connection timeout
//!   after the last `stateless_new`), so flows that overflowed the table
//!   keep working in both directions. At other times it is not a reply of
//!   ours and drops as `no_conn`.
//! * A VIP with `[[vip.source]]` entries: a new flow is scheduled over the
//!   backends of its client's longest matching prefix's entry while one of
//!   them takes connections (else over all, counted `source_fallback`). The
//!   "Maglev backend" of the cases above is then the one of that entry's
//!   own table, so a flow without an entry lands where a tracked Maglev
//!   flow would.
//! * A VIP with `synproxy`: no packet reaches a backend before the client
//!   completed a handshake with rampart; see [`crate::synproxy`]. Its new
//!   flows are never forwarded without state.
//! * A VIP with `proxy_protocol`: its connections' packets need the PROXY
//!   header's offset, which only their entry holds; see
//!   [`crate::proxy_protocol`]. Never forwarded, nor replies translated,
//!   without an entry.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::buf::PacketBuf;
use crate::conn::{self, OpenError};
use crate::conntrack::{expired, flags as cflags, ConnState, Dir};
use crate::flow::{proto, tcp_flags, FlowDesc, L3Kind};
use crate::ids::{BackendId, VipId};
use crate::probe::ProbeVerdict;
use crate::proxy_protocol;
use crate::snapshot::{Owned, Snapshot, VipInfo};
use crate::stats::{DropReason, Event};
use crate::synproxy;
use crate::wire;
use crate::xmit::Xmit;

mod local;

use local::{arp, icmp, to_kernel};

pub use crate::state::{Verdict, WorkerState, AGING_BUDGET, MAX_BURST};

/// Runs one frame through the datapath and counts the outcome.
#[inline]
pub fn process<B: PacketBuf + ?Sized>(
    buf: &mut B,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let frame = buf.data_mut();
    let rx_len = frame.len() as u64;
    let mut c = Classified::default();
    ws.outbox.set_position(0);
    let (v, l2) = match classify(frame, ws, snap, &mut c) {
        Ok(()) => (handle(frame, &c, ws, snap), c.d.l3_off),
        Err(r) => refuse(frame, r, ws, snap),
    };
    let v = finish(buf, ws, v, l2);
    count(ws, rx_len, buf.data().len() as u64, v);
    v
}

/// A frame the parser refused: a fragment goes to [`crate::frag`], the
/// rest is dropped under the parser's reason. Also returns the frame's L2
/// length, for [`finish`].
#[cold]
#[inline(never)]
fn refuse(
    frame: &mut [u8],
    r: DropReason,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> (Verdict, u16) {
    match r {
        DropReason::Ipv4Fragment | DropReason::Ipv6Fragment => crate::frag::handle(frame, ws, snap),
        r => (Verdict::Drop(r), 0),
    }
}

/// Applies what a handler left for the buffer itself: a shorter frame (an
/// answer written over the packet) or outer headers to put in front of
/// the IP packet (encapsulation). `l2` is the offset of the frame's IP
/// header, the L2 length an encapsulation (only ever of a parsed IP
/// packet) keeps in front.
#[inline(always)]
fn finish<B: PacketBuf + ?Sized>(
    buf: &mut B,
    ws: &mut WorkerState,
    v: Verdict,
    l2: u16,
) -> Verdict {
    if let Some(len) = ws.trim.take() {
        buf.truncate(len);
    }
    if ws.front.len == 0 {
        return v;
    }
    let v = if v == Verdict::Forward {
        encapsulate(buf, &ws.front, usize::from(l2))
    } else {
        v
    };
    ws.front.len = 0;
    v
}

/// Grows the frame at the front by the outer headers and moves the
/// Ethernet header (and VLAN tag) ahead of them: the IP packet itself never
/// moves.
#[cold]
fn encapsulate<B: PacketBuf + ?Sized>(
    buf: &mut B,
    front: &crate::xmit::Front,
    l2: usize,
) -> Verdict {
    let hdr = front.header();
    let n = hdr.len();
    if l2 < 2 || !buf.prepend(n) {
        return Verdict::Drop(DropReason::NoHeadroom);
    }
    let frame = buf.data_mut();
    frame.copy_within(n..n + l2, 0);
    let Some(et) = frame.get_mut(l2 - 2..l2) else {
        return Verdict::Drop(DropReason::NoHeadroom);
    };
    et.copy_from_slice(&front.ethertype.to_be_bytes());
    if let Some(dst) = frame.get_mut(l2..l2 + n) {
        dst.copy_from_slice(hdr);
    }
    Verdict::Forward
}

/// Pipeline distance of [`process_burst`]: entries are prefetched this many
/// packets ahead of the one being handled, index slots twice as far.
const LOOKAHEAD: usize = 8;

/// Runs a burst, writing one verdict per frame into `verdicts`; returns how
/// many frames were processed (`min(bufs, verdicts, MAX_BURST)`).
///
/// Same result as [`process`] on each frame in turn, but faster with a large
/// connection table: all frames are parsed and hashed first and their index
/// slots prefetched, then their entries prefetched, then handled, so the
/// cache misses of a burst overlap instead of queueing one after another
/// (DPDK's usual prefetch pipeline). Taken [`CHUNK`] frames at a time.
pub fn process_burst<B: PacketBuf>(
    bufs: &mut [B],
    verdicts: &mut [Verdict],
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> usize {
    let n = bufs.len().min(verdicts.len()).min(MAX_BURST);
    let (Some(bufs), Some(verdicts)) = (bufs.get_mut(..n), verdicts.get_mut(..n)) else {
        return 0;
    };
    for (k, (bufs, verdicts)) in bufs
        .chunks_mut(CHUNK)
        .zip(verdicts.chunks_mut(CHUNK))
        .enumerate()
    {
        process_chunk(bufs, verdicts, k * CHUNK, ws, snap);
    }
    n
}

/// Frames [`process_burst`] classifies ahead of handling them: the
/// worker's burst, so a burst fills in (and first clears) one chunk's worth
/// of descriptors, not [`MAX_BURST`]'s.
const CHUNK: usize = crate::worker::BURST;

/// [`process_burst`] over up to [`CHUNK`] frames, the first of which is
/// frame `first` of the burst (where what it originates goes in the
/// outbox).
#[inline]
fn process_chunk<B: PacketBuf>(
    bufs: &mut [B],
    verdicts: &mut [Verdict],
    first: usize,
    ws: &mut WorkerState,
    snap: &Snapshot,
) {
    let n = bufs.len().min(verdicts.len()).min(CHUNK);
    let mut pre = [Classified::default(); CHUNK];
    for (c, buf) in pre.iter_mut().zip(bufs.iter()).take(n) {
        // A refused frame leaves `tracked` as it was: false.
        c.refused = classify(buf.data(), ws, snap, c).err();
    }
    // A software pipeline over the burst: while packet i is handled, the
    // index slot of packet i + 2L and the entry of packet i + L are on their
    // way. Keeping only ~2L loads in flight stays within the core's miss
    // buffers, which prefetching the whole burst at once would overrun.
    // Slots past the frames received hold default descriptors, never
    // tracked.
    let live = |i: usize| pre.get(i).filter(|c| c.tracked);
    let prefetch_index = |ws: &WorkerState, i: usize| {
        if let Some(c) = live(i) {
            ws.conns.prefetch_index(c.hash);
        }
    };
    let prefetch_entry = |ws: &WorkerState, i: usize| {
        if let Some(c) = live(i) {
            let dir = if c.vip.is_some() {
                Dir::Forward
            } else {
                Dir::Reverse
            };
            ws.conns.prefetch_entry(c.hash, dir);
        }
    };
    for i in 0..(2 * LOOKAHEAD).min(n) {
        prefetch_index(ws, i);
    }
    for i in 0..LOOKAHEAD.min(n) {
        prefetch_entry(ws, i);
    }
    for (i, ((c, buf), out)) in pre
        .iter()
        .zip(bufs.iter_mut())
        .zip(verdicts.iter_mut())
        .take(n)
        .enumerate()
    {
        prefetch_index(ws, i + 2 * LOOKAHEAD);
        prefetch_entry(ws, i + LOOKAHEAD);
        ws.outbox.set_position(first + i);
        let frame = buf.data_mut();
        let rx_len = frame.len() as u64;
        let (v, l2) = match c.refused {
            None => (handle(frame, c, ws, snap), c.d.l3_off),
            Some(r) => refuse(frame, r, ws, snap),
        };
        let v = finish(buf, ws, v, l2);
        count(ws, rx_len, buf.data().len() as u64, v);
        *out = v;
    }
}

#[inline]
fn count(ws: &mut WorkerState, rx_len: u64, tx_len: u64, v: Verdict) {
    ws.stats.rx_packets += 1;
    ws.stats.rx_bytes += rx_len;
    match v {
        Verdict::Forward | Verdict::Reply => {
            ws.stats.tx_packets += 1;
            ws.stats.tx_bytes += tx_len;
        }
        Verdict::Consumed | Verdict::Handover(_) | Verdict::Kernel => ws.stats.consumed += 1,
        Verdict::Drop(r) => ws.stats.drop(r),
    }
}

/// The once-per-packet parse plus what the connection lookup needs.
#[derive(Clone, Copy, Default)]
struct Classified {
    d: FlowDesc,
    /// TCP or UDP over IP: goes through the connection table.
    tracked: bool,
    /// The VIP the destination names, if any.
    vip: Option<VipId>,
    /// Connection-table hash of the packet's 5-tuple (when `tracked`).
    hash: u32,
    /// Why the parser refused the frame ([`process_burst`] only; the rest
    /// of the descriptor then holds no meaning).
    refused: Option<DropReason>,
}

/// Parses `frame` into `c` and looks up what the connection stage needs.
/// Fills `c` in place: a descriptor is never moved after the parse.
#[inline]
fn classify(
    frame: &[u8],
    ws: &WorkerState,
    snap: &Snapshot,
    c: &mut Classified,
) -> Result<(), DropReason> {
    if !wire::mac_accepts(frame, snap.mac) {
        return Err(DropReason::NotOurMac);
    }
    wire::parse_into(frame, &mut c.d)?;
    let d = &c.d;
    c.tracked = d.l3 != L3Kind::Arp && matches!(d.key.proto, proto::TCP | proto::UDP);
    if c.tracked {
        c.vip = snap.vip(&d.key.dst, d.key.dport, d.key.proto);
        c.hash = ws.conns.hash(&d.key);
    } else {
        c.vip = None;
        c.hash = 0;
    }
    Ok(())
}

#[inline]
fn handle(frame: &mut [u8], c: &Classified, ws: &mut WorkerState, snap: &Snapshot) -> Verdict {
    match c.d.l3 {
        L3Kind::Arp => arp(frame, &c.d, ws, snap),
        L3Kind::Ipv4 | L3Kind::Ipv6 => ip(frame, c, ws, snap),
    }
}

fn ip(frame: &mut [u8], c: &Classified, ws: &mut WorkerState, snap: &Snapshot) -> Verdict {
    let d = &c.d;
    match d.key.proto {
        proto::TCP | proto::UDP => {}
        proto::ICMP | proto::ICMPV6 => return icmp(frame, d, ws, snap),
        _ => {
            return match snap.owned(&d.key.dst) {
                Some(Owned::Node) => to_kernel(ws, snap, DropReason::UnsupportedProtocol),
                Some(_) => Verdict::Drop(DropReason::UnsupportedProtocol),
                None => Verdict::Drop(DropReason::NoVip),
            }
        }
    }
    if let Some(vi) = c.vip {
        return forward(frame, d, vi, c.hash, ws, snap);
    }
    match reverse_target(frame, d, c.hash, ws, snap) {
        Ok(Back::Conn(idx)) => reply(frame, d, idx, ws, snap),
        Ok(Back::Stateless(b)) => stateless_reply(frame, d, &b, ws, snap),
        Err(v) => v,
    }
}

/// Where a packet not to a VIP goes back through.
enum Back {
    /// A tracked connection's reply (entry number).
    Conn(u32),
    /// A NAT reply with no entry (see [`stateless_bound`]).
    Stateless(conn::Bound),
}

/// Finds what a packet not to a VIP is a reply of, or what becomes of it:
/// the pipeline's policy for such packets, shared by whole packets and
/// first fragments.
#[inline(always)]
fn reverse_target(
    frame: &mut [u8],
    d: &FlowDesc,
    hash: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Result<Back, Verdict> {
    let found = ws
        .conns
        .lookup(hash, Dir::Reverse, |e| conn::is_reply_of(e, &d.key, snap));
    if let Some(idx) = found {
        // An entry past its expiry is dead even if aging has not reached it.
        let now = ws.now;
        if let Some(e) = ws.conns.get(idx).filter(|e| !expired(e.expires, now)) {
            if snap.any_reset && snap.resets(e.vip, e.backend) {
                return Err(reset_conn(frame, d, idx, false, ws, snap));
            }
            return Ok(Back::Conn(idx));
        }
        conn::expire(ws, snap, idx);
    }
    Err(match snap.owned(&d.key.dst) {
        Some(Owned::Vip) => Verdict::Drop(DropReason::NoService),
        Some(Owned::Local(_)) => Verdict::Drop(DropReason::NoConn),
        Some(Owned::Node) => match ws.prober.on_frame(frame, d, snap.mac, &mut ws.stats) {
            Some(ProbeVerdict::Consumed) => Verdict::Consumed,
            Some(ProbeVerdict::Reply(len)) => {
                ws.trim = Some(len);
                Verdict::Reply
            }
            None => to_kernel(ws, snap, DropReason::LocalNotHandled),
        },
        None => match stateless_bound(d, ws, snap) {
            Ok(b) => return Ok(Back::Stateless(b)),
            Err(r) => Verdict::Drop(r),
        },
    })
}

/// The first fragment of a datagram (or an IPv6 atomic fragment), whose
/// descriptor [`wire::parse_fragment`] made: looked up, scheduled and
/// rewritten as a whole packet would be, with the same policy. Also
/// returns what it was given, for the datagram's other fragments; `None`
/// when it did not go out. A SYN proxy connection's fragments are not
/// forwarded (its handshake never fragments; the translation is per
/// segment).
pub(crate) fn first_fragment(
    frame: &mut [u8],
    d: &FlowDesc,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> (Verdict, Option<(conn::Bound, Dir)>) {
    let unsupported = Verdict::Drop(if d.is_v4() {
        DropReason::Ipv4Fragment
    } else {
        DropReason::Ipv6Fragment
    });
    let hash = ws.conns.hash(&d.key);
    let (b, dir) = if let Some(vi) = snap.vip(&d.key.dst, d.key.dport, d.key.proto) {
        if snap.vips.get(vi.index()).is_some_and(|v| v.synproxy) {
            return (unsupported, None);
        }
        let b = match forward_target(frame, d, vi, hash, ws, snap) {
            Err(v) => return (v, None),
            Ok((_, Target::Conn(idx))) => {
                match conn::step_entry(ws, idx, d, Dir::Forward, snap, true) {
                    conn::Stepped::Plain(b) => b,
                    conn::Stepped::Proxied => return (unsupported, None),
                    conn::Stepped::Gone => return (Verdict::Drop(DropReason::NoConn), None),
                }
            }
            Ok((vip, Target::Stateless(b))) => stateless_forward(d, vi, vip, b),
        };
        (b, Dir::Forward)
    } else {
        let b = match reverse_target(frame, d, hash, ws, snap) {
            Err(v) => return (v, None),
            Ok(Back::Conn(idx)) => match conn::step_entry(ws, idx, d, Dir::Reverse, snap, true) {
                conn::Stepped::Plain(b) => b,
                conn::Stepped::Proxied => return (unsupported, None),
                conn::Stepped::Gone => return (Verdict::Drop(DropReason::NoConn), None),
            },
            Ok(Back::Stateless(b)) => b,
        };
        (b, Dir::Reverse)
    };
    let v = match dir {
        Dir::Forward => match snap.vips.get(b.vi.index()) {
            Some(vip) => conn::send(frame, d, vip, &b, ws, snap),
            None => Verdict::Drop(DropReason::NoVip),
        },
        Dir::Reverse => conn::send_back(frame, d, &b, ws, snap),
    };
    (v, (v == Verdict::Forward).then_some((b, dir)))
}

/// Ends connection `idx`, whose backend or VIP is being reset: a client's
/// TCP segment becomes, in place, the RST that tells the client (from the
/// address it wrote to, at the sequence number it expects); anything else
/// is dropped. The entry goes either way, so the client's next connection
/// is scheduled afresh.
#[cold]
fn reset_conn(
    frame: &mut [u8],
    d: &FlowDesc,
    idx: u32,
    from_client: bool,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    ws.stats.event(Event::ConnReset);
    conn::remove(ws, snap, idx);
    if !from_client || !d.is_tcp() || d.tcp_flags & tcp_flags::RST != 0 {
        return Verdict::Drop(DropReason::ConnReset);
    }
    let ack =
        wire::tcp::TcpPacket::new_unchecked(frame.get(d.l4_off as usize..).unwrap_or(&[])).ack();
    let seg = wire::segment::Segment {
        src: (d.key.dst, d.key.dport),
        dst: (d.key.src, d.key.sport),
        seq: ack,
        ack: 0,
        flags: tcp_flags::RST,
        window: 0,
        options: &[],
        ttl: RESET_TTL,
        src_mac: snap.mac,
        dst_mac: crate::flow::Mac(wire::read_array(frame, 6..12)),
    };
    match wire::segment::write(frame, d, &seg) {
        Some(len) => {
            ws.trim = Some(len);
            ws.stats.event(Event::RstSent);
            Verdict::Reply
        }
        None => Verdict::Drop(DropReason::ConnReset),
    }
}

/// TTL / hop limit of the resets [`reset_conn`] writes.
const RESET_TTL: u8 = 64;

/// Where a forward packet goes.
enum Target {
    /// A tracked connection (entry number).
    Conn(u32),
    /// No entry: a backend registry number, chosen by Maglev.
    Stateless(BackendId),
}

fn forward(
    frame: &mut [u8],
    d: &FlowDesc,
    vi: VipId,
    hash: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    match forward_target(frame, d, vi, hash, ws, snap) {
        Ok((vip, Target::Conn(idx))) => forward_conn(frame, d, vip, idx, ws, snap),
        Ok((vip, Target::Stateless(b))) => {
            let b = stateless_forward(d, vi, vip, b);
            conn::send(frame, d, vip, &b, ws, snap)
        }
        Err(v) => v,
    }
}

/// A client packet to VIP `vi` without an entry, bound to backend `b`.
#[inline(always)]
fn stateless_forward(d: &FlowDesc, vi: VipId, vip: &VipInfo, b: BackendId) -> conn::Bound {
    conn::Bound {
        vi,
        backend: b,
        xmit: Xmit::of(vip.mode),
        client: (d.key.src, d.key.sport),
        local: None,
    }
}

/// Finds where a client packet to VIP `vi` goes, or what becomes of it
/// (reset, SYN proxy, dropped): the pipeline's policy for packets to a
/// VIP, shared by whole packets and first fragments.
#[inline(always)]
fn forward_target<'s>(
    frame: &mut [u8],
    d: &FlowDesc,
    vi: VipId,
    hash: u32,
    ws: &mut WorkerState,
    snap: &'s Snapshot,
) -> Result<(&'s VipInfo, Target), Verdict> {
    let Some(vip) = snap.vips.get(vi.index()) else {
        return Err(Verdict::Drop(DropReason::NoVip));
    };
    let key = &d.key;
    let mut found = ws.conns.lookup(hash, Dir::Forward, |e| {
        e.vip == vi && e.client_port == key.sport && e.proto == key.proto && e.client == key.src
    });
    if let Some(idx) = found {
        let stale = ws.conns.get(idx).is_none_or(|e| {
            let fresh_syn = d.is_tcp()
                && d.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN
                && e.state().is_closing();
            fresh_syn || expired(e.expires, ws.now)
        });
        if stale {
            conn::expire(ws, snap, idx);
            found = None;
        }
    }
    let target = match found {
        Some(idx)
            if snap.any_reset
                && ws
                    .conns
                    .get(idx)
                    .is_some_and(|e| snap.resets(e.vip, e.backend)) =>
        {
            return Err(reset_conn(frame, d, idx, true, ws, snap))
        }
        Some(idx) => Target::Conn(idx),
        None if vip.retired => return Err(Verdict::Drop(DropReason::VipRemoved)),
        None if vip.synproxy => {
            return Err(synproxy::path::first_packet(
                frame, d, vi, vip, hash, ws, snap,
            ))
        }
        None => match new_flow(d, vi, vip, hash, ws, snap) {
            Ok(t) => t,
            Err(r) => return Err(Verdict::Drop(r)),
        },
    };
    Ok((vip, target))
}

/// A client packet of tracked connection `idx`; SYN proxy connections
/// take [`forward_proxied`].
#[inline(always)]
fn forward_conn(
    frame: &mut [u8],
    d: &FlowDesc,
    vip: &VipInfo,
    idx: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    match conn::step_entry(ws, idx, d, Dir::Forward, snap, true) {
        conn::Stepped::Plain(b) => conn::send(frame, d, vip, &b, ws, snap),
        conn::Stepped::Proxied => forward_proxied(frame, d, idx, ws, snap),
        conn::Stepped::Gone => Verdict::Drop(DropReason::NoConn),
    }
}

/// A client packet of a SYN proxy connection (held or answered while the
/// backend handshake is pending) or of a connection with a PROXY header
/// (the header sent first); then forwarded and translated.
#[cold]
#[inline(never)]
fn forward_proxied(
    frame: &mut [u8],
    d: &FlowDesc,
    idx: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let flags = ws.conns.get(idx).map_or(0, |e| e.flags);
    if flags & cflags::SYNPROXY != 0 {
        if let Some(v) = synproxy::path::client_pending(frame, d, idx, ws, snap) {
            return v;
        }
    }
    if flags & cflags::PROXY != 0 {
        return proxy_protocol::path::forward(frame, d, idx, ws, snap);
    }
    synproxy::path::forward_spliced(frame, d, idx, ws, snap)
}

/// The first packet of a flow with no entry: schedule and track it, or
/// decide how it goes without state. See the module doc for the policy.
fn new_flow(
    d: &FlowDesc,
    vi: VipId,
    vip: &VipInfo,
    fwd_hash: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Result<Target, DropReason> {
    let tcp = d.is_tcp();
    // A PROXY header connection's packets need its offset, which only its
    // entry knows: never forwarded without one.
    let stateless = Xmit::of(vip.mode).stateless() && !vip.proxy_protocol;
    if tcp && d.tcp_flags & tcp_flags::RST != 0 {
        if !stateless {
            return Err(DropReason::NoConn);
        }
        let b = vip.maglev_backend(&d.key).ok_or(DropReason::NoBackend)?;
        ws.stats.event(Event::StatelessForward);
        return Ok(Target::Stateless(b));
    }
    let midflow = tcp && d.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK) != tcp_flags::SYN;
    if midflow && !stateless {
        return Err(DropReason::NoConn);
    }
    let slot = if midflow {
        vip.maglev_slot(&d.key)
    } else {
        conn::schedule(d, vi, vip, ws)
    }
    .ok_or(DropReason::NoBackend)?;
    let state = ConnState::initial(tcp, d.tcp_flags);
    let flags = if vip.proxy_protocol { cflags::PROXY } else { 0 };
    match conn::open(d, vi, vip, fwd_hash, slot, state, flags, ws, snap) {
        Ok(idx) => {
            ws.stats.event(if midflow {
                Event::MidflowPickup
            } else {
                Event::ConnNew
            });
            Ok(Target::Conn(idx))
        }
        Err(OpenError::Drop(r)) => Err(r),
        Err(OpenError::TableFull) if !stateless => Err(DropReason::ConnTableFull),
        Err(OpenError::TableFull) => {
            let b = vip.maglev_backend(&d.key).ok_or(DropReason::NoBackend)?;
            ws.stats.event(Event::StatelessNew);
            // Their replies come back without an entry for as long as an
            // established connection would live.
            let until = ws
                .now
                .wrapping_add(snap.timeouts.get(ConnState::Established));
            ws.overflow_until = Some(until);
            Ok(Target::Stateless(b))
        }
    }
}

/// A backend's packet of a tracked connection, on its way back to the client.
fn reply(
    frame: &mut [u8],
    d: &FlowDesc,
    idx: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    match conn::step_entry(ws, idx, d, Dir::Reverse, snap, true) {
        conn::Stepped::Plain(b) => conn::send_back(frame, d, &b, ws, snap),
        conn::Stepped::Proxied => reply_proxied(frame, d, idx, ws, snap),
        conn::Stepped::Gone => Verdict::Drop(DropReason::NoConn),
    }
}

/// A backend packet of a SYN proxy connection (the splice may not be
/// complete yet) or of a connection with a PROXY header (which may not have
/// reached the backend yet); then translated after its rewrite.
#[cold]
#[inline(never)]
fn reply_proxied(
    frame: &mut [u8],
    d: &FlowDesc,
    idx: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let flags = ws.conns.get(idx).map_or(0, |e| e.flags);
    if flags & cflags::SYNPROXY != 0 {
        if let Some(v) = synproxy::path::backend_pending(frame, d, idx, ws, snap) {
            return v;
        }
    }
    if flags & cflags::PROXY != 0 {
        return proxy_protocol::path::reply(frame, d, idx, ws, snap);
    }
    let v = conn::reply(frame, d, idx, ws, snap);
    if v == Verdict::Forward {
        conn::translate(frame, d, idx, Dir::Reverse, ws);
    }
    v
}

/// How a NAT backend's packet with no entry goes back (see the module
/// doc), or why it does not.
fn stateless_bound(
    d: &FlowDesc,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Result<conn::Bound, DropReason> {
    let Some((vi, backend_id)) = snap.nat_reply_vip(&d.key.src, d.key.sport, d.key.proto) else {
        return Err(DropReason::NoVip);
    };
    // Only while flows may have gone out without an entry; otherwise a
    // backend's packet with no connection is not a reply of ours.
    if ws.overflow_until.is_none_or(|t| expired(t, ws.now)) {
        ws.overflow_until = None;
        return Err(DropReason::NoConn);
    }
    Ok(conn::Bound {
        vi,
        backend: backend_id,
        xmit: Xmit::Nat,
        client: (d.key.dst, d.key.dport),
        local: None,
    })
}

/// A NAT backend's packet with no entry, translated back.
fn stateless_reply(
    frame: &mut [u8],
    d: &FlowDesc,
    b: &conn::Bound,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let v = conn::send_back(frame, d, b, ws, snap);
    if v == Verdict::Forward {
        ws.stats.event(Event::StatelessReply);
    }
    v
}
