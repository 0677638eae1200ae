//! The worker runtime shared by `rampart run` and `rampart replay`: what a
//! worker is, how worker threads start, run and stop, what they publish,
//! and the control loop beside them. Generic over [`PacketIo`], so the DPDK
//! runtime is this module over [`crate::io::dpdk::DpdkIo`] plus the port and
//! EAL set-up, and everything else about it is tested without DPDK.
//!
//! - [`Worker`]: one worker's state, backend, control link and burst
//!   buffers. [`Worker::poll`] is one burst followed by servicing the link
//!   (probe orders in, probe results and counters out). `rampart replay`
//!   drives workers by hand (one, or several in lock step on the capture
//!   clock); the free-running runtime drives them from their own threads.
//! - [`Pool`]: free-running worker threads, each pinned to its CPU when
//!   given one, each running [`Worker::poll`] until told to stop or until a
//!   finite backend runs dry, and publishing its counters in [`Live`] for
//!   the control thread's rate lines and idle check.
//! - [`Pool::control_loop`]: the control thread's duty while workers run:
//!   SIGHUP reloads, health-check ticks, rate lines, and the stop
//!   conditions (a signal, a worker gone, idle input).
//! - [`WorkerEnd`] and [`Totals`]: what workers hand back and their sum, the
//!   numbers of the summary every command prints.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::utils::CachePadded;

use crate::control::bgp::HEARTBEAT;
use crate::control::link::{SnapshotStore, WorkerLink};
use crate::control::state::Shared;
use crate::io::PacketIo;
use crate::state::WorkerState;
use crate::stats::{Event, WorkerStats};
use crate::worker::{poll_up_to, Clock, BURST};

/// One worker: its state (connection table, SYN proxy, counters), its
/// packet backend and its end of the control link.
pub struct Worker<I: PacketIo> {
    pub ws: WorkerState,
    pub io: I,
    link: WorkerLink,
    bufs: Vec<I::Buf>,
}

impl<I: PacketIo> Worker<I> {
    /// Worker `id` of `workers`, its state built for the store's current
    /// snapshot. Call it on the thread (and so the CPU) that will run the
    /// worker: the connection table is allocated and faulted in here.
    pub fn new(
        store: &SnapshotStore,
        link: WorkerLink,
        id: u16,
        workers: u16,
        seed: u64,
        io: I,
    ) -> Worker<I> {
        Worker {
            ws: WorkerState::new(&store.load(), id, workers, seed),
            io,
            link,
            bufs: Vec::with_capacity(BURST),
        }
    }

    /// One burst of at most `max` packets on the store's current snapshot,
    /// then the link serviced. Returns the number of packets received.
    /// Never inlined: one call per burst, and profiles see the burst whole.
    #[inline(never)]
    pub fn poll(&mut self, store: &SnapshotStore, clock: &Clock, max: usize) -> io::Result<usize> {
        let snap = store.load();
        let n = poll_up_to(
            &mut self.io,
            &mut self.bufs,
            &mut self.ws,
            &snap,
            clock,
            max,
        )?;
        drop(snap);
        self.service(n);
        Ok(n)
    }

    /// Services the control link: takes probe orders and conns queries,
    /// publishes counters (`got` is the size of the last burst, which paces
    /// the publication).
    pub fn service(&mut self, got: usize) {
        self.link.io = self.io.counters();
        self.link.service(&mut self.ws, got);
    }

    /// Whether the backend is finite and has nothing more to give.
    pub fn exhausted(&self) -> bool {
        self.io.exhausted()
    }

    /// Publishes the final counters and hands back the worker's totals and
    /// its backend.
    pub fn finish(mut self) -> (WorkerEnd, I) {
        self.link.io = self.io.counters();
        self.link.publish_final(&self.ws);
        let end = WorkerEnd {
            active: self.ws.conns.len(),
            capacity: self.ws.conns.capacity(),
            bytes_per_entry: self.ws.conns.bytes_per_entry(),
            stats: self.ws.stats,
        };
        (end, self.io)
    }
}

/// What a worker hands back when it stops.
pub struct WorkerEnd {
    pub stats: WorkerStats,
    /// Connections still in its table.
    pub active: u32,
    pub capacity: u32,
    pub bytes_per_entry: usize,
}

/// The sum of the workers' ends.
pub struct Totals {
    pub stats: WorkerStats,
    pub active: u32,
    pub capacity: u32,
    pub bytes_per_entry: usize,
}

impl Totals {
    /// Sums `ends`, with counters sized for `vips` VIPs and `backends`
    /// backends (the snapshot in force at the end).
    pub fn of<'a>(
        ends: impl IntoIterator<Item = &'a WorkerEnd>,
        vips: usize,
        backends: usize,
    ) -> Totals {
        let mut t = Totals {
            stats: WorkerStats::new(vips, backends),
            active: 0,
            capacity: 0,
            bytes_per_entry: 0,
        };
        for e in ends {
            t.stats.merge(&e.stats);
            t.active += e.active;
            t.capacity += e.capacity;
            t.bytes_per_entry = e.bytes_per_entry;
        }
        t
    }
}

/// Counters a free-running worker publishes for the control thread, once
/// per non-empty burst.
#[derive(Default)]
pub struct Live {
    pub rx: AtomicU64,
    pub tx: AtomicU64,
    pub dropped: AtomicU64,
    /// Polls so far, stored after every poll: the heartbeat that says the
    /// worker is polling (VIPs are announced only while every worker is).
    pub polls: AtomicU64,
}

impl Live {
    fn publish(&self, ws: &WorkerState) {
        let s = &ws.stats;
        self.rx.store(s.rx_packets, Ordering::Relaxed);
        self.tx
            .store(s.tx_packets + s.originated_packets, Ordering::Relaxed);
        self.dropped.store(s.dropped_total(), Ordering::Relaxed);
    }
}

/// Why worker threads could not start, or signals could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot handle signal {signal}: {source}")]
    Signal { signal: i32, source: std::io::Error },
    #[error("cannot start worker {worker}: {source}")]
    Spawn { worker: u16, source: std::io::Error },
    #[error("worker {worker}: cannot pin to CPU {cpu} (hint: dpdk.lcores must name CPUs this process may use)")]
    Pin { worker: u16, cpu: usize },
    /// The backend's own per-thread set-up (DPDK: the lcore registration)
    /// refused, with its message.
    #[error("{0}")]
    Enter(String),
    /// A worker's thread ended before saying it was ready (which one is
    /// not known: the answers come in any order).
    #[error("a worker exited during start-up")]
    Gone,
    /// A worker's thread failed while running (its message is on stderr).
    #[error("worker {0} failed (see the message above)")]
    Failed(usize),
}

/// One free-running worker to start.
pub struct WorkerSpec<I> {
    pub io: I,
    pub link: WorkerLink,
    /// The CPU to pin the thread to, if any.
    pub cpu: Option<usize>,
    pub seed: u64,
    pub clock: Clock,
    /// Sleep when idle; `None`: poll without pause.
    pub idle: Option<IdleSleep>,
}

/// How a free-running worker rests when there is no traffic: after `polls`
/// empty polls in a row it sleeps `sleep` after each further empty poll,
/// and polls without pause again from the first packet. A live port's
/// packets wait in the NIC's ring meanwhile, so a sleep costs latency (at
/// most about `sleep` plus the kernel's timer slack) but loses nothing the
/// ring can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleSleep {
    pub polls: u32,
    pub sleep: Duration,
}

impl IdleSleep {
    /// From `dpdk.idle_sleep_us` and `dpdk.idle_polls`; `None` for 0 µs.
    pub fn from_config(sleep_us: u32, polls: u32) -> Option<IdleSleep> {
        (sleep_us > 0).then(|| IdleSleep {
            polls: polls.max(1),
            sleep: Duration::from_micros(u64::from(sleep_us)),
        })
    }
}

/// SIGINT, SIGTERM and SIGHUP, as flags the control loop polls.
pub struct Signals {
    /// SIGINT: stop now.
    pub stop: Arc<AtomicBool>,
    /// SIGTERM: withdraw the announcements, forward for the drain time,
    /// stop.
    pub term: Arc<AtomicBool>,
    pub hup: Arc<AtomicBool>,
}

impl Signals {
    /// Registers the handlers. Do it before start-up work: a signal during
    /// start-up then stops the run as soon as the workers are up, instead
    /// of killing the process mid-setup.
    pub fn register() -> Result<Signals, RuntimeError> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let signals = Signals::none();
        for (signal, flag) in [
            (SIGINT, &signals.stop),
            (SIGTERM, &signals.term),
            (SIGHUP, &signals.hup),
        ] {
            signal_hook::flag::register(signal, Arc::clone(flag))
                .map_err(|source| RuntimeError::Signal { signal, source })?;
        }
        Ok(signals)
    }

    /// Flags no signal sets: for a runtime driven by its caller (tests).
    pub fn none() -> Signals {
        Signals {
            stop: Arc::new(AtomicBool::new(false)),
            term: Arc::new(AtomicBool::new(false)),
            hup: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// When the control loop stops the run, and how often it says the rates.
pub struct LoopPolicy {
    /// Stop when rx has not moved for this long (zero: never).
    pub idle_exit: Duration,
    /// A rate line this often (zero: never).
    pub stats_interval: Duration,
    /// After SIGTERM, when there were announcements to withdraw: keep
    /// forwarding this long before stopping (`[bgp] drain_seconds`).
    pub drain: Duration,
    /// A worker whose heartbeat stood still at least this long is logged
    /// (a warning naming the worker and how long) when it moves again.
    pub stall_log: Duration,
}

/// Why a run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    Signal,
    /// A worker's thread ended by itself: a failure, or its finite input
    /// ran dry.
    WorkerExit,
    /// rx did not move for the idle time.
    Idle,
    StartupFailure,
}

impl Stopped {
    pub fn name(self) -> &'static str {
        match self {
            Stopped::Signal => "signal",
            Stopped::WorkerExit => "worker exit",
            Stopped::Idle => "idle",
            Stopped::StartupFailure => "start-up failure",
        }
    }
}

/// The control thread's sleep between two looks at the workers.
const CONTROL_TICK: Duration = Duration::from_millis(5);

type Outcome<R> = Option<(WorkerEnd, R)>;

/// Free-running worker threads.
pub struct Pool<R> {
    handles: Vec<JoinHandle<Outcome<R>>>,
    stop: Arc<AtomicBool>,
    live: Arc<Vec<CachePadded<Live>>>,
}

impl<R: Send + 'static> Pool<R> {
    /// Starts one thread per spec and waits until each has built its state.
    ///
    /// On its thread a worker is pinned (when its spec names a CPU), calls
    /// `enter` (DPDK registers the thread as an EAL lcore there) and keeps
    /// what it returns until the backend is gone, builds its state, and
    /// polls until [`Pool::join`] or until a finite backend runs dry. When
    /// it stops it flushes, publishes its final counters, and hands back
    /// its [`WorkerEnd`] with `exit`'s account of the backend.
    ///
    /// The first start-up failure stops the workers already started and is
    /// returned.
    pub fn start<I, G>(
        store: &SnapshotStore,
        specs: Vec<WorkerSpec<I>>,
        enter: impl Fn(u16) -> Result<G, String> + Send + Sync + 'static,
        exit: impl Fn(&I) -> R + Send + Sync + 'static,
    ) -> Result<Pool<R>, RuntimeError>
    where
        I: PacketIo + Send + 'static,
    {
        let workers = specs.len();
        let stop = Arc::new(AtomicBool::new(false));
        let live: Arc<Vec<CachePadded<Live>>> = Arc::new(
            (0..workers)
                .map(|_| CachePadded::new(Live::default()))
                .collect(),
        );
        let enter = Arc::new(enter);
        let exit = Arc::new(exit);
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), RuntimeError>>();
        let mut pool = Pool {
            handles: Vec::with_capacity(workers),
            stop,
            live,
        };
        for (w, spec) in specs.into_iter().enumerate() {
            let ctx = ThreadCtx {
                id: w as u16,
                workers: workers as u16,
                store: Arc::clone(store),
                stop: Arc::clone(&pool.stop),
                live: Arc::clone(&pool.live),
                ready: ready_tx.clone(),
            };
            let enter = Arc::clone(&enter);
            let exit = Arc::clone(&exit);
            let spawned = std::thread::Builder::new()
                .name(format!("rampart-w{w}"))
                .spawn(move || worker_thread(ctx, spec, &*enter, &*exit));
            match spawned {
                Ok(h) => pool.handles.push(h),
                // Dropping the pool stops and joins the workers started.
                Err(source) => {
                    return Err(RuntimeError::Spawn {
                        worker: w as u16,
                        source,
                    });
                }
            }
        }
        drop(ready_tx);
        for _ in 0..pool.handles.len() {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(RuntimeError::Gone),
            }
        }
        Ok(pool)
    }

    /// The workers' published counters, summed: (rx, tx, dropped).
    pub fn totals(&self) -> (u64, u64, u64) {
        self.live.iter().fold((0, 0, 0), |acc, l| {
            (
                acc.0 + l.rx.load(Ordering::Relaxed),
                acc.1 + l.tx.load(Ordering::Relaxed),
                acc.2 + l.dropped.load(Ordering::Relaxed),
            )
        })
    }

    /// The control thread's loop while the workers run: takes SIGHUP as a
    /// reload, ticks the control side (health checks) on `clock`, logs a
    /// rate line every `policy.stats_interval`, and returns when a stop
    /// condition holds, with when rx last moved.
    pub fn control_loop(
        &self,
        control: &Shared,
        signals: &Signals,
        policy: &LoopPolicy,
    ) -> (Stopped, Instant) {
        let clock = Instant::now();
        let mut last = self.totals();
        let mut last_change = Instant::now();
        let mut last_line = (Instant::now(), last);
        let mut beats = Heartbeats::new(self.live.len(), policy.stall_log);
        let mut draining_until: Option<Instant> = None;
        let mut last_tick = Instant::now();
        loop {
            std::thread::sleep(CONTROL_TICK);
            // How much later than its tick plus the stall allowance the
            // control thread runs: time in which no answer was read.
            let gap = last_tick.elapsed();
            last_tick = Instant::now();
            let late = if policy.stall_log.is_zero() {
                Duration::ZERO
            } else {
                gap.saturating_sub(CONTROL_TICK + policy.stall_log)
            };
            if signals.stop.load(Ordering::Relaxed) {
                return (Stopped::Signal, last_change);
            }
            if draining_until.is_some_and(|t| Instant::now() >= t) {
                log::info!("drained: stopping");
                return (Stopped::Signal, last_change);
            }
            if self.handles.iter().any(JoinHandle::is_finished) {
                return (Stopped::WorkerExit, last_change);
            }
            {
                let now_ns = clock.elapsed().as_nanos() as u64;
                let mut c = control.lock();
                if draining_until.is_none() && signals.term.load(Ordering::Relaxed) {
                    if c.stop_announcing(now_ns) && !policy.drain.is_zero() {
                        log::info!(
                            "SIGTERM: announcements withdrawn; forwarding for {} s more",
                            policy.drain.as_secs_f64()
                        );
                        draining_until = Some(Instant::now() + policy.drain);
                    } else {
                        return (Stopped::Signal, last_change);
                    }
                }
                if signals.hup.swap(false, Ordering::Relaxed) {
                    log::info!("SIGHUP: reloading the config");
                    // A refused reload is logged; the running config stays.
                    let _ = c.reload(now_ns);
                }
                c.set_workers_polling(beats.all_beating(&self.live));
                c.set_stalled(beats.any_still(), late.as_nanos() as u64, now_ns);
                c.tick(now_ns);
            }
            let now = self.totals();
            if now.0 != last.0 {
                last = now;
                last_change = Instant::now();
            } else if !policy.idle_exit.is_zero() && last_change.elapsed() >= policy.idle_exit {
                return (Stopped::Idle, last_change);
            }
            if !policy.stats_interval.is_zero() && last_line.0.elapsed() >= policy.stats_interval {
                let (at, prev) = last_line;
                log::info!("{}", rate_line(prev, now, at.elapsed()));
                last_line = (Instant::now(), now);
            }
        }
    }

    /// Stops the workers and joins them. Returns what each handed back, in
    /// worker order, or the first worker that failed.
    pub fn join(mut self) -> Result<Vec<(WorkerEnd, R)>, RuntimeError> {
        self.stop.store(true, Ordering::Relaxed);
        let mut ends = Vec::with_capacity(self.handles.len());
        let mut failed = None;
        for (w, h) in self.handles.drain(..).enumerate() {
            match h.join() {
                Ok(Some(end)) => ends.push(end),
                Ok(None) | Err(_) => failed = failed.or(Some(w)),
            }
        }
        match failed {
            Some(w) => Err(RuntimeError::Failed(w)),
            None => Ok(ends),
        }
    }
}

impl<R> Drop for Pool<R> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// When each worker's heartbeat ([`Live::polls`]) last moved, and the
/// last tick that saw it still: a stall is only what two ticks of the
/// control thread confirmed, so a control thread that slept late never
/// takes a polling worker for a stalled one.
struct Heartbeats {
    /// Per worker: (polls, when they last moved, the last tick that saw
    /// them unchanged).
    seen: Vec<(u64, Instant, Instant)>,
    stall_log: Duration,
    /// Stalls logged so far.
    stalls: u64,
}

impl Heartbeats {
    fn new(workers: usize, stall_log: Duration) -> Heartbeats {
        let now = Instant::now();
        Heartbeats {
            seen: vec![(0, now, now); workers],
            stall_log,
            stalls: 0,
        }
    }

    /// Whether some worker's heartbeat has stood still for `stall_log` or
    /// more (never, with `stall_log` zero).
    fn any_still(&self) -> bool {
        !self.stall_log.is_zero()
            && self
                .seen
                .iter()
                .any(|s| s.0 > 0 && s.2.saturating_duration_since(s.1) >= self.stall_log)
    }

    /// Whether every worker's heartbeat moved within [`HEARTBEAT`]. Logs a
    /// worker whose heartbeat moves again after standing still for at
    /// least `stall_log`.
    fn all_beating(&mut self, live: &[CachePadded<Live>]) -> bool {
        let now = Instant::now();
        let mut all = true;
        for (w, (seen, l)) in self.seen.iter_mut().zip(live).enumerate() {
            let polls = l.polls.load(Ordering::Relaxed);
            if polls != seen.0 {
                let still = seen.2.saturating_duration_since(seen.1);
                if seen.0 > 0 && !self.stall_log.is_zero() && still >= self.stall_log {
                    log::warn!("worker {w}: stalled, no poll for {} ms", still.as_millis());
                    self.stalls += 1;
                }
                *seen = (polls, now, now);
            } else {
                seen.2 = now;
            }
            all &= polls > 0 && now.duration_since(seen.1) < HEARTBEAT;
        }
        all
    }
}

/// `rate  rx … tx … dropped …` between two samples `secs` apart.
fn rate_line(prev: (u64, u64, u64), now: (u64, u64, u64), span: Duration) -> String {
    let secs = span.as_secs_f64().max(1e-9);
    let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
    format!(
        "rate  rx {:.3} Mpps  tx {:.3} Mpps  dropped {:.0}/s  (total rx {} tx {} dropped {})",
        rate(now.0, prev.0) / 1e6,
        rate(now.1, prev.1) / 1e6,
        rate(now.2, prev.2),
        now.0,
        now.1,
        now.2
    )
}

/// What a worker thread starts with besides its spec.
struct ThreadCtx {
    id: u16,
    workers: u16,
    store: SnapshotStore,
    stop: Arc<AtomicBool>,
    live: Arc<Vec<CachePadded<Live>>>,
    ready: mpsc::Sender<Result<(), RuntimeError>>,
}

fn worker_thread<I: PacketIo, G, R>(
    ctx: ThreadCtx,
    spec: WorkerSpec<I>,
    enter: &dyn Fn(u16) -> Result<G, String>,
    exit: &dyn Fn(&I) -> R,
) -> Outcome<R> {
    let w = ctx.id;
    if let Some(cpu) = spec.cpu {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
            let _ = ctx.ready.send(Err(RuntimeError::Pin { worker: w, cpu }));
            return None;
        }
    }
    let guard = match enter(w) {
        Ok(g) => g,
        Err(e) => {
            let _ = ctx.ready.send(Err(RuntimeError::Enter(e)));
            return None;
        }
    };
    let mut worker = Worker::new(&ctx.store, spec.link, w, ctx.workers, spec.seed, spec.io);
    let live = ctx.live.get(usize::from(w));
    let _ = ctx.ready.send(Ok(()));
    drop(ctx.ready);

    let mut ok = true;
    let mut empty = 0u32;
    let mut polls = 0u64;
    while !ctx.stop.load(Ordering::Relaxed) {
        polls += 1;
        if let Some(l) = live {
            l.polls.store(polls, Ordering::Relaxed);
        }
        match worker.poll(&ctx.store, &spec.clock, BURST) {
            Ok(0) if worker.exhausted() => break,
            Ok(0) => {
                if let Some(idle) = spec.idle {
                    empty = empty.saturating_add(1);
                    if empty >= idle.polls {
                        worker.ws.stats.event(Event::IdleSleep);
                        std::thread::sleep(idle.sleep);
                    }
                }
            }
            Ok(_) => {
                empty = 0;
                if let Some(l) = live {
                    l.publish(&worker.ws);
                }
            }
            Err(e) => {
                eprintln!("rampart: worker {w}: {e}");
                ok = false;
                break;
            }
        }
    }
    // Drain: whatever is still queued goes out before the ports stop.
    let _ = worker.io.flush();
    if let Some(l) = live {
        l.publish(&worker.ws);
    }
    let (end, io) = worker.finish();
    let account = exit(&io);
    // The backend goes before whatever `enter` set up (DPDK: queue handles
    // before the lcore registration, and so before the port is stopped).
    drop(io);
    drop(guard);
    ok.then_some((end, account))
}

#[cfg(test)]
mod tests;
