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
//! * A VIP with `synproxy`: no packet reaches a backend before the client
//!   completed a handshake with rampart; see [`crate::synproxy`]. Its new
//!   flows are never forwarded without state.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::buf::PacketBuf;
use crate::config::Mode;
use crate::conntrack::{
    addr_hash, expired, flags as cflags, flow_hash, ConnEntry, ConnState, ConnTable, Dir,
};
use crate::flow::{proto, tcp_flags, FlowDesc, FlowKey, L3Kind};
use crate::outbox::Outbox;
use crate::probe::{ProbeVerdict, Prober};
use crate::sched::Scheduler;
use crate::snapshot::{Owned, Snapshot, VipInfo, MAGLEV_SEED};
use crate::stats::{DropReason, Event, WorkerStats};
use crate::synproxy::{self, SynproxyState};
use crate::wire;
use crate::xmit;
use crate::xmit::lport::LocalPorts;

/// What to do with the frame after [`process`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Rewritten for its next hop: transmit.
    Forward,
    /// Turned into an answer (ARP reply, neighbor advertisement, SYN
    /// cookie, SYN proxy ACK): transmit.
    Reply,
    /// Taken over by the datapath (a SYN proxy ACK or a held packet); what
    /// it leads to goes out through the worker's [`Outbox`]. Not a drop.
    Consumed,
    Drop(DropReason),
}

/// Entries the aging sweep visits per call of [`WorkerState::age`]. The poll
/// loop calls it on every poll, empty ones included, so a busy worker pays a
/// few ns per packet for it and an idle one sweeps a 1M table in well under
/// a second.
pub const AGING_BUDGET: u32 = 64;

/// Everything one worker owns. Nothing in here is shared.
pub struct WorkerState {
    pub id: u16,
    pub workers: u16,
    pub conns: ConnTable,
    /// One scheduler per VIP (least-connections counts are per worker).
    pub scheds: Vec<Scheduler>,
    pub lports: LocalPorts,
    pub stats: WorkerStats,
    /// Seconds on the worker clock (pcap timestamps in replay).
    pub(crate) now: u32,
    /// The same clock in nanoseconds (rate limits, TCP timestamps).
    pub(crate) now_ns: u64,
    /// Frames this worker originates; the worker sends and clears it after
    /// every burst.
    pub outbox: Outbox,
    /// SYN proxy state, when a VIP uses it.
    pub synproxy: Option<Box<SynproxyState>>,
    /// Set by a handler that made the frame shorter (the new length).
    pub(crate) trim: Option<usize>,
    /// Until this second, replies without an entry may be flows that went
    /// stateless because the table was full (see [`stateless_reply`]).
    overflow_until: Option<u32>,
    /// Health-check probes this worker sends and the answers it recognizes.
    pub prober: Prober,
    /// The snapshot generation this state was last fitted to.
    generation: u64,
    /// Backend numbers behind each scheduler, as of `generation`.
    sched_ids: Vec<Vec<u32>>,
    seed: u64,
}

impl WorkerState {
    /// State for worker `id` of `workers`; `seed` keys the connection hash.
    pub fn new(snap: &Snapshot, id: u16, workers: u16, seed: u64) -> WorkerState {
        let synproxy = snap
            .has_synproxy()
            .then(|| Box::new(synproxy::path::new_state(snap, snap.conn_capacity, seed)));
        WorkerState {
            id,
            workers,
            conns: ConnTable::new(snap.conn_capacity, seed),
            scheds: snap
                .vips
                .iter()
                .map(|v| Scheduler::new(v.sched, &v.weights))
                .collect(),
            lports: LocalPorts::new(snap.local_addrs.len(), id, workers),
            stats: WorkerStats::new(snap.vips.len(), snap.backends.len()),
            now: 0,
            now_ns: 0,
            outbox: Outbox::new(outbox_frames(snap, synproxy.is_some())),
            synproxy,
            trim: None,
            overflow_until: None,
            prober: Prober::new(),
            generation: snap.generation,
            sched_ids: snap.vips.iter().map(|v| v.backends.clone()).collect(),
            seed,
        }
    }

    /// Fits this worker's own state to a snapshot the control thread
    /// published after the one it last saw. Called before every burst; one
    /// compare when nothing changed.
    #[inline]
    pub fn adopt(&mut self, snap: &Snapshot) {
        if snap.generation != self.generation {
            self.adopt_new(snap);
        }
    }

    /// Schedulers of changed VIPs are rebuilt, taking over the
    /// least-connection counts of the backends they keep; new VIPs,
    /// backends and local addresses get their counters and port pools; the
    /// SYN proxy state is set up when a VIP first needs it. Connections are
    /// untouched: VIP and backend numbers are stable across snapshots.
    #[cold]
    fn adopt_new(&mut self, snap: &Snapshot) {
        let old = std::mem::take(&mut self.scheds);
        let old_ids = std::mem::take(&mut self.sched_ids);
        for (i, v) in snap.vips.iter().enumerate() {
            let prev = old.get(i).zip(old_ids.get(i));
            let s = match prev {
                Some((s, ids))
                    if s.kind() == v.sched && *ids == v.backends && s.weights() == v.weights =>
                {
                    s.clone()
                }
                _ => {
                    let mut s = Scheduler::new(v.sched, &v.weights);
                    if let Some((p, ids)) = prev {
                        for (j, b) in v.backends.iter().enumerate() {
                            if let Some(k) = ids.iter().position(|x| x == b) {
                                s.set_active(j as u32, p.active(k as u32));
                            }
                        }
                    }
                    s
                }
            };
            self.scheds.push(s);
            self.sched_ids.push(v.backends.clone());
        }
        self.stats.vips.resize(
            snap.vips.len().max(self.stats.vips.len()),
            Default::default(),
        );
        self.stats.backends.resize(
            snap.backends.len().max(self.stats.backends.len()),
            Default::default(),
        );
        self.lports.grow(snap.local_addrs.len());
        if snap.has_synproxy() && self.synproxy.is_none() {
            let mut sp = synproxy::path::new_state(snap, self.conns.capacity(), self.seed);
            sp.secrets.set_clock(self.now);
            self.synproxy = Some(Box::new(sp));
            self.outbox = Outbox::new(outbox_frames(snap, true));
        }
        self.generation = snap.generation;
    }

    /// Advances the worker clock (seconds; wraps).
    #[inline]
    pub fn set_clock(&mut self, now_secs: u32) {
        self.set_clock_ns(u64::from(now_secs) * 1_000_000_000);
    }

    /// Advances the worker clock with nanosecond resolution.
    #[inline]
    pub fn set_clock_ns(&mut self, now_ns: u64) {
        self.now_ns = now_ns;
        self.now = (now_ns / 1_000_000_000) as u32;
        if let Some(sp) = self.synproxy.as_mut() {
            sp.secrets.set_clock(self.now);
        }
    }

    #[inline]
    pub fn clock(&self) -> u32 {
        self.now
    }

    #[inline]
    pub fn clock_ns(&self) -> u64 {
        self.now_ns
    }

    /// One bounded step of connection aging; call once per burst.
    pub fn age(&mut self, snap: &Snapshot) -> u32 {
        self.age_with_budget(snap, AGING_BUDGET)
    }

    /// Aging with an explicit budget (tests and shutdown sweeps). Also
    /// resends SYNs to backends that have not answered yet.
    pub fn age_with_budget(&mut self, snap: &Snapshot, budget: u32) -> u32 {
        if self.synproxy.is_some() {
            synproxy::path::retry_pending(self, snap);
        }
        let WorkerState {
            conns,
            scheds,
            lports,
            stats,
            now,
            synproxy,
            ..
        } = self;
        let n = conns.expire(*now, budget, |idx, e| {
            release(idx, e, snap, scheds, lports, synproxy.as_deref_mut(), stats)
        });
        stats.event_n(Event::ConnExpired, n as u64);
        n
    }
}

/// Outbox room kept for frames the timers originate (SYN resends, resets,
/// health-check probes).
const OUTBOX_TIMERS: usize = 64;

/// Outbox frames per burst: with the SYN proxy, a backend SYN or the held
/// packets it releases per burst frame; always the timers' room.
fn outbox_frames(snap: &Snapshot, synproxy: bool) -> usize {
    if synproxy {
        MAX_BURST * (1 + snap.synproxy.hold_packets as usize) + OUTBOX_TIMERS
    } else {
        OUTBOX_TIMERS
    }
}

/// Gives back what a connection held when its entry goes away.
fn release(
    idx: u32,
    e: &ConnEntry,
    snap: &Snapshot,
    scheds: &mut [Scheduler],
    lports: &mut LocalPorts,
    sp: Option<&mut SynproxyState>,
    stats: &mut WorkerStats,
) {
    if let Some(c) = stats.vips.get_mut(e.vip as usize) {
        c.closed += 1;
    }
    if let Some(c) = stats.backends.get_mut(e.backend as usize) {
        c.closed += 1;
    }
    if e.flags & cflags::SYNPROXY != 0 {
        if let Some(sp) = sp {
            sp.release(idx);
        }
    }
    give_back_port(e, lports);
    if let (Some(vip), Some(s)) = (
        snap.vips.get(e.vip as usize),
        scheds.get_mut(e.vip as usize),
    ) {
        if let Some(i) = vip.backends.iter().position(|b| *b == e.backend) {
            s.conn_closed(i as u32);
        }
    }
}

pub(crate) fn remove_conn(ws: &mut WorkerState, snap: &Snapshot, idx: u32) {
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
    let v = match classify(frame, ws, snap, &mut c) {
        Ok(()) => handle(frame, &c, ws, snap),
        Err(r) => Verdict::Drop(r),
    };
    if let Some(len) = ws.trim.take() {
        buf.truncate(len);
    }
    count(ws, rx_len, buf.data().len() as u64, v);
    v
}

/// Pipeline distance of [`process_burst`]: entries are prefetched this many
/// packets ahead of the one being handled, index slots twice as far.
const LOOKAHEAD: usize = 8;

/// Largest burst [`process_burst`] takes at once.
pub const MAX_BURST: usize = 64;

/// Runs a burst, writing one verdict per frame into `verdicts`; returns how
/// many frames were processed (`min(bufs, verdicts, MAX_BURST)`).
///
/// Same result as [`process`] on each frame in turn, but faster with a large
/// connection table: all frames are parsed and hashed first and their index
/// slots prefetched, then their entries prefetched, then handled, so the
/// cache misses of a burst overlap instead of queueing one after another
/// (DPDK's usual prefetch pipeline).
pub fn process_burst<B: PacketBuf>(
    bufs: &mut [B],
    verdicts: &mut [Verdict],
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> usize {
    let n = bufs.len().min(verdicts.len()).min(MAX_BURST);
    let mut pre = [Classified::default(); MAX_BURST];
    let mut refused: [Option<DropReason>; MAX_BURST] = [None; MAX_BURST];
    for ((c, r), buf) in pre
        .iter_mut()
        .zip(refused.iter_mut())
        .zip(bufs.iter())
        .take(n)
    {
        *r = classify(buf.data(), ws, snap, c).err();
    }
    // A software pipeline over the burst: while packet i is handled, the
    // index slot of packet i + 2L and the entry of packet i + L are on their
    // way. Keeping only ~2L loads in flight stays within the core's miss
    // buffers, which prefetching the whole burst at once would overrun.
    let live = |i: usize| match (pre.get(i), refused.get(i)) {
        (Some(c), Some(None)) if c.tracked => Some(c),
        _ => None,
    };
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
    for (i, (((c, r), buf), out)) in pre
        .iter()
        .zip(refused.iter())
        .zip(bufs.iter_mut())
        .zip(verdicts.iter_mut())
        .take(n)
        .enumerate()
    {
        prefetch_index(ws, i + 2 * LOOKAHEAD);
        prefetch_entry(ws, i + LOOKAHEAD);
        ws.outbox.set_position(i);
        let frame = buf.data_mut();
        let rx_len = frame.len() as u64;
        let v = match r {
            None => handle(frame, c, ws, snap),
            Some(r) => Verdict::Drop(*r),
        };
        if let Some(len) = ws.trim.take() {
            buf.truncate(len);
        }
        count(ws, rx_len, buf.data().len() as u64, v);
        *out = v;
    }
    n
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
        Verdict::Consumed => ws.stats.consumed += 1,
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
    vip: Option<u16>,
    /// Connection-table hash of the packet's 5-tuple (when `tracked`).
    hash: u32,
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

fn arp(frame: &mut [u8], d: &FlowDesc, ws: &mut WorkerState, snap: &Snapshot) -> Verdict {
    const REQUEST: u16 = 1;
    if d.arp_op == REQUEST
        && snap.owned(&d.key.dst).is_some()
        && wire::arp::arp_reply_in_place(frame, d, snap.mac)
    {
        ws.stats.event(Event::ArpReply);
        return Verdict::Reply;
    }
    Verdict::Drop(DropReason::ArpNotForUs)
}

/// ICMPv6 types of neighbor discovery (RFC 4861 §4).
const ND_ROUTER_SOLICIT: u8 = 133;
const ND_REDIRECT: u8 = 137;
const ND_NEIGHBOR_SOLICIT: u8 = 135;

fn icmp(frame: &mut [u8], d: &FlowDesc, ws: &mut WorkerState, snap: &Snapshot) -> Verdict {
    if d.key.proto == proto::ICMPV6 && (ND_ROUTER_SOLICIT..=ND_REDIRECT).contains(&d.icmp_type) {
        if d.icmp_type == ND_NEIGHBOR_SOLICIT {
            let ours = wire::nd::nd_target(frame, d).is_some_and(|t| snap.owned(&t).is_some());
            if ours && wire::nd::nd_advert_in_place(frame, d, snap.mac) {
                ws.stats.event(Event::NdAdvert);
                return Verdict::Reply;
            }
        }
        return Verdict::Drop(DropReason::NdNotForUs);
    }
    if snap.owned(&d.key.dst).is_some() {
        Verdict::Drop(DropReason::IcmpUnsupported)
    } else {
        Verdict::Drop(DropReason::NoVip)
    }
}

fn ip(frame: &mut [u8], c: &Classified, ws: &mut WorkerState, snap: &Snapshot) -> Verdict {
    let d = &c.d;
    match d.key.proto {
        proto::TCP | proto::UDP => {}
        proto::ICMP | proto::ICMPV6 => return icmp(frame, d, ws, snap),
        _ => {
            return Verdict::Drop(if snap.owned(&d.key.dst).is_some() {
                DropReason::UnsupportedProtocol
            } else {
                DropReason::NoVip
            })
        }
    }
    if let Some(vi) = c.vip {
        return forward(frame, d, vi, c.hash, ws, snap);
    }
    let found = ws
        .conns
        .lookup(c.hash, Dir::Reverse, |e| is_reply_of(e, &d.key, snap));
    if let Some(idx) = found {
        // An entry past its expiry is dead even if aging has not reached it.
        let now = ws.now;
        if let Some(e) = ws.conns.get(idx).filter(|e| !expired(e.expires, now)) {
            if snap.any_reset && snap.resets(e.vip, e.backend) {
                return reset_conn(frame, d, idx, false, ws, snap);
            }
            return reply(frame, d, idx, ws, snap);
        }
        remove_conn(ws, snap, idx);
    }
    match snap.owned(&d.key.dst) {
        Some(Owned::Vip) => Verdict::Drop(DropReason::NoService),
        Some(Owned::Local(_)) => Verdict::Drop(DropReason::NoConn),
        Some(Owned::Node) => match ws.prober.on_frame(frame, d, snap.mac, &mut ws.stats) {
            Some(ProbeVerdict::Consumed) => Verdict::Consumed,
            Some(ProbeVerdict::Reply(len)) => {
                ws.trim = Some(len);
                Verdict::Reply
            }
            None => Verdict::Drop(DropReason::LocalNotHandled),
        },
        None => stateless_reply(frame, d, ws, snap),
    }
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
    remove_conn(ws, snap, idx);
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

/// Whether `key` (a packet from a backend) is the reply direction of `e`.
#[inline]
fn is_reply_of(e: &ConnEntry, key: &FlowKey, snap: &Snapshot) -> bool {
    let Some(b) = snap.backends.get(e.backend as usize) else {
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

/// Where a forward packet goes.
enum Target {
    /// A tracked connection (entry number).
    Conn(u32),
    /// No entry: a backend registry number, chosen by Maglev.
    Stateless(u32),
}

fn forward(
    frame: &mut [u8],
    d: &FlowDesc,
    vi: u16,
    hash: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let Some(vip) = snap.vips.get(vi as usize) else {
        return Verdict::Drop(DropReason::NoVip);
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
            remove_conn(ws, snap, idx);
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
            return reset_conn(frame, d, idx, true, ws, snap)
        }
        Some(idx) => Target::Conn(idx),
        None if vip.retired => return Verdict::Drop(DropReason::VipRemoved),
        None if vip.synproxy => {
            return synproxy::path::first_packet(frame, d, vi, vip, hash, ws, snap)
        }
        None => match new_flow(d, vi, vip, hash, ws, snap) {
            Ok(t) => t,
            Err(r) => return Verdict::Drop(r),
        },
    };
    match target {
        Target::Conn(idx) => forward_conn(frame, d, vi, vip, idx, ws, snap),
        Target::Stateless(b) => send_forward(frame, d, vi, vip, b, None, ws, snap),
    }
}

/// A client packet of tracked connection `idx`: state and rewrite; SYN
/// proxy connections take [`forward_proxied`].
#[inline(always)]
pub(crate) fn forward_conn(
    frame: &mut [u8],
    d: &FlowDesc,
    vi: u16,
    vip: &VipInfo,
    idx: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let now = ws.now;
    let Some(e) = ws.conns.get_mut(idx) else {
        return Verdict::Drop(DropReason::NoConn);
    };
    if e.flags & cflags::SYNPROXY != 0 {
        return forward_proxied(frame, d, vi, vip, idx, ws, snap);
    }
    let (backend, local) = advance_forward(e, d, now, snap);
    send_forward(frame, d, vi, vip, backend, local, ws, snap)
}

/// A client packet of a SYN proxy connection: held or answered while the
/// backend handshake is pending, else forwarded and translated.
#[cold]
#[inline(never)]
fn forward_proxied(
    frame: &mut [u8],
    d: &FlowDesc,
    vi: u16,
    vip: &VipInfo,
    idx: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    if let Some(v) = synproxy::path::client_pending(frame, d, idx, ws, snap) {
        return v;
    }
    let now = ws.now;
    let Some(e) = ws.conns.get_mut(idx) else {
        return Verdict::Drop(DropReason::NoConn);
    };
    let (backend, local) = advance_forward(e, d, now, snap);
    let v = send_forward(frame, d, vi, vip, backend, local, ws, snap);
    if v == Verdict::Forward {
        synproxy::path::translate(frame, d, idx, Dir::Forward, ws);
    }
    v
}

/// Moves a connection's state for a client packet; returns its backend and
/// FullNAT local address and port.
#[inline(always)]
fn advance_forward(
    e: &mut ConnEntry,
    d: &FlowDesc,
    now: u32,
    snap: &Snapshot,
) -> (u32, Option<(crate::flow::Addr, u16)>) {
    advance(e, d, Dir::Forward, now, snap);
    let local = if e.flags & cflags::HAS_LPORT != 0 {
        snap.local_addrs
            .get(e.laddr as usize)
            .map(|a| (*a, e.lport))
    } else {
        None
    };
    (e.backend, local)
}

/// Rewrites a client packet for `backend_id` in the VIP's mode.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn send_forward(
    frame: &mut [u8],
    d: &FlowDesc,
    vi: u16,
    vip: &VipInfo,
    backend_id: u32,
    local: Option<(crate::flow::Addr, u16)>,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let Some(backend) = snap.backends.get(backend_id as usize) else {
        return Verdict::Drop(DropReason::NoBackend);
    };
    let len = frame.len() as u64;
    let bkey = (backend.key.addr, backend.key.port);
    match vip.mode {
        Mode::Nat => xmit::nat_in(frame, d, bkey, snap.mac, backend.mac),
        Mode::FullNat => {
            let Some(local) = local else {
                return Verdict::Drop(DropReason::NoConn);
            };
            xmit::fullnat_in(frame, d, local, bkey, snap.mac, backend.mac)
        }
        Mode::Dr => {
            if !backend.adjacent {
                return Verdict::Drop(DropReason::DrNoNeighbor);
            }
            xmit::dr(frame, snap.mac, backend.mac)
        }
    }
    count_flow(&mut ws.stats, vi, backend_id, len, Dir::Forward);
    Verdict::Forward
}

/// A tracked connection saw a packet going `dir`: move its state and push
/// its expiry out by the new state's timeout.
#[inline]
fn advance(e: &mut ConnEntry, d: &FlowDesc, dir: Dir, now: u32, snap: &Snapshot) {
    let st = if d.is_tcp() {
        e.state().next(dir, d.tcp_flags)
    } else {
        ConnState::Udp
    };
    e.state = st as u8;
    e.expires = now.wrapping_add(snap.timeouts.get(st));
}

/// Counts a forwarded frame for its VIP and backend, towards the backend
/// (`Dir::Forward`) or back to the client.
#[inline]
pub(crate) fn count_flow(stats: &mut WorkerStats, vi: u16, backend: u32, len: u64, dir: Dir) {
    let (vip, be) = (
        stats.vips.get_mut(vi as usize),
        stats.backends.get_mut(backend as usize),
    );
    for c in [vip, be].into_iter().flatten() {
        if dir == Dir::Forward {
            c.packets_in += 1;
            c.bytes_in += len;
        } else {
            c.packets_out += 1;
            c.bytes_out += len;
        }
    }
}

/// The first packet of a flow with no entry: schedule and track it, or
/// decide how it goes without state. See the module doc for the policy.
fn new_flow(
    d: &FlowDesc,
    vi: u16,
    vip: &VipInfo,
    fwd_hash: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Result<Target, DropReason> {
    let tcp = d.is_tcp();
    let fullnat = vip.mode == Mode::FullNat;
    if tcp && d.tcp_flags & tcp_flags::RST != 0 {
        if fullnat {
            return Err(DropReason::NoConn);
        }
        let b = vip.maglev_backend(&d.key).ok_or(DropReason::NoBackend)?;
        ws.stats.event(Event::StatelessForward);
        return Ok(Target::Stateless(b));
    }
    let midflow = tcp && d.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK) != tcp_flags::SYN;
    if midflow && fullnat {
        return Err(DropReason::NoConn);
    }
    let slot = if midflow {
        vip.maglev.lookup(flow_hash(&d.key, MAGLEV_SEED))
    } else {
        schedule(d, vi, vip, ws)
    }
    .ok_or(DropReason::NoBackend)?;
    let state = ConnState::initial(tcp, d.tcp_flags);
    match open_conn(d, vi, vip, fwd_hash, slot, state, 0, ws, snap) {
        Ok(idx) => {
            ws.stats.event(if midflow {
                Event::MidflowPickup
            } else {
                Event::ConnNew
            });
            Ok(Target::Conn(idx))
        }
        Err(OpenError::Drop(r)) => Err(r),
        Err(OpenError::TableFull) if fullnat => Err(DropReason::ConnTableFull),
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

/// The VIP's scheduler's choice for a new flow (a scheduler slot).
pub(crate) fn schedule(d: &FlowDesc, vi: u16, vip: &VipInfo, ws: &mut WorkerState) -> Option<u32> {
    ws.scheds.get_mut(vi as usize)?.pick(
        &vip.maglev,
        flow_hash(&d.key, MAGLEV_SEED),
        addr_hash(&d.key.src, MAGLEV_SEED),
    )
}

/// Why [`open_conn`] made no entry.
pub(crate) enum OpenError {
    Drop(DropReason),
    /// Every entry is taken; the caller decides whether the flow can go
    /// without state.
    TableFull,
}

/// Creates the entry for a new flow of `vip` to scheduler slot `slot`:
/// FullNAT port, reply key (a live connection holding it refuses the flow),
/// least-connections and per-VIP/backend counts. Returns the entry number.
#[allow(clippy::too_many_arguments)]
pub(crate) fn open_conn(
    d: &FlowDesc,
    vi: u16,
    vip: &VipInfo,
    fwd_hash: u32,
    slot: u32,
    state: ConnState,
    flags: u8,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Result<u32, OpenError> {
    let no_backend = OpenError::Drop(DropReason::NoBackend);
    let backend_id = *vip.backends.get(slot as usize).ok_or(no_backend)?;
    let backend = snap
        .backends
        .get(backend_id as usize)
        .ok_or(OpenError::Drop(DropReason::NoBackend))?;
    if vip.mode == Mode::Dr && !backend.adjacent {
        // Nothing would reach the backend: keep no entry for it.
        return Err(OpenError::Drop(DropReason::DrNoNeighbor));
    }

    let mut entry = ConnEntry {
        client: d.key.src,
        client_port: d.key.sport,
        fwd_hash,
        backend: backend_id,
        vip: vi,
        proto: d.key.proto,
        state: state as u8,
        flags,
        ..ConnEntry::default()
    };
    entry.expires = ws.now.wrapping_add(snap.timeouts.get(state));

    // The reply direction's key, as the backend will send it.
    let reply_key = match vip.mode {
        Mode::Dr => None,
        Mode::Nat => Some(FlowKey {
            src: backend.key.addr,
            dst: d.key.src,
            sport: backend.key.port,
            dport: d.key.sport,
            proto: d.key.proto,
        }),
        Mode::FullNat => {
            let (laddr, lport) = ws
                .lports
                .alloc(&vip.local_addrs)
                .ok_or(OpenError::Drop(DropReason::FullnatPortsExhausted))?;
            entry.laddr = laddr;
            entry.lport = lport;
            entry.flags |= cflags::HAS_LPORT;
            let local = snap
                .local_addrs
                .get(laddr as usize)
                .copied()
                .unwrap_or_default();
            Some(FlowKey {
                src: backend.key.addr,
                dst: local,
                sport: backend.key.port,
                dport: lport,
                proto: d.key.proto,
            })
        }
    };
    if let Some(rk) = reply_key {
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
                remove_conn(ws, snap, other);
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
            if let Some(s) = ws.scheds.get_mut(vi as usize) {
                s.conn_opened(slot);
            }
            if let Some(c) = ws.stats.vips.get_mut(vi as usize) {
                c.connections += 1;
            }
            if let Some(c) = ws.stats.backends.get_mut(backend_id as usize) {
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

pub(crate) fn give_back_port(e: &ConnEntry, lports: &mut LocalPorts) {
    if e.flags & cflags::HAS_LPORT != 0 {
        lports.release(e.laddr, e.lport);
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
    let proxied = ws
        .conns
        .get(idx)
        .is_some_and(|e| e.flags & cflags::SYNPROXY != 0);
    if proxied {
        return reply_proxied(frame, d, idx, ws, snap);
    }
    send_reply(frame, d, idx, ws, snap)
}

/// A backend packet of a SYN proxy connection: the splice may not be
/// complete yet; once it is, the packet is translated after its rewrite.
#[cold]
#[inline(never)]
fn reply_proxied(
    frame: &mut [u8],
    d: &FlowDesc,
    idx: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    if let Some(v) = synproxy::path::backend_pending(frame, d, idx, ws, snap) {
        return v;
    }
    let v = send_reply(frame, d, idx, ws, snap);
    if v == Verdict::Forward {
        synproxy::path::translate(frame, d, idx, Dir::Reverse, ws);
    }
    v
}

/// Moves the state of connection `idx` and rewrites its backend's packet
/// back to the client.
#[inline(always)]
fn send_reply(
    frame: &mut [u8],
    d: &FlowDesc,
    idx: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let now = ws.now;
    let Some(e) = ws.conns.get_mut(idx) else {
        return Verdict::Drop(DropReason::NoConn);
    };
    advance(e, d, Dir::Reverse, now, snap);
    let (vi, backend, client, client_port, fullnat) = (
        e.vip,
        e.backend,
        e.client,
        e.client_port,
        e.flags & cflags::HAS_LPORT != 0,
    );
    let Some(vip) = snap.vips.get(vi as usize) else {
        return Verdict::Drop(DropReason::NoVip);
    };
    let len = frame.len() as u64;
    let dst_mac = snap.next_hop(&client);
    if fullnat {
        xmit::fullnat_out(
            frame,
            d,
            (vip.addr, vip.port),
            (client, client_port),
            snap.mac,
            dst_mac,
        );
    } else {
        xmit::nat_out(frame, d, (vip.addr, vip.port), snap.mac, dst_mac);
    }
    count_flow(&mut ws.stats, vi, backend, len, Dir::Reverse);
    Verdict::Forward
}

/// A NAT backend's packet with no entry (see the module doc).
fn stateless_reply(
    frame: &mut [u8],
    d: &FlowDesc,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let Some((vi, backend)) = snap.nat_reply_vip(&d.key.src, d.key.sport, d.key.proto) else {
        return Verdict::Drop(DropReason::NoVip);
    };
    // Only while flows may have gone out without an entry; otherwise a
    // backend's packet with no connection is not a reply of ours.
    if ws.overflow_until.is_none_or(|t| expired(t, ws.now)) {
        ws.overflow_until = None;
        return Verdict::Drop(DropReason::NoConn);
    }
    let Some(vip) = snap.vips.get(vi as usize) else {
        return Verdict::Drop(DropReason::NoVip);
    };
    let len = frame.len() as u64;
    let dst_mac = snap.next_hop(&d.key.dst);
    xmit::nat_out(frame, d, (vip.addr, vip.port), snap.mac, dst_mac);
    ws.stats.event(Event::StatelessReply);
    count_flow(&mut ws.stats, vi, backend, len, Dir::Reverse);
    Verdict::Forward
}
