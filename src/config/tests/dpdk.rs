//! `[dpdk]` and `[[port]]`.

use super::*;

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
idle_sleep_us = 50
idle_polls = 8

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
    assert_eq!((d.idle_sleep_us, d.idle_polls), (50, 8));
    assert!(c.ports.iter().all(Port::is_pci));
    assert_eq!(c.ports[0].device_name(), "0000:01:00.0");
    assert_eq!(c.ports[1].device_name(), "0000:02:00.1");
    assert_eq!(c.ports[0].subnets.len(), 2);

    let c = parse(&with_node("[dpdk]\n"), "t.toml").unwrap();
    let d = c.dpdk.unwrap();
    assert_eq!(d, Dpdk::default());
    assert_eq!((d.workers, d.tx_retries, d.stats_interval), (1, 4, 1));
    assert_eq!(
        (d.idle_sleep_us, d.idle_polls),
        (0, 1024),
        "pure polling by default"
    );
    // Idle exit by default only when every port is a pcap file read once.
    let pcap = Port {
        name: "net_pcap0,rx_pcap=a.pcap,tx_pcap=b.pcap".into(),
        subnets: vec![],
        mtu: None,
        kernel_interface: None,
    };
    let endless = Port {
        name: "net_pcap1,rx_pcap=a.pcap,infinite_rx=1".into(),
        subnets: vec![],
        mtu: None,
        kernel_interface: None,
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
        ("[dpdk]\nidle_sleep_us = 200000\n", "dpdk.idle_sleep_us", "idle_sleep", "0..=100000"),
        ("[dpdk]\nidle_polls = 0\n", "dpdk.idle_polls", "idle_polls", "1..=1000000"),
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
