//! The connection table: one per worker, owned by that worker alone, so the
//! datapath reads and writes it with no locks and no atomics (share-nothing;
//! packets reach the worker that owns their connection by steering).
//!
//! Layout, chosen for a small footprint and few cache misses:
//! * `entries`: a fixed array of [`ConnEntry`] (44 bytes), allocated once at
//!   start; free slots sit on a free list.
//! * `index`: an open-addressing hash index (linear probing, power-of-two
//!   size, load factor at most 1/2) of 32-bit slots. Every entry has up to
//!   two keys, the forward 5-tuple (client -> VIP) and the reply 5-tuple
//!   (backend -> client for NAT, backend -> local address for FullNAT), so a
//!   reply finds its connection with one probe sequence. A slot packs the
//!   entry number, the direction and a 5-bit tag of the hash, so most probe
//!   mismatches are rejected without touching the entry.
//! * Deletion uses backward-shift (no tombstones), so lookups never slow down
//!   as connections churn.
//!
//! The table does not know how to compare keys: callers pass the full hash
//! and an equality closure that checks the entry against the packet. Keys are
//! hashed from packet 5-tuples, so forward and reply lookups use the same
//! [`flow_hash`] over what is on the wire.
//!
//! When the table is full [`ConnTable::insert`] fails; the datapath then
//! forwards the new flow statelessly by Maglev (Maglev paper §3.3) and counts
//! it. Aging is incremental: [`ConnTable::expire`] visits a bounded number of
//! entries per call, so a worker spends bounded time on it per poll.

pub mod state;

pub use state::{ConnState, Dir, StateTimeouts};

use crate::flow::{Addr, FlowKey};
use crate::ids::{BackendId, VipId};

/// Largest supported capacity: entry numbers use 26 bits of an index slot.
pub const MAX_CAPACITY: u32 = 1 << 25;

const IDX_BITS: u32 = 26;
const IDX_MASK: u32 = (1 << IDX_BITS) - 1;
const DIR_BIT: u32 = 1 << IDX_BITS;
const TAG_SHIFT: u32 = IDX_BITS + 1;
const EMPTY: u32 = 0;

/// Entry flags.
pub mod flags {
    /// The slot holds a live connection.
    pub const IN_USE: u8 = 0x01;
    /// The connection has a reply-direction key in the index.
    pub const HAS_REVERSE: u8 = 0x02;
    /// The connection holds a FullNAT local port that must be returned.
    pub const HAS_LPORT: u8 = 0x04;
    /// The handshake went through the SYN proxy: the worker's
    /// `SynproxyState` has its sequence offsets under the same entry number.
    pub const SYNPROXY: u8 = 0x08;
    /// The backend's stream starts with a PROXY header: the worker's
    /// `ProxyState` has the header's offset under the same entry number.
    pub const PROXY: u8 = 0x10;
    /// Either: the connection's packets take their own path, off the
    /// plain established one, and are translated after their transform.
    pub const SPLICED: u8 = SYNPROXY | PROXY;
}

/// One tracked connection. The backend, VIP and FullNAT local address are
/// numbers into the snapshot's registries, so the entry stays small and keeps
/// its backend by identity across config changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ConnEntry {
    pub client: Addr,
    pub fwd_hash: u32,
    pub rev_hash: u32,
    /// Backend number in the snapshot's backend registry.
    pub backend: BackendId,
    /// Second on the worker's clock after which the entry is dead.
    pub expires: u32,
    pub client_port: u16,
    /// VIP number in the snapshot.
    pub vip: VipId,
    /// FullNAT local port (0 for other modes).
    pub lport: u16,
    /// FullNAT local address number in the snapshot (0 for other modes).
    pub laddr: u8,
    pub proto: u8,
    pub state: u8,
    pub flags: u8,
    /// The forwarding mode bound when the connection was created.
    pub xmit: crate::xmit::Xmit,
}

impl ConnEntry {
    #[inline]
    pub fn state(&self) -> ConnState {
        ConnState::from_u8(self.state)
    }

    #[inline]
    pub fn in_use(&self) -> bool {
        self.flags & flags::IN_USE != 0
    }
}

/// The insert failed because every entry is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableFull;

/// A keyed hash of a packet's 5-tuple: a folded 64x64->128 multiply per
/// word pair (the construction of wyhash/foldhash), three multiplies in all.
/// `seed` is per table for the connection table (resists hash flooding) and
/// a fixed constant for Maglev (so every box picks the same backend).
#[inline]
pub fn flow_hash(key: &FlowKey, seed: u64) -> u64 {
    let (s0, s1) = addr_words(&key.src);
    let (d0, d1) = addr_words(&key.dst);
    let ports = (key.sport as u64) << 32 | (key.dport as u64) << 16 | key.proto as u64;
    let h = fold_mul(s0 ^ seed, s1 ^ K1);
    let h = fold_mul(d0 ^ h, d1 ^ K2);
    fold_mul(ports ^ h, K3 ^ seed)
}

/// A keyed hash of one address (the `sh` scheduler's source hash).
#[inline]
pub fn addr_hash(addr: &Addr, seed: u64) -> u64 {
    let (a0, a1) = addr_words(addr);
    fold_mul(fold_mul(a0 ^ seed, a1 ^ K1), K2)
}

const K1: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;
const K3: u64 = 0x1656_67b1_9e37_79f9;

#[inline]
pub(crate) fn addr_words(a: &Addr) -> (u64, u64) {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&a.0[..8]);
    hi.copy_from_slice(&a.0[8..]);
    (u64::from_le_bytes(lo), u64::from_le_bytes(hi))
}

#[inline]
pub(crate) fn fold_mul(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline]
fn slot_of(idx: u32, dir: Dir, hash: u32) -> u32 {
    let d = if dir == Dir::Reverse { DIR_BIT } else { 0 };
    ((hash >> 27) << TAG_SHIFT) | d | (idx + 1)
}

#[inline]
fn slot_entry(slot: u32) -> u32 {
    (slot & IDX_MASK).wrapping_sub(1)
}

pub struct ConnTable {
    entries: Box<[ConnEntry]>,
    index: Box<[u32]>,
    mask: u32,
    free: Vec<u32>,
    /// Entries at or above this number have never been used.
    high_water: u32,
    live: u32,
    /// Aging position (entry number).
    cursor: u32,
    /// The clock second the aging pass under way began at, while every
    /// step of it so far ran at that second.
    pass_at: Option<u32>,
    /// A second at which a whole aging pass ran: no entry expired at that
    /// second is left, given entries' expiries are set ahead of the clock
    /// (see [`ConnTable::swept`]).
    swept_at: Option<u32>,
    seed: u64,
}

impl ConnTable {
    /// A table for `capacity` connections (clamped to 1..=[`MAX_CAPACITY`]),
    /// hashed with `seed`. All memory is allocated and touched here, on
    /// transparent huge pages where the kernel offers them, so the datapath
    /// never takes a page fault and a 1M table costs few TLB entries.
    pub fn new(capacity: u32, seed: u64) -> ConnTable {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        // Two keys per entry at load factor <= 1/2.
        let slots = (capacity as usize * 4).next_power_of_two();
        let mut free: Vec<u32> = Vec::with_capacity(capacity as usize);
        // Hand out low entry numbers first so aging scans a dense prefix.
        free.extend((0..capacity).rev());
        ConnTable {
            entries: hugemem::alloc(capacity as usize, ConnEntry::default()),
            index: hugemem::alloc(slots, EMPTY),
            mask: (slots - 1) as u32,
            free,
            high_water: 0,
            live: 0,
            cursor: 0,
            pass_at: None,
            swept_at: None,
            seed,
        }
    }

    #[inline]
    pub fn seed(&self) -> u64 {
        self.seed
    }

    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u32 {
        flow_hash(key, self.seed) as u32
    }

    pub fn capacity(&self) -> u32 {
        self.entries.len() as u32
    }

    pub fn len(&self) -> u32 {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Memory held per connection of capacity: the entry plus its share of
    /// the index.
    pub fn bytes_per_entry(&self) -> usize {
        let total = self.entries.len() * std::mem::size_of::<ConnEntry>()
            + self.index.len() * std::mem::size_of::<u32>();
        total / self.entries.len()
    }

    /// Starts loading the index slot where a lookup of `hash` begins.
    #[inline]
    pub fn prefetch_index(&self, hash: u32) {
        if let Some(slot) = self.index.get((hash & self.mask) as usize) {
            prefetch(slot as *const u32 as *const u8);
        }
    }

    /// Starts loading the entry a lookup of `hash` in `dir` will most likely
    /// compare first: the first slot of its probe sequence whose tag matches.
    /// Call after [`ConnTable::prefetch_index`] had time to land.
    #[inline]
    pub fn prefetch_entry(&self, hash: u32, dir: Dir) {
        let want = slot_of(0, dir, hash) & !IDX_MASK;
        let mut pos = hash & self.mask;
        for _ in 0..4 {
            match self.index.get(pos as usize) {
                Some(&EMPTY) | None => return,
                Some(&slot) if slot & !IDX_MASK == want => {
                    if let Some(e) = self.entries.get(slot_entry(slot) as usize) {
                        let p = e as *const ConnEntry as *const u8;
                        prefetch(p);
                        prefetch(p.wrapping_add(std::mem::size_of::<ConnEntry>() - 1));
                    }
                    return;
                }
                Some(_) => pos = (pos + 1) & self.mask,
            }
        }
    }

    #[inline]
    pub fn get(&self, idx: u32) -> Option<&ConnEntry> {
        self.entries.get(idx as usize).filter(|e| e.in_use())
    }

    #[inline]
    pub fn get_mut(&mut self, idx: u32) -> Option<&mut ConnEntry> {
        self.entries.get_mut(idx as usize).filter(|e| e.in_use())
    }

    /// Finds the entry whose `dir` key has `hash` and satisfies `eq`.
    #[inline]
    pub fn lookup(
        &self,
        hash: u32,
        dir: Dir,
        mut eq: impl FnMut(&ConnEntry) -> bool,
    ) -> Option<u32> {
        let want = slot_of(0, dir, hash) & !IDX_MASK;
        let mut pos = hash & self.mask;
        loop {
            let slot = *self.index.get(pos as usize)?;
            if slot == EMPTY {
                return None;
            }
            if slot & !IDX_MASK == want {
                let idx = slot_entry(slot);
                if let Some(e) = self.entries.get(idx as usize) {
                    if eq(e) {
                        return Some(idx);
                    }
                }
            }
            pos = (pos + 1) & self.mask;
        }
    }

    /// Stores `entry` under its forward hash and, if `entry.flags` has
    /// [`flags::HAS_REVERSE`], its reply hash. The caller has checked that
    /// neither key is present.
    pub fn insert(&mut self, mut entry: ConnEntry) -> Result<u32, TableFull> {
        let idx = self.free.pop().ok_or(TableFull)?;
        entry.flags |= flags::IN_USE;
        if self.swept_at.is_some_and(|t| expired(entry.expires, t)) {
            self.swept_at = None;
        }
        self.place(slot_of(idx, Dir::Forward, entry.fwd_hash), entry.fwd_hash);
        if entry.flags & flags::HAS_REVERSE != 0 {
            self.place(slot_of(idx, Dir::Reverse, entry.rev_hash), entry.rev_hash);
        }
        if let Some(e) = self.entries.get_mut(idx as usize) {
            *e = entry;
        }
        self.high_water = self.high_water.max(idx + 1);
        self.live += 1;
        Ok(idx)
    }

    fn place(&mut self, slot: u32, hash: u32) {
        let mut pos = hash & self.mask;
        // The load factor bound guarantees an empty slot.
        while let Some(s) = self.index.get_mut(pos as usize) {
            if *s == EMPTY {
                *s = slot;
                return;
            }
            pos = (pos + 1) & self.mask;
        }
    }

    /// Removes entry `idx` and returns it (so the caller can release what it
    /// held: a FullNAT port, a least-connections count).
    pub fn remove(&mut self, idx: u32) -> Option<ConnEntry> {
        let e = *self.get(idx)?;
        self.unplace(slot_of(idx, Dir::Forward, e.fwd_hash), e.fwd_hash);
        if e.flags & flags::HAS_REVERSE != 0 {
            self.unplace(slot_of(idx, Dir::Reverse, e.rev_hash), e.rev_hash);
        }
        if let Some(slot) = self.entries.get_mut(idx as usize) {
            slot.flags = 0;
        }
        self.free.push(idx);
        self.live -= 1;
        Some(e)
    }

    /// Deletes `slot` from the probe sequence starting at `hash`, then shifts
    /// later members of the cluster back so no lookup meets a hole early.
    fn unplace(&mut self, slot: u32, hash: u32) {
        let mask = self.mask;
        let mut hole = hash & mask;
        loop {
            match self.index.get(hole as usize) {
                Some(&s) if s == slot => break,
                Some(&EMPTY) | None => return,
                Some(_) => hole = (hole + 1) & mask,
            }
        }
        let mut pos = hole;
        loop {
            pos = (pos + 1) & mask;
            let s = match self.index.get(pos as usize) {
                Some(&s) => s,
                None => return,
            };
            if s == EMPTY {
                break;
            }
            let home = self.home_of(s) & mask;
            // Move `s` into the hole unless its home lies cyclically in (hole, pos].
            let stays = if hole <= pos {
                hole < home && home <= pos
            } else {
                hole < home || home <= pos
            };
            if !stays {
                if let Some(h) = self.index.get_mut(hole as usize) {
                    *h = s;
                }
                hole = pos;
            }
        }
        if let Some(h) = self.index.get_mut(hole as usize) {
            *h = EMPTY;
        }
    }

    fn home_of(&self, slot: u32) -> u32 {
        let e = self
            .entries
            .get(slot_entry(slot) as usize)
            .copied()
            .unwrap_or_default();
        if slot & DIR_BIT != 0 {
            e.rev_hash
        } else {
            e.fwd_hash
        }
    }

    /// Visits up to `budget` entries from the aging cursor and removes those
    /// whose expiry is at or before `now`, handing each to `on_expire`.
    /// Returns how many were removed.
    pub fn expire(
        &mut self,
        now: u32,
        budget: u32,
        mut on_expire: impl FnMut(u32, &ConnEntry),
    ) -> u32 {
        if self.high_water == 0 {
            return 0;
        }
        if self.pass_at != Some(now) {
            self.pass_at = None;
        }
        let mut removed = 0;
        for _ in 0..budget.min(self.high_water) {
            if self.cursor >= self.high_water {
                if self.pass_at == Some(now) {
                    self.swept_at = Some(now);
                }
                self.cursor = 0;
                self.pass_at = Some(now);
            }
            let idx = self.cursor;
            self.cursor += 1;
            let dead = match self.get(idx) {
                Some(e) => expired(e.expires, now),
                None => false,
            };
            if dead {
                if let Some(e) = self.remove(idx) {
                    on_expire(idx, &e);
                    removed += 1;
                }
            }
        }
        if self.cursor >= self.high_water && self.pass_at == Some(now) {
            self.swept_at = Some(now);
        }
        removed
    }

    /// Whether an aging step at second `now` would find nothing to remove:
    /// a whole pass ran at `now` since the clock last moved, and no entry
    /// inserted since expires by `now`. It holds only while every change to
    /// an entry's expiry sets it past the clock (the datapath's
    /// `now + timeout`, with timeouts of a second or more) and
    /// [`ConnTable::clock_moved`] hears of every change of second.
    #[inline]
    pub fn swept(&self, now: u32) -> bool {
        self.swept_at == Some(now)
    }

    /// Moves the aging cursor as [`ConnTable::expire`] with `budget` would
    /// when it finds nothing to remove, without visiting the entries; for
    /// a table [`ConnTable::swept`] at the current second.
    #[inline]
    pub fn skip_visits(&mut self, budget: u32) {
        self.cursor = cursor_after(self.cursor, self.high_water, budget);
    }

    /// The clock moved to another second: what the aging passes so far
    /// showed no longer holds.
    #[inline]
    pub fn clock_moved(&mut self) {
        self.pass_at = None;
        self.swept_at = None;
    }

    /// Live entries, for `ctl conns` style listings and tests.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &ConnEntry)> {
        self.entries
            .iter()
            .take(self.high_water as usize)
            .enumerate()
            .filter(|(_, e)| e.in_use())
            .map(|(i, e)| (i as u32, e))
    }
}

/// A hint to start loading the cache line at `p`. It never faults, whatever
/// the address, and changes no state the program can observe.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint; it does not dereference in the Rust
    // sense and cannot fault, and SSE is part of the x86_64 baseline.
    #[allow(unused_unsafe)]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Large fixed tables: allocated once, advised onto transparent huge pages,
/// and written through so every page is present before the first packet.
pub(crate) mod hugemem {
    const HUGE_PAGE: usize = 2 << 20;
    const PAGE: usize = 4096;

    pub fn alloc<T: Copy>(len: usize, fill: T) -> Box<[T]> {
        let mut v: Vec<T> = Vec::with_capacity(len);
        let bytes = len * std::mem::size_of::<T>();
        if bytes >= HUGE_PAGE {
            advise_huge(v.as_mut_ptr() as *mut u8, bytes);
        }
        // Writing every element (not relying on zeroed pages from the
        // allocator) faults each page in now, at start.
        v.resize(len, fill);
        if bytes >= PAGE {
            let p = v.as_mut_ptr() as *mut u8;
            for off in (0..bytes).step_by(PAGE) {
                // SAFETY: `off < bytes`, inside the vector's initialised
                // buffer; a volatile read-write keeps the compiler from
                // eliding the touch of pages it believes are zero.
                unsafe {
                    let b = std::ptr::read_volatile(p.add(off));
                    std::ptr::write_volatile(p.add(off), b);
                }
            }
        }
        v.into_boxed_slice()
    }

    #[cfg(target_os = "linux")]
    fn advise_huge(p: *mut u8, len: usize) {
        let start = (p as usize).div_ceil(HUGE_PAGE) * HUGE_PAGE;
        let end = (p as usize + len) / HUGE_PAGE * HUGE_PAGE;
        if end > start {
            // SAFETY: [start, end) lies inside the allocation just made;
            // MADV_HUGEPAGE only changes how the kernel backs the range and
            // never its contents. A failure (THP disabled) is harmless.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn advise_huge(_p: *mut u8, _len: usize) {}
}

/// Where [`ConnTable::expire`] leaves an aging cursor at `cursor` after
/// `budget` visits of a table whose high water mark is `hw`, when it
/// removes nothing: each visit first wraps a cursor at the mark to 0, then
/// steps past the entry it visits.
#[inline]
fn cursor_after(cursor: u32, hw: u32, budget: u32) -> u32 {
    let k = budget.min(hw);
    if k == 0 {
        return cursor;
    }
    let from = if cursor >= hw { 0 } else { cursor };
    (from + k - 1) % hw + 1
}

/// Whether an expiry time has passed, on a wrapping 32-bit seconds clock.
#[inline]
pub fn expired(expires: u32, now: u32) -> bool {
    (now.wrapping_sub(expires) as i32) >= 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The cursor arithmetic of a skipped aging step against the visits
    /// it stands for.
    #[test]
    fn cursor_after_matches_the_visits() {
        for hw in 0..12u32 {
            for cursor in 0..=hw {
                for budget in 0..30u32 {
                    let mut c = cursor;
                    for _ in 0..budget.min(hw) {
                        if c >= hw {
                            c = 0;
                        }
                        c += 1;
                    }
                    assert_eq!(
                        cursor_after(cursor, hw, budget),
                        c,
                        "{cursor} {hw} {budget}"
                    );
                }
            }
        }
    }

    /// A table of 8 holding four entries that expire at second 100.
    fn four_live_entries() -> ConnTable {
        let mut t = ConnTable::new(8, 1);
        for i in 0..4u16 {
            let e = ConnEntry {
                client_port: i,
                fwd_hash: u32::from(i),
                expires: 100,
                ..ConnEntry::default()
            };
            t.insert(e).unwrap();
        }
        t
    }

    /// A whole pass at one second marks the table swept at that second;
    /// another second, or an entry inserted already expired, unmarks it.
    #[test]
    fn swept_after_a_whole_pass_at_one_second() {
        let mut t = four_live_entries();
        // The first lap began before any clock was seen: it proves nothing.
        assert_eq!(t.expire(50, 4, |_, _| {}), 0);
        assert!(!t.swept(50));
        assert_eq!(t.expire(50, 3, |_, _| {}), 0);
        assert!(!t.swept(50));
        assert_eq!(t.expire(50, 1, |_, _| {}), 0);
        assert!(t.swept(50));
        assert!(!t.swept(51));
        // An entry already expired at the swept second unmarks it.
        let stale = ConnEntry {
            client_port: 9,
            fwd_hash: 9,
            expires: 40,
            ..ConnEntry::default()
        };
        t.insert(stale).unwrap();
        assert!(!t.swept(50));
        assert_eq!(t.expire(50, 8, |_, _| {}), 1);
        // A lap that straddles two seconds proves nothing either.
        let mut t2 = four_live_entries();
        t2.expire(50, 4, |_, _| {});
        t2.expire(50, 2, |_, _| {});
        t2.expire(51, 2, |_, _| {});
        assert!(!t2.swept(51));
        t2.clock_moved();
        assert!(!t2.swept(50));
        // A pass that ends inside a step counts too.
        t2.expire(52, 3, |_, _| {});
        assert!(!t2.swept(52));
        t2.expire(52, 3, |_, _| {});
        assert!(t2.swept(52));
    }

    fn entry(n: u32, fwd_hash: u32, rev_hash: Option<u32>) -> ConnEntry {
        ConnEntry {
            client: Addr::from_v4([198, 18, (n >> 8) as u8, n as u8]),
            client_port: n as u16,
            fwd_hash,
            rev_hash: rev_hash.unwrap_or(0),
            flags: if rev_hash.is_some() {
                flags::HAS_REVERSE
            } else {
                0
            },
            expires: n,
            ..Default::default()
        }
    }

    #[test]
    fn entry_is_small() {
        assert_eq!(std::mem::size_of::<ConnEntry>(), 44);
        let t = ConnTable::new(1 << 16, 1);
        assert!(t.bytes_per_entry() <= 64, "{}", t.bytes_per_entry());
    }

    #[test]
    fn insert_lookup_remove_both_directions() {
        let mut t = ConnTable::new(64, 7);
        let idx = t.insert(entry(5, 0xdead_beef, Some(0x1234_5678))).unwrap();
        let f = t.lookup(0xdead_beef, Dir::Forward, |e| e.client_port == 5);
        let r = t.lookup(0x1234_5678, Dir::Reverse, |e| e.client_port == 5);
        assert_eq!(f, Some(idx));
        assert_eq!(r, Some(idx));
        // A forward key never answers a reverse lookup.
        assert_eq!(t.lookup(0xdead_beef, Dir::Reverse, |_| true), None);
        assert_eq!(t.remove(idx).map(|e| e.client_port), Some(5));
        assert_eq!(t.lookup(0xdead_beef, Dir::Forward, |_| true), None);
        assert_eq!(t.lookup(0x1234_5678, Dir::Reverse, |_| true), None);
        assert!(t.is_empty());
    }

    #[test]
    fn full_table_refuses_and_recovers() {
        let mut t = ConnTable::new(4, 7);
        let ids: Vec<u32> = (0..4)
            .map(|n| t.insert(entry(n, n * 31, None)).unwrap())
            .collect();
        assert_eq!(t.insert(entry(9, 9, None)), Err(TableFull));
        t.remove(ids[2]);
        assert!(t.insert(entry(9, 9, None)).is_ok());
        assert_eq!(t.len(), 4);
    }

    /// Heavy churn with colliding hashes against a HashMap model: every live
    /// key is found, every removed key is gone (checks backward shift).
    #[test]
    fn churn_matches_model() {
        let mut t = ConnTable::new(512, 3);
        let mut model: HashMap<u32, u32> = HashMap::new(); // client_port -> idx
        let mut x: u64 = 0x1234_5678_9abc_def0;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let port = (x % 700) as u32;
            // Few distinct hashes: long clusters that wrap around the index.
            let h = ((x >> 20) as u32 % 16).wrapping_mul(0x1000_0001) | 0x7ff;
            if let Some(idx) = model.remove(&port) {
                let e = t.remove(idx).unwrap();
                assert_eq!(e.client_port as u32, port);
            } else if let Ok(idx) = t.insert(entry(port, h, Some(h ^ 0x55))) {
                model.insert(port, idx);
            }
            if step % 97 == 0 {
                for (&p, &idx) in &model {
                    let e = *t.get(idx).unwrap();
                    assert_eq!(
                        t.lookup(e.fwd_hash, Dir::Forward, |e| e.client_port as u32 == p),
                        Some(idx)
                    );
                    assert_eq!(
                        t.lookup(e.rev_hash, Dir::Reverse, |e| e.client_port as u32 == p),
                        Some(idx)
                    );
                }
            }
        }
        assert_eq!(t.len() as usize, model.len());
    }

    #[test]
    fn aging_is_bounded_and_complete() {
        let mut t = ConnTable::new(100, 1);
        for n in 0..100 {
            t.insert(entry(n, n.wrapping_mul(0x9e37_79b9), None))
                .unwrap();
        }
        // expires = n: at now = 49, entries 0..=49 are dead.
        let mut seen = 0;
        assert_eq!(t.expire(49, 10, |_, _| seen += 1), 10);
        let mut total = 10;
        for _ in 0..20 {
            total += t.expire(49, 10, |_, _| seen += 1);
        }
        assert_eq!(total, 50);
        assert_eq!(seen, 50);
        assert_eq!(t.len(), 50);
        assert!(t.iter().all(|(_, e)| e.expires >= 50));
    }

    #[test]
    fn wrapping_clock() {
        assert!(expired(5, 5));
        assert!(!expired(6, 5));
        assert!(expired(u32::MAX - 1, 3));
        assert!(!expired(3, u32::MAX - 1));
    }

    #[test]
    fn hash_uses_every_field() {
        let k = FlowKey {
            src: Addr::from_v4([198, 18, 0, 1]),
            dst: Addr::from_v4([198, 18, 100, 10]),
            sport: 1000,
            dport: 80,
            proto: 6,
        };
        let h = flow_hash(&k, 1);
        assert_ne!(h, flow_hash(&FlowKey { sport: 1001, ..k }, 1));
        assert_ne!(h, flow_hash(&FlowKey { dport: 81, ..k }, 1));
        assert_ne!(h, flow_hash(&FlowKey { proto: 17, ..k }, 1));
        assert_ne!(h, flow_hash(&k.reversed(), 1));
        assert_ne!(h, flow_hash(&k, 2));
    }
}
