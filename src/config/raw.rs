//! The config file as written: serde structs that keep every value's byte
//! span, so validation can point at the line and column of a bad value.
//! Integers are read as `i64` (TOML's integer type) and range-checked during
//! validation; names and addresses are read as strings and parsed there too,
//! so every message is rampart's own.

use serde::Deserialize;
use toml::Spanned;

pub(crate) type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub node: S<RawNode>,
    #[serde(default)]
    pub conntrack: Option<S<RawConntrack>>,
    #[serde(default)]
    pub synproxy: Option<S<RawSynproxy>>,
    #[serde(default)]
    pub icmp: Option<S<RawIcmp>>,
    #[serde(default)]
    pub fragments: Option<S<RawFragments>>,
    #[serde(default)]
    pub control: Option<S<RawControl>>,
    #[serde(default, rename = "neighbor")]
    pub neighbors: Vec<S<RawNeighbor>>,
    #[serde(default, rename = "vip")]
    pub vips: Vec<S<RawVip>>,
    #[serde(default)]
    pub dpdk: Option<S<RawDpdk>>,
    #[serde(default, rename = "port")]
    pub ports: Vec<S<RawPort>>,
    #[serde(default)]
    pub bgp: Option<S<RawBgp>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBgp {
    pub enabled: Option<S<bool>>,
    pub daemon: Option<S<String>>,
    pub socket: Option<S<String>>,
    pub routes_file: Option<S<String>>,
    pub next_hop_v4: Option<S<String>>,
    pub next_hop_v6: Option<S<String>>,
    pub med: Option<S<i64>>,
    pub communities: Option<S<Vec<S<String>>>>,
    pub drain_seconds: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNode {
    pub mac: S<String>,
    pub addresses: S<Vec<S<String>>>,
    pub gateway_mac: S<String>,
    pub mtu: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConntrack {
    pub capacity: Option<S<i64>>,
    pub tcp_syn_sent: Option<S<i64>>,
    pub tcp_syn_recv: Option<S<i64>>,
    pub tcp_established: Option<S<i64>>,
    pub tcp_fin_wait: Option<S<i64>>,
    pub tcp_close_wait: Option<S<i64>>,
    pub tcp_time_wait: Option<S<i64>>,
    pub tcp_close: Option<S<i64>>,
    pub udp: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNeighbor {
    pub address: S<String>,
    pub mac: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVip {
    pub name: S<String>,
    pub address: S<String>,
    pub port: S<i64>,
    pub protocol: S<String>,
    pub mode: S<String>,
    pub scheduler: Option<S<String>>,
    pub table_size: Option<S<i64>>,
    pub local_addresses: Option<S<Vec<S<String>>>>,
    pub synproxy: Option<S<bool>>,
    pub proxy_protocol: Option<S<String>>,
    pub encap: Option<S<String>>,
    pub gue_port: Option<S<i64>>,
    #[serde(default)]
    pub health: Option<S<RawHealth>>,
    #[serde(default, rename = "backend")]
    pub backends: Vec<S<RawBackend>>,
    #[serde(default, rename = "source")]
    pub sources: Vec<S<RawSource>>,
}

/// `[[vip.source]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSource {
    pub prefixes: S<Vec<S<String>>>,
    pub backends: S<Vec<S<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBackend {
    pub address: S<String>,
    pub port: Option<S<i64>>,
    pub weight: Option<S<i64>>,
    #[serde(default)]
    pub health: Option<S<RawHealth>>,
}

/// `[vip.health]` and `[vip.backend.health]`: every key optional, so a
/// backend's table can override just the keys it names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealth {
    pub kind: Option<S<String>>,
    pub interval_ms: Option<S<i64>>,
    pub timeout_ms: Option<S<i64>>,
    pub rise: Option<S<i64>>,
    pub fall: Option<S<i64>>,
    pub down: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawControl {
    pub socket: Option<S<String>>,
    pub prometheus: Option<S<String>>,
    pub removed_vip: Option<S<String>>,
    pub removed_backend: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSynproxy {
    pub mss: Option<S<i64>>,
    pub wscale: Option<S<i64>>,
    pub sack: Option<S<bool>>,
    pub timestamps: Option<S<bool>>,
    pub window: Option<S<i64>>,
    pub ttl: Option<S<i64>>,
    pub secret_rotate: Option<S<i64>>,
    pub secret: Option<S<String>>,
    pub rst_invalid_ack: Option<S<bool>>,
    pub syn_retries: Option<S<i64>>,
    pub syn_retry_interval: Option<S<i64>>,
    pub hold_packets: Option<S<i64>>,
    pub hold_slots: Option<S<i64>>,
    pub syn_rate_per_source: Option<S<i64>>,
    pub syn_burst_per_source: Option<S<i64>>,
    pub source_slots: Option<S<i64>>,
    pub conn_rate: Option<S<i64>>,
    pub conn_burst: Option<S<i64>>,
    pub ack_rate: Option<S<i64>>,
    pub ack_burst: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDpdk {
    pub eal_args: Option<S<Vec<S<String>>>>,
    pub workers: Option<S<i64>>,
    pub lcores: Option<S<Vec<S<i64>>>>,
    pub control_lcore: Option<S<i64>>,
    pub mempool_size: Option<S<i64>>,
    pub mempool_cache: Option<S<i64>>,
    pub rx_descriptors: Option<S<i64>>,
    pub tx_descriptors: Option<S<i64>>,
    pub tx_retries: Option<S<i64>>,
    pub stats_interval: Option<S<i64>>,
    pub idle_exit_ms: Option<S<i64>>,
    pub idle_sleep_us: Option<S<i64>>,
    pub idle_polls: Option<S<i64>>,
    pub kernel_rate: Option<S<i64>>,
    pub kernel_burst: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPort {
    pub name: S<String>,
    #[serde(default)]
    pub subnets: Option<S<Vec<S<String>>>>,
    pub mtu: Option<S<i64>>,
    pub kernel_interface: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIcmp {
    pub echo_rate: Option<S<i64>>,
    pub echo_burst: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFragments {
    pub timeout_ms: Option<S<i64>>,
    pub max_held: Option<S<i64>>,
    pub table_size: Option<S<i64>>,
}
