//! PROXY protocol v2 towards backends (`proxy_protocol = "v2"` on a TCP
//! VIP in `nat` or `fullnat` mode): the backend's byte stream starts with
//! a [`header`] naming the client's address and port and the VIP's, then
//! carries exactly the client's bytes. The client's byte stream is
//! unchanged. This is how an L7 tier behind a FullNAT entry learns who the
//! client is (nginx `listen ... proxy_protocol`, HAProxy `accept-proxy`).
//!
//! The header takes `H` bytes (28 for IPv4, 52 for IPv6) of the client's
//! sequence space that the client never sent, so from the moment rampart
//! sends it every packet of the connection is translated, for the life of
//! the connection ([`path`]):
//!
//! * client -> backend: `seq += H`;
//! * backend -> client: `ack -= H`, and both edges of every SACK block
//!   likewise (they number the client's bytes).
//!
//! Resets are ordinary packets here and are translated the same way. While
//! the backend has not acknowledged the whole header, an acknowledgment or
//! SACK edge that would fall inside the header is raised to the client's
//! ISN + 1: the client is never told of bytes acknowledged that it did not
//! send. Timestamps and the backend's own sequence space are untouched.
//!
//! When the header is sent: right after the handshake, without waiting
//! for client data, so protocols where the server speaks first (SMTP,
//! MySQL) work. Without the SYN proxy, the client's ACK of the backend's
//! SYN-ACK (or the first segment carrying that acknowledgment) is turned
//! into a segment that carries the header, seq = client ISN + 1, and what
//! the client sent after it follows with its sequence shifted. With the
//! SYN proxy (the backend handshake is rampart's own), the header rides on
//! rampart's ACK of the backend's SYN-ACK; the proxy's own offset on the
//! backend's sequence space and this one on the client's add up, each
//! field moved by its own side's offset.
//!
//! Loss: rampart keeps no copy of the header segment and runs no timer.
//! Everything in it is rebuilt from the connection entry, and the backend
//! itself says when it is missing: a backend that has not received the
//! header either resends its SYN-ACK (its handshake is incomplete, the
//! header's ACK having been lost with it) or, once client data completed
//! its handshake, acknowledges only up to the header's first byte
//! (a duplicate or old ACK, with the client's data in a SACK block). Each
//! such backend segment makes rampart send the header again
//! (`proxy_headers_resent`), so a resend costs one backend packet and can
//! never amplify. A lost client segment after the header is recovered by
//! the client's own retransmission, translated like any other.
//!
//! The per-connection state lives in a side array indexed by entry number
//! ([`ProxyState`], as the SYN proxy keeps its [`crate::synproxy::SpConn`]),
//! so connections of other VIPs do not grow; the entry's
//! [`crate::conntrack::flags::PROXY`] bit sends its packets here, off the
//! plain established path.

pub mod header;
pub(crate) mod path;

/// `PpConn::flags` bits.
pub mod ppflags {
    /// The client's SYN was seen: `client_next` is known.
    pub const SYN_SEEN: u8 = 0x01;
    /// The backend's SYN-ACK was seen: `backend_next` is known.
    pub const SYNACK_SEEN: u8 = 0x02;
    /// The header went to the backend: translation is live.
    pub const SENT: u8 = 0x04;
    /// The backend acknowledged the whole header.
    pub const ACKED: u8 = 0x08;
    /// The connection negotiated timestamps: a resent header carries them.
    pub const TS: u8 = 0x10;
}

/// What a connection with a PROXY header needs beyond its entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PpConn {
    /// The client's ISN + 1: the header's first byte in the backend's view
    /// of the client's sequence space.
    pub client_next: u32,
    /// The backend's ISN + 1, in the backend's own space: what the header
    /// segment acknowledges.
    pub backend_next: u32,
    /// The client's latest TSval rampart put on a header segment.
    pub tsval: u32,
    /// The window field of the header segment (the backend's units).
    pub window: u16,
    /// The header's length (28 or 52).
    pub len: u8,
    pub flags: u8,
}

impl PpConn {
    #[inline]
    pub fn sent(&self) -> bool {
        self.flags & ppflags::SENT != 0
    }

    #[inline]
    pub fn acked(&self) -> bool {
        self.flags & ppflags::ACKED != 0
    }

    /// The sequence number right after the header.
    #[inline]
    pub fn header_end(&self) -> u32 {
        self.client_next.wrapping_add(u32::from(self.len))
    }
}

/// One worker's PROXY header state, by connection entry number. Allocated
/// at start (or when a reload brings the first such VIP), never on the
/// datapath.
pub struct ProxyState {
    pub conns: Box<[PpConn]>,
}

impl ProxyState {
    /// State for a worker whose connection table holds `capacity` entries.
    pub fn new(capacity: u32) -> ProxyState {
        ProxyState {
            conns: crate::conntrack::hugemem::alloc(capacity as usize, PpConn::default()),
        }
    }
}
