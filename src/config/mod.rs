//! The TOML configuration: schema, defaults and validation.
//!
//! [`load`] / [`parse`] turn a config file into a [`Config`] whose every value
//! has been checked, or into one [`ConfigError`] that names the file, the
//! line and column of the offending value and its key path, e.g.
//!
//! ```text
//! configs/x.toml:27:14: vip[1].table_size: 65536 is not prime (Maglev needs a prime table size, e.g. 65537)
//! ```
//!
//! The first error in file order wins. After a successful parse nothing in
//! the config needs checking again: addresses are [`Addr`], MACs are [`Mac`],
//! names are enums, every backend port is resolved and every default filled.
//!
//! The file has four parts: `[node]` (our MAC, our addresses, the gateway),
//! an optional `[conntrack]` (table capacity and per-state timeouts),
//! `[[neighbor]]` static neighbor entries and `[[vip]]` virtual services,
//! each with its `[[vip.backend]]` list. `configs/rampart.toml` is the
//! reference; `configs/minimal.toml` the smallest useful config.
//!
//! A VIP may carry a `[vip.health]` table: an in-band health check of its
//! backends (kind, interval, timeout, rise/fall counts, and what happens to a
//! down backend's connections). A `[vip.backend.health]` table overrides any
//! of those keys for one backend; [`Backend::health`] holds the result, so
//! nothing downstream merges the two again. A `tcp` check needs a TCP VIP and
//! a node address of the VIP's family, the source of its probes.
//!
//! `[control]` (optional, every key optional) places the control API's unix
//! socket and the Prometheus listener (either turned off by `""`) and says
//! whether the connections of a VIP or backend removed at run time drain or
//! are reset.
//!
//! Two more parts are optional and read only by the DPDK runtime (`rampart
//! run`): `[dpdk]` (EAL arguments, workers and their CPUs, mempool and
//! descriptor sizes) and `[[port]]` (a PCI address or a vdev string, and the
//! subnets behind the port, which pick the port a frame leaves by).
//! `configs/dpdk-pcap.toml` is the example. Their types are in [`dpdk`]'s
//! file, those of `[bgp]` (the VIP announcements) in [`bgp`]'s; both are
//! re-exported here.

mod bgp;
mod dpdk;
mod error;
mod raw;
mod validate;

pub use bgp::*;
pub use dpdk::*;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use error::ConfigError;

use crate::flow::{proto, Addr, Mac};

/// Default `conntrack.capacity`: 2^20 entries.
pub const DEFAULT_CONNTRACK_CAPACITY: u32 = 1 << 20;
/// Largest accepted `conntrack.capacity`: 2^25 entries (the table packs entry
/// numbers into 26 bits of its index).
pub const MAX_CONNTRACK_CAPACITY: u32 = crate::conntrack::MAX_CAPACITY;
/// Largest accepted timeout: one week, in seconds.
pub const MAX_TIMEOUT_SECS: u32 = 7 * 24 * 3600;
/// Default Maglev `table_size` (the prime the Maglev paper uses).
pub const DEFAULT_TABLE_SIZE: u32 = 65_537;
/// Smallest accepted `table_size`.
pub const MIN_TABLE_SIZE: u32 = 7;
/// Largest accepted `table_size` (a prime).
pub const MAX_TABLE_SIZE: u32 = 10_000_019;
/// Largest accepted backend `weight`; keeps the sum of a VIP's weights in a `u32`.
pub const MAX_WEIGHT: u32 = 65_535;
/// Longest accepted VIP name.
pub const MAX_NAME_LEN: usize = 64;
/// Most `[[vip.source]]` entries per VIP (each has its own Maglev table of
/// `table_size` slots).
pub const MAX_SOURCES: usize = 64;
/// Most source prefixes per VIP, over all its `[[vip.source]]` entries.
pub const MAX_SOURCE_PREFIXES: usize = 100_000;

/// Default `control.socket`: the control API's unix socket.
pub const DEFAULT_SOCKET: &str = "/run/rampart/rampart.sock";
/// Default `control.prometheus`: loopback only, so metrics are not exposed
/// to the network unless asked for.
pub const DEFAULT_PROMETHEUS: &str = "127.0.0.1:9185";
/// Longest accepted `control.socket`, in bytes: `sun_path` holds 108 bytes
/// including the terminating NUL.
pub const MAX_SOCKET_PATH: usize = 107;

/// Shortest accepted `health.interval_ms`.
pub const MIN_HEALTH_INTERVAL_MS: u32 = 100;
/// Shortest accepted `health.timeout_ms`.
pub const MIN_HEALTH_TIMEOUT_MS: u32 = 10;
/// Longest accepted `health.interval_ms` and `health.timeout_ms`: one hour.
pub const MAX_HEALTH_MS: u32 = 3_600_000;
/// Largest accepted `health.rise` and `health.fall`.
pub const MAX_HEALTH_COUNT: u32 = 100;

/// Largest accepted `dpdk.workers` (and length of `dpdk.lcores`).
pub const MAX_WORKERS: u32 = 64;
/// Largest accepted CPU number in `dpdk.lcores` / `dpdk.control_lcore`.
pub const MAX_CPU: u32 = 1023;

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub node: Node,
    pub conntrack: Conntrack,
    pub synproxy: Synproxy,
    /// `[icmp]`: echo replies.
    pub icmp: Icmp,
    /// `[fragments]`: how long and how many IP fragments a worker tracks.
    pub fragments: Fragments,
    pub neighbors: Vec<Neighbor>,
    pub vips: Vec<Vip>,
    /// `[control]`: the control API, metrics, and what removals do to live
    /// connections; the defaults when the section is absent.
    pub control: ControlConfig,
    /// `[dpdk]`, if present: settings of the DPDK runtime (`rampart run`).
    pub dpdk: Option<Dpdk>,
    /// `[bgp]`, if present.
    pub bgp: Option<Bgp>,
    /// `[[port]]` entries, in file order; port `i` of `rampart run`.
    pub ports: Vec<Port>,
}

/// `[control]`: how rampart is driven and observed while it runs. Every key
/// is optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlConfig {
    /// Unix socket of the control API (NDJSON). Key `socket`; default
    /// [`DEFAULT_SOCKET`]; `""` turns the API off (`None`). At most
    /// [`MAX_SOCKET_PATH`] bytes, no NUL.
    pub socket: Option<PathBuf>,
    /// Prometheus text exposition over HTTP. Key `prometheus`, `"ADDR:PORT"`
    /// (IPv6 as `"[::1]:9185"`); default [`DEFAULT_PROMETHEUS`]; `""` turns
    /// it off (`None`). Port 0 is refused.
    pub prometheus: Option<SocketAddr>,
    /// What happens to the connections of a VIP that a reload or the API
    /// removed: key `removed_vip`, `"drain"` (default: they live until their
    /// timeout) or `"reset"`.
    pub removed_vip: ConnPolicy,
    /// The same for a backend removed from a VIP: key `removed_backend`,
    /// default `"drain"`.
    pub removed_backend: ConnPolicy,
}

impl Default for ControlConfig {
    fn default() -> ControlConfig {
        ControlConfig {
            socket: Some(PathBuf::from(DEFAULT_SOCKET)),
            // DEFAULT_PROMETHEUS is a valid address; a unit test holds it to that.
            prometheus: DEFAULT_PROMETHEUS.parse().ok(),
            removed_vip: ConnPolicy::Drain,
            removed_backend: ConnPolicy::Drain,
        }
    }
}

/// What happens to the established connections of a VIP or backend that
/// goes away (removed, or marked down by its health check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConnPolicy {
    /// They keep their backend until they close or time out; only new
    /// connections go elsewhere.
    #[default]
    Drain,
    /// They end at their next packet: a client's TCP segment is answered
    /// with a RST, anything else is dropped, and the entry goes, so the
    /// client's next connection is scheduled afresh.
    Reset,
}

impl ConnPolicy {
    pub const NAMES: &'static [&'static str] = &["drain", "reset"];

    pub fn name(self) -> &'static str {
        match self {
            ConnPolicy::Drain => "drain",
            ConnPolicy::Reset => "reset",
        }
    }

    pub fn from_name(name: &str) -> Option<ConnPolicy> {
        match name {
            "drain" => Some(ConnPolicy::Drain),
            "reset" => Some(ConnPolicy::Reset),
            _ => None,
        }
    }
}

/// How a backend's health is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HealthKind {
    /// Not checked: the backend is always up.
    #[default]
    None,
    /// An in-band TCP SYN probe from a node address to the backend's port:
    /// a SYN-ACK is a success; a RST, or no answer within the timeout, a
    /// failure.
    Tcp,
}

impl HealthKind {
    pub const NAMES: &'static [&'static str] = &["none", "tcp"];

    pub fn name(self) -> &'static str {
        match self {
            HealthKind::None => "none",
            HealthKind::Tcp => "tcp",
        }
    }

    pub fn from_name(name: &str) -> Option<HealthKind> {
        match name {
            "none" => Some(HealthKind::None),
            "tcp" => Some(HealthKind::Tcp),
            _ => None,
        }
    }
}

/// `[vip.health]` / `[vip.backend.health]`: a backend's health check, with
/// the backend's own keys already applied over the VIP's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HealthCheck {
    /// Key `kind`: `"none"` (default) or `"tcp"` (TCP VIPs only; needs a
    /// node address of the VIP's family to send from).
    pub kind: HealthKind,
    /// Milliseconds between probes, [`MIN_HEALTH_INTERVAL_MS`]..=[`MAX_HEALTH_MS`].
    pub interval_ms: u32,
    /// Milliseconds a probe waits for its answer,
    /// [`MIN_HEALTH_TIMEOUT_MS`]..=[`MAX_HEALTH_MS`] and below `interval_ms`,
    /// so at most one probe per backend is in flight.
    pub timeout_ms: u32,
    /// Consecutive successes that bring a down backend up, 1..=[`MAX_HEALTH_COUNT`].
    pub rise: u32,
    /// Consecutive failures that take an up backend down, 1..=[`MAX_HEALTH_COUNT`].
    pub fall: u32,
    /// Key `down`: what happens to a down backend's connections; `"drain"`
    /// (default: they live until their timeout) or `"reset"`.
    pub down: ConnPolicy,
}

impl Default for HealthCheck {
    fn default() -> HealthCheck {
        HealthCheck {
            kind: HealthKind::None,
            interval_ms: 2000,
            timeout_ms: 1000,
            rise: 2,
            fall: 3,
            down: ConnPolicy::Drain,
        }
    }
}

/// `[node]`: this appliance's own port.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// MAC address of our port (unicast).
    pub mac: Mac,
    /// Our own IP addresses: rampart answers ARP/ND for them and uses them as
    /// the source of probes. Non-empty, no duplicates.
    pub addresses: Vec<Addr>,
    /// Next hop for destinations that have no neighbor entry.
    pub gateway_mac: Mac,
    /// L3 MTU of our ports ([`MIN_MTU`]..=[`MAX_MTU`], default
    /// [`DEFAULT_MTU`]); a `[[port]]` may set its own.
    pub mtu: u16,
}

pub const DEFAULT_MTU: u16 = 1500;
/// IPv6's minimum link MTU (RFC 8200 §5).
pub const MIN_MTU: u16 = 1280;
pub const MAX_MTU: u16 = 9000;

/// How a `tunnel` VIP wraps the client's packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encap {
    /// IP in IP: protocol 4 (IPv4 inside) or 41 (IPv6 inside), RFC 2003 / 2473.
    Ipip,
    /// Generic UDP Encapsulation, variant 0 without options, to this UDP
    /// destination port.
    Gue { port: u16 },
}

pub const DEFAULT_GUE_PORT: u16 = 6080;

impl Encap {
    pub const NAMES: &'static [&'static str] = &["ipip", "gue"];

    pub fn name(self) -> &'static str {
        match self {
            Encap::Ipip => "ipip",
            Encap::Gue { .. } => "gue",
        }
    }
}

/// `[icmp]`: how rampart answers ICMP itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmp {
    /// Echo replies per second per worker, to VIP and node addresses
    /// (0: no limit). Default [`DEFAULT_ECHO_RATE`].
    pub echo_rate: u32,
    /// Replies allowed at once; default one second's worth.
    pub echo_burst: u32,
}

pub const DEFAULT_ECHO_RATE: u32 = 1000;

/// `[fragments]`: the per-worker fragment table ([`crate::frag`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragments {
    /// How long a datagram's entry lives from its first fragment seen
    /// (milliseconds): the first fragment's decision for the others, and
    /// how long fragments that came before it are held.
    /// 1..=[`MAX_FRAG_TIMEOUT_MS`]; default [`DEFAULT_FRAG_TIMEOUT_MS`].
    pub timeout_ms: u32,
    /// Fragments one worker holds at once while their datagram's first
    /// fragment has not arrived (each takes a 2 KiB buffer).
    /// 0..=[`MAX_FRAG_HELD`]; default [`DEFAULT_FRAG_HELD`].
    pub max_held: u32,
    /// Datagrams one worker tracks at once (rounded up to a power of two).
    /// [`MIN_FRAG_TABLE`]..=[`MAX_FRAG_TABLE`]; default [`DEFAULT_FRAG_TABLE`].
    pub table_size: u32,
}

pub const DEFAULT_FRAG_TIMEOUT_MS: u32 = 1000;
pub const MAX_FRAG_TIMEOUT_MS: u32 = 30_000;
pub const DEFAULT_FRAG_HELD: u32 = 256;
pub const MAX_FRAG_HELD: u32 = 65_536;
pub const DEFAULT_FRAG_TABLE: u32 = 4096;
pub const MIN_FRAG_TABLE: u32 = 16;
pub const MAX_FRAG_TABLE: u32 = 1 << 20;

impl Default for Fragments {
    fn default() -> Fragments {
        Fragments {
            timeout_ms: DEFAULT_FRAG_TIMEOUT_MS,
            max_held: DEFAULT_FRAG_HELD,
            table_size: DEFAULT_FRAG_TABLE,
        }
    }
}

impl Default for Icmp {
    fn default() -> Icmp {
        Icmp {
            echo_rate: DEFAULT_ECHO_RATE,
            echo_burst: DEFAULT_ECHO_RATE,
        }
    }
}

/// `[conntrack]`: the connection table.
#[derive(Debug, Clone, PartialEq)]
pub struct Conntrack {
    /// Number of entries, allocated at start; 1..=[`MAX_CONNTRACK_CAPACITY`].
    pub capacity: u32,
    pub timeouts: Timeouts,
}

impl Default for Conntrack {
    fn default() -> Conntrack {
        Conntrack {
            capacity: DEFAULT_CONNTRACK_CAPACITY,
            timeouts: Timeouts::default(),
        }
    }
}

/// Idle timeouts per connection state, in seconds (each 1..=[`MAX_TIMEOUT_SECS`]).
/// The keys sit directly in `[conntrack]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp_syn_sent: u32,
    pub tcp_syn_recv: u32,
    pub tcp_established: u32,
    pub tcp_fin_wait: u32,
    pub tcp_close_wait: u32,
    pub tcp_time_wait: u32,
    pub tcp_close: u32,
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            tcp_syn_sent: 30,
            tcp_syn_recv: 30,
            tcp_established: 900,
            tcp_fin_wait: 120,
            tcp_close_wait: 60,
            tcp_time_wait: 60,
            tcp_close: 10,
            udp: 300,
        }
    }
}

/// `[synproxy]`: the SYN proxy and SYN-flood shield, for VIPs with
/// `synproxy = true`. Rates are per worker; 0 turns a limit off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synproxy {
    /// MSS our SYN-ACK advertises (536..=9000).
    pub mss: u16,
    /// Window scale our SYN-ACK advertises when the client offered one (0..=14).
    pub wscale: u8,
    /// Offer SACK-permitted when the client did.
    pub sack: bool,
    /// Answer timestamps when the client offered them. Without timestamps a
    /// cookie carries only the MSS: window scale and SACK are lost.
    pub timestamps: bool,
    /// Window field of the SYN-ACK (unscaled, 1..=65535).
    pub window: u16,
    /// TTL / hop limit of the SYN-ACK and of every packet rampart originates.
    pub ttl: u8,
    /// Seconds per cookie secret generation; a cookie is accepted for one
    /// to two generations.
    pub secret_rotate: u32,
    /// Fixed 128-bit cookie master key (32 hex digits), for reproducible
    /// replays only; by default the key comes from the OS random source.
    pub secret: Option<[u8; 16]>,
    /// Answer an ACK with an invalid cookie with a RST (default: drop silently).
    pub rst_invalid_ack: bool,
    /// SYNs resent to a backend that does not answer before giving up and
    /// resetting the client.
    pub syn_retries: u8,
    /// Seconds between those SYNs.
    pub syn_retry_interval: u32,
    /// Client packets held per connection while the backend handshake is pending.
    pub hold_packets: u8,
    /// Packet buffers for holding, per worker (2 KiB each).
    pub hold_slots: u32,
    /// SYNs per second one source address may get cookies for (0 = off).
    pub syn_rate_per_source: u32,
    pub syn_burst_per_source: u32,
    /// Buckets of the per-source limiter (a power of two); sources share a
    /// bucket when they collide, so memory stays fixed under any flood.
    pub source_slots: u32,
    /// Validated new connections per second (0 = off).
    pub conn_rate: u32,
    pub conn_burst: u32,
    /// Cookie checks per second: ACK-storm protection (0 = off).
    pub ack_rate: u32,
    pub ack_burst: u32,
}

impl Default for Synproxy {
    fn default() -> Synproxy {
        Synproxy {
            mss: 1460,
            wscale: 7,
            sack: true,
            timestamps: true,
            window: 65535,
            ttl: 64,
            secret_rotate: 60,
            secret: None,
            rst_invalid_ack: false,
            syn_retries: 3,
            syn_retry_interval: 1,
            hold_packets: 4,
            hold_slots: 4096,
            syn_rate_per_source: 0,
            syn_burst_per_source: 0,
            source_slots: 65536,
            conn_rate: 0,
            conn_burst: 0,
            ack_rate: 0,
            ack_burst: 0,
        }
    }
}

/// `[[neighbor]]`: a static neighbor entry (address → MAC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbor {
    pub address: Addr,
    pub mac: Mac,
}

/// Transport protocol of a VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// The spellings accepted in the config.
    pub const NAMES: &'static [&'static str] = &["tcp", "udp"];

    /// IP protocol number (6 / 17).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => proto::TCP,
            Protocol::Udp => proto::UDP,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    pub fn from_name(name: &str) -> Option<Protocol> {
        match name {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            _ => None,
        }
    }
}

/// Forwarding mode of a VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Destination NAT: the VIP is rewritten to the backend, replies come back through us.
    Nat,
    /// Source and destination NAT: the client is replaced by one of our local addresses.
    FullNat,
    /// Direct return: only the destination MAC changes; the backend answers the client.
    Dr,
    /// The client's packet inside an outer IP header (IPIP or GUE) to a
    /// routed backend, which answers the client directly.
    Tunnel,
}

impl Config {
    /// This config as `rampart replay` runs it: a capture has no kernel
    /// and no routers behind it, so `[[port]] kernel_interface` is left
    /// out (the node's own traffic is dropped as `local_not_handled`, as
    /// without it) and so is `[bgp]`.
    pub fn without_kernel_interfaces(&self) -> Config {
        let mut c = self.clone();
        for p in &mut c.ports {
            p.kernel_interface = None;
        }
        c.bgp = None;
        c
    }

    /// The MTU the datapath holds encapsulated packets to: the smallest of
    /// `node.mtu` and every port's own, so a frame fits whichever port it
    /// leaves by.
    pub fn effective_mtu(&self) -> u16 {
        self.ports
            .iter()
            .filter_map(|p| p.mtu)
            .fold(self.node.mtu, u16::min)
    }
}

impl Mode {
    pub const NAMES: &'static [&'static str] = &["nat", "fullnat", "dr", "tunnel"];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Nat => "nat",
            Mode::FullNat => "fullnat",
            Mode::Dr => "dr",
            Mode::Tunnel => "tunnel",
        }
    }

    pub fn from_name(name: &str) -> Option<Mode> {
        match name {
            "nat" => Some(Mode::Nat),
            "fullnat" => Some(Mode::FullNat),
            "dr" => Some(Mode::Dr),
            "tunnel" => Some(Mode::Tunnel),
            _ => None,
        }
    }
}

pub use crate::sched::SchedKind;

/// `proxy_protocol`: whether a connection's backend stream starts with a
/// PROXY protocol header naming the client and the VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyProtocol {
    #[default]
    Off,
    /// The binary header of version 2 (haproxy's proxy-protocol.txt §2.2).
    V2,
}

impl ProxyProtocol {
    pub const NAMES: &'static [&'static str] = &["off", "v2"];

    pub fn name(self) -> &'static str {
        match self {
            ProxyProtocol::Off => "off",
            ProxyProtocol::V2 => "v2",
        }
    }

    pub fn from_name(name: &str) -> Option<ProxyProtocol> {
        match name {
            "off" => Some(ProxyProtocol::Off),
            "v2" => Some(ProxyProtocol::V2),
            _ => None,
        }
    }
}

/// `[[vip]]`: a virtual service.
#[derive(Debug, Clone, PartialEq)]
pub struct Vip {
    /// Unique, 1..=64 characters of `A-Z a-z 0-9 _ - .`.
    pub name: String,
    pub address: Addr,
    /// 1..=65535.
    pub port: u16,
    pub protocol: Protocol,
    pub mode: Mode,
    pub scheduler: SchedKind,
    /// Maglev lookup-table size: prime, [`MIN_TABLE_SIZE`]..=[`MAX_TABLE_SIZE`],
    /// at least the number of backends.
    pub table_size: u32,
    /// FullNAT source addresses (same family as the VIP); empty for other modes.
    pub local_addresses: Vec<Addr>,
    /// May be empty, and all weights may be 0: such a VIP drops new flows.
    pub backends: Vec<Backend>,
    /// Answer SYNs with cookies and open the backend connection only after
    /// the client's ACK proves the handshake (TCP, nat and fullnat only).
    pub synproxy: bool,
    /// `proxy_protocol`: what rampart puts in front of the client's bytes
    /// towards the backend (TCP, nat and fullnat only).
    pub proxy_protocol: ProxyProtocol,
    /// `tunnel` only: how the client's packet is wrapped (`encap`,
    /// `gue_port`); `None` for every other mode.
    pub encap: Option<Encap>,
    /// `[vip.health]`: the check of its backends, as the VIP sets it (each
    /// backend's effective check is [`Backend::health`]).
    pub health: HealthCheck,
    /// `[[vip.source]]`: clients steered to a subset of the backends, in
    /// file order. Empty: every client is scheduled over every backend.
    pub sources: Vec<Source>,
}

/// `[[vip.source]]`: new flows from clients in `prefixes` (the longest
/// matching prefix over all of the VIP's entries decides) are scheduled
/// over `backends` only, while one of them takes new connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Of the VIP's family, host bits zero; no prefix appears twice in a VIP.
    pub prefixes: Vec<Subnet>,
    /// Indices into the VIP's [`Vip::backends`], distinct, in file order.
    pub backends: Vec<usize>,
}

/// `[[vip.backend]]`: a real server behind a VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Backend {
    /// Same family as the VIP.
    pub address: Addr,
    /// Resolved: the VIP port for `dr` and when omitted.
    pub port: u16,
    /// 0 = drained (keeps its connections, gets no new ones); default 1.
    pub weight: u32,
    /// Effective health check: the VIP's `[vip.health]` with this backend's
    /// `[vip.backend.health]` keys applied on top.
    pub health: HealthCheck,
}

impl Config {
    /// The VIP with this name.
    pub fn vip(&self, name: &str) -> Option<&Vip> {
        self.vips.iter().find(|v| v.name == name)
    }
}

/// Reads and validates the config file at `path`. Errors name the path as given.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::whole_file(&file, format!("cannot read config: {e}")))?;
    parse(&text, &file)
}

/// Parses and validates config text; `file_name` is used in error messages only.
pub fn parse(text: &str, file_name: &str) -> Result<Config, ConfigError> {
    let raw: raw::RawConfig =
        toml::from_str(text).map_err(|e| error::from_toml(text, file_name, &e))?;
    validate::validate(text, file_name, &raw)
}
