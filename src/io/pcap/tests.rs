//! Round trips, both pcap byte orders and resolutions, pcapng, and every
//! kind of damage a capture file can carry.

use super::read::{PCAPNG_BYTE_ORDER, PCAP_MAGIC_NS};
use super::*;
use pcap_file::pcapng::blocks::{
    ENHANCED_PACKET_BLOCK, INTERFACE_DESCRIPTION_BLOCK, PACKET_BLOCK, SECTION_HEADER_BLOCK,
    SIMPLE_PACKET_BLOCK,
};
use std::borrow::Cow;
use std::time::Duration;

fn frames() -> Vec<(Vec<u8>, u64)> {
    (0..5u8)
        .map(|i| {
            let len = 60 + usize::from(i) * 7;
            let frame: Vec<u8> = (0..len).map(|b| (b as u8).wrapping_mul(i + 1)).collect();
            (frame, 1_700_000_000_000_000_000 + u64::from(i) * 1_234_567)
        })
        .collect()
}

fn write_pcap(res: TsResolution) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), "mem.pcap", res).unwrap();
    for (f, ts) in frames() {
        w.write(&f, ts).unwrap();
    }
    assert_eq!(w.packets(), 5);
    w.into_inner().unwrap()
}

fn read_all(bytes: &[u8]) -> Result<Vec<RxPacket>, PcapError> {
    PcapReader::from_reader(bytes, "mem").and_then(|r| r.collect())
}

#[test]
fn round_trip_micro_and_nano() {
    for (res, unit) in [(TsResolution::Micro, 1000), (TsResolution::Nano, 1)] {
        let bytes = write_pcap(res);
        let r = PcapReader::from_reader(&bytes[..], "mem").unwrap();
        assert_eq!(r.format(), Format::Pcap(res));
        let got: Vec<RxPacket> = r.collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 5);
        for (p, (f, ts)) in got.iter().zip(frames()) {
            assert_eq!(p.data, f);
            assert_eq!(p.ts_ns, ts / unit * unit);
        }
    }
}

#[test]
fn round_trip_through_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.pcap");
    {
        let mut w = PcapWriter::create(&path).unwrap();
        for (f, ts) in frames() {
            w.write(&f, ts).unwrap();
        }
        // Dropped without finish: the drop flushes.
    }
    assert_eq!(count_packets(&path).unwrap(), 5);
    let mut r = PcapReader::open(&path).unwrap();
    let mut pkt = RxPacket::default();
    let mut n = 0;
    while r.next_into(&mut pkt).unwrap() {
        n += 1;
    }
    assert_eq!(n, 5);
    assert_eq!(r.offset(), std::fs::metadata(&path).unwrap().len());
    let missing = PcapReader::open(dir.path().join("nope.pcap"))
        .err()
        .unwrap();
    assert!(missing.to_string().contains("nope.pcap"), "{missing}");
}

/// A classic pcap written by hand in big-endian byte order.
#[test]
fn reads_big_endian_classic() {
    let mut b = Vec::new();
    b.extend_from_slice(&PCAP_MAGIC_NS.to_be_bytes());
    b.extend_from_slice(&2u16.to_be_bytes());
    b.extend_from_slice(&4u16.to_be_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&1500u32.to_be_bytes());
    b.extend_from_slice(&1u32.to_be_bytes());
    for (sec, ns, data) in [(10u32, 5u32, [0xaau8; 14]), (11, 999_999_999, [0xbb; 14])] {
        b.extend_from_slice(&sec.to_be_bytes());
        b.extend_from_slice(&ns.to_be_bytes());
        b.extend_from_slice(&14u32.to_be_bytes());
        b.extend_from_slice(&20u32.to_be_bytes());
        b.extend_from_slice(&data);
    }
    let mut r = PcapReader::from_reader(&b[..], "be.pcap").unwrap();
    let mut p = RxPacket::default();
    assert!(r.next_into(&mut p).unwrap());
    assert_eq!((p.ts_ns, p.data[0]), (10_000_000_005, 0xaa));
    assert!(r.next_into(&mut p).unwrap());
    assert_eq!((p.ts_ns, p.data.len()), (11_999_999_999, 14));
    assert!(!r.next_into(&mut p).unwrap());
    // Both were captured shorter than they were on the wire.
    assert_eq!(r.snapped(), 2);
}

/// pcapng written by pcap-file (an independent implementation), with a
/// nanosecond interface, in both byte orders.
#[test]
fn reads_pcapng_from_pcap_file() {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::{
        InterfaceDescriptionBlock, InterfaceDescriptionOption,
    };
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::{DataLink, Endianness};

    for endianness in [Endianness::Little, Endianness::Big] {
        let mut w = PcapNgWriter::with_endianness(Vec::new(), endianness).unwrap();
        let mut idb = InterfaceDescriptionBlock::new(DataLink::ETHERNET, 65535);
        idb.options.push(InterfaceDescriptionOption::IfTsResol(9));
        w.write_pcapng_block(idb).unwrap();
        for (f, ts) in frames() {
            let epb = EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::from_nanos(ts),
                original_len: f.len() as u32,
                data: Cow::Borrowed(&f),
                options: vec![],
            };
            w.write_pcapng_block(epb).unwrap();
        }
        let bytes = w.into_inner();
        let r = PcapReader::from_reader(&bytes[..], "mem.pcapng").unwrap();
        assert_eq!(r.format(), Format::PcapNg);
        let got: Vec<RxPacket> = r.collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 5);
        for (p, (f, ts)) in got.iter().zip(frames()) {
            assert_eq!(p.data, f);
            assert_eq!(p.ts_ns, ts);
        }
    }
}

fn ng_block(btype: u32, body: &[u8]) -> Vec<u8> {
    let len = (12 + body.len().div_ceil(4) * 4) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(&btype.to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(body);
    b.resize(len as usize - 4, 0);
    b.extend_from_slice(&len.to_le_bytes());
    b
}

fn ng_shb() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&PCAPNG_BYTE_ORDER.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&(-1i64).to_le_bytes());
    ng_block(SECTION_HEADER_BLOCK, &body)
}

fn ng_idb(linktype: u16, options: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&linktype.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(options);
    ng_block(INTERFACE_DESCRIPTION_BLOCK, &body)
}

fn ng_epb(ticks: u64, data: &[u8], orig: u32) -> Vec<u8> {
    ng_epb_on(0, ticks, data, orig)
}

fn ng_epb_on(ifid: u32, ticks: u64, data: &[u8], orig: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&ifid.to_le_bytes());
    body.extend_from_slice(&((ticks >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&(ticks as u32).to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(&orig.to_le_bytes());
    body.extend_from_slice(data);
    ng_block(ENHANCED_PACKET_BLOCK, &body)
}

/// Hand-built pcapng: default microsecond resolution, an unknown block
/// to skip, a simple packet block, and a second section.
fn hand_pcapng() -> Vec<u8> {
    let mut b = ng_shb();
    b.extend(ng_idb(1, &[]));
    b.extend(ng_epb(1_500_000, &[1u8; 61], 61));
    b.extend(ng_block(0x0000_0bad, &[9u8; 10]));
    let mut spb = Vec::new();
    spb.extend_from_slice(&62u32.to_le_bytes());
    spb.extend_from_slice(&[2u8; 62]);
    b.extend(ng_block(SIMPLE_PACKET_BLOCK, &spb));
    b.extend(ng_shb());
    // if_tsresol = 2^-10 s, then end of options.
    b.extend(ng_idb(1, &[9, 0, 1, 0, 0x8a, 0, 0, 0, 0, 0, 0, 0]));
    b.extend(ng_epb(2048, &[3u8; 60], 100));
    b
}

#[test]
fn reads_hand_built_pcapng() {
    let bytes = hand_pcapng();
    let mut r = PcapReader::from_reader(&bytes[..], "hand.pcapng").unwrap();
    let mut p = RxPacket::default();
    assert!(r.next_into(&mut p).unwrap());
    assert_eq!((p.data.len(), p.data[0], p.ts_ns), (61, 1, 1_500_000_000));
    assert!(r.next_into(&mut p).unwrap());
    assert_eq!((p.data.len(), p.data[0], p.ts_ns), (62, 2, 0));
    assert!(r.next_into(&mut p).unwrap());
    assert_eq!((p.data.len(), p.data[0], p.ts_ns), (60, 3, 2_000_000_000));
    assert!(!r.next_into(&mut p).unwrap());
    assert_eq!((r.packets(), r.snapped()), (3, 1));
}

/// Two interfaces of one section keep their own resolution and offset;
/// a packet on an interface the section never declared is refused.
#[test]
fn pcapng_interfaces_keep_their_own_clocks() {
    let mut b = ng_shb();
    b.extend(ng_idb(1, &[]));
    // if_tsresol = 10^-9 s, if_tsoffset = 100 s, end of options.
    let mut opts = vec![9, 0, 1, 0, 9, 0, 0, 0, 14, 0, 8, 0];
    opts.extend_from_slice(&100i64.to_le_bytes());
    opts.extend_from_slice(&[0; 4]);
    b.extend(ng_idb(1, &opts));
    b.extend(ng_epb_on(1, 7, &[1; 60], 60));
    b.extend(ng_epb_on(0, 7, &[2; 60], 60));
    b.extend(ng_epb_on(2, 7, &[3; 60], 60));
    let mut r = PcapReader::from_reader(&b[..], "two.pcapng").unwrap();
    let mut p = RxPacket::default();
    assert!(r.next_into(&mut p).unwrap());
    assert_eq!((p.data[0], p.ts_ns), (1, 100_000_000_007));
    assert!(r.next_into(&mut p).unwrap());
    assert_eq!((p.data[0], p.ts_ns), (2, 7_000));
    // Section header 28 + interfaces 20 and 44 + two packets of 92.
    let e = r.next_into(&mut p).unwrap_err();
    assert_eq!(
        e.to_string(),
        "two.pcapng: packet 3 at byte 276 is corrupt: packet names an undeclared interface (2)"
    );
}

/// A block that is all there but that pcap-file refuses is reported
/// with the packet number and the block's offset.
#[test]
fn malformed_pcapng_blocks_name_packet_and_offset() {
    let mut head = ng_shb();
    head.extend(ng_idb(1, &[]));
    // Captured length 200 in a block that holds 60.
    let mut long = ng_epb(0, &[1; 60], 60);
    long[20..24].copy_from_slice(&200u32.to_le_bytes());
    // Trailing length that differs from the header's.
    let mut trailer = ng_epb(0, &[1; 60], 60);
    let end = trailer.len();
    trailer[end - 4..].copy_from_slice(&96u32.to_le_bytes());
    for (block, why) in [
        (
            long,
            "EnhancedPacketBlock: captured_len + padding > block length",
        ),
        (trailer, "Block: initial_length != trailer_length"),
    ] {
        let mut b = head.clone();
        b.extend(ng_epb(0, &[2; 60], 60));
        b.extend(block);
        let e = read_all(&b).unwrap_err();
        assert!(matches!(e.kind, PcapErrorKind::Malformed { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!("mem: packet 2 at byte 140 is corrupt: {why}")
        );
    }
}

/// Cut valid files at every length: an error or fewer packets, never a
/// panic; a cut on a packet boundary reads cleanly.
#[test]
fn truncated_files_never_panic() {
    let pcap = write_pcap(TsResolution::Micro);
    let ng = hand_pcapng();
    for (bytes, total) in [(&pcap, 5), (&ng, 3)] {
        for cut in 0..bytes.len() {
            match read_all(&bytes[..cut]) {
                Ok(got) => assert!(got.len() < total),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.starts_with("mem: "), "{msg}");
                    assert!(msg.contains("truncated"), "{msg}");
                }
            }
        }
        assert_eq!(read_all(bytes).unwrap().len(), total);
    }
}

#[test]
fn truncation_message_names_packet_and_sizes() {
    let pcap = write_pcap(TsResolution::Micro);
    // Header (24) + first record (16 + 60) + second record header (16) + 12 bytes.
    let cut = 24 + 16 + 60 + 16 + 12;
    let mut r = PcapReader::from_reader(&pcap[..cut], "in.pcap").unwrap();
    let mut p = RxPacket::default();
    assert!(r.next_into(&mut p).unwrap());
    let e = r.next_into(&mut p).unwrap_err();
    assert_eq!(
        e.to_string(),
        "in.pcap: packet 2 is truncated: packet data at byte 100 (header says 67 bytes, 12 present)"
    );
    // The reader is finished after an error.
    assert!(!r.next_into(&mut p).unwrap());
    assert!(r.is_done());
}

#[test]
fn garbage_is_refused() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut junk = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as u8
    };
    let garbage: Vec<u8> = (0..4096).map(|_| junk()).collect();
    let e = read_all(&garbage).unwrap_err();
    assert!(matches!(e.kind, PcapErrorKind::NotPcap { .. }), "{e}");
    assert!(e.to_string().contains("not a pcap or pcapng file"));
    assert!(read_all(&[]).is_err());

    // Valid headers followed by garbage: typed errors, no panic, no
    // giant allocation.
    for head in [write_pcap(TsResolution::Nano)[..24].to_vec(), ng_shb()] {
        for start in 0..64 {
            let mut b = head.clone();
            b.extend_from_slice(&garbage[start * 7..start * 7 + 300]);
            let _ = read_all(&b);
        }
    }
    let mut huge = write_pcap(TsResolution::Micro)[..24].to_vec();
    huge.extend_from_slice(&[
        0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ]);
    let e = read_all(&huge).unwrap_err();
    assert!(
        e.to_string().contains("packet 1 at byte 24 is corrupt"),
        "{e}"
    );
}

/// Well-framed blocks of every type the reader parses, with random
/// bodies: pcap-file gets to parse them, and the outcome is packets or
/// a typed error, never a panic.
#[test]
fn random_block_bodies_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut junk = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let types = [
        SECTION_HEADER_BLOCK,
        INTERFACE_DESCRIPTION_BLOCK,
        PACKET_BLOCK,
        SIMPLE_PACKET_BLOCK,
        ENHANCED_PACKET_BLOCK,
    ];
    for _ in 0..20_000 {
        let btype = types[(junk() % 5) as usize];
        let len = (junk() % 96) as usize;
        let mut body: Vec<u8> = (0..len).map(|_| junk() as u8).collect();
        if btype == SECTION_HEADER_BLOCK && body.len() >= 4 {
            body[..4].copy_from_slice(&PCAPNG_BYTE_ORDER.to_le_bytes());
        }
        let mut b = ng_shb();
        b.extend(ng_idb(1, &[]));
        b.extend(ng_block(btype, &body));
        if let Err(e) = read_all(&b) {
            assert!(e.to_string().starts_with("mem: "), "{e}");
        }
    }
}

#[test]
fn non_ethernet_linktype_is_refused() {
    let mut pcap = write_pcap(TsResolution::Micro);
    pcap[20..24].copy_from_slice(&113u32.to_le_bytes());
    let e = read_all(&pcap).unwrap_err();
    assert!(matches!(e.kind, PcapErrorKind::Linktype { linktype: 113 }));
    assert_eq!(
        e.to_string(),
        "mem: link type 113 (Linux cooked (SLL)) is not supported; rampart reads Ethernet (link type 1) captures only"
    );
    let mut ng = ng_shb();
    ng.extend(ng_idb(101, &[]));
    ng.extend(ng_epb(0, &[0x45; 20], 20));
    let e = read_all(&ng).unwrap_err();
    assert!(
        matches!(e.kind, PcapErrorKind::Linktype { linktype: 101 }),
        "{e}"
    );
}

#[test]
fn packet_io_bursts_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("in.pcap");
    let out = dir.path().join("out.pcap");
    std::fs::write(&inp, write_pcap(TsResolution::Nano)).unwrap();
    let mut io = PcapIo::new(
        PcapReader::open(&inp).unwrap(),
        Some(PcapWriter::create(&out).unwrap()),
    );
    let mut bufs = Vec::new();
    let mut sizes = Vec::new();
    while !io.exhausted() {
        let n = io.rx_burst(&mut bufs, 2).unwrap();
        sizes.push(n);
        for p in &bufs[..n] {
            io.tx(0, p).unwrap();
        }
        io.flush().unwrap();
    }
    assert_eq!(sizes, vec![2, 2, 1]);
    io.finish().unwrap();
    assert_eq!(io.tx_packets, 5);
    assert_eq!(count_packets(&out).unwrap(), 5);
}

/// tshark must read what we write (skipped where tshark is absent).
#[test]
fn tshark_reads_our_output() {
    let dir = tempfile::tempdir().unwrap();
    for res in [TsResolution::Micro, TsResolution::Nano] {
        let path = dir.path().join("t.pcap");
        std::fs::write(&path, write_pcap(res)).unwrap();
        let Ok(out) = std::process::Command::new("tshark")
            .args([
                "-r",
                path.to_str().unwrap(),
                "-T",
                "fields",
                "-e",
                "frame.len",
            ])
            .output()
        else {
            return;
        };
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lens = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>();
        assert_eq!(lens, ["60", "67", "74", "81", "88"]);
    }
}
