use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use super::validate::next_prime;
use super::*;

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
    assert_eq!(c.vips.len(), 11);
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

// ---- VIPs ------------------------------------------------------------------

#[test]
fn vip_port_zero() {
    let t = with_node(&ONE_VIP.replace("port = 80\n", "port = 0\n"));
    expect_err(
        &t,
        Some("vip[0].port"),
        line_of(&t, "port = 0", 0),
        "1..=65535",
    );
    let t = with_node(&ONE_VIP.replace("port = 80\n", "port = 65536\n"));
    expect_err(
        &t,
        Some("vip[0].port"),
        line_of(&t, "port = 65536", 0),
        "1..=65535",
    );
}

#[test]
fn backend_port_zero() {
    let t = with_node(&ONE_VIP.replace("port = 8080", "port = 0"));
    expect_err(
        &t,
        Some("vip[0].backend[0].port"),
        line_of(&t, "port = 0", 0),
        "1..=65535",
    );
}

#[test]
fn misspelled_choices_list_the_options() {
    let t = with_node(&ONE_VIP.replace("\"tcp\"", "\"TCP\""));
    expect_err(
        &t,
        Some("vip[0].protocol"),
        line_of(&t, "TCP", 0),
        "expected one of tcp, udp",
    );
    let t = with_node(&ONE_VIP.replace("\"nat\"", "\"full-nat\""));
    expect_err(
        &t,
        Some("vip[0].mode"),
        line_of(&t, "full-nat", 0),
        "expected one of nat, fullnat, dr",
    );
    let t = with_node(&ONE_VIP.replace("mode = \"nat\"", "mode = \"nat\"\nscheduler = \"wlc\""));
    expect_err(
        &t,
        Some("vip[0].scheduler"),
        line_of(&t, "wlc", 0),
        "expected one of maglev, rr, wrr, lc, sh",
    );
}

#[test]
fn table_size_prime_and_bounded() {
    let t = with_node(&ONE_VIP.replace("mode = \"nat\"", "mode = \"nat\"\ntable_size = 65536"));
    let e = expect_err(
        &t,
        Some("vip[0].table_size"),
        line_of(&t, "65536", 0),
        "65536 is not prime (Maglev needs a prime table size, e.g. 65537)",
    );
    assert_eq!(e.column(), Some(14));
    let t = with_node(&ONE_VIP.replace("mode = \"nat\"", "mode = \"nat\"\ntable_size = 5"));
    expect_err(
        &t,
        Some("vip[0].table_size"),
        line_of(&t, "= 5", 0),
        "7..=10000019",
    );
    let t = with_node(&ONE_VIP.replace("mode = \"nat\"", "mode = \"nat\"\ntable_size = 10000079"));
    expect_err(
        &t,
        Some("vip[0].table_size"),
        line_of(&t, "10000079", 0),
        "7..=10000019",
    );
}

#[test]
fn table_size_covers_backends() {
    let mut t = with_node(&ONE_VIP.replace("mode = \"nat\"", "mode = \"nat\"\ntable_size = 7"));
    for i in 12..19 {
        t.push_str(&format!("\n[[vip.backend]]\naddress = \"198.18.1.{i}\"\n"));
    }
    expect_err(
        &t,
        Some("vip[0].table_size"),
        line_of(&t, "= 7", 0),
        "one slot per backend",
    );
}

#[test]
fn table_size_limits_are_prime() {
    assert_eq!(next_prime(MAX_TABLE_SIZE), MAX_TABLE_SIZE);
    assert_eq!(next_prime(MIN_TABLE_SIZE), MIN_TABLE_SIZE);
    assert_eq!(next_prime(DEFAULT_TABLE_SIZE), DEFAULT_TABLE_SIZE);
    assert_eq!(next_prime(65536), 65537);
}

#[test]
fn dr_backend_port_must_match() {
    let t = with_node(&ONE_VIP.replace("\"nat\"", "\"dr\""));
    let e = expect_err(
        &t,
        Some("vip[0].backend[0].port"),
        line_of(&t, "port = 8080", 0),
        "must equal the VIP port (80) or be omitted",
    );
    assert!(e.message().starts_with("dr does not rewrite ports"));
    let t = with_node(&ONE_VIP.replace("\"nat\"", "\"dr\"").replace("8080", "80"));
    assert_eq!(parse(&t, "t.toml").unwrap().vips[0].backends[0].port, 80);
}

#[test]
fn nat_backend_port_defaults_to_vip_port() {
    let t = with_node(&ONE_VIP.replace("port = 8080\n", ""));
    assert_eq!(parse(&t, "t.toml").unwrap().vips[0].backends[0].port, 80);
}

#[test]
fn fullnat_needs_local_addresses() {
    let t = with_node(&ONE_VIP.replace("\"nat\"", "\"fullnat\""));
    expect_err(
        &t,
        Some("vip[0].local_addresses"),
        line_of(&t, "[[vip]]", 0),
        "fullnat needs local_addresses",
    );
    let t =
        with_node(&ONE_VIP.replace("mode = \"nat\"", "mode = \"fullnat\"\nlocal_addresses = []"));
    expect_err(
        &t,
        Some("vip[0].local_addresses"),
        line_of(&t, "local_addresses", 0),
        "at least one local address",
    );
}

#[test]
fn local_addresses_only_for_fullnat() {
    let t = with_node(&ONE_VIP.replace(
        "mode = \"nat\"",
        "mode = \"nat\"\nlocal_addresses = [\"198.18.0.200\"]",
    ));
    expect_err(
        &t,
        Some("vip[0].local_addresses"),
        line_of(&t, "local_addresses", 0),
        "only fullnat uses local_addresses",
    );
}

#[test]
fn local_address_family_must_match() {
    let t = with_node(&ONE_VIP.replace(
        "mode = \"nat\"",
        "mode = \"fullnat\"\nlocal_addresses = [\"2001:2::200\"]",
    ));
    expect_err(
        &t,
        Some("vip[0].local_addresses[0]"),
        line_of(&t, "2001:2::200", 0),
        "does not translate between address families",
    );
}

#[test]
fn backend_family_must_match() {
    let t = with_node(&ONE_VIP.replace("\"198.18.1.11\"", "\"2001:2:0:1::11\""));
    expect_err(
        &t,
        Some("vip[0].backend[0].address"),
        line_of(&t, "2001:2:0:1::11", 0),
        "is IPv6 but the VIP 198.18.100.10 is IPv4",
    );
}

#[test]
fn duplicate_vip_service() {
    let second = ONE_VIP.replace("\"web\"", "\"web2\"");
    let t = with_node(&format!("{ONE_VIP}\n{second}"));
    expect_err(
        &t,
        Some("vip[1].address"),
        line_of(&t, "198.18.100.10", 1),
        "tcp 198.18.100.10:80 is already served by VIP `web` (line 8)",
    );
    // Same address and port over another protocol is a different service.
    let udp = second.replace("\"tcp\"", "\"udp\"");
    assert!(parse(&with_node(&format!("{ONE_VIP}\n{udp}")), "t.toml").is_ok());
}

#[test]
fn duplicate_vip_name() {
    let second = ONE_VIP.replace("port = 80\n", "port = 81\n");
    let t = with_node(&format!("{ONE_VIP}\n{second}"));
    expect_err(
        &t,
        Some("vip[1].name"),
        line_of(&t, "name = \"web\"", 1),
        "already used (line 7)",
    );
    let t = with_node(&ONE_VIP.replace("\"web\"", "\"web site\""));
    expect_err(
        &t,
        Some("vip[0].name"),
        line_of(&t, "web site", 0),
        "not a valid VIP name",
    );
}

#[test]
fn duplicate_backend() {
    let t = with_node(&format!(
        "{ONE_VIP}\n[[vip.backend]]\naddress = \"198.18.1.11\"\nport = 8080\n"
    ));
    expect_err(
        &t,
        Some("vip[0].backend[1].address"),
        line_of(&t, "198.18.1.11", 1),
        "198.18.1.11:8080 is listed twice in this VIP",
    );
    // Same host on another port is another backend.
    let t = with_node(&format!(
        "{ONE_VIP}\n[[vip.backend]]\naddress = \"198.18.1.11\"\nport = 8081\n"
    ));
    assert_eq!(parse(&t, "t.toml").unwrap().vips[0].backends.len(), 2);
}

#[test]
fn vip_address_conflicts() {
    let t = with_node(&ONE_VIP.replace("198.18.100.10", "198.18.0.1"));
    expect_err(
        &t,
        Some("vip[0].address"),
        line_of(&t, "address = \"198.18.0.1\"", 0),
        "node.addresses",
    );

    let api = r#"[[vip]]
name = "api"
address = "198.18.100.20"
port = 443
protocol = "tcp"
mode = "fullnat"
local_addresses = ["198.18.100.10"]
"#;
    // A local address equal to an earlier VIP address.
    let t = with_node(&format!("{ONE_VIP}\n{api}"));
    expect_err(
        &t,
        Some("vip[1].local_addresses[0]"),
        line_of(&t, "[\"198.18.100.10\"]", 0),
        "is the address of VIP `web`",
    );
    // A VIP address equal to an earlier local address.
    let t = with_node(&format!("{api}\n{ONE_VIP}"));
    expect_err(
        &t,
        Some("vip[1].address"),
        line_of(&t, "address = \"198.18.100.10\"", 0),
        "is a local address of VIP `api`",
    );
    // A local address equal to its own VIP address.
    let t = with_node(&api.replace("[\"198.18.100.10\"]", "[\"198.18.100.20\"]"));
    expect_err(
        &t,
        Some("vip[0].local_addresses[0]"),
        line_of(&t, "[\"198.18.100.20\"]", 0),
        "is the address of VIP `api`",
    );
}

#[test]
fn backend_must_not_be_ourselves() {
    let t = with_node(&ONE_VIP.replace("198.18.1.11", "198.18.0.1"));
    expect_err(
        &t,
        Some("vip[0].backend[0].address"),
        line_of(&t, "address = \"198.18.0.1\"", 0),
        "node.addresses",
    );
}

#[test]
fn weights() {
    let t = with_node(&ONE_VIP.replace("port = 8080", "port = 8080\nweight = 0"));
    assert_eq!(parse(&t, "t.toml").unwrap().vips[0].backends[0].weight, 0);
    let t = with_node(&ONE_VIP.replace("port = 8080", "port = 8080\nweight = -1"));
    expect_err(
        &t,
        Some("vip[0].backend[0].weight"),
        line_of(&t, "weight", 0),
        "0..=65535",
    );
    let t = with_node(&ONE_VIP.replace("port = 8080", "port = 8080\nweight = 65536"));
    expect_err(
        &t,
        Some("vip[0].backend[0].weight"),
        line_of(&t, "weight", 0),
        "0..=65535",
    );
    // A VIP with no backends is valid (it drops new flows).
    let t = with_node(&ONE_VIP.replace(
        "[[vip.backend]]\naddress = \"198.18.1.11\"\nport = 8080\n",
        "",
    ));
    assert!(parse(&t, "t.toml").unwrap().vips[0].backends.is_empty());
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

// ---- [dpdk] and [[port]] ------------------------------------------------------

#[test]
fn dpdk_sections_are_optional() {
    let c = parse(&with_node(ONE_VIP), "t.toml").unwrap();
    assert_eq!(c.dpdk, None);
    assert!(c.ports.is_empty());
    for f in [
        "configs/rampart.toml",
        "configs/minimal.toml",
        "configs/bench.toml",
    ] {
        let c = load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(f))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.dpdk.is_none() && c.ports.is_empty(), "{f}");
    }
}

#[test]
fn dpdk_example_config_loads() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/dpdk-pcap.toml");
    let c = load(&path).unwrap_or_else(|e| panic!("{e}"));
    let d = c.dpdk.as_ref().unwrap();
    assert_eq!(d.workers, 1);
    assert_eq!(d.mempool_size, 8191);
    assert!(d.eal_args.iter().any(|a| a == "--no-huge"));
    assert_eq!(c.ports.len(), 1);
    let p = &c.ports[0];
    assert_eq!(p.device_name(), "net_pcap0");
    assert!(!p.is_pci() && p.is_finite_pcap());
    assert_eq!(p.vdev_arg("rx_pcap"), Some("pcap-fixtures/nat-v4.in.pcap"));
    assert_eq!(p.subnets[0].to_string(), "198.18.0.0/15");
    assert_eq!(d.idle_exit_ms_for(&c.ports), DEFAULT_PCAP_IDLE_EXIT_MS);
}

#[test]
fn dpdk_defaults_and_values() {
    let t = with_node(
        r#"[dpdk]
eal_args = ["--no-huge", "-m", "512"]
lcores = [3, 1]
control_lcore = 0
mempool_size = 4095
mempool_cache = 128
rx_descriptors = 512
tx_descriptors = 2048
tx_retries = 0
stats_interval = 0
idle_exit_ms = 250

[[port]]
name = "0000:01:00.0"
subnets = ["198.18.0.0/24", "2001:2::/48"]

[[port]]
name = "02:00.1,rxq_cqe_comp_en=0"
subnets = ["198.18.1.0/24"]
"#,
    );
    let c = parse(&t, "t.toml").unwrap();
    let d = c.dpdk.unwrap();
    assert_eq!(d.eal_args, ["--no-huge", "-m", "512"]);
    assert_eq!((d.workers, d.lcores.clone()), (2, vec![3, 1]));
    assert_eq!(d.control_lcore, Some(0));
    assert_eq!((d.mempool_size, d.mempool_cache), (4095, 128));
    assert_eq!((d.rx_descriptors, d.tx_descriptors), (512, 2048));
    assert_eq!((d.tx_retries, d.stats_interval), (0, 0));
    assert_eq!(d.idle_exit_ms_for(&c.ports), 250);
    assert!(c.ports.iter().all(Port::is_pci));
    assert_eq!(c.ports[0].device_name(), "0000:01:00.0");
    assert_eq!(c.ports[1].device_name(), "0000:02:00.1");
    assert_eq!(c.ports[0].subnets.len(), 2);

    let c = parse(&with_node("[dpdk]\n"), "t.toml").unwrap();
    let d = c.dpdk.unwrap();
    assert_eq!(d, Dpdk::default());
    assert_eq!((d.workers, d.tx_retries, d.stats_interval), (1, 4, 1));
    // Idle exit by default only when every port is a pcap file read once.
    let pcap = Port {
        name: "net_pcap0,rx_pcap=a.pcap,tx_pcap=b.pcap".into(),
        subnets: vec![],
        mtu: None,
    };
    let endless = Port {
        name: "net_pcap1,rx_pcap=a.pcap,infinite_rx=1".into(),
        subnets: vec![],
        mtu: None,
    };
    assert_eq!(d.idle_exit_ms_for(std::slice::from_ref(&pcap)), 1000);
    assert_eq!(d.idle_exit_ms_for(&[pcap, endless]), 0);
    assert_eq!(d.idle_exit_ms_for(&[]), 0);
}

#[test]
fn subnets_contain() {
    let s = Subnet {
        addr: "198.18.0.0".parse().unwrap(),
        prefix_len: 15,
    };
    assert!(s.contains("198.19.255.1".parse().unwrap()));
    assert!(!s.contains("198.20.0.1".parse().unwrap()));
    assert!(!s.contains("2001:2::1".parse().unwrap()));
    let all = Subnet {
        addr: "::".parse().unwrap(),
        prefix_len: 0,
    };
    assert!(all.contains("2001:db8::1".parse().unwrap()));
    assert_eq!(prefix_mask_v4(0), 0);
    assert_eq!(prefix_mask_v4(32), u32::MAX);
    assert_eq!(prefix_mask_v6(128), u128::MAX);
}

#[test]
fn dpdk_errors_name_the_key() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("[dpdk]\nworkers = 0\n", "dpdk.workers", "workers = 0", "out of range"),
        ("[dpdk]\nworkers = 65\n", "dpdk.workers", "workers = 65", "1..=64"),
        ("[dpdk]\nlcores = []\n", "dpdk.lcores", "lcores", "at least one CPU"),
        ("[dpdk]\nlcores = [1, 1]\n", "dpdk.lcores[1]", "lcores", "listed twice"),
        (
            "[dpdk]\nworkers = 3\nlcores = [1, 2]\n",
            "dpdk.workers",
            "workers",
            "lcores lists 2 CPUs",
        ),
        (
            "[dpdk]\nlcores = [1]\ncontrol_lcore = 1\n",
            "dpdk.control_lcore",
            "control_lcore",
            "also in lcores",
        ),
        ("[dpdk]\nmempool_size = 10\n", "dpdk.mempool_size", "mempool_size", "255.."),
        ("[dpdk]\nmempool_cache = 600\n", "dpdk.mempool_cache", "mempool_cache", "0..=512"),
        (
            "[dpdk]\nmempool_size = 255\nmempool_cache = 256\n",
            "dpdk.mempool_cache",
            "mempool_cache",
            "2/3 of the pool",
        ),
        ("[dpdk]\nrx_descriptors = 8\n", "dpdk.rx_descriptors", "rx_desc", "32..=32768"),
        ("[dpdk]\ntx_retries = -1\n", "dpdk.tx_retries", "tx_retries", "out of range"),
        ("[dpdk]\neal_args = [\"\"]\n", "dpdk.eal_args[0]", "eal_args", "empty"),
        ("[dpdk]\nidle_exit_ms = -5\n", "dpdk.idle_exit_ms", "idle_exit", "out of range"),
        (
            "[[port]]\nname = \"eth0\"\n",
            "port[0].name",
            "name = ",
            "neither a PCI address",
        ),
        (
            "[[port]]\nname = \"net_pcap0, rx_pcap=a\"\n",
            "port[0].name",
            "name = ",
            "without spaces",
        ),
        (
            "[[port]]\nname = \"net_ring0\"\n[[port]]\nname = \"net_ring0,x=1\"\n",
            "port[1].name",
            "net_ring0,x",
            "already port (line",
        ),
        (
            "[[port]]\nname = \"01:00.0\"\n[[port]]\nname = \"0000:01:00.0\"\n",
            "port[1].name",
            "0000:01",
            "already port",
        ),
        (
            "[[port]]\nname = \"net_ring0\"\nsubnets = [\"198.18.1.1/24\"]\n",
            "port[0].subnets[0]",
            "subnets",
            "host bits set; the subnet is 198.18.1.0/24",
        ),
        (
            "[[port]]\nname = \"net_ring0\"\nsubnets = [\"198.18.1.0\"]\n",
            "port[0].subnets[0]",
            "subnets",
            "prefix length",
        ),
        (
            "[[port]]\nname = \"net_ring0\"\nsubnets = [\"198.18.1.0/33\"]\n",
            "port[0].subnets[0]",
            "subnets",
            "0..=32",
        ),
        (
            "[[port]]\nname = \"net_ring0\"\nsubnets = [\"2001:2::/129\"]\n",
            "port[0].subnets[0]",
            "subnets",
            "0..=128",
        ),
        (
            "[[port]]\nname = \"net_ring0\"\nsubnets = [\"x/8\"]\n",
            "port[0].subnets[0]",
            "subnets",
            "not an IPv4 or IPv6 address",
        ),
        (
            "[[port]]\nname = \"net_ring0\"\nsubnets = [\"10.0.0.0/8\"]\n[[port]]\nname = \"net_ring1\"\nsubnets = [\"10.0.0.0/8\"]\n",
            "port[1].subnets[0]",
            "10.0.0.0/8\"]\n",
            "already behind port[0]",
        ),
    ];
    for (body, key, needle, msg) in cases {
        let t = with_node(body);
        // The line of the last occurrence of `needle` (the offending value).
        let nth = t.matches(needle).count() - 1;
        expect_err(&t, Some(key), line_of(&t, needle, nth), msg);
    }
}

#[test]
fn dpdk_unknown_keys_are_refused() {
    let t = with_node("[dpdk]\nworkers = 1\nlcore = [1]\n");
    let e = expect_err(
        &t,
        Some("dpdk"),
        line_of(&t, "lcore =", 0),
        "unknown key `lcore`",
    );
    assert!(e.message().contains("lcores"), "{e}");
    let t = with_node("[[port]]\nname = \"net_ring0\"\nsubnet = [\"10.0.0.0/8\"]\n");
    let e = expect_err(
        &t,
        Some("port[0]"),
        line_of(&t, "subnet =", 0),
        "unknown key `subnet`",
    );
    assert!(e.message().contains("subnets"), "{e}");
    let t = with_node("[[port]]\nsubnets = []\n");
    let e = parse(&t, "t.toml").unwrap_err();
    assert_eq!(e.key(), Some("port[0].name"), "{e}");
    let t = with_node("[port]\nname = \"net_ring0\"\n");
    let e = parse(&t, "t.toml").unwrap_err();
    assert!(e.message().contains("[[port]]"), "{e}");
}

#[test]
fn pci_addresses() {
    use super::is_pci_address;
    for ok in ["0000:01:00.0", "01:00.7", "abcd:ef:1f.3"] {
        assert!(is_pci_address(ok), "{ok}");
    }
    for bad in [
        "01:00.8",
        "1:00.0",
        "0000:01:00",
        "net_pcap0",
        "00:00:00:00:00:01",
        "",
    ] {
        assert!(!is_pci_address(bad), "{bad}");
    }
}

// ---- [control] ---------------------------------------------------------------

/// Asserts the whole error line: `expected` is `LINE:COL: key: reason`.
#[track_caller]
fn expect_exact(text: &str, expected: &str) {
    match parse(text, "t.toml") {
        Ok(c) => panic!("expected `{expected}`, got {c:?}"),
        Err(e) => assert_eq!(e.to_string(), format!("t.toml:{expected}")),
    }
}

#[test]
fn control_defaults_when_absent() {
    let want = ControlConfig {
        socket: Some(PathBuf::from("/run/rampart/rampart.sock")),
        prometheus: Some(SocketAddr::from(([127, 0, 0, 1], 9185))),
        removed_vip: ConnPolicy::Drain,
        removed_backend: ConnPolicy::Drain,
    };
    assert_eq!(ControlConfig::default(), want);
    assert_eq!(want.socket.as_deref(), Some(Path::new(DEFAULT_SOCKET)));
    assert_eq!(want.prometheus, DEFAULT_PROMETHEUS.parse().ok());
    assert_eq!(ConnPolicy::default(), ConnPolicy::Drain);
    let c = parse(&with_node(ONE_VIP), "t.toml").unwrap();
    assert_eq!(c.control, want);
    // An empty section is the defaults too.
    let c = parse(&with_node("[control]\n"), "t.toml").unwrap();
    assert_eq!(c.control, want);
}

#[test]
fn control_values_parse() {
    let t = with_node(
        r#"[control]
socket = "/run/rampart-b/ctl.sock"
prometheus = "198.18.0.1:9100"
removed_vip = "reset"
removed_backend = "reset"
"#,
    );
    let c = parse(&t, "t.toml").unwrap().control;
    assert_eq!(c.socket, Some(PathBuf::from("/run/rampart-b/ctl.sock")));
    assert_eq!(
        c.prometheus,
        Some(SocketAddr::from(([198, 18, 0, 1], 9100)))
    );
    assert_eq!(
        (c.removed_vip, c.removed_backend),
        (ConnPolicy::Reset, ConnPolicy::Reset)
    );
    // IPv6 in brackets; one policy left at its default.
    let t =
        with_node("[control]\nprometheus = \"[2001:2::1]:9185\"\nremoved_backend = \"drain\"\n");
    let c = parse(&t, "t.toml").unwrap().control;
    assert_eq!(c.prometheus, Some("[2001:2::1]:9185".parse().unwrap()));
    assert_eq!(c.socket, ControlConfig::default().socket);
    assert_eq!(
        (c.removed_vip, c.removed_backend),
        (ConnPolicy::Drain, ConnPolicy::Drain)
    );
}

#[test]
fn control_empty_strings_turn_off() {
    let t = with_node("[control]\nsocket = \"\"\nprometheus = \"\"\n");
    let c = parse(&t, "t.toml").unwrap().control;
    assert_eq!((c.socket, c.prometheus), (None, None));
    assert_eq!(c.removed_vip, ConnPolicy::Drain);
}

#[test]
fn control_errors() {
    // [control] is line 6, its first key line 7.
    let t = with_node("[control]\nprometheus = \"198.18.0.1\"\n");
    expect_exact(
        &t,
        "7:14: control.prometheus: `198.18.0.1` is not ADDR:PORT (e.g. 127.0.0.1:9185)",
    );
    let t = with_node("[control]\nprometheus = \"2001:2::1:9185\"\n");
    expect_exact(
        &t,
        "7:14: control.prometheus: `2001:2::1:9185` is not ADDR:PORT (e.g. 127.0.0.1:9185); write an IPv6 address in brackets, e.g. [::1]:9185",
    );
    let t = with_node("[control]\nsocket = \"\"\nprometheus = \"198.18.0.1:0\"\n");
    expect_exact(
        &t,
        "8:14: control.prometheus: port 0 is refused: give the port to listen on, e.g. 127.0.0.1:9185",
    );
    let t = with_node("[control]\nsocket = \"/run/a\\u0000b.sock\"\n");
    expect_exact(
        &t,
        "7:10: control.socket: the path contains a NUL byte, which a unix socket path cannot hold",
    );
    // 107 bytes fit sun_path (with its NUL); 108 do not.
    let fits = format!("/{}", "s".repeat(MAX_SOCKET_PATH - 1));
    let t = with_node(&format!("[control]\nsocket = \"{fits}\"\n"));
    assert_eq!(
        parse(&t, "t.toml").unwrap().control.socket,
        Some(PathBuf::from(&fits))
    );
    let t = with_node(&format!("[control]\nsocket = \"{fits}s\"\n"));
    expect_exact(
        &t,
        "7:10: control.socket: the path is 108 bytes; a unix socket path is at most 107 bytes (sun_path), so pick a shorter one (e.g. /run/rampart/rampart.sock)",
    );
    let t = with_node("[control]\nremoved_vip = \"drop\"\n");
    expect_exact(
        &t,
        "7:15: control.removed_vip: `drop` is not a policy; expected one of drain, reset",
    );
    let t = with_node("[control]\nremoved_backend = \"Reset\"\n");
    expect_exact(
        &t,
        "7:19: control.removed_backend: `Reset` is not a policy; expected one of drain, reset",
    );
    let t = with_node("[control]\nsockets = \"/run/r.sock\"\n");
    expect_exact(
        &t,
        "7:1: control: unknown key `sockets`, expected one of socket, prometheus, removed_vip, removed_backend",
    );
    // The first bad value in the file wins, whatever the field order.
    let t = with_node("[control]\nremoved_backend = \"none\"\nprometheus = \"x\"\n");
    expect_exact(
        &t,
        "7:19: control.removed_backend: `none` is not a policy; expected one of drain, reset",
    );
}

// ---- [vip.health] and [vip.backend.health] -------------------------------------

/// ONE_VIP (lines 6..) with a `[vip.health]` table on line 13 holding `health`
/// (from line 14), before its backend.
fn with_health(health: &str) -> String {
    with_node(&ONE_VIP.replace(
        "mode = \"nat\"\n",
        &format!("mode = \"nat\"\n\n[vip.health]\n{health}"),
    ))
}

/// ONE_VIP (lines 6..15) followed by `vip_health` and a second backend
/// (198.18.1.12) whose `[vip.backend.health]` keys are `backend_health`.
fn with_backend_health(vip_health: &str, backend_health: &str) -> String {
    with_node(&format!(
        "{ONE_VIP}\n[vip.health]\n{vip_health}\n[[vip.backend]]\naddress = \"198.18.1.12\"\n\n[vip.backend.health]\n{backend_health}"
    ))
}

#[test]
fn health_defaults_when_absent() {
    let want = HealthCheck {
        kind: HealthKind::None,
        interval_ms: 2000,
        timeout_ms: 1000,
        rise: 2,
        fall: 3,
        down: ConnPolicy::Drain,
    };
    assert_eq!(HealthCheck::default(), want);
    assert_eq!(HealthKind::default(), HealthKind::None);
    let c = parse(&with_node(ONE_VIP), "t.toml").unwrap();
    assert_eq!(c.vips[0].health, want);
    assert_eq!(c.vips[0].backends[0].health, want);
    // An empty table is the defaults too.
    let c = parse(&with_health(""), "t.toml").unwrap();
    assert_eq!(c.vips[0].health, want);
}

#[test]
fn health_values_parse() {
    let t = with_health(
        "kind = \"tcp\"\ninterval_ms = 5000\ntimeout_ms = 4999\nrise = 1\nfall = 100\ndown = \"reset\"\n",
    );
    let c = parse(&t, "t.toml").unwrap();
    let want = HealthCheck {
        kind: HealthKind::Tcp,
        interval_ms: 5000,
        timeout_ms: 4999,
        rise: 1,
        fall: 100,
        down: ConnPolicy::Reset,
    };
    assert_eq!(c.vips[0].health, want);
    // A backend without a table of its own takes the VIP's check.
    assert_eq!(c.vips[0].backends[0].health, want);
    // The range ends are accepted.
    let t = with_health("interval_ms = 3600000\ntimeout_ms = 3599999\n");
    let h = parse(&t, "t.toml").unwrap().vips[0].health;
    assert_eq!((h.interval_ms, h.timeout_ms), (3_600_000, 3_599_999));
    let t = with_health("interval_ms = 100\ntimeout_ms = 10\n");
    let h = parse(&t, "t.toml").unwrap().vips[0].health;
    assert_eq!((h.interval_ms, h.timeout_ms), (100, 10));
    // The table may also follow the VIP's backends.
    let t = with_node(&format!("{ONE_VIP}\n[vip.health]\nkind = \"tcp\"\n"));
    let v = &parse(&t, "t.toml").unwrap().vips[0];
    assert_eq!(v.health.kind, HealthKind::Tcp);
    assert_eq!(v.backends[0].health.kind, HealthKind::Tcp);
    // Over IPv6, from the node's IPv6 address.
    let t = with_node(
        &ONE_VIP
            .replace("198.18.100.10", "2001:2:0:100::10")
            .replace("198.18.1.11", "2001:2:0:1::11")
            .replace(
                "mode = \"nat\"\n",
                "mode = \"nat\"\nhealth = { kind = \"tcp\" }\n",
            ),
    );
    assert_eq!(
        parse(&t, "t.toml").unwrap().vips[0].health.kind,
        HealthKind::Tcp
    );
    // A udp VIP may set everything but a tcp kind.
    let t = with_health("kind = \"none\"\ninterval_ms = 500\ntimeout_ms = 100\n")
        .replace("\"tcp\"", "\"udp\"");
    assert_eq!(parse(&t, "t.toml").unwrap().vips[0].health.interval_ms, 500);
}

#[test]
fn backend_health_overrides_the_vips() {
    let t = with_backend_health(
        "kind = \"tcp\"\ninterval_ms = 5000\ntimeout_ms = 2000\nrise = 3\nfall = 4\ndown = \"reset\"\n",
        "fall = 1\ntimeout_ms = 500\n",
    );
    let v = &parse(&t, "t.toml").unwrap().vips[0];
    let vip = HealthCheck {
        kind: HealthKind::Tcp,
        interval_ms: 5000,
        timeout_ms: 2000,
        rise: 3,
        fall: 4,
        down: ConnPolicy::Reset,
    };
    assert_eq!(v.health, vip);
    assert_eq!(v.backends[0].health, vip);
    assert_eq!(
        v.backends[1].health,
        HealthCheck {
            fall: 1,
            timeout_ms: 500,
            ..vip
        }
    );
    // Every key can be overridden, including turning the check off.
    let t = with_backend_health(
        "kind = \"tcp\"\n",
        "kind = \"none\"\ninterval_ms = 300\ntimeout_ms = 200\nrise = 7\nfall = 8\ndown = \"reset\"\n",
    );
    let v = &parse(&t, "t.toml").unwrap().vips[0];
    assert_eq!(v.backends[0].health.kind, HealthKind::Tcp);
    assert_eq!(
        v.backends[1].health,
        HealthCheck {
            kind: HealthKind::None,
            interval_ms: 300,
            timeout_ms: 200,
            rise: 7,
            fall: 8,
            down: ConnPolicy::Reset,
        }
    );
    // Without [vip.health] a backend's keys apply over the defaults; an
    // inline table works as well.
    let t = with_node(&format!(
        "{ONE_VIP}health = {{ kind = \"tcp\", rise = 5 }}\n"
    ));
    let v = &parse(&t, "t.toml").unwrap().vips[0];
    assert_eq!(v.health, HealthCheck::default());
    assert_eq!(
        v.backends[0].health,
        HealthCheck {
            kind: HealthKind::Tcp,
            rise: 5,
            ..HealthCheck::default()
        }
    );
}

#[test]
fn health_ranges() {
    // [vip.health] is line 13, its first key line 14.
    let cases = [
        (
            "interval_ms = 99\n",
            "14:15: vip[0].health.interval_ms: 99 is out of range: interval_ms must be 100..=3600000 milliseconds",
        ),
        (
            "interval_ms = 3600001\n",
            "14:15: vip[0].health.interval_ms: 3600001 is out of range: interval_ms must be 100..=3600000 milliseconds",
        ),
        (
            "timeout_ms = 9\n",
            "14:14: vip[0].health.timeout_ms: 9 is out of range: timeout_ms must be 10..=3600000 milliseconds",
        ),
        (
            "interval_ms = 3600000\ntimeout_ms = 3600001\n",
            "15:14: vip[0].health.timeout_ms: 3600001 is out of range: timeout_ms must be 10..=3600000 milliseconds",
        ),
        (
            "rise = 0\n",
            "14:8: vip[0].health.rise: 0 is out of range: rise must be 1..=100",
        ),
        (
            "fall = 101\n",
            "14:8: vip[0].health.fall: 101 is out of range: fall must be 1..=100",
        ),
        (
            "fall = -1\n",
            "14:8: vip[0].health.fall: -1 is out of range: fall must be 1..=100",
        ),
        (
            "kind = \"http\"\n",
            "14:8: vip[0].health.kind: `http` is not a health check kind; expected one of none, tcp",
        ),
        (
            "down = \"kill\"\n",
            "14:8: vip[0].health.down: `kill` is not a policy; expected one of drain, reset",
        ),
        (
            "interval_ms = \"2s\"\n",
            "14:15: vip[0].health.interval_ms: expected an integer, found string \"2s\"",
        ),
        (
            "intervall_ms = 3000\n",
            "14:1: vip[0].health: unknown key `intervall_ms`, expected one of kind, interval_ms, timeout_ms, rise, fall, down",
        ),
        // The first bad value in the file wins, whatever the field order.
        (
            "fall = 0\nkind = \"udp\"\n",
            "14:8: vip[0].health.fall: 0 is out of range: fall must be 1..=100",
        ),
    ];
    for (health, want) in cases {
        expect_exact(&with_health(health), want);
    }
}

#[test]
fn health_timeout_below_interval() {
    let why = "a probe has to time out before the next one is sent";
    // Against the default interval (2000).
    expect_exact(
        &with_health("timeout_ms = 2000\n"),
        &format!("14:14: vip[0].health.timeout_ms: 2000 must be below interval_ms (2000): {why}"),
    );
    expect_exact(
        &with_health("interval_ms = 1000\ntimeout_ms = 1500\n"),
        &format!("15:14: vip[0].health.timeout_ms: 1500 must be below interval_ms (1000): {why}"),
    );
    // An interval at or under the default timeout (1000) names the interval.
    expect_exact(
        &with_health("interval_ms = 1000\n"),
        &format!("14:15: vip[0].health.interval_ms: 1000 must be above timeout_ms (1000): {why}"),
    );
    // A backend is held to it with the values it inherits. Its table is on
    // line 23, its first key on line 24.
    expect_exact(
        &with_backend_health("interval_ms = 3000\n", "timeout_ms = 3000\n"),
        &format!("24:14: vip[0].backend[1].health.timeout_ms: 3000 must be below interval_ms (3000): {why}; this backend takes interval_ms from vip[0].health"),
    );
    expect_exact(
        &with_backend_health("timeout_ms = 1500\n", "interval_ms = 1200\n"),
        &format!("24:15: vip[0].backend[1].health.interval_ms: 1200 must be above timeout_ms (1500): {why}; this backend takes timeout_ms from vip[0].health"),
    );
    expect_exact(
        &with_backend_health("rise = 2\n", "interval_ms = 500\ntimeout_ms = 700\n"),
        &format!("25:14: vip[0].backend[1].health.timeout_ms: 700 must be below interval_ms (500): {why}"),
    );
    // Raising the interval alone is fine, and so is lowering both.
    let t = with_backend_health("timeout_ms = 1500\n", "interval_ms = 1600\n");
    assert_eq!(
        parse(&t, "t.toml").unwrap().vips[0].backends[1]
            .health
            .interval_ms,
        1600
    );
}

#[test]
fn health_backend_errors_name_the_backend() {
    // Under an empty [vip.health], the [vip.backend.health] of backend[1] is
    // line 22, its first key line 23.
    let cases = [
        (
            "rise = 0\n",
            "23:8: vip[0].backend[1].health.rise: 0 is out of range: rise must be 1..=100",
        ),
        (
            "interval_ms = 50\n",
            "23:15: vip[0].backend[1].health.interval_ms: 50 is out of range: interval_ms must be 100..=3600000 milliseconds",
        ),
        (
            "down = \"drop\"\n",
            "23:8: vip[0].backend[1].health.down: `drop` is not a policy; expected one of drain, reset",
        ),
        (
            "fal = 2\n",
            "23:1: vip[0].backend[1].health: unknown key `fal`, expected one of kind, interval_ms, timeout_ms, rise, fall, down",
        ),
    ];
    for (health, want) in cases {
        expect_exact(&with_backend_health("", health), want);
    }
}

#[test]
fn health_tcp_needs_a_tcp_vip() {
    let t = with_health("kind = \"tcp\"\n").replace("\"tcp\"\nmode", "\"udp\"\nmode");
    expect_exact(
        &t,
        "14:8: vip[0].health.kind: tcp probes need a tcp VIP; this VIP is udp (leave kind out or set it to \"none\")",
    );
    // A backend cannot turn it on either.
    let t = with_backend_health("", "kind = \"tcp\"\n").replace("\"tcp\"\nmode", "\"udp\"\nmode");
    expect_exact(
        &t,
        "23:8: vip[0].backend[1].health.kind: tcp probes need a tcp VIP; this VIP is udp (leave kind out or set it to \"none\")",
    );
}

#[test]
fn health_tcp_needs_a_node_address_of_the_vips_family() {
    let v4_only = NODE.replace(", \"2001:2::1\"", "");
    let vip6 = ONE_VIP
        .replace("198.18.100.10", "2001:2:0:100::10")
        .replace("198.18.1.11", "2001:2:0:1::11");
    let t = format!(
        "{v4_only}\n{}",
        vip6.replace(
            "mode = \"nat\"\n",
            "mode = \"nat\"\n\n[vip.health]\nkind = \"tcp\"\n"
        )
    );
    expect_exact(
        &t,
        "14:8: vip[0].health.kind: tcp probes are sent from a node address of the VIP's family, and node.addresses has no IPv6 address; add one",
    );
    // The same VIP without probes needs no IPv6 node address.
    assert!(parse(&format!("{v4_only}\n{vip6}"), "t.toml").is_ok());
    // And an IPv4 VIP on an IPv6-only node.
    let v6_only = NODE.replace("\"198.18.0.1\", ", "");
    let t = format!("{v6_only}\n{ONE_VIP}\n[vip.backend.health]\nkind = \"tcp\"\n");
    expect_exact(
        &t,
        "18:8: vip[0].backend[0].health.kind: tcp probes are sent from a node address of the VIP's family, and node.addresses has no IPv4 address; add one",
    );
}

// ---- tunnel, MTU, [icmp] ------------------------------------------------------

const TUNNEL_VIP: &str = r#"[[vip]]
name = "edge"
address = "198.18.100.50"
port = 80
protocol = "tcp"
mode = "tunnel"
"#;

#[test]
fn tunnel_vips_load_with_their_encapsulation_and_any_backend_family() {
    let text = with_node(&format!(
        "{TUNNEL_VIP}\n[[vip.backend]]\naddress = \"198.18.7.21\"\n\n[[vip.backend]]\naddress = \"2001:2:0:7::22\"\nport = 80\n\n\
         [[vip]]\nname = \"edge6\"\naddress = \"2001:2:0:100::50\"\nport = 80\nprotocol = \"tcp\"\nmode = \"tunnel\"\nencap = \"gue\"\n\n\
         [[vip]]\nname = \"edge7\"\naddress = \"2001:2:0:100::51\"\nport = 80\nprotocol = \"tcp\"\nmode = \"tunnel\"\nencap = \"gue\"\ngue_port = 5555\n"
    ));
    let c = parse(&text, "t.toml").unwrap();
    assert_eq!(c.vips[0].mode, Mode::Tunnel);
    assert_eq!(c.vips[0].encap, Some(Encap::Ipip));
    assert_eq!(c.vips[0].backends[1].address, addr("2001:2:0:7::22"));
    assert_eq!(c.vips[0].backends[1].port, 80);
    assert_eq!(c.vips[1].encap, Some(Encap::Gue { port: 6080 }));
    assert_eq!(c.vips[2].encap, Some(Encap::Gue { port: 5555 }));
    assert_eq!(c.node.mtu, 1500);
    assert_eq!(c.effective_mtu(), 1500);
    assert_eq!(c.icmp, Icmp::default());
}

#[test]
fn tunnel_refuses_what_it_cannot_do() {
    // The backend answers the client directly: no SYN proxy.
    let text = with_node(&format!("{TUNNEL_VIP}synproxy = true\n"));
    expect_err(
        &text,
        Some("vip[0].synproxy"),
        line_of(&text, "synproxy", 0),
        "in tunnel mode the backend answers the client directly",
    );
    // No port translation.
    let text = with_node(&format!(
        "{TUNNEL_VIP}\n[[vip.backend]]\naddress = \"198.18.7.21\"\nport = 8080\n"
    ));
    expect_err(
        &text,
        Some("vip[0].backend[0].port"),
        line_of(&text, "port = 8080", 0),
        "tunnel does not rewrite ports",
    );
    // An outer source of the backend's family is needed.
    let text = format!(
        "[node]\nmac = \"02:00:00:00:00:01\"\naddresses = [\"198.18.0.1\"]\ngateway_mac = \"02:00:00:00:00:fe\"\n\n{TUNNEL_VIP}\n[[vip.backend]]\naddress = \"2001:2:0:7::22\"\n"
    );
    expect_err(
        &text,
        Some("vip[0].backend[0].address"),
        line_of(&text, "2001:2:0:7::22", 0),
        "node.addresses has no IPv6 address",
    );
    // An unknown encapsulation.
    let text = with_node(&format!("{TUNNEL_VIP}encap = \"gre\"\n"));
    expect_err(
        &text,
        Some("vip[0].encap"),
        line_of(&text, "gre", 0),
        "ipip",
    );
    // gue_port without gue.
    let text = with_node(&format!("{TUNNEL_VIP}gue_port = 6081\n"));
    expect_err(
        &text,
        Some("vip[0].gue_port"),
        line_of(&text, "gue_port", 0),
        "gue_port is for encap = \"gue\"",
    );
}

#[test]
fn encap_keys_belong_to_tunnel_vips_only() {
    let nat = TUNNEL_VIP.replace("\"tunnel\"", "\"nat\"");
    let text = with_node(&format!("{nat}encap = \"ipip\"\n"));
    expect_err(
        &text,
        Some("vip[0].encap"),
        line_of(&text, "encap", 0),
        "only tunnel VIPs encapsulate",
    );
    let text = with_node(&format!("{nat}gue_port = 6080\n"));
    expect_err(
        &text,
        Some("vip[0].gue_port"),
        line_of(&text, "gue_port", 0),
        "only tunnel VIPs",
    );
}

#[test]
fn mtu_and_icmp_keys() {
    let node = NODE.replace("[node]\n", "[node]\nmtu = 9000\n");
    let c = parse(
        &format!("{node}\n[icmp]\necho_rate = 50\n\n[[port]]\nname = \"net_ring0\"\nmtu = 4000\n"),
        "t.toml",
    )
    .unwrap();
    assert_eq!(c.node.mtu, 9000);
    assert_eq!(c.ports[0].mtu, Some(4000));
    assert_eq!(c.effective_mtu(), 4000);
    assert_eq!(
        c.icmp,
        Icmp {
            echo_rate: 50,
            echo_burst: 50
        }
    );
    let node = NODE.replace("[node]\n", "[node]\nmtu = 1000\n");
    expect_err(&node, Some("node.mtu"), 2, "1280");
    let text = with_node("[icmp]\necho_burst = 0\n");
    expect_err(
        &text,
        Some("icmp.echo_burst"),
        line_of(&text, "echo_burst", 0),
        "",
    );
}
