//! rampart's own DPDK bindings.
//!
//! [`sys`] is the raw bindgen output over the installed DPDK (found through
//! pkg-config `libdpdk`, >= 22.11); DPDK's `static inline` functions such as
//! `rte_eth_rx_burst` are reached through C wrappers that bindgen generates and
//! `build.rs` compiles. The rest of the crate is a thin safe layer:
//!
//! - [`Eal`]: the environment, initialised once per process; cleaned up when
//!   the last handle (Eal, Mempool, Port, Ring, thread registration) drops and
//!   no mbuf is still out.
//! - [`Mempool`] / [`Mbuf`]: packet buffers; an `Mbuf` owns one packet and
//!   frees it on drop.
//! - [`MbufBatch`]: up to [`BATCH_CAPACITY`] owned mbufs, the unit of rx, tx
//!   and ring hand-over. Sending takes mbufs from the front of a batch and
//!   leaves exactly the unsent ones in it, so nothing leaks and nothing is
//!   freed twice.
//! - [`Port`] with per-queue handles [`RxQueue`] / [`TxQueue`]: each queue is
//!   polled by one thread at a time, which is what DPDK requires.
//! - [`Ring`] with [`RingProducer`] / [`RingConsumer`]: lock-free hand-over
//!   of mbufs between workers; single-producer/single-consumer rings hand out
//!   one handle per side.
//! - [`lcore`]: lcore ids, thread registration, TSC.
//!
//! Invariant of the whole layer: every DPDK object reached through a safe
//! handle was created after a successful `rte_eal_init` and stays valid while
//! the handle lives, because each handle keeps the EAL alive.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod sys {
    //! Raw bindgen output over the installed DPDK headers (see `wrapper.h`).
    #![allow(
        non_camel_case_types,
        non_upper_case_globals,
        non_snake_case,
        dead_code,
        missing_docs,
        unsafe_op_in_unsafe_fn,
        clippy::all,
        clippy::pedantic,
        clippy::undocumented_unsafe_blocks
    )]
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

mod eal;
mod error;
pub mod lcore;
mod mbuf;
mod mempool;
mod port;
mod ring;

pub use eal::Eal;
pub use error::Error;
pub use lcore::ThreadRegistration;
pub use mbuf::{lookup_rx_timestamp, Drain, Mbuf, MbufBatch, BATCH_CAPACITY};
pub use mempool::Mempool;
pub use port::{Link, Port, PortStats, RxQueue, TxOutcome, TxQueue};
pub use ring::{Access, Ring, RingConsumer, RingProducer};

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Any NUMA socket (DPDK's `SOCKET_ID_ANY`).
pub const SOCKET_ANY: i32 = sys::SOCKET_ID_ANY;

/// The DPDK version these bindings were generated from (pkg-config).
pub const DPDK_VERSION: &str = env!("RAMPART_DPDK_VERSION");

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}

    #[test]
    fn thread_traits() {
        send_sync::<Eal>();
        send_sync::<Mempool>();
        send_sync::<Port>();
        send_sync::<Ring>();
        send_sync::<Mbuf>();
        send_sync::<MbufBatch>();
        send::<RxQueue>();
        send::<TxQueue>();
        send::<RingProducer>();
        send::<RingConsumer>();
    }

    #[test]
    fn error_text_comes_from_rte_strerror() {
        let e = Error::new("rte_eth_dev_configure", libc::ENODEV);
        assert_eq!(e.code(), libc::ENODEV);
        assert_eq!(
            e.to_string(),
            "rte_eth_dev_configure failed: No such device (errno 19)"
        );
        let e = Error::from_ret("rte_eth_dev_start", -libc::EINVAL);
        assert_eq!(e.code(), libc::EINVAL);
        assert!(e.text().contains("Invalid argument"), "{e}");
        // DPDK's own codes have their own text.
        let e = Error::new("rte_eal_init", sys::E_RTE_NO_CONFIG as i32);
        assert!(!e.text().is_empty() && !e.text().contains("Unknown"), "{e}");
    }

    #[test]
    fn empty_batch_needs_no_dpdk() {
        let mut b = MbufBatch::new();
        assert!(b.is_empty() && !b.is_full());
        assert_eq!(b.free_space(), BATCH_CAPACITY);
        assert!(b.pop().is_none());
        assert_eq!(b.drain().count(), 0);
        assert_eq!(b.clear(), 0);
        assert!(b.as_slice().is_empty());
    }

    #[test]
    fn lcore_id_is_none_off_eal() {
        // This test process never initialises EAL.
        assert_eq!(lcore::lcore_id(), None);
    }
}
