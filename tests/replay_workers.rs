//! `rampart replay --workers N`: one reader steers every frame to the
//! worker that owns its connection (`io::steer::owner`, the DPDK runtime's
//! hand-over rule), each worker keeps its own connection table. For N = 2
//! and 4 the output must be N = 1's, modulo the order between connections,
//! and the summed counters must be N = 1's.
//!
//! Output frames are grouped by connection: the unordered pair of
//! endpoints of the frame and its protocol (a NAT connection makes two
//! groups, client -> backend and VIP -> client; each belongs to one worker,
//! so its frames keep their order). Frames without a transport key (ARP,
//! ND) form one group, handled in capture order by worker 0.
//!
//! FullNAT is compared modulo the local port. A worker allocates local
//! ports whose value modulo N names it (so a backend's reply finds its way
//! back), so the port chosen for a connection depends on N. Frames to or
//! from a local address have that port and their transport checksum
//! zeroed, and since the port no longer tells their connections apart,
//! such a group is compared as a multiset; the ICMP errors quoting FullNAT
//! frames are normalised the same way in the quote. A capture that holds a
//! backend's replies names the port one worker chose; before replaying it
//! with N workers, the replies are readdressed to the ports the N workers
//! chose (the n-th port used towards a backend matched with one worker's
//! n-th), as a live backend would answer them. Encapsulated frames (IPIP,
//! GRE) of different connections share their outer endpoints, so their
//! groups are multisets too. The SYN proxy needs
//! nothing special: the cookie key is the config's, and every worker runs
//! its clock at the time of the burst's first frame, as one worker does,
//! so the cookies are the same. IP fragments go to the worker their
//! datagram's addresses and ID name, which hands them to their
//! connection's owner: their groups (per pair of hosts) are multisets, and
//! the counters of what was received, held and handed over differ from one
//! worker's while the frames sent and everything else may not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rampart::flow::{proto, Addr};
use rampart::snapshot::Snapshot;
use rampart_testkit::common::{frames, output, root, succeeded, Replay};
use rampart_testkit::fixtures;
use rampart_testkit::rampart_bin as bin;

const WORKERS: [u16; 2] = [2, 4];

const IPIP: u8 = 4;
const IPV6_IN_IP: u8 = 41;
const GRE: u8 = 47;

/// A group of output frames: protocol and the two endpoints, in order.
type Group = (u8, (Addr, u16), (Addr, u16));

struct Replayed {
    groups: BTreeMap<Group, Vec<Vec<u8>>>,
    /// Groups compared as multisets: frames involving a FullNAT local
    /// address, and tunnels whose outer endpoints several connections share.
    local: Vec<Group>,
    frames: usize,
    stats: serde_json::Value,
}

fn replay(input: &Path, workers: u16, dir: &Path, local: &[Addr]) -> Replayed {
    let tag = format!(
        "{}.w{workers}",
        input.file_name().unwrap().to_string_lossy()
    );
    let out = dir.join(format!("{tag}.out.pcap"));
    let stats = dir.join(format!("{tag}.json"));
    let n = workers.to_string();
    let run = Replay {
        config: &root().join(fixtures::CONFIG_PATH),
        input,
        out: &out,
        stats: &stats,
        args: &["--workers", &n, "--no-progress"],
    }
    .run(bin!(), &tag);
    let summary = run.stdout;
    let workers_line = match workers {
        1 => "one worker)".to_string(),
        n => format!("{n} workers)"),
    };
    assert!(summary.contains(&workers_line), "{tag}: {summary}");
    let mut r = Replayed {
        groups: BTreeMap::new(),
        local: Vec::new(),
        frames: 0,
        stats: run.stats,
    };
    for mut f in frames(&out) {
        r.frames += 1;
        let (group, is_local) = normalise(&mut f, local);
        if is_local && !r.local.contains(&group) {
            r.local.push(group);
        }
        r.groups.entry(group).or_default().push(f);
    }
    r
}

/// The frame's group; zeroes the local port (and the checksum over it) of
/// a frame to or from a FullNAT local address, in the frame or in the
/// quote of an ICMP error. Returns whether the group is to be compared as a
/// multiset (it did, or the frame is IP-in-IP or GRE).
fn normalise(f: &mut [u8], local: &[Addr]) -> (Group, bool) {
    let Ok(d) = rampart::wire::parse(f) else {
        // A fragment: the datagrams between two hosts, as a multiset (a
        // datagram handed to its connection's owner goes out a round later).
        if let Ok((d, _)) = rampart::wire::parse_fragment(f) {
            let mut ends = [(d.key.src, 0), (d.key.dst, 0)];
            ends.sort();
            return ((d.key.proto, ends[0], ends[1]), true);
        }
        return ((0, Default::default(), Default::default()), false);
    };
    let k = d.key;
    let mut ends = [(k.src, k.sport), (k.dst, k.dport)];
    // Tunnel mode: the connections to one backend share the outer
    // endpoints (IPIP, IPv6-in-IP, GRE; GUE's source port is per flow).
    let mut is_local = [IPIP, IPV6_IN_IP, GRE].contains(&k.proto);
    let l4 = usize::from(d.l4_off);
    if k.proto == proto::TCP || k.proto == proto::UDP {
        for (i, end) in ends.iter_mut().enumerate() {
            if local.contains(&end.0) {
                end.1 = 0;
                zero_port(f, l4, k.proto, i);
                is_local = true;
            }
        }
    } else if k.proto == proto::ICMP || k.proto == proto::ICMPV6 {
        if let Some(q) = rampart::wire::icmp::quoted(f, &d) {
            let qk = q.key;
            let ql4 = usize::from(q.l4_off);
            for (i, a) in [qk.src, qk.dst].iter().enumerate() {
                if local.contains(a) && (qk.proto == proto::TCP || qk.proto == proto::UDP) {
                    // The quote may hold only the ports: zero the port, the
                    // quoted checksum if it is there, and the error's own
                    // checksum, which covers both.
                    if let Some(p) = f.get_mut(ql4 + 2 * i..ql4 + 2 * i + 2) {
                        p.fill(0);
                    }
                    let at = if qk.proto == proto::TCP {
                        ql4 + 16
                    } else {
                        ql4 + 6
                    };
                    if let Some(c) = f.get_mut(at..at + 2) {
                        c.fill(0);
                    }
                    if let Some(c) = f.get_mut(l4 + 2..l4 + 4) {
                        c.fill(0);
                    }
                    is_local = true;
                }
            }
        }
    }
    ends.sort();
    ((k.proto, ends[0], ends[1]), is_local)
}

/// Zeroes the source (`which` 0) or destination port at `l4` and the
/// transport checksum.
fn zero_port(f: &mut [u8], l4: usize, p: u8, which: usize) {
    f[l4 + 2 * which..l4 + 2 * which + 2].fill(0);
    let sum = if p == proto::TCP { l4 + 16 } else { l4 + 6 };
    f[sum..sum + 2].fill(0);
}

/// The counters that must not depend on the worker count: everything but
/// the timing, the memory and the table capacity (one table per worker).
fn counters(stats: &serde_json::Value) -> serde_json::Value {
    let mut s = stats.clone();
    let o = s.as_object_mut().unwrap();
    for k in ["elapsed_seconds", "peak_rss_kib", "mpps"] {
        o.remove(k);
    }
    o["connections"].as_object_mut().unwrap().remove("capacity");
    s
}

/// FullNAT local ports of `out`'s frames from a local address, per
/// (local address, backend, protocol), in order of first use.
fn lports(out: &Path, local: &[Addr]) -> BTreeMap<(Addr, (Addr, u16), u8), Vec<u16>> {
    let mut m: BTreeMap<_, Vec<u16>> = BTreeMap::new();
    for f in frames(out) {
        let Ok(d) = rampart::wire::parse(&f) else {
            continue;
        };
        let k = d.key;
        if local.contains(&k.src) && (k.proto == proto::TCP || k.proto == proto::UDP) {
            let ports = m.entry((k.src, (k.dst, k.dport), k.proto)).or_default();
            if !ports.contains(&k.sport) {
                ports.push(k.sport);
            }
        }
    }
    m
}

/// `input` with the backends' FullNAT replies (and the ICMP errors about
/// frames from a local port) sent to the local ports the `workers` run
/// chose instead of those one worker chose: a capture holds
/// one conversation, and a backend answers the port it was sent from. The
/// n-th port used towards a backend in one run is matched with the n-th of
/// the other. Returns `input` itself when nothing changes.
fn fit_local_ports(input: &Path, workers: u16, dir: &Path, local: &[Addr]) -> PathBuf {
    let probe = |w: u16| {
        let out = dir.join(format!("lports.w{w}.pcap"));
        succeeded(
            output(
                bin!()
                    .args(["replay", "--no-progress", "--workers", &w.to_string()])
                    .arg("--config")
                    .arg(root().join(fixtures::CONFIG_PATH))
                    .arg("--out")
                    .arg(&out)
                    .arg(input),
            ),
            "replay for the local ports",
        );
        lports(&out, local)
    };
    let (one, many) = (probe(1), probe(workers));
    let mut map = BTreeMap::new();
    for (k, ports) in &one {
        for (a, b) in ports.iter().zip(many.get(k).into_iter().flatten()) {
            if a != b {
                map.insert((*k, *a), *b);
            }
        }
    }
    if map.is_empty() {
        return input.to_path_buf();
    }
    let fitted = dir.join(format!(
        "{}.fitted.w{workers}.pcap",
        input.file_name().unwrap().to_string_lossy()
    ));
    let mut w = rampart::io::PcapWriter::create(&fitted).unwrap();
    for p in rampart::io::PcapReader::open(input).unwrap() {
        let mut p = p.unwrap();
        if let Ok(d) = rampart::wire::parse(&p.data) {
            let k = d.key;
            if let Some(&new) = map.get(&((k.dst, (k.src, k.sport), k.proto), k.dport)) {
                set_dport(&mut p.data, usize::from(d.l4_off), k.proto, k.dport, new);
            } else if let Some(q) = rampart::wire::icmp::quoted(&p.data, &d) {
                // An error about a frame we sent from a local port.
                let qk = q.key;
                if let Some(&new) = map.get(&((qk.src, (qk.dst, qk.dport), qk.proto), qk.sport)) {
                    let (l4, ql4) = (usize::from(d.l4_off), usize::from(q.l4_off));
                    let f = &mut p.data;
                    f[ql4..ql4 + 2].copy_from_slice(&new.to_be_bytes());
                    let at = if qk.proto == proto::TCP {
                        ql4 + 16
                    } else {
                        ql4 + 6
                    };
                    let mut icmp = u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]);
                    icmp = rampart::wire::checksum::update_u16(icmp, qk.sport, new);
                    if let Some(b) = f.get(at..at + 2) {
                        // The quoted checksum moves with its port, and the
                        // error's own checksum with both.
                        let old = u16::from_be_bytes([b[0], b[1]]);
                        if old != 0 || qk.proto == proto::TCP {
                            let sum = rampart::wire::checksum::update_u16(old, qk.sport, new);
                            f[at..at + 2].copy_from_slice(&sum.to_be_bytes());
                            icmp = rampart::wire::checksum::update_u16(icmp, old, sum);
                        }
                    }
                    f[l4 + 2..l4 + 4].copy_from_slice(&icmp.to_be_bytes());
                }
            }
        }
        w.write(&p.data, p.ts_ns).unwrap();
    }
    w.finish().unwrap();
    fitted
}

/// Rewrites a TCP or UDP destination port, updating the checksum (RFC
/// 1624; a UDP checksum of 0, none, stays 0).
fn set_dport(f: &mut [u8], l4: usize, p: u8, old: u16, new: u16) {
    f[l4 + 2..l4 + 4].copy_from_slice(&new.to_be_bytes());
    let at = if p == proto::TCP { l4 + 16 } else { l4 + 6 };
    let sum = u16::from_be_bytes([f[at], f[at + 1]]);
    if p == proto::UDP && sum == 0 {
        return;
    }
    let sum = rampart::wire::checksum::update_u16(sum, old, new);
    f[at..at + 2].copy_from_slice(&sum.to_be_bytes());
}

fn same_as_one_worker(input: &Path, dir: &Path, local: &[Addr]) -> usize {
    let one = replay(input, 1, dir, local);
    let name = input.display();
    for w in WORKERS {
        let fitted = fit_local_ports(input, w, dir, local);
        let many = replay(&fitted, w, dir, local);
        assert_eq!(many.frames, one.frames, "{name}: {w} workers: frame count");
        assert_eq!(
            many.groups.keys().collect::<Vec<_>>(),
            one.groups.keys().collect::<Vec<_>>(),
            "{name}: {w} workers: connections"
        );
        for (g, want) in &one.groups {
            let got = &many.groups[g];
            if one.local.contains(g) {
                let (mut a, mut b) = (got.clone(), want.clone());
                a.sort();
                b.sort();
                assert!(a == b, "{name}: {w} workers: FullNAT group {g:?} differs");
            } else {
                let i = got.iter().zip(want).position(|(a, b)| a != b);
                assert!(
                    got.len() == want.len() && i.is_none(),
                    "{name}: {w} workers: group {g:?} differs at frame {i:?}"
                );
            }
        }
        let (mut a, mut b) = (counters(&many.stats), counters(&one.stats));
        if a["events"]["fragments_handed_over"].as_u64() > Some(0) {
            // A fragment handed to its connection's owner is received by
            // two workers, and a held one handed over is sent by its owner
            // as a plain forward: what is received, taken over and sent
            // how differs, what goes out does not.
            let out = |s: &serde_json::Value| {
                s["tx_packets"].as_u64().unwrap() + s["originated_packets"].as_u64().unwrap()
            };
            assert_eq!(out(&a), out(&b), "{name}: {w} workers: frames sent");
            for s in [&mut a, &mut b] {
                let o = s.as_object_mut().unwrap();
                for k in [
                    "rx_packets",
                    "rx_bytes",
                    "consumed",
                    "tx_packets",
                    "tx_bytes",
                    "originated_packets",
                    "originated_bytes",
                ] {
                    o.remove(k);
                }
                let e = o["events"].as_object_mut().unwrap();
                for k in [
                    "fragments_handed_over",
                    "fragments_held",
                    "fragments_released",
                ] {
                    e.remove(k);
                }
            }
        }
        assert_eq!(a, b, "{name}: {w} workers: counters");
    }
    one.frames
}

fn local_addrs() -> Vec<Addr> {
    let cfg = rampart::config::load(&root().join(fixtures::CONFIG_PATH)).unwrap();
    Snapshot::build(&cfg).local_addrs
}

#[test]
fn every_fixture_gives_one_workers_frames() {
    let dir = tempfile::tempdir().unwrap();
    let local = local_addrs();
    let mut total = 0;
    for sc in fixtures::scenarios() {
        let input: PathBuf = root()
            .join("pcap-fixtures")
            .join(format!("{}.in.pcap", sc.name));
        total += same_as_one_worker(&input, dir.path(), &local);
    }
    assert!(total > 100);
}

/// Many connections, so every worker owns some and the rounds interleave
/// them: NAT traffic and a SYN flood against the SYN proxy.
#[test]
fn generated_traffic_gives_one_workers_frames() {
    let dir = tempfile::tempdir().unwrap();
    let local = local_addrs();
    let traffic = dir.path().join("traffic.pcap");
    let flood = dir.path().join("flood.pcap");
    let gen = |args: &[&str]| {
        succeeded(output(bin!().arg("gen").args(args)), "rampart gen");
    };
    gen(&[
        "--traffic",
        traffic.to_str().unwrap(),
        "--flows",
        "2000",
        "--packets-per-flow",
        "8",
    ]);
    gen(&["--syn-flood", flood.to_str().unwrap(), "--count", "3000"]);
    assert_eq!(same_as_one_worker(&traffic, dir.path(), &local), 16_000);
    assert!(same_as_one_worker(&flood, dir.path(), &local) >= 3000);
}
