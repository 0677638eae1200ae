//! What the control API speaks: requests, responses and the reports they
//! carry. One JSON object per line in each direction over the Unix socket
//! (`[control].socket`); the same reports feed `rampart ctl` tables and the
//! Prometheus exposition.
//!
//! A request is `{"cmd": NAME, ...arguments}`; the answer is
//! `{"ok": true, "result": ...}` or
//! `{"ok": false, "error": {"code": CODE, "message": TEXT}}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Longest request line the server reads; a longer one is answered with
/// `too_long` and the connection is closed.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// One request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Version, uptime, config generation, counts.
    Status,
    /// Every VIP with its backends.
    VipList,
    /// Adds a VIP. Keys and values as in a `[[vip]]` table of the config
    /// file (`name`, `address`, `port`, `protocol`, `mode`, ...), backends
    /// under `backend`.
    VipAdd {
        vip: toml::Table,
    },
    VipDel {
        name: String,
    },
    /// Adds `backend` ("ADDR:PORT", or "ADDR" for the VIP's port) to a VIP.
    BackendAdd {
        vip: String,
        backend: String,
        #[serde(default)]
        weight: Option<u32>,
    },
    BackendDel {
        vip: String,
        backend: String,
    },
    BackendWeight {
        vip: String,
        backend: String,
        weight: u32,
    },
    /// Operator override of a backend ("ADDR:PORT") on every VIP it serves:
    /// `up`, `down`, `drain`, or `clear` to hand it back to health checks.
    BackendState {
        backend: String,
        state: String,
    },
    /// Connections, at most `limit` (default [`DEFAULT_CONNS_LIMIT`]).
    Conns {
        #[serde(default)]
        vip: Option<String>,
        #[serde(default)]
        limit: Option<u32>,
    },
    Stats,
    /// Re-reads the config file.
    Reload,
    /// Withdraws (`drain: true`) or gives back (`false`) a VIP's
    /// announcement (`[bgp]`); its connections are untouched.
    VipDrain {
        name: String,
        drain: bool,
    },
}

impl Request {
    /// Whether the request changes what rampart runs (the config, an
    /// override, an announcement); such requests are logged with the
    /// peer that made them.
    pub fn is_edit(&self) -> bool {
        match self {
            Request::Status | Request::VipList | Request::Conns { .. } | Request::Stats => false,
            Request::VipAdd { .. }
            | Request::VipDel { .. }
            | Request::BackendAdd { .. }
            | Request::BackendDel { .. }
            | Request::BackendWeight { .. }
            | Request::BackendState { .. }
            | Request::Reload
            | Request::VipDrain { .. } => true,
        }
    }

    /// One line for the log: the command and its arguments as `key=value`,
    /// strings quoted as JSON (so no argument can break the line); a VIP
    /// table given to `vip_add` is shown by its name.
    pub fn describe(&self) -> String {
        let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(self) else {
            return format!("{self:?}");
        };
        let mut out = fields
            .get("cmd")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?")
            .to_string();
        for (k, v) in fields.iter().filter(|(k, _)| k.as_str() != "cmd") {
            match v {
                serde_json::Value::Object(t) => {
                    let name = t.get("name").cloned().unwrap_or(serde_json::Value::Null);
                    out.push_str(&format!(" {k}.name={name}"));
                }
                v => out.push_str(&format!(" {k}={v}")),
            }
        }
        out
    }
}

/// `conns` without a limit.
pub const DEFAULT_CONNS_LIMIT: u32 = 100;
/// The largest `conns` limit.
pub const MAX_CONNS_LIMIT: u32 = 100_000;

/// Error codes in `{"ok": false, "error": {"code": ...}}`.
pub mod code {
    /// Not JSON, not an object, an unknown command or argument.
    pub const BAD_REQUEST: &str = "bad_request";
    /// The line exceeded [`super::MAX_REQUEST_BYTES`].
    pub const TOO_LONG: &str = "too_long";
    /// A VIP or backend that does not exist.
    pub const NOT_FOUND: &str = "not_found";
    /// The change would make an invalid config (message as check-config's).
    pub const INVALID_CONFIG: &str = "invalid_config";
    /// Something on the box failed (config file unreadable, ...).
    pub const FAILED: &str = "failed";
    /// The peer's uid may not use the control socket (only root and the
    /// uid rampart runs as may); the connection is then closed.
    pub const NOT_PERMITTED: &str = "not_permitted";
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

/// `rampart ctl status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    pub uptime_secs: f64,
    /// The config file reloads read.
    pub config: String,
    /// Bumped by every published snapshot (reload, API change, health).
    pub generation: u64,
    pub reloads: u64,
    pub reload_failures: u64,
    /// The last reload's error, if it failed.
    pub last_reload_error: Option<String>,
    pub workers: u32,
    pub vips: u32,
    pub backends_up: u32,
    pub backends_total: u32,
    pub active_conns: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub dropped: u64,
    /// Each VIP's announcement (`[bgp]` enabled; empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub announcements: Vec<Announcement>,
    /// The routing daemon's last refusal, until it takes an update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp_error: Option<String>,
}

/// Two announcements (one announced, one drained) for the tests of what
/// renders them.
#[cfg(test)]
pub(crate) fn sample_announcements() -> Vec<Announcement> {
    let one = |vip: &str, address: &str, announced: bool, reason: &str| Announcement {
        vip: vip.into(),
        address: address.into(),
        announced,
        reason: reason.into(),
        drained: !announced,
    };
    vec![
        one("web", "198.18.100.10", true, "serving"),
        one("api", "198.18.100.20", false, "drained"),
    ]
}

/// One VIP's announcement (`[bgp]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Announcement {
    pub vip: String,
    pub address: String,
    /// Its address is announced (by it or another VIP on the address).
    pub announced: bool,
    /// serving, drained, no backend up, workers not polling, stopping, or
    /// another VIP on the address serves.
    pub reason: String,
    /// Drained by the operator (`ctl vip drain`).
    pub drained: bool,
}

/// One VIP in `vip list`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VipEntry {
    pub name: String,
    /// "ADDR:PORT" (IPv6 in brackets).
    pub address: String,
    pub protocol: String,
    pub mode: String,
    pub scheduler: String,
    pub synproxy: bool,
    /// Removed by a reload or `vip del`; its connections drain.
    pub retired: bool,
    pub backends: Vec<VipBackend>,
}

/// A backend as one VIP sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipBackend {
    /// "ADDR:PORT".
    pub address: String,
    /// Configured weight.
    pub weight: u32,
    /// `up`, `down` or `drain`: what the scheduler sees.
    pub state: String,
}

/// One connection in `conns`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnEntryReport {
    pub worker: u16,
    pub vip: String,
    pub protocol: String,
    /// "ADDR:PORT" of the client.
    pub client: String,
    /// "ADDR:PORT" of the backend.
    pub backend: String,
    /// FullNAT: "ADDR:PORT" rampart uses towards the backend.
    pub local: Option<String>,
    /// TCP state name (`syn_sent`, `established`, ...; `udp` for UDP).
    pub state: String,
    /// Seconds until the entry expires.
    pub expires_in: u32,
}

/// `conns`' answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnsReport {
    /// Active connections that matched, over every worker.
    pub total: u64,
    /// At most `limit` of them.
    pub conns: Vec<ConnEntryReport>,
}

/// `stats`: counters since start, and rates over the control thread's last
/// sampling period.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsReport {
    pub uptime_secs: f64,
    pub generation: u64,
    pub reloads: u64,
    pub reload_failures: u64,
    pub workers: Vec<WorkerReport>,
    pub vips: Vec<VipReport>,
    pub backends: Vec<BackendReport>,
    /// Each VIP's announcement (`[bgp]` enabled; empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub announcements: Vec<Announcement>,
    /// Clients the control socket and the metrics endpoint turned away, by
    /// listener and reason (every pair, zeros included).
    #[serde(default)]
    pub refusals: Vec<RefusalReport>,
    /// The NIC counters of each port of `rampart run` (empty in a replay).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortReport>,
}

/// What a port's driver counted, read live (`rte_eth_stats_get`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortReport {
    /// The port's device name (`[[port]] name`).
    pub port: String,
    /// Frames the NIC dropped because an rx ring was full.
    pub rx_missed: u64,
    /// Frames lost because the mempool had no mbuf to receive them into.
    pub rx_nombuf: u64,
    /// Erroneous frames received.
    pub rx_errors: u64,
    /// Failed transmissions.
    pub tx_errors: u64,
}

/// One listener's refusals for one reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalReport {
    /// `control` or `metrics`.
    pub listener: String,
    /// `too_many_clients`, `not_permitted`, `too_long`, `idle`,
    /// `write_timeout` (control); `too_many_connections`, `too_large`,
    /// `timeout`, `write_timeout` (metrics).
    pub reason: String,
    pub count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    pub worker: u16,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Frames the SYN proxy took over (not sent, not dropped).
    pub consumed: u64,
    /// Frames the worker originated (SYN proxy, resets, health probes).
    pub originated_packets: u64,
    /// Frames handed to another worker's queue / received from one.
    pub handovers_out: u64,
    pub handovers_in: u64,
    /// Frames the I/O layer's bounds dropped: a full hand-over ring, a tx
    /// queue that refused them, no free mbuf, a frame over several mbufs,
    /// a frame for a kernel interface the port lacks.
    pub handover_dropped: u64,
    pub tx_dropped: u64,
    pub tx_alloc_failed: u64,
    pub rx_multiseg: u64,
    pub kernel_dropped: u64,
    pub active_conns: u64,
    pub new_conns_per_sec: f64,
    /// Every drop reason (name as in the stats JSON) with its count.
    pub drops: BTreeMap<String, u64>,
    /// Every event counter (name as in the stats JSON).
    pub events: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VipReport {
    pub name: String,
    pub address: String,
    pub protocol: String,
    pub mode: String,
    pub retired: bool,
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub conns_total: u64,
    pub conns_active: u64,
    pub new_conns_per_sec: f64,
    pub backends_up: u32,
    pub backends_total: u32,
}

/// A backend (one address and port, whichever VIPs it serves).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BackendReport {
    /// "ADDR:PORT".
    pub address: String,
    /// The VIPs it currently serves.
    pub vips: Vec<String>,
    /// `up`, `down` or `drain`: what schedulers see (override, else health).
    pub state: String,
    /// Health check result: `up`, `down`, or `unchecked`.
    pub health: String,
    /// Operator override (`up`, `down`, `drain`), if one is set.
    pub admin: Option<String>,
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub conns_total: u64,
    pub conns_active: u64,
    pub new_conns_per_sec: f64,
}

/// What a reload (file or API change) did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    pub generation: u64,
    pub vips_added: Vec<String>,
    pub vips_removed: Vec<String>,
    pub vips_changed: Vec<String>,
}
