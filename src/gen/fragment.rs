//! Fragmenting a whole packet as a sender does (IPv4, and IPv6 with a
//! Fragment header), for the fragment tests and fixtures.

use super::ip::{fold, l3_packet, sum16};

/// Splits a whole IP packet's frame (no IPv4 options, no IPv6 extension
/// headers) into fragments of at most `chunk` data bytes each (a multiple
/// of 8), in order, as a sender fragments it (RFC 791 §3.2, RFC 8200 §4.5):
/// every fragment keeps the frame's L2 header and the IP header's fields;
/// IPv4 fragments get their offset, MF (DF cleared) and a new header
/// checksum, IPv6 ones a fragment header with identification `ident` (IPv4
/// keeps the packet's own ID).
pub fn fragments(frame: &[u8], chunk: usize, ident: u32) -> Vec<Vec<u8>> {
    assert!(
        chunk >= 8 && chunk % 8 == 0,
        "fragment data is a multiple of 8 bytes"
    );
    let ip = l3_packet(frame);
    let l2 = &frame[..frame.len() - ip.len()];
    let v4 = ip[0] >> 4 == 4;
    let (hlen, end) = if v4 {
        assert_eq!(ip[0] & 0x0f, 5, "IPv4 options are not fragmented here");
        (20, usize::from(u16::from_be_bytes([ip[2], ip[3]])))
    } else {
        (40, 40 + usize::from(u16::from_be_bytes([ip[4], ip[5]])))
    };
    let data = &ip[hlen..end];
    let mut out = Vec::new();
    for (i, piece) in data.chunks(chunk).enumerate() {
        let offset = i * chunk;
        let more = offset + piece.len() < data.len();
        let mut f = l2.to_vec();
        let start = f.len();
        f.extend_from_slice(&ip[..hlen]);
        if v4 {
            let total = (20 + piece.len()) as u16;
            f[start + 2..start + 4].copy_from_slice(&total.to_be_bytes());
            let word = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
            f[start + 6..start + 8].copy_from_slice(&word.to_be_bytes());
            f[start + 10..start + 12].copy_from_slice(&[0, 0]);
            let c = fold(sum16(0, &f[start..start + 20]));
            f[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
        } else {
            let plen = (8 + piece.len()) as u16;
            f[start + 4..start + 6].copy_from_slice(&plen.to_be_bytes());
            let next = f[start + 6];
            f[start + 6] = 44;
            f.push(next);
            f.push(0);
            f.extend_from_slice(&((offset as u16) | u16::from(more)).to_be_bytes());
            f.extend_from_slice(&ident.to_be_bytes());
        }
        f.extend_from_slice(piece);
        out.push(f);
    }
    out
}
