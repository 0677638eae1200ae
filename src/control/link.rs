//! What passes between the control thread and the workers, none of it on a
//! lock the datapath waits for:
//!
//! - the snapshot, through an [`ArcSwap`] the worker loads once per burst;
//! - orders (health-check probes, connection listings), through one
//!   unbounded channel per worker that the worker drains between bursts;
//! - probe results, through one channel back;
//! - counters: every [`PUBLISH_POLLS`] polls (and on every idle poll, at
//!   most as often) a worker copies its counters into its own slot with
//!   `try_lock`, so a control thread reading the slot never stalls it: the
//!   worker skips that round instead.

use std::sync::{Arc, Mutex};

use crossbeam::channel::{self, Receiver, Sender, TryRecvError};

use crate::conntrack::ConnState;
use crate::datapath::WorkerState;
use crate::flow::Addr;
use crate::ids::{BackendId, VipId};
use crate::io::IoCounters;
use crate::probe::{ProbeOrder, ProbeResult};
use crate::stats::WorkerStats;

/// Polls between two counter publications of a busy worker.
pub const PUBLISH_POLLS: u32 = 256;
/// Polls between two publications of an idle worker.
pub const IDLE_PUBLISH_POLLS: u32 = 16;

pub use crate::snapshot::SnapshotStore;

/// An order for a worker.
pub enum ToWorker {
    Probe(ProbeOrder),
    /// List up to `limit` connections (of VIP `vip`, or all).
    Conns {
        vip: Option<VipId>,
        limit: u32,
        reply: Sender<ConnsChunk>,
    },
}

/// One connection as a worker reports it; the control thread names things.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnRow {
    pub vip: VipId,
    pub proto: u8,
    pub client: (Addr, u16),
    pub backend: BackendId,
    /// FullNAT: local address number and port.
    pub local: Option<(u8, u16)>,
    pub state: ConnState,
    /// Seconds until the entry expires on the worker's clock.
    pub expires_in: u32,
}

/// A worker's answer to [`ToWorker::Conns`].
#[derive(Clone, Debug, Default)]
pub struct ConnsChunk {
    pub worker: u16,
    /// Live connections that matched.
    pub total: u64,
    pub rows: Vec<ConnRow>,
}

/// Counters a worker published.
#[derive(Clone, Debug)]
pub struct Published {
    pub stats: WorkerStats,
    pub active: u32,
    pub io: IoCounters,
}

impl Default for Published {
    fn default() -> Published {
        Published {
            stats: WorkerStats::new(0, 0),
            active: 0,
            io: IoCounters::default(),
        }
    }
}

/// The worker's end.
pub struct WorkerLink {
    id: u16,
    orders: Receiver<ToWorker>,
    results: Sender<(u16, ProbeResult)>,
    slot: Arc<Mutex<Published>>,
    scratch: Vec<ProbeResult>,
    polls: u32,
    /// The I/O backend's counters (DPDK runtime), as the worker loop last
    /// read them.
    pub io: IoCounters,
}

/// The control thread's end.
pub struct ControlLink {
    orders: Vec<Sender<ToWorker>>,
    results: Receiver<(u16, ProbeResult)>,
    slots: Vec<Arc<Mutex<Published>>>,
}

/// Links for `workers` workers.
pub fn links(workers: u16) -> (ControlLink, Vec<WorkerLink>) {
    let (rtx, rrx) = channel::unbounded();
    let mut orders = Vec::new();
    let mut slots = Vec::new();
    let mut ends = Vec::new();
    for id in 0..workers.max(1) {
        let (otx, orx) = channel::unbounded();
        let slot = Arc::new(Mutex::new(Published::default()));
        orders.push(otx);
        slots.push(Arc::clone(&slot));
        ends.push(WorkerLink {
            id,
            orders: orx,
            results: rtx.clone(),
            slot,
            scratch: Vec::new(),
            polls: 0,
            io: IoCounters::default(),
        });
    }
    (
        ControlLink {
            orders,
            results: rrx,
            slots,
        },
        ends,
    )
}

impl WorkerLink {
    /// Between two bursts: takes the orders waiting, hands back probe
    /// results, and publishes counters when it is time. `got` is what the
    /// last poll received.
    pub fn service(&mut self, ws: &mut WorkerState, got: usize) {
        loop {
            match self.orders.try_recv() {
                Ok(ToWorker::Probe(o)) => {
                    // A full queue drops the order; the probe times out and
                    // counts as a failure, which a flood of orders deserves.
                    let _ = ws.prober.queue(o);
                }
                Ok(ToWorker::Conns { vip, limit, reply }) => {
                    let _ = reply.send(self.conns(ws, vip, limit));
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        ws.prober.take_results(&mut self.scratch);
        for r in self.scratch.drain(..) {
            let _ = self.results.send((self.id, r));
        }
        self.polls += 1;
        let due = if got == 0 {
            IDLE_PUBLISH_POLLS
        } else {
            PUBLISH_POLLS
        };
        if self.polls >= due {
            self.publish(ws);
        }
    }

    /// Copies the counters into the slot now, unless the control thread is
    /// reading it.
    pub fn publish(&mut self, ws: &WorkerState) {
        if let Ok(mut p) = self.slot.try_lock() {
            self.fill(&mut p, ws);
            self.polls = 0;
        }
    }

    /// Copies the counters into the slot, waiting for the lock (a worker
    /// that stops).
    pub fn publish_final(&mut self, ws: &WorkerState) {
        let mut p = match self.slot.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        self.fill(&mut p, ws);
    }

    fn fill(&self, p: &mut Published, ws: &WorkerState) {
        p.stats.clone_from(&ws.stats);
        p.active = ws.conns.len();
        p.io = self.io;
    }

    fn conns(&self, ws: &WorkerState, vip: Option<VipId>, limit: u32) -> ConnsChunk {
        let now = ws.clock();
        let mut chunk = ConnsChunk {
            worker: self.id,
            ..ConnsChunk::default()
        };
        for (_, e) in ws.conns.iter() {
            if vip.is_some_and(|v| v != e.vip) || crate::conntrack::expired(e.expires, now) {
                continue;
            }
            chunk.total += 1;
            if chunk.rows.len() < limit as usize {
                chunk.rows.push(ConnRow {
                    vip: e.vip,
                    proto: e.proto,
                    client: (e.client, e.client_port),
                    backend: e.backend,
                    local: (e.flags & crate::conntrack::flags::HAS_LPORT != 0)
                        .then_some((e.laddr, e.lport)),
                    state: e.state(),
                    expires_in: e.expires.wrapping_sub(now),
                });
            }
        }
        chunk
    }
}

impl ControlLink {
    pub fn workers(&self) -> u16 {
        self.orders.len() as u16
    }

    /// Sends a probe order to worker `w`.
    pub fn probe(&self, w: u16, o: ProbeOrder) {
        if let Some(tx) = self.orders.get(usize::from(w)) {
            let _ = tx.send(ToWorker::Probe(o));
        }
    }

    /// Probe results the workers reported since the last call.
    pub fn results(&self) -> impl Iterator<Item = (u16, ProbeResult)> + '_ {
        self.results.try_iter()
    }

    /// Asks every worker for its connections and waits for their answers
    /// (each answers between two bursts) up to `wait`; returns what came.
    pub fn conns(
        &self,
        vip: Option<VipId>,
        limit: u32,
        wait: std::time::Duration,
    ) -> Vec<ConnsChunk> {
        let (tx, rx) = channel::unbounded();
        let mut asked = 0;
        for o in &self.orders {
            if o.send(ToWorker::Conns {
                vip,
                limit,
                reply: tx.clone(),
            })
            .is_ok()
            {
                asked += 1;
            }
        }
        drop(tx);
        let deadline = std::time::Instant::now() + wait;
        let mut out = Vec::with_capacity(asked);
        while out.len() < asked {
            match rx.recv_deadline(deadline) {
                Ok(c) => out.push(c),
                Err(_) => break,
            }
        }
        out.sort_by_key(|c| c.worker);
        out
    }

    /// Every worker's last published counters, in worker order.
    pub fn published(&self) -> Vec<Published> {
        self.slots
            .iter()
            .map(|s| match s.lock() {
                Ok(p) => p.clone(),
                Err(poisoned) => poisoned.into_inner().clone(),
            })
            .collect()
    }
}
