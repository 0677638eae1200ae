//! The `rampart` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use rampart::config;
use rampart::replay::{self, ReplayOptions};

#[derive(Parser)]
#[command(
    name = "rampart",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("RAMPART_GIT_REV"), ")"),
    about = "Kernel-bypass L4 load balancer: Maglev, connection tracking, NAT / FullNAT / DR"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a capture through the datapath as if received on one port.
    Replay {
        /// Config file (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// Write every transmitted frame here, in order (pcap).
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Write counters as JSON here.
        #[arg(long)]
        stats_json: Option<PathBuf>,
        /// Never show a progress bar.
        #[arg(long)]
        no_progress: bool,
        /// Reload after N packets with the config FILE, as SIGHUP does on
        /// a live box (repeatable, in packet order): `--reload 1000:new.toml`.
        #[arg(long, value_name = "N:FILE")]
        reload: Vec<String>,
        /// Packets per burst (1-32). Output frames do not depend on it; the
        /// worker clock moves per burst, so with health checks 1 sends every
        /// probe at the time of the packet that made it due.
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=32))]
        burst: u16,
        /// Worker threads (1-64), each with its own connection table: one
        /// reader steers every frame to the worker that owns its connection,
        /// as a DPDK box hands frames over between workers.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        workers: u16,
        /// Input capture (pcap or pcapng, Ethernet).
        input: PathBuf,
    },
    /// Talk to a running `rampart run` over its control socket: status,
    /// VIPs and backends, connections, counters, reload.
    Ctl(rampart::control::ctl::CtlArgs),
    /// Run on DPDK ports: the config's [dpdk] section and [[port]]s
    /// (needs a build with `--features dpdk`). Stops on SIGINT / SIGTERM.
    Run {
        /// Config file (TOML) with [dpdk] and [[port]].
        #[arg(long, short)]
        config: PathBuf,
        /// Worker clock: `packets` (capture timestamps, net_pcap only: the
        /// output equals `rampart replay`'s), `monotonic` (live ports), or
        /// `auto` (packets when every port is a finite net_pcap vdev).
        #[arg(long, default_value = "auto", value_parser = ["auto", "packets", "monotonic"])]
        clock: String,
        /// Write counters as JSON here when the run ends.
        #[arg(long)]
        stats_json: Option<PathBuf>,
        /// EAL arguments, after `--`; they replace [dpdk].eal_args.
        #[arg(last = true, value_name = "EAL ARGS")]
        eal_args: Vec<String>,
    },
    /// Measure `rampart run` against dpdk-testpmd io and macswap, on one
    /// core, from a net_pcap infinite_rx vdev (tx dropped), alternating the
    /// three over several rounds: established NAT flows, new connections,
    /// whole connection lifecycles, SYN cookies, FullNAT, DR, 1M live
    /// connections, two workers (needs a build with `--features dpdk`,
    /// dpdk-testpmd and root).
    Bench {
        /// Seconds each measured run forwards (each also gets 3 s or more
        /// to start and warm up).
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Rounds per workload: testpmd io, macswap and rampart run in turn
        /// this many times; the table shows medians with their spread.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// CPU of the forwarding core (rampart's worker, testpmd's).
        #[arg(long, default_value_t = 1)]
        core: usize,
        /// CPU of the control / main thread (and of the second worker in
        /// the two-worker workload).
        #[arg(long, default_value_t = 0)]
        control: usize,
        /// Established NAT, FullNAT, DR and two workers: connections in each
        /// capture (16 frames each).
        #[arg(long, default_value_t = 4096)]
        flows: u32,
        /// New connections: clients in the capture (a SYN and an RST each).
        #[arg(long, default_value_t = 32768)]
        new_conns: u32,
        /// SYN cookies: spoofed SYNs in the capture.
        #[arg(long, default_value_t = 65536)]
        syns: u32,
        /// Live connections: connections the table holds while measuring
        /// (one frame each in the capture, which net_pcap keeps in mbufs).
        #[arg(long, default_value_t = 1_048_576)]
        live_conns: u32,
        /// Connection lifecycle: connections in the capture (8 frames each,
        /// SYN to the last ACK).
        #[arg(long, default_value_t = 16384)]
        lifecycle_conns: u32,
        /// Only these workloads, comma-separated: established, new,
        /// lifecycle, syn, fullnat, dr, live, two-workers.
        #[arg(long, value_delimiter = ',', value_name = "LIST")]
        only: Vec<String>,
        /// Write the table, with every round's samples, as JSON here.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Draw the table as an SVG bar chart here.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Write the captures, configs and every run's log here and keep
        /// them (default: a temporary directory, removed at the end).
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
        /// Run EAL without hugepages (--no-huge, -m sized per workload) everywhere.
        #[arg(long)]
        no_huge: bool,
    },
    /// Validate a config file; exits non-zero with FILE:LINE:COL: KEY: reason.
    CheckConfig { file: PathBuf },
    /// Write a synthetic capture for throughput runs against
    /// configs/rampart.toml (the replay fixtures are written by
    /// `cargo run -p rampart-testkit --bin fixtures`).
    #[command(group(clap::ArgGroup::new("workload").required(true).args(["traffic", "syn_flood"])))]
    Gen {
        /// A NAT capture: concurrent TCP connections to the VIP `web`,
        /// handshake then data both ways.
        #[arg(long, value_name = "OUT.pcap")]
        traffic: Option<PathBuf>,
        /// --traffic: concurrent TCP connections (distinct clients).
        #[arg(long, default_value_t = 100_000, requires = "traffic")]
        flows: u32,
        /// --traffic: frames per connection (handshake included, at least 3).
        #[arg(long, default_value_t = 10, requires = "traffic")]
        packets_per_flow: u32,
        /// A SYN flood: spoofed SYNs from 198.19.0.0/16 to the SYN proxy
        /// VIP `shield`.
        #[arg(long, value_name = "OUT.pcap", conflicts_with = "traffic")]
        syn_flood: Option<PathBuf>,
        /// --syn-flood: number of SYNs.
        #[arg(long, default_value_t = 1_000_000, requires = "syn_flood")]
        count: u32,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(Cli::parse().cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("rampart: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(cmd: Cmd) -> Result<(), String> {
    match cmd {
        Cmd::Replay {
            config,
            out,
            stats_json,
            no_progress,
            reload,
            burst,
            workers,
            input,
        } => {
            let cfg = config::load(&config).map_err(|e| e.to_string())?;
            let mut reloads = Vec::with_capacity(reload.len());
            for r in &reload {
                reloads.push(scheduled_reload(r)?);
            }
            if reloads.windows(2).any(|w| w[0].after > w[1].after) {
                return Err("--reload: give the reloads in packet order".to_string());
            }
            let opts = ReplayOptions {
                input: input.clone(),
                output: out.clone(),
                progress: !no_progress,
                reloads,
                burst: usize::from(burst),
                workers,
            };
            let (snap, report) = replay::replay(&cfg, &opts)?;
            print!("{}", replay::summary(&input, out.as_deref(), &report));
            if let Some(p) = stats_json {
                let doc = replay::stats_json(&snap, &report);
                let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
                std::fs::write(&p, text + "\n").map_err(|e| format!("{}: {e}", p.display()))?;
            }
            Ok(())
        }
        Cmd::Run {
            config,
            clock,
            stats_json,
            eal_args,
        } => run_dpdk(config, &clock, stats_json, eal_args),
        Cmd::Bench {
            seconds,
            rounds,
            core,
            control,
            flows,
            new_conns,
            syns,
            live_conns,
            lifecycle_conns,
            only,
            json,
            svg,
            work_dir,
            no_huge,
        } => bench(BenchArgs {
            seconds,
            rounds,
            core,
            control,
            flows,
            new_conns,
            syns,
            live_conns,
            lifecycle_conns,
            only,
            json,
            svg,
            work_dir,
            no_huge,
        }),
        Cmd::Ctl(args) => rampart::control::ctl::run(args),
        Cmd::CheckConfig { file } => {
            let cfg = config::load(&file).map_err(|e| e.to_string())?;
            let backends: usize = cfg.vips.iter().map(|v| v.backends.len()).sum();
            println!(
                "{}: ok ({} vips, {} backends, {} neighbors, conntrack capacity {})",
                file.display(),
                cfg.vips.len(),
                backends,
                cfg.neighbors.len(),
                cfg.conntrack.capacity
            );
            Ok(())
        }
        Cmd::Gen {
            traffic: Some(out),
            flows,
            packets_per_flow,
            ..
        } => {
            let n = rampart::workload::write_traffic(&out, flows, packets_per_flow)?;
            println!("{}: {n} frames, {flows} flows", out.display());
            Ok(())
        }
        Cmd::Gen {
            syn_flood: Some(out),
            count,
            ..
        } => {
            let n = rampart::workload::write_syn_flood(&out, count)?;
            println!("{}: {n} SYNs", out.display());
            Ok(())
        }
        Cmd::Gen { .. } => Err("gen needs --traffic OUT.pcap or --syn-flood OUT.pcap".into()),
    }
}

/// `--reload N:FILE`.
fn scheduled_reload(arg: &str) -> Result<replay::ScheduledReload, String> {
    let Some((n, file)) = arg.split_once(':') else {
        return Err(format!(
            "--reload {arg}: expected N:FILE (reload after N packets)"
        ));
    };
    let after: u64 = n
        .parse()
        .map_err(|_| format!("--reload {arg}: `{n}` is not a packet count"))?;
    let text = std::fs::read_to_string(file).map_err(|e| format!("--reload {arg}: {file}: {e}"))?;
    let config = config::parse(&text, file).map_err(|e| e.to_string())?;
    Ok(replay::ScheduledReload {
        after,
        config,
        text,
    })
}

#[cfg(feature = "dpdk")]
fn run_dpdk(
    config: PathBuf,
    clock: &str,
    stats_json: Option<PathBuf>,
    eal_args: Vec<String>,
) -> Result<(), String> {
    use rampart::run::{self, ClockChoice, RunOptions};

    let cfg = config::load(&config).map_err(|e| e.to_string())?;
    let opts = RunOptions {
        config_path: config,
        eal_args: (!eal_args.is_empty()).then_some(eal_args),
        clock: ClockChoice::from_name(clock).unwrap_or(ClockChoice::Auto),
    };
    let report = run::run(&cfg, &opts).map_err(|e| e.to_string())?;
    print!("{}", run::summary(&report));
    if let Some(p) = stats_json {
        let text =
            serde_json::to_string_pretty(&run::stats_json(&report)).map_err(|e| e.to_string())?;
        std::fs::write(&p, text + "\n").map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

#[cfg(not(feature = "dpdk"))]
fn run_dpdk(
    _config: PathBuf,
    _clock: &str,
    _stats_json: Option<PathBuf>,
    _eal_args: Vec<String>,
) -> Result<(), String> {
    Err("run: this binary was built without DPDK; rebuild with `cargo build --release --features dpdk` (DPDK >= 22.11 through pkg-config libdpdk: `sudo scripts/setup-dpdk.sh` installs it)".to_string())
}

/// `rampart bench`'s options, as given (read only with the `dpdk` feature).
#[cfg_attr(not(feature = "dpdk"), allow(dead_code))]
struct BenchArgs {
    seconds: u32,
    rounds: u32,
    core: usize,
    control: usize,
    flows: u32,
    new_conns: u32,
    syns: u32,
    live_conns: u32,
    lifecycle_conns: u32,
    only: Vec<String>,
    json: Option<PathBuf>,
    svg: Option<PathBuf>,
    work_dir: Option<PathBuf>,
    no_huge: bool,
}

#[cfg(feature = "dpdk")]
fn bench(a: BenchArgs) -> Result<(), String> {
    use rampart::bench::{self, BenchOptions, Report};

    if a.core == a.control {
        return Err("bench: --core and --control must be different CPUs".into());
    }
    let o = BenchOptions {
        seconds: a.seconds,
        rounds: a.rounds,
        core: a.core,
        control: a.control,
        flows: a.flows,
        new_conns: a.new_conns,
        syns: a.syns,
        live_conns: a.live_conns,
        lifecycle_conns: a.lifecycle_conns,
        only: a.only,
        work_dir: a.work_dir,
        no_huge: a.no_huge,
        exe: std::env::current_exe().map_err(|e| format!("bench: own binary: {e}"))?,
    };
    let date = bench::report::utc_now();
    let rows = bench::run(&o)?;
    let report = Report::new(o.info(), rows, date, bench::dpdk_version());
    print!("{}", report.table());
    if let Some(p) = a.json {
        std::fs::write(&p, report.to_json()).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    if let Some(p) = a.svg {
        std::fs::write(&p, report.svg()?).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

#[cfg(not(feature = "dpdk"))]
fn bench(_a: BenchArgs) -> Result<(), String> {
    Err("bench: this binary was built without DPDK; rebuild with `cargo build --release --features dpdk` (DPDK >= 22.11 through pkg-config libdpdk: `sudo scripts/setup-dpdk.sh` installs it)".to_string())
}
