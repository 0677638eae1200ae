//! rampart: a kernel-bypass L4 load balancer.
//!
//! The library holds the whole datapath so that `rampart replay`, `rampart
//! bench`, the DPDK runtime and every test drive the same code:
//! [`wire`] parses a frame once into a [`flow::FlowDesc`], [`datapath`] looks
//! up the VIP, the connection table ([`conntrack`]) and the scheduler
//! ([`sched`], [`maglev`]), and [`xmit`] rewrites the headers for the VIP's
//! forwarding mode; [`frag`] sends IP fragments after their first. [`config`] is the TOML schema and [`snapshot`] the
//! immutable view workers read. With the `dpdk` feature, `run` is the
//! DPDK runtime (`rampart run`) over `io::dpdk`.

/// `rampart bench`: its runs need DPDK and dpdk-testpmd at run time, its
/// report (table, JSON, chart) nothing.
pub mod bench;
pub mod buf;
pub mod config;
pub mod conn;
pub mod conntrack;
pub mod control;
pub mod datapath;
pub mod flow;
pub mod frag;
pub mod gen;
pub mod ids;
pub mod io;
pub mod lpm;
pub mod maglev;
pub mod outbox;
pub mod probe;
pub mod proxy_protocol;
pub mod random;
pub mod replay;
#[cfg(feature = "dpdk")]
pub mod run;
/// The DPDK bindings `io::dpdk` is built on, for code that sets up its
/// ports, pools and rings itself.
#[cfg(feature = "dpdk")]
pub use dpdk_bindings;
pub mod runtime;
pub mod sched;
pub mod snapshot;
pub mod state;
pub mod stats;
pub mod synproxy;
pub mod wire;
pub mod worker;
pub mod workload;
pub mod xmit;
