//! The kernel path (`[[port]] kernel_interface`): which of the node's own
//! frames the datapath passes to the kernel, within `dpdk.kernel_rate`,
//! and that VIP traffic, ARP and ND for our addresses and health-check
//! answers never take it. `rampart run` over a real TAP interface is in
//! tests/netns/af_packet.sh (through tests/dpdk_run.rs).

use rampart::config;
use rampart::datapath::{process, Verdict, WorkerState};
use rampart::flow::tcp_flags::SYN;
use rampart::flow::Mac;
use rampart::gen::{self, Eth, TcpSeg};
use rampart::snapshot::Snapshot;
use rampart::stats::{DropReason, Event};
use rampart_testkit::fixtures::net::{parse as ip, GATEWAY_MAC, NODE_MAC};
use rampart_testkit::toml::{self, Vip};

const CLIENT_MAC: Mac = Mac([2, 0, 0, 0, 0, 0x50]);

fn config(kernel: bool, dpdk: &str) -> config::Config {
    let mut text = toml::node(&["198.18.0.1", "2001:2::1"], &["198.18.1.11"]);
    text.push_str(
        &Vip::new("web", "198.18.100.10", 80, "tcp", "nat")
            .backends(&["198.18.1.11"], 8080)
            .to_string(),
    );
    text.push_str(&format!(
        "\n[dpdk]\n{dpdk}\n[[port]]\nname = \"net_ring0\"\n"
    ));
    if kernel {
        text.push_str("kernel_interface = \"rk0\"\n");
    }
    config::parse(&text, "kernel.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn worker(snap: &Snapshot) -> WorkerState {
    let mut ws = WorkerState::new(snap, 0, 1, 7);
    ws.set_clock_ns(1_000_000_000);
    ws
}

/// A TCP SYN from the client to `dst`:`dport`.
fn syn(dst: &str, dport: u16) -> Vec<u8> {
    let eth = Eth {
        src: GATEWAY_MAC,
        dst: NODE_MAC,
        vlan: None,
    };
    let seg = TcpSeg {
        sport: 40_000,
        dport,
        seq: 1,
        ack: 0,
        flags: SYN,
        window: 64_240,
        options: Vec::new(),
        payload: Vec::new(),
    };
    gen::tcp(&eth, ip("198.18.0.50"), ip(dst), 64, 1, &seg)
}

#[test]
fn the_nodes_own_tcp_goes_to_the_kernel_only_with_an_interface() {
    for kernel in [false, true] {
        let snap = Snapshot::build(&config(kernel, ""));
        let mut ws = worker(&snap);
        let mut f = syn("198.18.0.1", 179);
        let v = process(&mut f, &mut ws, &snap);
        if kernel {
            assert_eq!(v, Verdict::Kernel);
            assert_eq!(ws.stats.events[Event::KernelPassed as usize], 1);
            assert_eq!(f, syn("198.18.0.1", 179), "passed to the kernel as it came");
        } else {
            assert_eq!(v, Verdict::Drop(DropReason::LocalNotHandled));
            assert_eq!(ws.stats.events[Event::KernelPassed as usize], 0);
        }
        // VIP traffic never takes the kernel path.
        let mut f = syn("198.18.100.10", 80);
        assert_eq!(process(&mut f, &mut ws, &snap), Verdict::Forward);
        let mut f = syn("198.18.100.10", 81);
        assert_eq!(
            process(&mut f, &mut ws, &snap),
            Verdict::Drop(DropReason::NoService)
        );
    }
}

#[test]
fn arp_and_nd_answers_for_the_node_go_to_the_kernel_and_requests_are_still_answered() {
    let snap = Snapshot::build(&config(true, ""));
    let mut ws = worker(&snap);
    // The kernel asked for the client; the client's answer is the kernel's.
    let mut f = gen::arp_reply(CLIENT_MAC, NODE_MAC, ip("198.18.0.50"), ip("198.18.0.1"));
    assert_eq!(process(&mut f, &mut ws, &snap), Verdict::Kernel);
    // An answer for an address that is not the node's is not.
    let mut f = gen::arp_reply(CLIENT_MAC, NODE_MAC, ip("198.18.0.50"), ip("198.18.0.9"));
    assert_eq!(
        process(&mut f, &mut ws, &snap),
        Verdict::Drop(DropReason::ArpNotForUs)
    );
    // Requests for the node and the VIP are answered by rampart.
    for target in ["198.18.0.1", "198.18.100.10"] {
        let mut f = gen::arp_request(CLIENT_MAC, ip("198.18.0.50"), ip(target));
        assert_eq!(process(&mut f, &mut ws, &snap), Verdict::Reply);
    }
    // A neighbor advertisement sent to the node address.
    let mut f = gen::neighbor_advertisement(
        CLIENT_MAC,
        NODE_MAC,
        ip("2001:2::50"),
        ip("2001:2::1"),
        ip("2001:2::50"),
        gen::nd_flags::SOLICITED,
        Some(CLIENT_MAC),
    );
    assert_eq!(process(&mut f, &mut ws, &snap), Verdict::Kernel);
    assert_eq!(ws.stats.events[Event::KernelPassed as usize], 2);
}

#[test]
fn the_kernel_path_is_rate_limited_per_worker() {
    let snap = Snapshot::build(&config(true, "kernel_rate = 10\nkernel_burst = 4\n"));
    let mut ws = worker(&snap);
    let verdicts: Vec<Verdict> = (0..6)
        .map(|_| process(&mut syn("198.18.0.1", 22), &mut ws, &snap))
        .collect();
    assert_eq!(&verdicts[..4], &[Verdict::Kernel; 4]);
    assert_eq!(
        &verdicts[4..],
        &[Verdict::Drop(DropReason::KernelRateLimited); 2]
    );
    assert_eq!(
        ws.stats.consumed, 4,
        "frames passed to the kernel count as consumed"
    );
    // A second later the bucket has refilled.
    ws.set_clock_ns(2_000_000_000);
    assert_eq!(
        process(&mut syn("198.18.0.1", 22), &mut ws, &snap),
        Verdict::Kernel
    );
}

#[test]
fn replay_has_no_kernel_path() {
    let cfg = config(true, "");
    assert!(Snapshot::build(&cfg).kernel.is_some());
    let replayed = cfg.without_kernel_interfaces();
    let snap = Snapshot::build(&replayed);
    assert!(snap.kernel.is_none());
    let mut ws = worker(&snap);
    assert_eq!(
        process(&mut syn("198.18.0.1", 179), &mut ws, &snap),
        Verdict::Drop(DropReason::LocalNotHandled)
    );
}

#[test]
fn kernel_interface_names_are_checked() {
    for (value, want) in [
        ("\"\"", "not an interface name"),
        ("\"a-name-far-too-long\"", "1 to 15 characters"),
        ("\"rk 0\"", "not an interface name"),
    ] {
        let text = format!(
            "{}\n[[port]]\nname = \"net_ring0\"\nkernel_interface = {value}\n",
            toml::node(&["198.18.0.1"], &[])
        );
        let e = config::parse(&text, "k.toml").expect_err(value).to_string();
        assert!(
            e.contains("port[0].kernel_interface") && e.contains(want),
            "{e}"
        );
    }
    let text = format!(
        "{}\n[[port]]\nname = \"net_ring0\"\nkernel_interface = \"rk0\"\n\
         [[port]]\nname = \"net_ring1\"\nkernel_interface = \"rk0\"\n",
        toml::node(&["198.18.0.1"], &[])
    );
    let e = config::parse(&text, "k.toml")
        .expect_err("twice")
        .to_string();
    assert!(
        e.contains("port[1].kernel_interface") && e.contains("already"),
        "{e}"
    );
}
