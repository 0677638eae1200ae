//! End to end with real TCP stacks: `tests/netns/e2e.py --quick`, the
//! reduced run of the network-namespace suite, against this build's
//! `rampart` (see the README's "End to end in network namespaces").
//!
//! The script builds a bed of namespaces it always deletes (a client, a
//! router, a switch, four nginx backends, two tunnel backends behind the
//! router decapsulating in XDP, and `rampart run` on net_af_packet),
//! asserts every case itself and exits non-zero on any
//! failure; here its exit status decides, and its summary must hold a row
//! for every case, so a suite that silently skipped one fails too. A
//! second, shorter run puts rampart on net_af_xdp instead (the forwarding
//! modes and IP fragments); the two runs never overlap.
//!
//! Needs the `dpdk` feature, an optimised build, root, and iproute2,
//! ethtool, curl, wrk, hping3, nginx-light, nftables, iputils-ping, clang,
//! libbpf-dev and python3, so it is ignored by default, with that reason:
//! `cargo test --release --features dpdk --test e2e -- --include-ignored`
//! runs it (as `.ci/run` does, after installing them), and then a missing
//! tool fails it.
#![cfg(feature = "dpdk")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tools_missing() -> Vec<&'static str> {
    let mut missing: Vec<&'static str> = [
        "ip", "ethtool", "curl", "wrk", "hping3", "nginx", "nft", "python3", "ping", "clang",
    ]
    .into_iter()
    .filter(|t| {
        !Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
    .collect();
    // The tunnel backends' XDP program is built against libbpf's headers.
    if !std::path::Path::new("/usr/include/bpf/bpf_helpers.h").exists() {
        missing.push("libbpf-dev");
    }
    missing
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// One run of the bed at a time: each floods and loads the machine's CPUs.
static BED: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `tests/netns/e2e.py --quick ARGS` against this build, bounded by
/// `deadline` (the script's own, then `timeout` as the backstop), and
/// returns its report and summary.json; fails on a non-zero exit.
fn run_bed(args: &[&str], deadline: u64) -> (String, serde_json::Value) {
    let _one = BED.lock().unwrap_or_else(|p| p.into_inner());
    let missing = tools_missing();
    assert!(
        is_root() && missing.is_empty(),
        "the end-to-end suite needs root ({}) and these tools: {missing:?}",
        is_root()
    );
    let root = rampart_testkit::common::root();
    let work = tempfile::tempdir().unwrap();
    let started = Instant::now();
    // The script has its own deadline (SIGALRM, then teardown); `timeout`
    // is the backstop: TERM (the script tears the bed down), KILL 30 s later.
    let out = Command::new("timeout")
        .args(["-k", "30", &(deadline + 60).to_string(), "python3"])
        .arg(root.join("tests/netns/e2e.py"))
        .args(["--quick", "--deadline", &deadline.to_string()])
        .args(["--binary", env!("CARGO_BIN_EXE_rampart")])
        .args(args)
        .arg("--work")
        .arg(work.path())
        .stdin(Stdio::null())
        .output()
        .expect("run tests/netns/e2e.py");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "tests/netns/e2e.py --quick {args:?} failed after {:?}:\n{stderr}\n{stdout}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(deadline + 60));
    let summary =
        serde_json::from_str(&std::fs::read_to_string(work.path().join("summary.json")).unwrap())
            .unwrap();
    (stdout, summary)
}

/// Whether the summary has a row whose case starts with `case`, of `mode`
/// and `family`.
fn has_row(summary: &serde_json::Value, case: &str, mode: &str, family: &str) -> bool {
    summary["rows"].as_array().unwrap().iter().any(|r| {
        r["case"].as_str().is_some_and(|c| c.starts_with(case))
            && r["mode"] == mode
            && r["family"] == family
    })
}

/// The modes case's rows for `family`: curl and wrk through each of NAT,
/// FullNAT and DR.
fn assert_mode_rows(summary: &serde_json::Value, family: &str, stdout: &str) {
    for mode in ["nat", "fullnat", "dr"] {
        assert!(
            has_row(summary, "curl, new connections", mode, family),
            "{mode} {family}: {stdout}"
        );
        assert!(
            has_row(summary, "wrk", mode, family),
            "{mode} {family} wrk: {stdout}"
        );
    }
}

// The flood case measures what the datapath answers at the rate a kernel
// can flood it; an unoptimised build falls behind and drops real clients'
// SYNs with the flood's, so a debug build never runs it.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "runs on an optimised build only: cargo test --release --features dpdk --test e2e -- --include-ignored"
)]
#[cfg_attr(
    not(debug_assertions),
    ignore = "needs root, network namespaces and the peers' tools (iproute2, ethtool, curl, wrk, hping3, nginx, nft, ping, clang, libbpf); run with --include-ignored, as CI does"
)]
fn netns_end_to_end_quick() {
    let (stdout, summary) = run_bed(&[], 540);
    let rows = summary["rows"].as_array().unwrap();
    let has = |case: &str, mode: &str, family: &str| has_row(&summary, case, mode, family);
    for family in ["IPv4", "IPv6"] {
        assert_mode_rows(&summary, family, &stdout);
        assert!(has("10 MB echo", "synproxy", family), "{stdout}");
        assert!(has("10 MB download", "synproxy", family), "{stdout}");
        assert!(has("curl, b2 killed", "nat", family), "{stdout}");
        assert!(
            has("16 long-lived conns across the reload", "nat", family),
            "{stdout}"
        );
    }
    assert!(
        has("curl under SYN flood (rampart)", "synproxy", "IPv4"),
        "{stdout}"
    );
    assert!(
        rows.iter().any(|r| r["case"]
            .as_str()
            .is_some_and(|c| c.starts_with("wrk") && c.ends_with("across the reload"))),
        "wrk across the reload: {stdout}"
    );
    assert!(has("curl across the reload", "nat", "IPv6"), "{stdout}");
    // Tunnel VIPs (--quick: IPv4 in IPv4 over IPIP, IPv6 in IPv6 over GUE,
    // IPv4 in IPv6 over IPIP), the tunnel bed's own check, ICMP echo, and
    // downloads across a hop with a smaller MTU (ICMP errors through rampart).
    assert!(has("tunnel bed without rampart", "tunnel", "-"), "{stdout}");
    for (mode, family) in [("tunnel ipip", "IPv4"), ("tunnel gue", "IPv6")] {
        assert!(
            has("curl, new connections", mode, family),
            "{mode} {family}: {stdout}"
        );
        assert!(
            has("10 MB download (curl)", mode, family),
            "{mode} {family}: {stdout}"
        );
        assert!(
            has("10 MB download, 1400-byte MTU hop", mode, family),
            "{mode} {family} PMTU: {stdout}"
        );
    }
    assert!(
        has("curl, new connections, over IPv6", "tunnel ipip", "IPv4"),
        "{stdout}"
    );
    for family in ["IPv4", "IPv6"] {
        assert!(
            has("10 MB download, 1400-byte MTU hop", "nat", family),
            "nat {family} PMTU: {stdout}"
        );
        assert!(has("ping -c 3", "nat", family), "{stdout}");
        // Source steering: each client namespace reached only its pool.
        assert!(has("curl from client", "nat, steered", family), "{stdout}");
        assert!(has("curl from client2", "nat, steered", family), "{stdout}");
        assert!(has("ping -c 3", "node address", family), "{stdout}");
    }
    // The tier of two boxes: flows kept across a box's SIGKILL, wrk across
    // the other's SIGTERM.
    assert!(has("tier failover", "dr", "IPv4"), "{stdout}");
    assert!(has("tier failover", "tunnel ipip", "IPv4"), "{stdout}");
    assert!(has("tier sigterm", "dr, 2 boxes", "IPv4"), "{stdout}");
    // Faults: the port's link down and up, SIGKILL and restart under wrk,
    // a connection table too small for the load, an IPv6 SYN flood.
    assert!(
        has("curl after the port's link down and up", "nat", "-"),
        "{stdout}"
    );
    assert!(
        has("curl after SIGKILL and restart", "nat", "-"),
        "{stdout}"
    );
    for mode in ["nat", "dr", "fullnat"] {
        assert!(
            has("wrk, 384 conns, table full", mode, "IPv4"),
            "{mode}: {stdout}"
        );
    }
    assert!(
        has("curl under SYN flood (rampart)", "synproxy", "IPv6"),
        "{stdout}"
    );
    // The soak (60 s): its figures are in the summary, each checked by
    // the script.
    assert!(
        has("soak 60 s: wrk keep-alive", "steady", "IPv4"),
        "{stdout}"
    );
    assert!(
        has("soak 60 s: UDP request/response", "steady", "IPv4"),
        "{stdout}"
    );
    assert!(
        summary["soak"]["rss_end_kb"].as_f64().unwrap() > 0.0,
        "{stdout}"
    );
    // Every row of a rampart case has no errors (the nftables rows are
    // reported, not asserted), but for curl under the flood, where the
    // issue's bound is 99% and the script checks it (flood_checks), and
    // the rows of a fault whose errors are its point (the script checks
    // them: `asserted` false).
    for r in rows.iter().filter(|r| {
        !r["mode"].as_str().unwrap().starts_with("nft")
            && !r["case"]
                .as_str()
                .unwrap()
                .starts_with("curl under SYN flood")
            && r["asserted"] != false
    }) {
        assert_eq!(r["errors"], 0, "{r}");
    }
    let flood = summary["flood"].as_array().unwrap();
    let v4 = flood.iter().filter(|f| f["family"] == "IPv4").count();
    assert_eq!(v4, 2, "rampart and nftables under the same flood: {stdout}");
    assert_eq!(flood.len(), 3, "and rampart under an IPv6 flood: {stdout}");
    let checks = summary["checks"].as_array().unwrap();
    // Findings of the nftables comparison are reported, not asserted.
    let asserted = |c: &&serde_json::Value| {
        !c["what"]
            .as_str()
            .unwrap_or("")
            .starts_with("(nftables, reported)")
    };
    assert!(
        checks.iter().filter(asserted).all(|c| c["ok"] == true),
        "{stdout}"
    );
    assert!(checks.len() >= 50, "{} checks ran: {stdout}", checks.len());
}

/// rampart on net_af_xdp, the driver docs/operations.md recommends for
/// hosts without a DPDK NIC: the forwarding modes and IP fragments (which
/// net_af_packet has the kernel reassemble for IPv4, so only this driver
/// shows rampart forwarding IPv4 fragments between real stacks).
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "runs on an optimised build only: cargo test --release --features dpdk --test e2e -- --include-ignored"
)]
#[cfg_attr(
    not(debug_assertions),
    ignore = "needs root, network namespaces, XDP on veth and the peers' tools; run with --include-ignored, as CI does"
)]
fn netns_end_to_end_af_xdp() {
    let (stdout, summary) = run_bed(
        &["--only", "modes,fragments", "--port-driver", "af_xdp"],
        300,
    );
    assert_eq!(summary["port_driver"], "af_xdp", "{stdout}");
    for family in ["IPv4", "IPv6"] {
        assert_mode_rows(&summary, family, &stdout);
        for mode in ["nat", "dr"] {
            let row = summary["rows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| {
                    r["case"] == "UDP echo in fragments"
                        && r["mode"] == mode
                        && r["family"] == family
                })
                .unwrap_or_else(|| panic!("fragments {mode} {family}: {stdout}"));
            assert!(row["requests"].as_u64().unwrap() > 0, "{row}: {stdout}");
        }
    }
    for r in summary["rows"].as_array().unwrap() {
        if r["asserted"] != false {
            assert_eq!(r["errors"], 0, "{r}");
        }
    }
    let checks = summary["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["ok"] == true), "{stdout}");
    assert!(checks.len() >= 40, "{} checks ran: {stdout}", checks.len());
}
