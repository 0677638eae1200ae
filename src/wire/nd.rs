//! IPv6 Neighbor Discovery (RFC 4861): Neighbor Advertisements for our
//! addresses, built in the solicitation's own buffer.
//!
//! A Neighbor Solicitation (§4.3) is answered only if it passes the §7.1.1
//! checks rampart can make locally: hop limit 255, code 0, at least 24 bytes,
//! options well formed (no zero-length option). A solicitation from the
//! unspecified address is Duplicate Address Detection; rampart never claims
//! an address another node is probing, so it does not answer those.
//!
//! The advertisement (§4.4, §7.2.4) goes from the target address to the
//! solicitation's source with hop limit 255, flags Solicited and Override
//! (rampart is not a router), and, when the solicitation carried a Source
//! Link-Layer Address option, a Target Link-Layer Address option with our MAC
//! in the first option slot. Any further options of the solicitation are
//! dropped: the IPv6 payload length shrinks and the leftover bytes, zeroed,
//! become trailing padding the receiver ignores. The ICMPv6 checksum is
//! recomputed in full; the message is at most a few dozen bytes.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::checksum;
use super::{read_array, read_u8, write_bytes, write_u16, write_u8};
use super::{EthernetFrame, Ipv6Packet};
use crate::flow::{proto, Addr, FlowDesc, L3Kind, Mac};

/// ICMPv6 type of a Neighbor Solicitation.
pub const NEIGHBOR_SOLICIT: u8 = 135;
/// ICMPv6 type of a Neighbor Advertisement.
pub const NEIGHBOR_ADVERT: u8 = 136;

const OPT_SOURCE_LLADDR: u8 = 1;
const OPT_TARGET_LLADDR: u8 = 2;
/// Solicited (0x40) and Override (0x20); Router (0x80) stays clear.
const NA_FLAGS_S_O: u8 = 0x60;
/// Type, code, checksum, reserved/flags, target address.
const MSG_LEN: usize = 24;
/// A link-layer address option for Ethernet: type, length 1 (8 bytes), MAC.
const LLADDR_OPT_LEN: usize = 8;

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const FLAGS: usize = 4;
    pub const RESERVED: Range<usize> = 4..8;
    pub const TARGET: Range<usize> = 8..24;
}

/// Whether `d` describes an ICMPv6 Neighbor Solicitation.
#[inline]
fn is_ns(d: &FlowDesc) -> bool {
    d.l3 == L3Kind::Ipv6 && d.key.proto == proto::ICMPV6 && d.icmp_type == NEIGHBOR_SOLICIT
}

/// The target address of a Neighbor Solicitation, so the datapath can check
/// ownership before answering; `None` for anything else.
pub fn nd_target(frame: &[u8], d: &FlowDesc) -> Option<Addr> {
    if !is_ns(d) || usize::from(d.l4_len) < MSG_LEN {
        return None;
    }
    let msg = frame.get(usize::from(d.l4_off)..)?;
    if msg.len() < MSG_LEN {
        return None;
    }
    Some(Addr::from_v6(read_array(msg, field::TARGET)))
}

/// Turns the Neighbor Solicitation described by `d` into the Neighbor
/// Advertisement from `our_mac` for its target (see the module docs).
/// Returns `false` and leaves the frame alone if `d` is not a valid
/// solicitation, is DAD (unspecified source), or the buffer is short.
pub fn nd_advert_in_place(frame: &mut [u8], d: &FlowDesc, our_mac: Mac) -> bool {
    if !is_ns(d) || d.ttl != 255 || d.key.src == Addr::UNSPECIFIED {
        return false;
    }
    let l3_off = usize::from(d.l3_off);
    let l4_off = usize::from(d.l4_off);
    let l4_len = usize::from(d.l4_len);
    if l4_off < l3_off + super::ipv6::HEADER_LEN || l4_len < MSG_LEN {
        return false;
    }
    let Some((ip, msg)) = frame
        .get_mut(l3_off..l4_off + l4_len)
        .and_then(|l3| l3.split_at_mut_checked(l4_off - l3_off))
    else {
        return false;
    };
    if read_u8(msg, field::TYPE) != NEIGHBOR_SOLICIT || read_u8(msg, field::CODE) != 0 {
        return false;
    }
    let Some(had_slla) = has_source_lladdr(msg.get(MSG_LEN..).unwrap_or_default()) else {
        return false;
    };

    // IPv6: from the target, to the solicitation's source.
    let target: [u8; 16] = read_array(msg, field::TARGET);
    let mut p = Ipv6Packet::new_unchecked(ip);
    let solicitor = p.src();
    let na_len = MSG_LEN + if had_slla { LLADDR_OPT_LEN } else { 0 };
    p.set_src(target);
    p.set_dst(solicitor);
    p.set_hop_limit(255);
    p.set_payload_len(na_len as u16);

    // ICMPv6: header, flags, target unchanged, then the TLLA option.
    write_u8(msg, field::TYPE, NEIGHBOR_ADVERT);
    write_u8(msg, field::CODE, 0);
    write_bytes(msg, field::RESERVED, &[0; 4]);
    write_u8(msg, field::FLAGS, NA_FLAGS_S_O);
    if let Some(rest) = msg.get_mut(MSG_LEN..) {
        rest.fill(0);
    }
    if had_slla {
        let mut opt = [0u8; LLADDR_OPT_LEN];
        opt[0] = OPT_TARGET_LLADDR;
        opt[1] = 1;
        opt[2..].copy_from_slice(&our_mac.0);
        write_bytes(msg, MSG_LEN..MSG_LEN + LLADDR_OPT_LEN, &opt);
    }
    write_u16(msg, field::CHECKSUM, 0);
    let body = msg.get(..na_len).unwrap_or_default();
    let pseudo = checksum::pseudo_v6(&target, &solicitor, proto::ICMPV6, na_len as u32);
    let c = checksum::finish(checksum::sum(body, pseudo));
    write_u16(msg, field::CHECKSUM, c);

    // Ethernet: back to whoever sent the solicitation.
    let mut eth = EthernetFrame::new_unchecked(frame);
    let requester = eth.src();
    eth.set_dst(requester);
    eth.set_src(our_mac);
    true
}

/// Walks the NS options: `Some(true)` if a Source Link-Layer Address option
/// is present, `None` if any option is malformed (§7.1.1: length 0 or past
/// the end means the whole message is discarded).
fn has_source_lladdr(mut opts: &[u8]) -> Option<bool> {
    let mut found = false;
    while !opts.is_empty() {
        let kind = read_u8(opts, 0);
        let len = usize::from(read_u8(opts, 1)) * 8;
        if len == 0 || len > opts.len() {
            return None;
        }
        if kind == OPT_SOURCE_LLADDR && len == LLADDR_OPT_LEN {
            found = true;
        }
        opts = opts.get(len..).unwrap_or_default();
    }
    Some(found)
}
