#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

//! The exposition checked with real parsers (prometheus-parse, a strict
//! line check, promtool when installed); the listener in [`http`].

use super::exposition::BACKEND_STATES;
use super::*;
use crate::control::model::{BackendReport, RefusalReport, StatsReport, VipReport, WorkerReport};
use prometheus_parse::{Scrape, Value};
use std::collections::{BTreeMap, HashSet};
use std::io::Write;

const QUOTED: &str = "v6 \"edge\" svc";

fn worker(id: u16, base: u64) -> WorkerReport {
    let drops = [("malformed", 0), ("no_vip", base + 3), ("no_backend", 0)];
    let events = [("syn_cookies_sent", base + 5), ("rst_sent", 0)];
    WorkerReport {
        worker: id,
        rx_packets: base + 1000,
        tx_packets: base + 990,
        rx_bytes: base + 64_000,
        tx_bytes: base + 63_000,
        consumed: base + 7,
        originated_packets: base + 11,
        handovers_out: base + 2,
        handovers_in: base + 4,
        handover_dropped: base + 5,
        tx_dropped: base + 6,
        tx_alloc_failed: base + 7,
        rx_multiseg: base + 8,
        kernel_dropped: base + 9,
        active_conns: base + 20,
        new_conns_per_sec: 1.5,
        drops: drops.iter().map(|&(k, v)| (k.to_string(), v)).collect(),
        events: events.iter().map(|&(k, v)| (k.to_string(), v)).collect(),
    }
}

fn backend(address: &str, state: &str, health: &str, base: u64) -> BackendReport {
    BackendReport {
        address: address.to_string(),
        vips: vec!["web".to_string()],
        state: state.to_string(),
        health: health.to_string(),
        admin: None,
        packets_in: base + 1,
        packets_out: base + 2,
        bytes_in: base + 3,
        bytes_out: base + 4,
        conns_total: base + 5,
        conns_active: base + 6,
        new_conns_per_sec: 0.25,
    }
}

fn report() -> StatsReport {
    let refusal = |listener: &str, reason: &str, count| RefusalReport {
        listener: listener.into(),
        reason: reason.into(),
        count,
    };
    StatsReport {
        announcements: Vec::new(),
        ports: Vec::new(),
        refusals: vec![
            refusal("control", "not_permitted", 3),
            refusal("metrics", "timeout", 0),
        ],
        uptime_secs: 12.5,
        generation: 7,
        reloads: 2,
        reload_failures: 1,
        workers: vec![worker(0, 0), worker(1, 100)],
        vips: vec![
            VipReport {
                name: "web".into(),
                address: "198.18.0.10:80".into(),
                protocol: "tcp".into(),
                mode: "nat".into(),
                retired: false,
                packets_in: 500,
                packets_out: 450,
                bytes_in: 40_000,
                bytes_out: 90_000,
                conns_total: 30,
                conns_active: 12,
                new_conns_per_sec: 2.75,
                backends_up: 1,
                backends_total: 2,
            },
            VipReport {
                name: QUOTED.into(),
                address: "[2001:2::10]:443".into(),
                protocol: "udp".into(),
                mode: "fullnat".into(),
                retired: true,
                packets_in: 9,
                packets_out: 8,
                bytes_in: 900,
                bytes_out: 800,
                conns_total: 3,
                conns_active: 1,
                new_conns_per_sec: 0.0,
                backends_up: 0,
                backends_total: 1,
            },
        ],
        backends: vec![
            backend("198.18.1.1:8080", "up", "up", 0),
            backend("198.18.1.2:8080", "drain", "up", 10),
            backend("[2001:2::1:1]:443", "down", "unchecked", 20),
        ],
    }
}

fn scrape(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// prometheus-parse hands label values back as written; undo the
/// format's escapes.
fn unescape(v: &str) -> String {
    let mut out = String::new();
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some(c) => out.push(c),
            None => panic!("dangling backslash in {v:?}"),
        }
    }
    out
}

fn value(v: &Value) -> f64 {
    match v {
        Value::Counter(x) | Value::Gauge(x) | Value::Untyped(x) => *x,
        other => panic!("unexpected {other:?}"),
    }
}

/// The one sample of `metric` whose labels include `labels`.
fn one<'a>(s: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> &'a prometheus_parse::Sample {
    let hits: Vec<_> = s
        .samples
        .iter()
        .filter(|x| x.metric == metric)
        .filter(|x| {
            labels
                .iter()
                .all(|(k, v)| x.labels.get(k).map(unescape).as_deref() == Some(*v))
        })
        .collect();
    assert_eq!(hits.len(), 1, "{metric} {labels:?}: {hits:?}");
    hits[0]
}

fn val(s: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    value(&one(s, metric, labels).value)
}

#[test]
fn parses_with_prometheus_parse() {
    let text = render(&report());
    let s = scrape(&text);

    assert_eq!(val(&s, "rampart_uptime_seconds", &[]), 12.5);
    assert_eq!(val(&s, "rampart_config_generation", &[]), 7.0);
    assert_eq!(val(&s, "rampart_reloads_total", &[]), 2.0);
    assert_eq!(val(&s, "rampart_reload_failures_total", &[]), 1.0);
    let denied = [("listener", "control"), ("reason", "not_permitted")];
    assert_eq!(val(&s, "rampart_listener_refusals_total", &denied), 3.0);
    let timeout = [("listener", "metrics"), ("reason", "timeout")];
    assert_eq!(val(&s, "rampart_listener_refusals_total", &timeout), 0.0);

    assert_eq!(
        val(&s, "rampart_rx_packets_total", &[("worker", "1")]),
        1100.0
    );
    assert_eq!(
        val(&s, "rampart_tx_bytes_total", &[("worker", "0")]),
        63_000.0
    );
    assert_eq!(
        val(&s, "rampart_handovers_in_total", &[("worker", "1")]),
        104.0
    );
    assert_eq!(
        val(&s, "rampart_tx_dropped_total", &[("worker", "1")]),
        106.0
    );
    assert_eq!(
        val(&s, "rampart_active_connections", &[("worker", "0")]),
        20.0
    );
    let drop = [("worker", "1"), ("reason", "no_vip")];
    assert_eq!(val(&s, "rampart_drops_total", &drop), 103.0);
    // Zero reasons are present from the start.
    let zero = [("worker", "0"), ("reason", "no_backend")];
    assert_eq!(val(&s, "rampart_drops_total", &zero), 0.0);
    let drops = s
        .samples
        .iter()
        .filter(|x| x.metric == "rampart_drops_total");
    assert_eq!(drops.count(), 6);
    let ev = [("worker", "0"), ("event", "syn_cookies_sent")];
    assert_eq!(val(&s, "rampart_events_total", &ev), 5.0);

    let web_in = [("vip", "web"), ("direction", "in")];
    let sample = one(&s, "rampart_vip_packets_total", &web_in);
    assert_eq!(sample.value, Value::Counter(500.0));
    assert_eq!(sample.labels.get("address"), Some("198.18.0.10:80"));
    assert_eq!(sample.labels.get("protocol"), Some("tcp"));
    assert_eq!(sample.labels.get("mode"), Some("nat"));
    let web_out = [("vip", "web"), ("direction", "out")];
    assert_eq!(val(&s, "rampart_vip_bytes_total", &web_out), 90_000.0);
    let web = [("vip", "web")];
    assert_eq!(
        one(&s, "rampart_vip_new_connections_per_second", &web).value,
        Value::Gauge(2.75)
    );
    assert_eq!(val(&s, "rampart_vip_backends_up", &web), 1.0);
    assert_eq!(val(&s, "rampart_vip_backends", &web), 2.0);
    assert_eq!(val(&s, "rampart_vip_retired", &web), 0.0);

    // The quoted name survives escaping; the IPv6 address keeps its
    // brackets.
    let v6 = [("vip", QUOTED)];
    let sample = one(&s, "rampart_vip_connections_total", &v6);
    assert_eq!(sample.value, Value::Counter(3.0));
    assert_eq!(sample.labels.get("address"), Some("[2001:2::10]:443"));
    assert_eq!(val(&s, "rampart_vip_retired", &v6), 1.0);
    assert!(text.contains(r#"vip="v6 \"edge\" svc""#), "{text}");

    let up = [("backend", "198.18.1.1:8080")];
    let drain = [("backend", "198.18.1.2:8080")];
    let down = [("backend", "[2001:2::1:1]:443")];
    assert_eq!(val(&s, "rampart_backend_up", &up), 1.0);
    assert_eq!(val(&s, "rampart_backend_up", &drain), 0.0);
    assert_eq!(val(&s, "rampart_backend_up", &down), 0.0);
    let b_in = [("backend", "198.18.1.2:8080"), ("direction", "in")];
    assert_eq!(val(&s, "rampart_backend_packets_total", &b_in), 11.0);
    let b_out = [("backend", "[2001:2::1:1]:443"), ("direction", "out")];
    assert_eq!(val(&s, "rampart_backend_bytes_total", &b_out), 24.0);
    assert_eq!(val(&s, "rampart_backend_connections_total", &down), 25.0);
    assert_eq!(val(&s, "rampart_backend_active_connections", &down), 26.0);
    for (b, current) in [
        ("198.18.1.1:8080", "up"),
        ("198.18.1.2:8080", "drain"),
        ("[2001:2::1:1]:443", "down"),
    ] {
        for state in BACKEND_STATES {
            let l = [("backend", b), ("state", state)];
            let want = if state == current { 1.0 } else { 0.0 };
            assert_eq!(val(&s, "rampart_backend_state", &l), want, "{b} {state}");
        }
    }
    let h = [("backend", "[2001:2::1:1]:443"), ("health", "unchecked")];
    assert_eq!(val(&s, "rampart_backend_health", &h), 1.0);

    // Every sample's family has HELP and TYPE (an untyped value means a
    // missing TYPE line).
    for x in &s.samples {
        assert!(s.docs.contains_key(&x.metric), "no HELP for {}", x.metric);
        assert!(
            matches!(x.value, Value::Counter(_) | Value::Gauge(_)),
            "no TYPE for {}",
            x.metric
        );
        let counter = x.metric.ends_with("_total");
        assert_eq!(
            matches!(x.value, Value::Counter(_)),
            counter,
            "{}",
            x.metric
        );
    }
    for name in [
        "rampart_rx_packets_total",
        "rampart_tx_packets_total",
        "rampart_rx_bytes_total",
        "rampart_tx_bytes_total",
        "rampart_consumed_packets_total",
        "rampart_originated_packets_total",
        "rampart_handovers_out_total",
        "rampart_handovers_in_total",
        "rampart_handover_dropped_total",
        "rampart_tx_dropped_total",
        "rampart_tx_alloc_failed_total",
        "rampart_rx_multiseg_total",
        "rampart_kernel_dropped_total",
        "rampart_active_connections",
        "rampart_drops_total",
        "rampart_events_total",
        "rampart_vip_packets_total",
        "rampart_vip_bytes_total",
        "rampart_vip_connections_total",
        "rampart_vip_active_connections",
        "rampart_vip_new_connections_per_second",
        "rampart_vip_backends_up",
        "rampart_vip_backends",
        "rampart_vip_retired",
        "rampart_backend_packets_total",
        "rampart_backend_bytes_total",
        "rampart_backend_connections_total",
        "rampart_backend_active_connections",
        "rampart_backend_new_connections_per_second",
        "rampart_backend_up",
        "rampart_backend_state",
        "rampart_uptime_seconds",
        "rampart_config_generation",
        "rampart_reloads_total",
        "rampart_reload_failures_total",
    ] {
        assert!(s.samples.iter().any(|x| x.metric == name), "{name} missing");
    }
    check_strict(&text);
}

/// A stricter reading of format 0.0.4 than prometheus-parse's: HELP
/// then TYPE once per family, its samples right after, names and label
/// syntax as the format defines them, escapes only `\\ \" \n`, values
/// as Go parses them, no series twice.
fn check_strict(text: &str) {
    fn is_name(s: &str, colon: bool) -> bool {
        let mut b = s.bytes();
        let first = b.next();
        first.is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || (colon && c == b':'))
            && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || (colon && c == b':'))
    }
    assert!(text.ends_with('\n'));
    let mut seen_families = HashSet::new();
    let mut series = HashSet::new();
    let mut current: Option<(String, bool)> = None; // (family, typed)
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert!(is_name(name, true), "{line}");
            assert!(!help.is_empty() && !help.contains('\n'));
            assert!(
                seen_families.insert(name.to_string()),
                "family twice: {line}"
            );
            current = Some((name.to_string(), false));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            let (family, typed) = current.as_mut().expect("TYPE before HELP");
            assert_eq!(name, family.as_str(), "TYPE of another family: {line}");
            assert!(!*typed, "TYPE twice: {line}");
            assert!(kind == "counter" || kind == "gauge", "{line}");
            *typed = true;
        } else {
            assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
            let (family, typed) = current.as_ref().expect("sample before HELP");
            assert!(*typed, "sample before TYPE: {line}");
            let name_end = line.find(['{', ' ']).unwrap();
            let name = &line[..name_end];
            assert_eq!(name, family.as_str(), "sample outside its family: {line}");
            let mut rest = &line[name_end..];
            let mut labels = BTreeMap::new();
            if let Some(l) = rest.strip_prefix('{') {
                rest = l;
                loop {
                    let (k, after) = rest.split_once("=\"").unwrap();
                    assert!(is_name(k, false), "label name {k:?} in {line}");
                    let mut value = String::new();
                    let mut chars = after.char_indices();
                    let end = loop {
                        let (i, c) = chars.next().expect("unterminated label value");
                        match c {
                            '"' => break i,
                            '\\' => match chars.next().unwrap().1 {
                                '\\' => value.push('\\'),
                                '"' => value.push('"'),
                                'n' => value.push('\n'),
                                e => panic!("bad escape \\{e} in {line}"),
                            },
                            c => value.push(c),
                        }
                    };
                    assert!(labels.insert(k.to_string(), value).is_none(), "{line}");
                    rest = &after[end + 1..];
                    if let Some(r) = rest.strip_prefix(',') {
                        rest = r;
                    } else {
                        rest = rest.strip_prefix('}').expect("label set not closed");
                        break;
                    }
                }
            }
            let v = rest.strip_prefix(' ').expect("no value");
            let ok = matches!(v, "NaN" | "+Inf" | "-Inf") || v.parse::<f64>().is_ok();
            assert!(ok && !v.contains(' '), "value {v:?} in {line}");
            assert!(
                series.insert((name.to_string(), labels)),
                "series twice: {line}"
            );
        }
    }
}

#[test]
fn escapes_label_values() {
    let mut r = report();
    r.vips[0].name = "back\\slash \"q\"\nline".into();
    let text = render(&r);
    check_strict(&text);
    assert!(text.contains(r#"vip="back\\slash \"q\"\nline""#), "{text}");
}

#[test]
fn floats_in_go_spelling() {
    let mut r = report();
    r.uptime_secs = f64::INFINITY;
    r.vips[0].new_conns_per_sec = f64::NAN;
    r.backends[0].new_conns_per_sec = f64::NEG_INFINITY;
    r.workers[0].new_conns_per_sec = 0.1;
    let text = render(&r);
    check_strict(&text);
    assert!(text.contains("rampart_uptime_seconds +Inf\n"));
    assert!(text.contains("rampart_new_connections_per_second{worker=\"0\"} 0.1\n"));
    assert!(text.contains("} NaN\n"));
    assert!(text.contains("} -Inf\n"));
}

#[test]
fn empty_report_is_valid() {
    let text = render(&StatsReport::default());
    check_strict(&text);
    let s = scrape(&text);
    assert_eq!(val(&s, "rampart_reloads_total", &[]), 0.0);
    assert!(text.contains("# TYPE rampart_drops_total counter\n"));
}

#[test]
fn vips_with_equal_labels_are_one_series() {
    let mut r = report();
    let mut old = r.vips[0].clone();
    old.retired = true;
    old.packets_in = 1;
    old.conns_active = 4;
    old.backends_up = 9;
    r.vips.insert(0, old);
    let text = render(&r);
    check_strict(&text);
    let s = scrape(&text);
    let web_in = [("vip", "web"), ("direction", "in")];
    assert_eq!(val(&s, "rampart_vip_packets_total", &web_in), 501.0);
    let web = [("vip", "web")];
    assert_eq!(val(&s, "rampart_vip_active_connections", &web), 16.0);
    assert_eq!(val(&s, "rampart_vip_backends_up", &web), 1.0);
    assert_eq!(val(&s, "rampart_vip_retired", &web), 0.0);
}

#[test]
fn promtool_accepts_the_exposition() {
    let Ok(out) = std::process::Command::new("promtool")
        .arg("--version")
        .output()
    else {
        eprintln!("promtool not installed; skipping");
        return;
    };
    assert!(out.status.success());
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(render(&report()).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

mod http;

#[test]
fn vip_announcements_only_with_bgp() {
    let mut r = report();
    assert!(!render(&r).contains("rampart_vip_announced"));
    r.announcements = crate::control::model::sample_announcements();
    let text = render(&r);
    assert!(
        text.contains("# TYPE rampart_vip_announced gauge\n"),
        "{text}"
    );
    assert!(
        text.contains("rampart_vip_announced{vip=\"web\",address=\"198.18.100.10\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("rampart_vip_announced{vip=\"api\",address=\"198.18.100.20\"} 0\n"),
        "{text}"
    );
}

#[test]
fn port_counters_only_on_a_run() {
    let mut r = report();
    assert!(!render(&r).contains("rampart_port_"));
    r.ports = vec![crate::control::model::PortReport {
        port: "0000:01:00.0".into(),
        rx_missed: 11,
        rx_nombuf: 12,
        rx_errors: 13,
        tx_errors: 14,
    }];
    let text = render(&r);
    check_strict(&text);
    let s = scrape(&text);
    let l = [("port", "0000:01:00.0")];
    assert_eq!(val(&s, "rampart_port_rx_missed_total", &l), 11.0);
    assert_eq!(val(&s, "rampart_port_rx_nombuf_total", &l), 12.0);
    assert_eq!(val(&s, "rampart_port_rx_errors_total", &l), 13.0);
    assert_eq!(val(&s, "rampart_port_tx_errors_total", &l), 14.0);
}
