//! The config loader's tests: the shared snippets and helpers, the
//! whole-file and TOML-level checks and `[node]` / `[conntrack]` here;
//! one file per further section.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use super::validate::next_prime;
use super::*;

mod control;
mod dpdk;
mod health;
mod source;
mod tunnel;
mod vip;

fn addr(s: &str) -> Addr {
    Addr::from(s.parse::<IpAddr>().unwrap())
}

const NODE: &str = r#"[node]
mac = "02:00:00:00:00:01"
addresses = ["198.18.0.1", "2001:2::1"]
gateway_mac = "02:00:00:00:00:fe"
"#;

/// NODE followed by `rest`.
fn with_node(rest: &str) -> String {
    format!("{NODE}\n{rest}")
}

/// 1-based line of the first occurrence of `needle` (the `nth` one if given).
fn line_of(text: &str, needle: &str, nth: usize) -> usize {
    let (at, _) = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("`{needle}` not in test text"));
    text[..at].matches('\n').count() + 1
}

#[track_caller]
fn expect_err(text: &str, key: Option<&str>, line: usize, contains: &str) -> ConfigError {
    let e = match parse(text, "t.toml") {
        Ok(c) => panic!("expected an error containing `{contains}`, got {c:?}"),
        Err(e) => e,
    };
    assert_eq!(e.key(), key, "key of: {e}");
    assert_eq!(e.line(), Some(line), "line of: {e}");
    assert!(
        e.message().contains(contains),
        "message `{}` lacks `{contains}`",
        e.message()
    );
    assert!(e.to_string().starts_with(&format!("t.toml:{line}:")), "{e}");
    e
}

const ONE_VIP: &str = r#"[[vip]]
name = "web"
address = "198.18.100.10"
port = 80
protocol = "tcp"
mode = "nat"

[[vip.backend]]
address = "198.18.1.11"
port = 8080
"#;

/// Asserts the whole error line: `expected` is `LINE:COL: key: reason`.
#[track_caller]
fn expect_exact(text: &str, expected: &str) {
    match parse(text, "t.toml") {
        Ok(c) => panic!("expected `{expected}`, got {c:?}"),
        Err(e) => assert_eq!(e.to_string(), format!("t.toml:{expected}")),
    }
}

#[test]
fn reference_config_loads() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/rampart.toml");
    let c = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.node.mac.to_string(), "02:00:00:00:00:01");
    assert_eq!(c.node.gateway_mac.to_string(), "02:00:00:00:00:fe");
    assert_eq!(
        c.node.addresses,
        vec![addr("198.18.0.1"), addr("2001:2::1")]
    );
    assert_eq!(c.conntrack.capacity, 65536);
    assert_eq!(c.conntrack.timeouts, Timeouts::default());
    assert_eq!(c.neighbors.len(), 6);
    assert_eq!(c.neighbors[0].address, addr("198.18.1.11"));
    assert_eq!(c.vips.len(), 13);
    let tier = c.vip("tier").unwrap();
    assert!(tier.proxy_protocol == ProxyProtocol::V2 && tier.mode == Mode::FullNat);
    assert_eq!(c.vip("tier6").unwrap().proxy_protocol, ProxyProtocol::V2);
    assert_eq!(c.vip("web").unwrap().proxy_protocol, ProxyProtocol::Off);
    let shield = c.vip("shield").unwrap();
    assert!(shield.synproxy && shield.mode == Mode::Nat);
    assert!(c.vip("shield6").unwrap().synproxy);
    assert!(!c.vip("web").unwrap().synproxy);
    assert_eq!(
        c.synproxy.secret.map(|k| k.to_vec()),
        Some(b"rampart replay!!".to_vec())
    );
    assert_eq!(c.synproxy.mss, 1460);

    let web = c.vip("web").unwrap();
    assert_eq!(web.address, addr("198.18.100.10"));
    assert_eq!(
        (web.port, web.protocol, web.mode),
        (80, Protocol::Tcp, Mode::Nat)
    );
    assert_eq!(web.scheduler, SchedKind::Maglev);
    assert_eq!(web.table_size, 65537);
    assert!(web.local_addresses.is_empty());
    assert_eq!(web.backends.len(), 3);
    assert_eq!(web.backends[2].weight, 2);
    assert_eq!(web.backends[0].port, 8080);

    let web6 = c.vip("web6").unwrap();
    assert_eq!(web6.scheduler, SchedKind::Maglev);
    assert_eq!(web6.table_size, DEFAULT_TABLE_SIZE);
    assert!(web6.backends.iter().all(|b| b.weight == 1));

    let dns = c.vip("dns").unwrap();
    assert_eq!(
        (dns.protocol, dns.scheduler),
        (Protocol::Udp, SchedKind::Rr)
    );
    assert_eq!(dns.protocol.number(), 17);

    let api = c.vip("api").unwrap();
    assert_eq!(api.mode, Mode::FullNat);
    assert_eq!(api.local_addresses, vec![addr("198.18.0.200")]);
    assert_eq!(c.vip("api6").unwrap().scheduler, SchedKind::Wrr);

    let st = c.vip("static").unwrap();
    assert_eq!((st.mode, st.scheduler), (Mode::Dr, SchedKind::Sh));
    assert!(st.backends.iter().all(|b| b.port == 80 && b.weight == 1));
    let st6 = c.vip("static6").unwrap();
    assert_eq!(st6.address, addr("2001:2:0:100::30"));
    assert!(st6.backends.iter().all(|b| b.port == 80));

    // Golden outputs assume no probes and the default control settings.
    assert_eq!(c.control, ControlConfig::default());
    for v in &c.vips {
        assert_eq!(v.health, HealthCheck::default(), "{}", v.name);
        assert!(
            v.backends.iter().all(|b| b.health == v.health),
            "{}",
            v.name
        );
    }
}

#[test]
fn minimal_config_loads() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/minimal.toml");
    let c = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.vips.len(), 1);
    assert_eq!(c.vips[0].mode, Mode::Nat);
    assert_eq!(c.vips[0].backends.len(), 2);
    assert_eq!(c.conntrack, Conntrack::default());
}

#[test]
fn defaults() {
    let c = parse(&with_node(ONE_VIP), "t.toml").unwrap();
    assert_eq!(c.conntrack.capacity, DEFAULT_CONNTRACK_CAPACITY);
    assert_eq!(
        c.conntrack.timeouts,
        Timeouts {
            tcp_syn_sent: 30,
            tcp_syn_recv: 30,
            tcp_established: 900,
            tcp_fin_wait: 120,
            tcp_close_wait: 60,
            tcp_time_wait: 60,
            tcp_close: 10,
            udp: 300,
        }
    );
    assert!(c.neighbors.is_empty());
    let v = &c.vips[0];
    assert_eq!(v.scheduler, SchedKind::Maglev);
    assert_eq!(v.table_size, 65537);
    assert_eq!(v.backends[0].weight, 1);
    // A node with no VIPs is valid.
    assert!(parse(NODE, "t.toml").unwrap().vips.is_empty());
}

#[test]
fn names_round_trip() {
    for &n in Protocol::NAMES {
        assert_eq!(Protocol::from_name(n).unwrap().name(), n);
    }
    for &n in Mode::NAMES {
        assert_eq!(Mode::from_name(n).unwrap().name(), n);
    }
    for &n in SchedKind::NAMES {
        assert_eq!(SchedKind::parse(n).unwrap().name(), n);
    }
    for &n in ConnPolicy::NAMES {
        assert_eq!(ConnPolicy::from_name(n).unwrap().name(), n);
    }
    for &n in HealthKind::NAMES {
        assert_eq!(HealthKind::from_name(n).unwrap().name(), n);
    }
    assert_eq!(Protocol::Tcp.number(), 6);
    assert_eq!(Protocol::Udp.number(), 17);
}

#[test]
fn conntrack_and_timeouts_parse() {
    let t = with_node("[conntrack]\ncapacity = 1024\ntcp_established = 7200\nudp = 30\n");
    let c = parse(&t, "t.toml").unwrap();
    assert_eq!(c.conntrack.capacity, 1024);
    assert_eq!(c.conntrack.timeouts.tcp_established, 7200);
    assert_eq!(c.conntrack.timeouts.udp, 30);
    assert_eq!(c.conntrack.timeouts.tcp_syn_sent, 30);
}

// ---- TOML-level errors ---------------------------------------------------

#[test]
fn syntax_error_keeps_toml_position() {
    let t = "[node]\nmac = \"02:00:00:00:00:01\"\naddresses = [\"198.18.0.1\"";
    let e = parse(t, "t.toml").unwrap_err();
    assert_eq!(e.line(), Some(3));
    assert_eq!(e.key(), None);
}

#[test]
fn unknown_key_names_table_and_choices() {
    let t = with_node(&format!(
        "{ONE_VIP}\n[[vip.backend]]\naddress = \"198.18.1.12\"\nwieght = 3\n"
    ));
    let e = expect_err(
        &t,
        Some("vip[0].backend[1]"),
        line_of(&t, "wieght", 0),
        "unknown key `wieght`, expected one of address, port, weight",
    );
    assert!(e
        .to_string()
        .contains(": vip[0].backend[1]: unknown key `wieght`"));
}

#[test]
fn unknown_key_in_second_vip() {
    let t = with_node(&format!(
        "{ONE_VIP}\n{}",
        ONE_VIP
            .replace("\"web\"", "\"two\"")
            .replace("port = 80\n", "port = 81\nsheduler = \"rr\"\n")
    ));
    expect_err(
        &t,
        Some("vip[1]"),
        line_of(&t, "sheduler", 0),
        "unknown key `sheduler`",
    );
}

#[test]
fn unknown_top_level_key_and_table() {
    let t = with_node("vips = 3\n");
    // `vips = 3` after [node] belongs to [node].
    expect_err(
        &t,
        Some("node"),
        line_of(&t, "vips", 0),
        "unknown key `vips`",
    );
    let t = format!("{ONE_VIP}\n[nodes]\nx = 1\n{NODE}");
    expect_err(&t, None, line_of(&t, "[nodes]", 0), "unknown key `nodes`");
    let t = format!("{NODE}[conntrack]\ncapacity = 10\ntimeouts = 3\n");
    expect_err(
        &t,
        Some("conntrack"),
        line_of(&t, "timeouts", 0),
        "unknown key `timeouts`",
    );
}

#[test]
fn missing_keys_name_table_and_key() {
    let t = with_node(&ONE_VIP.replace("address = \"198.18.1.11\"\n", ""));
    expect_err(
        &t,
        Some("vip[0].backend[0].address"),
        line_of(&t, "[[vip.backend]]", 0),
        "required key is missing",
    );
    let t = with_node(&ONE_VIP.replace("mode = \"nat\"\n", ""));
    expect_err(
        &t,
        Some("vip[0].mode"),
        line_of(&t, "[[vip]]", 0),
        "missing",
    );
    let t = NODE.replace("gateway_mac = \"02:00:00:00:00:fe\"\n", "");
    expect_err(&t, Some("node.gateway_mac"), 1, "missing");
    expect_err(ONE_VIP, Some("node"), 1, "[node]");
}

#[test]
fn wrong_type_names_key() {
    let t = with_node(&ONE_VIP.replace("port = 80\n", "port = \"80\"\n"));
    expect_err(
        &t,
        Some("vip[0].port"),
        line_of(&t, "\"80\"", 0),
        "expected an integer",
    );
    let t = NODE.replace(
        "addresses = [\"198.18.0.1\", \"2001:2::1\"]",
        "addresses = \"198.18.0.1\"",
    );
    expect_err(&t, Some("node.addresses"), 3, "expected an array");
    let t = with_node(&ONE_VIP.replace("[[vip]]", "[vip]").replace(
        "[[vip.backend]]\naddress = \"198.18.1.11\"\nport = 8080\n",
        "",
    ));
    expect_err(&t, Some("vip"), line_of(&t, "[vip]", 0), "write [[vip]]");
}

// ---- node, neighbors, conntrack ------------------------------------------

#[test]
fn bad_mac() {
    let t = NODE.replace("02:00:00:00:00:01", "02:00:00:00:01");
    expect_err(&t, Some("node.mac"), 2, "not a MAC address");
    let t = NODE.replace("02:00:00:00:00:fe", "ff:ff:ff:ff:ff:ff");
    expect_err(&t, Some("node.gateway_mac"), 4, "unicast");
}

#[test]
fn bad_address() {
    let t = NODE.replace("\"2001:2::1\"", "\"2001:2::1/64\"");
    let e = expect_err(
        &t,
        Some("node.addresses[1]"),
        3,
        "not an IPv4 or IPv6 address",
    );
    assert!(e.message().contains("prefix length"));
    assert_eq!(e.column(), Some(28));
    let t = NODE.replace("\"198.18.0.1\"", "\"0.0.0.0\"");
    expect_err(&t, Some("node.addresses[0]"), 3, "unspecified");
}

#[test]
fn node_addresses_non_empty_and_unique() {
    let t = NODE.replace("[\"198.18.0.1\", \"2001:2::1\"]", "[]");
    expect_err(&t, Some("node.addresses"), 3, "at least one address");
    let t = NODE.replace("\"2001:2::1\"", "\"198.18.0.1\"");
    expect_err(&t, Some("node.addresses[1]"), 3, "listed twice");
}

#[test]
fn neighbor_rules() {
    let nb = "[[neighbor]]\naddress = \"198.18.1.11\"\nmac = \"02:00:00:00:01:0b\"\n";
    let t = with_node(&format!("{nb}\n{nb}"));
    expect_err(
        &t,
        Some("neighbor[1].address"),
        line_of(&t, "198.18.1.11", 1),
        "already has a neighbor entry (line 7)",
    );
    let t = with_node(&nb.replace("198.18.1.11", "198.18.0.1"));
    expect_err(&t, Some("neighbor[0].address"), 7, "node.addresses");
    let t = with_node(&nb.replace("02:00:00:00:01:0b", "02-00-00-00-01-0b"));
    expect_err(&t, Some("neighbor[0].mac"), 8, "not a MAC address");
}

#[test]
fn conntrack_bounds() {
    let t = with_node("[conntrack]\ncapacity = 0\n");
    expect_err(&t, Some("conntrack.capacity"), 7, "must be 1..=33554432");
    let t = with_node("[conntrack]\ncapacity = 67108865\n");
    expect_err(&t, Some("conntrack.capacity"), 7, "out of range");
    let t = with_node("[conntrack]\nudp = 30\ntcp_fin_wait = 0\ntcp_close = 0\n");
    expect_err(
        &t,
        Some("conntrack.tcp_fin_wait"),
        8,
        "must be 1..=604800 seconds",
    );
}

#[test]
fn first_error_wins() {
    let t = with_node(
        &ONE_VIP
            .replace("port = 80\n", "port = 0\n")
            .replace("8080", "0"),
    );
    expect_err(
        &t,
        Some("vip[0].port"),
        line_of(&t, "port = 0", 0),
        "1..=65535",
    );
}

#[test]
fn load_reports_unreadable_file() {
    let e = load(Path::new("/nonexistent/rampart.toml")).unwrap_err();
    assert_eq!(e.line(), None);
    assert!(e
        .to_string()
        .starts_with("/nonexistent/rampart.toml: cannot read config"));
}

/// The invalid examples under tests/data/bad-configs/ fail where their
/// first comment line says.
#[test]
fn bad_config_examples_fail_where_documented() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad-configs");
    let cases = [
        ("table-size-not-prime.toml", 17, "vip[0].table_size"),
        ("dr-port-mismatch.toml", 16, "vip[0].backend[0].port"),
        ("unknown-key.toml", 20, "vip[0].backend[1]"),
        (
            "fullnat-without-local-addresses.toml",
            7,
            "vip[0].local_addresses",
        ),
        ("mixed-families.toml", 15, "vip[0].backend[0].address"),
        ("synproxy-on-dr.toml", 13, "vip[0].synproxy"),
        (
            "health-timeout-not-below-interval.toml",
            17,
            "vip[0].health.timeout_ms",
        ),
        ("health-tcp-on-udp.toml", 15, "vip[0].health.kind"),
        (
            "health-backend-override-out-of-range.toml",
            27,
            "vip[0].backend[1].health.fall",
        ),
        (
            "control-prometheus-without-port.toml",
            8,
            "control.prometheus",
        ),
    ];
    for (file, line, key) in cases {
        let e = load(&dir.join(file)).unwrap_err();
        assert_eq!((e.line(), e.key()), (Some(line), Some(key)), "{e}");
    }
}

#[test]
fn synproxy_resends_must_end_before_the_entry_expires() {
    let text = |extra: &str| {
        format!(
            "[node]\nmac = \"02:00:00:00:00:01\"\naddresses = [\"198.18.0.1\"]\ngateway_mac = \"02:00:00:00:00:fe\"\n{extra}"
        )
    };
    let vip = "[[vip]]\nname = \"s\"\naddress = \"198.18.100.40\"\nport = 443\nprotocol = \"tcp\"\nmode = \"nat\"\nsynproxy = true\n";
    let e = parse(
        &text(&format!("[conntrack]\ntcp_syn_sent = 10\n[synproxy]\nsyn_retries = 5\nsyn_retry_interval = 2\n{vip}")),
        "t.toml",
    )
    .unwrap_err();
    assert_eq!(e.key(), Some("synproxy.syn_retries"), "{e}");
    assert!(e.to_string().contains("10 s"), "{e}");
    // Without a [synproxy] section the defaults (3 x 1 s) meet a short syn_sent.
    let e = parse(
        &text(&format!("[conntrack]\ntcp_syn_sent = 3\n{vip}")),
        "t.toml",
    )
    .unwrap_err();
    assert_eq!(e.key(), Some("conntrack.tcp_syn_sent"), "{e}");
    // Only a config with a SYN proxy VIP is held to it.
    parse(&text("[conntrack]\ntcp_syn_sent = 3\n"), "t.toml").unwrap();
    parse(
        &text(&format!("[conntrack]\ntcp_syn_sent = 11\n[synproxy]\nsyn_retries = 5\nsyn_retry_interval = 2\n{vip}")),
        "t.toml",
    )
    .unwrap();
}
