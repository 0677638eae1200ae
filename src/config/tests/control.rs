//! `[control]`.

use super::*;

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
