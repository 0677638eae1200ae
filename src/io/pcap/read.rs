//! Reading classic pcap and pcapng through pcap-file's parsers, streamed
//! through one window with every length checked before it is buffered.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::{
    ENHANCED_PACKET_BLOCK, INTERFACE_DESCRIPTION_BLOCK, PACKET_BLOCK, SECTION_HEADER_BLOCK,
    SIMPLE_PACKET_BLOCK,
};
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::Endianness;

use super::error::{corrupt, truncated};
use super::{Format, PcapError, PcapErrorKind, TsResolution, LINKTYPE_ETHERNET, MAX_PACKET_LEN};
use crate::io::RxPacket;

/// The largest pcapng block we read, for the same reason.
const MAX_BLOCK_LEN: u32 = 16 * 1024 * 1024;

const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
pub(super) const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
/// The first field of a Section Header Block's body, in the section's order.
pub(super) const PCAPNG_BYTE_ORDER: u32 = 0x1a2b_3c4d;

/// The read window's size: thousands of typical records per read, and room
/// for the largest record we accept. Only a bigger pcapng block grows it.
const WINDOW: usize = 1 << 20;

/// The `u32` at `at` in the file's byte order; 0 past the end of `b`
/// (callers have buffered the field first).
fn u32_at(b: &[u8], at: usize, order: Endianness) -> u32 {
    let mut raw = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        raw.copy_from_slice(s);
    }
    match order {
        Endianness::Little => u32::from_le_bytes(raw),
        Endianness::Big => u32::from_be_bytes(raw),
    }
}

/// The bytes read from the source and not yet parsed, in one buffer reused
/// for the whole file. Records are parsed in place and copied once, into
/// the caller's packet.
struct Window<R> {
    src: R,
    buf: Vec<u8>,
    /// `buf[start..end]` is read and not yet consumed.
    start: usize,
    end: usize,
    /// The file offset of `buf[0]`.
    base: u64,
    eof: bool,
}

impl<R: Read> Window<R> {
    fn new(src: R) -> Self {
        Window {
            src,
            buf: vec![0; WINDOW],
            start: 0,
            end: 0,
            base: 0,
            eof: false,
        }
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// The file offset of the first unconsumed byte.
    fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Buffer `want` bytes, or as many as the source has left; return how
    /// many are buffered. Reads fill the whole window, so a file costs one
    /// read per window, not one per record.
    fn fill(&mut self, want: usize) -> io::Result<usize> {
        while self.end - self.start < want && !self.eof {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.base += self.start as u64;
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() < want {
                self.buf.resize(want, 0);
            }
            let room = self.buf.get_mut(self.end..).unwrap_or_default();
            match self.src.read(room) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end = (self.end + n).min(self.buf.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start)
    }
}

/// How a pcapng interface's timestamp ticks turn into nanoseconds.
#[derive(Clone, Copy, Debug)]
struct Interface {
    /// `if_tsresol`: bit 7 clear = 10^-n seconds per tick, set = 2^-n.
    tsresol: u8,
    /// `if_tsoffset`, seconds added to every timestamp.
    tsoffset_s: i64,
    snaplen: u32,
}

impl Interface {
    fn new(idb: &InterfaceDescriptionBlock<'_>) -> Result<Interface, PcapErrorKind> {
        let linktype = u32::from(idb.linktype);
        if linktype != LINKTYPE_ETHERNET {
            return Err(PcapErrorKind::Linktype { linktype });
        }
        let mut iface = Interface {
            tsresol: 6,
            tsoffset_s: 0,
            snaplen: idb.snaplen,
        };
        for opt in &idb.options {
            match *opt {
                InterfaceDescriptionOption::IfTsResol(r) => iface.tsresol = r,
                // Signed in the format; pcap-file hands over the bits.
                InterfaceDescriptionOption::IfTsOffset(s) => {
                    iface.tsoffset_s = i64::from_ne_bytes(s.to_ne_bytes())
                }
                _ => {}
            }
        }
        Ok(iface)
    }

    fn ticks_to_ns(&self, ticks: u64) -> u64 {
        let exp = u32::from(self.tsresol & 0x7f);
        let ns: u128 = if self.tsresol & 0x80 == 0 {
            if exp <= 9 {
                u128::from(ticks) * 10u128.pow(9 - exp)
            } else {
                // 10^-exp seconds per tick with exp > 38 would overflow; such
                // a resolution is nonsense, treat the ticks as nanoseconds.
                10u128
                    .checked_pow(exp - 9)
                    .map_or(u128::from(ticks), |d| u128::from(ticks) / d)
            }
        } else if exp < 64 {
            (u128::from(ticks) * 1_000_000_000) >> exp
        } else {
            0
        };
        let ns = ns as i128 + i128::from(self.tsoffset_s) * 1_000_000_000;
        ns.clamp(0, i128::from(u64::MAX)) as u64
    }
}

enum Parser {
    Pcap {
        parser: PcapParser,
        order: Endianness,
        res: TsResolution,
    },
    PcapNg {
        parser: PcapNgParser,
        /// The current section's interfaces, by interface id.
        interfaces: Vec<Interface>,
    },
}

/// Reads a classic pcap or pcapng capture packet by packet into reused
/// buffers.
pub struct PcapReader<R: Read = File> {
    win: Window<R>,
    file: String,
    parser: Parser,
    packets: u64,
    snapped: u64,
    done: bool,
}

impl PcapReader<File> {
    /// Open `path` and read its file header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, PcapError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| PcapError::new(&name, PcapErrorKind::Io(e)))?;
        PcapReader::from_reader(file, &name)
    }
}

impl<R: Read> PcapReader<R> {
    /// Read a capture from any byte source; `name` is used in error messages.
    pub fn from_reader(src: R, name: &str) -> Result<Self, PcapError> {
        let mut win = Window::new(src);
        let parser = open_parser(&mut win).map_err(|kind| PcapError::new(name, kind))?;
        Ok(PcapReader {
            win,
            file: name.to_string(),
            parser,
            packets: 0,
            snapped: 0,
            done: false,
        })
    }

    /// The container format found in the file header.
    pub fn format(&self) -> Format {
        match self.parser {
            Parser::Pcap { res, .. } => Format::Pcap(res),
            Parser::PcapNg { .. } => Format::PcapNg,
        }
    }

    /// Packets delivered so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Packets delivered with fewer bytes than they had on the wire.
    pub fn snapped(&self) -> u64 {
        self.snapped
    }

    /// Bytes of the file consumed so far (for progress bars).
    pub fn offset(&self) -> u64 {
        self.win.offset()
    }

    /// True after the last packet or after an error.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Read the next packet into `pkt`, reusing its buffer. `Ok(false)` at the
    /// end of the file. After an error the reader is done.
    pub fn next_into(&mut self, pkt: &mut RxPacket) -> Result<bool, PcapError> {
        if self.done {
            return Ok(false);
        }
        let index = self.packets + 1;
        let got = match &mut self.parser {
            Parser::Pcap { parser, order, res } => {
                next_pcap(&mut self.win, parser, *order, *res, index, pkt)
            }
            Parser::PcapNg { parser, interfaces } => {
                next_pcapng(&mut self.win, parser, interfaces, index, pkt)
            }
        };
        match got {
            Ok(Some(snapped)) => {
                self.packets += 1;
                self.snapped += u64::from(snapped);
                Ok(true)
            }
            Ok(None) => {
                self.done = true;
                Ok(false)
            }
            Err(kind) => {
                self.done = true;
                Err(PcapError::new(&self.file, kind))
            }
        }
    }
}

/// Tell the format by the magic number and parse the file header (pcap) or
/// the first Section Header Block (pcapng).
fn open_parser<R: Read>(win: &mut Window<R>) -> Result<Parser, PcapErrorKind> {
    let have = win.fill(4)?;
    if have < 4 {
        return Err(truncated(0, 0, "file header", 24, have));
    }
    let magic = u32_at(win.bytes(), 0, Endianness::Big);
    if magic == SECTION_HEADER_BLOCK {
        // Section Header Block errors have no packet to name.
        let len = frame_block(win, Endianness::Big, 0)?.map_or(0, |(_, len)| len);
        let block = win.bytes().get(..len).unwrap_or_default();
        let (_, parser) = PcapNgParser::new(block).map_err(|error| PcapErrorKind::Malformed {
            packet: 0,
            offset: 0,
            error,
        })?;
        win.consume(len);
        return Ok(Parser::PcapNg {
            parser,
            interfaces: Vec::new(),
        });
    }
    if ![PCAP_MAGIC_US, PCAP_MAGIC_NS].contains(&magic)
        && ![PCAP_MAGIC_US, PCAP_MAGIC_NS].contains(&magic.swap_bytes())
    {
        return Err(PcapErrorKind::NotPcap { magic });
    }
    let have = win.fill(24)?;
    if have < 24 {
        return Err(truncated(0, 0, "file header", 24, have));
    }
    let (_, parser) = PcapParser::new(win.bytes()).map_err(|error| PcapErrorKind::Malformed {
        packet: 0,
        offset: 0,
        error,
    })?;
    win.consume(24);
    let header = parser.header();
    // The top bits of the link type field carry FCS information.
    let linktype = u32::from(header.datalink) & 0x0fff_ffff;
    if linktype != LINKTYPE_ETHERNET {
        return Err(PcapErrorKind::Linktype { linktype });
    }
    let res = match header.ts_resolution {
        pcap_file::TsResolution::MicroSecond => TsResolution::Micro,
        pcap_file::TsResolution::NanoSecond => TsResolution::Nano,
    };
    Ok(Parser::Pcap {
        parser,
        order: header.endianness,
        res,
    })
}

/// The next classic pcap record into `pkt`: `Some(snapped)`, or `None` at
/// the end of the file.
fn next_pcap<R: Read>(
    win: &mut Window<R>,
    parser: &PcapParser,
    order: Endianness,
    res: TsResolution,
    index: u64,
    pkt: &mut RxPacket,
) -> Result<Option<bool>, PcapErrorKind> {
    let start = win.offset();
    let have = win.fill(16)?;
    if have == 0 {
        return Ok(None);
    }
    if have < 16 {
        return Err(truncated(index, start, "record header", 16, have));
    }
    // Record header: ts_sec, ts_frac, captured length, original length.
    let incl = u32_at(win.bytes(), 8, order);
    if incl > MAX_PACKET_LEN {
        return Err(corrupt(
            index,
            start,
            "captured length is over 262144",
            incl,
        ));
    }
    let len = 16 + incl as usize;
    let have = win.fill(len)?;
    if have < len {
        return Err(truncated(
            index,
            start,
            "packet data",
            u64::from(incl),
            have - 16,
        ));
    }
    let (_, raw) =
        parser
            .next_raw_packet(win.bytes())
            .map_err(|error| PcapErrorKind::Malformed {
                packet: index,
                offset: start,
                error,
            })?;
    let frac_ns = match res {
        TsResolution::Micro => u64::from(raw.ts_frac) * 1000,
        TsResolution::Nano => u64::from(raw.ts_frac),
    };
    pkt.fill(&raw.data, u64::from(raw.ts_sec) * 1_000_000_000 + frac_ns);
    let snapped = raw.incl_len < raw.orig_len;
    win.consume(len);
    Ok(Some(snapped))
}

/// Buffer the whole pcapng block at the front of the window and return its
/// type and length; `None` at the end of the file. `order` is the current
/// section's byte order; a Section Header Block brings its own.
fn frame_block<R: Read>(
    win: &mut Window<R>,
    order: Endianness,
    index: u64,
) -> Result<Option<(u32, usize)>, PcapErrorKind> {
    let start = win.offset();
    let have = win.fill(8)?;
    if have == 0 {
        return Ok(None);
    }
    // The Section Header Block's type reads the same in both byte orders.
    let btype = u32_at(win.bytes(), 0, order);
    let (packet, what, min_len, order) = if btype == SECTION_HEADER_BLOCK {
        let have = win.fill(12)?;
        if have < 12 {
            return Err(truncated(0, start, "section header block", 28, have));
        }
        let bom = u32_at(win.bytes(), 8, Endianness::Big);
        let order = if bom == PCAPNG_BYTE_ORDER {
            Endianness::Big
        } else if bom.swap_bytes() == PCAPNG_BYTE_ORDER {
            Endianness::Little
        } else {
            return Err(corrupt(0, start, "bad pcapng byte-order magic", bom));
        };
        (0, "section header block", 28, order)
    } else {
        if have < 8 {
            return Err(truncated(index, start, "block header", 8, have));
        }
        (index, "pcapng block", 12, order)
    };
    let len = u32_at(win.bytes(), 4, order);
    if len < min_len || len % 4 != 0 || len > MAX_BLOCK_LEN {
        let reason = match packet {
            0 => "bad section header block length",
            _ => "bad pcapng block length",
        };
        return Err(corrupt(packet, start, reason, len));
    }
    let have = win.fill(len as usize)?;
    if have < len as usize {
        return Err(truncated(packet, start, what, u64::from(len), have));
    }
    Ok(Some((btype, len as usize)))
}

/// The next packet of a pcapng file into `pkt`: `Some(snapped)`, or `None`
/// at the end of the file. Section and interface blocks on the way update
/// `interfaces`; other blocks are skipped.
fn next_pcapng<R: Read>(
    win: &mut Window<R>,
    parser: &mut PcapNgParser,
    interfaces: &mut Vec<Interface>,
    index: u64,
    pkt: &mut RxPacket,
) -> Result<Option<bool>, PcapErrorKind> {
    loop {
        let start = win.offset();
        let Some((btype, len)) = frame_block(win, parser.section().endianness, index)? else {
            return Ok(None);
        };
        let packet = if btype == SECTION_HEADER_BLOCK {
            0
        } else {
            index
        };
        let malformed = |error| PcapErrorKind::Malformed {
            packet,
            offset: start,
            error,
        };
        let bytes = win.bytes().get(..len).unwrap_or_default();
        let block = match btype {
            SECTION_HEADER_BLOCK
            | INTERFACE_DESCRIPTION_BLOCK
            | ENHANCED_PACKET_BLOCK
            | PACKET_BLOCK
            | SIMPLE_PACKET_BLOCK => parser.next_block(bytes).map_err(malformed)?.1,
            _ => {
                // Checks the trailing length without parsing the body.
                parser.next_raw_block(bytes).map_err(malformed)?;
                win.consume(len);
                continue;
            }
        };
        // (interface, timestamp ticks, original length, captured bytes)
        let (ifid, ticks, orig, data) = match block {
            Block::SectionHeader(_) => {
                // A new section: byte order and interfaces start over.
                interfaces.clear();
                win.consume(len);
                continue;
            }
            Block::InterfaceDescription(idb) => {
                interfaces.push(Interface::new(&idb)?);
                win.consume(len);
                continue;
            }
            Block::EnhancedPacket(epb) => {
                // pcap-file keeps the raw ticks in a Duration's nanoseconds.
                let ticks = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
                (epb.interface_id, Some(ticks), epb.original_len, epb.data)
            }
            Block::Packet(pb) => (
                u32::from(pb.interface_id),
                Some(pb.timestamp),
                pb.original_len,
                pb.data,
            ),
            // Interface 0, no timestamp; the block's padding is not data.
            Block::SimplePacket(spb) => (0, None, spb.original_len, spb.data),
            _ => {
                win.consume(len);
                continue;
            }
        };
        let Some(iface) = interfaces.get(ifid as usize) else {
            return Err(corrupt(
                index,
                start,
                "packet names an undeclared interface",
                ifid,
            ));
        };
        let mut data: &[u8] = &data;
        if ticks.is_none() {
            // A Simple Packet Block's captured length is whatever it holds,
            // up to the original length and the interface's snaplen.
            let mut cap = data.len().min(orig as usize);
            if iface.snaplen != 0 {
                cap = cap.min(iface.snaplen as usize);
            }
            data = data.get(..cap).unwrap_or_default();
        }
        pkt.fill(data, ticks.map_or(0, |t| iface.ticks_to_ns(t)));
        let snapped = (data.len() as u64) < u64::from(orig);
        win.consume(len);
        return Ok(Some(snapped));
    }
}

/// Allocates a fresh buffer per packet: for tools and tests, not the worker.
impl<R: Read> Iterator for PcapReader<R> {
    type Item = Result<RxPacket, PcapError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut pkt = RxPacket::default();
        match self.next_into(&mut pkt) {
            Ok(true) => Some(Ok(pkt)),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Count the packets in a capture (for progress bars). Reads the whole file.
pub fn count_packets(path: impl AsRef<Path>) -> Result<u64, PcapError> {
    let mut r = PcapReader::open(path)?;
    let mut pkt = RxPacket::default();
    while r.next_into(&mut pkt)? {}
    Ok(r.packets())
}
