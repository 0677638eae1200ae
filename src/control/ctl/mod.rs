//! `rampart ctl`: the command-line client of the control API.
//!
//! Each invocation sends one [`Request`](crate::control::model::Request)
//! (or, for `stats --watch`, one per refresh) over the control socket and
//! prints the answer as aligned tables in the manner of `ipvsadm -Ln`, or,
//! with `--json`, the raw result. The command line is `args`, the socket
//! and the command loop `client`, the tables `render`.

mod args;
mod client;
mod render;

pub use args::{BackendCmd, BackendSpec, CtlArgs, CtlCmd, Endpoint, VipAddArgs, VipCmd};
pub use client::{request, run, to_request, vip_add_table, CtlError};
pub use render::{
    civil_date, format_change, format_conns, format_stats, format_status, format_uptime,
    format_vips, utc_timestamp,
};

/// Where `rampart run` listens unless `[control].socket` says otherwise.
pub use crate::config::DEFAULT_SOCKET;

/// `stats --watch` without `--count` stops after this many refreshes.
pub const WATCH_MAX_REFRESHES: u64 = 3600;

/// What the tests of the three parts share: the command line as clap
/// parses it, and one stats report.
#[cfg(test)]
mod fixtures {
    use std::collections::BTreeMap;

    use clap::Parser;

    use super::CtlArgs;
    use crate::control::model::{BackendReport, StatsReport, VipReport, WorkerReport};

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        ctl: CtlArgs,
    }

    pub fn parse(args: &[&str]) -> Result<CtlArgs, String> {
        Cli::try_parse_from(std::iter::once("ctl").chain(args.iter().copied()))
            .map(|c| c.ctl)
            .map_err(|e| e.to_string())
    }

    pub fn small_stats() -> StatsReport {
        StatsReport {
            announcements: Vec::new(),
            refusals: Vec::new(),
            ports: Vec::new(),
            uptime_secs: 61.0,
            generation: 2,
            reloads: 1,
            reload_failures: 0,
            workers: vec![
                WorkerReport {
                    worker: 0,
                    rx_packets: 100,
                    tx_packets: 90,
                    rx_bytes: 15000,
                    tx_bytes: 9000,
                    active_conns: 3,
                    new_conns_per_sec: 1.75,
                    drops: BTreeMap::from([
                        ("no_vip".to_string(), 7),
                        ("malformed".to_string(), 0),
                        ("no_conn".to_string(), 2),
                    ]),
                    ..WorkerReport::default()
                },
                WorkerReport {
                    worker: 1,
                    rx_packets: 5,
                    tx_packets: 5,
                    rx_bytes: 500,
                    tx_bytes: 500,
                    active_conns: 0,
                    new_conns_per_sec: 0.0,
                    drops: BTreeMap::from([("no_vip".to_string(), 1)]),
                    ..WorkerReport::default()
                },
            ],
            vips: vec![VipReport {
                name: "web".into(),
                address: "198.18.100.10:80".into(),
                protocol: "tcp".into(),
                mode: "nat".into(),
                retired: false,
                packets_in: 95,
                packets_out: 90,
                bytes_in: 14000,
                bytes_out: 9000,
                conns_total: 12,
                conns_active: 3,
                new_conns_per_sec: 1.75,
                backends_up: 1,
                backends_total: 2,
            }],
            backends: vec![BackendReport {
                address: "198.18.1.11:8080".into(),
                vips: vec!["web".into()],
                state: "up".into(),
                health: "unchecked".into(),
                admin: None,
                packets_in: 50,
                packets_out: 45,
                bytes_in: 7000,
                bytes_out: 4500,
                conns_total: 6,
                conns_active: 2,
                new_conns_per_sec: 0.5,
            }],
        }
    }
}
