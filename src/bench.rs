//! `rampart bench` (feature `dpdk`): the datapath on DPDK against the I/O
//! ceiling of the same machine, measured in the same run.
//!
//! For each workload it writes a capture, then runs, one after the other
//! and each for `--seconds`, on the same CPU and a net_pcap vdev reading
//! that capture in a loop (`infinite_rx=1`, tx dropped and counted):
//! `dpdk-testpmd` in io and in macswap forwarding mode, and `rampart run`
//! with one worker. Every run is its own process (EAL initialises once per
//! process), stopped with SIGINT and killed if it overruns. The rate of a
//! run is the median of its per-second rx samples after the first two
//! (testpmd's `Rx-pps`, rampart's rate lines), as `benches/ceiling.sh`
//! takes it.

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::workload;

/// What `rampart bench` was asked for.
pub struct BenchOptions {
    /// Seconds each measured run forwards.
    pub seconds: u32,
    /// The CPU of the forwarding core (rampart's worker, testpmd's fwd core).
    pub core: usize,
    /// The CPU of the main / control thread.
    pub control: usize,
    /// Established NAT workload: connections in the capture.
    pub flows: u32,
    /// New-connection workload: clients (a SYN and an RST each).
    pub new_conns: u32,
    /// SYN cookie workload: spoofed SYNs in the capture.
    pub syns: u32,
    /// EAL without hugepages (`--no-huge -m 1536`) for every run.
    pub no_huge: bool,
    /// The `rampart` binary (this one).
    pub exe: PathBuf,
}

/// One workload's figures, in Mpps.
pub struct Row {
    pub name: &'static str,
    pub frames: u64,
    pub io: f64,
    pub macswap: f64,
    pub rampart: f64,
}

/// Frames per established connection in its capture: the handshake is 3 of
/// them, and once the capture has looped the connection is established.
const ESTABLISHED_PACKETS_PER_FLOW: u32 = 16;

/// Runs every workload; returns the rows in order.
pub fn run(o: &BenchOptions) -> Result<Vec<Row>, String> {
    if o.seconds == 0 {
        return Err("--seconds must be at least 1".into());
    }
    which("dpdk-testpmd").ok_or(
        "dpdk-testpmd not found (hint: apt-get install dpdk-dev, or scripts/setup-dpdk.sh)",
    )?;
    let dir = std::env::temp_dir().join(format!("rampart-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = run_in(o, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_in(o: &BenchOptions, dir: &Path) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    let workloads: [(&'static str, &str); 5] = [
        ("established NAT", "established.pcap"),
        ("new connections", "new.pcap"),
        ("SYN cookies", "syn.pcap"),
        ("FullNAT, client side", "fullnat.pcap"),
        ("DR", "dr.pcap"),
    ];
    for (i, (name, file)) in workloads.iter().enumerate() {
        let pcap = dir.join(file);
        let frames = match i {
            0 => workload::write_traffic(&pcap, o.flows, ESTABLISHED_PACKETS_PER_FLOW)?,
            1 => workload::write_new_connections(&pcap, o.new_conns)?,
            2 => workload::write_syn_flood(&pcap, o.syns)?,
            // The reference config's FullNAT VIP `api` and DR VIP `static`.
            3 => workload::write_client_flows(
                &pcap,
                o.flows,
                ESTABLISHED_PACKETS_PER_FLOW,
                (workload::net::API4, 443),
            )?,
            _ => workload::write_client_flows(
                &pcap,
                o.flows,
                ESTABLISHED_PACKETS_PER_FLOW,
                (workload::net::STATIC4, 80),
            )?,
        };
        eprintln!("bench: {name}: {frames} frames, {} s per run", o.seconds);
        let io = testpmd(o, dir, &pcap, frames, "io")?;
        let macswap = testpmd(o, dir, &pcap, frames, "macswap")?;
        let rampart = rampart(o, dir, &pcap, frames, i)?;
        eprintln!(
            "bench: {name}: testpmd io {io:.2} Mpps, macswap {macswap:.2} Mpps, rampart {rampart:.2} Mpps"
        );
        rows.push(Row {
            name,
            frames,
            io,
            macswap,
            rampart,
        });
    }
    Ok(rows)
}

/// The table `rampart bench` prints.
pub fn table(o: &BenchOptions, rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "one worker on CPU {}, {} s per run, net_pcap infinite_rx (tx dropped), hugepages {}",
        o.core,
        o.seconds,
        if o.no_huge { "no" } else { "yes" }
    );
    out.push_str(
        "| workload | frames in capture | testpmd io Mpps | testpmd macswap Mpps | rampart Mpps | rampart ns/packet | ratio to macswap |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let ns = if r.rampart > 0.0 {
            format!("{:.1}", 1e3 / r.rampart)
        } else {
            "-".into()
        };
        let ratio = if r.macswap > 0.0 {
            format!("{:.2}", r.rampart / r.macswap)
        } else {
            "-".into()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {ns} | {ratio} |",
            r.name, r.frames, r.io, r.macswap, r.rampart
        );
    }
    out
}

/// Mbufs for a loop over `frames` frames: the whole capture (net_pcap
/// keeps it in mbufs) plus rx/tx rings and caches, as 2^n - 1.
fn pool_size(frames: u64) -> u64 {
    let need = frames + 8192;
    (need + 1).next_power_of_two() - 1
}

fn eal_memory(o: &BenchOptions) -> Vec<String> {
    if o.no_huge {
        ["--no-huge", "-m", "1536", "--no-shconf"]
            .map(String::from)
            .to_vec()
    } else {
        vec!["--in-memory".to_string()]
    }
}

fn prefix(tag: &str) -> String {
    format!("rampart-bench-{}-{tag}", std::process::id())
}

/// EAL leaves a runtime directory per file prefix, even in memory.
fn remove_runtime_dir(tag: &str) {
    let mut bases = vec![PathBuf::from("/var/run/dpdk"), PathBuf::from("/tmp/dpdk")];
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        bases.push(PathBuf::from(d).join("dpdk"));
    }
    for b in bases {
        let _ = std::fs::remove_dir_all(b.join(prefix(tag)));
    }
}

fn testpmd(
    o: &BenchOptions,
    dir: &Path,
    pcap: &Path,
    frames: u64,
    mode: &str,
) -> Result<f64, String> {
    let mut cmd = Command::new("dpdk-testpmd");
    cmd.arg("-l")
        .arg(format!("{},{}", o.control, o.core))
        .args(["--no-pci", "--no-telemetry", "--file-prefix"])
        .arg(prefix(mode))
        .args(eal_memory(o))
        .arg("--vdev")
        .arg(format!(
            "net_pcap0,rx_pcap={},infinite_rx=1",
            pcap.display()
        ))
        .args([
            "--",
            &format!("--forward-mode={mode}"),
            "--port-topology=loop",
            "--auto-start",
            "--stats-period",
            "1",
            &format!("--total-num-mbufs={}", pool_size(frames) + 1),
            "--rxd=1024",
            "--txd=1024",
        ]);
    let log = measured(cmd, o.seconds, &dir.join(format!("testpmd-{mode}.log")));
    remove_runtime_dir(mode);
    let log = log?;
    let samples: Vec<f64> = log
        .lines()
        .filter_map(|l| l.split("Rx-pps:").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|pps| pps / 1e6)
        .collect();
    median_after_warmup(&samples).ok_or_else(|| {
        format!(
            "testpmd {mode}: no rate samples (its output: {})",
            tail(&log)
        )
    })
}

fn rampart(
    o: &BenchOptions,
    dir: &Path,
    pcap: &Path,
    frames: u64,
    workload: usize,
) -> Result<f64, String> {
    let cfg = dir.join(format!("bench-{workload}.toml"));
    // No control socket or metrics listener: a bench must not collide with
    // a rampart already running on this box.
    let mut text = format!(
        "[control]\nsocket = \"\"\nprometheus = \"\"\n\n{}",
        workload::CONFIG_TEXT
    );
    let _ = write!(
        text,
        "\n[dpdk]\nworkers = 1\nlcores = [{}]\ncontrol_lcore = {}\nmempool_size = {}\nmempool_cache = 256\nstats_interval = 1\nidle_exit_ms = 0\n\n[[port]]\nname = \"net_pcap0,rx_pcap={},infinite_rx=1\"\n",
        o.core,
        o.control,
        pool_size(frames),
        pcap.display()
    );
    std::fs::write(&cfg, text).map_err(|e| format!("{}: {e}", cfg.display()))?;
    let mut cmd = Command::new(&o.exe);
    // The rate lines are logged at info.
    cmd.env("RUST_LOG", "info");
    cmd.arg("run")
        .arg("--config")
        .arg(&cfg)
        .arg("--")
        .args([
            "--no-pci",
            "--no-telemetry",
            "--log-level",
            "lib.eal:warning",
        ])
        .arg("--file-prefix")
        .arg(prefix(&format!("rampart{workload}")))
        .args(eal_memory(o));
    let log = measured(cmd, o.seconds, &dir.join(format!("rampart-{workload}.log")));
    remove_runtime_dir(&format!("rampart{workload}"));
    let log = log?;
    let samples: Vec<f64> = log
        .lines()
        .filter_map(|l| Some(&l[l.find("rate  rx ")? + "rate  rx ".len()..]))
        .filter_map(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .collect();
    median_after_warmup(&samples)
        .ok_or_else(|| format!("rampart run: no rate samples (its output: {})", tail(&log)))
}

/// Runs `cmd` for `seconds` (plus two seconds of start-up and warm-up),
/// stops it with SIGINT (killed 20 s later if still running) and returns
/// its stdout and stderr.
fn measured(mut cmd: Command, seconds: u32, log: &Path) -> Result<String, String> {
    let name = cmd.get_program().to_string_lossy().to_string();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    let out = reader(&mut child, true);
    let err = reader(&mut child, false);
    let run_for = Duration::from_secs(u64::from(seconds) + 3);
    let start = Instant::now();
    while start.elapsed() < run_for {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Not reaped yet, so the pid is still the child's.
    let exited = child.try_wait().map_err(|e| e.to_string())?.is_some();
    if !exited {
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(child.id().to_string())
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{name} did not stop within 20 s of SIGINT"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = format!(
        "{}{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    let _ = std::fs::write(log, &text);
    if exited {
        return Err(format!("{name} exited early ({status}): {}", tail(&text)));
    }
    Ok(text)
}

fn reader(child: &mut Child, stdout: bool) -> std::thread::JoinHandle<String> {
    let mut pipe: Box<dyn Read + Send> = if stdout {
        Box::new(child.stdout.take().expect("piped stdout"))
    } else {
        Box::new(child.stderr.take().expect("piped stderr"))
    };
    std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = pipe.read_to_end(&mut b);
        String::from_utf8_lossy(&b).to_string()
    })
}

/// The median of the samples after the first two (start-up, warm-up); the
/// last sample when there are no more than two (a run of a second or so).
fn median_after_warmup(samples: &[f64]) -> Option<f64> {
    if samples.len() <= 2 {
        return samples.last().copied();
    }
    let mut s = samples[2..].to_vec();
    s.sort_by(f64::total_cmp);
    Some(s[(s.len() - 1) / 2])
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(prog))
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_skips_the_first_two_samples() {
        assert_eq!(median_after_warmup(&[]), None);
        assert_eq!(median_after_warmup(&[1.0]), Some(1.0));
        assert_eq!(median_after_warmup(&[0.0, 2.0]), Some(2.0));
        assert_eq!(median_after_warmup(&[0.1, 0.2, 5.0, 3.0, 4.0]), Some(4.0));
        assert_eq!(median_after_warmup(&[0.1, 0.2, 5.0, 3.0]), Some(3.0));
    }

    #[test]
    fn pool_holds_the_capture() {
        assert_eq!(pool_size(1), 16383);
        assert_eq!(pool_size(65536), 131071);
    }
}
