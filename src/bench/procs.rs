//! The processes `rampart bench` runs: dpdk-testpmd and `rampart run`,
//! each its own EAL, and how their rates are read.

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{BenchOptions, Prepared};
use crate::workload;

/// Mbufs for a loop over `frames` frames: the whole capture (net_pcap
/// keeps it in mbufs) plus rx/tx rings and caches, as a multiple of 16384
/// less one (2^n - 1 for small pools).
pub(super) fn pool_size(frames: u64) -> u64 {
    let need = frames + 8192;
    need.div_ceil(16_384) * 16_384 - 1
}

/// Bytes one mbuf takes in its pool: the 2176-byte data room (testpmd's
/// and rampart's), the mbuf header and the mempool's own header, rounded up.
const MBUF_BYTES: u64 = 2560;

/// MiB of EAL memory a run over `frames` frames needs: the pool, plus the
/// rings and the drivers' own allocations.
fn memory_mib(frames: u64) -> u64 {
    pool_size(frames) * MBUF_BYTES / (1 << 20) + 256
}

/// Fails early, with what to do, when the hugepages cannot hold a
/// workload's pool.
pub(super) fn check_memory(o: &BenchOptions, p: &Prepared) -> Result<(), String> {
    if o.no_huge {
        return Ok(());
    }
    let Ok(meminfo) = std::fs::read_to_string("/proc/meminfo") else {
        return Ok(());
    };
    let field = |name: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    let (Some(free), Some(size_kib)) = (field("HugePages_Free:"), field("Hugepagesize:")) else {
        return Ok(());
    };
    let need = memory_mib(p.frames);
    let have = free * size_kib / 1024;
    if have >= need {
        return Ok(());
    }
    let total = field("HugePages_Total:").unwrap_or(0);
    let pages = total + (need - have).div_ceil(size_kib / 1024).max(1);
    Err(format!(
        "bench: {} needs about {need} MiB of hugepages for {} mbufs, {have} MiB are free (hint: `echo {pages} | sudo tee /proc/sys/vm/nr_hugepages`, or --no-huge, or fewer frames: --live-conns / --only)",
        p.kind.key(),
        pool_size(p.frames)
    ))
}

fn eal_memory(o: &BenchOptions, frames: u64) -> Vec<String> {
    if o.no_huge {
        let mib = memory_mib(frames).max(1536);
        vec![
            "--no-huge".into(),
            "-m".into(),
            mib.to_string(),
            "--no-shconf".into(),
        ]
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

/// The net_pcap vdev looping the workload's captures, one rx queue each.
fn vdev(p: &Prepared) -> String {
    let mut v = "net_pcap0".to_string();
    for q in &p.queues {
        let _ = write!(v, ",rx_pcap={}", q.display());
    }
    v + ",infinite_rx=1"
}

/// Seconds a run gets before its measured ones: start-up (EAL, the
/// capture read into mbufs) and the two warm-up samples.
fn startup_seconds(frames: u64) -> u64 {
    3 + frames / 500_000
}

/// testpmd in `mode` over the workload: one fwd core on `--core`, or with
/// two queues two fwd cores, the second on `--control` beside testpmd's
/// main thread (as rampart's second worker shares it with its control
/// thread).
pub(super) fn testpmd(
    o: &BenchOptions,
    dir: &Path,
    p: &Prepared,
    mode: &str,
) -> Result<f64, String> {
    let queues = p.queues.len();
    let mut cmd = Command::new("dpdk-testpmd");
    if queues > 1 {
        cmd.arg("--lcores")
            .arg(format!("0@{},1@{},2@{}", o.control, o.core, o.control));
    } else {
        cmd.arg("-l").arg(format!("{},{}", o.control, o.core));
    }
    cmd.args(["--no-pci", "--no-telemetry", "--file-prefix"])
        .arg(prefix(mode))
        .args(eal_memory(o, p.frames))
        .arg("--vdev")
        .arg(vdev(p))
        .args([
            "--",
            &format!("--forward-mode={mode}"),
            "--port-topology=loop",
            "--auto-start",
            "--stats-period",
            "1",
            &format!("--total-num-mbufs={}", pool_size(p.frames) + 1),
            "--rxd=1024",
            "--txd=1024",
        ]);
    if queues > 1 {
        cmd.arg(format!("--rxq={queues}"))
            .arg(format!("--txq={queues}"))
            .arg(format!("--nb-cores={queues}"));
    }
    let log = measured(
        cmd,
        o.seconds,
        startup_seconds(p.frames),
        &dir.join(format!("testpmd-{}-{mode}.log", p.kind.key())),
    );
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

/// `rampart run` over the workload with `workers` workers: one on
/// `--core`, a second on `--control`. With two the control thread is left
/// to rampart's choice, the first CPU of its affinity, which a worker then
/// shares.
pub(super) fn rampart(
    o: &BenchOptions,
    dir: &Path,
    p: &Prepared,
    workers: u16,
) -> Result<f64, String> {
    let tag = format!("rampart-{}-{workers}", p.kind.key());
    let cfg = dir.join(format!("{tag}.toml"));
    // No control socket or metrics listener: a bench must not collide with
    // a rampart already running on this box.
    let mut text = format!(
        "[control]\nsocket = \"\"\nprometheus = \"\"\n\n{}",
        workload::config_text_with_capacity(p.capacity)
    );
    let cpus = if workers == 2 {
        format!("workers = 2\nlcores = [{}, {}]\n", o.core, o.control)
    } else {
        format!(
            "workers = 1\nlcores = [{}]\ncontrol_lcore = {}\n",
            o.core, o.control
        )
    };
    let _ = write!(
        text,
        "\n[dpdk]\n{cpus}mempool_size = {}\nmempool_cache = 256\nstats_interval = 1\nidle_exit_ms = 0\n\n[[port]]\nname = \"{}\"\n",
        pool_size(p.frames),
        vdev(p)
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
        .arg(prefix(&tag))
        .args(eal_memory(o, p.frames));
    let log = measured(
        cmd,
        o.seconds,
        startup_seconds(p.frames),
        &dir.join(format!("{tag}.log")),
    );
    remove_runtime_dir(&tag);
    let log = log?;
    let samples: Vec<f64> = log
        .lines()
        .filter_map(|l| Some(&l[l.find("rate  rx ")? + "rate  rx ".len()..]))
        .filter_map(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .collect();
    median_after_warmup(&samples)
        .ok_or_else(|| format!("rampart run: no rate samples (its output: {})", tail(&log)))
}

/// Runs `cmd` for `seconds` plus `startup` seconds of start-up and
/// warm-up, stops it with SIGINT (killed 20 s later if still running) and
/// returns its stdout and stderr.
fn measured(mut cmd: Command, seconds: u32, startup: u64, log: &Path) -> Result<String, String> {
    let name = cmd.get_program().to_string_lossy().to_string();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    let out = reader(&mut child, true);
    let err = reader(&mut child, false);
    let run_for = Duration::from_secs(u64::from(seconds) + startup);
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

pub(super) fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(prog))
            .find(|p| p.is_file())
    })
}

/// `pkg-config --modversion libdpdk`, when pkg-config answers.
pub fn dpdk_version() -> Option<String> {
    let o = Command::new("pkg-config")
        .args(["--modversion", "libdpdk"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
    (o.status.success() && !v.is_empty()).then_some(v)
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
        assert_eq!(pool_size(65536), 81919);
        // 1M live connections: 1M mbufs for the capture, not 2M.
        assert_eq!(pool_size(1 << 20), 1_064_959);
        assert!(memory_mib(1 << 20) < 3000);
    }

    #[test]
    fn two_queues_are_two_rx_pcaps() {
        let p = Prepared {
            kind: super::super::Kind::TwoWorkers,
            queues: vec!["/t/a.pcap".into(), "/t/b.pcap".into()],
            frames: 10,
            capacity: 65_536,
        };
        assert_eq!(
            vdev(&p),
            "net_pcap0,rx_pcap=/t/a.pcap,rx_pcap=/t/b.pcap,infinite_rx=1"
        );
    }
}
