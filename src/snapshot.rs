//! The immutable view of the configuration that workers read: VIPs with
//! their Maglev tables, the backend and FullNAT local-address registries,
//! the neighbor table and the addresses the node answers ARP/ND for.
//!
//! Built by the control side from a validated [`Config`]; the datapath only
//! indexes into it. Numbers handed out here (VIP, backend, local address)
//! are what connection entries store, so an entry names its backend by
//! identity: the backend registry holds each distinct (address, port) once.

use rustc_hash::FxHashMap;

use crate::config::{Config, ConnPolicy, Encap, Icmp, Mode, Synproxy, Timeouts};
use crate::conntrack::{addr_words, flow_hash, fold_mul, ConnState, StateTimeouts};
use crate::flow::{Addr, FlowKey, Mac};
use crate::ids::{BackendId, VipId};
use crate::maglev::{self, BackendKey, MaglevBackend, Table};
use crate::sched::source::Sources;
use crate::sched::SchedKind;

/// Seed of the flow hash that indexes Maglev tables. Fixed, so every box
/// with the same backend set sends a flow to the same backend.
pub const MAGLEV_SEED: u64 = 0x7261_6d70_6172_7421;

/// What an address the node answers for is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owned {
    /// One of `node.addresses`.
    Node,
    /// A VIP address.
    Vip,
    /// A FullNAT local address (number in [`Snapshot::local_addrs`]).
    Local(u8),
}

/// What schedulers see of a backend: its health or the operator's
/// override, as the control thread decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BackendState {
    /// Gets new connections at its configured weight.
    #[default]
    Up,
    /// Out of every scheduler; its connections live on, or are reset when
    /// their next packet arrives if the policy says so.
    Down,
    /// Keeps its connections, gets no new ones (weight 0).
    Drain,
}

impl BackendState {
    pub const NAMES: &'static [&'static str] = &["up", "down", "drain"];

    pub fn name(self) -> &'static str {
        match self {
            BackendState::Up => "up",
            BackendState::Down => "down",
            BackendState::Drain => "drain",
        }
    }

    pub fn from_name(s: &str) -> Option<BackendState> {
        match s {
            "up" => Some(BackendState::Up),
            "down" => Some(BackendState::Down),
            "drain" => Some(BackendState::Drain),
            _ => None,
        }
    }
}

/// A backend as the datapath needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendInfo {
    pub key: BackendKey,
    /// Next-hop MAC: the neighbor entry, else the gateway.
    pub mac: Mac,
    /// Whether `mac` came from a neighbor entry (DR requires it).
    pub adjacent: bool,
    pub state: BackendState,
    /// No VIP of the current config uses it; kept so the entries that name
    /// it by number still forward.
    pub removed: bool,
    /// Its connections are reset when their next packet arrives (down or
    /// removed, under the `reset` policy).
    pub reset: bool,
}

#[derive(Clone, Debug)]
pub struct VipInfo {
    pub name: String,
    pub addr: Addr,
    pub port: u16,
    pub proto: u8,
    pub mode: Mode,
    pub sched: SchedKind,
    /// Backend registry numbers, in config order (scheduler slot i = backends[i]).
    pub backends: Vec<BackendId>,
    /// Effective weights: the configured one for an up backend, 0 for a
    /// down or drained one.
    pub weights: Vec<u32>,
    /// Weights as configured.
    pub config_weights: Vec<u32>,
    pub maglev: Table,
    /// FullNAT local address numbers.
    pub local_addrs: Vec<u8>,
    /// New connections go through the SYN proxy.
    pub synproxy: bool,
    /// New connections start their backend stream with a PROXY v2 header.
    pub proxy_protocol: bool,
    /// `tunnel` VIPs: how the client's packet is wrapped.
    pub encap: Option<Encap>,
    /// Removed by a reload or the API: no new connections; the existing
    /// ones drain, or are reset if `reset`.
    pub retired: bool,
    pub reset: bool,
    /// `[[vip.source]]`: client prefixes steered to pools of the backends
    /// ([`crate::sched::source`]); `None` without entries.
    pub sources: Option<std::sync::Arc<Sources>>,
}

impl VipInfo {
    /// The Maglev choice for a forward flow, as a scheduler slot: from
    /// the client's source pool's table while the pool has a live
    /// backend, else from the VIP's. What a flow without an entry is
    /// given, so that it lands where a tracked Maglev flow would.
    #[inline]
    pub fn maglev_slot(&self, key: &FlowKey) -> Option<u32> {
        let h = flow_hash(key, MAGLEV_SEED);
        match self.sources.as_deref() {
            None => self.maglev.lookup(h),
            Some(s) => self.steered_slot(s, key, h),
        }
    }

    /// [`VipInfo::maglev_slot`] of a VIP with source entries; out of line,
    /// so the pipeline that inlines the plain lookup stays as small.
    #[inline(never)]
    fn steered_slot(&self, s: &Sources, key: &FlowKey, h: u64) -> Option<u32> {
        s.hash_slot(&key.src, h).or_else(|| self.maglev.lookup(h))
    }

    /// [`VipInfo::maglev_slot`] as a backend registry number.
    #[inline]
    pub fn maglev_backend(&self, key: &FlowKey) -> Option<BackendId> {
        let i = self.maglev_slot(key)?;
        self.backend(i)
    }

    /// The backend in scheduler slot `slot` (its position in this VIP's
    /// backend list), as a registry number.
    #[inline]
    pub fn backend(&self, slot: u32) -> Option<BackendId> {
        self.backends.get(slot as usize).copied()
    }

    /// The backends of each source pool, as scheduler slots.
    pub fn pool_members(&self) -> impl Iterator<Item = &[u32]> {
        self.sources
            .iter()
            .flat_map(|s| s.pools().iter().map(|p| &*p.members))
    }

    /// (address, port, protocol, mode): what a VIP is across reloads. A
    /// VIP keeps its number, and so its connections, while this stays.
    fn identity(&self) -> (Addr, u16, u8, Mode) {
        (self.addr, self.port, self.proto, self.mode)
    }
}

/// The published snapshot, shared by the control thread and the workers:
/// workers load it once per burst, the control thread swaps in a new one.
pub type SnapshotStore = std::sync::Arc<arc_swap::ArcSwap<Snapshot>>;

/// A store that publishes `snap` first.
pub fn store(snap: Snapshot) -> SnapshotStore {
    std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(snap))
}

#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Bumped by every snapshot the control thread publishes; a worker
    /// adapts its own state (schedulers, counters) when it sees a new one.
    pub generation: u64,
    pub mac: Mac,
    pub gateway_mac: Mac,
    /// Numbers are stable across reloads: a removed VIP stays (retired).
    pub vips: Vec<VipInfo>,
    /// Numbers are stable across reloads: a removed backend stays.
    pub backends: Vec<BackendInfo>,
    pub local_addrs: Vec<Addr>,
    pub conn_capacity: u32,
    pub timeouts: StateTimeouts,
    /// SYN proxy settings (used when a VIP has `synproxy`).
    pub synproxy: Synproxy,
    /// `[icmp]`: echo replies.
    pub icmp: Icmp,
    /// `[fragments]`: the per-worker fragment table.
    pub fragments: crate::config::Fragments,
    /// The L3 MTU encapsulated packets must fit ([`Config::effective_mtu`]).
    pub mtu: u16,
    /// The first node address of each family: the source of tunnel
    /// packets and of the ICMP errors rampart sends from itself.
    pub node_v4: Option<Addr>,
    pub node_v6: Option<Addr>,
    /// Some backend or VIP has `reset` set: the datapath checks entries.
    pub any_reset: bool,
    /// The node's own traffic the datapath does not handle goes to the
    /// kernel (some `[[port]] kernel_interface` under `rampart run`), at
    /// most (rate per second, burst) per worker; `None`: dropped.
    pub kernel: Option<(u32, u32)>,
    vip_index: VipMap,
    owned: FxHashMap<Addr, Owned>,
    neighbors: FxHashMap<Addr, Mac>,
    /// The last bytes of the neighbors' addresses, one bit each: an
    /// address whose bit is clear is no neighbor, without a map lookup
    /// (replies to clients behind the gateway, nearly all of them).
    neighbor_last: [u64; 4],
    /// (backend address, port, protocol) -> the one NAT VIP it serves and
    /// its backend number, for translating replies of flows that have no
    /// entry (table full).
    nat_reply_vip: FxHashMap<(Addr, u16, u8), (VipId, BackendId)>,
}

/// A bit per address in `addrs`, at its last byte (see
/// `Snapshot::neighbor_last`).
fn last_byte_set<'a>(addrs: impl Iterator<Item = &'a Addr>) -> [u64; 4] {
    let mut set = [0u64; 4];
    for a in addrs {
        let last = a.0[15];
        if let Some(w) = set.get_mut(usize::from(last >> 6)) {
            *w |= 1 << (last & 63);
        }
    }
    set
}

impl Snapshot {
    /// The first snapshot of a config: every backend up.
    pub fn build(cfg: &Config) -> Snapshot {
        Snapshot::derive(cfg, None, |_| BackendState::Up, 0)
    }

    /// The snapshot of `cfg` that follows `prev`: VIPs (by address, port,
    /// protocol and mode), backends (by address and port) and FullNAT local
    /// addresses keep their numbers, so the connections that name them keep
    /// working; what `prev` had and `cfg` lacks stays, marked retired or
    /// removed. `state` says what each backend is (health, override).
    pub fn derive(
        cfg: &Config,
        prev: Option<&Snapshot>,
        state: impl Fn(&BackendKey) -> BackendState,
        generation: u64,
    ) -> Snapshot {
        let neighbors: FxHashMap<Addr, Mac> =
            cfg.neighbors.iter().map(|n| (n.address, n.mac)).collect();
        let next_hop = |a: &Addr| match neighbors.get(a) {
            Some(m) => (*m, true),
            None => (cfg.node.gateway_mac, false),
        };
        let mut owned: FxHashMap<Addr, Owned> = FxHashMap::default();
        for a in &cfg.node.addresses {
            owned.insert(*a, Owned::Node);
        }
        let mut local_addrs: Vec<Addr> = prev.map(|p| p.local_addrs.clone()).unwrap_or_default();
        let mut backends: Vec<BackendInfo> = prev
            .map(|p| {
                p.backends
                    .iter()
                    .map(|b| {
                        let (mac, adjacent) = next_hop(&b.key.addr);
                        BackendInfo {
                            key: b.key,
                            mac,
                            adjacent,
                            state: state(&b.key),
                            removed: true,
                            reset: cfg.control.removed_backend == ConnPolicy::Reset,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut backend_ids: FxHashMap<BackendKey, BackendId> = backends
            .iter()
            .enumerate()
            .map(|(i, b)| (b.key, BackendId::new(i as u32)))
            .collect();
        // Previous VIPs start retired; the config revives those it still has.
        let mut vips: Vec<VipInfo> = prev
            .map(|p| {
                p.vips
                    .iter()
                    .map(|v| VipInfo {
                        weights: vec![0; v.backends.len()],
                        maglev: maglev::build(&[], crate::config::MIN_TABLE_SIZE),
                        retired: true,
                        reset: cfg.control.removed_vip == ConnPolicy::Reset,
                        sources: None,
                        ..v.clone()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut nat_targets: FxHashMap<(Addr, u16, u8), Vec<(VipId, BackendId)>> =
            FxHashMap::default();

        for v in &cfg.vips {
            let proto = v.protocol.number();
            let mut ids = Vec::with_capacity(v.backends.len());
            let mut weights = Vec::with_capacity(v.backends.len());
            let mut config_weights = Vec::with_capacity(v.backends.len());
            let mut mag = Vec::with_capacity(v.backends.len());
            for b in &v.backends {
                let key = BackendKey {
                    addr: b.address,
                    port: b.port,
                };
                let st = state(&key);
                let reset_down = b.health.down == ConnPolicy::Reset && st == BackendState::Down;
                let id = *backend_ids.entry(key).or_insert_with(|| {
                    let (mac, adjacent) = next_hop(&b.address);
                    backends.push(BackendInfo {
                        key,
                        mac,
                        adjacent,
                        state: st,
                        removed: false,
                        reset: false,
                    });
                    BackendId::new((backends.len() - 1) as u32)
                });
                if let Some(info) = backends.get_mut(id.index()) {
                    if info.removed {
                        info.removed = false;
                        info.reset = false;
                    }
                    info.reset |= reset_down;
                }
                let w = if st == BackendState::Up { b.weight } else { 0 };
                ids.push(id);
                weights.push(w);
                config_weights.push(b.weight);
                mag.push(MaglevBackend { key, weight: w });
            }
            let mut laddrs = Vec::new();
            for a in &v.local_addresses {
                let n = match local_addrs.iter().position(|x| x == a) {
                    Some(n) => n,
                    None => {
                        local_addrs.push(*a);
                        local_addrs.len() - 1
                    }
                };
                laddrs.push(n as u8);
            }
            let identity = (v.address, v.port, proto, v.mode);
            // The previous table serves when the backend set is the same.
            let old = vips.iter().position(|x| x.identity() == identity);
            let table = match old.and_then(|i| prev?.vips.get(i)) {
                Some(p)
                    if !p.retired
                        && p.backends == ids
                        && p.weights == weights
                        && p.maglev.size() == v.table_size =>
                {
                    p.maglev.clone()
                }
                _ => maglev::build(&mag, v.table_size),
            };
            let sources = (!v.sources.is_empty())
                .then(|| std::sync::Arc::new(Sources::build(&v.sources, &mag, v.table_size)));
            let info = VipInfo {
                name: v.name.clone(),
                addr: v.address,
                port: v.port,
                proto,
                mode: v.mode,
                sched: v.scheduler,
                backends: ids,
                weights,
                config_weights,
                maglev: table,
                local_addrs: laddrs,
                synproxy: v.synproxy,
                proxy_protocol: v.proxy_protocol != crate::config::ProxyProtocol::Off,
                encap: v.encap,
                retired: false,
                reset: false,
                sources,
            };
            let vi = VipId::new(match old {
                Some(i) => {
                    if let Some(slot) = vips.get_mut(i) {
                        *slot = info;
                    }
                    i
                }
                None => {
                    vips.push(info);
                    vips.len() - 1
                }
            } as u16);
            if v.mode == Mode::Nat {
                if let Some(x) = vips.get(vi.index()) {
                    for (&id, b) in x.backends.iter().zip(&v.backends) {
                        nat_targets
                            .entry((b.address, b.port, proto))
                            .or_default()
                            .push((vi, id));
                    }
                }
            }
        }
        // Every VIP address is answered for, retired ones too: their
        // connections still arrive.
        for v in &vips {
            owned.insert(v.addr, Owned::Vip);
        }
        for (n, a) in local_addrs.iter().enumerate() {
            owned.entry(*a).or_insert(Owned::Local(n as u8));
        }
        // A live VIP owns its key; a retired one keeps it while no live
        // VIP (one whose mode changed) has taken it.
        let mut keyed: FxHashMap<(Addr, u16, u8), VipId> = FxHashMap::default();
        for retired in [true, false] {
            for (i, v) in vips.iter().enumerate() {
                if v.retired == retired {
                    keyed.insert((v.addr, v.port, v.proto), VipId::new(i as u16));
                }
            }
        }
        let mut vip_keys: Vec<((Addr, u16, u8), VipId)> = keyed.into_iter().collect();
        vip_keys.sort_by_key(|(_, i)| *i);
        let nat_reply_vip = nat_targets
            .into_iter()
            // A proxied connection's replies need its sequence offset, which
            // only its entry knows: never translated statelessly.
            .filter(|(_, v)| {
                v.len() == 1
                    && !vips
                        .get(v[0].0.index())
                        .is_some_and(|x: &VipInfo| x.synproxy || x.proxy_protocol)
            })
            .map(|(k, v)| (k, v[0]))
            .collect();
        let any_reset =
            backends.iter().any(|b| b.reset) || vips.iter().any(|v| v.retired && v.reset);
        Snapshot {
            generation,
            mac: cfg.node.mac,
            gateway_mac: cfg.node.gateway_mac,
            vips,
            backends,
            local_addrs,
            conn_capacity: cfg.conntrack.capacity,
            timeouts: state_timeouts(&cfg.conntrack.timeouts),
            synproxy: cfg.synproxy.clone(),
            icmp: cfg.icmp,
            fragments: cfg.fragments,
            mtu: cfg.effective_mtu(),
            node_v4: cfg.node.addresses.iter().find(|a| a.is_v4()).copied(),
            node_v6: cfg.node.addresses.iter().find(|a| !a.is_v4()).copied(),
            any_reset,
            kernel: cfg
                .ports
                .iter()
                .any(|p| p.kernel_interface.is_some())
                .then(|| {
                    let d = cfg.dpdk.clone().unwrap_or_default();
                    (d.kernel_rate, d.kernel_burst)
                }),
            vip_index: VipMap::new(&vip_keys),
            owned,
            neighbor_last: last_byte_set(neighbors.keys()),
            neighbors,
            nat_reply_vip,
        }
    }

    /// Whether the connections of entry (VIP `vip`, backend `backend`)
    /// are to be reset.
    #[inline]
    pub fn resets(&self, vip: VipId, backend: BackendId) -> bool {
        self.backends.get(backend.index()).is_some_and(|b| b.reset)
            || self
                .vips
                .get(vip.index())
                .is_some_and(|v| v.retired && v.reset)
    }

    /// Whether any VIP proxies its handshakes (workers then set up the
    /// cookie secrets, hold pool and outbox).
    pub fn has_synproxy(&self) -> bool {
        self.vips.iter().any(|v| v.synproxy)
    }

    /// Whether any VIP sends PROXY headers (workers then set up the
    /// per-connection header state and outbox room).
    pub fn has_proxy_protocol(&self) -> bool {
        self.vips.iter().any(|v| v.proxy_protocol)
    }

    #[inline]
    pub fn vip(&self, addr: &Addr, port: u16, proto: u8) -> Option<VipId> {
        self.vip_index.get(addr, port, proto)
    }

    /// The node address of `a`'s family, if the node has one.
    #[inline]
    pub fn node_addr_for(&self, a: &Addr) -> Option<Addr> {
        if a.is_v4() {
            self.node_v4
        } else {
            self.node_v6
        }
    }

    #[inline]
    pub fn owned(&self, addr: &Addr) -> Option<Owned> {
        self.owned.get(addr).copied()
    }

    /// Next-hop MAC for a destination address: its neighbor entry, else the gateway.
    #[inline]
    pub fn next_hop(&self, addr: &Addr) -> Mac {
        let last = addr.0[15];
        let word = self.neighbor_last[usize::from(last >> 6) & 3];
        if word & (1 << (last & 63)) == 0 {
            return self.gateway_mac;
        }
        self.neighbors
            .get(addr)
            .copied()
            .unwrap_or(self.gateway_mac)
    }

    #[inline]
    pub fn nat_reply_vip(
        &self,
        backend: &Addr,
        port: u16,
        proto: u8,
    ) -> Option<(VipId, BackendId)> {
        self.nat_reply_vip.get(&(*backend, port, proto)).copied()
    }

    /// Which backend a new flow would get from the VIP's Maglev table
    /// (the `which_backend` simulator: no state, no scheduler).
    pub fn which_backend(&self, key: &FlowKey) -> Option<&BackendInfo> {
        let vi = self.vip(&key.dst, key.dport, key.proto)?;
        let b = self.vips.get(vi.index())?.maglev_backend(key)?;
        self.backends.get(b.index())
    }
}

fn state_timeouts(t: &Timeouts) -> StateTimeouts {
    let mut s = StateTimeouts::default();
    for (state, secs) in [
        (ConnState::SynSent, t.tcp_syn_sent),
        (ConnState::SynRecv, t.tcp_syn_recv),
        (ConnState::Established, t.tcp_established),
        (ConnState::FinWait, t.tcp_fin_wait),
        (ConnState::CloseWait, t.tcp_close_wait),
        (ConnState::TimeWait, t.tcp_time_wait),
        (ConnState::Close, t.tcp_close),
        (ConnState::Udp, t.udp),
    ] {
        s.0[state as usize] = secs;
    }
    s
}

/// VIP lookup by (address, port, protocol), the first lookup of every
/// packet: open addressing with linear probing over a power-of-two array at
/// most a quarter full, keys stored inline, so a hit or a miss usually costs
/// one hash and one slot.
#[derive(Clone, Debug)]
struct VipMap {
    slots: Box<[VipSlot]>,
    mask: usize,
}

#[derive(Clone, Copy, Debug, Default)]
struct VipSlot {
    addr: Addr,
    port: u16,
    proto: u8,
    used: bool,
    vip: VipId,
}

impl VipMap {
    const SEED: u64 = 0x7669_705f_6d61_7021;

    /// Each key maps to its VIP number. Keys are unique.
    fn new(keys: &[((Addr, u16, u8), VipId)]) -> VipMap {
        let size = (keys.len() * 4).next_power_of_two().max(8);
        let mut slots = vec![VipSlot::default(); size].into_boxed_slice();
        let mask = size - 1;
        for &((ref addr, port, proto), i) in keys {
            let mut pos = Self::hash(addr, port, proto) & mask;
            while slots.get(pos).is_some_and(|s| s.used) {
                pos = (pos + 1) & mask;
            }
            if let Some(s) = slots.get_mut(pos) {
                *s = VipSlot {
                    addr: *addr,
                    port,
                    proto,
                    used: true,
                    vip: i,
                };
            }
        }
        VipMap { slots, mask }
    }

    #[inline]
    fn hash(addr: &Addr, port: u16, proto: u8) -> usize {
        // One folded multiply: VIP keys come from the config, not from
        // packets, so no one can aim a flood of collisions at this table.
        let (a0, a1) = addr_words(addr);
        let tail = (port as u64) << 48 | (proto as u64) << 40;
        fold_mul(
            a0 ^ a1.rotate_left(23) ^ tail ^ Self::SEED,
            0x9e37_79b9_7f4a_7c15,
        ) as usize
    }

    #[inline]
    fn get(&self, addr: &Addr, port: u16, proto: u8) -> Option<VipId> {
        let mut pos = Self::hash(addr, port, proto) & self.mask;
        loop {
            let s = self.slots.get(pos)?;
            if !s.used {
                return None;
            }
            if s.port == port && s.proto == proto && s.addr == *addr {
                return Some(s.vip);
            }
            pos = (pos + 1) & self.mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A down backend leaves the schedulers; its connections are marked
    /// for reset only when its check says `down = "reset"`.
    #[test]
    fn down_backends_leave_the_table_and_reset_by_policy() {
        let text = crate::workload::CONFIG_TEXT;
        let cfg = crate::config::parse(text, "t.toml").unwrap();
        let prev = Snapshot::build(&cfg);
        let down = BackendKey {
            addr: Addr::from_v4([198, 18, 1, 11]),
            port: 8080,
        };
        let state = |k: &BackendKey| {
            if *k == down {
                BackendState::Down
            } else {
                BackendState::Up
            }
        };
        let s = Snapshot::derive(&cfg, Some(&prev), state, 1);
        let web = s.vips.iter().find(|v| v.name == "web").unwrap();
        let id =
            BackendId::from_index(s.backends.iter().position(|b| b.key == down).unwrap()).unwrap();
        assert_eq!(
            prev.backends.iter().position(|b| b.key == down),
            Some(id.index())
        );
        let i = web.backends.iter().position(|b| *b == id).unwrap();
        assert_eq!(web.weights[i], 0);
        assert_eq!(web.config_weights[i], 1);
        for h in 0..2000u64 {
            let slot = web.maglev.lookup(h.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            assert_ne!(slot, Some(i as u32));
        }
        assert!(!s.any_reset && !s.backends[id.index()].reset);

        let reset = text.replacen(
            "[[vip.backend]]\naddress = \"198.18.1.11\"\nport = 8080\nweight = 1",
            "[[vip.backend]]\naddress = \"198.18.1.11\"\nport = 8080\nweight = 1\nhealth = { down = \"reset\" }",
            1,
        );
        assert_ne!(reset, text);
        let cfg = crate::config::parse(&reset, "t.toml").unwrap();
        let s = Snapshot::derive(&cfg, Some(&prev), state, 2);
        assert!(s.any_reset && s.backends[id.index()].reset);
        assert!(s.resets(VipId::new(0), id));
        let s = Snapshot::derive(&cfg, Some(&prev), |_| BackendState::Up, 3);
        assert!(!s.any_reset);
    }

    /// The next hop of every neighbor is its own MAC; any other address,
    /// one sharing a neighbor's last byte included, goes to the gateway.
    #[test]
    fn next_hop_is_the_neighbor_else_the_gateway() {
        let cfg = crate::config::parse(crate::workload::CONFIG_TEXT, "t.toml").unwrap();
        assert!(!cfg.neighbors.is_empty());
        let s = Snapshot::build(&cfg);
        for n in &cfg.neighbors {
            assert_eq!(s.next_hop(&n.address), n.mac);
            let mut near = n.address;
            near.0[14] ^= 0x40;
            assert!(cfg.neighbors.iter().all(|m| m.address != near));
            assert_eq!(s.next_hop(&near), cfg.node.gateway_mac);
        }
        for last in 0..=255u8 {
            let a = Addr::from_v4([198, 19, 7, last]);
            assert_eq!(s.next_hop(&a), cfg.node.gateway_mac);
        }
        let mut none = cfg.clone();
        none.neighbors.clear();
        let s = Snapshot::build(&none);
        for n in &cfg.neighbors {
            assert_eq!(s.next_hop(&n.address), cfg.node.gateway_mac);
        }
    }

    #[test]
    fn vip_map_finds_every_key_and_nothing_else() {
        let keys: Vec<(Addr, u16, u8)> = (0..200u16)
            .map(|i| {
                (
                    Addr::from_v4([198, 18, 100, (i % 50) as u8]),
                    80 + i / 50,
                    6,
                )
            })
            .collect();
        let pairs: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, VipId::new(i as u16)))
            .collect();
        let m = VipMap::new(&pairs);
        for (i, (a, p, pr)) in keys.iter().enumerate() {
            assert_eq!(m.get(a, *p, *pr), Some(VipId::new(i as u16)));
            assert_eq!(m.get(a, *p, 17), None);
        }
        assert_eq!(m.get(&Addr::from_v4([198, 18, 100, 99]), 80, 6), None);
        let empty = VipMap::new(&[]);
        assert_eq!(empty.get(&Addr::from_v4([198, 18, 100, 1]), 80, 6), None);
    }
}
