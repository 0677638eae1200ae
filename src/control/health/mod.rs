//! Health checks, control side: when each backend is probed, and what the
//! answers do to its health.
//!
//! **Where a probe comes from.** A probe is a TCP SYN from one of the
//! node's own addresses (`node.addresses`, the one of the backend's
//! family) and a source port in the probe range
//! ([`PROBE_PORT_MIN`]`..=`[`PROBE_PORT_MAX`](crate::probe::PROBE_PORT_MAX))
//! to the backend's address and port. The [`Checker`] decides when, and hands each
//! [`ProbeOrder`] to the worker that software steering will give the
//! answer to ([`steer::client_owner`] of the node address and source
//! port); that worker writes the SYN into its outbox and matches the
//! SYN-ACK or RST that comes back ([`crate::probe`]), resetting the
//! half-open connection on a SYN-ACK, and reports a [`ProbeResult`].
//!
//! **Why in-band.** The probe leaves through the same NIC port, with the
//! same source MAC and to the same next hop as the traffic rampart
//! forwards to that backend, so "up" means reachable the way clients'
//! packets reach it. A probe from the host's own network stack would test
//! the host's routes, interfaces and neighbour cache instead: it could
//! call a backend healthy that the datapath cannot reach (a stale next-hop
//! MAC, a backend whose replies only route back through the datapath's
//! port) or down when only the management network failed.
//!
//! **Rise and fall.** A probe succeeds on a SYN-ACK and fails on a RST
//! ("connection refused") or on no answer within `timeout_ms` ("timeout").
//! An `Up` backend goes `Down` after `fall` consecutive failures; a `Down`
//! backend comes `Up` after `rise` consecutive successes. A success resets
//! the run of failures and a failure the run of successes, so a backend
//! that alternates between the two never reaches `rise` or `fall` of 2 or
//! more and keeps the state it had. A `rise` or `fall` of 0 acts as 1. A
//! new backend starts `Up`: adding one does not hold back its traffic for
//! `rise` intervals, and a dead one is taken out after `fall` probes.
//!
//! **Schedule.** A backend's first probe is due when it becomes a target
//! (issued at the next [`Checker::poll`]); each later one `interval_ms`
//! after the previous one was issued. A backend has at most one probe
//! outstanding: a due probe waits until the previous one was answered or
//! timed out. Source ports cycle through the probe range, skipping ports
//! with a probe outstanding (a worker keeps one probe per port, and a
//! newer one would take the older one's place), so at most
//! [`PROBE_PORTS`] probes are outstanding at once; beyond that due probes
//! wait for a free port. An answer to a probe that already timed out, or
//! whose backend stopped being a target or changed, is ignored.
//!
//! **Reproducibility.** The checker reads no clock and draws no random
//! numbers: time comes in as `now_ns`, and the initial sequence numbers
//! are SipHash-1-3 under a caller-provided key of the probe id, the
//! backend and the source port (keyed like RFC 6528 §3's, so nobody
//! without the key can guess them), so a replay with a fixed key and
//! clock emits the same probes byte for byte.

use std::collections::BTreeMap;

use siphasher::sip::SipHasher13;

use crate::flow::{Addr, Mac};
use crate::ids::BackendId;
use crate::io::steer;
use crate::maglev::BackendKey;
use crate::probe::{ProbeOrder, ProbeOutcome, ProbeResult, PROBE_PORTS, PROBE_PORT_MIN};

const NS_PER_MS: u64 = 1_000_000;

/// How one backend is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeParams {
    /// Time from one probe to the next.
    pub interval_ms: u32,
    /// How long a probe waits for an answer before it counts as failed.
    pub timeout_ms: u32,
    /// Consecutive successes that bring a `Down` backend `Up`.
    pub rise: u32,
    /// Consecutive failures that take an `Up` backend `Down`.
    pub fall: u32,
}

/// One backend to check (by backend registry number `backend`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub backend: BackendId,
    pub key: BackendKey,
    pub params: ProbeParams,
    /// The node address the probe comes from, of the backend's family.
    pub src: Addr,
    /// The next hop towards the backend.
    pub mac: Mac,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Up,
    Down,
}

/// A backend changing health.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub backend: BackendId,
    pub key: BackendKey,
    /// The new health: true for `Up`.
    pub up: bool,
    /// Why, e.g. "3 consecutive probes failed (last: timeout after 1000 ms)"
    /// or "2 consecutive probes succeeded (SYN-ACK)".
    pub reason: String,
}

/// What a probe's answer was, for counting and for the reason text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    SynAck,
    Refused,
    Timeout { after_ms: u32 },
}

impl Answer {
    fn ok(self) -> bool {
        self == Answer::SynAck
    }

    fn describe(self) -> String {
        match self {
            Answer::SynAck => "SYN-ACK".to_string(),
            Answer::Refused => "connection refused (RST)".to_string(),
            Answer::Timeout { after_ms } => format!("timeout after {after_ms} ms"),
        }
    }
}

/// A checked backend.
#[derive(Clone, Debug)]
struct Entry {
    target: Target,
    health: Health,
    /// Consecutive successes (0 after any failure).
    oks: u32,
    /// Consecutive failures (0 after any success).
    fails: u32,
    next_due_ns: u64,
    /// Id of the outstanding probe.
    pending: Option<u32>,
}

impl Entry {
    fn new(target: Target, now_ns: u64) -> Entry {
        Entry {
            target,
            health: Health::Up,
            oks: 0,
            fails: 0,
            next_due_ns: now_ns,
            pending: None,
        }
    }

    /// Counts one answer; returns the transition it caused.
    fn count(&mut self, a: Answer) -> Option<Transition> {
        let p = &self.target.params;
        let (run, to, needed, verb) = if a.ok() {
            self.fails = 0;
            self.oks = self.oks.saturating_add(1);
            (self.oks, Health::Up, p.rise.max(1), "succeeded")
        } else {
            self.oks = 0;
            self.fails = self.fails.saturating_add(1);
            (self.fails, Health::Down, p.fall.max(1), "failed")
        };
        if self.health == to || run < needed {
            return None;
        }
        self.health = to;
        // Every success is a SYN-ACK; failures differ, so name the last.
        let reason = match (run, a.ok()) {
            (1, _) => format!("probe {verb} ({})", a.describe()),
            (_, true) => format!("{run} consecutive probes {verb} ({})", a.describe()),
            (_, false) => format!("{run} consecutive probes {verb} (last: {})", a.describe()),
        };
        Some(Transition {
            backend: self.target.backend,
            key: self.target.key,
            up: to == Health::Up,
            reason,
        })
    }
}

/// A probe on the wire.
#[derive(Clone, Copy, Debug)]
struct Pending {
    backend: BackendId,
    /// Index in the probe port range.
    port: usize,
    deadline_ns: u64,
    timeout_ms: u32,
}

/// The health-check state machine of the control thread.
pub struct Checker {
    workers: u16,
    key: [u8; 16],
    /// By backend registry number, so orders come out in a stable order.
    entries: BTreeMap<BackendId, Entry>,
    /// Probes issued and neither answered nor timed out, by id.
    outstanding: BTreeMap<u32, Pending>,
    /// Which probe ports have a probe outstanding.
    busy: Vec<bool>,
    /// Where the search for a free port starts.
    next_port: usize,
    next_id: u32,
    /// Since when the probes are held (see [`Checker::hold`]).
    held_since: Option<u64>,
}

impl Checker {
    /// A checker for `workers` workers (to steer orders to); `key` keys the
    /// probes' initial sequence numbers.
    pub fn new(workers: u16, key: [u8; 16]) -> Checker {
        Checker {
            workers,
            key,
            entries: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            busy: vec![false; PROBE_PORTS],
            next_port: 0,
            next_id: 1,
            held_since: None,
        }
    }

    /// Holds the probes while rampart itself cannot see an answer (a worker
    /// that stopped polling, a control thread that did not run): no probe
    /// times out and none is sent while held, and on release every
    /// outstanding probe's deadline moves by the time held. A stall of the
    /// load balancer is not a backend failure.
    pub fn hold(&mut self, held: bool, now_ns: u64) {
        match (held, self.held_since) {
            (true, None) => self.held_since = Some(now_ns),
            (false, Some(since)) => {
                self.postpone(now_ns.saturating_sub(since));
                self.held_since = None;
            }
            _ => {}
        }
    }

    /// Moves every outstanding probe's deadline `by_ns` later.
    pub fn postpone(&mut self, by_ns: u64) {
        for p in self.outstanding.values_mut() {
            p.deadline_ns = p.deadline_ns.saturating_add(by_ns);
        }
    }

    /// Replaces the set of targets. A backend whose target is unchanged
    /// (same key, params and src) keeps its health, counters and schedule
    /// (a new next-hop MAC is taken over); a new or changed one starts `Up`
    /// with its first probe due now; removed ones are forgotten, and
    /// answers to their outstanding probes are ignored.
    pub fn set_targets(&mut self, targets: Vec<Target>, now_ns: u64) {
        let mut old = std::mem::take(&mut self.entries);
        for t in targets {
            let kept = old.remove(&t.backend).filter(|e| {
                e.target.key == t.key && e.target.params == t.params && e.target.src == t.src
            });
            let e = match kept {
                Some(mut e) => {
                    e.target = t;
                    e
                }
                None => Entry::new(t, now_ns),
            };
            self.entries.insert(e.target.backend, e);
        }
    }

    /// Times out outstanding probes older than their `timeout_ms` (each a
    /// failure), then appends to `orders` every probe that is due, each
    /// with the worker that will receive its answer. Returns the
    /// transitions the timeouts caused.
    pub fn poll(&mut self, now_ns: u64, orders: &mut Vec<(u16, ProbeOrder)>) -> Vec<Transition> {
        if self.held_since.is_some() {
            return Vec::new();
        }
        let expired: Vec<u32> = self
            .outstanding
            .iter()
            .filter(|(_, p)| now_ns >= p.deadline_ns)
            .map(|(id, _)| *id)
            .collect();
        let transitions = expired
            .into_iter()
            .filter_map(|id| self.settle(id, None, now_ns))
            .collect();

        for (backend, e) in self.entries.iter_mut() {
            if e.pending.is_some() || now_ns < e.next_due_ns {
                continue;
            }
            let Some(port) = take_port(&mut self.busy, &mut self.next_port) else {
                break;
            };
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1).max(1);
            let t = &e.target;
            let sport = PROBE_PORT_MIN + port as u16;
            let order = ProbeOrder {
                id,
                src: t.src,
                sport,
                dst: t.key.addr,
                dport: t.key.port,
                dst_mac: t.mac,
                isn: isn(&self.key, id, &t.key, sport),
            };
            orders.push((steer::client_owner(&t.src, sport, self.workers), order));
            let timeout_ms = t.params.timeout_ms;
            self.outstanding.insert(
                id,
                Pending {
                    backend: *backend,
                    port,
                    deadline_ns: now_ns.saturating_add(u64::from(timeout_ms) * NS_PER_MS),
                    timeout_ms,
                },
            );
            e.pending = Some(id);
            e.next_due_ns = now_ns.saturating_add(u64::from(t.params.interval_ms) * NS_PER_MS);
        }
        transitions
    }

    /// A worker's result: `Open` is a success, `Refused` a failure. Unknown
    /// or stale ids (timed out, backend removed or changed) are ignored; an
    /// answer that arrives at or after its probe's deadline, before
    /// [`Checker::poll`] noticed, counts as the timeout it is. Returns the
    /// transition it caused, if any.
    pub fn result(&mut self, r: ProbeResult, now_ns: u64) -> Option<Transition> {
        let answer = match r.outcome {
            ProbeOutcome::Open => Answer::SynAck,
            ProbeOutcome::Refused => Answer::Refused,
        };
        self.settle(r.id, Some(answer), now_ns)
    }

    /// Current health of a backend under check (`None` if not a target).
    pub fn health(&self, backend: BackendId) -> Option<Health> {
        self.entries.get(&backend).map(|e| e.health)
    }

    /// Probes issued and neither answered nor timed out.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Ends the probe `id` with `answer` (`None`: no answer), freeing its
    /// port, and counts it for its backend if it is still that backend's
    /// probe.
    fn settle(&mut self, id: u32, answer: Option<Answer>, now_ns: u64) -> Option<Transition> {
        let p = self.outstanding.remove(&id)?;
        if let Some(b) = self.busy.get_mut(p.port) {
            *b = false;
        }
        let e = self
            .entries
            .get_mut(&p.backend)
            .filter(|e| e.pending == Some(id))?;
        e.pending = None;
        let a = match answer {
            Some(a) if now_ns < p.deadline_ns => a,
            _ => Answer::Timeout {
                after_ms: p.timeout_ms,
            },
        };
        e.count(a)
    }
}

/// Claims the first free probe port at or after `next` (wrapping), as an
/// index in the range, and moves `next` past it.
fn take_port(busy: &mut [bool], next: &mut usize) -> Option<usize> {
    let n = busy.len();
    for step in 0..n {
        let i = (*next + step) % n;
        if let Some(b) = busy.get_mut(i).filter(|b| !**b) {
            *b = true;
            *next = (i + 1) % n;
            return Some(i);
        }
    }
    None
}

/// The initial sequence number of probe `id` to `backend` from `sport`:
/// SipHash-1-3 under `key` of the id, the backend address and port and the
/// source port (little-endian), truncated to 32 bits.
fn isn(key: &[u8; 16], id: u32, backend: &BackendKey, sport: u16) -> u32 {
    let mut m = [0u8; 24];
    m[..4].copy_from_slice(&id.to_le_bytes());
    m[4..20].copy_from_slice(&backend.addr.0);
    m[20..22].copy_from_slice(&backend.port.to_le_bytes());
    m[22..24].copy_from_slice(&sport.to_le_bytes());
    SipHasher13::new_with_key(key).hash(&m) as u32
}

#[cfg(test)]
mod tests;
