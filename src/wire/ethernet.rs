//! Ethernet II header view: the MACs rampart swaps when it forwards or
//! answers, and the EtherType. Classification (including the 802.1Q tag) is
//! the parser's job; this view only reads and writes the first 14 bytes.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::{read_array, read_u16, write_bytes, write_u16, Truncated};
use crate::flow::Mac;

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
}

/// Length of the Ethernet II header without a VLAN tag.
pub const HEADER_LEN: usize = 14;

/// A view over an Ethernet II frame, starting at the destination MAC.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checking its length (accessors stay panic-free).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> EthernetFrame<T> {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer that holds at least the 14-byte header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<EthernetFrame<T>, Truncated> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Truncated);
        }
        Ok(EthernetFrame { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn dst(&self) -> Mac {
        Mac(read_array(self.buffer.as_ref(), field::DST))
    }

    #[inline]
    pub fn src(&self) -> Mac {
        Mac(read_array(self.buffer.as_ref(), field::SRC))
    }

    /// The outer EtherType (0x8100 when a VLAN tag follows).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ETHERTYPE)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    #[inline]
    pub fn set_dst(&mut self, mac: Mac) {
        write_bytes(self.buffer.as_mut(), field::DST, &mac.0);
    }

    #[inline]
    pub fn set_src(&mut self, mac: Mac) {
        write_bytes(self.buffer.as_mut(), field::SRC, &mac.0);
    }

    #[inline]
    pub fn set_ethertype(&mut self, ethertype: u16) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, ethertype);
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let mut b = [0u8; 14];
        b[..6].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
        b[6..12].copy_from_slice(&[7, 8, 9, 10, 11, 12]);
        b[12] = 0x08;
        let mut f = EthernetFrame::new_checked(&mut b[..]).unwrap();
        assert_eq!(f.dst(), Mac([1, 2, 3, 4, 5, 6]));
        assert_eq!(f.src(), Mac([7, 8, 9, 10, 11, 12]));
        assert_eq!(f.ethertype(), 0x0800);
        f.set_dst(Mac([0xaa; 6]));
        f.set_src(Mac([0xbb; 6]));
        f.set_ethertype(0x86dd);
        assert_eq!(
            b,
            [0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0x86, 0xdd]
        );
    }

    #[test]
    fn short_buffers_do_not_panic() {
        assert_eq!(
            EthernetFrame::new_checked(&[0u8; 13][..]).unwrap_err(),
            Truncated
        );
        let mut b = [0x11u8; 8];
        let mut f = EthernetFrame::new_unchecked(&mut b[..]);
        assert_eq!(f.src(), Mac([0; 6]));
        f.set_src(Mac([0xff; 6]));
        assert_eq!(b, [0x11; 8]);
    }
}
