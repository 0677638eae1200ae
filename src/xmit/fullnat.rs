//! FullNAT: both ends are rewritten. On the way in the client becomes a
//! local address and port of this worker (see [`super::lport`]: the port's
//! low bits name the worker, so replies reach the owner) and the VIP the
//! backend; on the way out the reverse. The backend needs no route back to
//! the client, only to rampart's local addresses, and never sees the client.

use super::{Ends, Forwarding, Front, Tx};
use crate::flow::{FlowDesc, FlowKey};
use crate::stats::DropReason;
use crate::wire::icmp::Quoted;
use crate::wire::rewrite;

pub struct FullNat;

impl Forwarding for FullNat {
    /// The backend saw a local port, not the client's: a packet with no
    /// entry cannot be translated consistently.
    const STATELESS: bool = false;
    const LOCAL_PORT: bool = true;

    #[inline]
    fn reply_key(e: &Ends) -> Option<FlowKey> {
        let local = e.local?;
        Some(FlowKey {
            src: e.backend.0,
            dst: local.0,
            sport: e.backend.1,
            dport: local.1,
            proto: e.proto,
        })
    }

    /// client:port -> VIP:port becomes local:lport -> backend:port.
    #[inline(always)]
    fn inbound(frame: &mut [u8], d: &FlowDesc, tx: &Tx, _: &mut Front) -> Result<(), DropReason> {
        let local = tx.local().ok_or(DropReason::NoConn)?;
        let b = &tx.backend.key;
        if !rewrite::rewrite(frame, d, Some(local), Some((b.addr, b.port))) {
            return Err(DropReason::RewriteFailed);
        }
        rewrite::set_macs(frame, tx.snap.mac, tx.backend.mac);
        Ok(())
    }

    /// backend:port -> local:lport becomes VIP:port -> client:port.
    #[inline(always)]
    fn outbound(frame: &mut [u8], d: &FlowDesc, tx: &Tx) -> Result<(), DropReason> {
        let vip = (tx.vip.addr, tx.vip.port);
        if !rewrite::rewrite(frame, d, Some(vip), Some(tx.client)) {
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
        let local = tx.local().ok_or(DropReason::NoConn)?;
        if !rewrite::rewrite_fragment(frame, d, Some(local.0), Some(tx.backend.key.addr)) {
            return Err(DropReason::RewriteFailed);
        }
        rewrite::set_macs(frame, tx.snap.mac, tx.backend.mac);
        Ok(())
    }

    #[inline]
    fn outbound_fragment(frame: &mut [u8], d: &FlowDesc, tx: &Tx) -> Result<(), DropReason> {
        if !rewrite::rewrite_fragment(frame, d, Some(tx.vip.addr), Some(tx.client.0)) {
            return Err(DropReason::RewriteFailed);
        }
        rewrite::set_macs(frame, tx.snap.mac, tx.snap.next_hop(&tx.client.0));
        Ok(())
    }

    /// The quoted reply went VIP:port -> client:port; the backend sent it
    /// backend:port -> local:lport, and knows only the local address as a
    /// peer, so the error comes from there as the connection's packets do.
    fn icmp_in(
        frame: &mut [u8],
        d: &FlowDesc,
        q: &Quoted,
        tx: &Tx,
        _: &mut Front,
    ) -> Result<(), DropReason> {
        let local = tx.local().ok_or(DropReason::IcmpNoConn)?;
        super::icmp_to_backend(frame, d, q, tx, Some(local.0), Some(local))
    }

    /// The quoted packet went local:lport -> backend:port; the client sent
    /// it client:port -> VIP:port. An error the backend itself sent comes
    /// from the VIP.
    fn icmp_out(frame: &mut [u8], d: &FlowDesc, q: &Quoted, tx: &Tx) -> Result<(), DropReason> {
        super::icmp_to_client(frame, d, q, tx, Some(tx.client.0), Some(tx.client))
    }
}
