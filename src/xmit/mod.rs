//! One function per forwarding mode and direction, as DPVS's `ip_vs_xmit.c`
//! has `xmit_nat`, `xmit_fullnat`, `xmit_dr`. Each takes a frame the parser
//! validated, rewrites what its mode changes (addresses and ports with
//! RFC 1624 incremental checksum updates, then the MACs for the next hop),
//! and leaves everything else as it arrived: IPv4 ID, TTL / hop limit, TCP
//! options, VLAN tag. IPv4 and IPv6 go through the same code; the address
//! family only matters inside [`crate::wire::rewrite`].

pub mod lport;

use crate::flow::{Addr, FlowDesc, Mac};
use crate::wire::rewrite;

/// NAT, client -> backend: destination VIP:port becomes backend:port.
#[inline]
pub fn nat_in(frame: &mut [u8], d: &FlowDesc, backend: (Addr, u16), src_mac: Mac, dst_mac: Mac) {
    rewrite::rewrite(frame, d, None, Some(backend));
    rewrite::set_macs(frame, src_mac, dst_mac);
}

/// NAT, backend -> client: source backend:port becomes VIP:port.
#[inline]
pub fn nat_out(frame: &mut [u8], d: &FlowDesc, vip: (Addr, u16), src_mac: Mac, dst_mac: Mac) {
    rewrite::rewrite(frame, d, Some(vip), None);
    rewrite::set_macs(frame, src_mac, dst_mac);
}

/// FullNAT, client -> backend: the source becomes a local address and port
/// of this worker, the destination the backend.
#[inline]
pub fn fullnat_in(
    frame: &mut [u8],
    d: &FlowDesc,
    local: (Addr, u16),
    backend: (Addr, u16),
    src_mac: Mac,
    dst_mac: Mac,
) {
    rewrite::rewrite(frame, d, Some(local), Some(backend));
    rewrite::set_macs(frame, src_mac, dst_mac);
}

/// FullNAT, backend -> local address: back to VIP:port -> client:port.
#[inline]
pub fn fullnat_out(
    frame: &mut [u8],
    d: &FlowDesc,
    vip: (Addr, u16),
    client: (Addr, u16),
    src_mac: Mac,
    dst_mac: Mac,
) {
    rewrite::rewrite(frame, d, Some(vip), Some(client));
    rewrite::set_macs(frame, src_mac, dst_mac);
}

/// Direct routing: the IP packet is untouched; only the frame is readdressed
/// to the backend, which holds the VIP on a loopback and answers the client
/// directly.
#[inline]
pub fn dr(frame: &mut [u8], src_mac: Mac, backend_mac: Mac) {
    rewrite::set_macs(frame, src_mac, backend_mac);
}
