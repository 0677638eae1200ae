//! `[node]`, the `[[neighbor]]` entries, `[icmp]` and `[fragments]`: what
//! rampart is on the wire (its MAC, addresses, MTU), what it answers for
//! itself and how it tracks IP fragments.

use super::*;
use crate::config::raw::{RawFragments, RawIcmp, RawNeighbor, RawNode};

pub(super) fn node(cx: &Ctx, n: &RawNode) -> Res<Node> {
    let mac = cx.mac(&n.mac, "node.mac")?;
    let list = n.addresses.get_ref();
    if list.is_empty() {
        return cx.err(
            n.addresses.span(),
            "node.addresses",
            "at least one address is needed (rampart answers ARP/ND for them and sources probes from them)"
                .to_string(),
        );
    }
    let mut addresses: Vec<Addr> = Vec::with_capacity(list.len());
    for (i, a) in list.iter().enumerate() {
        let key = format!("node.addresses[{i}]");
        let addr = cx.addr(a, &key)?;
        if addresses.contains(&addr) {
            return cx.err(a.span(), &key, format!("{addr} is listed twice"));
        }
        addresses.push(addr);
    }
    let gateway_mac = cx.mac(&n.gateway_mac, "node.gateway_mac")?;
    let mtu = match &n.mtu {
        Some(m) => cx.int(m, "node.mtu", MIN_MTU.into(), MAX_MTU.into(), " bytes")? as u16,
        None => DEFAULT_MTU,
    };
    Ok(Node {
        mac,
        addresses,
        gateway_mac,
        mtu,
    })
}

/// `[[neighbor]]`: static entries for other hosts, one per address.
pub(super) fn neighbors(cx: &Ctx, raw: &[S<RawNeighbor>], node: &Node) -> Res<Vec<Neighbor>> {
    let mut neighbors = Vec::with_capacity(raw.len());
    let mut seen_neighbors: HashMap<Addr, usize> = HashMap::new();
    for (i, n) in raw.iter().enumerate() {
        let n = n.get_ref();
        let key = format!("neighbor[{i}].address");
        let address = cx.addr(&n.address, &key)?;
        if node.addresses.contains(&address) {
            return cx.err(
                n.address.span(),
                &key,
                format!("{address} is one of node.addresses; neighbor entries are for other hosts"),
            );
        }
        if let Some(line) = seen_neighbors.get(&address) {
            return cx.err(
                n.address.span(),
                &key,
                format!("{address} already has a neighbor entry (line {line})"),
            );
        }
        seen_neighbors.insert(address, cx.line(&n.address.span()));
        let mac = cx.mac(&n.mac, &format!("neighbor[{i}].mac"))?;
        neighbors.push(Neighbor { address, mac });
    }
    Ok(neighbors)
}

pub(super) fn icmp(cx: &Ctx, r: &RawIcmp) -> Res<Icmp> {
    let mut out = Icmp::default();
    if let Some(v) = &r.echo_rate {
        out.echo_rate = cx.int(
            v,
            "icmp.echo_rate",
            0,
            10_000_000,
            " per second (0 = no limit)",
        )?;
        out.echo_burst = out.echo_rate;
    }
    if let Some(v) = &r.echo_burst {
        out.echo_burst = cx.int(v, "icmp.echo_burst", 1, 10_000_000, "")?;
    }
    Ok(out)
}

pub(super) fn fragments(cx: &Ctx, r: &RawFragments) -> Res<Fragments> {
    let mut out = Fragments::default();
    if let Some(v) = &r.timeout_ms {
        out.timeout_ms = cx.int(
            v,
            "fragments.timeout_ms",
            1,
            MAX_FRAG_TIMEOUT_MS,
            " milliseconds",
        )?;
    }
    if let Some(v) = &r.max_held {
        out.max_held = cx.int(
            v,
            "fragments.max_held",
            0,
            MAX_FRAG_HELD,
            " fragments (0 = never hold)",
        )?;
    }
    if let Some(v) = &r.table_size {
        out.table_size = cx.int(
            v,
            "fragments.table_size",
            MIN_FRAG_TABLE,
            MAX_FRAG_TABLE,
            " datagrams",
        )?;
    }
    Ok(out)
}
