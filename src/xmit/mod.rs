//! Forwarding modes, one module each, as DPVS binds `packet_xmit` per
//! connection: [`nat`], [`fullnat`], [`dr`], [`tunnel`]. A mode owns everything that
//! differs between modes, in both directions:
//!
//! * whether a flow of the mode can reach its backend without a connection
//!   entry ([`Forwarding::STATELESS`]: a full table, a flow picked up
//!   mid-way, a RST with no entry);
//! * whether it needs a local address and port of ours ([`Forwarding::LOCAL_PORT`]);
//! * the key its replies arrive with ([`Forwarding::reply_key`]), if they
//!   pass through rampart at all;
//! * the inbound (client -> backend) and outbound (backend -> client)
//!   transforms, and their counterparts for the fragments of a datagram
//!   after its first, which carry no transport header: the same IP header
//!   and frame changes, the transport checksum having been paid for in the
//!   first fragment.
//!
//! The mode is bound once, when a connection is created: the entry records
//! its [`Xmit`], and every later packet of the connection dispatches on
//! that, never on the VIP's config again. A flow forwarded without an entry
//! binds it at the moment of that decision.
//!
//! A transform rewrites only what its mode changes (addresses and ports
//! with RFC 1624 incremental checksum updates, then the MACs for the next
//! hop) and leaves everything else as it arrived: IPv4 ID, TTL / hop limit,
//! TCP options, VLAN tag. One that cannot apply returns the [`DropReason`]
//! that names why; a frame is never forwarded half-rewritten or unchanged by
//! accident.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod dr;
pub mod fullnat;
pub mod lport;
pub mod nat;
pub mod tunnel;

use crate::config::Mode;
use crate::flow::{Addr, FlowDesc, FlowKey};
use crate::snapshot::{BackendInfo, Snapshot, VipInfo};
use crate::stats::DropReason;
use crate::wire::icmp::Quoted;

/// The forwarding mode bound to a connection (or to a flow forwarded
/// without one). One byte in the entry.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Xmit {
    #[default]
    Nat = 0,
    FullNat = 1,
    Dr = 2,
    Tunnel = 3,
}

impl Xmit {
    /// The transform a VIP's mode binds.
    #[inline]
    pub fn of(mode: Mode) -> Xmit {
        match mode {
            Mode::Nat => Xmit::Nat,
            Mode::FullNat => Xmit::FullNat,
            Mode::Dr => Xmit::Dr,
            Mode::Tunnel => Xmit::Tunnel,
        }
    }

    /// See [`Forwarding::STATELESS`].
    #[inline]
    pub fn stateless(self) -> bool {
        match self {
            Xmit::Nat => nat::Nat::STATELESS,
            Xmit::FullNat => fullnat::FullNat::STATELESS,
            Xmit::Dr => dr::Dr::STATELESS,
            Xmit::Tunnel => tunnel::Tunnel::STATELESS,
        }
    }

    /// See [`Forwarding::LOCAL_PORT`].
    #[inline]
    pub fn local_port(self) -> bool {
        match self {
            Xmit::Nat => nat::Nat::LOCAL_PORT,
            Xmit::FullNat => fullnat::FullNat::LOCAL_PORT,
            Xmit::Dr => dr::Dr::LOCAL_PORT,
            Xmit::Tunnel => tunnel::Tunnel::LOCAL_PORT,
        }
    }

    /// See [`Forwarding::admits`].
    #[inline]
    pub fn admits(self, backend: &BackendInfo) -> Result<(), DropReason> {
        match self {
            Xmit::Nat => nat::Nat::admits(backend),
            Xmit::FullNat => fullnat::FullNat::admits(backend),
            Xmit::Dr => dr::Dr::admits(backend),
            Xmit::Tunnel => tunnel::Tunnel::admits(backend),
        }
    }

    /// See [`Forwarding::reply_key`].
    #[inline]
    pub fn reply_key(self, ends: &Ends) -> Option<FlowKey> {
        match self {
            Xmit::Nat => nat::Nat::reply_key(ends),
            Xmit::FullNat => fullnat::FullNat::reply_key(ends),
            Xmit::Dr => dr::Dr::reply_key(ends),
            Xmit::Tunnel => tunnel::Tunnel::reply_key(ends),
        }
    }

    /// Client -> backend.
    #[inline(always)]
    pub fn inbound(
        self,
        frame: &mut [u8],
        d: &FlowDesc,
        tx: &Tx,
        front: &mut Front,
    ) -> Result<(), DropReason> {
        match self {
            Xmit::Nat => nat::Nat::inbound(frame, d, tx, front),
            Xmit::FullNat => fullnat::FullNat::inbound(frame, d, tx, front),
            Xmit::Dr => dr::Dr::inbound(frame, d, tx, front),
            Xmit::Tunnel => tunnel::Tunnel::inbound(frame, d, &tx.copy(), front),
        }
    }

    /// See [`Forwarding::icmp_in`].
    pub fn icmp_in(
        self,
        frame: &mut [u8],
        d: &FlowDesc,
        q: &Quoted,
        tx: &Tx,
        front: &mut Front,
    ) -> Result<(), DropReason> {
        match self {
            Xmit::Nat => nat::Nat::icmp_in(frame, d, q, tx, front),
            Xmit::FullNat => fullnat::FullNat::icmp_in(frame, d, q, tx, front),
            Xmit::Dr => dr::Dr::icmp_in(frame, d, q, tx, front),
            Xmit::Tunnel => tunnel::Tunnel::icmp_in(frame, d, q, tx, front),
        }
    }

    /// See [`Forwarding::icmp_out`].
    pub fn icmp_out(
        self,
        frame: &mut [u8],
        d: &FlowDesc,
        q: &Quoted,
        tx: &Tx,
    ) -> Result<(), DropReason> {
        match self {
            Xmit::Nat => nat::Nat::icmp_out(frame, d, q, tx),
            Xmit::FullNat => fullnat::FullNat::icmp_out(frame, d, q, tx),
            Xmit::Dr => dr::Dr::icmp_out(frame, d, q, tx),
            Xmit::Tunnel => tunnel::Tunnel::icmp_out(frame, d, q, tx),
        }
    }

    /// See [`Forwarding::inbound_fragment`].
    pub fn inbound_fragment(
        self,
        frame: &mut [u8],
        d: &FlowDesc,
        tx: &Tx,
        front: &mut Front,
    ) -> Result<(), DropReason> {
        match self {
            Xmit::Nat => nat::Nat::inbound_fragment(frame, d, tx, front),
            Xmit::FullNat => fullnat::FullNat::inbound_fragment(frame, d, tx, front),
            Xmit::Dr => dr::Dr::inbound_fragment(frame, d, tx, front),
            Xmit::Tunnel => tunnel::Tunnel::inbound_fragment(frame, d, tx, front),
        }
    }

    /// See [`Forwarding::outbound_fragment`].
    pub fn outbound_fragment(
        self,
        frame: &mut [u8],
        d: &FlowDesc,
        tx: &Tx,
    ) -> Result<(), DropReason> {
        match self {
            Xmit::Nat => nat::Nat::outbound_fragment(frame, d, tx),
            Xmit::FullNat => fullnat::FullNat::outbound_fragment(frame, d, tx),
            Xmit::Dr => dr::Dr::outbound_fragment(frame, d, tx),
            Xmit::Tunnel => tunnel::Tunnel::outbound_fragment(frame, d, tx),
        }
    }

    /// Backend -> client.
    #[inline(always)]
    pub fn outbound(self, frame: &mut [u8], d: &FlowDesc, tx: &Tx) -> Result<(), DropReason> {
        match self {
            Xmit::Nat => nat::Nat::outbound(frame, d, tx),
            Xmit::FullNat => fullnat::FullNat::outbound(frame, d, tx),
            Xmit::Dr => dr::Dr::outbound(frame, d, tx),
            Xmit::Tunnel => tunnel::Tunnel::outbound(frame, d, &tx.copy()),
        }
    }
}

/// The two ends of a connection as its mode sees them.
#[derive(Clone, Copy, Debug)]
pub struct Ends {
    pub client: (Addr, u16),
    pub backend: (Addr, u16),
    /// FullNAT: the local address and port that stands in for the client.
    pub local: Option<(Addr, u16)>,
    pub proto: u8,
}

/// What a transform reads besides the frame.
#[derive(Clone, Copy)]
pub struct Tx<'a> {
    pub snap: &'a Snapshot,
    pub vip: &'a VipInfo,
    pub backend: &'a BackendInfo,
    /// The client's address and port (where replies go).
    pub client: (Addr, u16),
    /// FullNAT: the local address (its number in the snapshot) and port
    /// that stand in for the client; see [`Tx::local`].
    pub local: Option<(u8, u16)>,
}

impl Tx<'_> {
    /// FullNAT: the local address and port that stand in for the client.
    #[inline]
    pub fn local(&self) -> Option<(Addr, u16)> {
        let (n, port) = self.local?;
        self.snap
            .local_addrs
            .get(usize::from(n))
            .map(|a| (*a, port))
    }

    /// A copy for a transform that is not inlined: the caller's `Tx` then
    /// never has its address taken and stays in registers on the inlined
    /// modes' paths.
    #[inline(always)]
    fn copy(&self) -> Tx<'_> {
        Tx { ..*self }
    }
}

/// One forwarding mode. Implemented by a unit type per module; [`Xmit`]
/// dispatches to it.
pub trait Forwarding {
    /// A flow can reach its backend without an entry: with a full table it
    /// goes to its Maglev backend statelessly, a flow seen mid-way is picked
    /// up, a RST with no entry is passed on. False when the backend could
    /// not recognise such packets (FullNAT: it saw another source).
    const STATELESS: bool;
    /// The connection needs a local address and port of this worker.
    const LOCAL_PORT: bool = false;

    /// Whether the mode can reach `backend` at all (DR needs a neighbor).
    #[inline]
    fn admits(backend: &BackendInfo) -> Result<(), DropReason> {
        let _ = backend;
        Ok(())
    }

    /// The key the backend's replies carry, or `None` when they do not
    /// come back through rampart.
    fn reply_key(ends: &Ends) -> Option<FlowKey>;

    /// Client -> backend. An encapsulating mode writes the outer headers
    /// into `front` (the worker's one buffer for them); the pipeline puts
    /// them in front of the IP packet.
    fn inbound(
        frame: &mut [u8],
        d: &FlowDesc,
        tx: &Tx,
        front: &mut Front,
    ) -> Result<(), DropReason>;

    /// Backend -> client.
    fn outbound(frame: &mut [u8], d: &FlowDesc, tx: &Tx) -> Result<(), DropReason>;

    /// Client -> backend, for an IP fragment that is not its datagram's
    /// first (see [`crate::frag`]): the same change to the IP header and
    /// frame as [`Forwarding::inbound`] made to the first fragment, and
    /// nothing to the bytes after it, which are the middle of the
    /// datagram. `d.key` is the first fragment's, ports included.
    fn inbound_fragment(
        frame: &mut [u8],
        d: &FlowDesc,
        tx: &Tx,
        front: &mut Front,
    ) -> Result<(), DropReason>;

    /// Backend -> client, for a fragment that is not its datagram's first.
    fn outbound_fragment(frame: &mut [u8], d: &FlowDesc, tx: &Tx) -> Result<(), DropReason>;

    /// An ICMP error from the client's side (sent to the VIP) about a
    /// packet of this connection that went to the client: delivered to the
    /// backend, translated so it recognises its own packet in the quote.
    /// The default forwards it as the mode forwards a client packet: the
    /// direct-return modes, whose backends sent the quoted packet from the
    /// VIP themselves.
    fn icmp_in(
        frame: &mut [u8],
        d: &FlowDesc,
        q: &Quoted,
        tx: &Tx,
        front: &mut Front,
    ) -> Result<(), DropReason> {
        let _ = q;
        Self::inbound(frame, d, tx, front)
    }

    /// An ICMP error from the backend's side about a client packet this
    /// connection forwarded: delivered to the client, translated back.
    /// Modes whose backends answer directly never see one.
    fn icmp_out(frame: &mut [u8], d: &FlowDesc, q: &Quoted, tx: &Tx) -> Result<(), DropReason> {
        let _ = (frame, d, q, tx);
        Err(DropReason::IcmpNoConn)
    }
}

/// An ICMP error from the client's side, about a reply of the connection,
/// made to name the packet the backend sent: to the backend, the quoted
/// source VIP:port turned into backend:port; for FullNAT also the error's
/// source (`outer_src`) and the quoted client (`quoted_dst`) into the local
/// address and port.
fn icmp_to_backend(
    frame: &mut [u8],
    d: &FlowDesc,
    q: &Quoted,
    tx: &Tx,
    outer_src: Option<Addr>,
    quoted_dst: Option<(Addr, u16)>,
) -> Result<(), DropReason> {
    let b = (tx.backend.key.addr, tx.backend.key.port);
    if !crate::wire::icmp::translate_error(frame, d, q, outer_src, Some(b.0), Some(b), quoted_dst) {
        return Err(DropReason::RewriteFailed);
    }
    crate::wire::rewrite::set_macs(frame, tx.snap.mac, tx.backend.mac);
    Ok(())
}

/// An ICMP error from the backend's side, about a client packet the
/// connection forwarded, made to name the packet the client sent: to the
/// client, the quoted destination backend:port turned into VIP:port; for
/// FullNAT also the error's destination (`outer_dst`) and the quoted local
/// address and port (`quoted_src`) into the client's. An error the backend
/// sent itself comes from the VIP, the only address the client knows.
fn icmp_to_client(
    frame: &mut [u8],
    d: &FlowDesc,
    q: &Quoted,
    tx: &Tx,
    outer_dst: Option<Addr>,
    quoted_src: Option<(Addr, u16)>,
) -> Result<(), DropReason> {
    let vip = (tx.vip.addr, tx.vip.port);
    let from = (d.key.src == tx.backend.key.addr).then_some(vip.0);
    if !crate::wire::icmp::translate_error(frame, d, q, from, outer_dst, quoted_src, Some(vip)) {
        return Err(DropReason::RewriteFailed);
    }
    crate::wire::rewrite::set_macs(frame, tx.snap.mac, tx.snap.next_hop(&tx.client.0));
    Ok(())
}

/// Room for the outer headers an encapsulating mode puts in front of an IP
/// packet: IPv6 (40) + UDP (8) + GUE (4), rounded up.
pub const FRONT_MAX: usize = 56;

/// Outer headers to insert between the Ethernet header (with its VLAN tag,
/// if any) and the IP packet, written by an encapsulating transform and
/// applied by the pipeline once the buffer can grow at the front
/// ([`crate::buf::PacketBuf::prepend`]). `len == 0`: nothing to insert.
#[derive(Clone, Copy, Debug)]
pub struct Front {
    pub bytes: [u8; FRONT_MAX],
    pub len: u8,
    /// EtherType of the outer header.
    pub ethertype: u16,
}

impl Front {
    pub const EMPTY: Front = Front {
        bytes: [0; FRONT_MAX],
        len: 0,
        ethertype: 0,
    };

    pub fn header(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}
