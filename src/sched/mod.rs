//! Schedulers: which backend of a VIP takes a new connection.
//!
//! The datapath calls [`Scheduler::pick`] once per *new* connection (a
//! connection-table miss); packets of known connections follow their entry
//! and never reach a scheduler. There is one [`Scheduler`] per VIP per
//! worker. It is built on the control plane (that is where it allocates) and
//! owned by its worker, so it can keep mutable per-worker state — the
//! round-robin cursor, the smooth-WRR counters, the active-connection counts —
//! without locks. `pick` never allocates, locks or panics.
//!
//! Backends are named by their index in the VIP's backend list, the same list
//! the VIP's Maglev table was built from. Weight 0 drains a backend: no
//! scheduler ever picks it, and `pick` is `None` when every backend is drained.
//!
//! The kinds (one file each, as DPVS keeps one file per scheduler):
//! * `maglev` — Maglev consistent hashing of the flow hash
//!   ([`crate::maglev`]). Stateless and identical on every worker and every
//!   box with the same configuration, so a flow lands on the same backend even
//!   when its connection entry is lost (ECMP rehash, restart, table full).
//!   The default.
//! * `rr` ([`rr`]) — round robin over the non-drained backends, in list order.
//! * `wrr` ([`wrr`]) — smooth weighted round robin: over every `sum(weights)`
//!   picks each backend is picked exactly `weight` times, and the picks of a
//!   heavy backend are spread out rather than bunched.
//! * `lc` ([`lc`]) — weighted least connections: the backend with the fewest
//!   active connections per unit of weight. The counts are this worker's
//!   (the datapath reports opens and closes), so the balance is per worker;
//!   with RSS spreading flows evenly that approximates the global balance.
//! * `sh` — source hashing for session persistence: Maglev lookup of a hash of
//!   the client address alone, so every connection from one client goes to
//!   the same backend while the set is unchanged, and few clients move when it
//!   changes.
//!
//! Round-robin, weighted and least-connection picks differ between workers
//! and boxes; only `maglev` and `sh` are consistent across an ECMP group.
//!
//! A VIP with `[[vip.source]]` entries ([`source`]) has a pool per entry: a
//! subset of its backends that clients of the entry's prefixes are
//! scheduled over with the same kind ([`Scheduler::pick_pool`]): `maglev`
//! and `sh` through the pool's own table, `rr` and `wrr` with a cursor or
//! counters of the pool's own, `lc` over the pool's backends with the
//! VIP's counts (a backend's connections count wherever they came from).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

use std::fmt;

use crate::maglev::Table;

pub mod lc;
pub mod rr;
pub mod source;
pub mod wrr;

/// The scheduling algorithm of a VIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SchedKind {
    #[default]
    Maglev,
    Rr,
    Wrr,
    Lc,
    Sh,
}

impl SchedKind {
    /// The configuration names, in [`SchedKind::ALL`] order.
    pub const NAMES: &'static [&'static str] = &["maglev", "rr", "wrr", "lc", "sh"];

    pub const ALL: [SchedKind; 5] = [
        SchedKind::Maglev,
        SchedKind::Rr,
        SchedKind::Wrr,
        SchedKind::Lc,
        SchedKind::Sh,
    ];

    /// The configuration name: `maglev`, `rr`, `wrr`, `lc` or `sh`.
    pub fn parse(s: &str) -> Option<SchedKind> {
        SchedKind::ALL.into_iter().find(|k| k.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            SchedKind::Maglev => "maglev",
            SchedKind::Rr => "rr",
            SchedKind::Wrr => "wrr",
            SchedKind::Lc => "lc",
            SchedKind::Sh => "sh",
        }
    }
}

impl fmt::Display for SchedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Per-kind mutable state.
#[derive(Clone, Debug)]
enum State {
    /// Maglev and source hashing keep no state of their own.
    Hash,
    Rr(rr::Cursor),
    Wrr(wrr::Smooth),
    Lc,
}

impl State {
    fn new(kind: SchedKind, weights: &[u32]) -> State {
        match kind {
            SchedKind::Maglev | SchedKind::Sh => State::Hash,
            SchedKind::Rr => State::Rr(rr::Cursor::default()),
            SchedKind::Wrr => State::Wrr(wrr::Smooth::new(weights)),
            SchedKind::Lc => State::Lc,
        }
    }
}

/// A source pool's own picking state: a subset of the VIP's backends.
#[derive(Clone, Debug)]
struct Pool {
    /// The pool's backends, as indices of the VIP's.
    members: Box<[u32]>,
    /// Their weights, as the VIP has them.
    weights: Box<[u32]>,
    state: State,
}

/// The scheduler of one VIP on one worker.
#[derive(Clone, Debug)]
pub struct Scheduler {
    kind: SchedKind,
    weights: Box<[u32]>,
    /// Active connections per backend on this worker; read by `lc`, kept for
    /// every kind so statistics can show it.
    active: Box<[u32]>,
    state: State,
    /// One per `[[vip.source]]` entry, in config order.
    pools: Box<[Pool]>,
}

impl Scheduler {
    /// `weights[i]` is the weight of backend `i` of the VIP; 0 = drained.
    /// Allocates: call on the control plane.
    pub fn new(kind: SchedKind, weights: &[u32]) -> Scheduler {
        Scheduler {
            kind,
            weights: weights.into(),
            active: vec![0; weights.len()].into_boxed_slice(),
            state: State::new(kind, weights),
            pools: Box::new([]),
        }
    }

    /// The same scheduler with one pool per entry of `pools`, each the
    /// list of its backends as indices of the VIP's. Allocates.
    pub fn with_pools<'a>(mut self, pools: impl IntoIterator<Item = &'a [u32]>) -> Scheduler {
        self.pools = pools
            .into_iter()
            .map(|members| {
                let weights: Vec<u32> = members
                    .iter()
                    .map(|&i| self.weights.get(i as usize).copied().unwrap_or(0))
                    .collect();
                Pool {
                    members: members.into(),
                    state: State::new(self.kind, &weights),
                    weights: weights.into(),
                }
            })
            .collect();
        self
    }

    /// Whether this scheduler's pools are exactly `pools` (in order).
    pub fn has_pools<'a>(&self, pools: impl IntoIterator<Item = &'a [u32]>) -> bool {
        let mut mine = self.pools.iter();
        for p in pools {
            match mine.next() {
                Some(m) if *m.members == *p => {}
                _ => return false,
            }
        }
        mine.next().is_none()
    }

    pub fn kind(&self) -> SchedKind {
        self.kind
    }

    /// Number of backends (drained ones included).
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    pub fn weights(&self) -> &[u32] {
        &self.weights
    }

    /// Active connections this worker has on backend `idx` (0 if out of range).
    pub fn active(&self, idx: u32) -> u32 {
        self.active.get(idx as usize).copied().unwrap_or(0)
    }

    /// The backend for a new connection, or `None` when every backend is
    /// drained. `flow_hash` hashes the whole flow (used by `maglev`),
    /// `src_hash` the client address only (used by `sh`); `maglev` is the
    /// VIP's table, built from the same backend list as `weights`.
    #[inline]
    pub fn pick(&mut self, maglev: &Table, flow_hash: u64, src_hash: u64) -> Option<u32> {
        match &mut self.state {
            State::Hash => match self.kind {
                SchedKind::Sh => maglev.lookup(src_hash),
                _ => maglev.lookup(flow_hash),
            },
            State::Rr(cursor) => cursor.pick(&self.weights),
            State::Wrr(smooth) => smooth.pick(&self.weights),
            State::Lc => lc::pick(&self.weights, &self.active),
        }
    }

    /// The backend (an index of the VIP's, as [`Scheduler::pick`] gives)
    /// for a new connection of a client in source pool `pool`, or `None`
    /// when every backend of the pool is drained. `maglev` is the pool's
    /// own table (its lookups index the pool's members).
    #[inline]
    pub fn pick_pool(
        &mut self,
        pool: u32,
        maglev: &Table,
        flow_hash: u64,
        src_hash: u64,
    ) -> Option<u32> {
        let p = self.pools.get_mut(pool as usize)?;
        let j = match &mut p.state {
            State::Hash => match self.kind {
                SchedKind::Sh => maglev.lookup(src_hash),
                _ => maglev.lookup(flow_hash),
            },
            State::Rr(cursor) => cursor.pick(&p.weights),
            State::Wrr(smooth) => smooth.pick(&p.weights),
            State::Lc => return lc::pick_among(&self.weights, &self.active, &p.members),
        }?;
        p.members.get(j as usize).copied()
    }

    /// Sets the active count of backend `idx` (a scheduler rebuilt for a
    /// new snapshot takes over its predecessor's counts).
    pub fn set_active(&mut self, idx: u32, n: u32) {
        if let Some(a) = self.active.get_mut(idx as usize) {
            *a = n;
        }
    }

    /// The datapath opened a connection to backend `idx`.
    #[inline]
    pub fn conn_opened(&mut self, idx: u32) {
        if let Some(a) = self.active.get_mut(idx as usize) {
            *a = a.saturating_add(1);
        }
    }

    /// A connection to backend `idx` closed or expired.
    #[inline]
    pub fn conn_closed(&mut self, idx: u32) {
        if let Some(a) = self.active.get_mut(idx as usize) {
            *a = a.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Addr;
    use crate::maglev::{build, BackendKey, MaglevBackend, DEFAULT_TABLE_SIZE};

    fn table(weights: &[u32]) -> Table {
        let set: Vec<_> = weights
            .iter()
            .zip(0u8..)
            .map(|(&weight, i)| MaglevBackend {
                key: BackendKey {
                    addr: Addr::from_v4([198, 18, 2, i]),
                    port: 80,
                },
                weight,
            })
            .collect();
        build(&set, DEFAULT_TABLE_SIZE)
    }

    #[test]
    fn parse_names() {
        for k in SchedKind::ALL {
            assert_eq!(SchedKind::parse(k.name()), Some(k));
            assert_eq!(k.to_string(), k.name());
        }
        assert_eq!(SchedKind::parse("maglev"), Some(SchedKind::Maglev));
        assert_eq!(SchedKind::parse("wrr"), Some(SchedKind::Wrr));
        assert_eq!(SchedKind::parse("RR"), None);
        assert_eq!(SchedKind::parse("wlc"), None);
        assert_eq!(SchedKind::parse(""), None);
        assert_eq!(SchedKind::default(), SchedKind::Maglev);
    }

    #[test]
    fn maglev_follows_the_table() {
        let w = [1, 1, 1, 1];
        let t = table(&w);
        let mut s = Scheduler::new(SchedKind::Maglev, &w);
        for h in [0u64, 1, 12345, u64::MAX] {
            assert_eq!(s.pick(&t, h, 7), t.lookup(h));
        }
    }

    #[test]
    fn sh_same_source_same_backend() {
        let w = [1, 2, 1, 3];
        let t = table(&w);
        let mut s = Scheduler::new(SchedKind::Sh, &w);
        for src in [3u64, 99, 0xdead_beef, u64::MAX - 5] {
            let first = s.pick(&t, 0, src);
            assert!(first.is_some());
            // Different flows (ports) from the same client.
            for flow in 1..50u64 {
                assert_eq!(s.pick(&t, flow.wrapping_mul(0x9e37_79b9), src), first);
            }
            assert_eq!(first, t.lookup(src));
        }
    }

    #[test]
    fn all_drained_picks_nothing() {
        let w = [0, 0, 0];
        let t = table(&w);
        for k in SchedKind::ALL {
            let mut s = Scheduler::new(k, &w);
            for h in 0..20 {
                assert_eq!(s.pick(&t, h, h), None, "{k}");
            }
        }
    }

    #[test]
    fn no_backends_picks_nothing() {
        let t = table(&[]);
        for k in SchedKind::ALL {
            let mut s = Scheduler::new(k, &[]);
            assert!(s.is_empty());
            assert_eq!(s.pick(&t, 1, 1), None, "{k}");
            s.conn_opened(0);
            s.conn_closed(0);
        }
    }

    #[test]
    fn drained_never_picked_by_any_kind() {
        let w = [2, 0, 1, 0, 3];
        let t = table(&w);
        for k in SchedKind::ALL {
            let mut s = Scheduler::new(k, &w);
            for h in 0..500u64 {
                let h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let i = s.pick(&t, h, h >> 7).unwrap_or(u32::MAX);
                assert!(i == 0 || i == 2 || i == 4, "{k} picked {i}");
                s.conn_opened(i);
            }
        }
    }

    #[test]
    fn conn_counts_saturate_and_ignore_bad_index() {
        let mut s = Scheduler::new(SchedKind::Lc, &[1, 1]);
        s.conn_closed(0);
        assert_eq!(s.active(0), 0);
        s.conn_opened(1);
        s.conn_opened(1);
        s.conn_closed(1);
        assert_eq!(s.active(1), 1);
        s.conn_opened(7);
        s.conn_closed(u32::MAX);
        assert_eq!(s.active(7), 0);
    }

    #[test]
    fn lc_through_the_facade() {
        let w = [1, 1, 1];
        let t = table(&[]);
        let mut s = Scheduler::new(SchedKind::Lc, &w);
        // Every open lands on the least loaded backend, so the load stays level.
        for _ in 0..30 {
            let i = s.pick(&t, 0, 0).unwrap_or(u32::MAX);
            s.conn_opened(i);
        }
        assert_eq!([s.active(0), s.active(1), s.active(2)], [10, 10, 10]);
        s.conn_closed(2);
        assert_eq!(s.pick(&t, 0, 0), Some(2));
    }

    /// The pool's own table over members 1 and 3 of `weights`.
    fn pool_table(weights: &[u32], members: &[u32]) -> Table {
        let set: Vec<_> = members
            .iter()
            .map(|&i| MaglevBackend {
                key: BackendKey {
                    addr: Addr::from_v4([198, 18, 2, i as u8]),
                    port: 80,
                },
                weight: weights[i as usize],
            })
            .collect();
        build(&set, DEFAULT_TABLE_SIZE)
    }

    #[test]
    fn every_kind_picks_within_its_pool() {
        let w = [1, 2, 1, 3, 1];
        let members: [u32; 2] = [3, 1];
        let t = pool_table(&w, &members);
        for k in SchedKind::ALL {
            let mut s = Scheduler::new(k, &w).with_pools([&members[..]]);
            assert!(s.has_pools([&members[..]]));
            assert!(!s.has_pools([&[1u32, 3][..]]));
            assert!(!s.has_pools(std::iter::empty()));
            let mut seen = [0u32; 5];
            for h in 0..600u64 {
                let h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let i = s.pick_pool(0, &t, h, h >> 9).unwrap_or(u32::MAX);
                assert!(members.contains(&i), "{k} picked {i}");
                seen[i as usize] += 1;
                s.conn_opened(i);
            }
            // Both members get flows (sh: many sources; lc: level load).
            assert!(seen[1] > 0 && seen[3] > 0, "{k}: {seen:?}");
            // The VIP's own picks still cover every backend.
            assert_eq!(s.pick_pool(1, &t, 1, 1), None, "{k}: no second pool");
        }
        // wrr keeps the pool's weight ratio (3 : 2) exactly.
        let mut s = Scheduler::new(SchedKind::Wrr, &w).with_pools([&members[..]]);
        let picks: Vec<_> = (0..50).map(|_| s.pick_pool(0, &t, 0, 0)).collect();
        assert_eq!(picks.iter().filter(|p| **p == Some(3)).count(), 30);
        assert_eq!(picks.iter().filter(|p| **p == Some(1)).count(), 20);
    }

    #[test]
    fn a_drained_pool_picks_nothing() {
        let w = [1, 0, 1, 0];
        let members: [u32; 2] = [1, 3];
        let t = pool_table(&w, &members);
        for k in SchedKind::ALL {
            let mut s = Scheduler::new(k, &w).with_pools([&members[..]]);
            for h in 0..20 {
                assert_eq!(s.pick_pool(0, &t, h, h), None, "{k}");
            }
            assert!(s.pick(&table(&w), 5, 5).is_some(), "{k}");
        }
    }

    /// lc in a pool counts the connections a backend has from anywhere.
    #[test]
    fn lc_in_a_pool_sees_the_vips_counts() {
        let w = [1, 1, 1];
        let members: [u32; 2] = [0, 1];
        let t = table(&[]);
        let mut s = Scheduler::new(SchedKind::Lc, &w).with_pools([&members[..]]);
        // Backend 0 is busy with flows from outside the pool.
        for _ in 0..5 {
            s.conn_opened(0);
        }
        for _ in 0..5 {
            assert_eq!(s.pick_pool(0, &t, 0, 0), Some(1));
            s.conn_opened(1);
        }
        assert_eq!(s.pick_pool(0, &t, 0, 0), Some(0));
    }

    #[test]
    fn names_follow_all() {
        for (k, n) in SchedKind::ALL.iter().zip(SchedKind::NAMES) {
            assert_eq!(k.name(), *n);
            assert_eq!(SchedKind::parse(n), Some(*k));
        }
    }
}
