//! Source-prefix steering (`[[vip.source]]`): the part of a VIP's snapshot
//! that says which subset of its backends (a *pool*) a client's new flows
//! are scheduled over.
//!
//! A client's pool is the entry of the longest of the VIP's prefixes that
//! holds its address, found in an [`Lpm`] whose cost does not grow with the
//! number of prefixes. Each pool has a Maglev table of its own, built like
//! the VIP's from the pool's backends and their effective weights, so a
//! pool's flows land the same way on every box and whether or not they
//! have an entry; the other schedulers pick within the pool through their
//! per-worker state ([`crate::sched::Scheduler::pick_pool`]).
//!
//! Only new flows consult any of this: a connection's entry names its
//! backend, so a reload that moves prefixes never remaps a connection.
//! A pool none of whose backends takes new connections (down, drained)
//! gives its clients back to the whole VIP.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::config::Source;
use crate::flow::Addr;
use crate::lpm::Lpm;
use crate::maglev::{self, MaglevBackend, Table};

/// One `[[vip.source]]` entry as workers use it.
#[derive(Clone, Debug)]
pub struct Pool {
    /// The entry's backends as scheduler slots of the VIP (indices into
    /// its backend list), in config order.
    pub members: Box<[u32]>,
    /// Maglev over the members at their effective weights; a lookup gives
    /// an index into `members`.
    pub maglev: Table,
}

/// A VIP's source entries: prefixes to pools.
#[derive(Clone, Debug)]
pub struct Sources {
    lpm: Lpm,
    pools: Box<[Pool]>,
}

impl Sources {
    /// The pools of `sources`; `backends[i]` is the VIP's backend `i` as
    /// its Maglev table is built from (effective weight). Allocates:
    /// control plane only.
    pub fn build(sources: &[Source], backends: &[MaglevBackend], table_size: u32) -> Sources {
        let pools = sources
            .iter()
            .map(|s| {
                let set: Vec<MaglevBackend> = s
                    .backends
                    .iter()
                    .filter_map(|&i| backends.get(i).copied())
                    .collect();
                Pool {
                    members: s.backends.iter().map(|&i| i as u32).collect(),
                    maglev: maglev::build(&set, table_size),
                }
            })
            .collect();
        let lpm = Lpm::new(
            sources
                .iter()
                .zip(0u32..)
                .flat_map(|(s, p)| s.prefixes.iter().map(move |&n| (n, p))),
        );
        Sources { lpm, pools }
    }

    /// The pool of the client at `a`: its longest matching prefix's entry.
    #[inline]
    pub fn pool_of(&self, a: &Addr) -> Option<u32> {
        self.lpm.lookup(a)
    }

    #[inline]
    pub fn pool(&self, p: u32) -> Option<&Pool> {
        self.pools.get(p as usize)
    }

    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// The prefix table.
    pub fn lpm(&self) -> &Lpm {
        &self.lpm
    }

    /// The VIP slot the client at `client`'s pool table gives `hash`;
    /// `None` when the client is in no pool or its pool has no live backend.
    #[inline]
    pub fn hash_slot(&self, client: &Addr, hash: u64) -> Option<u32> {
        let pool = self.pool(self.pool_of(client)?)?;
        let j = pool.maglev.lookup(hash)?;
        pool.members.get(j as usize).copied()
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Subnet;
    use crate::maglev::BackendKey;

    fn backend(n: u8, weight: u32) -> MaglevBackend {
        MaglevBackend {
            key: BackendKey {
                addr: Addr::from_v4([198, 18, 1, n]),
                port: 8080,
            },
            weight,
        }
    }

    fn subnet(s: &str) -> Subnet {
        let (a, l) = s.split_once('/').unwrap();
        Subnet {
            addr: a.parse().unwrap(),
            prefix_len: l.parse().unwrap(),
        }
    }

    #[test]
    fn clients_hash_within_their_pool() {
        let vip = [
            backend(11, 1),
            backend(12, 1),
            backend(13, 1),
            backend(14, 0),
        ];
        let sources = [
            Source {
                prefixes: vec![subnet("198.19.0.0/16")],
                backends: vec![2, 0],
            },
            Source {
                prefixes: vec![subnet("198.19.128.0/17")],
                backends: vec![1],
            },
            Source {
                prefixes: vec![subnet("198.18.64.0/18")],
                backends: vec![3],
            },
        ];
        let s = Sources::build(&sources, &vip, 1009);
        assert_eq!(&*s.pool(0).unwrap().members, &[2, 0]);
        assert_eq!(s.lpm().len(), 3);
        let a = Addr::from_v4([198, 19, 5, 1]);
        let b = Addr::from_v4([198, 19, 200, 1]);
        let c = Addr::from_v4([198, 18, 70, 1]);
        let other = Addr::from_v4([198, 18, 50, 1]);
        assert_eq!(s.pool_of(&a), Some(0));
        assert_eq!(s.pool_of(&b), Some(1));
        assert_eq!(s.pool_of(&c), Some(2));
        assert_eq!(s.pool_of(&other), None);
        let mut seen = [false; 4];
        for h in 0..200u64 {
            let h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let slot = s.hash_slot(&a, h).unwrap();
            assert!(slot == 0 || slot == 2);
            seen[slot as usize] = true;
            assert_eq!(s.hash_slot(&b, h), Some(1));
            // Pool 2's only backend is drained: no pool answer.
            assert_eq!(s.hash_slot(&c, h), None);
            assert_eq!(s.hash_slot(&other, h), None);
        }
        assert_eq!(seen, [true, false, true, false]);
    }
}
