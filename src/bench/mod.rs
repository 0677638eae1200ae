//! `rampart bench` (feature `dpdk`): the datapath on DPDK against the I/O
//! ceiling of the same machine, measured in the same run.
//!
//! For each workload it writes a capture, then runs, each for `--seconds`
//! on the same CPU and a net_pcap vdev reading that capture in a loop
//! (`infinite_rx=1`, tx dropped and counted): `dpdk-testpmd` in io and in
//! macswap forwarding mode, and `rampart run`. The three alternate over
//! `--rounds` rounds (io, macswap, rampart, io, macswap, rampart, ...), so
//! a neighbour's load during the run lands on every column alike; each
//! column reports its median over the rounds with the spread, and the
//! ratio to macswap is the median of the per-round ratios. Every run is its
//! own process (EAL initialises once per process), stopped with SIGINT and
//! killed if it overruns. The rate of a run is the median of its
//! per-second rx samples after the first two (testpmd's `Rx-pps`,
//! rampart's rate lines), as `benches/ceiling.sh` takes it.
//!
//! The two-worker workload runs rampart with two workers, one on `--core`
//! and one on `--control`, over a vdev with two rx queues; rampart's
//! control thread then shares the first CPU of the process's affinity
//! with a worker. In the same round rampart also runs with one worker over
//! the same two queues, the baseline its scaling is measured against.

mod procs;
pub mod report;

use std::path::{Path, PathBuf};

use crate::workload;
pub use procs::dpdk_version;
pub use report::{Report, Row, RunInfo, Samples};

/// What `rampart bench` was asked for.
pub struct BenchOptions {
    /// Seconds each measured run forwards.
    pub seconds: u32,
    /// Rounds of the alternating runs per workload.
    pub rounds: u32,
    /// The CPU of the forwarding core (rampart's worker, testpmd's fwd core).
    pub core: usize,
    /// The CPU of the main / control thread (and of the second worker in
    /// the two-worker workload).
    pub control: usize,
    /// Established NAT, FullNAT, DR and two workers: connections in the capture.
    pub flows: u32,
    /// New-connection workload: clients (a SYN and an RST each).
    pub new_conns: u32,
    /// SYN cookie workload: spoofed SYNs in the capture.
    pub syns: u32,
    /// Live-connection workload: connections held in the table (one frame each).
    pub live_conns: u32,
    /// Lifecycle workload: connections in the capture (8 frames each).
    pub lifecycle_conns: u32,
    /// The workloads to run ([`Kind::key`]); empty: all.
    pub only: Vec<String>,
    /// Keep the captures, configs and logs in this directory (else a
    /// temporary one, removed at the end).
    pub work_dir: Option<PathBuf>,
    /// EAL without hugepages (`--no-huge`) for every run.
    pub no_huge: bool,
    /// The `rampart` binary (this one).
    pub exe: PathBuf,
}

impl BenchOptions {
    pub fn info(&self) -> RunInfo {
        RunInfo {
            seconds: self.seconds,
            rounds: self.rounds,
            core: self.core,
            control: self.control,
            flows: self.flows,
            new_conns: self.new_conns,
            syns: self.syns,
            live_conns: self.live_conns,
            lifecycle_conns: self.lifecycle_conns,
            no_huge: self.no_huge,
        }
    }
}

/// The workloads, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Established,
    New,
    Lifecycle,
    SynCookies,
    FullNat,
    Dr,
    Live,
    TwoWorkers,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Established,
        Kind::New,
        Kind::Lifecycle,
        Kind::SynCookies,
        Kind::FullNat,
        Kind::Dr,
        Kind::Live,
        Kind::TwoWorkers,
    ];

    /// The name `--only` takes.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Established => "established",
            Kind::New => "new",
            Kind::Lifecycle => "lifecycle",
            Kind::SynCookies => "syn",
            Kind::FullNat => "fullnat",
            Kind::Dr => "dr",
            Kind::Live => "live",
            Kind::TwoWorkers => "two-workers",
        }
    }

    /// The row's name in the table.
    fn name(self, o: &BenchOptions) -> String {
        match self {
            Kind::Established => "established NAT".into(),
            Kind::New => "new connections".into(),
            Kind::Lifecycle => "connection lifecycle".into(),
            Kind::SynCookies => "SYN cookies".into(),
            Kind::FullNat => "FullNAT, client side".into(),
            Kind::Dr => "DR".into(),
            Kind::Live if o.live_conns == 1 << 20 => "1M live connections".into(),
            Kind::Live => format!("{} live connections", o.live_conns),
            Kind::TwoWorkers => "two workers, established NAT".into(),
        }
    }
}

/// Frames per established connection in its capture: the handshake is 3 of
/// them, and once the capture has looped the connection is established.
const ESTABLISHED_PACKETS_PER_FLOW: u32 = 16;

/// A workload's capture(s), ready to run.
struct Prepared {
    kind: Kind,
    /// One capture per rx queue.
    queues: Vec<PathBuf>,
    frames: u64,
    /// rampart's connection table capacity for it.
    capacity: u32,
}

/// Runs every workload asked for; returns the rows in order.
pub fn run(o: &BenchOptions) -> Result<Vec<Row>, String> {
    if o.seconds == 0 {
        return Err("--seconds must be at least 1".into());
    }
    if o.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    if o.live_conns == 0 || o.lifecycle_conns == 0 {
        return Err("--live-conns and --lifecycle-conns must be at least 1".into());
    }
    for k in &o.only {
        if !Kind::ALL.iter().any(|w| w.key() == k) {
            return Err(format!(
                "--only {k}: not a workload (one of {})",
                Kind::ALL.map(Kind::key).join(", ")
            ));
        }
    }
    procs::which("dpdk-testpmd").ok_or(
        "dpdk-testpmd not found (hint: apt-get install dpdk-dev, or scripts/setup-dpdk.sh)",
    )?;
    let dir = match &o.work_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("rampart-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = run_in(o, &dir);
    if o.work_dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run_in(o: &BenchOptions, dir: &Path) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    let kinds = Kind::ALL
        .into_iter()
        .filter(|k| o.only.is_empty() || o.only.iter().any(|w| w == k.key()));
    for kind in kinds {
        let p = prepare(o, dir, kind)?;
        let name = kind.name(o);
        procs::check_memory(o, &p)?;
        eprintln!(
            "bench: {name}: {} frames, {} round(s) of {} s per run",
            p.frames, o.rounds, o.seconds
        );
        let workers = if kind == Kind::TwoWorkers { 2 } else { 1 };
        let mut s = Samples {
            io: Vec::new(),
            macswap: Vec::new(),
            rampart: Vec::new(),
            one_worker: Vec::new(),
        };
        for round in 0..o.rounds {
            let io = procs::testpmd(o, dir, &p, "io")?;
            let macswap = procs::testpmd(o, dir, &p, "macswap")?;
            let rampart = procs::rampart(o, dir, &p, workers)?;
            let mut line = format!(
                "bench: {name}: round {}: testpmd io {io:.2} Mpps, macswap {macswap:.2} Mpps, rampart {rampart:.2} Mpps",
                round + 1
            );
            if workers == 2 {
                let one = procs::rampart(o, dir, &p, 1)?;
                line += &format!(", one worker {one:.2} Mpps");
                s.one_worker.push(one);
            }
            eprintln!("{line}");
            s.io.push(io);
            s.macswap.push(macswap);
            s.rampart.push(rampart);
        }
        rows.push(Row {
            workload: name,
            frames: p.frames,
            frames_per_connection: (kind == Kind::Lifecycle).then_some(workload::LIFECYCLE_FRAMES),
            workers,
            samples: s,
        });
    }
    Ok(rows)
}

/// Writes `kind`'s capture(s) into `dir`.
fn prepare(o: &BenchOptions, dir: &Path, kind: Kind) -> Result<Prepared, String> {
    let one = |file: &str| vec![dir.join(file)];
    let queues = match kind {
        Kind::TwoWorkers => vec![dir.join("two-q0.pcap"), dir.join("two-q1.pcap")],
        k => one(&format!("{}.pcap", k.key())),
    };
    let q = &queues[0];
    let per = ESTABLISHED_PACKETS_PER_FLOW;
    let frames = match kind {
        Kind::Established => workload::write_traffic(q, o.flows, per)?,
        Kind::New => workload::write_new_connections(q, o.new_conns)?,
        Kind::Lifecycle => workload::write_lifecycle(q, o.lifecycle_conns)?,
        Kind::SynCookies => workload::write_syn_flood(q, o.syns)?,
        // The reference config's FullNAT VIP `api` and DR VIP `static`.
        Kind::FullNat => workload::write_client_flows(q, o.flows, per, (workload::net::API4, 443))?,
        Kind::Dr => workload::write_client_flows(q, o.flows, per, (workload::net::STATIC4, 80))?,
        Kind::Live => workload::write_live_connections(q, o.live_conns)?,
        Kind::TwoWorkers => workload::write_two_queues([&queues[0], &queues[1]], o.flows, per)?
            .iter()
            .sum(),
    };
    // The reference table (65536 entries) holds every other workload's
    // connections; the live ones get twice theirs.
    let capacity = match kind {
        Kind::Live => (2 * o.live_conns).next_power_of_two().max(65_536),
        Kind::Lifecycle => (2 * o.lifecycle_conns).next_power_of_two().max(65_536),
        _ => 65_536,
    };
    Ok(Prepared {
        kind,
        queues,
        frames,
        capacity,
    })
}
