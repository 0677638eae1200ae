//! IP fragments (RFC 791 §2.3 and §3.2, RFC 8200 §4.5), forwarded without
//! reassembly: every fragment of a datagram goes where its first fragment's
//! flow went, rewritten the same way.
//!
//! Only the first fragment (offset 0) carries the TCP or UDP header, so only
//! it can be scheduled or matched to a connection. It goes through the
//! pipeline as any packet (its transport checksum, updated incrementally,
//! covers the whole datagram and stays right), and what it was given — the
//! connection's bound transform and ends, and the direction — is written
//! into this worker's [`FragTable`] under the datagram's identity (source,
//! destination, identification, protocol). The fragments after it carry no
//! transport header: they get the same IP header and frame changes from
//! [`crate::xmit::Forwarding::inbound_fragment`] / `outbound_fragment`.
//!
//! A fragment that comes before its first is held, copied into a bounded
//! per-worker pool ([`Held`]), for at most `fragments.timeout_ms`; the
//! first fragment's arrival releases the held ones, rewritten, through the
//! worker's outbox right after it. One that never sees its first is dropped
//! as `fragment_timeout`.
//!
//! What cannot be forwarded consistently is dropped, each with its reason:
//! a fragment that overlaps another of its datagram (RFC 5722: that one and
//! every later one, as the datagram is spoiled; a backend could reassemble
//! overlapping data into something other than what was scheduled), an exact
//! duplicate, a first fragment without the whole transport header (RFC
//! 7112), data past 65535 bytes or past the end the last fragment set. An
//! IPv6 atomic fragment (offset 0, no more fragments; RFC 6946) is a whole
//! datagram and goes as one, with no table entry.
//!
//! Bounds: the table has `fragments.table_size` entries (a power of two),
//! each found within [`PROBE`] slots of its hash, and tracks at most
//! [`MAX_FRAGS`] fragments per datagram; the pool holds `fragments.max_held`
//! frames of at most [`HOLD_ROOM`] bytes. All of it is allocated when the
//! worker starts. A flood of fragments fills the table and the pool and
//! then drops (`fragment_table_full`, `fragment_hold_full`) for at most
//! one timeout; whole packets never touch either.
//!
//! Several workers: every fragment of a datagram reaches the same worker,
//! steered by addresses and identification ([`owner`]), since only the
//! first carries ports. The connection, though, belongs to the worker its
//! ports name ([`crate::io::steer`]). When that is another worker, this one
//! records that worker for the datagram and hands it the first fragment and
//! everything after it (held ones included, in order); the owner handles
//! them as above. Handed frames are never steered again, so a datagram
//! crosses at most once.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::config::Fragments;
use crate::conn::Bound;
use crate::conntrack::Dir;
use crate::flow::{Addr, FlowDesc, FlowKey};
use crate::outbox::FRAME_ROOM;
use crate::snapshot::Snapshot;
use crate::state::{Verdict, WorkerState};
use crate::stats::{DropReason, Event, WorkerStats};
use crate::xmit::{Front, Tx, FRONT_MAX};

/// A fragment's place in its datagram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Frag {
    /// Identification: IPv4's 16 bits, IPv6's 32.
    pub id: u32,
    /// Offset of the fragment's data in the datagram, bytes.
    pub offset: u16,
    /// Bytes of data the fragment carries.
    pub len: u16,
    /// More fragments follow (MF / M).
    pub more: bool,
}

impl Frag {
    #[inline]
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }

    /// An IPv6 fragment header around a whole datagram (RFC 6946).
    #[inline]
    pub fn is_atomic(&self) -> bool {
        self.offset == 0 && !self.more
    }

    fn end(&self) -> u32 {
        u32::from(self.offset) + u32::from(self.len)
    }
}

/// A datagram's identity: what a receiver reassembles by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragKey {
    pub src: Addr,
    pub dst: Addr,
    pub id: u32,
    pub proto: u8,
}

impl FragKey {
    pub fn of(d: &FlowDesc, f: &Frag) -> FragKey {
        FragKey {
            src: d.key.src,
            dst: d.key.dst,
            id: f.id,
            proto: d.key.proto,
        }
    }

    fn hash(&self, seed: u64) -> u64 {
        let s = u128::from_be_bytes(self.src.0);
        let d = u128::from_be_bytes(self.dst.0);
        let mut h = seed
            ^ (s as u64)
            ^ ((s >> 64) as u64).rotate_left(17)
            ^ (d as u64).rotate_left(31)
            ^ ((d >> 64) as u64).rotate_left(47)
            ^ (u64::from(self.id) << 8 | u64::from(self.proto));
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// The worker (of `workers`) every fragment of a datagram from `src` to
/// `dst` with identification `id` is steered to. Stable across processes,
/// as [`crate::io::steer::client_owner`] is.
#[inline]
pub fn owner(src: &Addr, dst: &Addr, id: u32, workers: u16) -> u16 {
    if workers <= 1 {
        return 0;
    }
    let key = FragKey {
        src: *src,
        dst: *dst,
        id,
        proto: 0,
    };
    (key.hash(0) % u64::from(workers)) as u16
}

/// What a datagram's first fragment was given, for the fragments after it.
#[derive(Clone, Copy)]
pub(crate) struct Decision {
    pub bound: Bound,
    pub dir: Dir,
    /// The first fragment's 5-tuple (a tunnel's outer header hashes it).
    pub key: FlowKey,
}

/// Where a datagram stands.
#[derive(Clone, Copy)]
pub(crate) enum Fate {
    /// Its first fragment has not been seen: later ones are held.
    Pending,
    /// Its first fragment went out: the others follow it.
    Decided(Decision),
    /// Its connection belongs to another worker, which got the first
    /// fragment: the others are handed there.
    Owner(u16),
    /// Its first fragment was dropped: so are the others.
    Dropped,
    /// Overlapping or inconsistent fragments: every further one is dropped.
    Spoiled(DropReason),
}

/// Fragments tracked per datagram.
pub const MAX_FRAGS: usize = 64;
/// Slots a datagram's entry may be found in, from its hash on.
pub const PROBE: usize = 8;
/// Largest frame the pool holds: an outbox slot with room for a tunnel's
/// outer headers, so a released fragment always fits one.
pub const HOLD_ROOM: usize = FRAME_ROOM - FRONT_MAX;

const NONE: u32 = u32::MAX;

struct Slot {
    used: bool,
    key: FragKey,
    expires_ns: u64,
    fate: Fate,
    /// Data byte ranges seen, `[start, end)`, the first `count` of them.
    ranges: [(u16, u16); MAX_FRAGS],
    count: u8,
    /// End of the datagram's data, once its last fragment was seen.
    total: Option<u16>,
    /// Bytes of data seen (ranges never overlap).
    covered: u32,
    /// Held frames, oldest first (indexes into the pool).
    head: u32,
    tail: u32,
}

impl Slot {
    const EMPTY: Slot = Slot {
        used: false,
        key: FragKey {
            src: Addr::UNSPECIFIED,
            dst: Addr::UNSPECIFIED,
            id: 0,
            proto: 0,
        },
        expires_ns: 0,
        fate: Fate::Pending,
        ranges: [(0, 0); MAX_FRAGS],
        count: 0,
        total: None,
        covered: 0,
        head: NONE,
        tail: NONE,
    };
}

/// The pool of held fragments: fixed-size buffers, a free list, and one
/// list per datagram threaded through `next`.
struct Held {
    slab: Box<[u8]>,
    len: Box<[u16]>,
    next: Box<[u32]>,
    free: Vec<u32>,
}

impl Held {
    fn new(n: usize) -> Held {
        Held {
            slab: vec![0u8; n * HOLD_ROOM].into_boxed_slice(),
            len: vec![0u16; n].into_boxed_slice(),
            next: vec![NONE; n].into_boxed_slice(),
            free: (0..n as u32).rev().collect(),
        }
    }

    fn frame(&self, h: u32) -> &[u8] {
        let at = h as usize * HOLD_ROOM;
        let len = self.len.get(h as usize).copied().unwrap_or(0) as usize;
        self.slab.get(at..at + len).unwrap_or(&[])
    }
}

/// Why [`FragTable::entry`] found no slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableFull;

/// One worker's datagrams in flight and its held fragments.
pub struct FragTable {
    slots: Box<[Slot]>,
    mask: usize,
    held: Held,
    timeout_ns: u64,
    seed: u64,
    /// Entries in use: aging does nothing while there are none.
    live: u32,
    cursor: usize,
    cfg: Fragments,
}

impl FragTable {
    pub fn new(cfg: &Fragments, seed: u64) -> FragTable {
        let n = (cfg.table_size.max(1) as usize).next_power_of_two();
        let mut slots = Vec::with_capacity(n);
        slots.resize_with(n, || Slot::EMPTY);
        FragTable {
            slots: slots.into_boxed_slice(),
            mask: n - 1,
            held: Held::new(cfg.max_held as usize),
            timeout_ns: u64::from(cfg.timeout_ms) * 1_000_000,
            seed,
            live: 0,
            cursor: 0,
            cfg: *cfg,
        }
    }

    /// The settings this table was built with.
    pub fn config(&self) -> &Fragments {
        &self.cfg
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Datagrams tracked now.
    pub fn len(&self) -> usize {
        self.live as usize
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Frames held now.
    pub fn held(&self) -> usize {
        self.held.len.len() - self.held.free.len()
    }

    /// The entry of datagram `key`, made if there is none (a fresh entry
    /// is [`Fate::Pending`] and lives one timeout). An expired entry found
    /// on the way is cleared first, its held frames dropped as timed out.
    pub fn entry(
        &mut self,
        key: &FragKey,
        now_ns: u64,
        stats: &mut WorkerStats,
    ) -> Result<u32, TableFull> {
        let start = key.hash(self.seed) as usize;
        let mut free = None;
        for i in 0..PROBE {
            let at = (start + i) & self.mask;
            let Some(s) = self.slots.get(at) else {
                continue;
            };
            if s.used && now_ns >= s.expires_ns {
                self.clear(at, DropReason::FragmentTimeout, stats);
            }
            let Some(s) = self.slots.get(at) else {
                continue;
            };
            if !s.used {
                free.get_or_insert(at);
            } else if s.key == *key {
                return Ok(at as u32);
            }
        }
        let at = free.ok_or(TableFull)?;
        if let Some(s) = self.slots.get_mut(at) {
            *s = Slot {
                used: true,
                key: *key,
                expires_ns: now_ns.saturating_add(self.timeout_ns),
                ..Slot::EMPTY
            };
            self.live += 1;
        }
        Ok(at as u32)
    }

    /// Records fragment `f` in entry `idx`, or says why it cannot be
    /// forwarded. An overlap or an inconsistent end spoils the datagram:
    /// its held frames are dropped under the same reason, and every later
    /// fragment too.
    pub fn note(&mut self, idx: u32, f: &Frag, stats: &mut WorkerStats) -> Result<(), DropReason> {
        let Some(s) = self.slots.get_mut(idx as usize) else {
            return Err(DropReason::FragmentTableFull);
        };
        if let Fate::Spoiled(r) = s.fate {
            return Err(r);
        }
        let (start, end) = (u32::from(f.offset), f.end());
        let seen = s.ranges.get(..usize::from(s.count)).unwrap_or(&[]);
        let mut spoiled = None;
        for &(a, b) in seen {
            if (u32::from(a), u32::from(b)) == (start, end) {
                return Err(DropReason::FragmentDuplicate);
            }
            if start < u32::from(b) && u32::from(a) < end {
                spoiled = Some(DropReason::FragmentOverlap);
            }
        }
        if spoiled.is_none() {
            let past = |e: u32| s.total.is_some_and(|t| e > u32::from(t));
            let short_last = !f.more && seen.iter().any(|&(_, b)| u32::from(b) > end);
            let second_end = !f.more && s.total.is_some_and(|t| u32::from(t) != end);
            if past(end) || short_last || second_end {
                spoiled = Some(DropReason::FragmentMalformed);
            }
        }
        if let Some(r) = spoiled {
            s.fate = Fate::Spoiled(r);
            self.drop_held(idx, r, stats);
            return Err(r);
        }
        let Some(r) = s.ranges.get_mut(usize::from(s.count)) else {
            return Err(DropReason::FragmentTooMany);
        };
        *r = (f.offset, end as u16);
        s.count += 1;
        s.covered += u32::from(f.len);
        if !f.more {
            s.total = Some(end as u16);
        }
        Ok(())
    }

    pub(crate) fn fate(&self, idx: u32) -> Fate {
        self.slots
            .get(idx as usize)
            .map_or(Fate::Dropped, |s| s.fate)
    }

    pub(crate) fn set_fate(&mut self, idx: u32, fate: Fate) {
        if let Some(s) = self.slots.get_mut(idx as usize) {
            s.fate = fate;
        }
    }

    /// Every byte of the datagram has gone through: the entry can go.
    pub fn complete(&self, idx: u32) -> bool {
        self.slots
            .get(idx as usize)
            .is_some_and(|s| s.total.is_some_and(|t| s.covered == u32::from(t)) && s.head == NONE)
    }

    /// Forgets entry `idx` (its datagram is through). Held frames, if any,
    /// are dropped under `why`.
    pub fn remove(&mut self, idx: u32, why: DropReason, stats: &mut WorkerStats) {
        self.clear(idx as usize, why, stats);
    }

    /// Copies `frame` into the pool behind the other held fragments of
    /// entry `idx`.
    pub fn hold(&mut self, idx: u32, frame: &[u8]) -> Result<(), DropReason> {
        if frame.len() > HOLD_ROOM || self.slots.get(idx as usize).is_none() {
            return Err(DropReason::FragmentHoldFull);
        }
        let h = self.held.free.pop().ok_or(DropReason::FragmentHoldFull)?;
        let at = h as usize * HOLD_ROOM;
        if let Some(dst) = self.held.slab.get_mut(at..at + frame.len()) {
            dst.copy_from_slice(frame);
        }
        if let Some(l) = self.held.len.get_mut(h as usize) {
            *l = frame.len() as u16;
        }
        if let Some(n) = self.held.next.get_mut(h as usize) {
            *n = NONE;
        }
        let Some(s) = self.slots.get_mut(idx as usize) else {
            return Err(DropReason::FragmentHoldFull);
        };
        if s.tail == NONE {
            s.head = h;
        } else if let Some(n) = self.held.next.get_mut(s.tail as usize) {
            *n = h;
        }
        s.tail = h;
        Ok(())
    }

    /// The oldest held frame of entry `idx`, taken off its list; give it
    /// back with [`FragTable::free`] once read through [`FragTable::frame`].
    pub fn pop_held(&mut self, idx: u32) -> Option<u32> {
        let s = self.slots.get_mut(idx as usize)?;
        let h = s.head;
        if h == NONE {
            return None;
        }
        s.head = self.held.next.get(h as usize).copied().unwrap_or(NONE);
        if s.head == NONE {
            s.tail = NONE;
        }
        Some(h)
    }

    pub fn frame(&self, h: u32) -> &[u8] {
        self.held.frame(h)
    }

    pub fn free(&mut self, h: u32) {
        if (h as usize) < self.held.len.len() {
            self.held.free.push(h);
        }
    }

    fn drop_held(&mut self, idx: u32, why: DropReason, stats: &mut WorkerStats) {
        while let Some(h) = self.pop_held(idx) {
            self.free(h);
            stats.held_dropped(why, 1);
        }
    }

    fn clear(&mut self, at: usize, why: DropReason, stats: &mut WorkerStats) {
        if !self.slots.get(at).is_some_and(|s| s.used) {
            return;
        }
        self.drop_held(at as u32, why, stats);
        if let Some(s) = self.slots.get_mut(at) {
            s.used = false;
            self.live -= 1;
        }
    }

    /// One bounded step of aging: visits up to `budget` slots and clears
    /// the expired ones, their held frames dropped as `fragment_timeout`.
    /// Free while the table is empty.
    #[inline]
    pub fn age(&mut self, now_ns: u64, budget: usize, stats: &mut WorkerStats) {
        if self.live == 0 {
            return;
        }
        self.age_some(now_ns, budget, stats);
    }

    #[cold]
    fn age_some(&mut self, now_ns: u64, budget: usize, stats: &mut WorkerStats) {
        for _ in 0..budget.min(self.slots.len()) {
            let at = self.cursor;
            self.cursor = (self.cursor + 1) & self.mask;
            if self
                .slots
                .get(at)
                .is_some_and(|s| s.used && now_ns >= s.expires_ns)
            {
                self.clear(at, DropReason::FragmentTimeout, stats);
            }
        }
    }
}

/// The pipeline for a frame the parser answered `Ipv4Fragment` or
/// `Ipv6Fragment` (see the module doc). Returns the verdict and the frame's
/// L2 length (for an encapsulation).
pub(crate) fn handle(frame: &mut [u8], ws: &mut WorkerState, snap: &Snapshot) -> (Verdict, u16) {
    let (d, f) = match crate::wire::parse_fragment(frame) {
        Ok(x) => x,
        Err(r) => return (Verdict::Drop(r), 0),
    };
    let v = if f.is_atomic() {
        // A whole datagram (RFC 6946): no other fragment to wait for.
        let (v, _) = crate::datapath::first_fragment(frame, &d, ws, snap);
        if v == Verdict::Forward {
            ws.stats.event(Event::FragmentForwarded);
        }
        v
    } else {
        fragment(frame, &d, &f, ws, snap)
    };
    (v, d.l3_off)
}

fn fragment(
    frame: &mut [u8],
    d: &FlowDesc,
    f: &Frag,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let key = FragKey::of(d, f);
    let Ok(idx) = ws.frags.entry(&key, ws.now_ns, &mut ws.stats) else {
        return Verdict::Drop(DropReason::FragmentTableFull);
    };
    if let Err(r) = ws.frags.note(idx, f, &mut ws.stats) {
        return Verdict::Drop(r);
    }
    let v = if f.is_first() {
        first(frame, d, idx, ws, snap)
    } else {
        later(frame, d, idx, ws, snap)
    };
    if ws.frags.complete(idx) {
        ws.frags
            .remove(idx, DropReason::FragmentFirstDropped, &mut ws.stats);
    }
    v
}

/// A datagram's first fragment: handed to the worker that owns its
/// connection, or scheduled here; either way the fragments held for it
/// follow.
fn first(
    frame: &mut [u8],
    d: &FlowDesc,
    idx: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    let elsewhere = crate::io::steer::conn_owner(&d.key, snap, ws.workers).filter(|&o| o != ws.id);
    if let Some(o) = elsewhere {
        ws.frags.set_fate(idx, Fate::Owner(o));
        release(idx, ws, snap);
        ws.stats.event(Event::FragmentHandedOver);
        return Verdict::Handover(o);
    }
    let (v, given) = crate::datapath::first_fragment(frame, d, ws, snap);
    match given {
        Some((bound, dir)) => {
            let key = d.key;
            ws.frags
                .set_fate(idx, Fate::Decided(Decision { bound, dir, key }));
            ws.stats.event(Event::FragmentForwarded);
            release(idx, ws, snap);
        }
        None => {
            ws.frags.set_fate(idx, Fate::Dropped);
            release(idx, ws, snap);
        }
    }
    v
}

/// A fragment after the first: it follows the first, or waits for it.
fn later(
    frame: &mut [u8],
    d: &FlowDesc,
    idx: u32,
    ws: &mut WorkerState,
    snap: &Snapshot,
) -> Verdict {
    match ws.frags.fate(idx) {
        Fate::Decided(dec) => {
            let len = frame.len() as u64;
            match transform(frame, d, &dec, &mut ws.front, snap) {
                Ok(()) => {
                    let b = &dec.bound;
                    ws.stats.count_flow(b.vi, b.backend, len, dec.dir);
                    ws.stats.event(Event::FragmentForwarded);
                    Verdict::Forward
                }
                Err(r) => Verdict::Drop(r),
            }
        }
        Fate::Owner(o) => {
            ws.stats.event(Event::FragmentHandedOver);
            Verdict::Handover(o)
        }
        Fate::Dropped => Verdict::Drop(DropReason::FragmentFirstDropped),
        Fate::Spoiled(r) => Verdict::Drop(r),
        Fate::Pending => match ws.frags.hold(idx, frame) {
            Ok(()) => {
                ws.stats.event(Event::FragmentHeld);
                Verdict::Consumed
            }
            Err(r) => {
                // The datagram cannot be whole: its first goes nowhere either.
                ws.frags.set_fate(idx, Fate::Spoiled(r));
                Verdict::Drop(r)
            }
        },
    }
}

/// Rewrites a fragment after the first as its first was: `d` is the
/// fragment's own parse, its key completed with the first's ports.
fn transform(
    frame: &mut [u8],
    d: &FlowDesc,
    dec: &Decision,
    front: &mut Front,
    snap: &Snapshot,
) -> Result<(), DropReason> {
    let b = &dec.bound;
    let (Some(vip), Some(backend)) = (
        snap.vips.get(b.vi.index()),
        snap.backends.get(b.backend.index()),
    ) else {
        return Err(DropReason::NoVip);
    };
    let tx = Tx {
        snap,
        vip,
        backend,
        client: b.client,
        local: b.local,
    };
    let d = FlowDesc { key: dec.key, ..*d };
    match dec.dir {
        Dir::Forward => b.xmit.inbound_fragment(frame, &d, &tx, front),
        Dir::Reverse => b.xmit.outbound_fragment(frame, &d, &tx),
    }
}

/// Sends on what was held for datagram `idx`, in arrival order, as its
/// fate says: rewritten into the outbox, handed to the owner, or dropped.
fn release(idx: u32, ws: &mut WorkerState, snap: &Snapshot) {
    let fate = ws.frags.fate(idx);
    while let Some(h) = ws.frags.pop_held(idx) {
        let r = match fate {
            Fate::Decided(dec) => emit(h, &dec, ws, snap),
            Fate::Owner(o) => {
                if ws.outbox.push_to(o, ws.frags.frame(h)) {
                    ws.stats.event(Event::FragmentHandedOver);
                    Ok(())
                } else {
                    Err(DropReason::OutboxFull)
                }
            }
            Fate::Spoiled(r) => Err(r),
            Fate::Dropped | Fate::Pending => Err(DropReason::FragmentFirstDropped),
        };
        ws.frags.free(h);
        if let Err(r) = r {
            ws.stats.held_dropped(r, 1);
        }
    }
}

/// One held fragment, rewritten in an outbox slot: copied in behind room
/// for outer headers, transformed, then its outer headers (if any) put
/// between its L2 header and the IP packet, and the frame moved to the
/// slot's start.
fn emit(h: u32, dec: &Decision, ws: &mut WorkerState, snap: &Snapshot) -> Result<(), DropReason> {
    let held = ws.frags.frame(h);
    let len = held.len();
    let slot = ws.outbox.slot().ok_or(DropReason::OutboxFull)?;
    let frame = slot
        .get_mut(FRONT_MAX..FRONT_MAX + len)
        .ok_or(DropReason::FragmentHoldFull)?;
    frame.copy_from_slice(held);
    let (d, _) = crate::wire::parse_fragment(frame)?;
    let mut front = Front::EMPTY;
    transform(frame, &d, dec, &mut front, snap)?;
    let l2 = usize::from(d.l3_off);
    let n = usize::from(front.len);
    let start = FRONT_MAX - n;
    if n > 0 {
        if l2 < 2 {
            return Err(DropReason::NoHeadroom);
        }
        slot.copy_within(FRONT_MAX..FRONT_MAX + l2, start);
        let et = slot
            .get_mut(start + l2 - 2..start + l2)
            .ok_or(DropReason::NoHeadroom)?;
        et.copy_from_slice(&front.ethertype.to_be_bytes());
        let hdr = slot
            .get_mut(start + l2..start + l2 + n)
            .ok_or(DropReason::NoHeadroom)?;
        hdr.copy_from_slice(front.header());
    }
    slot.copy_within(start..FRONT_MAX + len, 0);
    ws.outbox.commit(len + n);
    ws.stats.originated(len + n);
    ws.stats
        .count_flow(dec.bound.vi, dec.bound.backend, len as u64, dec.dir);
    ws.stats.event(Event::FragmentReleased);
    ws.stats.event(Event::FragmentForwarded);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn cfg(table: u32, held: u32) -> Fragments {
        Fragments {
            timeout_ms: 1000,
            max_held: held,
            table_size: table,
        }
    }

    fn key(id: u32) -> FragKey {
        FragKey {
            src: Addr::from_v4([198, 18, 0, 1]),
            dst: Addr::from_v4([198, 18, 0, 2]),
            id,
            proto: 17,
        }
    }

    fn frag(offset: u16, len: u16, more: bool) -> Frag {
        Frag {
            id: 1,
            offset,
            len,
            more,
        }
    }

    fn stats() -> WorkerStats {
        WorkerStats::new(0, 0)
    }

    #[test]
    fn one_entry_per_datagram() {
        let mut t = FragTable::new(&cfg(16, 4), 7);
        let mut st = stats();
        let a = t.entry(&key(1), 0, &mut st).unwrap();
        assert_eq!(t.entry(&key(1), 5, &mut st).unwrap(), a);
        let b = t.entry(&key(2), 5, &mut st).unwrap();
        assert_ne!(a, b);
        assert_eq!(t.len(), 2);
        t.remove(a, DropReason::FragmentTimeout, &mut st);
        assert_eq!(t.len(), 1);
        assert_eq!(st.dropped_total(), 0);
    }

    #[test]
    fn overlap_spoils_duplicate_does_not() {
        let mut t = FragTable::new(&cfg(16, 4), 7);
        let mut st = stats();
        let i = t.entry(&key(1), 0, &mut st).unwrap();
        t.note(i, &frag(0, 1480, true), &mut st).unwrap();
        assert_eq!(
            t.note(i, &frag(0, 1480, true), &mut st),
            Err(DropReason::FragmentDuplicate)
        );
        t.note(i, &frag(1480, 1480, true), &mut st).unwrap();
        t.hold(i, &[1; 100]).unwrap();
        assert_eq!(
            t.note(i, &frag(2952, 100, false), &mut st),
            Err(DropReason::FragmentOverlap)
        );
        // The held frame went with the datagram; so does every later one.
        assert_eq!(st.drops[DropReason::FragmentOverlap as usize], 1);
        assert_eq!(t.held(), 0);
        assert_eq!(
            t.note(i, &frag(4000, 8, false), &mut st),
            Err(DropReason::FragmentOverlap)
        );
    }

    #[test]
    fn end_is_fixed_by_the_last_fragment() {
        let mut t = FragTable::new(&cfg(16, 4), 7);
        let mut st = stats();
        let i = t.entry(&key(1), 0, &mut st).unwrap();
        t.note(i, &frag(1480, 100, false), &mut st).unwrap();
        assert_eq!(
            t.note(i, &frag(1600, 8, true), &mut st),
            Err(DropReason::FragmentMalformed)
        );
        let j = t.entry(&key(2), 0, &mut st).unwrap();
        t.note(j, &frag(1480, 1480, true), &mut st).unwrap();
        assert_eq!(
            t.note(j, &frag(0, 1000, false), &mut st),
            Err(DropReason::FragmentMalformed),
            "a last fragment ending before data already seen"
        );
    }

    #[test]
    fn complete_when_every_byte_went_through() {
        let mut t = FragTable::new(&cfg(16, 4), 7);
        let mut st = stats();
        let i = t.entry(&key(1), 0, &mut st).unwrap();
        t.note(i, &frag(1480, 20, false), &mut st).unwrap();
        assert!(!t.complete(i));
        t.note(i, &frag(0, 1480, true), &mut st).unwrap();
        assert!(t.complete(i));
    }

    #[test]
    fn too_many_fragments() {
        let mut t = FragTable::new(&cfg(16, 4), 7);
        let mut st = stats();
        let i = t.entry(&key(1), 0, &mut st).unwrap();
        for k in 0..MAX_FRAGS as u16 {
            t.note(i, &frag(8 * k, 8, true), &mut st).unwrap();
        }
        assert_eq!(
            t.note(i, &frag(8 * MAX_FRAGS as u16, 8, true), &mut st),
            Err(DropReason::FragmentTooMany)
        );
    }

    #[test]
    fn held_frames_come_back_in_order() {
        let mut t = FragTable::new(&cfg(16, 3), 7);
        let mut st = stats();
        let i = t.entry(&key(1), 0, &mut st).unwrap();
        let j = t.entry(&key(2), 0, &mut st).unwrap();
        t.hold(i, &[1; 60]).unwrap();
        t.hold(j, &[9; 61]).unwrap();
        t.hold(i, &[2; 62]).unwrap();
        assert_eq!(t.hold(i, &[3; 63]), Err(DropReason::FragmentHoldFull));
        assert_eq!(
            t.hold(j, &vec![0; HOLD_ROOM + 1]),
            Err(DropReason::FragmentHoldFull)
        );
        let mut got = Vec::new();
        while let Some(h) = t.pop_held(i) {
            got.push(t.frame(h).to_vec());
            t.free(h);
        }
        assert_eq!(got, vec![vec![1; 60], vec![2; 62]]);
        assert_eq!(t.held(), 1);
    }

    #[test]
    fn expired_entries_time_out_their_held_frames() {
        let mut t = FragTable::new(&cfg(16, 4), 7);
        let mut st = stats();
        let i = t.entry(&key(1), 0, &mut st).unwrap();
        t.hold(i, &[1; 60]).unwrap();
        t.hold(i, &[1; 60]).unwrap();
        t.age(999_999_999, 64, &mut st);
        assert_eq!(t.len(), 1, "not yet");
        t.age(1_000_000_000, 64, &mut st);
        assert_eq!(t.len(), 0);
        assert_eq!(t.held(), 0);
        assert_eq!(st.drops[DropReason::FragmentTimeout as usize], 2);
        // An expired entry met on lookup is cleared the same way.
        let i = t.entry(&key(3), 0, &mut st).unwrap();
        t.hold(i, &[1; 60]).unwrap();
        let again = t.entry(&key(3), 2_000_000_000, &mut st).unwrap();
        assert!(matches!(t.fate(again), Fate::Pending));
        assert_eq!(st.drops[DropReason::FragmentTimeout as usize], 3);
    }

    #[test]
    fn a_flood_fills_the_table_and_stays_bounded() {
        let mut t = FragTable::new(&cfg(64, 8), 7);
        let mut st = stats();
        let mut full = 0;
        let mut held = 0;
        for id in 0..10_000u32 {
            match t.entry(&key(id), 0, &mut st) {
                Ok(i) => {
                    if t.hold(i, &[0; 1500]).is_ok() {
                        held += 1;
                    }
                }
                Err(TableFull) => full += 1,
            }
        }
        assert!(t.len() <= 64);
        assert!(full >= 10_000 - 64);
        assert_eq!(held, 8);
        assert_eq!(t.held(), 8);
        // One timeout later everything is free again.
        for _ in 0..4 {
            t.age(1_000_000_000, 16, &mut st);
        }
        assert_eq!((t.len(), t.held()), (0, 0));
        assert!(t.entry(&key(1), 1_000_000_000, &mut st).is_ok());
    }
}
