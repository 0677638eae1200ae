//! ARP replies for our addresses (RFC 826), built in the request's own buffer.
//!
//! The datapath decides whether the target address is ours (VIPs, local
//! addresses); this module only transforms. A request for Ethernet/IPv4
//! becomes the reply in place: the frame keeps its length and its 802.1Q
//! tag, only the Ethernet MACs and the ARP opcode and address fields change.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::{read_array, read_u16, write_bytes, write_u16, EthernetFrame};
use crate::flow::{Addr, FlowDesc, L3Kind, Mac};

mod field {
    use core::ops::Range;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// ARP body length for Ethernet/IPv4.
pub const BODY_LEN: usize = 28;

pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

/// The address an ARP request asks about (the target protocol address).
#[inline]
pub fn arp_target(d: &FlowDesc) -> Addr {
    d.key.dst
}

/// Turns the ARP request described by `d` into the reply from `our_mac`:
/// opcode 2, sender = (our MAC, requested address), target = the original
/// sender; Ethernet destination = the requester's hardware address, source =
/// our MAC. Returns `false` and leaves the frame alone if `d` is not an ARP
/// request or the buffer is shorter than the descriptor says.
pub fn arp_reply_in_place(frame: &mut [u8], d: &FlowDesc, our_mac: Mac) -> bool {
    if d.l3 != L3Kind::Arp || d.arp_op != OP_REQUEST {
        return false;
    }
    let Some(body) = frame.get_mut(usize::from(d.l3_off)..) else {
        return false;
    };
    if body.len() < BODY_LEN || read_u16(body, field::OPER) != OP_REQUEST {
        return false;
    }
    let sha: [u8; 6] = read_array(body, field::SHA);
    let spa: [u8; 4] = read_array(body, field::SPA);
    let tpa: [u8; 4] = read_array(body, field::TPA);
    write_u16(body, field::OPER, OP_REPLY);
    write_bytes(body, field::SHA, &our_mac.0);
    write_bytes(body, field::SPA, &tpa);
    write_bytes(body, field::THA, &sha);
    write_bytes(body, field::TPA, &spa);
    let mut eth = EthernetFrame::new_unchecked(frame);
    eth.set_dst(Mac(sha));
    eth.set_src(our_mac);
    true
}
