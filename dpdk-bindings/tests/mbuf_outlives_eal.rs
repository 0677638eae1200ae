//! An mbuf that outlives every handle keeps DPDK memory alive: EAL cleanup is
//! skipped (with a note on stderr) instead of unmapping memory under it.

mod common;

use dpdk_bindings::{Eal, Mempool, SOCKET_ANY};

#[test]
fn mbuf_outliving_pool_and_eal_stays_valid() {
    let eal = Eal::init(common::eal_args("outlive", false, &[])).expect("EAL init");
    let pool = Mempool::new(&eal, "outlive_pool", 255, 0, 2176, SOCKET_ANY).expect("mempool");
    let mut m = pool.alloc().expect("alloc");
    m.append(4).expect("append").copy_from_slice(b"live");
    drop(pool);
    drop(eal);
    // Pool and EAL are still mapped: the mbuf reads and frees normally.
    assert_eq!(m.data(), b"live");
    drop(m);
    common::remove_runtime_dir("outlive");
}
