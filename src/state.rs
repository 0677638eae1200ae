//! What one worker owns: its connection table, schedulers, FullNAT port
//! pools, counters, clock, outbox and SYN proxy state ([`WorkerState`]),
//! and what the pipeline decides for a frame ([`Verdict`]). Nothing in here
//! is shared between workers; the control thread only ever publishes new
//! snapshots, which a worker adopts between bursts.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::conn;
use crate::conntrack::ConnTable;
use crate::outbox::Outbox;
use crate::probe::Prober;
use crate::proxy_protocol::ProxyState;
use crate::sched::Scheduler;
use crate::snapshot::{Snapshot, VipInfo};
use crate::stats::{DropReason, Event, WorkerStats};
use crate::synproxy::bucket::TokenBucket;
use crate::synproxy::{self, SynproxyState};
use crate::xmit::lport::LocalPorts;

/// Largest burst [`crate::datapath::process_burst`] takes at once.
pub const MAX_BURST: usize = 64;

/// What to do with the frame after [`crate::datapath::process`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Rewritten for its next hop: transmit.
    Forward,
    /// Turned into an answer (ARP reply, neighbor advertisement, SYN
    /// cookie, SYN proxy ACK): transmit.
    Reply,
    /// Taken over by the datapath (a SYN proxy ACK or a held packet); what
    /// it leads to goes out through the worker's [`Outbox`]. Not a drop.
    Consumed,
    /// For another worker (the number): a fragment whose datagram's
    /// connection that worker owns ([`crate::frag`]). The I/O backend
    /// passes the frame on; counted as consumed here.
    Handover(u16),
    /// For the node's own stack: passed to the kernel interface of the port
    /// it came in on (`[[port]] kernel_interface`). Counted as consumed.
    Kernel,
    Drop(DropReason),
}

/// Entries the aging sweep visits per call of [`WorkerState::age`]. The poll
/// loop calls it on every poll, empty ones included, so a busy worker pays a
/// few ns per packet for it and an idle one sweeps a 1M table in well under
/// a second.
pub const AGING_BUDGET: u32 = 64;

/// Everything one worker owns. Nothing in here is shared.
pub struct WorkerState {
    pub id: u16,
    pub workers: u16,
    pub conns: ConnTable,
    /// One scheduler per VIP (least-connections counts are per worker).
    pub scheds: Vec<Scheduler>,
    pub lports: LocalPorts,
    pub stats: WorkerStats,
    /// Seconds on the worker clock (pcap timestamps in replay).
    pub(crate) now: u32,
    /// The same clock in nanoseconds (rate limits, TCP timestamps).
    pub(crate) now_ns: u64,
    /// Frames this worker originates; the worker sends and clears it after
    /// every burst.
    pub outbox: Outbox,
    /// SYN proxy state, when a VIP uses it.
    pub synproxy: Option<Box<SynproxyState>>,
    /// PROXY header state, when a VIP sends the header.
    pub proxy: Option<Box<ProxyState>>,
    /// Set by a handler that made the frame shorter (the new length).
    pub(crate) trim: Option<usize>,
    /// Until this second, replies without an entry may be flows that went
    /// stateless because the table was full (see [`stateless_reply`]).
    pub(crate) overflow_until: Option<u32>,
    /// Set by a transform that encapsulates: the outer headers to put in
    /// front of the frame's IP packet once the handler returns.
    pub(crate) front: crate::xmit::Front,
    /// Health-check probes this worker sends and the answers it recognizes.
    pub prober: Prober,
    /// IP datagrams in flight, and fragments held for their first.
    pub frags: crate::frag::FragTable,
    /// Echo replies this worker may still send (`[icmp] echo_rate`).
    pub(crate) echo: TokenBucket,
    echo_limit: (u32, u32),
    /// Frames this worker may still pass to the kernel (`dpdk.kernel_rate`).
    pub(crate) kernel: TokenBucket,
    kernel_limit: (u32, u32),
    /// The snapshot generation this state was last fitted to.
    generation: u64,
    /// Backend numbers behind each scheduler, as of `generation`.
    sched_ids: Vec<Vec<crate::ids::BackendId>>,
    seed: u64,
}

/// The kernel path's (rate, burst), (0, 0) without one.
fn kernel_limit(snap: &Snapshot) -> (u32, u32) {
    snap.kernel.unwrap_or((0, 0))
}

impl WorkerState {
    /// State for worker `id` of `workers`; `seed` keys the connection hash.
    pub fn new(snap: &Snapshot, id: u16, workers: u16, seed: u64) -> WorkerState {
        let synproxy = snap
            .has_synproxy()
            .then(|| Box::new(synproxy::path::new_state(snap, snap.conn_capacity, seed)));
        let proxy = snap
            .has_proxy_protocol()
            .then(|| Box::new(ProxyState::new(snap.conn_capacity)));
        WorkerState {
            id,
            workers,
            conns: ConnTable::new(snap.conn_capacity, seed),
            scheds: snap.vips.iter().map(scheduler_of).collect(),
            lports: LocalPorts::new(snap.local_addrs.len(), id, workers),
            stats: WorkerStats::new(snap.vips.len(), snap.backends.len()),
            now: 0,
            now_ns: 0,
            outbox: Outbox::new(outbox_frames(snap, synproxy.is_some(), proxy.is_some())),
            synproxy,
            proxy,
            trim: None,
            overflow_until: None,
            front: crate::xmit::Front::EMPTY,
            prober: Prober::new(),
            frags: crate::frag::FragTable::new(&snap.fragments, seed),
            echo: TokenBucket::new(snap.icmp.echo_rate, snap.icmp.echo_burst),
            echo_limit: (snap.icmp.echo_rate, snap.icmp.echo_burst),
            kernel: TokenBucket::new(kernel_limit(snap).0, kernel_limit(snap).1),
            kernel_limit: kernel_limit(snap),
            generation: snap.generation,
            sched_ids: snap.vips.iter().map(|v| v.backends.clone()).collect(),
            seed,
        }
    }

    /// Fits this worker's own state to a snapshot the control thread
    /// published after the one it last saw. Called before every burst; one
    /// compare when nothing changed.
    #[inline]
    pub fn adopt(&mut self, snap: &Snapshot) {
        if snap.generation != self.generation {
            self.adopt_new(snap);
        }
    }

    /// Schedulers of changed VIPs are rebuilt, taking over the
    /// least-connection counts of the backends they keep; new VIPs,
    /// backends and local addresses get their counters and port pools; the
    /// SYN proxy state is set up when a VIP first needs it. Connections are
    /// untouched: VIP and backend numbers are stable across snapshots.
    #[cold]
    fn adopt_new(&mut self, snap: &Snapshot) {
        let old = std::mem::take(&mut self.scheds);
        let old_ids = std::mem::take(&mut self.sched_ids);
        for (i, v) in snap.vips.iter().enumerate() {
            let prev = old.get(i).zip(old_ids.get(i));
            let s = match prev {
                Some((s, ids))
                    if s.kind() == v.sched
                        && *ids == v.backends
                        && s.weights() == v.weights
                        && s.has_pools(v.pool_members()) =>
                {
                    s.clone()
                }
                _ => {
                    let mut s = scheduler_of(v);
                    if let Some((p, ids)) = prev {
                        for (j, b) in v.backends.iter().enumerate() {
                            if let Some(k) = ids.iter().position(|x| x == b) {
                                s.set_active(j as u32, p.active(k as u32));
                            }
                        }
                    }
                    s
                }
            };
            self.scheds.push(s);
            self.sched_ids.push(v.backends.clone());
        }
        self.stats.vips.resize(
            snap.vips.len().max(self.stats.vips.len()),
            Default::default(),
        );
        self.stats.backends.resize(
            snap.backends.len().max(self.stats.backends.len()),
            Default::default(),
        );
        self.lports.grow(snap.local_addrs.len());
        let limit = (snap.icmp.echo_rate, snap.icmp.echo_burst);
        if limit != self.echo_limit {
            self.echo = TokenBucket::new(limit.0, limit.1);
            self.echo_limit = limit;
        }
        if *self.frags.config() != snap.fragments {
            // What is held now goes; the new bounds apply from here.
            let old = std::mem::replace(
                &mut self.frags,
                crate::frag::FragTable::new(&snap.fragments, self.seed),
            );
            self.stats
                .held_dropped(DropReason::FragmentTimeout, old.held() as u64);
        }
        if kernel_limit(snap) != self.kernel_limit {
            self.kernel_limit = kernel_limit(snap);
            self.kernel = TokenBucket::new(self.kernel_limit.0, self.kernel_limit.1);
        }
        if snap.has_synproxy() && self.synproxy.is_none() {
            let mut sp = synproxy::path::new_state(snap, self.conns.capacity(), self.seed);
            sp.secrets.set_clock(self.now);
            self.synproxy = Some(Box::new(sp));
        }
        if snap.has_proxy_protocol() && self.proxy.is_none() {
            self.proxy = Some(Box::new(ProxyState::new(self.conns.capacity())));
        }
        let frames = outbox_frames(snap, self.synproxy.is_some(), self.proxy.is_some());
        if frames > self.outbox.capacity() {
            self.outbox = Outbox::new(frames);
        }
        self.generation = snap.generation;
    }

    /// Advances the worker clock (seconds; wraps).
    #[inline]
    pub fn set_clock(&mut self, now_secs: u32) {
        self.set_clock_ns(u64::from(now_secs) * 1_000_000_000);
    }

    /// Advances the worker clock with nanosecond resolution.
    #[inline]
    pub fn set_clock_ns(&mut self, now_ns: u64) {
        self.now_ns = now_ns;
        let now = (now_ns / 1_000_000_000) as u32;
        if now != self.now {
            self.conns.clock_moved();
        }
        self.now = now;
        if let Some(sp) = self.synproxy.as_mut() {
            sp.secrets.set_clock(self.now);
        }
    }

    #[inline]
    pub fn clock(&self) -> u32 {
        self.now
    }

    #[inline]
    pub fn clock_ns(&self) -> u64 {
        self.now_ns
    }

    /// One bounded step of connection aging; call once per burst.
    pub fn age(&mut self, snap: &Snapshot) -> u32 {
        self.age_with_budget(snap, AGING_BUDGET)
    }

    /// Aging with an explicit budget (tests and shutdown sweeps). Also
    /// resends SYNs to backends that have not answered yet.
    pub fn age_with_budget(&mut self, snap: &Snapshot, budget: u32) -> u32 {
        if self.synproxy.is_some() {
            synproxy::path::retry_pending(self, snap);
        }
        self.frags
            .age(self.now_ns, budget as usize, &mut self.stats);
        let WorkerState {
            conns,
            scheds,
            lports,
            stats,
            now,
            synproxy,
            ..
        } = self;
        // Once a whole pass ran in this second, every entry the clock can
        // have expired is gone: the datapath sets expiries at least a
        // second ahead, so until the clock moves no step finds any, and the
        // cursor only moves on as the visits would have moved it.
        if conns.swept(*now) && snap.timeouts.shortest() > 0 {
            conns.skip_visits(budget);
            return 0;
        }
        let n = conns.expire(*now, budget, |idx, e| {
            conn::release(idx, e, snap, scheds, lports, synproxy.as_deref_mut(), stats)
        });
        stats.event_n(Event::ConnExpired, n as u64);
        n
    }
}

/// A new scheduler for VIP `v`, with its source pools.
fn scheduler_of(v: &VipInfo) -> Scheduler {
    Scheduler::new(v.sched, &v.weights).with_pools(v.pool_members())
}

/// Outbox room kept for frames the timers originate (SYN resends, resets,
/// health-check probes).
const OUTBOX_TIMERS: usize = 64;

/// Outbox frames per burst: per burst frame, with the SYN proxy a backend
/// SYN or the header and the held packets it releases; with PROXY headers
/// a header and the client segment that follows it; always the timers'
/// room and one datagram's worth of held fragments.
fn outbox_frames(snap: &Snapshot, synproxy: bool, proxy: bool) -> usize {
    let base = OUTBOX_TIMERS + crate::frag::MAX_FRAGS;
    let held = if synproxy {
        snap.synproxy.hold_packets as usize
    } else {
        0
    };
    let per_frame = match (synproxy, proxy) {
        (false, false) => 0,
        (true, false) => 1 + held,
        (_, true) => 1 + held.max(1),
    };
    MAX_BURST * per_frame + base
}
