//! `[[vip.source]]`: prefixes (form, host bits, family, duplicates, how
//! many) and backends (among the VIP's, written as the VIP has them).

use super::*;

/// A NAT VIP with three IPv4 backends, then `sources` (TOML after them).
fn v4(sources: &str) -> String {
    with_node(&format!(
        r#"[[vip]]
name = "web"
address = "198.18.100.10"
port = 80
protocol = "tcp"
mode = "nat"

[[vip.backend]]
address = "198.18.1.11"
port = 8080

[[vip.backend]]
address = "198.18.1.12"
port = 8080

[[vip.backend]]
address = "198.18.1.13"
port = 9090
{sources}"#
    ))
}

/// The same for IPv6.
fn v6(sources: &str) -> String {
    with_node(&format!(
        r#"[[vip]]
name = "web6"
address = "2001:2:0:100::10"
port = 80
protocol = "tcp"
mode = "nat"

[[vip.backend]]
address = "2001:2:0:1::11"
port = 8080

[[vip.backend]]
address = "2001:2:0:1::12"
port = 8080
{sources}"#
    ))
}

fn source(prefixes: &str, backends: &str) -> String {
    format!("\n[[vip.source]]\nprefixes = {prefixes}\nbackends = {backends}\n")
}

fn subnet(s: &str) -> Subnet {
    let (a, l) = s.split_once('/').unwrap();
    Subnet {
        addr: a.parse().unwrap(),
        prefix_len: l.parse().unwrap(),
    }
}

#[test]
fn entries_load_in_file_order() {
    let t = v4(&format!(
        "{}{}",
        source(
            r#"["198.19.0.0/16", "198.18.64.0/18"]"#,
            r#"["198.18.1.12:8080", "198.18.1.11:8080"]"#
        ),
        source(r#"["198.19.7.0/24"]"#, r#"["198.18.1.13"]"#)
    ));
    let c = parse(&t, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let s = &c.vips[0].sources;
    assert_eq!(s.len(), 2);
    assert_eq!(
        s[0].prefixes,
        vec![subnet("198.19.0.0/16"), subnet("198.18.64.0/18")]
    );
    assert_eq!(s[0].backends, vec![1, 0]);
    // A bare address names the one backend that has it.
    assert_eq!(s[1].backends, vec![2]);
    assert_eq!(s[1].prefixes, vec![subnet("198.19.7.0/24")]);
    // Without entries, none.
    let c = parse(&v4(""), "t.toml").unwrap();
    assert!(c.vips[0].sources.is_empty());
}

#[test]
fn ipv6_entries_take_bracketed_backends() {
    let t = v6(&source(
        r#"["2001:2:0:8000::/49"]"#,
        r#"["[2001:2:0:1::12]:8080"]"#,
    ));
    let c = parse(&t, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.vips[0].sources[0].backends, vec![1]);
    assert_eq!(
        c.vips[0].sources[0].prefixes,
        vec![subnet("2001:2:0:8000::/49")]
    );
}

#[test]
fn prefixes_are_well_formed_with_host_bits_zero() {
    let t = v4(&source(r#"["198.19.0.0"]"#, r#"["198.18.1.11:8080"]"#));
    expect_err(
        &t,
        Some("vip[0].source[0].prefixes[0]"),
        line_of(&t, "198.19.0.0", 0),
        "is not a subnet",
    );
    let t = v4(&source(r#"["198.19.0.0/33"]"#, r#"["198.18.1.11:8080"]"#));
    expect_err(
        &t,
        Some("vip[0].source[0].prefixes[0]"),
        line_of(&t, "198.19.0.0/33", 0),
        "0..=32",
    );
    let t = v4(&source(
        r#"["198.18.0.0/15", "198.19.1.0/16"]"#,
        r#"["198.18.1.11:8080"]"#,
    ));
    expect_err(
        &t,
        Some("vip[0].source[0].prefixes[1]"),
        line_of(&t, "198.19.1.0/16", 0),
        "198.19.1.0/16 has host bits set; the subnet is 198.19.0.0/16",
    );
    let t = v4(&source(r#"[]"#, r#"["198.18.1.11:8080"]"#));
    expect_err(
        &t,
        Some("vip[0].source[0].prefixes"),
        line_of(&t, "prefixes = []", 0),
        "at least one client prefix",
    );
}

#[test]
fn prefixes_are_of_the_vips_family() {
    let t = v4(&source(
        r#"["2001:2:0:8000::/49"]"#,
        r#"["198.18.1.11:8080"]"#,
    ));
    expect_err(
        &t,
        Some("vip[0].source[0].prefixes[0]"),
        line_of(&t, "2001:2:0:8000::/49", 0),
        "2001:2:0:8000::/49 is IPv6 but the VIP 198.18.100.10 is IPv4",
    );
    let t = v6(&source(
        r#"["198.19.0.0/16"]"#,
        r#"["[2001:2:0:1::11]:8080"]"#,
    ));
    expect_err(
        &t,
        Some("vip[0].source[0].prefixes[0]"),
        line_of(&t, "198.19.0.0/16", 0),
        "is IPv4 but the VIP 2001:2:0:100::10 is IPv6",
    );
    // An IPv4-mapped prefix is IPv6 as written: refused on an IPv4 VIP.
    let t = v4(&source(
        r#"["::ffff:198.19.0.0/112"]"#,
        r#"["198.18.1.11:8080"]"#,
    ));
    expect_err(
        &t,
        Some("vip[0].source[0].prefixes[0]"),
        line_of(&t, "::ffff:198.19.0.0/112", 0),
        "is IPv6 but the VIP",
    );
}

#[test]
fn a_prefix_is_listed_once_per_vip() {
    let t = v4(&format!(
        "{}{}",
        source(r#"["198.19.0.0/16"]"#, r#"["198.18.1.11:8080"]"#),
        source(
            r#"["198.19.0.0/24", "198.19.0.0/16"]"#,
            r#"["198.18.1.12:8080"]"#
        )
    ));
    let first = line_of(&t, "198.19.0.0/16", 0);
    expect_err(
        &t,
        Some("vip[0].source[1].prefixes[1]"),
        line_of(&t, "198.19.0.0/16", 1),
        &format!("198.19.0.0/16 is already listed for this VIP (line {first})"),
    );
    // Another VIP may list it.
    let two = format!(
        "{}{}",
        v4(&source(r#"["198.19.0.0/16"]"#, r#"["198.18.1.11:8080"]"#)),
        r#"
[[vip]]
name = "other"
address = "198.18.100.11"
port = 80
protocol = "tcp"
mode = "nat"

[[vip.backend]]
address = "198.18.1.11"
port = 8080

[[vip.source]]
prefixes = ["198.19.0.0/16"]
backends = ["198.18.1.11:8080"]
"#
    );
    assert!(
        parse(&two, "t.toml").is_ok(),
        "{:?}",
        parse(&two, "t.toml").err()
    );
}

#[test]
fn backends_are_among_the_vips() {
    let t = v4(&source(r#"["198.19.0.0/16"]"#, r#"["198.18.1.14:8080"]"#));
    expect_err(
        &t,
        Some("vip[0].source[0].backends[0]"),
        line_of(&t, "198.18.1.14:8080", 0),
        "198.18.1.14:8080 is not a backend of this VIP (its backends are 198.18.1.11:8080, 198.18.1.12:8080, 198.18.1.13:9090)",
    );
    // The right address on the wrong port is not the backend either.
    let t = v4(&source(r#"["198.19.0.0/16"]"#, r#"["198.18.1.13:8080"]"#));
    expect_err(
        &t,
        Some("vip[0].source[0].backends[0]"),
        line_of(&t, "198.18.1.13:8080", 0),
        "is not a backend of this VIP",
    );
    let t = v4(&source(r#"["198.19.0.0/16"]"#, r#"["web-1"]"#));
    expect_err(
        &t,
        Some("vip[0].source[0].backends[0]"),
        line_of(&t, "web-1", 0),
        "`web-1` is not a backend: write ADDRESS:PORT",
    );
    let t = v4(&source(
        r#"["198.19.0.0/16"]"#,
        r#"["198.18.1.11:8080", "198.18.1.11"]"#,
    ));
    expect_err(
        &t,
        Some("vip[0].source[0].backends[1]"),
        line_of(&t, "\"198.18.1.11\"]", 0),
        "198.18.1.11 is listed twice in this source entry",
    );
    let t = v4(&source(r#"["198.19.0.0/16"]"#, r#"[]"#));
    expect_err(
        &t,
        Some("vip[0].source[0].backends"),
        line_of(&t, "backends = []", 0),
        "at least one of the VIP's backends",
    );
    let t = v4(&source(r#"["198.19.0.0/16"]"#, r#"["198.18.1.11:8080"]"#))
        .replace("backends = [", "pool = [");
    expect_err(
        &t,
        Some("vip[0].source[0]"),
        line_of(&t, "pool", 0),
        "unknown key `pool`, expected one of prefixes, backends",
    );
}

#[test]
fn a_bare_address_must_name_one_backend() {
    let t = v4(&source(r#"["198.19.0.0/16"]"#, r#"["198.18.1.11"]"#)).replace(
        "address = \"198.18.1.12\"\nport = 8080",
        "address = \"198.18.1.11\"\nport = 8081",
    );
    expect_err(
        &t,
        Some("vip[0].source[0].backends[0]"),
        line_of(&t, "\"198.18.1.11\"]", 0),
        "198.18.1.11 is the address of several backends of this VIP; write ADDRESS:PORT",
    );
}

/// Prefix `i` of `len` bits (30 or 32) inside 198.18.0.0/15.
fn nth(i: usize, len: u8) -> String {
    let a = 0xc612_0000u32 + (i as u32) * (1 << (32 - len));
    format!("\"{}/{len}\"", std::net::Ipv4Addr::from(a))
}

/// 10,000 prefixes in one VIP load; more than the limit do not.
#[test]
fn ten_thousand_prefixes_and_the_limit() {
    let list = |n: usize| {
        let p: Vec<String> = (0..n).map(|i| nth(i, 30)).collect();
        format!("[{}]", p.join(", "))
    };
    let t = v4(&source(&list(10_000), r#"["198.18.1.11:8080"]"#));
    let c = parse(&t, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.vips[0].sources[0].prefixes.len(), 10_000);

    let half = MAX_SOURCE_PREFIXES / 2 + 1;
    let first: Vec<String> = (0..half).map(|i| nth(i, 32)).collect();
    let second: Vec<String> = (half..2 * half).map(|i| nth(i, 32)).collect();
    let t = v4(&format!(
        "{}{}",
        source(
            &format!("[{}]", first.join(", ")),
            r#"["198.18.1.11:8080"]"#
        ),
        source(
            &format!("[{}]", second.join(", ")),
            r#"["198.18.1.12:8080"]"#
        ),
    ));
    expect_err(
        &t,
        Some("vip[0].source[1].prefixes"),
        line_of(&t, "prefixes", 1),
        &format!("at most {MAX_SOURCE_PREFIXES} source prefixes"),
    );
}

#[test]
fn at_most_max_sources_entries() {
    let entries: String = (0..=MAX_SOURCES)
        .map(|i| source(&format!("[\"198.19.{i}.0/24\"]"), r#"["198.18.1.11:8080"]"#))
        .collect();
    let t = v4(&entries);
    expect_err(
        &t,
        Some(&format!("vip[0].source[{MAX_SOURCES}]")),
        line_of(&t, &format!("\"198.19.{MAX_SOURCES}.0/24\""), 0) - 1,
        &format!("at most {MAX_SOURCES} source entries"),
    );
}
