//! IPv4 header view (RFC 791) over the fields rampart rewrites: addresses,
//! TTL, identification, total length and the header checksum. The parser
//! refuses options, so rampart's IPv4 headers are always 20 bytes; the view
//! still honours IHL for the checksum so it stays right on any header.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::checksum;
use super::{read_array, read_u16, read_u8, write_bytes, write_u16, write_u8, Truncated};

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;

/// A view over an IPv4 header, starting at the version/IHL byte.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer that holds the whole header its IHL claims (at least 20 bytes).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>, Truncated> {
        let len = buffer.as_ref().len();
        let p = Ipv4Packet { buffer };
        if len < HEADER_LEN || p.header_len() < HEADER_LEN || len < p.header_len() {
            return Err(Truncated);
        }
        Ok(p)
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Header length in bytes from IHL.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(read_u8(self.buffer.as_ref(), field::VER_IHL) & 0x0f) * 4
    }

    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::TOTAL_LEN)
    }

    #[inline]
    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT)
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::TTL)
    }

    #[inline]
    pub fn protocol(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::PROTOCOL)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn src(&self) -> [u8; 4] {
        read_array(self.buffer.as_ref(), field::SRC)
    }

    #[inline]
    pub fn dst(&self) -> [u8; 4] {
        read_array(self.buffer.as_ref(), field::DST)
    }

    /// Whether the header checksum verifies (false on a short buffer).
    pub fn verify_checksum(&self) -> bool {
        match self.buffer.as_ref().get(..self.header_len()) {
            Some(h) if h.len() >= HEADER_LEN => checksum::checksum(h) == 0,
            _ => false,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    #[inline]
    pub fn set_total_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::TOTAL_LEN, v);
    }

    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT, v);
    }

    #[inline]
    pub fn set_ttl(&mut self, v: u8) {
        write_u8(self.buffer.as_mut(), field::TTL, v);
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    #[inline]
    pub fn set_src(&mut self, a: [u8; 4]) {
        write_bytes(self.buffer.as_mut(), field::SRC, &a);
    }

    #[inline]
    pub fn set_dst(&mut self, a: [u8; 4]) {
        write_bytes(self.buffer.as_mut(), field::DST, &a);
    }

    /// Recomputes the header checksum from scratch (for headers rampart
    /// builds, e.g. a tunnel's outer header; rewrites use incremental updates).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = match self.buffer.as_ref().get(..hl) {
            Some(h) => checksum::checksum(h),
            None => return,
        };
        self.set_checksum(c);
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    const HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0xa0, 0x2d, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn fields_and_checksum() {
        let mut b = HDR;
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 0x73);
        assert_eq!(p.ident(), 0x1234);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 17);
        assert_eq!(p.src(), [192, 168, 0, 1]);
        assert_eq!(p.dst(), [192, 168, 0, 199]);
        p.fill_checksum();
        assert!(p.verify_checksum());
        let c = p.checksum();
        p.set_ttl(63);
        p.set_ident(7);
        p.set_total_len(40);
        p.set_src([198, 18, 10, 1]);
        p.set_dst([198, 18, 10, 2]);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_ne!(p.checksum(), c);
        assert_eq!(&b[12..20], &[198, 18, 10, 1, 198, 18, 10, 2]);
    }

    #[test]
    fn checked_rejects_short_and_bad_ihl() {
        assert_eq!(Ipv4Packet::new_checked(&HDR[..19]).unwrap_err(), Truncated);
        let mut b = HDR;
        b[0] = 0x46; // IHL 6 needs 24 bytes
        assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap_err(), Truncated);
        b[0] = 0x44;
        assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap_err(), Truncated);
        let mut short = [0x45u8; 6];
        let mut p = Ipv4Packet::new_unchecked(&mut short[..]);
        p.fill_checksum();
        p.set_dst([1, 2, 3, 4]);
        assert_eq!(p.dst(), [0; 4]);
        assert!(!p.verify_checksum());
    }
}
