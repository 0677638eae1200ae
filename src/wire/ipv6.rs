//! IPv6 fixed header view (RFC 8200 §3) over the fields rampart rewrites:
//! addresses, hop limit and payload length. IPv6 has no header checksum;
//! address changes are paid for in the transport checksum instead.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::{read_array, read_u16, read_u8, write_bytes, write_u16, write_u8, Truncated};

mod field {
    use core::ops::Range;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;

/// A view over an IPv6 fixed header, starting at the version nibble.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Ipv6Packet<T> {
        Ipv6Packet { buffer }
    }

    /// Wraps a buffer that holds the 40-byte fixed header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Ipv6Packet<T>, Truncated> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Truncated);
        }
        Ok(Ipv6Packet { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    #[inline]
    pub fn next_header(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::NEXT_HEADER)
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::HOP_LIMIT)
    }

    #[inline]
    pub fn src(&self) -> [u8; 16] {
        read_array(self.buffer.as_ref(), field::SRC)
    }

    #[inline]
    pub fn dst(&self) -> [u8; 16] {
        read_array(self.buffer.as_ref(), field::DST)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    #[inline]
    pub fn set_payload_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::PAYLOAD_LEN, v);
    }

    #[inline]
    pub fn set_hop_limit(&mut self, v: u8) {
        write_u8(self.buffer.as_mut(), field::HOP_LIMIT, v);
    }

    #[inline]
    pub fn set_src(&mut self, a: [u8; 16]) {
        write_bytes(self.buffer.as_mut(), field::SRC, &a);
    }

    #[inline]
    pub fn set_dst(&mut self, a: [u8; 16]) {
        write_bytes(self.buffer.as_mut(), field::DST, &a);
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let mut b = [0u8; 40];
        b[0] = 0x60;
        b[4..6].copy_from_slice(&[0x01, 0x02]);
        b[6] = 6;
        b[7] = 64;
        b[8..24].copy_from_slice(&[1; 16]);
        b[24..40].copy_from_slice(&[2; 16]);
        let mut p = Ipv6Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.payload_len(), 0x0102);
        assert_eq!(p.next_header(), 6);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src(), [1; 16]);
        assert_eq!(p.dst(), [2; 16]);
        p.set_payload_len(32);
        p.set_hop_limit(255);
        p.set_src([3; 16]);
        p.set_dst([4; 16]);
        assert_eq!(&b[4..8], &[0, 32, 6, 255]);
        assert_eq!(&b[8..24], &[3; 16]);
        assert_eq!(&b[24..40], &[4; 16]);
    }

    #[test]
    fn short_buffers_do_not_panic() {
        assert_eq!(
            Ipv6Packet::new_checked(&[0u8; 39][..]).unwrap_err(),
            Truncated
        );
        let mut b = [0u8; 30];
        let mut p = Ipv6Packet::new_unchecked(&mut b[..]);
        p.set_dst([9; 16]);
        assert_eq!(p.dst(), [0; 16]);
        p.set_src([9; 16]);
        assert_eq!(p.src(), [9; 16]);
    }
}
