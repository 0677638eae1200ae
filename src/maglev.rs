//! Maglev consistent hashing: the lookup table a VIP's new flows are spread
//! with (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
//! Balancer", NSDI 2016, §3.4).
//!
//! [`build`] is control-plane code and a pure function of the backend *set*
//! (address, port, weight) and the table size. Every backend owns a
//! permutation of the slots, `(offset + j * skip) mod size`, where `offset`
//! and `skip` come from two independent keyed hashes of its identity. Backends
//! then take turns claiming their next preferred empty slot until the table is
//! full. Because the hash keys are fixed constants and the input is sorted by
//! identity before the turns start, two boxes given the same backends in any
//! order build the same table, which is what lets an ECMP fabric spray a
//! flow's packets over several rampart boxes.
//!
//! Weights set how often a backend takes a turn (the credit scheme of Katran's
//! weighted Maglev): per round each backend gains `weight` credit and takes a
//! turn whenever its credit reaches the largest weight in the set, so it fills
//! slots at the rate `weight / max_weight`. Each turn claims exactly one slot,
//! so slot counts are proportional to weight up to one slot of rounding. A
//! backend with weight 0 is drained: it takes no turns and owns no slots.
//! With strongly skewed weights most backends sit out most rounds, so the
//! build then replays the same turns from a queue ordered by (round, backend)
//! instead of scanning every round; both paths give the same table.
//!
//! Workers only call [`Table::lookup`], which reduces a flow hash modulo the
//! table size and reads one slot; it never panics and never allocates.
//!
//! Invariants of a [`Table`] returned by [`build`] with a prime `size`:
//! * every slot holds an index into the caller's slice, or every slot holds
//!   [`NO_BACKEND`] (empty set or all weights 0);
//! * no slot names a backend of weight 0.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::hash::Hasher;

use siphasher::sip::SipHasher13;

use crate::flow::Addr;

/// Table size the Maglev paper uses: prime, and large enough (`M >> 100·N` for
/// a few hundred backends) that weight shares are exact to well under 1%.
pub const DEFAULT_TABLE_SIZE: u32 = 65537;

/// Slot value meaning "no backend"; never a valid index into the backend list.
pub const NO_BACKEND: u32 = u32::MAX;

/// A backend's identity. The permutation of a backend depends on this only,
/// never on its weight or its position in the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackendKey {
    pub addr: Addr,
    pub port: u16,
}

/// One entry of the set a table is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MaglevBackend {
    pub key: BackendKey,
    /// Relative share of new flows; 0 drains the backend.
    pub weight: u32,
}

// The two SipHash-1-3 keys. They are part of rampart's observable behaviour:
// every box of a fleet must use the same pair, or the boxes disagree on where
// a flow goes. Changing them remaps nearly every flow.
const OFFSET_KEY: (u64, u64) = (
    u64::from_le_bytes(*b"rampart:"),
    u64::from_le_bytes(*b"maglev:o"),
);
const SKIP_KEY: (u64, u64) = (
    u64::from_le_bytes(*b"rampart:"),
    u64::from_le_bytes(*b"maglev:s"),
);

/// The bytes a backend identity is hashed over: 16 address bytes (IPv4
/// v4-mapped) followed by the port in network order.
fn identity_bytes(key: &BackendKey) -> [u8; 18] {
    let mut b = [0u8; 18];
    b[..16].copy_from_slice(&key.addr.0);
    b[16..].copy_from_slice(&key.port.to_be_bytes());
    b
}

fn keyed_hash(keys: (u64, u64), bytes: &[u8]) -> u64 {
    let mut h = SipHasher13::new_with_keys(keys.0, keys.1);
    h.write(bytes);
    h.finish()
}

/// `(offset, skip)` of a backend's permutation for a table of `size` slots:
/// `offset = h1 mod size`, `skip = h2 mod (size - 1) + 1`, so `skip` is never
/// 0 and, with `size` prime, the permutation visits every slot exactly once.
fn permutation(key: &BackendKey, size: u32) -> (u32, u32) {
    let bytes = identity_bytes(key);
    let h1 = keyed_hash(OFFSET_KEY, &bytes);
    let h2 = keyed_hash(SKIP_KEY, &bytes);
    let m = u64::from(size.max(1));
    let offset = (h1 % m) as u32;
    // A one-slot table only reaches here in release builds with an invalid
    // size; skip 1 keeps the walk well-defined.
    let skip = if size > 1 {
        (h2 % u64::from(size - 1)) as u32 + 1
    } else {
        1
    };
    (offset, skip)
}

/// The populated lookup table of one VIP.
#[derive(Clone, PartialEq, Eq)]
pub struct Table {
    slots: Box<[u32]>,
    populated: bool,
}

impl Table {
    /// The backend (index into the slice given to [`build`]) for a flow hash,
    /// or `None` when the set has no live backend.
    #[inline]
    pub fn lookup(&self, hash: u64) -> Option<u32> {
        // `checked_rem` turns a zero-sized table into `None` instead of a panic.
        let i = hash.checked_rem(self.slots.len() as u64)?;
        match self.slots.get(i as usize) {
            Some(&s) if s != NO_BACKEND => Some(s),
            _ => None,
        }
    }

    /// Number of slots.
    #[inline]
    pub fn size(&self) -> u32 {
        self.slots.len() as u32
    }

    /// The raw slots: an index into the caller's backend slice, or
    /// [`NO_BACKEND`].
    #[inline]
    pub fn slots(&self) -> &[u32] {
        &self.slots
    }

    /// True when no slot names a backend (empty set, or every weight 0).
    #[inline]
    pub fn is_empty(&self) -> bool {
        !self.populated
    }
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("size", &self.slots.len())
            .field("populated", &self.populated)
            .finish()
    }
}

/// Per-backend state while the table fills: the paper's `next[i]` kept as the
/// current slot of the permutation, advanced by one conditional subtract.
struct Turn {
    /// Slot the backend tries next.
    pos: u32,
    skip: u32,
    /// Permutation entries consumed; reaching `size` means the walk is done
    /// (only possible when `size` is not prime).
    tried: u32,
    /// Turn credit left over; a turn costs `max_weight`.
    credit: u64,
    weight: u64,
    /// Index into the caller's slice, written into the slots.
    index: u32,
}

impl Turn {
    /// Claims the backend's next preferred slot nobody holds yet. False when
    /// the permutation is used up without finding one.
    #[inline]
    fn claim(&mut self, slots: &mut [u32], size: u32) -> bool {
        while self.tried < size {
            let p = self.pos as usize;
            self.tried += 1;
            // pos + skip mod size without a division, and without overflow
            // for sizes above 2^31.
            let room = size - self.skip;
            self.pos = if self.pos >= room {
                self.pos - room
            } else {
                self.pos + self.skip
            };
            if let Some(s) = slots.get_mut(p) {
                if *s == NO_BACKEND {
                    *s = self.index;
                    return true;
                }
            }
        }
        false
    }

    fn exhausted(&self, size: u32) -> bool {
        self.tried >= size
    }
}

/// Builds the lookup table for `backends` with `size` slots.
///
/// `size` must be prime (the caller validates the configuration; this is
/// checked in debug builds only). The result depends on the set of backends,
/// not on their order; each slot holds the index of its backend in
/// `backends`. Listing the same identity twice is a configuration error the
/// caller rejects; here the duplicates merely share the identity's slots.
///
/// ```
/// use rampart::flow::Addr;
/// use rampart::maglev::{build, BackendKey, MaglevBackend};
///
/// let b = |last, weight| MaglevBackend {
///     key: BackendKey { addr: Addr::from_v4([198, 18, 1, last]), port: 8080 },
///     weight,
/// };
/// let table = build(&[b(11, 1), b(12, 3)], 65537);
/// let mut shares = [0u32; 2];
/// for slot in table.slots() {
///     shares[*slot as usize] += 1;
/// }
/// // Weights are turn frequencies: 1:3 of the slots, to within one slot.
/// assert!((shares[1] as i64 - 3 * shares[0] as i64).abs() <= 3);
/// // Order does not matter: the same identities own the same slots.
/// let swapped = build(&[b(12, 3), b(11, 1)], 65537);
/// assert!(table.slots().iter().zip(swapped.slots()).all(|(x, y)| x != y));
/// ```
pub fn build(backends: &[MaglevBackend], size: u32) -> Table {
    debug_assert!(is_prime(size), "maglev table size {size} is not prime");
    debug_assert!(backends.len() < NO_BACKEND as usize);

    let mut slots = vec![NO_BACKEND; size as usize].into_boxed_slice();
    let mut turns = turns(backends, size);
    if turns.is_empty() || size == 0 {
        return Table {
            slots,
            populated: false,
        };
    }
    let filled = if rounds_are_dense(&turns) {
        fill_by_rounds(&mut slots, &mut turns, size)
    } else {
        fill_by_events(&mut slots, &mut turns, size)
    };
    Table {
        slots,
        // With a prime size one live backend fills every slot; a partial
        // fill only happens for a non-prime size.
        populated: filled > 0,
    }
}

/// The live backends in canonical order: by identity, then weight, then
/// caller position (the last only separates exact duplicates, which are
/// interchangeable). Drained backends take no turns and are left out.
fn turns(backends: &[MaglevBackend], size: u32) -> Vec<Turn> {
    let mut live: Vec<(&MaglevBackend, u32)> = backends
        .iter()
        .zip(0u32..)
        .filter(|(b, _)| b.weight > 0)
        .collect();
    live.sort_unstable_by(|(a, ai), (b, bi)| {
        a.key
            .cmp(&b.key)
            .then(a.weight.cmp(&b.weight))
            .then(ai.cmp(bi))
    });
    live.iter()
        .map(|&(b, index)| {
            let (offset, skip) = permutation(&b.key, size);
            Turn {
                pos: offset,
                skip,
                tried: 0,
                credit: 0,
                weight: u64::from(b.weight),
                index,
            }
        })
        .collect()
}

fn max_weight(turns: &[Turn]) -> u64 {
    turns.iter().map(|t| t.weight).max().unwrap_or(1)
}

/// Whether most backends act in most rounds. A round visits every backend
/// but only `sum / max` of them take a turn, so with a few heavy backends
/// among many light ones (weights 1000,1,1,...) scanning rounds would spend
/// almost all its time skipping; the event queue then does the same turns in
/// the same order at `O(log n)` each.
fn rounds_are_dense(turns: &[Turn]) -> bool {
    let sum: u128 = turns.iter().map(|t| u128::from(t.weight)).sum();
    let n = turns.len() as u128;
    n * u128::from(max_weight(turns)) <= 8 * sum
}

/// The turns round by round: each round every backend gains `weight` credit
/// and, if its credit reached `max_weight`, spends it on one slot. Returns the
/// number of slots filled.
fn fill_by_rounds(slots: &mut [u32], turns: &mut [Turn], size: u32) -> u32 {
    let max_weight = max_weight(turns);
    let mut filled: u32 = 0;
    let mut walking = turns.len();
    while walking > 0 {
        for t in turns.iter_mut() {
            t.credit += t.weight;
            if t.credit < max_weight || t.exhausted(size) {
                continue;
            }
            t.credit -= max_weight;
            if t.claim(slots, size) {
                filled += 1;
                if filled == size {
                    return filled;
                }
            }
            if t.exhausted(size) {
                walking -= 1;
            }
        }
    }
    filled
}

/// The same turns in the same order as [`fill_by_rounds`], visiting only the
/// backends that act: a min-queue on (round of the next turn, canonical
/// position). A backend left with `credit` after a turn acts again
/// `ceil((max_weight - credit) / weight)` rounds later.
fn fill_by_events(slots: &mut [u32], turns: &mut [Turn], size: u32) -> u32 {
    let max_weight = max_weight(turns);
    let rounds_until_turn = |t: &Turn| (max_weight - t.credit).div_ceil(t.weight);
    let mut queue: BinaryHeap<Reverse<(u64, usize)>> = turns
        .iter()
        .enumerate()
        .map(|(i, t)| Reverse((rounds_until_turn(t), i)))
        .collect();
    let mut filled: u32 = 0;
    while let Some(Reverse((round, i))) = queue.pop() {
        let Some(t) = turns.get_mut(i) else { continue };
        if t.claim(slots, size) {
            filled += 1;
            if filled == size {
                break;
            }
        }
        if t.exhausted(size) {
            continue;
        }
        // Credit at this turn was `credit + d * weight >= max_weight`.
        let d = rounds_until_turn(t);
        t.credit = t.credit + d * t.weight - max_weight;
        let next = round.saturating_add(rounds_until_turn(t));
        queue.push(Reverse((next, i)));
    }
    filled
}

/// Trial division; table sizes are at most a few million, and this runs on
/// the control plane only.
pub fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n & 1 == 0 {
        return n == 2;
    }
    let n = u64::from(n);
    let mut d = 3u64;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64: a small deterministic generator for shuffles and hashes.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn shuffle<T>(&mut self, v: &mut [T]) {
            for i in (1..v.len()).rev() {
                let j = (self.next() % (i as u64 + 1)) as usize;
                v.swap(i, j);
            }
        }
    }

    fn v4(i: u32, port: u16, weight: u32) -> MaglevBackend {
        MaglevBackend {
            key: BackendKey {
                addr: Addr::from_v4([198, 18 | ((i >> 16) & 1) as u8, (i >> 8) as u8, i as u8]),
                port,
            },
            weight,
        }
    }

    fn v6(i: u32, port: u16, weight: u32) -> MaglevBackend {
        let mut a = [0u8; 16];
        a[0] = 0x20;
        a[1] = 0x01;
        a[2] = 0x0d;
        a[3] = 0xb8;
        a[12..].copy_from_slice(&i.to_be_bytes());
        MaglevBackend {
            key: BackendKey {
                addr: Addr::from_v6(a),
                port,
            },
            weight,
        }
    }

    fn equal(n: u32) -> Vec<MaglevBackend> {
        (0..n).map(|i| v4(i, 80, 1)).collect()
    }

    /// The identity owning each slot (None for an empty slot).
    fn owners(t: &Table, set: &[MaglevBackend]) -> Vec<Option<BackendKey>> {
        t.slots()
            .iter()
            .map(|&s| set.get(s as usize).map(|b| b.key))
            .collect()
    }

    fn counts(t: &Table, n: usize) -> Vec<usize> {
        let mut c = vec![0usize; n];
        for &s in t.slots() {
            c[s as usize] += 1;
        }
        c
    }

    /// Largest `|share - expected| / expected` over the backends with weight.
    fn worst_share_error(set: &[MaglevBackend], size: u32) -> f64 {
        let t = build(set, size);
        let c = counts(&t, set.len());
        let total: f64 = set.iter().map(|b| f64::from(b.weight)).sum();
        set.iter()
            .zip(&c)
            .filter(|(b, _)| b.weight > 0)
            .map(|(b, &n)| {
                let expected = f64::from(b.weight) / total;
                let share = n as f64 / f64::from(size);
                (share - expected).abs() / expected
            })
            .fold(0.0, f64::max)
    }

    /// Fraction of the slots owned by surviving backends that change owner
    /// when `set[gone]` leaves.
    fn disruption_on_removal(set: &[MaglevBackend], gone: usize, size: u32) -> f64 {
        let before = owners(&build(set, size), set);
        let mut rest = set.to_vec();
        let gone_key = rest.remove(gone).key;
        let after = owners(&build(&rest, size), &rest);
        let mut kept = 0usize;
        let mut moved = 0usize;
        for (b, a) in before.iter().zip(&after) {
            if *b != Some(gone_key) {
                kept += 1;
                if b != a {
                    moved += 1;
                }
            }
        }
        moved as f64 / kept as f64
    }

    #[test]
    fn sizes_are_prime() {
        assert!(is_prime(DEFAULT_TABLE_SIZE));
        assert!(is_prime(2) && is_prime(3) && is_prime(251) && is_prime(65521));
        assert!(!is_prime(0) && !is_prime(1) && !is_prime(65536) && !is_prime(65535));
    }

    #[test]
    fn empty_set_has_no_backend() {
        let t = build(&[], 251);
        assert_eq!(t.size(), 251);
        assert!(t.is_empty());
        assert!(t.slots().iter().all(|&s| s == NO_BACKEND));
        let mut rng = Rng(1);
        for _ in 0..1000 {
            assert_eq!(t.lookup(rng.next()), None);
        }
        assert_eq!(t.lookup(u64::MAX), None);
    }

    #[test]
    fn all_drained_has_no_backend() {
        let set = vec![v4(1, 80, 0), v4(2, 80, 0)];
        let t = build(&set, 251);
        assert!(t.is_empty());
        assert!(t.slots().iter().all(|&s| s == NO_BACKEND));
    }

    #[test]
    fn single_backend_owns_every_slot() {
        let t = build(&[v4(7, 443, 3)], DEFAULT_TABLE_SIZE);
        assert!(!t.is_empty());
        assert!(t.slots().iter().all(|&s| s == 0));
        assert_eq!(t.lookup(0), Some(0));
        assert_eq!(t.lookup(u64::MAX), Some(0));
    }

    #[test]
    fn lookup_reduces_modulo_size() {
        let set = equal(5);
        let t = build(&set, 251);
        for h in [0u64, 1, 250, 251, 252, u64::MAX, 1 << 40] {
            assert_eq!(t.lookup(h), Some(t.slots()[(h % 251) as usize]));
        }
    }

    #[test]
    fn every_slot_filled_with_a_valid_index() {
        let set = equal(37);
        let t = build(&set, DEFAULT_TABLE_SIZE);
        assert!(t.slots().iter().all(|&s| (s as usize) < set.len()));
    }

    #[test]
    fn deterministic() {
        let set: Vec<_> = (0..50).map(|i| v4(i, 80, 1 + i % 4)).collect();
        assert_eq!(
            build(&set, DEFAULT_TABLE_SIZE),
            build(&set, DEFAULT_TABLE_SIZE)
        );
    }

    #[test]
    fn order_independent() {
        let set: Vec<_> = (0..100)
            .map(|i| {
                if i % 3 == 0 {
                    v6(i, 8080, 1 + i % 5)
                } else {
                    v4(i, 80, 1 + i % 5)
                }
            })
            .collect();
        let reference = owners(&build(&set, DEFAULT_TABLE_SIZE), &set);
        let mut rng = Rng(42);
        for _ in 0..5 {
            let mut shuffled = set.clone();
            rng.shuffle(&mut shuffled);
            let got = owners(&build(&shuffled, DEFAULT_TABLE_SIZE), &shuffled);
            assert!(got == reference, "table depends on input order");
        }
    }

    #[test]
    fn equal_weights_share_within_one_percent() {
        for n in [1u32, 2, 3, 10, 33, 64, 100] {
            let err = worst_share_error(&equal(n), DEFAULT_TABLE_SIZE);
            assert!(err < 0.01, "{n} backends: worst share error {err}");
        }
    }

    #[test]
    fn mixed_weights_share_within_one_percent() {
        for n in [3u32, 10, 50, 100] {
            let set: Vec<_> = (0..n).map(|i| v4(i, 80, 1 + i % 3)).collect();
            let err = worst_share_error(&set, DEFAULT_TABLE_SIZE);
            assert!(err < 0.01, "{n} backends (1,2,3): worst share error {err}");
        }
        // A wide spread of weights.
        let set: Vec<_> = (0..20).map(|i| v4(i, 80, 1 + 5 * i)).collect();
        let err = worst_share_error(&set, DEFAULT_TABLE_SIZE);
        assert!(err < 0.01, "weights 1..96: worst share error {err}");
    }

    #[test]
    fn round_scan_and_event_queue_agree() {
        // `build` picks one of two fill strategies by weight skew; both must
        // produce the same turns in the same order, hence the same table.
        let sets: Vec<Vec<MaglevBackend>> = vec![
            equal(10),
            (0..50).map(|i| v4(i, 80, 1 + i % 3)).collect(),
            (0..40)
                .map(|i| v4(i, 80, if i == 0 { 1000 } else { 1 }))
                .collect(),
            (0..30).map(|i| v6(i, 443, 1 + i * i * 7)).collect(),
            vec![v4(1, 80, u32::MAX), v4(2, 80, 1), v4(3, 80, u32::MAX / 3)],
        ];
        for set in &sets {
            for size in [251u32, 4099, DEFAULT_TABLE_SIZE] {
                let mut a = vec![NO_BACKEND; size as usize];
                let mut b = a.clone();
                let fa = fill_by_rounds(&mut a, &mut turns(set, size), size);
                let fb = fill_by_events(&mut b, &mut turns(set, size), size);
                assert_eq!(fa, size);
                assert_eq!(fb, size);
                assert!(a == b, "strategies differ for {} backends", set.len());
            }
        }
    }

    #[test]
    fn skewed_weights_share_within_one_percent() {
        // One heavy backend among many light ones takes the event-queue path.
        let set: Vec<_> = (0..1000)
            .map(|i| v4(i, 80, if i < 2 { 1000 } else { 1 }))
            .collect();
        assert!(!rounds_are_dense(&turns(&set, DEFAULT_TABLE_SIZE)));
        let t = build(&set, DEFAULT_TABLE_SIZE);
        let c = counts(&t, set.len());
        // 2000 of 2998 weight units: 1000/2998 of the slots each.
        for &n in &c[..2] {
            let share = n as f64 / f64::from(DEFAULT_TABLE_SIZE);
            let expected = 1000.0 / 2998.0;
            assert!((share - expected).abs() / expected < 0.01, "{share}");
        }
    }

    #[test]
    fn drained_backend_owns_nothing() {
        let mut set = equal(10);
        set[4].weight = 0;
        let t = build(&set, DEFAULT_TABLE_SIZE);
        let c = counts(&t, set.len());
        assert_eq!(c[4], 0);
        assert!(c.iter().enumerate().all(|(i, &n)| i == 4 || n > 0));
        assert_eq!(c.iter().sum::<usize>(), DEFAULT_TABLE_SIZE as usize);
    }

    #[test]
    fn draining_matches_removal() {
        // Weight 0 and absence give the same owner for every slot.
        let set = equal(10);
        let mut drained = set.clone();
        drained[6].weight = 0;
        let mut removed = set.clone();
        removed.remove(6);
        let a = owners(&build(&drained, DEFAULT_TABLE_SIZE), &drained);
        let b = owners(&build(&removed, DEFAULT_TABLE_SIZE), &removed);
        assert!(a == b);
    }

    #[test]
    fn mixed_families() {
        let set = vec![v4(1, 80, 1), v6(1, 80, 1), v4(1, 81, 1), v6(2, 80, 1)];
        let t = build(&set, DEFAULT_TABLE_SIZE);
        let c = counts(&t, set.len());
        let expected = DEFAULT_TABLE_SIZE as usize / 4;
        assert!(c.iter().all(|&n| n.abs_diff(expected) <= 1), "{c:?}");
        // Same address, different port: different permutations.
        assert_ne!(
            permutation(&set[0].key, DEFAULT_TABLE_SIZE),
            permutation(&set[2].key, DEFAULT_TABLE_SIZE)
        );
    }

    // Maglev is near-minimal, not minimal: a departing backend's slots are
    // refilled, and the turns that refill them let survivors claim slots
    // slightly earlier in their permutations, which displaces a few others.
    // Measured at 65537 slots, equal weights, fraction of the survivors' slots
    // that change owner when one backend leaves:
    //   10 backends (each removed in turn):   worst 0.39 %, mean 0.30 %
    //   100 backends (4 removals):            worst 0.59 %, mean 0.56 %
    //   1000 backends (4 removals):           worst 0.62 %
    //   weights 1,2,3 instead: 0.37 % / 0.62 % / 0.88 % worst
    // The bound below is the requirement, not the measurement.
    #[test]
    fn disruption_one_of_ten() {
        let set = equal(10);
        let worst = (0..set.len())
            .map(|g| disruption_on_removal(&set, g, DEFAULT_TABLE_SIZE))
            .fold(0.0, f64::max);
        assert!(worst < 0.01, "worst disruption {worst}");
    }

    #[test]
    fn disruption_one_of_hundred() {
        let set = equal(100);
        let worst = [0usize, 17, 50, 99]
            .iter()
            .map(|&g| disruption_on_removal(&set, g, DEFAULT_TABLE_SIZE))
            .fold(0.0, f64::max);
        assert!(worst < 0.01, "worst disruption {worst}");
    }

    #[test]
    fn weight_change_keeps_permutations() {
        // Reweighting moves slots between backends but is not a reshuffle:
        // most slots keep their owner.
        let set = equal(10);
        let mut heavier = set.clone();
        heavier[0].weight = 2;
        let a = owners(&build(&set, DEFAULT_TABLE_SIZE), &set);
        let b = owners(&build(&heavier, DEFAULT_TABLE_SIZE), &heavier);
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        assert!(same as f64 / f64::from(DEFAULT_TABLE_SIZE) > 0.8);
    }

    #[test]
    fn hash_keys_are_stable() {
        // Every box of a fleet must agree on the permutations, across rampart
        // versions too. These values were recorded from the current keys; if
        // this test fails, the change remaps flows fleet-wide and must be
        // deliberate (and released to all boxes at once).
        let key = |addr, port| BackendKey { addr, port };
        let a = key(Addr::from_v4([198, 18, 10, 1]), 80);
        let b = key(
            Addr::from_v6([0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            443,
        );
        assert_eq!(permutation(&a, DEFAULT_TABLE_SIZE), (42988, 58950));
        assert_eq!(permutation(&b, DEFAULT_TABLE_SIZE), (2204, 9723));
    }

    #[test]
    fn non_prime_size_terminates() {
        // Debug builds assert on this; release builds must still terminate.
        if cfg!(debug_assertions) {
            return;
        }
        let t = build(&equal(10), 65536);
        assert_eq!(t.size(), 65536);
    }
}
