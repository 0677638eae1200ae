//! NAT (destination NAT): the VIP:port a client wrote to becomes the
//! backend's address and port on the way in, and back on the way out. The
//! backend sees the client's own address, and routes its replies through
//! rampart (rampart is its gateway).

use super::{Ends, Forwarding, Front, Tx};
use crate::flow::{FlowDesc, FlowKey};
use crate::stats::DropReason;
use crate::wire::icmp::Quoted;
use crate::wire::rewrite;

pub struct Nat;

impl Forwarding for Nat {
    const STATELESS: bool = true;

    #[inline]
    fn reply_key(e: &Ends) -> Option<FlowKey> {
        Some(FlowKey {
            src: e.backend.0,
            dst: e.client.0,
            sport: e.backend.1,
            dport: e.client.1,
            proto: e.proto,
        })
    }

    /// Destination VIP:port becomes backend:port.
    #[inline(always)]
    fn inbound(frame: &mut [u8], d: &FlowDesc, tx: &Tx, _: &mut Front) -> Result<(), DropReason> {
        let b = &tx.backend.key;
        if !rewrite::rewrite(frame, d, None, Some((b.addr, b.port))) {
            return Err(DropReason::RewriteFailed);
        }
        rewrite::set_macs(frame, tx.snap.mac, tx.backend.mac);
        Ok(())
    }

    /// Source backend:port becomes VIP:port.
    #[inline(always)]
    fn outbound(frame: &mut [u8], d: &FlowDesc, tx: &Tx) -> Result<(), DropReason> {
        if !rewrite::rewrite(frame, d, Some((tx.vip.addr, tx.vip.port)), None) {
            return Err(DropReason::RewriteFailed);
        }
        rewrite::set_macs(frame, tx.snap.mac, tx.snap.next_hop(&tx.client.0));
        Ok(())
    }

    #[inline]
    fn inbound_fragment(
        frame: &mut [u8],
        d: &FlowDesc,
        tx: &Tx,
        _: &mut Front,
    ) -> Result<(), DropReason> {
        if !rewrite::rewrite_fragment(frame, d, None, Some(tx.backend.key.addr)) {
            return Err(DropReason::RewriteFailed);
        }
        rewrite::set_macs(frame, tx.snap.mac, tx.backend.mac);
        Ok(())
    }

    #[inline]
    fn outbound_fragment(frame: &mut [u8], d: &FlowDesc, tx: &Tx) -> Result<(), DropReason> {
        if !rewrite::rewrite_fragment(frame, d, Some(tx.vip.addr), None) {
            return Err(DropReason::RewriteFailed);
        }
        rewrite::set_macs(frame, tx.snap.mac, tx.snap.next_hop(&tx.client.0));
        Ok(())
    }

    /// The quoted reply came from VIP:port; the backend sent it from its
    /// own address and port.
    fn icmp_in(
        frame: &mut [u8],
        d: &FlowDesc,
        q: &Quoted,
        tx: &Tx,
        _: &mut Front,
    ) -> Result<(), DropReason> {
        super::icmp_to_backend(frame, d, q, tx, None, None)
    }

    /// The quoted client packet went to backend:port; the client sent it
    /// to VIP:port. An error the backend itself sent comes from the VIP.
    fn icmp_out(frame: &mut [u8], d: &FlowDesc, q: &Quoted, tx: &Tx) -> Result<(), DropReason> {
        super::icmp_to_client(frame, d, q, tx, None, None)
    }
}
