//! `rampart replay` as a user runs it: the binary over every shipped fixture,
//! its output compared frame by frame with the expected capture, its stats
//! JSON checked against the fixture rows; and every expected capture (so
//! every output) dissected by tshark (no malformed frames, no bad
//! checksums).
//!
//! The tshark tests are ignored by default, with the reason, since they
//! need tshark (`apt-get install tshark`): `cargo test --test replay --
//! --include-ignored` runs them, as CI does, and there a missing tshark
//! fails them.

use std::path::Path;
use std::process::Command;

use rampart::datapath::Verdict;
use rampart_testkit::fixtures;

use rampart_testkit::common::{failed, frames, output, root, succeeded, write_pcap, Replay};
use rampart_testkit::rampart_bin as bin;

#[test]
fn shipped_fixtures_match_the_generator() {
    let dir = tempfile::tempdir().unwrap();
    fixtures::write_all(dir.path()).unwrap();
    let mut n = 0;
    for sc in fixtures::scenarios() {
        for suffix in ["in", "expected"] {
            let name = format!("{}.{suffix}.pcap", sc.name);
            let fresh = std::fs::read(dir.path().join(&name)).unwrap();
            let shipped = std::fs::read(root().join("pcap-fixtures").join(&name))
                .unwrap_or_else(|e| panic!("pcap-fixtures/{name}: {e} (run `cargo run -p rampart-testkit --bin fixtures`)"));
            assert!(
                fresh == shipped,
                "pcap-fixtures/{name} is stale: run `cargo run -p rampart-testkit --bin fixtures`"
            );
            n += 1;
        }
    }
    assert!(n >= 20);
}

#[test]
fn replay_every_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    for sc in fixtures::scenarios() {
        let input = root()
            .join("pcap-fixtures")
            .join(format!("{}.in.pcap", sc.name));
        let expected = root()
            .join("pcap-fixtures")
            .join(format!("{}.expected.pcap", sc.name));
        let out = tmp.path().join(format!("{}.out.pcap", sc.name));
        let stats = tmp.path().join(format!("{}.json", sc.name));
        let run = Replay {
            config: &root().join(fixtures::CONFIG_PATH),
            input: &input,
            out: &out,
            stats: &stats,
            args: &[],
        }
        .run(bin!(), sc.name);
        let stdout = run.stdout;
        assert!(
            stdout.contains("packets      in"),
            "{}: summary missing: {stdout}",
            sc.name
        );

        let got = frames(&out);
        let want = frames(&expected);
        assert_eq!(got.len(), want.len(), "{}: frame count", sc.name);
        for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
            assert!(g == w, "{}: output frame {i} differs", sc.name);
        }

        let doc = run.stats;
        assert_eq!(doc["rx_packets"], sc.rows.len() as u64, "{}", sc.name);
        let outputs = sc.rows.iter().filter(|r| r.output.is_some()).count();
        let extra: usize = sc.rows.iter().map(|r| r.extra.len()).sum();
        assert_eq!(doc["tx_packets"], outputs as u64, "{}", sc.name);
        assert_eq!(doc["originated_packets"], extra as u64, "{}", sc.name);
        let consumed = sc
            .rows
            .iter()
            .filter(|r| r.verdict == Verdict::Consumed)
            .count();
        assert_eq!(doc["consumed"], consumed as u64, "{}", sc.name);
        let mut drops = std::collections::BTreeMap::<&str, u64>::new();
        for row in &sc.rows {
            if let Verdict::Drop(r) = row.verdict {
                *drops.entry(r.name()).or_default() += 1;
            }
        }
        let dropped = doc["dropped"].as_object().unwrap();
        for (reason, count) in dropped {
            assert_eq!(
                count.as_u64().unwrap(),
                drops.get(reason.as_str()).copied().unwrap_or(0),
                "{}: drop counter {reason}",
                sc.name
            );
        }
        assert!(doc["vips"].as_array().unwrap().len() >= 7);
    }
}

/// Every output `replay_every_fixture` checks equals its expected capture
/// frame for frame, so dissecting the expected captures dissects them all.
#[test]
#[ignore = "needs tshark (apt-get install tshark); run with --include-ignored, as CI does"]
fn every_expected_output_dissects_clean() {
    require_tshark();
    for sc in fixtures::scenarios() {
        let expected = root()
            .join("pcap-fixtures")
            .join(format!("{}.expected.pcap", sc.name));
        if !frames(&expected).is_empty() {
            tshark_clean(&expected);
        }
    }
}

/// tshark dissects `pcap`: every frame must be free of malformed-packet
/// markers and every checksum it verifies must be good.
///
/// One exception, tshark's and not the frame's: a transport checksum in
/// the quote of an ICMP error that holds only the start of its packet (a
/// "too big" error quotes at most 548 or 1232 bytes) is summed by tshark
/// over the bytes present and reported bad; the golden rows hold those
/// bytes exactly, so such a quote's checksum is left out here.
///
/// tshark has no GUE dissector of its own: `tests/tshark/gue.lua` decodes
/// GUE on UDP port 6080 (the fixtures' `gue_port`) and hands the inner
/// packet on, so its checksums are checked too.
fn tshark_clean(pcap: &Path) {
    const FIELDS: [&str; 15] = [
        "frame.number",
        "ip.checksum.status",
        "tcp.checksum.status",
        "udp.checksum.status",
        "icmpv6.checksum.status",
        "icmp.checksum.status",
        "_ws.malformed",
        "_ws.expert.severity",
        "icmp.type",
        "icmpv6.type",
        "ip.len",
        "ip.hdr_len",
        "ip.proto",
        "ipv6.plen",
        "ipv6.nxt",
    ];
    let mut cmd = Command::new("tshark");
    let gue = root().join("tests/tshark/gue.lua");
    cmd.arg("-X").arg(format!("lua_script:{}", gue.display()));
    cmd.args(["-n", "-r"]).arg(pcap).args([
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        "-T",
        "fields",
        "-E",
        "separator=|",
    ]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("tshark is required for this test (apt-get install tshark): {e}")
    });
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        pcap.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = 0;
    for line in text.lines() {
        lines += 1;
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f.len(), FIELDS.len(), "{line}");
        let cut = truncated_quote(&f[8..15]);
        for (i, name, proto) in [
            (1, "ip", 0),
            (2, "tcp", 6),
            (3, "udp", 17),
            (4, "icmpv6", 0),
            (5, "icmp", 0),
        ] {
            // Status 0 is "Bad"; 1 "Good"; 2 "Unverified". Tunnelled headers
            // and quotes list several values, the quote's last.
            let mut statuses: Vec<&str> = f[i].split(',').collect();
            if proto != 0 && cut == Some(proto) {
                statuses.pop();
            }
            assert!(
                !statuses.contains(&"0"),
                "{}: frame {}: bad {name} checksum",
                pcap.display(),
                f[0]
            );
        }
        assert!(
            f[6].is_empty(),
            "{}: frame {} is malformed",
            pcap.display(),
            f[0]
        );
    }
    assert!(lines > 0, "tshark read no frame from {}", pcap.display());
}

/// For a frame holding an ICMP error whose quote stops short of the
/// quoted packet's own length: the quoted transport protocol. `f` is
/// icmp.type, icmpv6.type, ip.len, ip.hdr_len, ip.proto, ipv6.plen,
/// ipv6.nxt, each listing every header of its kind in the frame,
/// outermost first: the error's IP header is the last but one of its
/// family, the quoted one the last.
fn truncated_quote(f: &[&str]) -> Option<u8> {
    let list = |s: &str| -> Vec<usize> { s.split(',').filter_map(|v| v.parse().ok()).collect() };
    let last_two = |v: &[usize]| match v {
        [.., outer, quoted] => Some((*outer, *quoted)),
        _ => None,
    };
    let v4_error = list(f[0]).last().is_some_and(|t| matches!(t, 3 | 11 | 12));
    let v6_error = list(f[1]).last().is_some_and(|t| (1..=4).contains(t));
    let (cut, proto) = if v4_error {
        let (len, quoted_len) = last_two(&list(f[2]))?;
        let (hdr, _) = last_two(&list(f[3]))?;
        (len < hdr + 8 + quoted_len, *list(f[4]).last()?)
    } else if v6_error {
        let (plen, quoted_plen) = last_two(&list(f[5]))?;
        (plen < 8 + 40 + quoted_plen, *list(f[6]).last()?)
    } else {
        return None;
    };
    cut.then_some(proto as u8)
}

/// A test that was asked to dissect fails without tshark.
fn require_tshark() {
    let found = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "tshark is not installed (apt-get install tshark)");
}

#[test]
#[ignore = "needs tshark (apt-get install tshark); run with --include-ignored, as CI does"]
fn tshark_catches_a_bad_checksum() {
    // The checker itself must be able to fail: corrupt one TCP checksum,
    // in a plain frame and inside GUE over IPv4 (whose UDP checksum is
    // zero, so only the inner packet's own checksum can tell).
    require_tshark();
    let tmp = tempfile::tempdir().unwrap();
    for (capture, frame, csum) in [
        ("nat-v4", 0, 14 + 20 + 16),
        // Frame 7 of the tunnel capture: an IPv6 SYN in GUE over IPv4.
        ("tunnel", 6, 14 + 20 + 8 + 4 + 40 + 16),
    ] {
        let good = root().join(format!("pcap-fixtures/{capture}.expected.pcap"));
        let mut frames = frames(&good);
        frames[frame][csum] ^= 0xff;
        let bad = tmp.path().join(format!("{capture}-bad.pcap"));
        write_pcap(&bad, frames.iter().map(|f| (0, f)));
        let caught = std::panic::catch_unwind(|| tshark_clean(&bad));
        assert!(
            caught.is_err(),
            "{capture}: a corrupted checksum went unnoticed"
        );
    }
}

/// tshark's own PROXY protocol dissector (a TCP heuristic, on by default)
/// reads the header segments of the `proxy-v4` and `proxy-v6` captures as
/// naming the client and the VIP, and its TCP analysis finds no gap, no
/// out-of-order segment and no acknowledgment of unseen data on either side
/// of the connection: the only notes are the two deliberate retransmissions
/// (the repeated SYN-ACK and the header sent again).
#[test]
#[ignore = "needs tshark (apt-get install tshark); run with --include-ignored, as CI does"]
fn proxy_headers_dissect_and_sequence_numbers_add_up() {
    require_tshark();
    for (capture, client, vip) in [
        ("proxy-v4", "198.18.50.1", "198.18.100.70"),
        ("proxy-v6", "2001:2:0:50::7", "2001:2:0:100::70"),
    ] {
        let pcap = root().join(format!("pcap-fixtures/{capture}.expected.pcap"));
        let fields = [
            "frame.number",
            "proxy.src.ipv4",
            "proxy.src.ipv6",
            "proxy.srcport",
            "proxy.dst.ipv4",
            "proxy.dst.ipv6",
            "proxy.dstport",
            "tcp.analysis.lost_segment",
            "tcp.analysis.ack_lost_segment",
            "tcp.analysis.out_of_order",
            "tcp.analysis.retransmission",
            "_ws.malformed",
        ];
        let mut cmd = Command::new("tshark");
        cmd.args(["-n", "-r"])
            .arg(&pcap)
            .args(["-T", "fields", "-E", "separator=|"]);
        for f in fields {
            cmd.args(["-e", f]);
        }
        let out = cmd.output().expect("tshark");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let (mut headers, mut retransmissions) = (0, 0);
        for line in text.lines() {
            let f: Vec<&str> = line.split('|').collect();
            assert_eq!(f.len(), fields.len(), "{line}");
            let src = format!("{}{}", f[1], f[2]);
            if !src.is_empty() {
                headers += 1;
                assert_eq!(src, client, "{capture} frame {}: PROXY source", f[0]);
                assert_eq!(f[3], "40700", "{capture} frame {}: source port", f[0]);
                assert_eq!(format!("{}{}", f[4], f[5]), vip, "{capture} frame {}", f[0]);
                assert_eq!(f[6], "443", "{capture} frame {}: destination port", f[0]);
            }
            for (i, what) in [
                (7, "lost segment"),
                (8, "ACK of an unseen segment"),
                (9, "out of order"),
            ] {
                assert!(f[i].is_empty(), "{capture} frame {}: {what}", f[0]);
            }
            if !f[10].is_empty() {
                retransmissions += 1;
            }
            assert!(f[11].is_empty(), "{capture} frame {} is malformed", f[0]);
        }
        assert_eq!(
            headers, 1,
            "{capture}: the header, dissected once (its resend is a retransmission)"
        );
        assert_eq!(
            retransmissions, 2,
            "{capture}: the repeated SYN-ACK and the header again"
        );
    }
}

#[test]
fn bad_inputs_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = root().join(fixtures::CONFIG_PATH);
    // Truncated capture: cut the fixture in the middle of a packet.
    let full = std::fs::read(root().join("pcap-fixtures/nat-v4.in.pcap")).unwrap();
    let cut = tmp.path().join("cut.pcap");
    std::fs::write(&cut, &full[..full.len() - 10]).unwrap();
    // Not a capture at all.
    let junk = tmp.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a pcap file at all").unwrap();
    let missing = tmp.path().join("missing.pcap");
    for (input, needle) in [
        (&cut, "truncated"),
        (&junk, "junk.pcap"),
        (&missing, "missing.pcap"),
    ] {
        let err = failed(
            output(bin!().arg("replay").arg("--config").arg(&cfg).arg(input)),
            &input.display().to_string(),
        );
        assert!(
            err.contains(needle),
            "error for {} does not say {needle}: {err}",
            input.display()
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn check_config_names_file_line_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    succeeded(
        output(
            bin!()
                .arg("check-config")
                .arg(root().join("configs/rampart.toml")),
        ),
        "check-config configs/rampart.toml",
    );
    let text = std::fs::read_to_string(root().join("configs/rampart.toml")).unwrap();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        text.replacen("table_size = 65537", "table_size = 65536", 1),
    )
    .unwrap();
    assert!(
        text.contains("table_size = 65537"),
        "configs/rampart.toml should set table_size"
    );
    let err = failed(
        output(bin!().arg("check-config").arg(&bad)),
        "check-config bad.toml",
    );
    let line = text.lines().position(|l| l.contains("table_size")).unwrap() + 1;
    assert!(err.contains(&format!("bad.toml:{line}:")), "{err}");
    assert!(err.contains("table_size"), "{err}");
    assert!(err.contains("prime"), "{err}");
}

/// A flood of 1M spoofed SYNs from `rampart gen --syn-flood` through the
/// SYN proxy VIP: every SYN answered with a valid cookie, no connection
/// entry, and the peak memory of the run the same as for a flood a hundred
/// times smaller (everything the proxy uses is allocated at start).
#[test]
fn syn_flood_creates_nothing() {
    use rampart::flow::FlowKey;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = fixtures::config();
    let mut peak = Vec::new();
    for count in [10_000u32, 1_000_000] {
        let flood = tmp.path().join(format!("flood-{count}.pcap"));
        let out = tmp.path().join(format!("flood-{count}.out.pcap"));
        let stats = tmp.path().join(format!("flood-{count}.json"));
        succeeded(
            output(
                bin!()
                    .args(["gen", "--count", &count.to_string(), "--syn-flood"])
                    .arg(&flood),
            ),
            "rampart gen --syn-flood",
        );
        let doc = Replay {
            config: &root().join(fixtures::CONFIG_PATH),
            input: &flood,
            out: &out,
            stats: &stats,
            args: &["--no-progress"],
        }
        .run(bin!(), "the flood's replay")
        .stats;
        assert_eq!(doc["rx_packets"], u64::from(count));
        assert_eq!(doc["tx_packets"], u64::from(count));
        assert_eq!(doc["dropped_total"], 0);
        assert_eq!(doc["events"]["syn_cookies_sent"], u64::from(count));
        assert_eq!(doc["connections"]["new"], 0);
        assert_eq!(doc["connections"]["active"], 0);
        assert_eq!(doc["originated_packets"], 0);
        peak.push(doc["peak_rss_kib"].as_u64().unwrap());

        // Every SYN-ACK carries exactly the cookie the layout prescribes,
        // recomputed here from its fields (not by rampart's cookie code), so
        // a cookie that left a field out of its hash would fail.
        let master = cfg.synproxy.secret.unwrap();
        let gen0 = (fixtures::timestamp(0) / 1_000_000_000) as u32 / cfg.synproxy.secret_rotate;
        let frames = frames(&out);
        assert_eq!(frames.len(), count as usize);
        for (i, f) in frames.iter().enumerate() {
            let d = rampart::wire::parse(f).unwrap();
            assert_eq!(d.tcp_flags, 0x12, "SYN-ACK {i}");
            let o = rampart::wire::tcpopt::parse(f, &d);
            let l4 = d.l4_off as usize;
            let seq = u32::from_be_bytes(f[l4 + 4..l4 + 8].try_into().unwrap());
            let ack = u32::from_be_bytes(f[l4 + 8..l4 + 12].try_into().unwrap());
            // The client's SYN: its key is the SYN-ACK's reversed.
            let syn = FlowKey {
                src: d.key.dst,
                dst: d.key.src,
                sport: d.key.dport,
                dport: d.key.sport,
                proto: d.key.proto,
            };
            let (tsval, _) = o.timestamp.expect("the flood offers timestamps");
            // The flood's SYNs offer MSS 1460 (index 7), window scale 7,
            // SACK and timestamps: option bits marker | SACK | 7, carried
            // in the low 6 bits of our TSval.
            let (mss_idx, opt) = (7u8, 0x20 | 0x10 | 7);
            assert_eq!(
                tsval & 0x3f,
                u32::from(opt),
                "SYN-ACK {i}: TSval option bits"
            );
            let gen = [gen0, gen0 + 1]
                .into_iter()
                .find(|g| g & 1 == seq >> 31)
                .unwrap();
            let want = expected_cookie(master, gen, &syn, ack.wrapping_sub(1), mss_idx, opt);
            assert_eq!(seq, want, "SYN-ACK {i}: cookie");
        }
    }
    // Same allocations whatever the flood's size: a few MiB of slack for
    // the allocator and the pcap writer's buffers.
    let growth = peak[1].saturating_sub(peak[0]);
    assert!(
        growth < 4 * 1024,
        "peak RSS grew by {growth} KiB between a 10k and a 1M SYN flood ({peak:?})"
    );
}

/// A SYN cookie from its definition (the cookie module's doc): parity of
/// the key generation | MSS index | the low 28 bits of SipHash-1-3 under
/// K[gen] = SipHash-1-3-128(master, gen) of the IPv4 addresses, the ports
/// and the client's ISN, and the generation, MSS index and option bits.
fn expected_cookie(
    master: [u8; 16],
    gen: u32,
    syn: &rampart::flow::FlowKey,
    client_isn: u32,
    mss_idx: u8,
    opt: u8,
) -> u32 {
    use siphasher::sip::SipHasher13;
    use siphasher::sip128::{Hasher128, SipHasher13 as SipHasher13x128};
    use std::hash::Hasher;
    let mut k = SipHasher13x128::new_with_key(&master);
    k.write(&gen.to_le_bytes());
    let (k0, k1) = k.finish128().as_u64();
    let v4 = |a: &rampart::flow::Addr| u64::from(u32::from_be_bytes(a.v4_octets()));
    let mut h = SipHasher13::new_with_keys(k0, k1);
    h.write_u64(v4(&syn.src) << 32 | v4(&syn.dst));
    h.write_u64(u64::from(syn.sport) << 48 | u64::from(syn.dport) << 32 | u64::from(client_isn));
    h.write_u64(u64::from(gen) << 32 | u64::from(mss_idx) << 8 | u64::from(opt));
    (gen & 1) << 31 | u32::from(mss_idx) << 28 | (h.finish() as u32 & 0x0fff_ffff)
}
