//! The PROXY protocol version 2 header (haproxy's `proxy-protocol.txt`
//! §2.2), binary form, for a TCP connection: the 12-byte signature; the
//! version (2) and command (PROXY) byte; the address family and transport
//! byte (AF_INET or AF_INET6, STREAM); the length of what follows, big
//! endian; then the source address, the destination address, the source
//! port and the destination port, addresses and ports in network order.
//! rampart writes no TLVs, so the length is exactly the address block:
//! 12 bytes for IPv4 (a 28-byte header), 36 for IPv6 (52 bytes).
//!
//! Invariant: [`encode`] never panics; it writes the whole header or
//! nothing.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::flow::Addr;

/// `\r\n\r\n\0\r\nQUIT\n`: no text protocol starts this way (§2.2).
pub const SIGNATURE: [u8; 12] = [
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
];

/// High nibble version 2, low nibble command PROXY (1): the connection was
/// relayed on behalf of another node (LOCAL, 0, would say it was not).
pub const VERSION_PROXY: u8 = 0x21;

/// High nibble AF_INET (1), low nibble STREAM (1).
pub const TCP_OVER_IPV4: u8 = 0x11;

/// High nibble AF_INET6 (2), low nibble STREAM (1).
pub const TCP_OVER_IPV6: u8 = 0x21;

/// Signature, version/command, family/transport and the length field.
pub const FIXED_LEN: usize = 16;

/// The whole header for an IPv4 connection: 4 + 4 + 2 + 2 address bytes.
pub const V4_LEN: usize = FIXED_LEN + 12;

/// The whole header for an IPv6 connection: 16 + 16 + 2 + 2 address bytes.
pub const V6_LEN: usize = FIXED_LEN + 36;

/// Room for the longest header rampart writes.
pub const MAX_LEN: usize = V6_LEN;

/// The header's length for a client of this family.
#[inline]
pub fn len_for(client: &Addr) -> usize {
    if client.is_v4() {
        V4_LEN
    } else {
        V6_LEN
    }
}

/// Writes the header of a TCP connection from `src` (the client) to `dst`
/// (the VIP it wrote to) into `out` and returns its length; 0, and nothing
/// written, when the two addresses are of different families.
pub fn encode(out: &mut [u8; MAX_LEN], src: (Addr, u16), dst: (Addr, u16)) -> usize {
    let v4 = src.0.is_v4();
    if dst.0.is_v4() != v4 {
        return 0;
    }
    let mut w = Writer { out, at: 0 };
    w.put(&SIGNATURE);
    w.put(&[
        VERSION_PROXY,
        if v4 { TCP_OVER_IPV4 } else { TCP_OVER_IPV6 },
    ]);
    let (n, addr_len) = if v4 { (V4_LEN, 4) } else { (V6_LEN, 16) };
    w.put(&((n - FIXED_LEN) as u16).to_be_bytes());
    let bytes = |a: &Addr| -> [u8; 16] {
        let mut b = [0u8; 16];
        if v4 {
            let [p, q, r, s] = a.v4_octets();
            b = [p, q, r, s, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        } else {
            b.copy_from_slice(&a.0);
        }
        b
    };
    w.put(bytes(&src.0).get(..addr_len).unwrap_or(&[]));
    w.put(bytes(&dst.0).get(..addr_len).unwrap_or(&[]));
    w.put(&src.1.to_be_bytes());
    w.put(&dst.1.to_be_bytes());
    w.at
}

struct Writer<'a> {
    out: &'a mut [u8; MAX_LEN],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) {
        if let Some(dst) = self.out.get_mut(self.at..self.at + b.len()) {
            dst.copy_from_slice(b);
            self.at += b.len();
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]
mod tests {
    //! The header is read back by a decoder written from the spec's
    //! layout (§2.2, "struct proxy_hdr_v2" and "union proxy_addr"), which
    //! shares nothing with `encode` but the spec.

    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    #[derive(Debug, PartialEq)]
    struct Decoded {
        src: IpAddr,
        dst: IpAddr,
        sport: u16,
        dport: u16,
    }

    /// Reads a v2 PROXY header for TCP from the start of `b`; returns what
    /// it names and how many bytes it took.
    fn decode(b: &[u8]) -> (Decoded, usize) {
        assert_eq!(&b[..12], b"\r\n\r\n\0\r\nQUIT\n", "signature");
        assert_eq!(b[12] >> 4, 2, "version");
        assert_eq!(b[12] & 0xf, 1, "command PROXY");
        assert_eq!(b[13] & 0xf, 1, "transport STREAM");
        let len = usize::from(u16::from_be_bytes([b[14], b[15]]));
        let a = &b[16..16 + len];
        let d = match b[13] >> 4 {
            1 => {
                assert!(len >= 12);
                Decoded {
                    src: IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
                    dst: IpAddr::V4(Ipv4Addr::new(a[4], a[5], a[6], a[7])),
                    sport: u16::from_be_bytes([a[8], a[9]]),
                    dport: u16::from_be_bytes([a[10], a[11]]),
                }
            }
            2 => {
                assert!(len >= 36);
                let v6 = |o: usize| {
                    let mut x = [0u8; 16];
                    x.copy_from_slice(&a[o..o + 16]);
                    IpAddr::V6(Ipv6Addr::from(x))
                };
                Decoded {
                    src: v6(0),
                    dst: v6(16),
                    sport: u16::from_be_bytes([a[32], a[33]]),
                    dport: u16::from_be_bytes([a[34], a[35]]),
                }
            }
            f => panic!("family {f}"),
        };
        (d, 16 + len)
    }

    fn addr(s: &str) -> Addr {
        match s.parse::<IpAddr>().unwrap() {
            IpAddr::V4(a) => Addr::from_v4(a.octets()),
            IpAddr::V6(a) => Addr::from_v6(a.octets()),
        }
    }

    #[test]
    fn ipv4_header() {
        let mut out = [0xaa; MAX_LEN];
        let n = encode(
            &mut out,
            (addr("198.18.50.7"), 40001),
            (addr("198.18.100.20"), 443),
        );
        assert_eq!(n, 28);
        let (d, used) = decode(&out);
        assert_eq!(used, n, "the length field covers exactly the addresses");
        assert_eq!(
            d,
            Decoded {
                src: "198.18.50.7".parse().unwrap(),
                dst: "198.18.100.20".parse().unwrap(),
                sport: 40001,
                dport: 443,
            }
        );
        // The bytes of the spec's example layout, written out.
        assert_eq!(
            &out[..n],
            &[
                0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11,
                0x00, 0x0c, 198, 18, 50, 7, 198, 18, 100, 20, 0x9c, 0x41, 0x01, 0xbb
            ]
        );
        assert!(
            out[n..].iter().all(|b| *b == 0xaa),
            "nothing past the header"
        );
    }

    #[test]
    fn ipv6_header() {
        let mut out = [0; MAX_LEN];
        let n = encode(
            &mut out,
            (addr("2001:2:0:50::8"), 65535),
            (addr("2001:2::100:20"), 80),
        );
        assert_eq!(n, 52);
        assert_eq!(out[13], 0x21, "AF_INET6, STREAM");
        assert_eq!(&out[14..16], &[0, 36]);
        let (d, used) = decode(&out);
        assert_eq!(used, n);
        assert_eq!(
            d,
            Decoded {
                src: "2001:2:0:50::8".parse().unwrap(),
                dst: "2001:2::100:20".parse().unwrap(),
                sport: 65535,
                dport: 80,
            }
        );
    }

    #[test]
    fn mixed_families_write_nothing() {
        let mut out = [7; MAX_LEN];
        assert_eq!(
            encode(&mut out, (addr("198.18.50.7"), 1), (addr("2001:2::1"), 2)),
            0
        );
        assert!(out.iter().all(|b| *b == 7));
        assert_eq!(len_for(&addr("198.18.0.1")), 28);
        assert_eq!(len_for(&addr("2001:2::1")), 52);
    }
}
