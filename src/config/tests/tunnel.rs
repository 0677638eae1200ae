//! Tunnel VIPs and their encapsulation, the MTU, `[icmp]`.

use super::*;

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
