//! FullNAT local ports. Each worker owns the ports whose value modulo the
//! worker count is its own number, for every local address, so a backend's
//! reply to `local_addr:port` names its owning worker by the port alone and
//! steering needs no shared state (DPVS's `sa_pool` does the same).
//!
//! Ports are handed out first-in first-out: a port that was just released is
//! the last to be reused, which keeps a backend's TIME_WAIT for the old
//! connection from colliding with the next one on the same port.

use std::collections::VecDeque;

/// Lowest local port handed out; below are the well-known ports.
pub const FIRST_PORT: u16 = 1024;

pub struct LocalPorts {
    pools: Vec<VecDeque<u16>>,
    next: usize,
    worker: u16,
    workers: u16,
}

impl LocalPorts {
    /// Pools for `addrs` local addresses, holding the ports that worker
    /// `worker` of `workers` owns.
    pub fn new(addrs: usize, worker: u16, workers: u16) -> LocalPorts {
        let mut ports = LocalPorts {
            pools: Vec::new(),
            next: 0,
            worker,
            workers: workers.max(1),
        };
        ports.grow(addrs);
        ports
    }

    /// Adds full pools until there are `addrs` (a reload added local
    /// addresses; numbers of existing ones never change).
    pub fn grow(&mut self, addrs: usize) {
        let (worker, workers) = (self.worker, self.workers);
        while self.pools.len() < addrs {
            self.pools.push(
                (FIRST_PORT..=u16::MAX)
                    .filter(|p| p % workers == worker % workers)
                    .collect(),
            );
        }
    }

    /// A free (local address, port) among `laddrs`, trying them in turn from
    /// a rotating start so load spreads over the addresses.
    pub fn alloc(&mut self, laddrs: &[u8]) -> Option<(u8, u16)> {
        let n = laddrs.len();
        for i in 0..n {
            let a = *laddrs.get((self.next + i) % n)?;
            if let Some(port) = self.pools.get_mut(a as usize).and_then(|p| p.pop_front()) {
                self.next = (self.next + i + 1) % n;
                return Some((a, port));
            }
        }
        None
    }

    pub fn release(&mut self, laddr: u8, port: u16) {
        if let Some(p) = self.pools.get_mut(laddr as usize) {
            p.push_back(port);
        }
    }

    pub fn free(&self, laddr: u8) -> usize {
        self.pools.get(laddr as usize).map_or(0, |p| p.len())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn ports_belong_to_their_worker() {
        let mut a = LocalPorts::new(1, 1, 4);
        assert_eq!(
            a.free(0),
            (FIRST_PORT as usize..=65535).filter(|p| p % 4 == 1).count()
        );
        for _ in 0..100 {
            let (_, p) = a.alloc(&[0]).unwrap();
            assert_eq!(p % 4, 1);
            assert!(p >= FIRST_PORT);
        }
    }

    #[test]
    fn exhaustion_and_fifo_reuse() {
        let mut a = LocalPorts::new(2, 0, 1);
        let total = a.free(0) + a.free(1);
        let mut got = Vec::new();
        while let Some(x) = a.alloc(&[0, 1]) {
            got.push(x);
        }
        assert_eq!(got.len(), total);
        assert_eq!(a.alloc(&[0, 1]), None);
        a.release(got[0].0, got[0].1);
        a.release(got[1].0, got[1].1);
        // Round robin over addresses, oldest released first.
        let x = a.alloc(&[0, 1]).unwrap();
        let y = a.alloc(&[0, 1]).unwrap();
        let mut both = [x, y];
        both.sort();
        let mut want = [got[0], got[1]];
        want.sort();
        assert_eq!(both, want);
    }
}
