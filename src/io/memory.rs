//! In-memory backend for `rampart bench` and tests.
//!
//! The receive side is a ring of pre-built frames replayed a fixed number of
//! rounds; each frame is copied into the caller's reused [`RxPacket`], so the
//! datapath may rewrite it in place and the next round still sees the
//! original. The transmit side counts packets and bytes, and on request keeps
//! a copy of every frame for tests to inspect.
//!
//! After warm-up (the batch buffers have grown to the largest frame) neither
//! side allocates per packet, unless [`MemoryIo::keep_tx`] was asked for.
//!
//! Timestamps come from a synthetic clock that advances a fixed step per
//! packet, so runs are reproducible.

use std::io;

use super::{slot, PacketIo, RxPacket};

pub struct MemoryIo {
    ring: Vec<Vec<u8>>,
    /// Rounds still to start after the current one.
    rounds_left: u64,
    next: usize,
    clock_ns: u64,
    step_ns: u64,
    rx_packets: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    kept: Option<Vec<RxPacket>>,
}

impl MemoryIo {
    /// Replay `ring` `rounds` times (0 rounds: nothing to receive). The clock
    /// starts at 0 and advances 1 µs per packet.
    pub fn new(ring: Vec<Vec<u8>>, rounds: u64) -> MemoryIo {
        let rounds_left = if ring.is_empty() {
            0
        } else {
            rounds.saturating_sub(1)
        };
        let next = if rounds == 0 { ring.len() } else { 0 };
        MemoryIo {
            ring,
            rounds_left,
            next,
            clock_ns: 0,
            step_ns: 1_000,
            rx_packets: 0,
            tx_packets: 0,
            tx_bytes: 0,
            kept: None,
        }
    }

    /// Start the clock at `start_ns` and advance it `step_ns` per packet.
    pub fn with_clock(mut self, start_ns: u64, step_ns: u64) -> MemoryIo {
        self.clock_ns = start_ns;
        self.step_ns = step_ns;
        self
    }

    /// Keep a copy of every transmitted frame (allocates; for tests).
    pub fn keep_tx(mut self) -> MemoryIo {
        self.kept = Some(Vec::new());
        self
    }

    /// Frames transmitted so far, if [`MemoryIo::keep_tx`] was asked for.
    pub fn sent(&self) -> &[RxPacket] {
        self.kept.as_deref().unwrap_or(&[])
    }

    /// Take the kept frames, leaving the list empty (still keeping).
    pub fn take_sent(&mut self) -> Vec<RxPacket> {
        match self.kept.as_mut() {
            Some(k) => std::mem::take(k),
            None => Vec::new(),
        }
    }

    /// Packets delivered by `rx_burst` so far.
    pub fn rx_packets(&self) -> u64 {
        self.rx_packets
    }

    /// Rewind to the start: `rounds` more rounds, counters kept.
    pub fn rewind(&mut self, rounds: u64) {
        self.rounds_left = if self.ring.is_empty() {
            0
        } else {
            rounds.saturating_sub(1)
        };
        self.next = if rounds == 0 { self.ring.len() } else { 0 };
    }
}

impl PacketIo for MemoryIo {
    type Buf = RxPacket;

    fn rx_burst(&mut self, bufs: &mut Vec<RxPacket>, max: usize) -> io::Result<usize> {
        let mut n = 0;
        while n < max {
            if self.next >= self.ring.len() {
                if self.rounds_left == 0 {
                    break;
                }
                self.rounds_left -= 1;
                self.next = 0;
            }
            let Some(frame) = self.ring.get(self.next) else {
                break;
            };
            slot(bufs, n).fill(frame, self.clock_ns);
            self.clock_ns = self.clock_ns.wrapping_add(self.step_ns);
            self.next += 1;
            n += 1;
        }
        self.rx_packets += n as u64;
        Ok(n)
    }

    fn tx(&mut self, _idx: usize, pkt: &RxPacket) -> io::Result<()> {
        self.tx_packets += 1;
        self.tx_bytes += pkt.data.len() as u64;
        if let Some(kept) = self.kept.as_mut() {
            kept.push(pkt.clone());
        }
        Ok(())
    }

    fn tx_frame(&mut self, frame: &[u8], ts_ns: u64) -> io::Result<()> {
        self.tx_packets += 1;
        self.tx_bytes += frame.len() as u64;
        if let Some(kept) = self.kept.as_mut() {
            kept.push(RxPacket::new(frame.to_vec(), ts_ns));
        }
        Ok(())
    }

    fn exhausted(&self) -> bool {
        self.next >= self.ring.len() && self.rounds_left == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_rounds_in_bursts() {
        let ring = vec![vec![1u8; 60], vec![2u8; 70], vec![3u8; 80]];
        let mut io = MemoryIo::new(ring, 3).with_clock(100, 10).keep_tx();
        let mut bufs = Vec::new();
        let mut seen = Vec::new();
        while !io.exhausted() {
            let n = io.rx_burst(&mut bufs, 4).unwrap();
            assert!(n <= 4);
            for p in &bufs[..n] {
                seen.push((p.data[0], p.data.len(), p.ts_ns));
                io.tx(0, p).unwrap();
            }
        }
        assert_eq!(seen.len(), 9);
        assert_eq!(seen[0], (1, 60, 100));
        assert_eq!(seen[4], (2, 70, 140));
        assert_eq!(seen[8], (3, 80, 180));
        assert_eq!(io.rx_burst(&mut bufs, 4).unwrap(), 0);
        assert_eq!(io.rx_packets(), 9);
        assert_eq!(io.tx_packets, 9);
        assert_eq!(io.tx_bytes, 3 * (60 + 70 + 80));
        assert_eq!(io.sent().len(), 9);
        assert_eq!(io.take_sent().len(), 9);
        assert!(io.sent().is_empty());
    }

    #[test]
    fn buffers_are_reused_after_warm_up() {
        let mut io = MemoryIo::new(vec![vec![7u8; 100]; 8], 10);
        let mut bufs = Vec::new();
        io.rx_burst(&mut bufs, 8).unwrap();
        let ptrs: Vec<*const u8> = bufs.iter().map(|b| b.data.as_ptr()).collect();
        for _ in 0..5 {
            assert_eq!(io.rx_burst(&mut bufs, 8).unwrap(), 8);
            let now: Vec<*const u8> = bufs.iter().map(|b| b.data.as_ptr()).collect();
            assert_eq!(ptrs, now);
        }
    }

    #[test]
    fn empty_and_zero_rounds() {
        let mut bufs = Vec::new();
        let mut io = MemoryIo::new(Vec::new(), 5);
        assert!(io.exhausted());
        assert_eq!(io.rx_burst(&mut bufs, 32).unwrap(), 0);
        let mut io = MemoryIo::new(vec![vec![0u8; 60]], 0);
        assert!(io.exhausted());
        assert_eq!(io.rx_burst(&mut bufs, 32).unwrap(), 0);
        io.rewind(2);
        assert_eq!(io.rx_burst(&mut bufs, 32).unwrap(), 2);
        assert!(io.exhausted());
    }
}
