//! `rampart run` on DPDK, as a user runs it: the binary over net_pcap vdevs
//! (rx_pcap -> tx_pcap), one process per EAL run (EAL initialises once per
//! process), each bounded in time and killed if it overruns.
//!
//! - Every replay fixture gives byte for byte the frames `rampart replay`
//!   gives (and the fixture expects), with the same counters. The run's
//!   clock comes from net_pcap's capture timestamps (`--clock packets`,
//!   what `auto` picks for pcap files), so the SYN proxy's cookies, which
//!   depend on the clock, come out the same too.
//! - A capture of many bursts (2400 frames) gives the same frames as replay.
//! - SIGINT and SIGTERM stop a run that never ends by itself (an
//!   `infinite_rx` vdev): exit 0, summary printed.
//! - Start-up failures end in one line with a hint, never a panic.
//! - The control thread: `rampart ctl` over the API socket and /metrics see
//!   the traffic, SIGHUP reloads the config file (an invalid one is
//!   refused and the running config stays), `ctl reload` too, and the
//!   socket is gone after SIGINT; a control socket or metrics port it
//!   cannot take ends the start in one line naming it.
//! - On a live port (net_af_packet on a veth, in network namespaces that
//!   tests/netns/af_packet.sh creates and deletes) it answers the client's
//!   ARP for the VIP and forwards real kernel TCP to a backend and back;
//!   its kernel interface (a TAP) carries the node's own TCP to the lb
//!   kernel and back, and disappears on SIGINT and on SIGKILL.
//! - Idle polling: a quiet port costs a fraction of the CPU pure polling
//!   costs with `idle_sleep_us` set.
//!
//! Needs DPDK (the `dpdk` feature) and root, as CI has (the af_packet test
//! also iproute2, ethtool, iputils-arping, curl and python3, which .ci/run
//! installs). Without the feature only the last test runs: `rampart run`
//! refuses in one line.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rampart_testkit::common::root;
use rampart_testkit::rampart_bin as bin;

/// Runs `cmd` to the end, killing it (and failing the test) after `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rampart");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut b).ok();
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut b).ok();
        b
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let err = err_t.join().unwrap_or_default();
            panic!(
                "rampart did not finish within {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

#[cfg(feature = "dpdk")]
mod dpdk {
    use super::*;

    use std::path::Path;

    use rampart_testkit::fixtures;
    use rampart_testkit::toml::{self, Vip};

    /// Per-process EAL arguments: no hugepages, no PCI scan, no shared
    /// config, no telemetry socket, a file prefix of its own.
    fn eal_args(tag: &str) -> Vec<String> {
        let mut v: Vec<String> = [
            "--no-huge",
            "-m",
            "512",
            "--no-pci",
            "--no-shconf",
            "--no-telemetry",
            "--log-level",
            "lib.eal:warning",
            "--file-prefix",
        ]
        .map(String::from)
        .to_vec();
        v.push(prefix(tag));
        v
    }

    fn prefix(tag: &str) -> String {
        format!("rampart-test-{}-{tag}", std::process::id())
    }

    /// EAL leaves an empty runtime directory per file prefix, even with
    /// --no-shconf; unique prefixes would pile them up.
    fn remove_runtime_dir(tag: &str) {
        for base in ["/var/run/dpdk", "/tmp/dpdk"] {
            let _ = std::fs::remove_dir_all(Path::new(base).join(prefix(tag)));
        }
        if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
            let _ =
                std::fs::remove_dir_all(std::path::PathBuf::from(d).join("dpdk").join(prefix(tag)));
        }
    }

    use rampart_testkit::common::{frames, http_get, read_json, succeeded};

    /// `[control]` of every run but the control API's own tests: neither
    /// the API socket nor the metrics listener, whose defaults
    /// (/run/rampart/rampart.sock, 127.0.0.1:9185) one run at a time can
    /// hold; tests run in parallel.
    const NO_CONTROL: &str = "socket = \"\"\nprometheus = \"\"\n";

    /// `base` (a config file) plus a [dpdk] section and the given ports,
    /// with the control API and metrics off.
    fn config_with(base: &Path, dpdk: &str, ports: &[String], out: &Path) {
        config_with_control(base, NO_CONTROL, dpdk, ports, out);
    }

    /// `base` plus a [control] section, a [dpdk] section and the ports.
    fn config_with_control(base: &Path, control: &str, dpdk: &str, ports: &[String], out: &Path) {
        let mut text = std::fs::read_to_string(base).unwrap();
        text.push_str("\n[control]\n");
        text.push_str(control);
        text.push_str("\n[dpdk]\n");
        text.push_str(dpdk);
        for p in ports {
            text.push_str(&format!("\n[[port]]\nname = \"{p}\"\n"));
        }
        std::fs::write(out, text).unwrap();
    }

    const TEST_DPDK: &str =
        "mempool_size = 4095\nmempool_cache = 64\nidle_exit_ms = 300\nstats_interval = 0\n";

    /// `rampart run` over `input` with `cfg_base`; returns (run frames, run
    /// stats JSON, stdout).
    fn run_pcap(
        tag: &str,
        cfg_base: &Path,
        input: &Path,
        dir: &Path,
    ) -> (Vec<Vec<u8>>, serde_json::Value, String) {
        let out = dir.join(format!("{tag}.run.pcap"));
        let json = dir.join(format!("{tag}.run.json"));
        let cfg = dir.join(format!("{tag}.toml"));
        let port = format!(
            "net_pcap0,rx_pcap={},tx_pcap={}",
            input.display(),
            out.display()
        );
        config_with(cfg_base, TEST_DPDK, &[port], &cfg);
        let mut cmd = bin!();
        cmd.arg("run")
            .arg("--config")
            .arg(&cfg)
            .arg("--stats-json")
            .arg(&json)
            .arg("--")
            .args(eal_args(tag));
        let o = run_bounded(cmd, Duration::from_secs(60));
        remove_runtime_dir(tag);
        let stdout = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            o.status.success(),
            "{tag}: rampart run failed ({}):\n{stdout}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        let doc = read_json(&json);
        (frames(&out), doc, stdout)
    }

    /// `rampart replay` over the same input: (frames, stats JSON).
    fn replay_pcap(
        tag: &str,
        cfg: &Path,
        input: &Path,
        dir: &Path,
    ) -> (Vec<Vec<u8>>, serde_json::Value) {
        let out = dir.join(format!("{tag}.replay.pcap"));
        let json = dir.join(format!("{tag}.replay.json"));
        let mut cmd = bin!();
        cmd.arg("replay")
            .arg("--config")
            .arg(cfg)
            .arg("--out")
            .arg(&out)
            .arg("--stats-json")
            .arg(&json)
            .arg(input);
        succeeded(
            run_bounded(cmd, Duration::from_secs(60)),
            &format!("{tag}: replay"),
        );
        (frames(&out), read_json(&json))
    }

    /// The counters that must agree between run and replay.
    fn same_counters(tag: &str, run: &serde_json::Value, replay: &serde_json::Value) {
        for key in [
            "rx_packets",
            "tx_packets",
            "rx_bytes",
            "tx_bytes",
            "originated_packets",
            "originated_bytes",
            "consumed",
            "dropped_total",
            "dropped",
            "events",
        ] {
            assert_eq!(run[key], replay[key], "{tag}: {key}");
        }
        for key in ["new", "midflow_pickups", "active"] {
            assert_eq!(
                run["connections"][key], replay["connections"][key],
                "{tag}: connections.{key}"
            );
        }
        let d = &run["dpdk"];
        assert_eq!(d["rx_packets"], run["rx_packets"], "{tag}: dpdk rx");
        let out = run["tx_packets"].as_u64().unwrap() + run["originated_packets"].as_u64().unwrap();
        assert_eq!(d["tx_packets"].as_u64(), Some(out), "{tag}: dpdk tx");
        for key in [
            "tx_dropped",
            "tx_alloc_failed",
            "rx_multiseg",
            "tx_unmatched",
        ] {
            assert_eq!(d[key], 0, "{tag}: dpdk {key}");
        }
        assert_eq!(
            d["ports"][0]["ipackets"], run["rx_packets"],
            "{tag}: port rx"
        );
        assert_eq!(
            d["ports"][0]["opackets"].as_u64(),
            Some(out),
            "{tag}: port tx"
        );
    }

    #[test]
    fn run_on_net_pcap_matches_replay_for_every_fixture() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = root().join(fixtures::CONFIG_PATH);
        let mut checked = 0;
        for sc in fixtures::scenarios() {
            let input = root()
                .join("pcap-fixtures")
                .join(format!("{}.in.pcap", sc.name));
            let expected = frames(
                &root()
                    .join("pcap-fixtures")
                    .join(format!("{}.expected.pcap", sc.name)),
            );
            let (got, run_doc, stdout) = run_pcap(sc.name, &cfg, &input, dir.path());
            let (want, replay_doc) = replay_pcap(sc.name, &cfg, &input, dir.path());
            assert!(
                stdout
                    .lines()
                    .next()
                    .unwrap_or("")
                    .contains("clock packets"),
                "{}: a finite pcap port runs on capture time: {stdout}",
                sc.name
            );
            assert!(stdout.contains("stopped: idle"), "{}: {stdout}", sc.name);
            assert_eq!(got.len(), want.len(), "{}: frame count", sc.name);
            for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
                assert!(g == w, "{}: frame {i} differs from replay", sc.name);
            }
            assert!(
                want == expected,
                "{}: replay differs from the fixture",
                sc.name
            );
            same_counters(sc.name, &run_doc, &replay_doc);
            checked += 1;
        }
        assert!(checked >= 12, "every fixture ran ({checked})");
    }

    /// `rampart gen --traffic` at `path`: 300 flows of 8 packets.
    fn gen_traffic(path: &Path) {
        let o = bin!()
            .args(["gen", "--traffic"])
            .arg(path)
            .args(["--flows", "300", "--packets-per-flow", "8"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    #[test]
    fn run_on_net_pcap_matches_replay_over_many_bursts() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("traffic.pcap");
        gen_traffic(&input);
        let cfg = root().join("configs/bench.toml");
        let (got, run_doc, _) = run_pcap("traffic", &cfg, &input, dir.path());
        let (want, replay_doc) = replay_pcap("traffic", &cfg, &input, dir.path());
        assert_eq!(run_doc["rx_packets"], 2400);
        assert!(got.len() > 2000, "{} frames out", got.len());
        assert!(
            got == want,
            "2400 frames in 75 bursts: run output differs from replay"
        );
        same_counters("traffic", &run_doc, &replay_doc);
    }

    /// Service part of the two-worker test: a NAT and a FullNAT VIP, both
    /// Maglev (a per-worker scheduler such as least-connections would pick
    /// differently from a single replay worker).
    fn two_worker_config() -> String {
        let backends = ["198.18.1.11", "198.18.1.12"];
        let web = Vip::new("web", "198.18.100.10", 80, "tcp", "nat").backends(&backends, 8080);
        let api = Vip::new("api", "198.18.100.20", 443, "tcp", "fullnat")
            .local_addresses(&["198.18.0.200"])
            .backends(&backends, 8443);
        format!("{}{web}{api}", toml::node(&["198.18.0.1"], &backends))
    }

    /// Two workers, two rx queues. Queue 0 carries the clients' packets of
    /// four connections: NAT flows A (owned by worker 0) and B (worker 1),
    /// FullNAT flows C (worker 0) and D (worker 1). Queue 1 carries 200000
    /// ARP frames for someone else (so worker 1 is busy long after the
    /// clients' packets are in), then the backends' replies of all four.
    /// B's and D's client packets, and A's and C's replies, reach a worker
    /// that does not own them and are handed over through the owner's ring;
    /// every reply comes out rewritten, in the owner's tx file, exactly as
    /// a single-worker replay of the same packets rewrites it.
    #[test]
    fn two_workers_hand_replies_to_the_owner() {
        use rampart::flow::tcp_flags;
        use rampart::gen;
        use rampart::io::steer::client_owner;
        use rampart::snapshot::Snapshot;
        use rampart::workload::segment;
        use rampart_testkit::common::write_pcap;
        use rampart_testkit::fixtures::net::{parse as ip, GATEWAY_MAC, NODE_MAC};
        use rampart_testkit::fixtures::{eth, tcp_key};

        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("two.base.toml");
        std::fs::write(&base, two_worker_config()).unwrap();
        let cfg = rampart::config::load(&base).unwrap();
        let snap = Snapshot::build(&cfg);
        let eth = eth(GATEWAY_MAC, NODE_MAC);
        let local = ip("198.18.0.200");

        // (name, client, VIP, VIP port, owner, FullNAT local port)
        let mut flows = Vec::new();
        for (name, vip, vport, owner, lport) in [
            ("A", "198.18.100.10", 80u16, 0u16, None),
            ("B", "198.18.100.10", 80, 1, None),
            ("C", "198.18.100.20", 443, 0, Some(1024u16)),
            ("D", "198.18.100.20", 443, 1, Some(1025)),
        ] {
            let client = ip("198.18.200.9");
            let cport = (40000..50000u16)
                .find(|&p| {
                    client_owner(&client, p, 2) == owner
                        && !flows.iter().any(|f: &(_, _, _, _, u16, _)| f.1 == p)
                })
                .unwrap();
            flows.push((name, cport, ip(vip), vport, owner, lport));
        }
        let client = ip("198.18.200.9");

        let mut fwd: Vec<Vec<u8>> = Vec::new();
        let mut replies: Vec<Vec<u8>> = Vec::new();
        // Frames that arrive at a worker other than their owner: the client
        // packets of worker 1's flows (all on queue 0) and the replies of
        // worker 0's flows (all on queue 1).
        let mut handed = 0u64;
        for &(_, cport, vip, vport, owner, lport) in &flows {
            let key = tcp_key(client, cport, vip, vport);
            let backend = snap.which_backend(&key).expect("a backend").key;
            let seg = |sport, dport, seq, ack, flags, payload: &[u8]| {
                segment(sport, dport, seq, ack, flags, 65535, Vec::new(), payload)
            };
            let c = |s: &gen::TcpSeg| gen::tcp(&eth, client, vip, 64, 1, s);
            fwd.push(c(&seg(cport, vport, 1000, 0, tcp_flags::SYN, b"")));
            fwd.push(c(&seg(cport, vport, 1001, 5001, tcp_flags::ACK, b"")));
            fwd.push(c(&seg(
                cport,
                vport,
                1001,
                5001,
                tcp_flags::ACK | tcp_flags::PSH,
                b"GET / HTTP/1.0\r\n\r\n",
            )));
            // The backend answers the client (NAT) or our local address and
            // port (FullNAT).
            let (to, to_port) = match lport {
                Some(p) => (local, p),
                None => (client, cport),
            };
            let b = |s: &gen::TcpSeg| gen::tcp(&eth, backend.addr, to, 64, 7, s);
            replies.push(b(&seg(
                backend.port,
                to_port,
                5000,
                1001,
                tcp_flags::SYN | tcp_flags::ACK,
                b"",
            )));
            replies.push(b(&seg(
                backend.port,
                to_port,
                5001,
                1019,
                tcp_flags::ACK | tcp_flags::PSH,
                b"HTTP/1.0 200 OK\r\n\r\n",
            )));
            handed += if owner == 1 { 3 } else { 2 };
        }

        let t0 = 1_700_000_000_000_000_000u64;
        let write = |path: &Path, frames: &[Vec<u8>]| {
            write_pcap(path, (t0..).step_by(1000).zip(frames));
        };
        let filler = gen::arp_request(GATEWAY_MAC, ip("198.18.5.1"), ip("198.18.5.5"));
        let mut q1: Vec<Vec<u8>> = vec![filler; 200_000];
        q1.extend(replies.iter().cloned());
        let (q0_path, q1_path) = (dir.path().join("q0.pcap"), dir.path().join("q1.pcap"));
        write(&q0_path, &fwd);
        write(&q1_path, &q1);
        let mut merged = fwd.clone();
        merged.extend(q1.iter().cloned());
        let merged_path = dir.path().join("merged.pcap");
        write(&merged_path, &merged);

        let (o0, o1) = (dir.path().join("o0.pcap"), dir.path().join("o1.pcap"));
        let run_cfg = dir.path().join("two.toml");
        let port = format!(
            "net_pcap0,rx_pcap={},rx_pcap={},tx_pcap={},tx_pcap={}",
            q0_path.display(),
            q1_path.display(),
            o0.display(),
            o1.display()
        );
        config_with(
            &base,
            "workers = 2\nmempool_size = 8191\nmempool_cache = 64\nidle_exit_ms = 500\nstats_interval = 0\n",
            &[port],
            &run_cfg,
        );
        let json = dir.path().join("two.json");
        let mut cmd = bin!();
        cmd.arg("run")
            .arg("--config")
            .arg(&run_cfg)
            .arg("--stats-json")
            .arg(&json)
            .arg("--")
            .args(eal_args("two"));
        let o = run_bounded(cmd, Duration::from_secs(120));
        remove_runtime_dir("two");
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let doc: serde_json::Value = read_json(&json);

        let (want, _) = replay_pcap("two", &base, &merged_path, dir.path());
        let (w0, w1) = (frames(&o0), frames(&o1));
        assert_eq!(
            want.len(),
            20,
            "replay rewrites every frame of the four flows"
        );
        let mut got: Vec<Vec<u8>> = w0.iter().chain(w1.iter()).cloned().collect();
        let mut want_sorted = want.clone();
        got.sort();
        want_sorted.sort();
        assert!(
            got == want_sorted,
            "two workers give replay's frames ({} vs {}): {stdout}",
            got.len(),
            want.len()
        );
        // Each frame left through the tx queue of the worker owning it:
        // A's and C's (5 frames each) through worker 0's, B's and D's
        // through worker 1's.
        assert_eq!((w0.len(), w1.len()), (10, 10), "{stdout}");
        let d = &doc["dpdk"];
        assert_eq!(d["workers"], 2);
        assert_eq!(
            d["handovers"].as_u64(),
            Some(handed),
            "B's and D's client packets and A's and C's replies were handed over: {stdout}"
        );
        assert_eq!(d["handovers_received"], d["handovers"]);
        assert_eq!(d["handover_dropped"], 0);
        assert_eq!(doc["dropped"]["no_conn"], 0, "{stdout}");
        assert!(stdout.contains("handovers    10 "), "{stdout}");
    }

    /// An endless vdev (infinite_rx, tx dropped) stops on a signal only.
    fn stops_on(signal: &str, tag: &str) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("endless.toml");
        let port = format!(
            "net_pcap0,rx_pcap={},infinite_rx=1",
            root().join("pcap-fixtures/nat-v4.in.pcap").display()
        );
        config_with(
            &root().join(fixtures::CONFIG_PATH),
            "mempool_size = 4095\nstats_interval = 1\n",
            &[port],
            &cfg,
        );
        let mut cmd = bin!();
        // The rate lines are logged at info (to stderr).
        cmd.env("RUST_LOG", "info")
            .arg("run")
            .arg("--config")
            .arg(&cfg)
            .arg("--")
            .args(eal_args(tag))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("spawn");
        let pid = child.id();
        // Let it start and forward for a while, then signal it.
        std::thread::sleep(Duration::from_millis(2500));
        let k = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("kill(1)");
        assert!(k.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut child = child;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("rampart did not stop within 20 s of SIG{signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let o = child.wait_with_output().unwrap();
        remove_runtime_dir(tag);
        let stdout = String::from_utf8_lossy(&o.stdout);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            status.success(),
            "SIG{signal}: exit {status}\n{stdout}\n{stderr}"
        );
        assert!(stdout.contains("clock monotonic"), "{stdout}");
        assert!(stdout.contains("stopped: signal"), "{stdout}");
        assert!(
            stderr.contains("rate  rx"),
            "a rate line every second: {stderr}"
        );
        let rx: u64 = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("packets      in "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(rx > 1000, "forwarded before the signal: {stdout}");
        assert!(stdout.contains("tx_dropped 0"), "{stdout}");
    }

    #[test]
    fn sigint_stops_and_prints_the_summary() {
        stops_on("INT", "sigint");
    }

    #[test]
    fn sigterm_stops_and_prints_the_summary() {
        stops_on("TERM", "sigterm");
    }

    /// Seconds of CPU (user + system) the process `pid` has used.
    fn cpu_seconds(pid: u32) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
        // Fields after the command name, which is in parentheses.
        let rest = &stat[stat.rfind(')').expect("comm") + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        let hz = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .expect("getconf");
        let hz: f64 = String::from_utf8_lossy(&hz.stdout).trim().parse().unwrap();
        ticks / hz
    }

    /// A run over a port that never receives (net_ring), for `window` after
    /// a warm-up: returns (CPU seconds per second over the window, the
    /// stats JSON after SIGTERM).
    fn quiet_run(tag: &str, dpdk_extra: &str, window: Duration) -> (f64, serde_json::Value) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("quiet.toml");
        let json = dir.path().join("quiet.json");
        config_with(
            &root().join(fixtures::CONFIG_PATH),
            &format!("mempool_size = 4095\nstats_interval = 0\n{dpdk_extra}"),
            &["net_ring0".to_string()],
            &cfg,
        );
        let mut cmd = bin!();
        cmd.arg("run")
            .arg("--config")
            .arg(&cfg)
            .arg("--stats-json")
            .arg(&json)
            .arg("--")
            .args(eal_args(tag))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        let pid = child.id();
        std::thread::sleep(Duration::from_millis(800));
        let (c0, t0) = (cpu_seconds(pid), Instant::now());
        std::thread::sleep(window);
        let load = (cpu_seconds(pid) - c0) / t0.elapsed().as_secs_f64();
        let k = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        assert!(k.expect("kill(1)").success());
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("rampart did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let o = child.wait_with_output().unwrap();
        remove_runtime_dir(tag);
        assert!(
            o.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let stats = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        (load, stats)
    }

    #[test]
    fn idle_sleep_spares_the_cpu_of_a_quiet_port() {
        let window = Duration::from_millis(1500);
        let (polling, ps) = quiet_run("busy", "", window);
        let (sleeping, ss) = quiet_run("rest", "idle_sleep_us = 1000\nidle_polls = 64\n", window);
        let sleeps =
            |v: &serde_json::Value| v["events"]["idle_sleeps"].as_u64().unwrap_or(u64::MAX);
        assert_eq!(sleeps(&ps), 0, "pure polling never sleeps: {ps}");
        // At most one sleep per millisecond of the run.
        let n = sleeps(&ss);
        eprintln!("CPU per second: polling {polling:.2}, sleeping {sleeping:.2} ({n} sleeps)");
        assert!(n > 200 && n < 10_000, "idle_sleeps {n}: {ss}");
        assert!(
            sleeping < 0.3 && sleeping * 4.0 < polling,
            "CPU per second: polling {polling:.2}, sleeping {sleeping:.2}"
        );
    }

    /// Asserts a failed start: exit 1, no panic, and the cause in one line
    /// of our own, the last one (EAL's log, and getopt's complaints, which
    /// name the program `rampart` too, may come before it).
    fn fails_with(o: &Output, want: &str) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "exit code; stderr:\n{err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
        let last = err.lines().last().unwrap_or("");
        assert!(last.starts_with("rampart: "), "last line: {err}");
        assert!(last.contains(want), "`{last}` lacks `{want}`");
        let ours = err
            .lines()
            .filter(|l| l.starts_with("rampart: ") && !l.contains(" option"))
            .count();
        assert_eq!(ours, 1, "one line of our own: {err}");
    }

    fn start(tag: &str, dpdk: &str, ports: &[String], eal: Option<Vec<String>>) -> Output {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        config_with(&root().join(fixtures::CONFIG_PATH), dpdk, ports, &cfg);
        let mut cmd = bin!();
        cmd.arg("run")
            .arg("--config")
            .arg(&cfg)
            .arg("--")
            .args(eal.unwrap_or_else(|| eal_args(tag)));
        let o = run_bounded(cmd, Duration::from_secs(60));
        remove_runtime_dir(tag);
        o
    }

    #[test]
    fn startup_failures_end_in_one_line_with_a_hint() {
        let input = root().join("pcap-fixtures/nat-v4.in.pcap");
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.pcap");
        let pcap = |extra: &str| {
            format!(
                "net_pcap0,rx_pcap={},tx_pcap={}{extra}",
                input.display(),
                out.display()
            )
        };

        // No [[port]].
        let o = start("noport", "", &[], None);
        fails_with(&o, "at least one [[port]]");

        // A missing input file, caught before EAL.
        let o = start(
            "nofile",
            "",
            &["net_pcap0,rx_pcap=/nonexistent/in.pcap".to_string()],
            None,
        );
        fails_with(&o, "rx_pcap file `/nonexistent/in.pcap` cannot be read");

        // A vdev no driver knows: EAL's device probe fails.
        let o = start("badvdev", "", &["net_bogus0,x=1".to_string()], None);
        fails_with(&o, "EAL init failed");
        fails_with(&o, "hint:");

        // A tx file in a missing directory: the pcap driver cannot open it.
        let o = start(
            "badtx",
            "",
            &[format!(
                "net_pcap0,rx_pcap={},tx_pcap=/nonexistent/out.pcap",
                input.display()
            )],
            None,
        );
        fails_with(&o, "hint:");

        // Two workers on a pcap port that has one queue.
        let o = start("queues", "workers = 2\n", &[pcap("")], None);
        fails_with(&o, "one rx queue per rx_pcap=");

        // A pool too small for an infinite_rx capture (it needs the whole
        // file in mbufs): the rx queue cannot be set up.
        let big = dir.path().join("big.pcap");
        gen_traffic(&big);
        let o = start(
            "pool",
            "mempool_size = 1023\nmempool_cache = 0\n",
            &[format!("net_pcap0,rx_pcap={},infinite_rx=1", big.display())],
            None,
        );
        fails_with(&o, "rx queue 0");
        fails_with(&o, "mempool_size");

        // EAL refuses its arguments.
        let mut bad = eal_args("badarg");
        bad.push("--definitely-not-an-eal-option".into());
        let o = start("badarg", "", &[pcap("")], Some(bad));
        fails_with(&o, "EAL init failed");

        // No hugepages where EAL looks for them.
        let hp = vec![
            "--no-pci".to_string(),
            "--no-shconf".into(),
            "--no-telemetry".into(),
            "--huge-dir".into(),
            dir.path().display().to_string(),
            "--file-prefix".into(),
            prefix("nohuge"),
        ];
        let o = start("nohuge", "", &[pcap("")], Some(hp));
        fails_with(&o, "EAL init failed");
    }

    /// `rampart run` on a live port: net_af_packet on a veth hanging off a
    /// bridge that joins a client and a backend namespace, real kernel TCP
    /// on both sides (tests/netns/af_packet.sh builds the bed, tears it
    /// down whatever happens, and checks the network side: the client's ARP
    /// for the VIP answered with rampart's MAC, three HTTP requests to the
    /// VIP answered by the backend through rampart, exit 0 on SIGINT).
    /// Here: the summary and counters of that run.
    #[test]
    fn af_packet_on_a_veth_answers_arp_and_forwards_kernel_tcp() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("timeout");
        // TERM first (the script's trap tears the bed down), KILL 15 s later.
        cmd.args(["-k", "15", "150", "bash"])
            .arg(root().join("tests/netns/af_packet.sh"))
            .arg(env!("CARGO_BIN_EXE_rampart"))
            .arg(dir.path());
        let o = run_bounded(cmd, Duration::from_secs(180));
        let log = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "tests/netns/af_packet.sh:\n{log}");
        let stdout = std::fs::read_to_string(dir.path().join("run.out")).unwrap();
        assert!(
            stdout.contains("(net_af_packet)") && stdout.contains("clock monotonic"),
            "{stdout}"
        );
        assert!(stdout.contains("stopped: signal"), "{stdout}");
        let summary_in: u64 = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("packets      in "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("run.json")).unwrap())
                .unwrap();
        // Three connections, one per request, each at least SYN, ACK,
        // request, FIN and ACK from the client and as many from the backend.
        assert!(
            doc["connections"]["new"].as_u64() >= Some(3),
            "three new connections: {stdout}"
        );
        assert_eq!(doc["rx_packets"].as_u64(), Some(summary_in), "{stdout}");
        let tx = doc["tx_packets"].as_u64().unwrap_or(0);
        assert!(tx >= 24, "forwarded both ways ({tx} packets): {stdout}");
        let arp = doc["events"]["arp_replies"].as_u64().unwrap_or(0);
        assert!(arp >= 3, "answered the ARP requests ({arp}): {stdout}");
        let d = &doc["dpdk"];
        assert_eq!(d["stopped_by"], "signal");
        assert_eq!(d["tx_dropped"], 0, "{stdout}");
        assert_eq!(d["ports"][0]["driver"], "net_af_packet", "{stdout}");
        assert!(
            d["ports"][0]["opackets"].as_u64() >= Some(tx),
            "the port sent what the datapath forwarded: {stdout}"
        );
    }

    #[test]
    fn clock_packets_needs_pcap_ports() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        config_with(
            &root().join(fixtures::CONFIG_PATH),
            "",
            &["net_ring0".to_string()],
            &cfg,
        );
        let mut cmd = bin!();
        cmd.arg("run")
            .arg("--config")
            .arg(&cfg)
            .args(["--clock", "packets", "--"])
            .args(eal_args("clock"));
        let o = run_bounded(cmd, Duration::from_secs(30));
        fails_with(&o, "--clock packets needs capture timestamps");
    }

    // ---- the control thread: API socket, /metrics, reloads ------------------

    /// A `rampart run` in the background. Its stdout comes line by line
    /// through a channel (and is kept), its stderr is collected; dropped, it
    /// kills a run still going (a failed assertion must not leave it
    /// forwarding) and removes EAL's runtime directory.
    struct Background {
        child: std::process::Child,
        tag: String,
        lines: std::sync::mpsc::Receiver<String>,
        stdout: Vec<String>,
        stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
    }

    impl Background {
        fn spawn(mut cmd: Command, tag: &str) -> Background {
            let mut child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn rampart");
            let out = child.stdout.take().expect("stdout");
            let mut err = child.stderr.take().expect("stderr");
            let (tx, lines) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in std::io::BufRead::lines(std::io::BufReader::new(out)) {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            let stderr = std::thread::spawn(move || {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut err, &mut b).ok();
                b
            });
            Background {
                child,
                tag: tag.to_string(),
                lines,
                stdout: Vec::new(),
                stderr: Some(stderr),
            }
        }

        fn signal(&self, sig: libc::c_int) {
            let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
            // SAFETY: kill(2) with our own child's pid (not yet reaped, so
            // the pid cannot have been reused) and a plain signal number.
            let rc = unsafe { libc::kill(pid, sig) };
            assert_eq!(rc, 0, "kill({pid}, {sig})");
        }

        /// The first stdout line containing `want`, waiting at most `limit`.
        fn line_with(&mut self, want: &str, limit: Duration) -> String {
            let deadline = Instant::now() + limit;
            if let Some(l) = self.stdout.iter().find(|l| l.contains(want)) {
                return l.clone();
            }
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.lines.recv_timeout(left) {
                    Ok(l) => {
                        self.stdout.push(l.clone());
                        if l.contains(want) {
                            return l;
                        }
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        panic!(
                            "no `{want}` on stdout within {limit:?}:\n{}",
                            self.stdout.join("\n")
                        )
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        let (status, out, err) = self.finish(Duration::from_secs(20));
                        panic!("rampart run ended ({status}) before `{want}`:\n{out}\n{err}");
                    }
                }
            }
        }

        /// Waits (at most `limit`, then kills it and fails) for the exit;
        /// returns the status, the whole stdout and the stderr.
        fn finish(&mut self, limit: Duration) -> (std::process::ExitStatus, String, String) {
            let deadline = Instant::now() + limit;
            let status = loop {
                if let Some(s) = self.child.try_wait().expect("wait") {
                    break s;
                }
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("rampart run did not stop within {limit:?}");
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            // The process is gone: the pipes are at their end.
            while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
                self.stdout.push(l);
            }
            let err = self
                .stderr
                .take()
                .and_then(|h| h.join().ok())
                .unwrap_or_default();
            (
                status,
                self.stdout.join("\n"),
                String::from_utf8_lossy(&err).to_string(),
            )
        }
    }

    impl Drop for Background {
        fn drop(&mut self) {
            if matches!(self.child.try_wait(), Ok(None)) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
            remove_runtime_dir(&self.tag);
        }
    }

    /// `rampart ctl --socket SOCK ARGS`, bounded.
    fn ctl(sock: &Path, args: &[&str]) -> Output {
        let mut cmd = bin!();
        cmd.arg("ctl").arg("--socket").arg(sock).args(args);
        run_bounded(cmd, Duration::from_secs(30))
    }

    /// `rampart ctl ... --json`: the result, which must have come.
    fn ctl_json(sock: &Path, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let o = ctl(sock, &all);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "ctl {args:?}: {}\n{out}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ctl {args:?}: {e}: {out}"))
    }

    /// Asks `status` until `done` holds, for at most `limit`; the status
    /// that satisfied it.
    fn status_until(
        sock: &Path,
        limit: Duration,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let s = ctl_json(sock, &["status"]);
            if done(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "{what} within {limit:?}: {s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `GET /metrics` from `addr`, parsed as the Prometheus text format.
    fn scrape(addr: &str) -> prometheus_parse::Scrape {
        let sa: std::net::SocketAddr = addr.parse().unwrap();
        // One request per connection: the server closes after the answer.
        let (status, headers, body) = http_get(sa, "/metrics");
        assert!(status.starts_with("HTTP/1.1 200 "), "{status}\n{headers}");
        prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
            .unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    /// The sum of every sample of `metric` (over its labels).
    fn metric_sum(s: &prometheus_parse::Scrape, metric: &str) -> f64 {
        use prometheus_parse::Value;
        let v: Vec<f64> = s
            .samples
            .iter()
            .filter(|x| x.metric == metric)
            .map(|x| match x.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                ref other => panic!("{metric}: {other:?}"),
            })
            .collect();
        assert!(!v.is_empty(), "no {metric} in the scrape");
        v.iter().sum()
    }

    /// A TCP port on 127.0.0.1 nobody listens on right now
    /// (`control.prometheus` refuses port 0).
    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap()
    }

    /// A VIP the reloads add (198.18.100.200:8080, one backend of weight
    /// `weight`), in the file after the reference config's nine VIPs.
    fn added_vip(weight: u32) -> String {
        format!(
            "\n[[vip]]\nname = \"added\"\naddress = \"198.18.100.200\"\nport = 8080\nprotocol = \"tcp\"\nmode = \"nat\"\n\n[[vip.backend]]\naddress = \"198.18.1.13\"\nport = 8080\nweight = {weight}\n"
        )
    }

    /// `rampart run` on an endless vdev with the control API on a socket in
    /// a temporary directory and /metrics on a loopback port: `ctl status`
    /// and /metrics see the traffic; SIGHUP reloads the edited file (the
    /// new VIP shows in `ctl vip list`), refuses an invalid one and keeps
    /// the running config (the refusal names the file and the key); `ctl
    /// reload` re-reads it; SIGINT ends the run with the socket removed and
    /// the reloads in the summary.
    #[test]
    fn run_serves_ctl_metrics_and_reloads_on_sighup() {
        let tag = "ctl";
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("ctl.sock");
        let prom = format!("127.0.0.1:{}", free_port());
        let control = format!("socket = \"{}\"\nprometheus = \"{prom}\"\n", sock.display());
        let port = format!(
            "net_pcap0,rx_pcap={},infinite_rx=1",
            root().join("pcap-fixtures/nat-v4.in.pcap").display()
        );
        let reference = std::fs::read_to_string(root().join(fixtures::CONFIG_PATH)).unwrap();
        let base = dir.path().join("base.toml");
        let cfg = dir.path().join("ctl.toml");
        // The file rampart reads: the reference config plus `extra` VIPs,
        // with the same [control], [dpdk] and [[port]] every time.
        let write_cfg = |extra: &str| {
            std::fs::write(&base, format!("{reference}{extra}")).unwrap();
            config_with_control(
                &base,
                &control,
                "mempool_size = 4095\nstats_interval = 0\n",
                std::slice::from_ref(&port),
                &cfg,
            );
        };
        write_cfg("");
        let json = dir.path().join("ctl.json");
        let mut cmd = bin!();
        // Reloads are logged at info.
        cmd.env("RUST_LOG", "info")
            .arg("run")
            .arg("--config")
            .arg(&cfg)
            .arg("--stats-json")
            .arg(&json)
            .arg("--")
            .args(eal_args(tag));
        let started = Instant::now();
        let mut run = Background::spawn(cmd, tag);
        let line = run.line_with("  prometheus http://", Duration::from_secs(20));
        let addr = line
            .trim()
            .strip_prefix("prometheus http://")
            .and_then(|l| l.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("{line}"))
            .to_string();
        assert_eq!(addr, prom, "{line}");
        let sock_line = format!("  control socket {}", sock.display());
        assert!(
            run.stdout.contains(&sock_line),
            "{sock_line}: {:?}",
            run.stdout
        );
        {
            use std::os::unix::fs::{FileTypeExt, PermissionsExt};
            let meta = std::fs::symlink_metadata(&sock).expect("the socket is in place");
            assert!(meta.file_type().is_socket());
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "owner only");
        }
        let up = started.elapsed();

        // Status: one worker, the generation of the start, traffic.
        let s0 = ctl_json(&sock, &["status"]);
        assert!(s0["workers"].as_u64() >= Some(1), "{s0}");
        assert_eq!(s0["generation"], 0, "{s0}");
        assert_eq!(s0["reloads"], 0, "{s0}");
        assert_eq!(s0["config"], cfg.display().to_string(), "{s0}");
        let rx0 = s0["rx_packets"].as_u64().expect("rx_packets");
        status_until(&sock, Duration::from_secs(10), "rx_packets grows", |s| {
            s["rx_packets"].as_u64() > Some(rx0.max(1))
        });
        let vips0 = ctl_json(&sock, &["vip", "list"]);
        let names = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .unwrap_or_else(|| panic!("vip list is an array: {v}"))
                .iter()
                .filter(|x| x["retired"] == false)
                .map(|x| x["name"].as_str().unwrap_or("?").to_string())
                .collect()
        };
        let names0 = names(&vips0);
        assert!(names0.iter().any(|n| n == "web"), "{vips0}");
        assert!(!names0.iter().any(|n| n == "added"), "{vips0}");

        // The connections of the looping capture (VIP web, one worker) and
        // the per-VIP counters.
        let deadline = Instant::now() + Duration::from_secs(10);
        let conns = loop {
            let c = ctl_json(&sock, &["conns"]);
            if c["total"].as_u64() >= Some(1) || Instant::now() > deadline {
                break c;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let rows = conns["conns"].as_array().expect("conns rows");
        assert!(!rows.is_empty(), "a connection of the capture: {conns}");
        assert!(
            rows.iter().all(|r| r["vip"] == "web" && r["worker"] == 0),
            "{conns}"
        );
        let stats = ctl_json(&sock, &["stats"]);
        assert!(
            stats["workers"][0]["rx_packets"].as_u64() > Some(0),
            "{stats}"
        );
        let web = stats["vips"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["name"] == "web"))
            .unwrap_or_else(|| panic!("web in stats: {stats}"));
        assert!(web["packets_in"].as_u64() > Some(0), "{web}");

        // Metrics: the workers' rx counters, the generation.
        let m = scrape(&addr);
        assert!(
            metric_sum(&m, "rampart_rx_packets_total") > 0.0,
            "rx in /metrics"
        );
        assert_eq!(metric_sum(&m, "rampart_config_generation"), 0.0);
        // The port's NIC counters, read live, and the listeners' refusals.
        for name in [
            "rampart_port_rx_missed_total",
            "rampart_port_rx_nombuf_total",
            "rampart_port_rx_errors_total",
            "rampart_port_tx_errors_total",
        ] {
            assert!(
                m.samples
                    .iter()
                    .any(|x| x.metric == name && x.labels.get("port") == Some("net_pcap0")),
                "{name}{{port=\"net_pcap0\"}} in /metrics"
            );
        }
        assert_eq!(metric_sum(&m, "rampart_listener_refusals_total"), 0.0);
        let ports = &stats["ports"];
        assert_eq!(ports[0]["port"], "net_pcap0", "{stats}");

        // SIGHUP with a new VIP in the file.
        write_cfg(&added_vip(3));
        run.signal(libc::SIGHUP);
        let s1 = status_until(&sock, Duration::from_secs(20), "the SIGHUP reload", |s| {
            s["reloads"] == 1 || s["reload_failures"] != 0
        });
        assert_eq!(s1["reload_failures"], 0, "{s1}");
        assert!(s1["last_reload_error"].is_null(), "{s1}");
        let gen1 = s1["generation"].as_u64().unwrap();
        assert!(gen1 >= 1, "{s1}");
        let vips1 = ctl_json(&sock, &["vip", "list"]);
        let mut want = names0.clone();
        want.push("added".to_string());
        assert_eq!(names(&vips1), want, "{vips1}");
        let added = vips1
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "added")
            .unwrap();
        assert_eq!(added["address"], "198.18.100.200:8080", "{added}");
        assert_eq!(
            added["backends"][0]["address"], "198.18.1.13:8080",
            "{added}"
        );
        assert_eq!(added["backends"][0]["weight"], 3, "{added}");
        assert_eq!(metric_sum(&scrape(&addr), "rampart_reloads_total"), 1.0);

        // SIGHUP with an invalid file: refused, the running config stays.
        write_cfg(&added_vip(70_000));
        run.signal(libc::SIGHUP);
        let s2 = status_until(&sock, Duration::from_secs(20), "the refusal", |s| {
            s["reload_failures"] == 1
        });
        assert_eq!(s2["reloads"], 1, "{s2}");
        assert_eq!(s2["generation"].as_u64(), Some(gen1), "{s2}");
        let why = s2["last_reload_error"].as_str().unwrap_or_default();
        assert!(
            why.contains(&cfg.display().to_string())
                && why.contains(&format!(
                    "vip[{}].backend[0].weight",
                    rampart_testkit::fixtures::config().vips.len()
                )),
            "the file and the key: {s2}"
        );
        assert_eq!(
            ctl_json(&sock, &["vip", "list"]),
            vips1,
            "the running config stays"
        );
        assert_eq!(
            metric_sum(&scrape(&addr), "rampart_reload_failures_total"),
            1.0
        );

        // The reference file back, reloaded through the API: `added` goes.
        write_cfg("");
        let o = ctl(&sock, &["reload"]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "ctl reload: {out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            out.starts_with("reloaded: generation ") && out.contains("removed added"),
            "{out}"
        );
        let s3 = ctl_json(&sock, &["status"]);
        assert_eq!(
            (&s3["reloads"], &s3["reload_failures"]),
            (&2.into(), &1.into()),
            "{s3}"
        );
        assert!(s3["last_reload_error"].is_null(), "{s3}");
        assert!(s3["generation"].as_u64() > Some(gen1), "{s3}");
        assert_eq!(names(&ctl_json(&sock, &["vip", "list"])), names0);
        assert!(
            s3["rx_packets"].as_u64() > s0["rx_packets"].as_u64(),
            "{s3}"
        );

        // SIGINT: exit 0, the socket gone, the reloads in the summary.
        run.signal(libc::SIGINT);
        let (status, stdout, stderr) = run.finish(Duration::from_secs(20));
        let total = started.elapsed();
        assert!(status.success(), "exit {status}\n{stdout}\n{stderr}");
        assert!(stdout.contains("stopped: signal"), "{stdout}");
        assert!(!sock.exists(), "the socket is removed at exit");
        assert!(
            stderr.contains("reloaded: generation 1,") && stderr.contains("added [added]"),
            "{stderr}"
        );
        assert!(
            stderr.contains("reload refused, the running config stays: ")
                && stderr.contains(&format!(
                    "vip[{}].backend[0].weight",
                    rampart_testkit::fixtures::config().vips.len()
                )),
            "{stderr}"
        );
        // The API's reload is logged with who asked for it.
        // SAFETY: no preconditions.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let who = format!("ctl: uid {uid} gid {gid} pid ");
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&who) && l.ends_with(": reload: ok")),
            "the API reload in the log: {stderr}"
        );
        let doc: serde_json::Value = read_json(&json);
        assert_eq!(doc["reloads"], 2, "{doc}");
        assert_eq!(doc["health_events"], serde_json::json!([]), "{doc}");
        assert!(
            doc["rx_packets"].as_u64() >= s3["rx_packets"].as_u64(),
            "{doc}"
        );
        eprintln!("control API up after {up:?}, whole run {total:?}");
    }

    /// The control listeners at start-up: a socket another process listens
    /// on, or a path that is not a socket, is refused in one line naming
    /// the path (and the other process keeps its socket); a taken metrics
    /// port is refused with the address (the API socket that was already up
    /// is removed again); a stale socket file nobody listens on is taken
    /// over and removed at exit.
    #[test]
    fn run_refuses_control_listeners_it_cannot_take() {
        let dir = tempfile::tempdir().unwrap();
        let input = root().join("pcap-fixtures/nat-v4.in.pcap");
        let run = |tag: &str, control: &str| {
            let cfg = dir.path().join(format!("{tag}.toml"));
            let port = format!(
                "net_pcap0,rx_pcap={},tx_pcap={}",
                input.display(),
                dir.path().join(format!("{tag}.out.pcap")).display()
            );
            config_with_control(
                &root().join(fixtures::CONFIG_PATH),
                control,
                TEST_DPDK,
                &[port],
                &cfg,
            );
            let mut cmd = bin!();
            cmd.arg("run")
                .arg("--config")
                .arg(&cfg)
                .arg("--")
                .args(eal_args(tag));
            let o = run_bounded(cmd, Duration::from_secs(60));
            remove_runtime_dir(tag);
            o
        };
        let socket_only = |p: &Path| format!("socket = \"{}\"\nprometheus = \"\"\n", p.display());

        // A live socket: another listener holds it.
        let live = dir.path().join("live.sock");
        let held = std::os::unix::net::UnixListener::bind(&live).unwrap();
        let o = run("sockinuse", &socket_only(&live));
        fails_with(&o, &format!("control socket {}: in use", live.display()));
        held.set_nonblocking(true).unwrap();
        let _c = std::os::unix::net::UnixStream::connect(&live).expect("still there");
        assert!(held.accept().is_ok(), "the other listener keeps its socket");

        // Not a socket.
        let file = dir.path().join("file.sock");
        std::fs::write(&file, "keep me").unwrap();
        let o = run("sockfile", &socket_only(&file));
        fails_with(
            &o,
            &format!(
                "control socket {}: exists and is not a socket",
                file.display()
            ),
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

        // The metrics port taken: the API socket, up first, goes again.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let sock = dir.path().join("api.sock");
        let o = run(
            "promtaken",
            &format!("socket = \"{}\"\nprometheus = \"{addr}\"\n", sock.display()),
        );
        fails_with(&o, &format!("prometheus listen {addr}"));
        assert!(!sock.exists(), "the API socket is removed on the way out");

        // A stale socket file (its listener gone) is replaced, then removed.
        let stale = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        assert!(stale.exists());
        let o = run("sockstale", &socket_only(&stale));
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            stdout.contains(&format!("  control socket {}\n", stale.display())),
            "{stdout}"
        );
        assert!(stdout.contains("stopped: idle"), "{stdout}");
        assert!(!stale.exists(), "removed at exit");
    }
}

#[cfg(not(feature = "dpdk"))]
#[test]
fn run_without_the_feature_says_how_to_build() {
    let mut cmd = bin!();
    cmd.arg("run")
        .arg("--config")
        .arg(root().join("configs/rampart.toml"));
    let o = run_bounded(cmd, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("--features dpdk"), "{err}");
    assert!(err.contains("scripts/setup-dpdk.sh"), "{err}");
}

#[cfg(not(feature = "dpdk"))]
#[test]
fn bench_without_the_feature_says_how_to_build() {
    let mut cmd = bin!();
    cmd.args(["bench", "--seconds", "1"]);
    let o = run_bounded(cmd, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("--features dpdk"), "{err}");
}
