//! A worker's end of a software queue: frames another thread handed it,
//! and the frames it transmits, kept for that thread.
//!
//! `rampart replay --workers N` runs one reader and N workers; the reader
//! steers every frame of a burst to the worker that owns it
//! ([`crate::io::steer`]) and passes each worker its share. The worker
//! [`QueueIo::load`]s the share, polls once, and hands back
//! [`QueueIo::take_sent`]: the same loop as on a NIC queue, with the
//! channel in place of the ring. Frames are copied in and out; this backend
//! serves tests and replays, not a line-rate path.

use std::io;

use super::{slot, PacketIo, RxPacket};

#[derive(Default)]
pub struct QueueIo {
    pending: Vec<RxPacket>,
    next: usize,
    sent: Vec<RxPacket>,
    handed: Vec<(u16, RxPacket)>,
}

impl QueueIo {
    /// Queue `frames` for the next polls, in order, replacing what is left.
    pub fn load(&mut self, frames: Vec<RxPacket>) {
        self.pending = frames;
        self.next = 0;
    }

    /// The frames handed in, for reuse by the thread that filled them.
    pub fn take_loaded(&mut self) -> Vec<RxPacket> {
        self.next = 0;
        std::mem::take(&mut self.pending)
    }

    /// Frames transmitted since the last call, in transmit order.
    pub fn take_sent(&mut self) -> Vec<RxPacket> {
        std::mem::take(&mut self.sent)
    }

    /// Frames handed to other workers since the last call, in order, each
    /// with the worker it is for.
    pub fn take_handed(&mut self) -> Vec<(u16, RxPacket)> {
        std::mem::take(&mut self.handed)
    }
}

impl PacketIo for QueueIo {
    type Buf = RxPacket;

    fn rx_burst(&mut self, bufs: &mut Vec<RxPacket>, max: usize) -> io::Result<usize> {
        let mut n = 0;
        while n < max {
            let Some(p) = self.pending.get(self.next) else {
                break;
            };
            slot(bufs, n).fill(&p.data, p.ts_ns);
            self.next += 1;
            n += 1;
        }
        Ok(n)
    }

    fn tx(&mut self, _idx: usize, pkt: &RxPacket) -> io::Result<()> {
        self.sent.push(pkt.clone());
        Ok(())
    }

    fn tx_frame(&mut self, frame: &[u8], ts_ns: u64) -> io::Result<()> {
        self.sent.push(RxPacket::new(frame.to_vec(), ts_ns));
        Ok(())
    }

    fn hand_over(&mut self, to: u16, frame: &[u8], ts_ns: u64) -> io::Result<()> {
        self.handed.push((to, RxPacket::new(frame.to_vec(), ts_ns)));
        Ok(())
    }

    fn exhausted(&self) -> bool {
        self.next >= self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_what_was_loaded_and_keeps_what_was_sent() {
        let mut io = QueueIo::default();
        assert!(io.exhausted());
        io.load(vec![
            RxPacket::new(vec![1; 60], 5),
            RxPacket::new(vec![2; 61], 6),
        ]);
        let mut bufs = Vec::new();
        assert_eq!(io.rx_burst(&mut bufs, 1).unwrap(), 1);
        assert_eq!((bufs[0].data[0], bufs[0].ts_ns), (1, 5));
        io.tx(0, &bufs[0]).unwrap();
        io.tx_frame(&[9; 42], 7).unwrap();
        assert_eq!(io.rx_burst(&mut bufs, 32).unwrap(), 1);
        assert_eq!((bufs[0].data[0], bufs[0].ts_ns), (2, 6));
        assert!(io.exhausted());
        assert_eq!(io.rx_burst(&mut bufs, 32).unwrap(), 0);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 2);
        assert_eq!((sent[1].data.len(), sent[1].ts_ns), (42, 7));
        assert!(io.take_sent().is_empty());
        assert_eq!(io.take_loaded().len(), 2);
        assert!(io.exhausted());
    }
}
