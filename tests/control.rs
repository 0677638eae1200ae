//! The control side through `rampart replay`, with real packets: a reload in
//! the middle of a capture (established flows keep their backend, new ones
//! follow the new table, nothing is lost at the swap), and health checks
//! whose probes are answered by backend SYN-ACKs and RSTs in the capture.

use std::path::Path;

use rampart::config;
use rampart::control::health::{Checker, ProbeParams, Target};
use rampart::flow::{proto, tcp_flags, Addr, FlowKey, Mac};
use rampart::gen::{self, TcpSeg};
use rampart::maglev::BackendKey;
use rampart::probe::{ProbeOrder, ProbeOutcome, ProbeResult};
use rampart::replay::REPLAY_PROBE_KEY;
use rampart::snapshot::{BackendState, Snapshot};

use rampart_testkit::common::{failed, frames as read_pcap, output, root, write_pcap, Replay};
use rampart_testkit::fixtures::eth;
use rampart_testkit::fixtures::net::{
    parse as a, GATEWAY_MAC as CLIENT_MAC, NODE4 as NODE, NODE_MAC, WEB4 as VIP,
};
use rampart_testkit::rampart_bin as bin;
use rampart_testkit::toml::{self, Vip};

const T0: u64 = 1_700_000_000 * 1_000_000_000;
const MS: u64 = 1_000_000;

/// (destination address, destination port, TCP flags, source address) of
/// an IPv4 TCP frame.
fn tcp_fields(f: &[u8]) -> (Addr, u16, u8, Addr) {
    let ip = &f[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let l4 = &ip[ihl..];
    (
        Addr::from_v4([ip[16], ip[17], ip[18], ip[19]]),
        u16::from_be_bytes([l4[2], l4[3]]),
        l4[13],
        Addr::from_v4([ip[12], ip[13], ip[14], ip[15]]),
    )
}

fn client_syn(client: Addr, sport: u16) -> Vec<u8> {
    gen::tcp(
        &eth(CLIENT_MAC, NODE_MAC),
        client,
        VIP,
        64,
        1,
        &TcpSeg {
            sport,
            dport: 80,
            seq: 1000,
            flags: tcp_flags::SYN,
            window: 65535,
            ..TcpSeg::default()
        },
    )
}

fn client_data(client: Addr, sport: u16) -> Vec<u8> {
    gen::tcp(
        &eth(CLIENT_MAC, NODE_MAC),
        client,
        VIP,
        64,
        2,
        &TcpSeg {
            sport,
            dport: 80,
            seq: 1001,
            ack: 5001,
            flags: tcp_flags::ACK | tcp_flags::PSH,
            window: 65535,
            payload: b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            ..TcpSeg::default()
        },
    )
}

fn run_replay(
    cfg: &Path,
    input: &Path,
    out: &Path,
    stats: &Path,
    extra: &[&str],
) -> serde_json::Value {
    let args: Vec<&str> = ["--no-progress"].iter().chain(extra).copied().collect();
    let replay = Replay {
        config: cfg,
        input,
        out,
        stats,
        args: &args,
    };
    replay.run(bin!(), "replay").stats
}

// ---- reload during replay --------------------------------------------------

/// The shipped config with `web`'s backends changed: 198.18.1.11 removed,
/// 198.18.1.14 added, 198.18.1.12 re-weighted from 1 to 3.
fn reloaded_text() -> String {
    let t = rampart_testkit::fixtures::CONFIG_TEXT;
    let old11 = "address = \"198.18.1.11\"\nport = 8080\nweight = 1";
    let old12 = "address = \"198.18.1.12\"\nport = 8080\nweight = 1";
    assert!(
        t.contains(old11) && t.contains(old12),
        "configs/rampart.toml changed shape"
    );
    t.replace(old11, "address = \"198.18.1.14\"\nport = 8080\nweight = 1")
        .replace(old12, "address = \"198.18.1.12\"\nport = 8080\nweight = 3")
}

#[test]
fn reload_keeps_established_flows_and_moves_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let new_cfg = dir.path().join("new.toml");
    std::fs::write(&new_cfg, reloaded_text()).unwrap();
    let old_cfg = root().join(rampart_testkit::fixtures::CONFIG_PATH);

    // 300 clients open a connection; the reload comes after their SYNs;
    // then each sends data on its connection and 300 new clients arrive.
    let n = 300u16;
    let old_client = |i: u16| (Addr::from_v4([198, 18, 60, (i % 250) as u8]), 20000 + i);
    let new_client = |i: u16| (Addr::from_v4([198, 18, 61, (i % 250) as u8]), 30000 + i);
    let mut frames = Vec::new();
    let mut ts = T0;
    for i in 0..n {
        let (c, p) = old_client(i);
        frames.push((ts, client_syn(c, p)));
        ts += MS;
    }
    for i in 0..n {
        let (c, p) = old_client(i);
        frames.push((ts, client_data(c, p)));
        let (c, p) = new_client(i);
        frames.push((ts, client_syn(c, p)));
        ts += MS;
    }
    let input = dir.path().join("in.pcap");
    write_pcap(&input, frames);
    let out = dir.path().join("out.pcap");
    let stats = dir.path().join("stats.json");
    let reload = format!("{n}:{}", new_cfg.display());
    let s = run_replay(&old_cfg, &input, &out, &stats, &["--reload", &reload]);

    // Nothing lost at the swap: every frame went out.
    assert_eq!(s["dropped_total"], 0, "{s:#}");
    assert_eq!(s["rx_packets"], 3 * u64::from(n));
    assert_eq!(s["tx_packets"], 3 * u64::from(n));
    assert_eq!(s["reloads"], 1);

    let old_snap =
        Snapshot::build(&config::parse(rampart_testkit::fixtures::CONFIG_TEXT, "old").unwrap());
    let new_conf = config::parse(&reloaded_text(), "new").unwrap();
    let new_snap = Snapshot::derive(&new_conf, Some(&old_snap), |_| BackendState::Up, 1);
    let key = |(c, p): (Addr, u16)| FlowKey {
        src: c,
        dst: VIP,
        sport: p,
        dport: 80,
        proto: proto::TCP,
    };

    let outf = read_pcap(&out);
    assert_eq!(outf.len(), 3 * usize::from(n));
    let removed = a("198.18.1.11");
    let added = a("198.18.1.14");
    let (mut kept_on_removed, mut new_on_added) = (0, 0);
    for i in 0..usize::from(n) {
        let before = tcp_fields(&outf[i]).0;
        let after = tcp_fields(&outf[usize::from(n) + 2 * i]).0;
        let fresh = tcp_fields(&outf[usize::from(n) + 2 * i + 1]).0;
        // The old table decided the SYN; the connection keeps that backend.
        let old_pick = old_snap.which_backend(&key(old_client(i as u16))).unwrap();
        assert_eq!(before, old_pick.key.addr, "client {i} before the reload");
        assert_eq!(
            after, before,
            "client {i}: established flow moved at the reload"
        );
        kept_on_removed += usize::from(before == removed);
        // A new connection follows the new table.
        let new_pick = new_snap.which_backend(&key(new_client(i as u16))).unwrap();
        assert_eq!(fresh, new_pick.key.addr, "new client {i}");
        assert_ne!(fresh, removed, "new client {i} went to the removed backend");
        new_on_added += usize::from(fresh == added);
    }
    assert!(
        kept_on_removed > 20,
        "only {kept_on_removed} flows were on the removed backend"
    );
    assert!(
        new_on_added > 20,
        "only {new_on_added} new flows on the added backend"
    );
    // The re-weighted backend now takes 3/6 of new flows instead of 1/4.
    let on12 = (0..usize::from(n))
        .filter(|i| tcp_fields(&outf[usize::from(n) + 2 * i + 1]).0 == a("198.18.1.12"))
        .count();
    assert!(
        on12 > 110,
        "198.18.1.12 got {on12} of {n} new flows at weight 3 of 6"
    );

    // The removed backend is still counted, as drained, in the stats.
    let web = s["vips"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "web")
        .unwrap();
    let addrs: Vec<_> = web["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(addrs, ["198.18.1.14", "198.18.1.12", "198.18.1.13"]);
}

/// The shipped config with `web`'s source entry changed: 198.19.0.0/16
/// moves from 198.18.1.12 to 198.18.1.11, and 198.19.128.0/17 goes to
/// 198.18.1.13.
fn resteered_text() -> String {
    let t = rampart_testkit::fixtures::CONFIG_TEXT;
    let old = "prefixes = [\"198.19.0.0/16\"]\nbackends = [\"198.18.1.12:8080\"]\n";
    assert!(t.contains(old), "configs/rampart.toml changed shape");
    t.replace(
        old,
        "prefixes = [\"198.19.0.0/16\"]\nbackends = [\"198.18.1.11:8080\"]\n\n\
         [[vip.source]]\nprefixes = [\"198.19.128.0/17\"]\nbackends = [\"198.18.1.13:8080\"]\n",
    )
}

/// A reload that moves source prefixes to other backends: connections
/// opened before it keep their backend; new ones follow the new entries.
#[test]
fn reload_moves_source_prefixes_without_remapping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let new_cfg = dir.path().join("new.toml");
    std::fs::write(&new_cfg, resteered_text()).unwrap();
    let old_cfg = root().join(rampart_testkit::fixtures::CONFIG_PATH);
    let n = 200u16;
    // Clients of both halves of 198.19.0.0/16, all on 198.18.1.12 before.
    let client = |i: u16| {
        let hi = if i % 2 == 0 { 5 } else { 200 };
        (
            Addr::from_v4([198, 19, hi, (i / 2 % 250) as u8 + 1]),
            20000 + i,
        )
    };
    let fresh = |i: u16| (client(i).0, 40000 + i);
    let mut frames = Vec::new();
    let mut ts = T0;
    for i in 0..n {
        let (c, p) = client(i);
        frames.push((ts, client_syn(c, p)));
        ts += MS;
    }
    for i in 0..n {
        let (c, p) = client(i);
        frames.push((ts, client_data(c, p)));
        let (c, p) = fresh(i);
        frames.push((ts, client_syn(c, p)));
        ts += MS;
    }
    let input = dir.path().join("in.pcap");
    write_pcap(&input, frames);
    let out = dir.path().join("out.pcap");
    let stats = dir.path().join("stats.json");
    let reload = format!("{n}:{}", new_cfg.display());
    let s = run_replay(&old_cfg, &input, &out, &stats, &["--reload", &reload]);
    assert_eq!(s["dropped_total"], 0, "{s:#}");
    assert_eq!(s["reloads"], 1);
    assert_eq!(s["events"]["source_steered"], 2 * u64::from(n), "{s:#}");

    let outf = read_pcap(&out);
    assert_eq!(outf.len(), 3 * usize::from(n));
    for i in 0..n {
        let k = usize::from(i);
        let before = tcp_fields(&outf[k]).0;
        let after = tcp_fields(&outf[usize::from(n) + 2 * k]).0;
        let new = tcp_fields(&outf[usize::from(n) + 2 * k + 1]).0;
        assert_eq!(before, a("198.18.1.12"), "client {i} before the reload");
        assert_eq!(after, before, "client {i}: connection moved at the reload");
        let want = if i % 2 == 0 {
            "198.18.1.11"
        } else {
            "198.18.1.13"
        };
        assert_eq!(new, a(want), "client {i}: new connection after the reload");
    }
}

/// The shipped config without VIP `web`, with `extra` prepended.
fn without_web(extra: &str) -> String {
    let t = rampart_testkit::fixtures::CONFIG_TEXT;
    let name = t.find("name = \"web\"\n").unwrap();
    let start = t[..name].rfind("[[vip]]").unwrap();
    let end = name + t[name..].find("[[vip]]").unwrap();
    format!("{extra}\n{}{}", &t[..start], &t[end..])
}

/// A reload that removes VIP `web`, or one of its backends, under each
/// policy: `drain` keeps the connections until their timeout, `reset`
/// answers a client's next segment with a RST and forgets the entry; new
/// connections to a removed VIP are dropped as `vip_removed`.
#[test]
fn removed_vips_and_backends_drain_or_reset() {
    let dir = tempfile::tempdir().unwrap();
    let old_cfg = root().join(rampart_testkit::fixtures::CONFIG_PATH);
    let n = 100u16;
    let client = |i: u16| (Addr::from_v4([198, 18, 62, (i % 250) as u8]), 20000 + i);
    let mut frames = Vec::new();
    let mut ts = T0;
    for i in 0..n {
        let (c, p) = client(i);
        frames.push((ts, client_syn(c, p)));
        ts += MS;
    }
    for i in 0..n {
        let (c, p) = client(i);
        frames.push((ts, client_data(c, p)));
        frames.push((
            ts,
            client_syn(Addr::from_v4([198, 18, 63, (i % 250) as u8]), 30000 + i),
        ));
        ts += MS;
    }
    let input = dir.path().join("in.pcap");
    write_pcap(&input, frames);
    let old_snap =
        Snapshot::build(&config::parse(rampart_testkit::fixtures::CONFIG_TEXT, "old").unwrap());
    let on11: Vec<bool> = (0..n)
        .map(|i| {
            let (c, p) = client(i);
            let k = FlowKey {
                src: c,
                dst: VIP,
                sport: p,
                dport: 80,
                proto: proto::TCP,
            };
            old_snap.which_backend(&k).unwrap().key.addr == a("198.18.1.11")
        })
        .collect();
    let moved = on11.iter().filter(|x| **x).count() as u64;
    assert!(moved > 10);

    let cases = [
        ("vip-drain", without_web("")),
        (
            "vip-reset",
            without_web("[control]\nremoved_vip = \"reset\"\n"),
        ),
        (
            "backend-reset",
            format!(
                "[control]\nremoved_backend = \"reset\"\n\n{}",
                reloaded_text()
            ),
        ),
    ];
    for (name, text) in cases {
        let new_cfg = dir.path().join(format!("{name}.toml"));
        std::fs::write(&new_cfg, &text).unwrap();
        let out = dir.path().join(format!("{name}.pcap"));
        let stats = dir.path().join(format!("{name}.json"));
        let reload = format!("{n}:{}", new_cfg.display());
        let s = run_replay(&old_cfg, &input, &out, &stats, &["--reload", &reload]);
        let outf = read_pcap(&out);
        let n64 = u64::from(n);
        match name {
            "vip-drain" => {
                // Established flows go on to their backends; new ones are refused.
                assert_eq!(s["dropped"]["vip_removed"], n64, "{s:#}");
                assert_eq!(s["tx_packets"], 2 * n64);
                for i in 0..usize::from(n) {
                    assert_eq!(
                        tcp_fields(&outf[usize::from(n) + i]).0,
                        tcp_fields(&outf[i]).0
                    );
                }
                let web = s["vips"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|v| v["name"] == "web")
                    .unwrap();
                assert_eq!(web["retired"], true);
            }
            "vip-reset" => {
                // Each client's data segment comes back as a RST from the VIP.
                assert_eq!(s["dropped"]["vip_removed"], n64, "{s:#}");
                assert_eq!(s["events"]["conn_resets"], n64);
                assert_eq!(s["connections"]["active"], 0);
                for i in 0..usize::from(n) {
                    let (dst, dport, flags, src) = tcp_fields(&outf[usize::from(n) + i]);
                    let (c, p) = client(i as u16);
                    assert_eq!(
                        (dst, dport, flags, src),
                        (c, p, tcp_flags::RST, VIP),
                        "client {i}"
                    );
                    let f = &outf[usize::from(n) + i];
                    let seq = u32::from_be_bytes([f[38], f[39], f[40], f[41]]);
                    assert_eq!(seq, 5001, "the RST sits at the client's ack");
                }
            }
            _ => {
                // Only the flows on the removed backend are reset; the
                // others go on, and new flows follow the new table.
                assert_eq!(s["events"]["conn_resets"], moved, "{s:#}");
                assert_eq!(s["dropped_total"], 0);
                let mut k = usize::from(n);
                for (i, was11) in on11.iter().enumerate() {
                    let (dst, _, flags, src) = tcp_fields(&outf[k]);
                    if *was11 {
                        assert_eq!((flags, src), (tcp_flags::RST, VIP), "client {i}");
                    } else {
                        assert_eq!(dst, tcp_fields(&outf[i]).0, "client {i}");
                    }
                    k += 2;
                }
            }
        }
    }
}

#[test]
fn reload_that_needs_a_restart_or_is_invalid_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let old_cfg = root().join(rampart_testkit::fixtures::CONFIG_PATH);
    let input = dir.path().join("in.pcap");
    write_pcap(
        &input,
        [
            (T0, client_syn(a("198.18.60.1"), 2000)),
            (T0 + MS, client_syn(a("198.18.60.2"), 2000)),
        ],
    );

    let bigger = dir.path().join("bigger.toml");
    std::fs::write(
        &bigger,
        rampart_testkit::fixtures::CONFIG_TEXT.replace("capacity = 65536", "capacity = 131072"),
    )
    .unwrap();
    let err = failed(
        output(
            bin!()
                .args(["replay", "-c"])
                .arg(&old_cfg)
                .arg("--reload")
                .arg(format!("1:{}", bigger.display()))
                .arg(&input),
        ),
        "a reload that needs a restart",
    );
    assert!(
        err.contains("conntrack.capacity changed from 65536 to 131072; that takes a restart"),
        "{err}"
    );

    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        rampart_testkit::fixtures::CONFIG_TEXT.replacen(
            "table_size = 65537",
            "table_size = 65536",
            1,
        ),
    )
    .unwrap();
    let err = failed(
        output(
            bin!()
                .args(["replay", "-c"])
                .arg(&old_cfg)
                .arg("--reload")
                .arg(format!("1:{}", broken.display()))
                .arg(&input),
        ),
        "a reload of a broken config",
    );
    let want = format!("{}:", broken.display());
    assert!(
        err.contains(&want) && err.contains("table_size: 65536 is not prime"),
        "{err}"
    );
}

// ---- health checks from probe replies in a capture -------------------------

fn health_config() -> String {
    let web = Vip::new("web", "198.18.100.10", 80, "tcp", "nat")
        .health("kind = \"tcp\"\ninterval_ms = 1000\ntimeout_ms = 500\nrise = 2\nfall = 2")
        .backends(&["198.18.1.11", "198.18.1.12"], 8080);
    let node = toml::node(&["198.18.0.1"], &["198.18.1.11", "198.18.1.12"]);
    format!("{node}{web}")
}

/// How a backend answers its n-th probe.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    Open,
    Refused,
    Silent,
}

fn answer(backend: Addr, nth: usize) -> Answer {
    if backend == a("198.18.1.11") {
        return Answer::Open;
    }
    // Two refusals take it down (fall 2); one success and a timeout do not
    // bring it back (rise 2 needs two in a row); two more successes do.
    const SCRIPT: [Answer; 6] = [
        Answer::Refused,
        Answer::Refused,
        Answer::Open,
        Answer::Silent,
        Answer::Open,
        Answer::Open,
    ];
    SCRIPT.get(nth).copied().unwrap_or(Answer::Open)
}

fn probe_reply(o: &ProbeOrder, ans: Answer) -> Vec<u8> {
    let backend_mac = if o.dst == a("198.18.1.11") {
        Mac([2, 0, 0, 0, 1, 0x0b])
    } else {
        Mac([2, 0, 0, 0, 1, 0x0c])
    };
    let flags = match ans {
        Answer::Open => tcp_flags::SYN | tcp_flags::ACK,
        _ => tcp_flags::RST | tcp_flags::ACK,
    };
    gen::tcp(
        &eth(backend_mac, NODE_MAC),
        o.dst,
        o.src,
        64,
        7,
        &TcpSeg {
            sport: o.dport,
            dport: o.sport,
            seq: if ans == Answer::Open { 9000 } else { 0 },
            ack: o.isn.wrapping_add(1),
            flags,
            window: if ans == Answer::Open { 29200 } else { 0 },
            ..TcpSeg::default()
        },
    )
}

#[test]
fn health_checks_follow_probe_replies_with_rise_and_fall() {
    let cfg = config::parse(&health_config(), "health.toml").unwrap();
    let snap = Snapshot::build(&cfg);
    // The capture is written against a checker run on the same clock, as
    // the replay's control side runs it: one packet per burst, a tick
    // after each.
    let mut sim = Checker::new(1, REPLAY_PROBE_KEY);
    let targets: Vec<Target> = snap
        .backends
        .iter()
        .enumerate()
        .map(|(i, b)| Target {
            backend: rampart::ids::BackendId::new(i as u32),
            key: BackendKey {
                addr: b.key.addr,
                port: b.key.port,
            },
            params: ProbeParams {
                interval_ms: 1000,
                timeout_ms: 500,
                rise: 2,
                fall: 2,
            },
            src: NODE,
            mac: b.mac,
        })
        .collect();
    sim.set_targets(targets, 0);

    let mut frames: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut replies: Vec<(u64, ProbeOrder, Answer)> = Vec::new();
    let mut sent = std::collections::HashMap::<Addr, usize>::new();
    let mut orders = Vec::new();
    let mut expected = Vec::new();
    let (mut probes, mut opens) = (0, 0);
    let mut schedule = |t: u64,
                        orders: &mut Vec<(u16, ProbeOrder)>,
                        replies: &mut Vec<(u64, ProbeOrder, Answer)>| {
        for (_, o) in orders.drain(..) {
            probes += 1;
            let nth = sent.entry(o.dst).or_default();
            let ans = answer(o.dst, *nth);
            *nth += 1;
            if ans != Answer::Silent {
                opens += usize::from(ans == Answer::Open);
                replies.push((t + 150 * MS, o, ans));
            }
        }
    };
    let clients = 120u16;
    for k in 0..clients {
        let t = T0 + u64::from(k) * 100 * MS;
        replies.sort_by_key(|r| r.0);
        while replies.first().is_some_and(|r| r.0 < t) {
            let (rt, o, ans) = replies.remove(0);
            frames.push((rt, probe_reply(&o, ans)));
            let outcome = if ans == Answer::Open {
                ProbeOutcome::Open
            } else {
                ProbeOutcome::Refused
            };
            if let Some(tr) = sim.result(ProbeResult { id: o.id, outcome }, rt) {
                expected.push((rt, tr));
            }
            for tr in sim.poll(rt, &mut orders) {
                expected.push((rt, tr));
            }
            schedule(rt, &mut orders, &mut replies);
        }
        frames.push((
            t,
            client_syn(Addr::from_v4([198, 18, 70, (k % 250) as u8]), 40000 + k),
        ));
        for tr in sim.poll(t, &mut orders) {
            expected.push((t, tr));
        }
        schedule(t, &mut orders, &mut replies);
    }
    // Down at the second refusal, up at the second success in a row.
    let b12: Vec<_> = expected
        .iter()
        .filter(|(_, tr)| tr.key.addr == a("198.18.1.12"))
        .collect();
    assert_eq!(b12.len(), 2, "{expected:?}");
    assert!(!b12[0].1.up && b12[1].1.up);
    assert!(expected
        .iter()
        .all(|(_, tr)| tr.key.addr == a("198.18.1.12")));

    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("health.toml");
    std::fs::write(&cfg_path, health_config()).unwrap();
    let input = dir.path().join("in.pcap");
    write_pcap(&input, frames.iter().map(|(t, f)| (*t, f)));
    let out = dir.path().join("out.pcap");
    let stats = dir.path().join("stats.json");
    let s = run_replay(&cfg_path, &input, &out, &stats, &["--burst", "1"]);

    // The replay saw the same transitions at the same times.
    let events = s["health_events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{s:#}");
    for (e, (t, tr)) in events.iter().zip(&b12) {
        assert_eq!(e["time_ns"], *t);
        assert_eq!(e["backend"], "198.18.1.12:8080");
        assert_eq!(e["up"], tr.up);
        assert_eq!(e["reason"], tr.reason.as_str());
    }
    assert!(
        events[0]["reason"].as_str().unwrap().contains("refused"),
        "{events:?}"
    );
    assert_eq!(s["events"]["probes_sent"], probes, "{s:#}");
    assert_eq!(s["events"]["probes_open"], opens);
    // Every probe reply was taken by the prober, nothing dropped.
    assert_eq!(s["dropped_total"], 0, "{s:#}");

    // On the wire: a SYN per probe and a RST per SYN-ACK, from the node
    // address; no new connection to 198.18.1.12 while it was down.
    let (t_down, t_up) = (b12[0].0, b12[1].0);
    let outf = read_pcap(&out);
    let from_node: Vec<_> = outf
        .iter()
        .map(|f| tcp_fields(f))
        .filter(|x| x.3 == NODE)
        .collect();
    assert_eq!(
        from_node.iter().filter(|x| x.2 == tcp_flags::SYN).count(),
        probes
    );
    assert_eq!(
        from_node.iter().filter(|x| x.2 == tcp_flags::RST).count(),
        opens
    );
    let mut conns = (0, 0, 0);
    for (ts, f) in &frames {
        let (dst, dport, flags, _) = tcp_fields(f);
        if dst != VIP || dport != 80 || flags != tcp_flags::SYN {
            continue;
        }
        // The forwarded SYN of this client, by its client port.
        let sport = u16::from_be_bytes([f[34], f[35]]);
        let fwd = outf
            .iter()
            .find(|o| tcp_fields(o).3 != NODE && u16::from_be_bytes([o[34], o[35]]) == sport)
            .unwrap();
        let on12 = tcp_fields(fwd).0 == a("198.18.1.12");
        if *ts > t_down && *ts <= t_up {
            assert!(!on12, "client port {sport} at {ts} went to a down backend");
            conns.1 += 1;
        } else if *ts > t_up {
            conns.2 += usize::from(on12);
        } else {
            conns.0 += usize::from(on12);
        }
    }
    assert!(conns.1 > 20, "{conns:?}");
    assert!(
        conns.2 > 5,
        "198.18.1.12 got no connection after it came back: {conns:?}"
    );
}
