//! SYN cookies: the SYN proxy answers a client's SYN without keeping any
//! state, by encoding what it must remember into the ISN of its SYN-ACK and
//! checking it when the client's ACK comes back (D. J. Bernstein's scheme as
//! Linux implements it in `net/ipv4/syncookies.c`; the layout here is ours).
//!
//! Cookie (our ISN, 32 bits):
//!
//! ```text
//!   31   30..28      27..0
//! +----+---------+------------------------------------------------------+
//! | P  | MSS idx | low 28 bits of SipHash-1-3(K[gen], src | dst | sport |
//! |    |         |   dport | client ISN | gen | MSS idx | opt_bits)      |
//! +----+---------+------------------------------------------------------+
//! ```
//!
//! * `gen = now_secs / rotate_secs` numbers the key generations and `P` is
//!   `gen & 1`. [`check`] takes the current generation when `P` matches it and
//!   the one before otherwise, so a cookie is accepted for the rest of its own
//!   generation and all of the next one (between `rotate_secs` and
//!   `2 * rotate_secs`), then never again.
//! * `K[gen]` is SipHash-1-3-128 of `gen` under a 128-bit master key. Workers
//!   given the same master derive the same keys from the clock alone, so a
//!   cookie minted on one worker checks on any other with no shared state.
//! * `MSS idx` points into [`MSS_TABLE`]: the client's MSS rounded down to one
//!   of eight common values (a SYN without the option gets the RFC 9293
//!   §3.7.1 default: 536 for IPv4, 1220 for IPv6).
//! * Window scale and SACK-permitted need more room, so, like Linux, they are
//!   kept only when the client offered timestamps (RFC 7323): the low 6 bits
//!   of our SYN-ACK's TSval carry `opt_bits` and the client echoes them back
//!   as TSecr in its ACK. `opt_bits` is 0 without timestamps, otherwise bit 5
//!   (marker) | bit 4 SACK-permitted | bits 3..0 window scale (0..=14, offers
//!   above 14 clamped to 14 per RFC 7323 §2.3, 0xF for none). Without
//!   timestamps the connection keeps only its MSS. Replacing the low 6 bits
//!   moves our TSval by under 64 ticks of the clock, which the connection's
//!   timestamp offset absorbs like any other difference.
//!
//! Everything the ACK hands back (MSS index, `opt_bits`, the generation) is
//! under the hash, so it is authenticated: a forger must guess 28 bits,
//! 2^-28 per try. An ACK without timestamps for a cookie made with them
//! (or the reverse) hashes different `opt_bits` and is refused.
//!
//! [`make`] and [`check`] run per packet: each computes exactly one SipHash
//! over three 64-bit words (IPv4) or six (IPv6), never allocates and never
//! panics.
//! [`Secrets::set_clock`] is one division and a compare unless the
//! generation moved.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt;
use std::hash::Hasher;
use std::num::NonZeroU32;

use siphasher::sip::SipHasher13;
use siphasher::sip128::{Hasher128, SipHasher13 as SipHasher13x128};

use crate::flow::FlowKey;

/// The MSS values a cookie can carry, indexed by its 3-bit MSS field. They
/// cluster where real paths sit: 1460 (Ethernet), 1440-1452 (PPPoE, tunnels),
/// 1220 (IPv6 minimum MTU), 536 (the IPv4 default).
pub const MSS_TABLE: [u16; 8] = [536, 1220, 1300, 1360, 1400, 1440, 1452, 1460];

/// RFC 9293 §3.7.1: the send MSS to assume when a SYN has no MSS option.
const DEFAULT_MSS_V4: u16 = 536;
const DEFAULT_MSS_V6: u16 = 1220;

const PARITY_SHIFT: u32 = 31;
const MSS_SHIFT: u32 = 28;
const MSS_IDX_MASK: u32 = 0x7;
const HASH_MASK: u32 = (1 << MSS_SHIFT) - 1;

/// The TSval / TSecr bits that carry `opt_bits`.
const TS_OPT_MASK: u32 = 0x3F;
const OPT_MARKER: u8 = 0x20;
const OPT_SACK: u8 = 0x10;
const OPT_WSCALE: u8 = 0x0F;
const WSCALE_NONE: u8 = 0x0F;
/// RFC 7323 §2.3: a shift count above 14 is used as 14.
const MAX_WSCALE: u8 = 14;

/// A SipHash key as the two little-endian words `SipHasher13` takes.
type SipKey = (u64, u64);

/// The cookie keys of the current and the previous generation, derived from
/// a master key and the clock. Each worker holds its own copy and calls
/// [`Secrets::set_clock`] from its loop.
#[derive(Clone)]
pub struct Secrets {
    master: [u8; 16],
    rotate_secs: NonZeroU32,
    gen: u32,
    cur: SipKey,
    prev: SipKey,
}

impl Secrets {
    /// Keys for the generation `now_secs / rotate_secs`. A `rotate_secs` of 0
    /// is taken as 1 (validating it is the configuration's job; this must
    /// not panic).
    pub fn new(master: [u8; 16], rotate_secs: u32, now_secs: u32) -> Secrets {
        let rotate_secs = NonZeroU32::new(rotate_secs).unwrap_or(NonZeroU32::MIN);
        let gen = now_secs / rotate_secs;
        Secrets {
            master,
            rotate_secs,
            gen,
            cur: derive(&master, gen),
            // At generation 0 this key is never used: check refuses the
            // generation before 0 rather than wrap to u32::MAX.
            prev: derive(&master, gen.wrapping_sub(1)),
        }
    }

    /// Like [`Secrets::new`] with a master key from the OS random source
    /// ([`crate::random`]).
    ///
    /// # Errors
    ///
    /// When the OS has no random bytes to give.
    pub fn from_os_random(
        rotate_secs: u32,
        now_secs: u32,
    ) -> Result<Secrets, crate::random::RandomError> {
        Ok(Secrets::new(crate::random::key()?, rotate_secs, now_secs))
    }

    /// Move to the generation of `now_secs`. One step forward keeps the old
    /// current key as the previous one (one SipHash); a jump, or a clock that
    /// went backwards, derives both afresh.
    #[inline]
    pub fn set_clock(&mut self, now_secs: u32) {
        let gen = now_secs / self.rotate_secs;
        if gen != self.gen {
            self.rotate_to(gen);
        }
    }

    #[cold]
    fn rotate_to(&mut self, gen: u32) {
        if self.gen.checked_add(1) == Some(gen) {
            self.prev = self.cur;
        } else {
            self.prev = derive(&self.master, gen.wrapping_sub(1));
        }
        self.cur = derive(&self.master, gen);
        self.gen = gen;
    }

    /// The current key generation, `now_secs / rotate_secs`.
    #[inline]
    pub fn generation(&self) -> u32 {
        self.gen
    }
}

/// Key material stays out of logs.
impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("rotate_secs", &self.rotate_secs)
            .field("gen", &self.gen)
            .finish_non_exhaustive()
    }
}

/// The TCP options a SYN offered (also the parser's result for any segment's
/// options). `timestamp` is `(TSval, TSecr)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynOptions {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_perm: bool,
    pub timestamp: Option<(u32, u32)>,
}

/// What a cookie remembers of the SYN: what our SYN-ACK advertised and the
/// backend connection must be set up with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieData {
    /// The client's MSS rounded down to a [`MSS_TABLE`] value.
    pub mss: u16,
    /// The client's window scale (at most 14); only kept with timestamps.
    pub wscale: Option<u8>,
    /// SACK-permitted; only kept with timestamps.
    pub sack_perm: bool,
    pub timestamps: bool,
}

/// Index of the largest [`MSS_TABLE`] entry not above `client_mss`, or 0 when
/// `client_mss` is below every entry.
#[inline]
pub fn mss_index(client_mss: u16) -> u8 {
    // The table is sorted, so the index is the number of entries after the
    // first that fit; counting compiles to compares without branches.
    MSS_TABLE
        .iter()
        .skip(1)
        .map(|&m| u8::from(m <= client_mss))
        .sum()
}

/// Cookie for the client's SYN `key` (client -> VIP) with sequence number
/// `client_isn`. Returns our ISN, the TSval our SYN-ACK must carry when the
/// client offered timestamps (`ts_clock` with its low 6 bits replaced by the
/// option bits), and the options the SYN-ACK should advertise back, which are
/// exactly what [`check`] will return.
#[inline]
pub fn make(
    s: &Secrets,
    key: &FlowKey,
    client_isn: u32,
    offered: &SynOptions,
    ts_clock: u32,
) -> (u32, Option<u32>, CookieData) {
    let default_mss = if key.src.is_v4() {
        DEFAULT_MSS_V4
    } else {
        DEFAULT_MSS_V6
    };
    let mss_idx = mss_index(offered.mss.unwrap_or(default_mss));
    let opt = opt_bits(offered);
    let mac = cookie_mac(s.cur, key, client_isn, s.gen, mss_idx, opt);
    let cookie = ((s.gen & 1) << PARITY_SHIFT) | (u32::from(mss_idx) << MSS_SHIFT) | mac;
    let tsval = offered
        .timestamp
        .map(|_| (ts_clock & !TS_OPT_MASK) | u32::from(opt));
    (cookie, tsval, decode(mss_idx, opt))
}

/// Validate the client's ACK (`key` in the same direction as its SYN):
/// `ack_seq` is its sequence number (client ISN + 1), `ack_num` its
/// acknowledgment number (our ISN + 1), `tsecr` its echoed timestamp if it
/// sent the option. `None` for anything that is not a live cookie of ours.
#[inline]
pub fn check(
    s: &Secrets,
    key: &FlowKey,
    ack_seq: u32,
    ack_num: u32,
    tsecr: Option<u32>,
) -> Option<CookieData> {
    let cookie = ack_num.wrapping_sub(1);
    let client_isn = ack_seq.wrapping_sub(1);
    let (gen, sip_key) = if cookie >> PARITY_SHIFT == s.gen & 1 {
        (s.gen, s.cur)
    } else {
        (s.gen.checked_sub(1)?, s.prev)
    };
    let opt = match tsecr {
        None => 0,
        Some(ts) => {
            let opt = (ts & TS_OPT_MASK) as u8;
            if opt & OPT_MARKER == 0 {
                return None;
            }
            opt
        }
    };
    let mss_idx = ((cookie >> MSS_SHIFT) & MSS_IDX_MASK) as u8;
    if cookie_mac(sip_key, key, client_isn, gen, mss_idx, opt) != cookie & HASH_MASK {
        return None;
    }
    Some(decode(mss_idx, opt))
}

/// `opt_bits` for an offer: 0 without timestamps, see the module doc.
#[inline]
fn opt_bits(offered: &SynOptions) -> u8 {
    if offered.timestamp.is_none() {
        return 0;
    }
    let wscale = offered.wscale.map_or(WSCALE_NONE, |w| w.min(MAX_WSCALE));
    let sack = if offered.sack_perm { OPT_SACK } else { 0 };
    OPT_MARKER | sack | wscale
}

/// The inverse of [`opt_bits`] plus the MSS lookup; [`make`] and [`check`]
/// share it so what the SYN-ACK advertises is what the ACK gives back.
#[inline]
fn decode(mss_idx: u8, opt: u8) -> CookieData {
    let timestamps = opt & OPT_MARKER != 0;
    let wscale = opt & OPT_WSCALE;
    CookieData {
        mss: mss_value(mss_idx),
        wscale: (timestamps && wscale != WSCALE_NONE).then_some(wscale),
        sack_perm: timestamps && opt & OPT_SACK != 0,
        timestamps,
    }
}

#[inline]
fn mss_value(mss_idx: u8) -> u16 {
    // The mask keeps the index in range, so the fallback is dead code the
    // optimiser drops.
    MSS_TABLE
        .get(usize::from(mss_idx) & MSS_IDX_MASK as usize)
        .copied()
        .unwrap_or(DEFAULT_MSS_V4)
}

/// The 28 hash bits of a cookie.
#[inline]
fn cookie_mac(
    sip_key: SipKey,
    key: &FlowKey,
    client_isn: u32,
    gen: u32,
    mss_idx: u8,
    opt: u8,
) -> u32 {
    // Whole words, so the hasher never buffers a partial one. IPv4 (both
    // addresses IPv4-mapped): src and dst in one word | sport, dport,
    // client ISN | generation, MSS index, opt_bits: three words. IPv6: the
    // two addresses take four words, six in all. The message length is
    // part of SipHash's last block, so the two forms never collide.
    let ports_isn = u64::from(key.sport) << 48 | u64::from(key.dport) << 32 | u64::from(client_isn);
    let meta = u64::from(gen) << 32 | u64::from(mss_idx) << 8 | u64::from(opt);
    let mut h = SipHasher13::new_with_keys(sip_key.0, sip_key.1);
    if key.src.is_v4() && key.dst.is_v4() {
        let addrs = u64::from(u32::from_be_bytes(key.src.v4_octets())) << 32
            | u64::from(u32::from_be_bytes(key.dst.v4_octets()));
        for w in [addrs, ports_isn, meta] {
            h.write_u64(w);
        }
    } else {
        let (s0, s1) = addr_words(&key.src);
        let (d0, d1) = addr_words(&key.dst);
        for w in [s0, s1, d0, d1, ports_isn, meta] {
            h.write_u64(w);
        }
    }
    h.finish() as u32 & HASH_MASK
}

/// An address as two little-endian words.
#[inline(always)]
fn addr_words(a: &crate::flow::Addr) -> (u64, u64) {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    let (l, h) = a.0.split_at(8);
    lo.copy_from_slice(l);
    hi.copy_from_slice(h);
    (u64::from_le_bytes(lo), u64::from_le_bytes(hi))
}

/// `K[gen]`: SipHash-1-3-128 of the generation number under the master key.
fn derive(master: &[u8; 16], gen: u32) -> SipKey {
    let mut h = SipHasher13x128::new_with_key(master);
    h.write(&gen.to_le_bytes());
    h.finish128().as_u64()
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
    use crate::flow::{proto, Addr};
    use proptest::prelude::*;

    const MASTER: [u8; 16] = *b"rampart-cookie-k";
    const ROTATE: u32 = 64;

    fn v4(a: [u8; 4]) -> Addr {
        Addr::from_v4(a)
    }

    fn v6(last: u8) -> Addr {
        let mut o = [0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        o[15] = last;
        Addr::from_v6(o)
    }

    fn syn_key() -> FlowKey {
        FlowKey {
            src: v4([198, 18, 51, 7]),
            dst: v4([198, 18, 2, 1]),
            sport: 40000,
            dport: 443,
            proto: proto::TCP,
        }
    }

    fn secrets_at_gen(gen: u32) -> Secrets {
        Secrets::new(MASTER, ROTATE, gen * ROTATE)
    }

    fn full_opts() -> SynOptions {
        SynOptions {
            mss: Some(1460),
            wscale: Some(7),
            sack_perm: true,
            timestamp: Some((0x1234_5678, 0)),
        }
    }

    /// Make a cookie and return what the client's ACK would carry:
    /// (ack_seq, ack_num, tsecr, advertised).
    fn ack_for(
        s: &Secrets,
        key: &FlowKey,
        isn: u32,
        o: &SynOptions,
    ) -> (u32, u32, Option<u32>, CookieData) {
        let (cookie, tsval, data) = make(s, key, isn, o, 0xdead_beef);
        (isn.wrapping_add(1), cookie.wrapping_add(1), tsval, data)
    }

    #[test]
    fn mss_index_rounds_down() {
        assert_eq!(mss_index(0), 0);
        assert_eq!(mss_index(535), 0);
        assert_eq!(mss_index(536), 0);
        assert_eq!(mss_index(1219), 0);
        assert_eq!(mss_index(1220), 1);
        assert_eq!(mss_index(1459), 6);
        assert_eq!(mss_index(1460), 7);
        assert_eq!(mss_index(9000), 7);
        assert_eq!(mss_index(u16::MAX), 7);
        for (i, &m) in MSS_TABLE.iter().enumerate() {
            assert_eq!(usize::from(mss_index(m)), i);
            assert_eq!(usize::from(mss_index(m + 1)), i);
        }
    }

    #[test]
    fn round_trip_with_timestamps() {
        let s = secrets_at_gen(1000);
        let (seq, ack, tsecr, adv) = ack_for(&s, &syn_key(), 77, &full_opts());
        let want = CookieData {
            mss: 1460,
            wscale: Some(7),
            sack_perm: true,
            timestamps: true,
        };
        assert_eq!(adv, want);
        assert_eq!(check(&s, &syn_key(), seq, ack, tsecr), Some(want));
    }

    #[test]
    fn without_timestamps_only_mss_survives() {
        let s = secrets_at_gen(1000);
        let o = SynOptions {
            timestamp: None,
            ..full_opts()
        };
        let (cookie, tsval, adv) = make(&s, &syn_key(), 5, &o, 999);
        assert_eq!(tsval, None);
        let want = CookieData {
            mss: 1460,
            wscale: None,
            sack_perm: false,
            timestamps: false,
        };
        assert_eq!(adv, want);
        assert_eq!(
            check(&s, &syn_key(), 6, cookie.wrapping_add(1), None),
            Some(want)
        );
    }

    #[test]
    fn missing_mss_takes_the_family_default() {
        let s = secrets_at_gen(3);
        let o = SynOptions::default();
        assert_eq!(make(&s, &syn_key(), 1, &o, 0).2.mss, 536);
        let k6 = FlowKey {
            src: v6(1),
            dst: v6(2),
            ..syn_key()
        };
        assert_eq!(make(&s, &k6, 1, &o, 0).2.mss, 1220);
    }

    #[test]
    fn tsval_carries_opt_bits() {
        let s = secrets_at_gen(3);
        let k = syn_key();
        let ts = |o: &SynOptions| make(&s, &k, 1, o, 0xabcd_ef7f).1.unwrap();
        // Clock bits above the low 6 are kept as they are.
        assert_eq!(ts(&full_opts()) & !0x3F, 0xabcd_ef40);
        assert_eq!(ts(&full_opts()) & 0x3F, 0x20 | 0x10 | 7);
        let o = SynOptions {
            wscale: None,
            sack_perm: false,
            ..full_opts()
        };
        assert_eq!(ts(&o) & 0x3F, 0x20 | 0xF);
        let o = SynOptions {
            wscale: Some(0),
            sack_perm: false,
            ..full_opts()
        };
        assert_eq!(ts(&o) & 0x3F, 0x20);
        // RFC 7323 §2.3: offers above 14 are clamped, and so advertised.
        let o = SynOptions {
            wscale: Some(200),
            ..full_opts()
        };
        assert_eq!(ts(&o) & 0x3F, 0x20 | 0x10 | 14);
        assert_eq!(make(&s, &k, 1, &o, 0).2.wscale, Some(14));
    }

    #[test]
    fn every_mss_and_option_combination_round_trips() {
        let s = secrets_at_gen(42);
        let k = syn_key();
        let wscales = std::iter::once(None).chain((0..=14).map(Some));
        for wscale in wscales {
            for (i, &mss) in MSS_TABLE.iter().enumerate() {
                for sack_perm in [false, true] {
                    for ts in [None, Some((1, 2))] {
                        let o = SynOptions {
                            mss: Some(mss),
                            wscale,
                            sack_perm,
                            timestamp: ts,
                        };
                        let (cookie, tsval, adv) = make(&s, &k, 1000, &o, 5555);
                        assert_eq!(cookie >> 28 & 7, i as u32);
                        assert_eq!(adv.mss, mss);
                        assert_eq!(adv.timestamps, ts.is_some());
                        assert_eq!(adv.wscale, if ts.is_some() { wscale } else { None });
                        assert_eq!(adv.sack_perm, ts.is_some() && sack_perm);
                        let got = check(&s, &k, 1001, cookie.wrapping_add(1), tsval);
                        assert_eq!(got, Some(adv), "{o:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn accepted_for_two_generations_then_refused() {
        let mut s = secrets_at_gen(500);
        let k = syn_key();
        let (seq, ack, tsecr, adv) = ack_for(&s, &k, 1, &full_opts());
        assert_eq!(check(&s, &k, seq, ack, tsecr), Some(adv));
        s.set_clock(501 * ROTATE + ROTATE - 1);
        assert_eq!(s.generation(), 501);
        assert_eq!(check(&s, &k, seq, ack, tsecr), Some(adv));
        s.set_clock(502 * ROTATE);
        assert_eq!(check(&s, &k, seq, ack, tsecr), None);
        // Fresh secrets at the later generations agree with rotated ones.
        assert_eq!(check(&secrets_at_gen(501), &k, seq, ack, tsecr), Some(adv));
        assert_eq!(check(&secrets_at_gen(502), &k, seq, ack, tsecr), None);
        assert_eq!(check(&secrets_at_gen(499), &k, seq, ack, tsecr), None);
    }

    #[test]
    fn rotation_matches_fresh_derivation() {
        let mut s = secrets_at_gen(10);
        for now in [
            10 * ROTATE + 1, // same generation
            11 * ROTATE,     // one step
            15 * ROTATE + 3, // jump
            7 * ROTATE,      // backwards
            8 * ROTATE,      // one step
            u32::MAX,        // far future
        ] {
            s.set_clock(now);
            let fresh = Secrets::new(MASTER, ROTATE, now);
            assert_eq!(s.gen, fresh.gen);
            assert_eq!(s.cur, fresh.cur, "now {now}");
            assert_eq!(s.prev, fresh.prev, "now {now}");
        }
    }

    #[test]
    fn zero_rotation_is_one_second() {
        let s = Secrets::new(MASTER, 0, 1234);
        assert_eq!(s.generation(), 1234);
    }

    #[test]
    fn generation_zero_has_no_previous() {
        let k = syn_key();
        // A cookie from generation 1 seen at generation 0 would need gen -1.
        let (seq, ack, tsecr, _) = ack_for(&secrets_at_gen(1), &k, 1, &full_opts());
        assert_eq!((ack.wrapping_sub(1)) >> 31, 1);
        let s0 = secrets_at_gen(0);
        assert_eq!(check(&s0, &k, seq, ack, tsecr), None);
        // Generation 0's own cookies work, and flipping their parity does not.
        let (seq, ack, tsecr, adv) = ack_for(&s0, &k, 1, &full_opts());
        assert_eq!(check(&s0, &k, seq, ack, tsecr), Some(adv));
        let forged = (ack.wrapping_sub(1) ^ 1 << 31).wrapping_add(1);
        assert_eq!(check(&s0, &k, seq, forged, tsecr), None);
    }

    #[test]
    fn other_master_refuses() {
        let k = syn_key();
        let (seq, ack, tsecr, _) = ack_for(&secrets_at_gen(9), &k, 1, &full_opts());
        let other = Secrets::new(*b"another-master-k", ROTATE, 9 * ROTATE);
        assert_eq!(check(&other, &k, seq, ack, tsecr), None);
    }

    #[test]
    fn tampering_is_refused() {
        let s = secrets_at_gen(77);
        let k = syn_key();
        let isn = 0x0102_0304;
        let (seq, ack, tsecr, adv) = ack_for(&s, &k, isn, &full_opts());
        let ts = tsecr.unwrap();
        assert_eq!(check(&s, &k, seq, ack, tsecr), Some(adv));

        let cookie = ack.wrapping_sub(1);
        for bit in 0..32 {
            let bad = (cookie ^ 1 << bit).wrapping_add(1);
            assert_eq!(check(&s, &k, seq, bad, tsecr), None, "cookie bit {bit}");
        }
        for bit in 0..6 {
            let bad = Some(ts ^ 1 << bit);
            assert_eq!(check(&s, &k, seq, ack, bad), None, "tsecr bit {bit}");
        }
        // The clock bits of TSecr are not ours to check.
        for bit in 6..32 {
            let fine = Some(ts ^ 1 << bit);
            assert_eq!(check(&s, &k, seq, ack, fine), Some(adv), "tsecr bit {bit}");
        }
        // Timestamps negotiated but absent from the ACK, and the reverse.
        assert_eq!(check(&s, &k, seq, ack, None), None);
        let o = SynOptions {
            timestamp: None,
            ..full_opts()
        };
        let (seq2, ack2, _, _) = ack_for(&s, &k, isn, &o);
        assert_eq!(check(&s, &k, seq2, ack2, Some(0x20)), None);
        assert_eq!(check(&s, &k, seq2, ack2, Some(0x3F)), None);

        assert_eq!(check(&s, &k, seq.wrapping_add(1), ack, tsecr), None);
        assert_eq!(check(&s, &k, seq.wrapping_sub(1), ack, tsecr), None);
        let tuples = [
            FlowKey {
                src: v4([198, 18, 51, 8]),
                ..k
            },
            FlowKey {
                dst: v4([198, 18, 2, 2]),
                ..k
            },
            FlowKey {
                sport: k.sport + 1,
                ..k
            },
            FlowKey {
                dport: k.dport + 1,
                ..k
            },
            k.reversed(),
        ];
        for t in tuples {
            assert_eq!(check(&s, &t, seq, ack, tsecr), None, "{t:?}");
        }
    }

    #[test]
    fn debug_hides_keys() {
        let s = secrets_at_gen(5);
        let shown = format!("{s:?}");
        assert!(shown.contains("gen: 5"), "{shown}");
        assert!(!shown.contains("master"), "{shown}");
    }

    #[test]
    fn os_random_secrets_work() {
        let a = Secrets::from_os_random(ROTATE, 1000).unwrap();
        let b = Secrets::from_os_random(ROTATE, 1000).unwrap();
        assert_ne!(a.master, b.master);
        let k = syn_key();
        let (seq, ack, tsecr, adv) = ack_for(&a, &k, 1, &full_opts());
        assert_eq!(check(&a, &k, seq, ack, tsecr), Some(adv));
        assert_eq!(check(&b, &k, seq, ack, tsecr), None);
    }

    /// splitmix64: a fast, deterministic source for the bulk test.
    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn random_acks_are_refused() {
        let s = secrets_at_gen(1234);
        let mut rng = 0x5eed_u64;
        let mut accepted = 0u32;
        for _ in 0..1_000_000 {
            let a = splitmix(&mut rng);
            let b = splitmix(&mut rng);
            let c = splitmix(&mut rng);
            let k = FlowKey {
                src: v4((a as u32).to_be_bytes()),
                dst: v4([198, 18, 2, 1]),
                sport: (a >> 32) as u16,
                dport: 443,
                proto: proto::TCP,
            };
            // Half the forgeries carry a TSecr with the marker bit set.
            let tsecr = (c & 1 == 1).then_some((c >> 32) as u32 | 0x20);
            if check(&s, &k, b as u32, (b >> 32) as u32, tsecr).is_some() {
                accepted += 1;
            }
        }
        // Expected 1e6 / 2^28 ~ 0.004.
        assert!(accepted <= 1, "{accepted} forged ACKs accepted");
    }

    fn addr() -> impl Strategy<Value = Addr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(Addr::from_v4),
            any::<[u8; 16]>().prop_map(Addr::from_v6),
        ]
    }

    fn flow() -> impl Strategy<Value = FlowKey> {
        (addr(), addr(), any::<u16>(), any::<u16>()).prop_map(|(src, dst, sport, dport)| FlowKey {
            src,
            dst,
            sport,
            dport,
            proto: proto::TCP,
        })
    }

    fn isn() -> impl Strategy<Value = u32> {
        prop_oneof![Just(u32::MAX), Just(0), Just(u32::MAX - 1), any::<u32>()]
    }

    fn options() -> impl Strategy<Value = SynOptions> {
        (
            proptest::option::of(any::<u16>()),
            proptest::option::of(prop_oneof![0u8..=14, any::<u8>()]),
            any::<bool>(),
            proptest::option::of(any::<(u32, u32)>()),
        )
            .prop_map(|(mss, wscale, sack_perm, timestamp)| SynOptions {
                mss,
                wscale,
                sack_perm,
                timestamp,
            })
    }

    proptest! {
        #[test]
        fn prop_round_trip(k in flow(), isn in isn(), o in options(),
                           ts_clock in any::<u32>(), gen in 1u32..1_000_000,
                           next in any::<bool>()) {
            let mut s = secrets_at_gen(gen);
            let (cookie, tsval, adv) = make(&s, &k, isn, &o, ts_clock);
            let default = if k.src.is_v4() { 536 } else { 1220 };
            prop_assert_eq!(adv.mss, MSS_TABLE[usize::from(mss_index(o.mss.unwrap_or(default)))]);
            prop_assert_eq!(adv.timestamps, o.timestamp.is_some());
            prop_assert_eq!(tsval.is_some(), o.timestamp.is_some());
            if o.timestamp.is_some() {
                prop_assert_eq!(adv.wscale, o.wscale.map(|w| w.min(14)));
                prop_assert_eq!(adv.sack_perm, o.sack_perm);
            } else {
                prop_assert_eq!(adv.wscale, None);
                prop_assert!(!adv.sack_perm);
            }
            if next {
                s.set_clock((gen + 1) * ROTATE);
            }
            let got = check(&s, &k, isn.wrapping_add(1), cookie.wrapping_add(1), tsval);
            prop_assert_eq!(got, Some(adv));
        }

        #[test]
        fn prop_forgeries_refused(k in flow(), isn in isn(), o in options(),
                                  gen in 1u32..1_000_000, other in any::<[u8; 16]>(),
                                  bit in 0u32..32) {
            prop_assume!(other != MASTER);
            let mut s = secrets_at_gen(gen);
            let (cookie, tsval, _) = make(&s, &k, isn, &o, 0);
            let (seq, ack) = (isn.wrapping_add(1), cookie.wrapping_add(1));
            let wrong = Secrets::new(other, ROTATE, gen * ROTATE);
            prop_assert_eq!(check(&wrong, &k, seq, ack, tsval), None);
            let bad = (cookie ^ 1 << bit).wrapping_add(1);
            prop_assert_eq!(check(&s, &k, seq, bad, tsval), None);
            s.set_clock((gen + 2) * ROTATE);
            prop_assert_eq!(check(&s, &k, seq, ack, tsval), None);
        }
    }
}
