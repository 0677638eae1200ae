//! TCP header view (RFC 9293 §3.1) over the fields rampart rewrites: ports,
//! sequence and acknowledgment numbers (SYN proxy translation), flags and the
//! checksum. Options are not touched here.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::{read_u16, read_u32, read_u8, write_u16, write_u32, write_u8, Truncated};

pub(crate) mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const ACK: Range<usize> = 8..12;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = 20;

/// A view over a TCP header, starting at the source port.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> TcpPacket<T> {
        TcpPacket { buffer }
    }

    /// Wraps a buffer that holds the whole header its data offset claims.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<TcpPacket<T>, Truncated> {
        let len = buffer.as_ref().len();
        let p = TcpPacket { buffer };
        if len < HEADER_LEN || p.header_len() < HEADER_LEN || len < p.header_len() {
            return Err(Truncated);
        }
        Ok(p)
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Header length in bytes from the data offset field.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(read_u8(self.buffer.as_ref(), field::DATA_OFF) >> 4) * 4
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    #[inline]
    pub fn seq(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ)
    }

    #[inline]
    pub fn ack(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK)
    }

    /// Flag byte (CWR ECE URG ACK PSH RST SYN FIN), see [`crate::flow::tcp_flags`].
    #[inline]
    pub fn flags(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::FLAGS)
    }

    /// Window field as sent (unscaled).
    #[inline]
    pub fn window(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WINDOW)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, v);
    }

    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, v);
    }

    #[inline]
    pub fn set_seq(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), field::SEQ, v);
    }

    #[inline]
    pub fn set_ack(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), field::ACK, v);
    }

    /// Writes the flag byte as is; the checksum is the caller's to update.
    #[inline]
    pub fn set_flags(&mut self, v: u8) {
        write_u8(self.buffer.as_mut(), field::FLAGS, v);
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let mut b = [0u8; 24];
        b[..4].copy_from_slice(&[0x30, 0x39, 0x00, 0x50]);
        b[4..8].copy_from_slice(&1u32.to_be_bytes());
        b[8..12].copy_from_slice(&2u32.to_be_bytes());
        b[12] = 0x60;
        b[13] = 0x12;
        b[16..18].copy_from_slice(&[0xab, 0xcd]);
        let mut p = TcpPacket::new_checked(&mut b[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (12345, 80));
        assert_eq!((p.seq(), p.ack()), (1, 2));
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.flags(), 0x12);
        assert_eq!(p.checksum(), 0xabcd);
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_seq(0xdead_beef);
        p.set_ack(0x0102_0304);
        p.set_flags(0x10);
        p.set_checksum(0x1234);
        assert_eq!(
            &b[..18],
            &[0, 1, 0, 2, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 0x60, 0x10, 0, 0, 0x12, 0x34]
        );
    }

    #[test]
    fn checked_rejects() {
        let mut b = [0u8; 20];
        b[12] = 0x40; // data offset 4 < 5
        assert_eq!(TcpPacket::new_checked(&b[..]).unwrap_err(), Truncated);
        b[12] = 0x60; // needs 24 bytes
        assert_eq!(TcpPacket::new_checked(&b[..]).unwrap_err(), Truncated);
        let mut s = [0u8; 10];
        let mut p = TcpPacket::new_unchecked(&mut s[..]);
        p.set_ack(5);
        p.set_checksum(5);
        assert_eq!((p.ack(), p.checksum()), (0, 0));
    }
}
