//! Token buckets that pace new connections: one [`TokenBucket`] for a whole
//! VIP or worker, and [`SourceBuckets`] for a per-source limit in fixed
//! memory.
//!
//! A bucket holds up to `burst` tokens, gains `rate_per_sec` tokens per
//! second and spends one per admitted connection. The arithmetic is integer
//! fixed point: one token is 10^9 units, so `elapsed_ns * rate_per_sec` is
//! exactly the units earned, with no division and no rounding drift on the
//! hot path. Time is a caller-supplied `u64` nanosecond clock, compared with
//! wrapping (serial-number) arithmetic: a reading up to 2^63 ns after the
//! last one is progress even across the wrap of `u64`, anything else is the
//! clock stepping backwards, which refills nothing and becomes the new
//! reference, so a clock reset never stalls a bucket. A gap longer than the
//! time to fill the bucket is cut to that time before multiplying, which
//! keeps every intermediate below 2^64. `rate_per_sec == 0` means unlimited.
//!
//! [`SourceBuckets`] maps a source address to one of a power-of-two number of
//! slots with a seeded multiply-fold hash, allocated once in `new`. Sources
//! that land in the same slot share its tokens. That is the trade-off for
//! bounded memory: a flood from millions of spoofed sources cannot grow the
//! table or evict anyone, it can only drain the slots it hashes to, and the
//! per-process seed keeps an attacker from choosing which honest sources
//! share its slots. The hash is not cryptographic; it only has to spread
//! addresses and be cheap.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt;

use crate::flow::Addr;

const NS_PER_SEC: u64 = 1_000_000_000;
/// Units per token (see the module doc).
const TOKEN: u64 = NS_PER_SEC;
/// A clock difference at or above this is the clock going backwards.
const BACKWARDS: u64 = 1 << 63;

/// Most slots [`SourceBuckets`] will allocate (16 bytes each: 256 MiB).
pub const MAX_SLOTS: usize = 1 << 24;

/// The parameters every slot of a limiter shares.
#[derive(Clone, Copy, Debug)]
struct Refill {
    /// Units earned per nanosecond (= tokens per second); 0 = unlimited.
    rate: u64,
    /// A full bucket, `burst * TOKEN` (at most ~4.3e18).
    cap: u64,
    /// Nanoseconds to fill an empty bucket, rounded up; longer gaps earn no
    /// more, and cutting them here bounds `dt * rate` by `cap + rate`.
    fill_ns: u64,
}

impl Refill {
    fn new(rate_per_sec: u32, burst: u32) -> Refill {
        let rate = u64::from(rate_per_sec);
        // A bucket that holds no token would refuse everything; rate 0 is the
        // way to say "no limit", so burst 0 is read as 1.
        let cap = u64::from(burst.max(1)) * TOKEN;
        let fill_ns = if rate == 0 { 0 } else { cap.div_ceil(rate) };
        Refill { rate, cap, fill_ns }
    }

    #[inline]
    fn unlimited(&self) -> bool {
        self.rate == 0
    }

    #[inline]
    fn full(&self) -> Slot {
        Slot {
            tokens: self.cap,
            last_ns: 0,
        }
    }

    /// Refill `slot` up to `now_ns` and spend one token if it has one.
    #[inline]
    fn take(&self, slot: &mut Slot, now_ns: u64) -> bool {
        let dt = now_ns.wrapping_sub(slot.last_ns);
        let dt = if dt >= BACKWARDS {
            0
        } else {
            dt.min(self.fill_ns)
        };
        slot.last_ns = now_ns;
        // tokens <= cap and dt * rate <= cap + rate, so the sum stays below
        // 2 * 4.3e18 + 2^32 < 2^64.
        let tokens = (slot.tokens + dt * self.rate).min(self.cap);
        let ok = tokens >= TOKEN;
        slot.tokens = tokens - if ok { TOKEN } else { 0 };
        ok
    }
}

/// One bucket's state. Kept apart from [`Refill`] so the per-source table
/// stores only this: 16 bytes, four slots per cache line.
#[derive(Clone, Copy, Debug)]
struct Slot {
    tokens: u64,
    last_ns: u64,
}

/// A single token bucket. Starts full.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    refill: Refill,
    slot: Slot,
}

impl TokenBucket {
    /// `rate_per_sec` tokens per second up to `burst` (0 is read as 1).
    /// `rate_per_sec == 0` disables the limit: [`TokenBucket::take`] always
    /// succeeds.
    pub fn new(rate_per_sec: u32, burst: u32) -> TokenBucket {
        let refill = Refill::new(rate_per_sec, burst);
        TokenBucket {
            refill,
            slot: refill.full(),
        }
    }

    /// Spend one token at time `now_ns`; `false` when the bucket is empty.
    #[inline]
    pub fn take(&mut self, now_ns: u64) -> bool {
        self.refill.unlimited() || self.refill.take(&mut self.slot, now_ns)
    }
}

/// Per-source token buckets in a fixed table of slots (see the module doc).
#[derive(Clone)]
pub struct SourceBuckets {
    refill: Refill,
    /// Empty when the limit is disabled; never resized after `new`.
    slots: Box<[Slot]>,
    mask: usize,
    keys: (u64, u64),
}

impl SourceBuckets {
    /// `rate_per_sec` tokens per second up to `burst` (0 is read as 1) for
    /// each of `slots` buckets, rounded up to a power of two and kept within
    /// `1..=MAX_SLOTS`. `seed` keys the address hash; give each process a
    /// random one. `rate_per_sec == 0` disables the limit and allocates
    /// nothing.
    pub fn new(rate_per_sec: u32, burst: u32, slots: usize, seed: u64) -> SourceBuckets {
        let refill = Refill::new(rate_per_sec, burst);
        let n = if refill.unlimited() {
            0
        } else {
            // MAX_SLOTS is a power of two, so rounding up stays within it.
            slots.clamp(1, MAX_SLOTS).next_power_of_two()
        };
        SourceBuckets {
            refill,
            slots: vec![refill.full(); n].into_boxed_slice(),
            mask: n.saturating_sub(1),
            // Forced odd so neither multiplier can be 0 for every address.
            keys: (mix(seed) | 1, mix(seed ^ 0x5bd1_e995_7f4a_7c15) | 1),
        }
    }

    /// Spend one token from `src`'s slot at time `now_ns`; `false` when it is
    /// empty. Always `true` when disabled.
    #[inline]
    pub fn take(&mut self, src: &Addr, now_ns: u64) -> bool {
        if self.refill.unlimited() {
            return true;
        }
        let i = self.slot_of(src);
        match self.slots.get_mut(i) {
            Some(slot) => self.refill.take(slot, now_ns),
            // Unreachable: `i` is masked to the table size.
            None => true,
        }
    }

    /// Whether a per-source limit is in force (`rate_per_sec != 0`).
    #[inline]
    pub fn enabled(&self) -> bool {
        !self.refill.unlimited()
    }

    /// Number of slots (0 when disabled).
    #[inline]
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// The slot `src` maps to: two folded multiplies over the address's two
    /// 64-bit halves (IPv4 varies only in the upper half, which the first
    /// multiply spreads over all bits; the second finishes the mixing).
    #[inline]
    fn slot_of(&self, src: &Addr) -> usize {
        let w = u128::from_le_bytes(src.0);
        let (lo, hi) = (w as u64, (w >> 64) as u64);
        let h = fold_mul(lo ^ self.keys.0, hi ^ self.keys.1);
        fold_mul(h, 0x9e37_79b9_7f4a_7c15) as usize & self.mask
    }
}

impl fmt::Debug for SourceBuckets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceBuckets")
            .field("refill", &self.refill)
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// The full 128-bit product folded to 64 bits: every input bit reaches the
/// high half, and the XOR brings it down to the low bits the mask keeps.
#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// splitmix64's finaliser: turns any seed, even 0, into a well-mixed key.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: u64 = 1_000_000;
    const SEC: u64 = 1_000_000_000;

    fn drain(b: &mut TokenBucket, now: u64) -> usize {
        (0..).take_while(|_| b.take(now)).count()
    }

    fn drain_src(b: &mut SourceBuckets, src: &Addr, now: u64) -> usize {
        (0..).take_while(|_| b.take(src, now)).count()
    }

    fn v4(n: u32) -> Addr {
        Addr::from_v4(n.to_be_bytes())
    }

    #[test]
    fn burst_then_exact_refill() {
        let mut b = TokenBucket::new(1000, 10);
        let t0 = 5 * SEC;
        for i in 0..10 {
            assert!(b.take(t0), "token {i}");
        }
        assert!(!b.take(t0));
        // 1000/s is one token per millisecond, exactly.
        assert!(b.take(t0 + MS));
        assert!(!b.take(t0 + MS));
        // Fractions of a token accumulate without loss.
        assert!(!b.take(t0 + MS + MS / 2));
        assert!(!b.take(t0 + 2 * MS - 1));
        assert!(b.take(t0 + 2 * MS));
        assert!(!b.take(t0 + 2 * MS));
        assert_eq!(drain(&mut b, t0 + 7 * MS), 5);
        // A long gap refills to the burst, no further.
        assert_eq!(drain(&mut b, t0 + 3600 * SEC), 10);
    }

    #[test]
    fn sub_token_rates() {
        // 3 per second: one token every 333_333_333.3 ns.
        let mut b = TokenBucket::new(3, 2);
        assert_eq!(drain(&mut b, 0), 2);
        assert!(!b.take(333_333_333));
        assert!(b.take(333_333_334));
        // Ten seconds in 1 ms steps earn exactly 30 tokens; with a burst of
        // 2 no fraction ever spills over the cap.
        let mut n = 0;
        for ms in 1..=10_000u64 {
            n += usize::from(b.take(333_333_334 + ms * MS));
        }
        assert_eq!(n, 30);
    }

    #[test]
    fn rate_zero_is_unlimited() {
        let mut b = TokenBucket::new(0, 1);
        assert!((0..100_000).all(|i| b.take(i % 7)));
        let mut s = SourceBuckets::new(0, 5, 1024, 1);
        assert!(!s.enabled());
        assert_eq!(s.slots(), 0);
        assert!((0..100_000).all(|i| s.take(&v4(7), i)));
    }

    #[test]
    fn burst_zero_is_one() {
        let mut b = TokenBucket::new(10, 0);
        assert_eq!(drain(&mut b, 0), 1);
        assert_eq!(drain(&mut b, SEC), 1);
    }

    #[test]
    fn clock_going_backwards() {
        let mut b = TokenBucket::new(1000, 10);
        let t0 = 10 * SEC;
        assert_eq!(drain(&mut b, t0), 10);
        // No refill and no panic, however far back.
        assert!(!b.take(t0 - 5 * SEC));
        assert!(!b.take(0));
        // The new reading is the reference: refilling resumes from it.
        assert!(b.take(MS));
        assert!(!b.take(MS));
        assert_eq!(drain(&mut b, 6 * MS), 5);
    }

    #[test]
    fn clock_wraps_around_u64() {
        let mut b = TokenBucket::new(1000, 10);
        let t0 = u64::MAX - MS / 2;
        assert_eq!(drain(&mut b, t0), 10);
        // One millisecond later, past the wrap.
        let t1 = t0.wrapping_add(MS);
        assert_eq!(t1, MS / 2 - 1);
        assert_eq!(drain(&mut b, t1), 1);
        assert_eq!(drain(&mut b, t1 + 3 * MS), 3);
    }

    #[test]
    fn extreme_parameters_do_not_overflow() {
        for (rate, burst) in [(u32::MAX, u32::MAX), (1, u32::MAX), (u32::MAX, 1)] {
            let mut b = TokenBucket::new(rate, burst);
            for now in [0, 1, BACKWARDS - 1, BACKWARDS, u64::MAX, 0, BACKWARDS - 1] {
                b.take(now);
            }
        }
        let mut b = TokenBucket::new(u32::MAX, u32::MAX);
        assert!((0..1000).all(|_| b.take(SEC)));
    }

    #[test]
    fn sources_in_different_slots_are_isolated() {
        let mut s = SourceBuckets::new(1000, 10, 1024, 0xfeed);
        assert!(s.enabled());
        let a = v4(0xc633_6407);
        let b = (1..)
            .map(v4)
            .find(|x| s.slot_of(x) != s.slot_of(&a))
            .unwrap();
        assert_eq!(drain_src(&mut s, &a, SEC), 10);
        assert_eq!(drain_src(&mut s, &b, SEC), 10);
        assert_eq!(drain_src(&mut s, &a, SEC + MS), 1);
        assert_eq!(drain_src(&mut s, &b, SEC + 3 * MS), 3);
    }

    #[test]
    fn sources_in_one_slot_share() {
        let mut s = SourceBuckets::new(1000, 10, 16, 42);
        let a = v4(1);
        let b = (2..)
            .map(v4)
            .find(|x| s.slot_of(x) == s.slot_of(&a))
            .unwrap();
        assert_eq!(drain_src(&mut s, &a, SEC), 10);
        assert!(!s.take(&b, SEC));
    }

    #[test]
    fn slot_count_is_a_power_of_two() {
        assert_eq!(SourceBuckets::new(1, 1, 0, 0).slots(), 1);
        assert_eq!(SourceBuckets::new(1, 1, 1, 0).slots(), 1);
        assert_eq!(SourceBuckets::new(1, 1, 1000, 0).slots(), 1024);
        assert_eq!(SourceBuckets::new(1, 1, 4096, 0).slots(), 4096);
        // One slot: everyone shares it.
        let mut s = SourceBuckets::new(1000, 3, 1, 0);
        assert_eq!(drain_src(&mut s, &v4(1), 0), 3);
        assert!(!s.take(&Addr::from_v6([0xfe; 16]), 0));
    }

    /// Spread of `addrs` over 1024 slots: (min, max) per slot.
    fn spread(seed: u64, addrs: impl Iterator<Item = Addr>) -> (usize, usize) {
        let s = SourceBuckets::new(1, 1, 1024, seed);
        let mut counts = [0usize; 1024];
        for a in addrs {
            counts[s.slot_of(&a)] += 1;
        }
        (*counts.iter().min().unwrap(), *counts.iter().max().unwrap())
    }

    #[test]
    fn hash_spreads_addresses() {
        // 64 per slot on average; a uniform hash stays well inside [24, 120].
        for seed in [0, 1, 0xdead_beef, u64::MAX] {
            let seq_v4 = (0..1u32 << 16).map(|i| v4(0x0a00_0000 + i));
            let (lo, hi) = spread(seed, seq_v4);
            assert!(lo >= 24 && hi <= 120, "v4 seed {seed}: {lo}..{hi}");
            let subnets = (0..1u32 << 16).map(|i| v4(i << 16 | 1));
            let (lo, hi) = spread(seed, subnets);
            assert!(lo >= 24 && hi <= 120, "subnets seed {seed}: {lo}..{hi}");
            let seq_v6 = (0..1u64 << 16).map(|i| {
                let mut o = [0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                o[8..].copy_from_slice(&i.to_be_bytes());
                Addr::from_v6(o)
            });
            let (lo, hi) = spread(seed, seq_v6);
            assert!(lo >= 24 && hi <= 120, "v6 seed {seed}: {lo}..{hi}");
        }
    }

    #[test]
    fn seed_changes_the_mapping() {
        let a = SourceBuckets::new(1, 1, 1024, 1);
        let b = SourceBuckets::new(1, 1, 1024, 2);
        let same = (0..1000u32)
            .filter(|&i| a.slot_of(&v4(i)) == b.slot_of(&v4(i)))
            .count();
        assert!(same < 10, "{same} of 1000 addresses kept their slot");
    }

    proptest! {
        /// Over any forward run of the clock, admissions never exceed the
        /// burst plus what the rate earned, and nothing panics.
        #[test]
        fn prop_never_exceeds_rate(rate in 1u32..2_000_000, burst in 1u32..1000,
                                   start in any::<u64>(),
                                   steps in proptest::collection::vec(0u64..5 * MS, 1..300)) {
            let mut b = TokenBucket::new(rate, burst);
            let mut now = start;
            let mut elapsed = 0u128;
            let mut passed = 0u128;
            // Start from an empty bucket at `start` so the bound is exact.
            drain(&mut b, now);
            let capped = steps.iter().any(|&s| {
                u128::from(s) * u128::from(rate) > u128::from(burst - 1) * u128::from(SEC)
            });
            for step in steps {
                now = now.wrapping_add(step);
                elapsed += u128::from(step);
                passed += drain(&mut b, now) as u128;
            }
            let earned = elapsed * u128::from(rate) / u128::from(SEC);
            if capped {
                prop_assert!(passed <= earned, "{passed} > {earned}");
            } else {
                // Nothing spilled over the burst: every whole token earned
                // was handed out.
                prop_assert_eq!(passed, earned);
            }
        }

        #[test]
        fn prop_arbitrary_clocks_never_panic(rate in any::<u32>(), burst in any::<u32>(),
                                             times in proptest::collection::vec(any::<u64>(), 1..50)) {
            let mut b = TokenBucket::new(rate, burst);
            let mut s = SourceBuckets::new(rate, burst, 8, 3);
            for t in times {
                b.take(t);
                s.take(&v4(t as u32), t);
            }
        }
    }
}
