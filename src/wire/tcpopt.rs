//! TCP options for the SYN proxy: reading what a peer offered
//! ([`parse`]), writing the options of the segments rampart makes up
//! ([`encode`], [`encode_ts_only`]), and shifting a proxied connection's
//! sequence, SACK and timestamp spaces in place ([`translate`]).
//!
//! Option layout follows RFC 9293 §3.2 (EOL, NOP, MSS), RFC 7323 (window
//! scale §2, timestamps §3) and RFC 2018 (SACK-permitted, SACK blocks).
//! [`encode`] writes the layout Linux puts on a SYN, byte for byte what
//! [`crate::gen::tcp_opts`] builds, so golden frames compare equal.
//!
//! Invariants: nothing here panics or allocates, whatever the bytes. `parse`
//! never reads past the TCP header (nor past the IP payload or the buffer);
//! a malformed option length ends the walk and keeps what was already found.
//! `translate` pays for every changed field with an RFC 1624 incremental
//! update of the TCP checksum (no UDP-style zero rule: a TCP checksum is
//! always present), and handles fields that sit on an odd byte of the
//! header, which an unusual option layout can produce.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::checksum::Delta;
use super::{read_u16, read_u8, tcp, write_bytes, write_u16};
use crate::flow::{proto, tcp_flags, FlowDesc, L3Kind};

/// Option kinds rampart reads or writes (IANA "TCP Option Kind Numbers").
pub mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WSCALE: u8 = 3;
    pub const SACK_PERM: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMP: u8 = 8;
}

/// Most option bytes a TCP header can carry (data offset 15 words).
pub const MAX_LEN: usize = 40;

/// Largest window scale shift (RFC 7323 §2.3); larger values are read as 14.
pub const MAX_WSCALE: u8 = 14;

/// Most SACK blocks that fit the option space (RFC 2018 §3).
pub const MAX_SACK_BLOCKS: u8 = 4;

/// What [`parse`] found in one segment's options. A kind that appears more
/// than once keeps its last value. MSS, window scale and SACK-permitted are
/// reported on any segment; only a SYN's are meaningful (RFC 9293 §3.7.1,
/// RFC 7323 §2.2, RFC 2018 §2), which is the caller's to check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    /// Shift count, clamped to [`MAX_WSCALE`].
    pub wscale: Option<u8>,
    pub sack_perm: bool,
    /// (TSval, TSecr).
    pub timestamp: Option<(u32, u32)>,
    /// Frame offset of the TSval field (TSecr follows), 0 if none.
    pub ts_at: u16,
    /// Frame offset of the first SACK block's left edge, 0 if none.
    pub sack_at: u16,
    /// Number of 8-byte SACK blocks at `sack_at`, 0..=4.
    pub sack_blocks: u8,
}

/// Reads the options of the TCP segment `d` describes. Returns the default
/// (nothing found) for anything but TCP over IP.
#[inline(always)]
pub fn parse(frame: &[u8], d: &FlowDesc) -> TcpOptions {
    let Some((start, end)) = option_span(frame, d) else {
        return TcpOptions::default();
    };
    match aligned(frame, start, end) {
        Some(fast) => fast,
        None => walk(frame, start, end),
    }
}

/// The general option walk, for layouts [`aligned`] does not know.
#[inline(never)]
fn walk(frame: &[u8], start: usize, end: usize) -> TcpOptions {
    let mut found = TcpOptions::default();
    let mut at = start;
    while at < end {
        let k = read_u8(frame, at);
        match k {
            kind::EOL => break,
            kind::NOP => {
                at += 1;
                continue;
            }
            _ => {}
        }
        // Every other kind carries a length that counts kind and length
        // bytes; one that cannot be right leaves nothing to resync on.
        let len = usize::from(read_u8(frame, at + 1));
        if at + 1 >= end || len < 2 || at + len > end {
            break;
        }
        let body = at + 2;
        match (k, len) {
            (kind::MSS, 4) => found.mss = Some(read_u16(frame, body..body + 2)),
            (kind::WSCALE, 3) => found.wscale = Some(read_u8(frame, body).min(MAX_WSCALE)),
            (kind::SACK_PERM, 2) => found.sack_perm = true,
            (kind::SACK, _) if len > 2 && (len - 2) % 8 == 0 => {
                // Only a foreign descriptor puts options past 64 KiB.
                if let Ok(sack_at) = u16::try_from(body) {
                    found.sack_at = sack_at;
                    // At most 4 blocks fit in 40 bytes of options.
                    found.sack_blocks = ((len - 2) / 8) as u8;
                }
            }
            (kind::TIMESTAMP, 10) => {
                if let Ok(ts_at) = u16::try_from(body) {
                    found.timestamp =
                        Some((read_u32_at(frame, body), read_u32_at(frame, body + 4)));
                    found.ts_at = ts_at;
                }
            }
            // Unknown kinds, and known kinds with a wrong length, are
            // skipped whole, as Linux does.
            _ => {}
        }
        at += len;
    }
    found
}

/// The two layouts nearly every segment carries, recognised whole (as
/// Linux's `tcp_parse_aligned_timestamp` does) instead of walked: NOP NOP
/// timestamps on data and ACKs, and Linux's SYN layout (MSS, SACK-permitted,
/// timestamps, NOP, window scale). Anything else takes the general walk.
#[inline(always)]
fn aligned(frame: &[u8], start: usize, end: usize) -> Option<TcpOptions> {
    const NOP_NOP_TS: [u8; 4] = [kind::NOP, kind::NOP, kind::TIMESTAMP, 10];
    const SACKPERM_TS: [u8; 4] = [kind::SACK_PERM, 2, kind::TIMESTAMP, 10];
    let be = |b: [u8; 4]| u32::from_be_bytes(b);
    match *frame.get(start..end)? {
        [a0, a1, a2, a3, v0, v1, v2, v3, e0, e1, e2, e3] if [a0, a1, a2, a3] == NOP_NOP_TS => {
            Some(TcpOptions {
                timestamp: Some((be([v0, v1, v2, v3]), be([e0, e1, e2, e3]))),
                ts_at: u16::try_from(start + 4).ok()?,
                ..TcpOptions::default()
            })
        }
        [kind::MSS, 4, m0, m1, s0, s1, s2, s3, v0, v1, v2, v3, e0, e1, e2, e3, kind::NOP, kind::WSCALE, 3, ws]
            if [s0, s1, s2, s3] == SACKPERM_TS =>
        {
            Some(TcpOptions {
                mss: Some(u16::from_be_bytes([m0, m1])),
                wscale: Some(ws.min(MAX_WSCALE)),
                sack_perm: true,
                timestamp: Some((be([v0, v1, v2, v3]), be([e0, e1, e2, e3]))),
                ts_at: u16::try_from(start + 8).ok()?,
                ..TcpOptions::default()
            })
        }
        _ => None,
    }
}

/// The frame range holding the options: from the end of the fixed TCP
/// header to the end of the header its data offset claims, cut to the IP
/// payload and to the buffer.
#[inline]
fn option_span(frame: &[u8], d: &FlowDesc) -> Option<(usize, usize)> {
    if d.l3 == L3Kind::Arp || d.key.proto != proto::TCP {
        return None;
    }
    let l4 = usize::from(d.l4_off);
    let hlen = usize::from(read_u8(frame, l4 + tcp::field::DATA_OFF) >> 4) * 4;
    let end = (l4 + hlen).min(l4 + usize::from(d.l4_len)).min(frame.len());
    let start = l4 + tcp::HEADER_LEN;
    (start < end).then_some((start, end))
}

#[inline]
fn read_u32_at(b: &[u8], at: usize) -> u32 {
    super::read_u32(b, at..at + 4)
}

/// Appends bytes to an option buffer; `encode` never comes near the end.
fn put(out: &mut [u8; MAX_LEN], n: &mut usize, bytes: &[u8]) {
    write_bytes(out, *n..*n + bytes.len(), bytes);
    *n += bytes.len();
}

fn put_ts(out: &mut [u8; MAX_LEN], n: &mut usize, (val, ecr): (u32, u32)) {
    put(out, n, &[kind::TIMESTAMP, 10]);
    put(out, n, &val.to_be_bytes());
    put(out, n, &ecr.to_be_bytes());
}

/// Writes SYN / SYN-ACK options in Linux's layout and returns their length,
/// a multiple of 4: MSS; then SACK-permitted + timestamps, or NOP NOP
/// timestamps, or NOP NOP SACK-permitted; then NOP window scale. Every
/// combination comes out 4-byte aligned, so no padding is ever added; the
/// bytes of `out` past the returned length are left as they were.
pub fn encode(
    out: &mut [u8; MAX_LEN],
    mss: Option<u16>,
    wscale: Option<u8>,
    sack_perm: bool,
    timestamp: Option<(u32, u32)>,
) -> usize {
    let mut n = 0;
    if let Some(mss) = mss {
        put(out, &mut n, &[kind::MSS, 4]);
        put(out, &mut n, &mss.to_be_bytes());
    }
    match (sack_perm, timestamp) {
        (true, Some(ts)) => {
            put(out, &mut n, &[kind::SACK_PERM, 2]);
            put_ts(out, &mut n, ts);
        }
        (false, Some(ts)) => {
            put(out, &mut n, &[kind::NOP, kind::NOP]);
            put_ts(out, &mut n, ts);
        }
        (true, None) => put(out, &mut n, &[kind::NOP, kind::NOP, kind::SACK_PERM, 2]),
        (false, None) => {}
    }
    if let Some(shift) = wscale {
        put(out, &mut n, &[kind::NOP, kind::WSCALE, 3, shift]);
    }
    n
}

/// NOP NOP timestamps (12 bytes), the options of an ACK on a connection
/// that negotiated timestamps.
pub fn encode_ts_only(out: &mut [u8; MAX_LEN], tsval: u32, tsecr: u32) -> usize {
    let mut n = 0;
    put(out, &mut n, &[kind::NOP, kind::NOP]);
    put_ts(out, &mut n, (tsval, tsecr));
    n
}

/// The per-direction offsets of a proxied connection. Every add wraps at
/// 2^32 (sequence space and timestamps are both modular); a zero add leaves
/// its fields alone.
#[derive(Clone, Copy, Debug, Default)]
pub struct Translate {
    pub seq_add: u32,
    /// Applied only when the segment has ACK set.
    pub ack_add: u32,
    /// Applied to both edges of every SACK block.
    pub sack_add: u32,
    /// After `ack_add` and `sack_add`, an acknowledgment number or SACK
    /// edge that lands before this one (in sequence order, RFC 9293 §3.4)
    /// is raised to it: the receiver is never told of bytes acknowledged
    /// that its peer did not send (the PROXY header, which only rampart
    /// and the backend know of).
    pub ack_floor: Option<u32>,
    pub tsval_add: u32,
    /// Applied only when the segment has ACK set: TSecr means nothing
    /// otherwise and should stay 0 (RFC 7323 §3.2).
    pub tsecr_add: u32,
    /// Rescale the window from one scale to another (each clamped to
    /// [`MAX_WSCALE`]); never applied to a SYN, whose window is unscaled
    /// (RFC 7323 §2.2).
    pub window_shift: Option<(u8, u8)>,
}

/// Applies `t` to the segment in place: sequence and acknowledgment
/// numbers, SACK block edges and timestamps at the offsets `opts` (from
/// [`parse`] on this frame) names, and the window; then folds all changes
/// into the TCP checksum once. Flags are read from the frame, so a caller
/// that changed them first gets the rules for the new flags. Does nothing
/// for anything but TCP, or if the frame is shorter than its TCP header.
pub fn translate(frame: &mut [u8], d: &FlowDesc, opts: &TcpOptions, t: &Translate) {
    if d.l3 == L3Kind::Arp || d.key.proto != proto::TCP {
        return;
    }
    let l4_off = usize::from(d.l4_off);
    let Some(l4) = frame.get_mut(l4_off..) else {
        return;
    };
    if l4.len() < tcp::HEADER_LEN {
        return;
    }
    let flags = read_u8(l4, tcp::field::FLAGS);
    let has_ack = flags & tcp_flags::ACK != 0;
    let mut delta = Delta::new();

    add_u32(l4, tcp::field::SEQ.start, t.seq_add, &mut delta);
    if has_ack {
        add_u32_floor(
            l4,
            tcp::field::ACK.start,
            t.ack_add,
            t.ack_floor,
            &mut delta,
        );
    }

    // Option offsets are frame offsets; the TCP header starts on an even
    // byte of the checksummed data, so parity is taken relative to it.
    let in_options = |at: u16| {
        usize::from(at)
            .checked_sub(l4_off)
            .filter(|rel| *rel >= tcp::HEADER_LEN)
    };
    if opts.ts_at != 0 {
        if let Some(rel) = in_options(opts.ts_at) {
            add_u32(l4, rel, t.tsval_add, &mut delta);
            if has_ack {
                add_u32(l4, rel + 4, t.tsecr_add, &mut delta);
            }
        }
    }
    if opts.sack_at != 0 && (t.sack_add != 0 || t.ack_floor.is_some()) {
        if let Some(rel) = in_options(opts.sack_at) {
            let edges = usize::from(opts.sack_blocks.min(MAX_SACK_BLOCKS)) * 2;
            for i in 0..edges {
                add_u32_floor(l4, rel + 4 * i, t.sack_add, t.ack_floor, &mut delta);
            }
        }
    }

    if let Some((from, to)) = t.window_shift {
        if flags & tcp_flags::SYN == 0 {
            let old = read_u16(l4, tcp::field::WINDOW);
            let new = rescale_window(old, from, to);
            if new != old {
                write_u16(l4, tcp::field::WINDOW, new);
                delta = delta.u16(old, new);
            }
        }
    }

    if delta != Delta::new() {
        let c = delta.apply(read_u16(l4, tcp::field::CHECKSUM));
        write_u16(l4, tcp::field::CHECKSUM, c);
    }
}

/// A window field in units of `2^from` bytes re-expressed in units of
/// `2^to` (each clamped to [`MAX_WSCALE`]), rounded down and capped at the
/// largest field.
#[inline]
pub fn rescale_window(window: u16, from: u8, to: u8) -> u16 {
    let from = u32::from(from.min(MAX_WSCALE));
    let to = u32::from(to.min(MAX_WSCALE));
    // At most 16 + 14 bits: u32 holds the unscaled window.
    let bytes = (u32::from(window) << from) >> to;
    u16::try_from(bytes).unwrap_or(u16::MAX)
}

/// Adds `add` (wrapping) to the 32-bit field at `rel` bytes into the TCP
/// segment and records the change for the checksum. A field the buffer does
/// not hold whole is left alone and not recorded.
#[inline]
fn add_u32(l4: &mut [u8], rel: usize, add: u32, delta: &mut Delta) {
    add_u32_floor(l4, rel, add, None, delta);
}

/// [`add_u32`], then a result before `floor` (sequence order) becomes `floor`.
#[inline]
fn add_u32_floor(l4: &mut [u8], rel: usize, add: u32, floor: Option<u32>, delta: &mut Delta) {
    if add == 0 && floor.is_none() {
        return;
    }
    let Some(field) = l4.get_mut(rel..).and_then(|b| b.first_chunk_mut::<4>()) else {
        return;
    };
    let old = u32::from_be_bytes(*field);
    let mut new = old.wrapping_add(add);
    if let Some(f) = floor {
        if (new.wrapping_sub(f) as i32) < 0 {
            new = f;
        }
    }
    if new == old {
        return;
    }
    *field = new.to_be_bytes();
    *delta = if rel % 2 == 0 {
        delta.u32(old, new)
    } else {
        // On an odd offset the field's bytes land in the low, high, low,
        // high halves of three words; its contribution to the sum is the
        // even-aligned one times 2^8 (mod 0xffff), i.e. the value rotated
        // left by 8 bits (RFC 1071 §2(B): the sum is byte-order neutral).
        delta.u32(old.rotate_left(8), new.rotate_left(8))
    };
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
mod tests {
    //! Expected frames come from [`crate::gen`], which builds every header
    //! and checksum by hand and shares no code with `wire`.

    use super::*;
    use crate::flow::{Addr, Mac};
    use crate::gen::{self, Eth, TcpSeg};
    use crate::wire::{checksum, parse as parse_frame};
    use proptest::prelude::*;

    const CLIENT_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x0c]);
    const OUR_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);

    fn ep(v6: bool, last: u8) -> Addr {
        if v6 {
            let mut a = [0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            a[15] = last;
            Addr::from_v6(a)
        } else {
            Addr::from_v4([198, 18, 51, last])
        }
    }

    fn eth(vlan: Option<u16>) -> Eth {
        Eth {
            src: CLIENT_MAC,
            dst: OUR_MAC,
            vlan,
        }
    }

    /// A client -> VIP segment with the given fields (gen pads `options`
    /// with EOL bytes to a multiple of 4).
    fn frame(v6: bool, vlan: Option<u16>, seg: &TcpSeg) -> Vec<u8> {
        gen::tcp(&eth(vlan), ep(v6, 7), ep(v6, 10), 64, 0, seg)
    }

    fn seg(flags: u8, options: Vec<u8>) -> TcpSeg {
        TcpSeg {
            sport: 40000,
            dport: 443,
            seq: 0x0102_0304,
            ack: 0x0a0b_0c0d,
            flags,
            window: 29200,
            options,
            payload: Vec::new(),
        }
    }

    fn parsed(f: &[u8]) -> (FlowDesc, TcpOptions) {
        let d = parse_frame(f).unwrap();
        (d, parse(f, &d))
    }

    /// Full RFC 1071 recompute over pseudo-header and segment, compared
    /// with the checksum the frame carries.
    fn tcp_checksum_ok(f: &[u8], d: &FlowDesc) -> bool {
        let l4 = &f[usize::from(d.l4_off)..usize::from(d.l4_off + d.l4_len)];
        let pseudo = if d.is_v4() {
            checksum::pseudo_v4(d.key.src.v4_octets(), d.key.dst.v4_octets(), 6, d.l4_len)
        } else {
            checksum::pseudo_v6(&d.key.src.0, &d.key.dst.0, 6, u32::from(d.l4_len))
        };
        let mut z = l4.to_vec();
        z[16] = 0;
        z[17] = 0;
        checksum::finish(checksum::sum(&z, pseudo)) == u16::from_be_bytes([l4[16], l4[17]])
    }

    fn u32_at(f: &[u8], at: u16) -> u32 {
        let at = usize::from(at);
        u32::from_be_bytes(f[at..at + 4].try_into().unwrap())
    }

    fn encoded(
        mss: Option<u16>,
        wscale: Option<u8>,
        sack_perm: bool,
        ts: Option<(u32, u32)>,
    ) -> Vec<u8> {
        let mut out = [0xee; MAX_LEN];
        let n = encode(&mut out, mss, wscale, sack_perm, ts);
        out[..n].to_vec()
    }

    #[test]
    fn encode_known_layouts() {
        // Linux's SYN: MSS, SACK-perm, TS, NOP, WS.
        assert_eq!(
            encoded(Some(1460), Some(7), true, Some((1, 2))),
            [2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 3, 3, 7]
        );
        assert_eq!(
            encoded(Some(1460), None, true, None),
            [2, 4, 5, 180, 1, 1, 4, 2]
        );
        assert_eq!(encoded(None, Some(0), false, None), [1, 3, 3, 0]);
        assert_eq!(encoded(None, None, false, None), [0u8; 0]);
        let mut out = [0; MAX_LEN];
        assert_eq!(encode_ts_only(&mut out, 0xdead_beef, 5), 12);
        assert_eq!(out[..12], [1, 1, 8, 10, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 5]);
    }

    #[test]
    fn sack_blocks_one_to_four() {
        for n in 1..=4u8 {
            let blocks: Vec<u32> = (0..u32::from(n) * 2).map(|i| 0x1000_0000 + i).collect();
            let mut o = vec![1, 1, kind::SACK, 2 + 8 * n];
            o.extend(blocks.iter().flat_map(|b| b.to_be_bytes()));
            let f = frame(false, None, &seg(tcp_flags::ACK, o));
            let (d, p) = parsed(&f);
            assert_eq!(p.sack_blocks, n);
            assert_eq!(p.sack_at, d.l4_off + 24);
            for (i, b) in blocks.iter().enumerate() {
                assert_eq!(u32_at(&f, p.sack_at + 4 * i as u16), *b);
            }
            assert_eq!((p.timestamp, p.ts_at), (None, 0));
        }
        // Linux with timestamps: NOP NOP TS NOP NOP SACK(3) fills all 40 bytes.
        let mut o = vec![1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 8, 1, 1, kind::SACK, 26];
        o.extend((1..=6u32).flat_map(|b| b.to_be_bytes()));
        assert_eq!(o.len(), 40);
        let f = frame(true, Some(3), &seg(tcp_flags::ACK, o));
        let (d, p) = parsed(&f);
        assert_eq!(p.timestamp, Some((9, 8)));
        assert_eq!(p.ts_at, d.l4_off + 24);
        assert_eq!((p.sack_at, p.sack_blocks), (d.l4_off + 36, 3));
        assert_eq!(u32_at(&f, p.sack_at + 20), 6);
    }

    #[test]
    fn unknown_and_misfit_options_are_skipped() {
        let o = vec![
            30, 4, 0xab, 0xcd, // MPTCP-ish, unknown to us
            2, 3, 0x05, // MSS with a wrong length: skipped whole
            3, 3, 15, // window scale above 14 reads as 14
            1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, // TS on an odd offset
            1,
        ];
        let f = frame(false, None, &seg(tcp_flags::SYN, o));
        let (d, p) = parsed(&f);
        assert_eq!(p.mss, None);
        assert_eq!(p.wscale, Some(14));
        assert_eq!(p.timestamp, Some((1, 2)));
        assert_eq!(p.ts_at, d.l4_off + 20 + 13);
    }

    #[test]
    fn malformed_lengths_stop_the_walk() {
        let cases: [(&[u8], TcpOptions); 5] = [
            // Length 0 after a good MSS.
            (
                &[2, 4, 5, 180, 3, 0, 1, 1],
                TcpOptions {
                    mss: Some(1460),
                    ..TcpOptions::default()
                },
            ),
            // Length 1.
            (&[4, 1, 2, 4, 5, 180, 0, 0], TcpOptions::default()),
            // TS running past the header.
            (
                &[2, 4, 5, 180, 1, 1, 8, 10, 0, 0, 0, 1],
                TcpOptions {
                    mss: Some(1460),
                    ..TcpOptions::default()
                },
            ),
            // Kind as the header's last byte, no room for a length.
            (
                &[4, 2, 1, kind::SACK],
                TcpOptions {
                    sack_perm: true,
                    ..TcpOptions::default()
                },
            ),
            // EOL ends the list; what follows is padding.
            (&[1, 0, 4, 2], TcpOptions::default()),
        ];
        for (o, want) in cases {
            let f = frame(false, None, &seg(tcp_flags::SYN, o.to_vec()));
            assert_eq!(parsed(&f).1, want, "options {o:?}");
        }
        // A SACK whose length is not 2 + 8n is skipped, not trusted.
        let f = frame(
            false,
            None,
            &seg(tcp_flags::ACK, vec![5, 6, 0, 0, 0, 0, 0, 0]),
        );
        assert_eq!(parsed(&f).1, TcpOptions::default());
    }

    #[test]
    fn ethernet_padding_is_not_options() {
        // A 20-byte header whose frame is padded to 60 bytes with bytes
        // that would read as an MSS option.
        let mut f = frame(false, None, &seg(tcp_flags::ACK, vec![]));
        f.resize(60, 0);
        f[54..58].copy_from_slice(&[2, 4, 5, 180]);
        assert_eq!(parsed(&f).1, TcpOptions::default());
    }

    #[test]
    fn not_tcp_has_no_options() {
        let f = gen::udp(
            &eth(None),
            ep(false, 7),
            ep(false, 10),
            64,
            0,
            1,
            2,
            &[2, 4, 5, 180],
        );
        let d = parse_frame(&f).unwrap();
        assert_eq!(parse(&f, &d), TcpOptions::default());
        let mut g = f.clone();
        let t = Translate {
            seq_add: 1,
            ..Translate::default()
        };
        translate(&mut g, &d, &TcpOptions::default(), &t);
        assert_eq!(g, f);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut s = seg(
            tcp_flags::ACK,
            gen::tcp_opts(None, None, false, Some((u32::MAX, 3))),
        );
        s.seq = 0xffff_fff0;
        s.ack = 0xffff_ffff;
        let mut f = frame(false, None, &s);
        let (d, p) = parsed(&f);
        let t = Translate {
            seq_add: 0x20,
            ack_add: 1,
            tsval_add: 2,
            tsecr_add: 0,
            ..Translate::default()
        };
        translate(&mut f, &d, &p, &t);
        s.seq = 0x10;
        s.ack = 0;
        s.options = gen::tcp_opts(None, None, false, Some((1, 3)));
        assert_eq!(f, frame(false, None, &s));
    }

    #[test]
    fn ack_and_tsecr_only_with_ack_window_never_on_syn() {
        let o = gen::tcp_opts(Some(1460), Some(7), true, Some((100, 0)));
        let t = Translate {
            seq_add: 1,
            ack_add: 1,
            tsval_add: 1,
            tsecr_add: 1,
            window_shift: Some((0, 7)),
            ..Translate::default()
        };
        let s = seg(tcp_flags::SYN, o);
        let mut f = frame(true, None, &s);
        let (d, p) = parsed(&f);
        translate(&mut f, &d, &p, &t);
        let mut want = s.clone();
        want.seq += 1;
        want.options = gen::tcp_opts(Some(1460), Some(7), true, Some((101, 0)));
        assert_eq!(f, frame(true, None, &want));
    }

    #[test]
    fn window_rescale_saturates() {
        let t = |from, to| Translate {
            window_shift: Some((from, to)),
            ..Translate::default()
        };
        for (win, tr, want) in [
            (4000u16, t(7, 2), 0xffff),
            (1000, t(7, 2), 32000),
            (1000, t(2, 7), 31),
            (0xffff, t(14, 14), 0xffff),
            (3, t(0, 200), 0), // 200 clamps to 14
            (1, t(255, 0), 0x4000),
        ] {
            let mut s = seg(tcp_flags::ACK, vec![]);
            s.window = win;
            let mut f = frame(false, Some(5), &s);
            let (d, p) = parsed(&f);
            translate(&mut f, &d, &p, &tr);
            s.window = want;
            assert_eq!(f, frame(false, Some(5), &s), "{win} {tr:?}");
        }
    }

    /// Option layouts the translation must handle, including fields on odd
    /// offsets of the header.
    #[derive(Clone, Copy, Debug)]
    enum Layout {
        Bare,
        TsAligned,
        TsOdd,
        Sack(u8),
        SackOdd(u8),
        TsSack(u8),
    }

    fn layout() -> impl Strategy<Value = Layout> {
        prop_oneof![
            Just(Layout::Bare),
            Just(Layout::TsAligned),
            Just(Layout::TsOdd),
            (1u8..=4).prop_map(Layout::Sack),
            (1u8..=4).prop_map(Layout::SackOdd),
            (1u8..=3).prop_map(Layout::TsSack),
        ]
    }

    fn option_bytes(l: Layout, ts: (u32, u32), blocks: &[u32]) -> Vec<u8> {
        let ts_bytes = |o: &mut Vec<u8>| {
            o.extend_from_slice(&[8, 10]);
            o.extend_from_slice(&ts.0.to_be_bytes());
            o.extend_from_slice(&ts.1.to_be_bytes());
        };
        let sack = |o: &mut Vec<u8>, n: u8| {
            o.extend_from_slice(&[5, 2 + 8 * n]);
            for b in &blocks[..usize::from(n) * 2] {
                o.extend_from_slice(&b.to_be_bytes());
            }
        };
        let mut o = Vec::new();
        match l {
            Layout::Bare => {}
            Layout::TsAligned => {
                o.extend_from_slice(&[1, 1]);
                ts_bytes(&mut o);
            }
            Layout::TsOdd => {
                o.push(1);
                ts_bytes(&mut o);
                o.push(1);
            }
            Layout::Sack(n) => {
                o.extend_from_slice(&[1, 1]);
                sack(&mut o, n);
            }
            Layout::SackOdd(n) => {
                o.push(1);
                sack(&mut o, n);
                o.push(1);
            }
            Layout::TsSack(n) => {
                o.extend_from_slice(&[1, 1]);
                ts_bytes(&mut o);
                o.extend_from_slice(&[1, 1]);
                sack(&mut o, n);
            }
        }
        o
    }

    fn add() -> impl Strategy<Value = u32> {
        prop_oneof![
            Just(0u32),
            any::<u32>(),
            (1u32..64).prop_map(u32::wrapping_neg)
        ]
    }

    fn near_wrap() -> impl Strategy<Value = u32> {
        prop_oneof![any::<u32>(), (0u32..64).prop_map(|x| u32::MAX - x)]
    }

    proptest! {
        #[test]
        fn encode_matches_gen(mss in any::<Option<u16>>(), ws in any::<Option<u8>>(),
                              sack in any::<bool>(), ts in any::<Option<(u32, u32)>>()) {
            let mut out = [0u8; MAX_LEN];
            let n = encode(&mut out, mss, ws, sack, ts);
            let want = gen::tcp_opts(mss, ws, sack, ts);
            prop_assert_eq!(n % 4, 0);
            prop_assert_eq!(&out[..n], &want[..]);
        }

        #[test]
        fn parse_finds_what_gen_writes(mss in any::<Option<u16>>(), ws in any::<Option<u8>>(),
                                       sack in any::<bool>(), ts in any::<Option<(u32, u32)>>(),
                                       v6 in any::<bool>(), vlan in any::<Option<u16>>()) {
            let vlan = vlan.map(|v| v & 0xfff);
            let f = frame(v6, vlan, &seg(tcp_flags::SYN, gen::tcp_opts(mss, ws, sack, ts)));
            let (d, p) = parsed(&f);
            prop_assert_eq!(p.mss, mss);
            prop_assert_eq!(p.wscale, ws.map(|w| w.min(MAX_WSCALE)));
            prop_assert_eq!(p.sack_perm, sack);
            prop_assert_eq!(p.timestamp, ts);
            prop_assert_eq!((p.sack_at, p.sack_blocks), (0, 0));
            match ts {
                Some((val, ecr)) => {
                    prop_assert!(p.ts_at >= d.l4_off + 20);
                    prop_assert_eq!(u32_at(&f, p.ts_at), val);
                    prop_assert_eq!(u32_at(&f, p.ts_at + 4), ecr);
                }
                None => prop_assert_eq!(p.ts_at, 0),
            }
        }

        /// Random option bytes: parse stays inside the header, and a
        /// translation over whatever it found keeps the checksum exact.
        #[test]
        fn random_options(opts in proptest::collection::vec(any::<u8>(), 0..=40),
                          v6 in any::<bool>(), payload in proptest::collection::vec(any::<u8>(), 0..9),
                          adds in (add(), add(), add(), add(), add()),
                          shift in any::<Option<(u8, u8)>>()) {
            let mut s = seg(tcp_flags::ACK, opts);
            s.payload = payload;
            let mut f = frame(v6, None, &s);
            let (d, p) = parsed(&f);
            let hdr_end = usize::from(d.l4_off) + 20 + s.options.len().div_ceil(4) * 4;
            prop_assert!(p.sack_blocks <= 4);
            if p.ts_at != 0 {
                prop_assert!(p.ts_at >= d.l4_off + 22 && usize::from(p.ts_at) + 8 <= hdr_end);
            }
            if p.sack_at != 0 {
                prop_assert!(p.sack_blocks >= 1);
                prop_assert!(usize::from(p.sack_at) + 8 * usize::from(p.sack_blocks) <= hdr_end);
            }
            let t = Translate {
                seq_add: adds.0, ack_add: adds.1, sack_add: adds.2,
                tsval_add: adds.3, tsecr_add: adds.4, window_shift: shift,
                ack_floor: None,
            };
            translate(&mut f, &d, &p, &t);
            prop_assert!(tcp_checksum_ok(&f, &d));
        }

        /// Translation against a fresh build of the expected segment: every
        /// field moved by exactly its add, nothing else changed, and the
        /// checksum is what a full recompute gives.
        #[test]
        fn translate_equals_rebuild(
            v6 in any::<bool>(), vlan in any::<bool>(), l in layout(),
            flags in prop_oneof![Just(tcp_flags::ACK), Just(tcp_flags::ACK | tcp_flags::PSH),
                                 Just(tcp_flags::SYN), Just(tcp_flags::SYN | tcp_flags::ACK),
                                 Just(tcp_flags::RST), Just(tcp_flags::FIN | tcp_flags::ACK)],
            seq in near_wrap(), ack in near_wrap(), window in any::<u16>(),
            ts in (near_wrap(), near_wrap()),
            blocks in proptest::collection::vec(near_wrap(), 8),
            payload in proptest::collection::vec(any::<u8>(), 0..33),
            adds in (add(), add(), add(), add(), add()),
            shift in proptest::option::of((0u8..=16, 0u8..=16)),
            floor in proptest::option::of(near_wrap()),
        ) {
            let vlan = vlan.then_some(42);
            let mut s = seg(flags, option_bytes(l, ts, &blocks));
            (s.seq, s.ack, s.window, s.payload) = (seq, ack, window, payload);
            let mut f = frame(v6, vlan, &s);
            let (d, p) = parsed(&f);
            let t = Translate {
                seq_add: adds.0, ack_add: adds.1, sack_add: adds.2,
                tsval_add: adds.3, tsecr_add: adds.4, window_shift: shift,
                ack_floor: floor,
            };
            translate(&mut f, &d, &p, &t);
            prop_assert!(tcp_checksum_ok(&f, &d));

            let has_ack = flags & tcp_flags::ACK != 0;
            let mut want = s.clone();
            want.seq = seq.wrapping_add(t.seq_add);
            let floored = |v: u32| match floor {
                Some(f) if (v.wrapping_sub(f) as i32) < 0 => f,
                _ => v,
            };
            if has_ack {
                want.ack = floored(ack.wrapping_add(t.ack_add));
            }
            if let (Some((from, to)), false) = (shift, flags & tcp_flags::SYN != 0) {
                let (from, to) = (from.min(14), to.min(14));
                want.window = ((u64::from(window) << from) >> to).min(0xffff) as u16;
            }
            let ts2 = (ts.0.wrapping_add(t.tsval_add),
                       if has_ack { ts.1.wrapping_add(t.tsecr_add) } else { ts.1 });
            let blocks2: Vec<u32> =
                blocks.iter().map(|b| floored(b.wrapping_add(t.sack_add))).collect();
            want.options = option_bytes(l, ts2, &blocks2);
            prop_assert_eq!(&f, &frame(v6, vlan, &want));
        }

        /// Descriptors that do not describe the buffer never make parse or
        /// translate panic, and translate keeps the buffer's length.
        #[test]
        fn foreign_descriptors_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..140),
            l3 in 0u8..3, l4_off in 0u16..150, l4_len in 0u16..150,
            ts_at in prop_oneof![Just(0u16), 0u16..200, Just(u16::MAX)],
            sack_at in prop_oneof![Just(0u16), 0u16..200, Just(u16::MAX - 3)],
            sack_blocks in any::<u8>(),
            adds in (add(), add(), add(), add(), add()),
        ) {
            let mut d = FlowDesc {
                l3: [L3Kind::Arp, L3Kind::Ipv4, L3Kind::Ipv6][usize::from(l3)],
                l3_off: 14, l4_off, l4_len,
                ..FlowDesc::default()
            };
            d.key.proto = proto::TCP;
            let _ = parse(&bytes, &d);
            let o = TcpOptions { ts_at, sack_at, sack_blocks, ..TcpOptions::default() };
            let t = Translate {
                seq_add: adds.0, ack_add: adds.1, sack_add: adds.2,
                tsval_add: adds.3, tsecr_add: adds.4, window_shift: Some((255, 3)),
                ack_floor: Some(adds.0),
            };
            let mut g = bytes.clone();
            translate(&mut g, &d, &o, &t);
            prop_assert_eq!(g.len(), bytes.len());
        }
    }
}
