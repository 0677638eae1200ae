//! Frames a worker originates itself, as opposed to frames it rewrites in
//! place: the SYN proxy's SYN to a backend, its retries, the client packets
//! it held and releases, resets it sends. Each burst the worker transmits
//! them interleaved with the burst's own output, each right after the frame
//! whose handling produced it, so the wire order is the same whatever the
//! burst size.
//!
//! A frame may also be addressed to another worker (a fragment whose
//! datagram that worker owns, see [`crate::frag`]): the poll loop hands it
//! over instead of sending it.
//!
//! Memory is one slab of fixed-size slots allocated up front; pushing never
//! allocates. A full outbox refuses the frame and the caller counts a drop.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

/// Room per originated frame: a full 1500-byte IP packet with Ethernet and
/// a VLAN tag fits.
pub const FRAME_ROOM: usize = 2048;

#[derive(Clone, Copy, Debug)]
struct Item {
    len: u16,
    after: u16,
    /// The worker it is for, or [`WIRE`].
    to: u16,
}

/// [`Item::to`] of a frame for the wire.
const WIRE: u16 = u16::MAX;

pub struct Outbox {
    slab: Box<[u8]>,
    items: Vec<Item>,
    cap: usize,
    after: u16,
}

impl Outbox {
    /// An outbox for `frames` frames per burst (0: originates nothing).
    pub fn new(frames: usize) -> Outbox {
        Outbox {
            slab: vec![0u8; frames * FRAME_ROOM].into_boxed_slice(),
            items: Vec::with_capacity(frames),
            cap: frames,
            after: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Frames still fitting in this burst.
    pub fn room(&self) -> usize {
        self.cap - self.items.len()
    }

    /// Frames pushed from now on go out after the burst's frame `i`.
    #[inline]
    pub fn set_position(&mut self, i: usize) {
        self.after = i as u16;
    }

    /// The next free slot (`FRAME_ROOM` bytes, contents unspecified), or
    /// `None` when full. Nothing is queued until [`Outbox::commit`].
    #[inline]
    pub fn slot(&mut self) -> Option<&mut [u8]> {
        if self.items.len() >= self.cap {
            return None;
        }
        let at = self.items.len() * FRAME_ROOM;
        self.slab.get_mut(at..at + FRAME_ROOM)
    }

    /// Queues the first `len` bytes of the slot [`Outbox::slot`] returned.
    #[inline]
    pub fn commit(&mut self, len: usize) {
        self.commit_to(WIRE, len);
    }

    fn commit_to(&mut self, to: u16, len: usize) {
        if self.items.len() < self.cap && len <= FRAME_ROOM {
            self.items.push(Item {
                len: len as u16,
                after: self.after,
                to,
            });
        }
    }

    /// Copies `frame` into the next slot and queues it; false when full or
    /// the frame is larger than a slot.
    pub fn push(&mut self, frame: &[u8]) -> bool {
        self.push_as(WIRE, frame)
    }

    /// [`Outbox::push`] for worker `to` rather than the wire.
    pub fn push_to(&mut self, to: u16, frame: &[u8]) -> bool {
        to != WIRE && self.push_as(to, frame)
    }

    fn push_as(&mut self, to: u16, frame: &[u8]) -> bool {
        if frame.len() > FRAME_ROOM {
            return false;
        }
        match self.slot().and_then(|s| s.get_mut(..frame.len())) {
            Some(s) => {
                s.copy_from_slice(frame);
                self.commit_to(to, frame.len());
                true
            }
            None => false,
        }
    }

    /// Queued frames for the wire in order, each with the burst position
    /// it follows.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &[u8])> {
        self.iter_all()
            .filter_map(|(after, to, f)| to.is_none().then_some((after, f)))
    }

    /// Every queued frame in order: the burst position it follows, the
    /// worker it is for (`None`: the wire), the frame.
    pub fn iter_all(&self) -> impl Iterator<Item = (usize, Option<u16>, &[u8])> {
        self.items.iter().enumerate().filter_map(|(n, it)| {
            let at = n * FRAME_ROOM;
            let to = (it.to != WIRE).then_some(it.to);
            self.slab
                .get(at..at + it.len as usize)
                .map(|f| (it.after as usize, to, f))
        })
    }

    /// Forgets every queued frame (after the worker transmitted them).
    pub fn clear(&mut self) {
        self.items.clear();
        self.after = 0;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_positions() {
        let mut o = Outbox::new(2);
        o.set_position(3);
        assert!(o.push(&[1, 2, 3]));
        o.set_position(5);
        let s = o.slot().unwrap();
        s[..2].copy_from_slice(&[9, 9]);
        o.commit(2);
        assert!(!o.push(&[7]), "full");
        let got: Vec<_> = o.iter().map(|(a, f)| (a, f.to_vec())).collect();
        assert_eq!(got, vec![(3, vec![1, 2, 3]), (5, vec![9, 9])]);
        o.clear();
        assert!(o.is_empty());
        assert!(!o.push(&[0u8; FRAME_ROOM + 1]));
    }

    #[test]
    fn frames_for_other_workers_are_kept_apart() {
        let mut o = Outbox::new(3);
        assert!(o.push(&[1]));
        o.set_position(2);
        assert!(o.push_to(4, &[2, 2]));
        assert!(o.push(&[3]));
        let wire: Vec<_> = o.iter().map(|(a, f)| (a, f.to_vec())).collect();
        assert_eq!(wire, vec![(0, vec![1]), (2, vec![3])]);
        let all: Vec<_> = o.iter_all().map(|(a, t, f)| (a, t, f.len())).collect();
        assert_eq!(all, vec![(0, None, 1), (2, Some(4), 2), (2, None, 1)]);
    }

    #[test]
    fn zero_capacity_refuses() {
        let mut o = Outbox::new(0);
        assert!(o.slot().is_none());
        assert!(!o.push(&[1]));
    }
}
