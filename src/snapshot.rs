//! The immutable view of the configuration that workers read: VIPs with
//! their Maglev tables, the backend and FullNAT local-address registries,
//! the neighbor table and the addresses the node answers ARP/ND for.
//!
//! Built by the control side from a validated [`Config`]; the datapath only
//! indexes into it. Numbers handed out here (VIP, backend, local address)
//! are what connection entries store, so an entry names its backend by
//! identity: the backend registry holds each distinct (address, port) once.

use rustc_hash::FxHashMap;

use crate::config::{Config, Mode, Synproxy, Timeouts};
use crate::conntrack::{addr_words, flow_hash, fold_mul, ConnState, StateTimeouts};
use crate::flow::{Addr, FlowKey, Mac};
use crate::maglev::{self, BackendKey, MaglevBackend, Table};
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

/// A backend as the datapath needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendInfo {
    pub key: BackendKey,
    /// Next-hop MAC: the neighbor entry, else the gateway.
    pub mac: Mac,
    /// Whether `mac` came from a neighbor entry (DR requires it).
    pub adjacent: bool,
}

#[derive(Clone, Debug)]
pub struct VipInfo {
    pub name: String,
    pub addr: Addr,
    pub port: u16,
    pub proto: u8,
    pub mode: Mode,
    pub sched: SchedKind,
    /// Backend registry numbers, in config order (scheduler index i = backends[i]).
    pub backends: Vec<u32>,
    pub weights: Vec<u32>,
    pub maglev: Table,
    /// FullNAT local address numbers.
    pub local_addrs: Vec<u8>,
    /// New connections go through the SYN proxy.
    pub synproxy: bool,
}

impl VipInfo {
    /// The Maglev choice for a forward flow, as a backend registry number.
    #[inline]
    pub fn maglev_backend(&self, key: &FlowKey) -> Option<u32> {
        let i = self.maglev.lookup(flow_hash(key, MAGLEV_SEED))?;
        self.backends.get(i as usize).copied()
    }
}

#[derive(Clone, Debug)]
pub struct Snapshot {
    pub mac: Mac,
    pub gateway_mac: Mac,
    pub vips: Vec<VipInfo>,
    pub backends: Vec<BackendInfo>,
    pub local_addrs: Vec<Addr>,
    pub conn_capacity: u32,
    pub timeouts: StateTimeouts,
    /// SYN proxy settings (used when a VIP has `synproxy`).
    pub synproxy: Synproxy,
    vip_index: VipMap,
    owned: FxHashMap<Addr, Owned>,
    neighbors: FxHashMap<Addr, Mac>,
    /// (backend address, port, protocol) -> the one NAT VIP it serves and
    /// its backend number, for translating replies of flows that have no
    /// entry (table full).
    nat_reply_vip: FxHashMap<(Addr, u16, u8), (u16, u32)>,
}

impl Snapshot {
    pub fn build(cfg: &Config) -> Snapshot {
        let neighbors: FxHashMap<Addr, Mac> =
            cfg.neighbors.iter().map(|n| (n.address, n.mac)).collect();
        let mut owned: FxHashMap<Addr, Owned> = FxHashMap::default();
        for a in &cfg.node.addresses {
            owned.insert(*a, Owned::Node);
        }
        let mut local_addrs: Vec<Addr> = Vec::new();
        let mut backends: Vec<BackendInfo> = Vec::new();
        let mut backend_ids: FxHashMap<BackendKey, u32> = FxHashMap::default();
        let mut vips = Vec::with_capacity(cfg.vips.len());
        let mut vip_keys = Vec::with_capacity(cfg.vips.len());
        let mut nat_targets: FxHashMap<(Addr, u16, u8), Vec<(u16, u32)>> = FxHashMap::default();

        for (vi, v) in cfg.vips.iter().enumerate() {
            let vi = vi as u16;
            owned.insert(v.address, Owned::Vip);
            let proto = v.protocol.number();
            let mut ids = Vec::with_capacity(v.backends.len());
            let mut weights = Vec::with_capacity(v.backends.len());
            let mut mag = Vec::with_capacity(v.backends.len());
            for b in &v.backends {
                let key = BackendKey {
                    addr: b.address,
                    port: b.port,
                };
                let id = *backend_ids.entry(key).or_insert_with(|| {
                    let (mac, adjacent) = match neighbors.get(&b.address) {
                        Some(m) => (*m, true),
                        None => (cfg.node.gateway_mac, false),
                    };
                    backends.push(BackendInfo { key, mac, adjacent });
                    (backends.len() - 1) as u32
                });
                ids.push(id);
                weights.push(b.weight);
                mag.push(MaglevBackend {
                    key,
                    weight: b.weight,
                });
                if v.mode == Mode::Nat {
                    nat_targets
                        .entry((b.address, b.port, proto))
                        .or_default()
                        .push((vi, id));
                }
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
            vip_keys.push((v.address, v.port, proto));
            vips.push(VipInfo {
                name: v.name.clone(),
                addr: v.address,
                port: v.port,
                proto,
                mode: v.mode,
                sched: v.scheduler,
                backends: ids,
                weights,
                maglev: maglev::build(&mag, v.table_size),
                local_addrs: laddrs,
                synproxy: v.synproxy,
            });
        }
        for (n, a) in local_addrs.iter().enumerate() {
            owned.entry(*a).or_insert(Owned::Local(n as u8));
        }
        let nat_reply_vip = nat_targets
            .into_iter()
            // A proxied connection's replies need its sequence offset, which
            // only its entry knows: never translated statelessly.
            .filter(|(_, v)| {
                v.len() == 1
                    && !vips
                        .get(v[0].0 as usize)
                        .is_some_and(|x: &VipInfo| x.synproxy)
            })
            .map(|(k, v)| (k, v[0]))
            .collect();
        Snapshot {
            mac: cfg.node.mac,
            gateway_mac: cfg.node.gateway_mac,
            vips,
            backends,
            local_addrs,
            conn_capacity: cfg.conntrack.capacity,
            timeouts: state_timeouts(&cfg.conntrack.timeouts),
            synproxy: cfg.synproxy.clone(),
            vip_index: VipMap::new(&vip_keys),
            owned,
            neighbors,
            nat_reply_vip,
        }
    }

    /// Whether any VIP proxies its handshakes (workers then set up the
    /// cookie secrets, hold pool and outbox).
    pub fn has_synproxy(&self) -> bool {
        self.vips.iter().any(|v| v.synproxy)
    }

    #[inline]
    pub fn vip(&self, addr: &Addr, port: u16, proto: u8) -> Option<u16> {
        self.vip_index.get(addr, port, proto)
    }

    #[inline]
    pub fn owned(&self, addr: &Addr) -> Option<Owned> {
        self.owned.get(addr).copied()
    }

    /// Next-hop MAC for a destination address: its neighbor entry, else the gateway.
    #[inline]
    pub fn next_hop(&self, addr: &Addr) -> Mac {
        if self.neighbors.is_empty() {
            return self.gateway_mac;
        }
        self.neighbors
            .get(addr)
            .copied()
            .unwrap_or(self.gateway_mac)
    }

    #[inline]
    pub fn nat_reply_vip(&self, backend: &Addr, port: u16, proto: u8) -> Option<(u16, u32)> {
        self.nat_reply_vip.get(&(*backend, port, proto)).copied()
    }

    /// Which backend a new flow would get from the VIP's Maglev table
    /// (the `which_backend` simulator: no state, no scheduler).
    pub fn which_backend(&self, key: &FlowKey) -> Option<&BackendInfo> {
        let vi = self.vip(&key.dst, key.dport, key.proto)?;
        let b = self.vips.get(vi as usize)?.maglev_backend(key)?;
        self.backends.get(b as usize)
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
    vip: u16,
}

impl VipMap {
    const SEED: u64 = 0x7669_705f_6d61_7021;

    /// `keys[i]` maps to VIP number `i`. Keys are unique (config validation).
    fn new(keys: &[(Addr, u16, u8)]) -> VipMap {
        let size = (keys.len() * 4).next_power_of_two().max(8);
        let mut slots = vec![VipSlot::default(); size].into_boxed_slice();
        let mask = size - 1;
        for (i, (addr, port, proto)) in keys.iter().enumerate() {
            let mut pos = Self::hash(addr, *port, *proto) & mask;
            while slots.get(pos).is_some_and(|s| s.used) {
                pos = (pos + 1) & mask;
            }
            if let Some(s) = slots.get_mut(pos) {
                *s = VipSlot {
                    addr: *addr,
                    port: *port,
                    proto: *proto,
                    used: true,
                    vip: i as u16,
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
    fn get(&self, addr: &Addr, port: u16, proto: u8) -> Option<u16> {
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
        let m = VipMap::new(&keys);
        for (i, (a, p, pr)) in keys.iter().enumerate() {
            assert_eq!(m.get(a, *p, *pr), Some(i as u16));
            assert_eq!(m.get(a, *p, 17), None);
        }
        assert_eq!(m.get(&Addr::from_v4([198, 18, 100, 99]), 80, 6), None);
        let empty = VipMap::new(&[]);
        assert_eq!(empty.get(&Addr::from_v4([198, 18, 100, 1]), 80, 6), None);
    }
}
