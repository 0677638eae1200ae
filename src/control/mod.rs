//! The control thread: the running config and the snapshot it publishes
//! ([`state`]), health checks ([`health`]), what passes between it and the
//! workers ([`link`]), the Unix-socket API ([`api`], protocol in [`model`])
//! and its client `rampart ctl` ([`ctl`]), the Prometheus exposition
//! ([`prom`]), the bounded server both listeners run on ([`server`]), and
//! the VIP announcements through a routing daemon ([`bgp`]).
pub mod api;
pub mod bgp;
pub mod ctl;
pub mod health;
pub mod link;
pub mod model;
pub mod prom;
pub mod server;
pub mod state;
