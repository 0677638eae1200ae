//! net_pcap vdev without hugepages: rx every frame of a pcap written here,
//! tx it back, check the tx pcap. One EAL per process, so one test here.

mod common;

use dpdk_bindings::{lcore, Eal};

#[test]
fn pcap_rx_tx_roundtrip_no_huge() {
    let dir = common::scratch_dir("pcap");
    let rx = dir.join("in.pcap");
    let tx = dir.join("out.pcap");
    let frames = common::sample_frames();
    common::write_pcap(&rx, &frames);
    assert_eq!(
        common::read_pcap(&rx),
        frames,
        "the pcap writer and reader agree"
    );

    let vdev = common::pcap_vdev("net_pcap0", &rx, &tx);
    let eal = Eal::init(common::eal_args("pcap", false, &[vdev])).expect("EAL init");
    assert!(!eal.has_hugepages());
    assert_eq!(lcore::lcore_id(), Some(eal.main_lcore()));
    assert!(lcore::tsc_hz() > 0);
    let t0 = lcore::rdtsc();
    assert!(lcore::rdtsc() >= t0);

    let again = Eal::init(common::eal_args("pcap", false, &[]));
    let err = again
        .err()
        .expect("a second EAL init in one process is refused");
    assert!(err.to_string().contains("already"), "{err}");

    assert!(
        dpdk_bindings::lookup_rx_timestamp(&eal),
        "net_pcap registers the rx timestamp field at probe"
    );
    common::pcap_loopback(&eal, "net_pcap0", "pcap_pool", &frames, &tx);

    drop(eal);
    common::remove_runtime_dir("pcap");
    let _ = std::fs::remove_dir_all(&dir);
}
