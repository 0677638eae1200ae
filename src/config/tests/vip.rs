//! `[[vip]]` and `[[vip.backend]]`: ports, modes, table sizes, local addresses, duplicates and conflicts.

use super::*;

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
