//! Client packets parked while a proxied connection waits for its backend's
//! SYN-ACK, and the SYN template each pending handshake resends from.
//!
//! A fixed pool of 2 KiB buffers per worker, allocated at start; a
//! connection's held packets form a singly linked list through the pool, so
//! holding never allocates and a flood can take at most the pool.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::outbox::FRAME_ROOM;

/// "No buffer" in links and list heads.
pub const NIL: u32 = u32::MAX;

pub struct HoldPool {
    slab: Box<[u8]>,
    lens: Box<[u16]>,
    next: Box<[u32]>,
    free: Vec<u32>,
}

impl HoldPool {
    pub fn new(slots: u32) -> HoldPool {
        let n = slots as usize;
        HoldPool {
            slab: vec![0u8; n * FRAME_ROOM].into_boxed_slice(),
            lens: vec![0u16; n].into_boxed_slice(),
            next: vec![NIL; n].into_boxed_slice(),
            free: (0..slots).rev().collect(),
        }
    }

    pub fn free_slots(&self) -> usize {
        self.free.len()
    }

    pub fn capacity(&self) -> usize {
        self.lens.len()
    }

    /// Copies `frame` into a free buffer; `None` when the pool is empty or
    /// the frame does not fit a buffer.
    pub fn store(&mut self, frame: &[u8]) -> Option<u32> {
        if frame.len() > FRAME_ROOM {
            return None;
        }
        let slot = self.free.pop()?;
        let at = slot as usize * FRAME_ROOM;
        match self.slab.get_mut(at..at + frame.len()) {
            Some(dst) => dst.copy_from_slice(frame),
            None => {
                self.free.push(slot);
                return None;
            }
        }
        if let Some(l) = self.lens.get_mut(slot as usize) {
            *l = frame.len() as u16;
        }
        if let Some(n) = self.next.get_mut(slot as usize) {
            *n = NIL;
        }
        Some(slot)
    }

    pub fn get(&self, slot: u32) -> &[u8] {
        let len = self.lens.get(slot as usize).copied().unwrap_or(0) as usize;
        let at = slot as usize * FRAME_ROOM;
        self.slab.get(at..at + len).unwrap_or(&[])
    }

    pub fn next(&self, slot: u32) -> u32 {
        self.next.get(slot as usize).copied().unwrap_or(NIL)
    }

    /// Appends `slot` after `tail` in a list.
    pub fn link(&mut self, tail: u32, slot: u32) {
        if let Some(n) = self.next.get_mut(tail as usize) {
            *n = slot;
        }
    }

    /// Returns one buffer to the pool.
    pub fn release(&mut self, slot: u32) {
        if (slot as usize) < self.lens.len() && self.free.len() < self.lens.len() {
            self.free.push(slot);
        }
    }

    /// Returns a whole list to the pool.
    pub fn release_list(&mut self, mut head: u32) {
        while head != NIL {
            let next = self.next(head);
            self.release(head);
            head = next;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn store_link_release() {
        let mut p = HoldPool::new(2);
        let a = p.store(&[1, 2]).unwrap();
        let b = p.store(&[3]).unwrap();
        assert!(p.store(&[4]).is_none(), "pool exhausted");
        p.link(a, b);
        assert_eq!(p.get(a), &[1, 2]);
        assert_eq!(p.next(a), b);
        assert_eq!(p.next(b), NIL);
        p.release_list(a);
        assert_eq!(p.free_slots(), 2);
        assert!(p.store(&[0u8; FRAME_ROOM + 1]).is_none());
        assert_eq!(p.free_slots(), 2);
    }
}
