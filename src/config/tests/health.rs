//! `[vip.health]` and `[vip.backend.health]`.

use super::*;

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
