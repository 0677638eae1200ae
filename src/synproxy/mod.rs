//! SYN proxy and SYN-flood shield (DPVS `ip_vs_synproxy.c` is the model for
//! the splice; Linux syncookies for the cookie).
//!
//! For a VIP with `synproxy = true` no packet reaches a backend before the
//! client has proven its address by completing a handshake with rampart:
//!
//! 1. Client SYN: answered in the same buffer with a SYN-ACK whose ISN is a
//!    [`cookie`]; nothing is stored, so a flood of spoofed SYNs costs no
//!    memory. Per-source [`bucket`]s limit how many SYNs one address gets
//!    answers for.
//! 2. Client ACK: the cookie is checked against `ack - 1` (ACK storms are
//!    limited by a cookie-check bucket). A valid one opens the connection
//!    entry, picks the backend and sends it a SYN with the client's ISN and
//!    the options the cookie carried. Client data that arrives before the
//!    backend answers is held ([`hold`]).
//! 3. Backend SYN-ACK: the difference between the backend's ISN and the
//!    cookie is stored in [`SpConn`]; rampart ACKs the backend in the
//!    SYN-ACK's own buffer and releases the held packets. From then on every
//!    packet is translated: seq/ack, SACK blocks, timestamps and (when the
//!    two sides' window scales differ) the window, all with incremental
//!    checksum updates and wrapping arithmetic.
//! 4. A backend RST, or no answer after `syn_retries` resends, resets the
//!    client and frees the entry.
//!
//! The client's own ISN is passed to the backend unchanged, so only the
//! server side's sequence space (and timestamp clock) needs an offset.

pub mod bucket;
pub mod cookie;
pub mod hold;
pub(crate) mod path;

use std::collections::VecDeque;

use crate::snapshot::Snapshot;
use bucket::{SourceBuckets, TokenBucket};
use cookie::Secrets;
use hold::{HoldPool, NIL};

/// `SpConn::flags` bits.
pub mod spflags {
    /// SACK was negotiated with the client.
    pub const SACK: u8 = 0x01;
    /// Timestamps were negotiated with the client.
    pub const TS: u8 = 0x02;
    /// The backend answered: translation is live.
    pub const ESTABLISHED: u8 = 0x04;
}

/// No window scale option on that side.
pub const NO_WSCALE: u8 = 0xff;

/// What a proxied connection needs beyond its [`crate::conntrack::ConnEntry`],
/// kept in a side array indexed by entry number so entries of other VIPs do
/// not grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpConn {
    /// Our SYN-ACK's ISN (the cookie).
    pub our_isn: u32,
    pub client_isn: u32,
    /// Backend ISN minus our ISN: added to acks towards the backend,
    /// subtracted from seqs towards the client.
    pub seq_delta: u32,
    /// Backend TSval minus ours, the same way for timestamps.
    pub ts_delta: u32,
    /// The client's TSval in its ACK (our ACK to the backend echoes the
    /// backend and carries this).
    pub client_tsval: u32,
    /// Our SYN-ACK's TSval, as the client echoed it.
    pub our_tsval: u32,
    /// Worker second at which the backend SYN is resent.
    pub retry_at: u32,
    /// Held client packets (a list in the hold pool).
    pub held_head: u32,
    pub held_tail: u32,
    /// The SYN sent to the backend, kept for resends (hold pool buffer).
    pub syn_slot: u32,
    /// The client's window field in its ACK (scaled by its own factor).
    pub client_window: u16,
    pub client_wscale: u8,
    /// The factor our SYN-ACK announced ([`NO_WSCALE`] if none).
    pub our_wscale: u8,
    pub backend_wscale: u8,
    pub flags: u8,
    pub retries: u8,
    pub held: u8,
}

impl Default for SpConn {
    fn default() -> SpConn {
        SpConn {
            our_isn: 0,
            client_isn: 0,
            seq_delta: 0,
            ts_delta: 0,
            client_tsval: 0,
            our_tsval: 0,
            retry_at: 0,
            held_head: NIL,
            held_tail: NIL,
            syn_slot: NIL,
            client_window: 0,
            client_wscale: NO_WSCALE,
            our_wscale: NO_WSCALE,
            backend_wscale: NO_WSCALE,
            flags: 0,
            retries: 0,
            held: 0,
        }
    }
}

impl SpConn {
    #[inline]
    pub fn established(&self) -> bool {
        self.flags & spflags::ESTABLISHED != 0
    }
}

/// One worker's SYN proxy state. Everything is allocated here, at start.
pub struct SynproxyState {
    pub secrets: Secrets,
    /// By connection entry number.
    pub conns: Box<[SpConn]>,
    pub hold: HoldPool,
    /// Handshakes waiting for a backend, oldest first: (entry, cookie).
    pub pending: VecDeque<(u32, u32)>,
    pub sources: SourceBuckets,
    pub new_conns: TokenBucket,
    pub cookie_checks: TokenBucket,
}

impl SynproxyState {
    /// State for a worker whose connection table holds `capacity` entries.
    /// The cookie master key is `synproxy.secret` when configured, else
    /// drawn from the OS random source.
    pub fn new(
        snap: &Snapshot,
        capacity: u32,
        seed: u64,
        now_secs: u32,
    ) -> Result<SynproxyState, crate::random::RandomError> {
        let c = &snap.synproxy;
        let secrets = match c.secret {
            Some(k) => Secrets::new(k, c.secret_rotate, now_secs),
            None => Secrets::from_os_random(c.secret_rotate, now_secs)?,
        };
        let n = capacity as usize;
        Ok(SynproxyState {
            secrets,
            conns: crate::conntrack::hugemem::alloc(n, SpConn::default()),
            hold: HoldPool::new(c.hold_slots),
            pending: VecDeque::with_capacity(n.min(1 << 20)),
            sources: SourceBuckets::new(
                c.syn_rate_per_source,
                c.syn_burst_per_source,
                c.source_slots as usize,
                seed ^ 0x5359_4e50,
            ),
            new_conns: TokenBucket::new(c.conn_rate, c.conn_burst),
            cookie_checks: TokenBucket::new(c.ack_rate, c.ack_burst),
        })
    }

    /// Frees what entry `idx` held (its packets, its SYN template).
    pub fn release(&mut self, idx: u32) {
        if let Some(sc) = self.conns.get_mut(idx as usize) {
            let c = std::mem::take(sc);
            self.hold.release_list(c.held_head);
            if c.syn_slot != NIL {
                self.hold.release(c.syn_slot);
            }
        }
    }
}
