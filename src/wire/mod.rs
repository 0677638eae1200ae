//! Packet bytes: classify once, then rewrite in place.
//!
//! * [`parse()`] classifies a frame with etherparse's header slices and
//!   returns the compact [`FlowDesc`](crate::flow::FlowDesc) every later
//!   stage works from, or the [`DropReason`](crate::stats::DropReason) that
//!   names why the frame is refused. [`mac_accepts`] is the separate L2
//!   admission check.
//! * Thin typed views ([`EthernetFrame`], [`Ipv4Packet`], [`Ipv6Packet`],
//!   [`TcpPacket`], [`UdpPacket`]) cover only the fields rampart rewrites;
//!   etherparse reads but never mutates in place.
//! * [`rewrite`](mod@rewrite) changes addresses, ports, MACs and TCP
//!   sequence numbers with RFC 1624 incremental checksum updates
//!   ([`checksum`]).
//! * [`arp`] and [`nd`] turn a request for one of our addresses into the
//!   reply in the same buffer.
//!
//! Invariant: nothing here panics on packet bytes. The parser is the one
//! place that validates lengths; the views and rewrite helpers trust the
//! offsets in a `FlowDesc` it produced, but still read through `get` and
//! write through `get_mut`, so a short or foreign buffer makes them return
//! zeros or do nothing instead of panicking.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod nd;
mod parse;
pub mod rewrite;
pub mod segment;
pub mod tcp;
pub mod tcpopt;
pub mod udp;

pub use ethernet::EthernetFrame;
pub use ipv4::Ipv4Packet;
pub use ipv6::Ipv6Packet;
pub use parse::{mac_accepts, parse, parse_fragment, parse_into};
pub use rewrite::{
    rewrite, set_l3_dst, set_l3_src, set_l4_dport, set_l4_sport, set_macs, set_tcp_ack, set_tcp_seq,
};
pub use tcp::TcpPacket;
pub use udp::UdpPacket;

use core::fmt;
use core::ops::Range;

/// `new_checked` error of the typed views: the buffer is shorter than the
/// header it claims to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncated;

impl fmt::Display for Truncated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("buffer shorter than the header")
    }
}

impl std::error::Error for Truncated {}

// Byte access shared by the views. Reads of a range the buffer does not
// cover return zeros and writes to it are skipped: the parser already
// guaranteed the ranges the datapath uses, so these paths are only taken on
// misuse, where doing nothing beats panicking on the datapath.

#[inline]
pub(crate) fn read_u8(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

#[inline]
pub(crate) fn read_u16(b: &[u8], r: Range<usize>) -> u16 {
    match b.get(r) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

#[inline]
pub(crate) fn read_u32(b: &[u8], r: Range<usize>) -> u32 {
    u32::from_be_bytes(read_array(b, r))
}

#[inline]
pub(crate) fn read_array<const N: usize>(b: &[u8], r: Range<usize>) -> [u8; N] {
    match b.get(r).and_then(|s| <[u8; N]>::try_from(s).ok()) {
        Some(a) => a,
        None => [0; N],
    }
}

#[inline]
pub(crate) fn write_u8(b: &mut [u8], at: usize, v: u8) {
    if let Some(x) = b.get_mut(at) {
        *x = v;
    }
}

#[inline]
pub(crate) fn write_bytes(b: &mut [u8], r: Range<usize>, v: &[u8]) {
    if let Some(d) = b.get_mut(r) {
        if d.len() == v.len() {
            d.copy_from_slice(v);
        }
    }
}

#[inline]
pub(crate) fn write_u16(b: &mut [u8], r: Range<usize>, v: u16) {
    write_bytes(b, r, &v.to_be_bytes());
}

#[inline]
pub(crate) fn write_u32(b: &mut [u8], r: Range<usize>, v: u32) {
    write_bytes(b, r, &v.to_be_bytes());
}

#[cfg(test)]
mod tests;
