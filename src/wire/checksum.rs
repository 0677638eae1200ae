//! The Internet checksum: full computation (RFC 1071), the pseudo-headers
//! TCP, UDP and ICMPv6 put in front of their data, and incremental update
//! (RFC 1624) for the fields rampart rewrites.
//!
//! The checksum is the one's complement of the one's-complement sum of the
//! data taken as big-endian 16-bit words (an odd trailing byte is padded with
//! a zero byte). One's-complement addition is ordinary addition with the
//! carries wrapped back into the low 16 bits, which makes it commutative and
//! associative: a sum can be accumulated in a wide integer and folded once at
//! the end ([`fold`]), and because 2^16 ≡ 1 (mod 0xffff) a big-endian 32-bit
//! word contributes the same as its two 16-bit halves, which [`sum`] exploits.
//!
//! Pseudo-headers: TCP and UDP over IPv4 sum source address, destination
//! address, zero byte + protocol, and the transport length (RFC 793 §3.1,
//! RFC 768); over IPv6 (TCP, UDP and ICMPv6) the 16-byte addresses, a 32-bit
//! upper-layer length and the next-header value (RFC 8200 §8.1). The IPv4
//! header checksum covers the header only; ICMPv4 covers its message only.
//!
//! Incremental update: when a 16-bit word `m` of checksummed data becomes
//! `m'`, RFC 1624 eqn. 3 gives the new checksum without touching the rest of
//! the data: `HC' = ~(~HC + ~m + m')`. Eqn. 3 (unlike eqn. 2 of RFC 1141) is
//! exact: applied to a correctly computed checksum it yields bit for bit what
//! a full recomputation would, including the 0x0000/0xffff corner. Several
//! changed words are one sum of `~m + m'` terms, so [`Delta`] accumulates a
//! whole rewrite (addresses and ports) and applies it to each checksum once.
//!
//! UDP: a transmitted checksum of 0 means "no checksum" on IPv4 and must be
//! left at 0; a computed checksum of 0 is sent as 0xffff (RFC 768). On IPv6
//! the UDP checksum is mandatory (RFC 8200 §8.1), so 0 never stays 0 there.
//! [`udp_update`] encodes both rules.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

/// Folds a wide one's-complement accumulator down to 16 bits: the value in
/// `0..=0xffff` congruent to `s` modulo 0xffff, zero only for zero.
#[inline]
fn fold64(s: u64) -> u16 {
    // Adding a value to itself rotated by half its width leaves, in the
    // upper half, hi + lo plus the carry out of lo + hi: the halves' sum
    // with its end-around carry, in one add. 2^32 - 1 is a multiple of
    // 0xffff, so the 32-bit step keeps the congruence the 16-bit one needs,
    // and neither step turns a non-zero sum into zero.
    let s = (s.wrapping_add(s.rotate_left(32)) >> 32) as u32;
    (s.wrapping_add(s.rotate_left(16)) >> 16) as u16
}

/// Folds a partial sum (as returned by [`sum`]) to 16 bits with end-around carry.
#[inline]
pub fn fold(s: u32) -> u16 {
    fold64(u64::from(s))
}

/// The checksum of data whose partial sum is `s`: the one's complement of the folded sum.
#[inline]
pub fn finish(s: u32) -> u16 {
    !fold(s)
}

/// RFC 1071 sum of `data` added to `initial`, as a partial (not yet folded to
/// 16 bits) value congruent to the one's-complement sum. Chain calls by
/// passing the previous result as `initial`; a trailing odd byte is padded
/// with zero, so only the last chunk of a chain may have odd length.
pub fn sum(data: &[u8], initial: u32) -> u32 {
    // RFC 1071 §2(B): the one's-complement sum does not depend on byte
    // order, so the words are added as they sit in memory (no byte swap per
    // word) and only the folded 16-bit result is swapped into network order.
    let mut acc = 0u64;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        let v = u64::from_ne_bytes(b);
        acc += (v & 0xffff_ffff) + (v >> 32);
    }
    // The tail, zero-padded at its end: an odd last byte is the first byte
    // of a 16-bit word, as the RFC pads it. Assembled in a register: copying
    // it into a zeroed array and loading that back would stall on store
    // forwarding.
    let mut v = 0u64;
    for (i, b) in words.remainder().iter().enumerate() {
        let shift = if cfg!(target_endian = "little") {
            8 * i
        } else {
            56 - 8 * i
        };
        v |= u64::from(*b) << shift;
    }
    acc += (v & 0xffff_ffff) + (v >> 32);
    let native = fold64(acc);
    let be = if cfg!(target_endian = "little") {
        native.swap_bytes()
    } else {
        native
    };
    let s = u64::from(initial) + u64::from(be);
    ((s & 0xffff_ffff) + (s >> 32)) as u32
}

/// The Internet checksum of `data` (RFC 1071).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(data, 0))
}

/// Partial sum of the IPv4 pseudo-header (RFC 793 §3.1, RFC 768): source,
/// destination, zero + protocol, transport length.
#[inline]
pub fn pseudo_v4(src: [u8; 4], dst: [u8; 4], proto: u8, l4_len: u16) -> u32 {
    let s = u64::from(u32::from_be_bytes(src))
        + u64::from(u32::from_be_bytes(dst))
        + u64::from(proto)
        + u64::from(l4_len);
    u32::from(fold64(s))
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination,
/// 32-bit upper-layer packet length, three zero bytes + next header.
#[inline]
pub fn pseudo_v6(src: &[u8; 16], dst: &[u8; 16], next_header: u8, l4_len: u32) -> u32 {
    let s = sum(src, 0);
    let s = sum(dst, s);
    let s = u64::from(s) + u64::from(l4_len) + u64::from(next_header);
    u32::from(fold64(s))
}

/// RFC 1624 eqn. 3 for one 16-bit word that changed from `old` to `new`.
#[inline]
pub fn update_u16(csum: u16, old: u16, new: u16) -> u16 {
    Delta::new().u16(old, new).apply(csum)
}

/// RFC 1624 eqn. 3 for a 32-bit field (two adjacent words, e.g. an IPv4
/// address or a TCP sequence number).
#[inline]
pub fn update_u32(csum: u16, old: u32, new: u32) -> u16 {
    Delta::new().u32(old, new).apply(csum)
}

/// RFC 1624 eqn. 3 for a 16-byte field (an IPv6 address).
#[inline]
pub fn update_addr16(csum: u16, old: &[u8; 16], new: &[u8; 16]) -> u16 {
    Delta::new().bytes(old, new).apply(csum)
}

/// RFC 1624 eqn. 3 for any run of changed words. `old` and `new` must have
/// the same even length and start on a 16-bit boundary of the checksummed
/// data; a trailing odd byte is treated as the high byte of a word, which is
/// only right if it really is one.
#[inline]
pub fn update(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    Delta::new().bytes(old, new).apply(csum)
}

/// A UDP checksum after a change summarised by `delta`, keeping the UDP
/// rules: on IPv4 a checksum of 0 means "none" and stays 0; a result of 0 is
/// sent as 0xffff (RFC 768), on both families.
#[inline]
pub fn udp_update(csum: u16, delta: Delta, ipv4: bool) -> u16 {
    if ipv4 && csum == 0 {
        return 0;
    }
    match delta.apply(csum) {
        0 => 0xffff,
        c => c,
    }
}

/// The accumulated `Σ(~m + m')` of a set of changed words (RFC 1624 eqn. 3),
/// applied to any checksum that covers all of them. Building one delta for a
/// rewrite and applying it to both the IPv4 header checksum and the transport
/// checksum costs one fold per checksum instead of one per field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta(u64);

impl Delta {
    #[inline]
    pub const fn new() -> Delta {
        Delta(0)
    }

    /// Adds a 16-bit word changed from `old` to `new`.
    #[inline]
    #[must_use]
    pub const fn u16(self, old: u16, new: u16) -> Delta {
        Delta(self.0 + (!old) as u64 + new as u64)
    }

    /// Adds a 32-bit field changed from `old` to `new`.
    #[inline]
    #[must_use]
    pub const fn u32(self, old: u32, new: u32) -> Delta {
        // ~old as a u32 is the two complemented 16-bit halves side by side;
        // congruence mod 0xffff lets both be added whole.
        Delta(self.0 + (!old) as u64 + new as u64)
    }

    /// Adds a run of changed bytes (see [`update`] for the alignment rule).
    #[inline]
    #[must_use]
    pub fn bytes(self, old: &[u8], new: &[u8]) -> Delta {
        // Σ~m ≡ ~Σm in one's complement, so each side is summed once.
        let old_sum = fold(sum(old, 0));
        let new_sum = fold(sum(new, 0));
        Delta(self.0 + u64::from(!old_sum) + u64::from(new_sum))
    }

    /// Adds another delta (for a checksum that covers both sets of words).
    #[inline]
    #[must_use]
    pub const fn plus(self, other: Delta) -> Delta {
        Delta(self.0 + other.0)
    }

    /// The checksum `csum` updated by this delta: `~(~HC + Σ(~m + m'))`.
    #[inline]
    pub fn apply(self, csum: u16) -> u16 {
        !fold64(u64::from(!csum) + self.0)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The fold as four shift-and-add steps, each adding the carries back.
    fn fold_stepwise(mut s: u64) -> u16 {
        s = (s & 0xffff_ffff) + (s >> 32);
        s = (s & 0xffff_ffff) + (s >> 32);
        s = (s & 0xffff) + (s >> 16);
        s = (s & 0xffff) + (s >> 16);
        s as u16
    }

    #[test]
    fn fold_corners() {
        for s in [
            0,
            1,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
            0xffff_0000_ffff,
            u64::MAX,
            u64::MAX - 1,
        ] {
            assert_eq!(fold64(s), fold_stepwise(s), "{s:#x}");
        }
    }

    proptest! {
        #[test]
        fn fold_matches_stepwise(s in any::<u64>()) {
            prop_assert_eq!(fold64(s), fold_stepwise(s));
        }
    }

    /// Word-by-word reference: the textbook 16-bit loop of RFC 1071 §4.1.
    fn reference(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        let mut i = 0;
        while i + 1 < data.len() {
            s += u32::from(u16::from_be_bytes([data[i], data[i + 1]]));
            i += 2;
        }
        if i < data.len() {
            s += u32::from(data[i]) << 8;
        }
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 worked example: words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data, 0)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn ipv4_header_known_checksum() {
        // A classic header: 45 00 00 73 00 00 40 00 40 11 [b8 61] c0 a8 00 01 c0 a8 00 c7
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
        h[10] = 0xb8;
        h[11] = 0x61;
        // A correct header sums to 0xffff, so its checksum over itself is 0.
        assert_eq!(checksum(&h), 0);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(checksum(&[0x12]), !0x1200);
        assert_eq!(
            checksum(&[0x12, 0x34, 0x56]),
            reference(&[0x12, 0x34, 0x56])
        );
    }

    #[test]
    fn rfc1624_example() {
        // RFC 1624 §4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives HC' = 0x0000.
        assert_eq!(update_u16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn udp_zero_rules() {
        assert_eq!(udp_update(0, Delta::new().u16(1, 2), true), 0);
        // A change that lands on 0 is sent as 0xffff.
        let d = Delta::new().u16(0x5555, 0x3285);
        assert_eq!(d.apply(0xdd2f), 0);
        assert_eq!(udp_update(0xdd2f, d, true), 0xffff);
        assert_eq!(udp_update(0xdd2f, d, false), 0xffff);
    }

    proptest! {
        #[test]
        fn sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..200),
                                 split in 0usize..100) {
            prop_assert_eq!(checksum(&data), reference(&data));
            // Chaining at an even split equals one pass.
            let split = (split * 2).min(data.len() & !1);
            let chained = finish(sum(&data[split..], sum(&data[..split], 0)));
            prop_assert_eq!(chained, reference(&data));
        }

        #[test]
        fn incremental_equals_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 2..120),
            at in 0usize..60,
            new in proptest::collection::vec(any::<u8>(), 16),
            width in prop_oneof![Just(2usize), Just(4), Just(16)],
        ) {
            // A non-zero word rules out the all-zero corner that no real header hits.
            data[0] |= 0x40;
            if data.len() % 2 == 1 { data.push(0); }
            let at = (at * 2) % data.len();
            let at = at.max(2);
            prop_assume!(at + width <= data.len());
            let before = checksum(&data);
            let old = data[at..at + width].to_vec();
            data[at..at + width].copy_from_slice(&new[..width]);
            let full = checksum(&data);
            let inc = match width {
                2 => update_u16(before, u16::from_be_bytes([old[0], old[1]]),
                                u16::from_be_bytes([new[0], new[1]])),
                4 => update_u32(before, u32::from_be_bytes([old[0], old[1], old[2], old[3]]),
                                u32::from_be_bytes([new[0], new[1], new[2], new[3]])),
                _ => update_addr16(before, &old[..].try_into().unwrap(),
                                   &new[..16].try_into().unwrap()),
            };
            prop_assert_eq!(inc, full);
            prop_assert_eq!(update(before, &old, &new[..width]), full);
        }

        #[test]
        fn pseudo_headers_match_reference(src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(),
                                          proto in any::<u8>(), len in any::<u16>()) {
            let mut v6 = Vec::new();
            v6.extend_from_slice(&src);
            v6.extend_from_slice(&dst);
            v6.extend_from_slice(&u32::from(len).to_be_bytes());
            v6.extend_from_slice(&[0, 0, 0, proto]);
            prop_assert_eq!(finish(pseudo_v6(&src, &dst, proto, u32::from(len))), reference(&v6));
            let (s4, d4) = ([src[0], src[1], src[2], src[3]], [dst[0], dst[1], dst[2], dst[3]]);
            let mut v4 = Vec::new();
            v4.extend_from_slice(&s4);
            v4.extend_from_slice(&d4);
            v4.extend_from_slice(&[0, proto]);
            v4.extend_from_slice(&len.to_be_bytes());
            prop_assert_eq!(finish(pseudo_v4(s4, d4, proto, len)), reference(&v4));
        }
    }
}
