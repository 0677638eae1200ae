//! The pcap round trip again, on hugepages (`--in-memory`, so no hugepage
//! files outlive the process). Ignored by default, with the reason, since
//! it needs free hugepages: `cargo test -p dpdk-bindings --
//! --include-ignored` runs it (as CI does, after scripts/setup-dpdk.sh).

mod common;

use dpdk_bindings::Eal;

/// 2 MiB pages the test needs: EAL's own memzones plus a 1023-mbuf pool.
const PAGES_NEEDED: u64 = 32;

#[test]
#[ignore = "needs 32 free 2 MiB hugepages (scripts/setup-dpdk.sh); run with --include-ignored, as CI does"]
fn pcap_rx_tx_roundtrip_hugepages() {
    let free = common::free_hugepages();
    assert!(
        free >= PAGES_NEEDED,
        "{free} free 2 MiB hugepages, need {PAGES_NEEDED} (run scripts/setup-dpdk.sh)"
    );
    let dir = common::scratch_dir("huge");
    let rx = dir.join("in.pcap");
    let tx = dir.join("out.pcap");
    let frames = common::sample_frames();
    common::write_pcap(&rx, &frames);

    let vdev = common::pcap_vdev("net_pcap0", &rx, &tx);
    let eal = Eal::init(common::eal_args("huge", true, &[vdev])).expect("EAL init");
    assert!(eal.has_hugepages());
    common::pcap_loopback(&eal, "net_pcap0", "huge_pool", &frames, &tx);

    drop(eal);
    common::remove_runtime_dir("huge");
    // EAL keeps its memory mapped until the process exits, so free pages are
    // not comparable here; what must hold is that no file pins them after.
    let leftovers: Vec<_> = std::fs::read_dir("/dev/hugepages")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let prefix = common::file_prefix("huge");
    assert!(
        !leftovers.iter().any(|f| f.starts_with(&prefix)),
        "hugepage files left: {leftovers:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
