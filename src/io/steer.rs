//! Software steering for several workers: which worker owns a frame.
//!
//! Each worker has its own connection table, so every packet of a
//! connection must be handled by the worker that created the entry, whatever
//! queue the NIC put it on. The owner is a pure function of the frame and
//! the snapshot, computed from the connection's *client* side, which both
//! directions carry:
//!
//! - to a VIP (client -> VIP): the source address and port;
//! - to a FullNAT local address (a backend's reply): the destination port,
//!   whose value modulo the worker count names the worker that allocated it
//!   (see [`crate::xmit::lport`]; DPVS's `sa_pool` does the same);
//! - anything else TCP/UDP (a NAT backend's reply goes to the client): the
//!   destination address and port.
//!
//! An ICMP error is owned as the connection its quote names is. Frames
//! that belong to no connection (ARP, ND, echo requests, what the parser
//! refuses) have no owner: the worker that received them handles them. A
//! frame handed to its owner goes through an `rte_ring` (see
//! [`crate::io::dpdk`]).

use crate::flow::{proto, Addr, FlowDesc, FlowKey};
use crate::frag;
use crate::snapshot::{Owned, Snapshot};
use crate::stats::DropReason;
use crate::wire;

/// The worker (of `workers`) that owns a connection whose client is
/// `addr:port`. Stable across processes and runs: the same client maps to
/// the same worker on every box with the same worker count.
#[inline]
pub fn client_owner(addr: &Addr, port: u16, workers: u16) -> u16 {
    if workers <= 1 {
        return 0;
    }
    let a = u128::from_be_bytes(addr.0);
    // Fold the address to 64 bits, mix in the port, and finish with a
    // multiply-xorshift (splitmix64's finaliser): cheap, and every input
    // bit reaches the high bits the modulo below keeps in play.
    let mut h = (a as u64) ^ ((a >> 64) as u64).rotate_left(29) ^ u64::from(port) << 48;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h % u64::from(workers)) as u16
}

/// The owner of `frame`, or `None` if any worker may handle it. `d` is
/// scratch for the parse.
#[inline]
pub fn owner(frame: &[u8], snap: &Snapshot, workers: u16, d: &mut FlowDesc) -> Option<u16> {
    if workers <= 1 {
        return None;
    }
    match wire::parse_into(frame, d) {
        Ok(()) => {}
        Err(DropReason::Ipv4Fragment | DropReason::Ipv6Fragment) => {
            return fragment_owner(frame, workers)
        }
        Err(_) => return None,
    }
    let k = &d.key;
    if k.proto == proto::ICMP || k.proto == proto::ICMPV6 {
        return icmp_error_owner(frame, snap, workers, d);
    }
    conn_owner(k, snap, workers)
}

/// The worker that owns the connection a TCP or UDP packet with 5-tuple
/// `k` belongs to (see the module doc); `None` for other protocols and
/// with one worker.
#[inline]
pub fn conn_owner(k: &FlowKey, snap: &Snapshot, workers: u16) -> Option<u16> {
    if workers <= 1 || k.proto != proto::TCP && k.proto != proto::UDP {
        return None;
    }
    if snap.vip(&k.dst, k.dport, k.proto).is_some() {
        return Some(client_owner(&k.src, k.sport, workers));
    }
    if let Some(Owned::Local(_)) = snap.owned(&k.dst) {
        return Some(k.dport % workers);
    }
    Some(client_owner(&k.dst, k.dport, workers))
}

/// Every fragment of a datagram, the first included, goes to the worker
/// its addresses and identification name ([`frag::owner`]): only the
/// first carries ports. That worker hands the datagram on to its
/// connection's owner if that is another worker.
#[cold]
fn fragment_owner(frame: &[u8], workers: u16) -> Option<u16> {
    let (d, f) = wire::parse_fragment(frame).ok()?;
    Some(frag::owner(&d.key.src, &d.key.dst, f.id, workers))
}

/// An ICMP error belongs to the connection its quote names: the quoted
/// packet left from a VIP to a client (the client owns it), from one of
/// our local addresses to a backend (the local port names the owner), or
/// from a client to a backend (the client owns it). Other ICMP has no owner.
fn icmp_error_owner(frame: &[u8], snap: &Snapshot, workers: u16, d: &FlowDesc) -> Option<u16> {
    let q = wire::icmp::quoted(frame, d)?.key;
    if snap.vip(&q.src, q.sport, q.proto).is_some() {
        return Some(client_owner(&q.dst, q.dport, workers));
    }
    if let Some(Owned::Local(_)) = snap.owned(&q.src) {
        return Some(q.sport % workers);
    }
    Some(client_owner(&q.src, q.sport, workers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Mac;
    use crate::gen;

    fn a(s: &str) -> Addr {
        Addr::from(s.parse::<std::net::IpAddr>().unwrap())
    }

    #[test]
    fn one_worker_owns_everything() {
        assert_eq!(client_owner(&a("198.18.200.1"), 1234, 1), 0);
        let snap = Snapshot::build(&crate::workload::reference_config());
        let mut d = FlowDesc::default();
        assert_eq!(owner(&[0u8; 60], &snap, 1, &mut d), None);
    }

    /// An IPv4 "fragmentation needed" from `src` to `dst` quoting `ip`.
    fn icmp_error(src: Addr, dst: Addr, ip: &[u8]) -> Vec<u8> {
        use etherparse::{icmpv4::DestUnreachableHeader, Icmpv4Type, PacketBuilder};
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1])
            .ipv4(src.v4_octets(), dst.v4_octets(), 64)
            .icmpv4(Icmpv4Type::DestinationUnreachable(
                DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
            ));
        let mut out = Vec::new();
        b.write(&mut out, ip).unwrap();
        out
    }

    #[test]
    fn clients_spread_over_workers() {
        for workers in [2u16, 3, 4, 8] {
            let mut seen = vec![0u32; usize::from(workers)];
            for i in 0..4000u32 {
                let c = Addr::from_v4([198, 18, 200 + (i % 40) as u8, (i / 40) as u8]);
                let w = client_owner(&c, 1024 + (i % 7) as u16, workers);
                seen[usize::from(w)] += 1;
            }
            let even = 4000 / u32::from(workers);
            for (w, n) in seen.iter().enumerate() {
                assert!(
                    n.abs_diff(even) < even / 5,
                    "{workers} workers: worker {w} got {n} of 4000"
                );
            }
        }
    }

    #[test]
    fn both_directions_of_a_connection_have_one_owner() {
        let snap = Snapshot::build(&crate::workload::reference_config());
        let mut d = FlowDesc::default();
        let eth = gen::Eth {
            src: Mac([2, 0, 0, 0, 0, 9]),
            dst: Mac([2, 0, 0, 0, 0, 1]),
            vlan: None,
        };
        let vip = snap.vips.iter().find(|v| v.name == "web").unwrap();
        let backend = a("198.18.1.11");
        for workers in [2u16, 3, 4] {
            for port in 40000..40064u16 {
                let client = a("198.18.200.7");
                let fwd = gen::TcpSeg {
                    sport: port,
                    dport: vip.port,
                    ..Default::default()
                };
                let syn = gen::tcp(&eth, client, vip.addr, 64, 1, &fwd);
                let rep = gen::TcpSeg {
                    sport: 8080,
                    dport: port,
                    ..Default::default()
                };
                // A NAT backend answers the client itself.
                let reply = gen::tcp(&eth, backend, client, 64, 1, &rep);
                let w = owner(&syn, &snap, workers, &mut d).unwrap();
                assert_eq!(w, client_owner(&client, port, workers));
                assert_eq!(owner(&reply, &snap, workers, &mut d), Some(w));
            }
        }
        // A FullNAT reply to a local address: the local port names the owner.
        let local = snap.local_addrs[0];
        for lport in 1024..1040u16 {
            let rep = gen::TcpSeg {
                sport: 8080,
                dport: lport,
                ..Default::default()
            };
            let reply = gen::tcp(&eth, backend, local, 64, 1, &rep);
            assert_eq!(owner(&reply, &snap, 4, &mut d), Some(lport % 4));
        }
        // An ICMP error is owned as the connection its quote names.
        for workers in [2u16, 3, 4] {
            for port in 40000..40016u16 {
                let client = a("198.18.200.7");
                let w = client_owner(&client, port, workers);
                // About our reply VIP:80 -> client, from a router on the
                // client's side.
                let reply = gen::tcp(
                    &eth,
                    vip.addr,
                    client,
                    64,
                    1,
                    &gen::TcpSeg {
                        sport: vip.port,
                        dport: port,
                        ..Default::default()
                    },
                );
                let err = icmp_error(a("198.18.60.1"), vip.addr, &reply[14..]);
                assert_eq!(owner(&err, &snap, workers, &mut d), Some(w));
                // About the client's packet client -> backend, from the
                // backend's side.
                let fwd = gen::tcp(
                    &eth,
                    client,
                    backend,
                    64,
                    1,
                    &gen::TcpSeg {
                        sport: port,
                        dport: 8080,
                        ..Default::default()
                    },
                );
                let err = icmp_error(backend, client, &fwd[14..]);
                assert_eq!(owner(&err, &snap, workers, &mut d), Some(w));
            }
        }
        // ARP has no owner; neither has garbage.
        let arp = gen::arp_request(eth.src, a("198.18.1.11"), a("198.18.0.1"));
        assert_eq!(owner(&arp, &snap, 2, &mut d), None);
        assert_eq!(owner(&[0xffu8; 20], &snap, 2, &mut d), None);
    }
}
