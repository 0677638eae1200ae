//! Direct routing: the IP packet is untouched; only the frame is readdressed
//! to the backend, which holds the VIP on a loopback and answers the client
//! directly. The backend must be on rampart's own L2 segment (a static
//! neighbor entry), and its replies never pass through rampart.

use super::{Ends, Forwarding, Front, Tx};
use crate::flow::{FlowDesc, FlowKey};
use crate::snapshot::BackendInfo;
use crate::stats::DropReason;
use crate::wire::rewrite;

pub struct Dr;

impl Forwarding for Dr {
    const STATELESS: bool = true;

    /// Without a neighbor entry the frame would go to the gateway, which
    /// would route it straight back to the VIP.
    #[inline]
    fn admits(backend: &BackendInfo) -> Result<(), DropReason> {
        if backend.adjacent {
            Ok(())
        } else {
            Err(DropReason::DrNoNeighbor)
        }
    }

    #[inline]
    fn reply_key(_: &Ends) -> Option<FlowKey> {
        None
    }

    #[inline(always)]
    fn inbound(frame: &mut [u8], _: &FlowDesc, tx: &Tx, _: &mut Front) -> Result<(), DropReason> {
        Self::admits(tx.backend)?;
        rewrite::set_macs(frame, tx.snap.mac, tx.backend.mac);
        Ok(())
    }

    /// The IP packet is untouched either way: only the frame is readdressed.
    #[inline]
    fn inbound_fragment(
        frame: &mut [u8],
        d: &FlowDesc,
        tx: &Tx,
        front: &mut Front,
    ) -> Result<(), DropReason> {
        Self::inbound(frame, d, tx, front)
    }

    #[inline]
    fn outbound_fragment(_: &mut [u8], _: &FlowDesc, _: &Tx) -> Result<(), DropReason> {
        Err(DropReason::NoConn)
    }

    /// Replies go from the backend to the client directly; a DR connection
    /// has no reply key, so none is ever looked up here.
    #[inline]
    fn outbound(_: &mut [u8], _: &FlowDesc, _: &Tx) -> Result<(), DropReason> {
        Err(DropReason::NoConn)
    }
}
