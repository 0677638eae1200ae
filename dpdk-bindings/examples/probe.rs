//! Initialises EAL with the given arguments and lists the ports it found.
//!
//!     cargo run --example probe -- --no-pci --no-huge -m 512 --no-shconf \
//!         --vdev net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap

use dpdk_bindings::{Eal, Port, DPDK_VERSION};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let eal = match Eal::init(args) {
        Ok(eal) => eal,
        Err(e) => {
            eprintln!("probe: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "DPDK {DPDK_VERSION}: {} lcore(s), hugepages {}, {} port(s)",
        eal.lcore_count(),
        if eal.has_hugepages() { "yes" } else { "no" },
        Port::count(&eal)
    );
    for id in 0..dpdk_bindings::sys::RTE_MAX_ETHPORTS as u16 {
        let Ok(port) = Port::from_id(&eal, id) else {
            continue;
        };
        let mac = port
            .mac()
            .map(|m| m.map(|b| format!("{b:02x}")).join(":"))
            .unwrap_or_default();
        println!(
            "port {id}: {} driver {} mac {mac} link {:?}",
            port.name().unwrap_or_default(),
            port.driver_name().unwrap_or_default(),
            port.link()
        );
    }
}
