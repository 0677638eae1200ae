//! The pcap backend: read classic pcap and pcapng captures, write classic
//! pcap, through the `pcap-file` crate.
//!
//! The reader tells the format by the file's first four bytes:
//!
//! * classic pcap (libpcap `savefile` format) in either byte order, with
//!   microsecond (`a1b2c3d4`) or nanosecond (`a1b23c4d`) timestamps;
//! * pcapng (draft-ietf-opsawg-pcapng): sections, interfaces, Enhanced /
//!   Simple / obsolete Packet blocks; every other block is checked for its
//!   framing and skipped. `if_tsresol` and `if_tsoffset` are honoured per
//!   interface, so timestamps come out in nanoseconds whatever the
//!   interface's resolution.
//!
//! pcap-file parses the headers and blocks. This module streams the file
//! through one window reused from the first packet to the last, and reads a
//! record's or block's length field before handing it to the parser: an
//! absurd length is refused before it is buffered, and a file that ends
//! early is reported with what is missing and where. pcap-file's own readers
//! cannot do either (a short file is an "unexpected end of file" at no
//! offset), so only its parsers are used.
//!
//! Only Ethernet (link type 1) is accepted: rampart parses from the Ethernet
//! header on, and anything else is refused with an error naming the link type.
//!
//! Damage is reported, never panicked on: a short header, a record whose
//! length runs past the end of the file, an absurd length or a block that
//! pcap-file refuses each give a [`PcapError`] naming the file, the packet
//! number (1-based, as Wireshark counts frames) and the byte offset. After an
//! error the reader is finished and yields nothing more.
//!
//! A packet captured shorter than it was on the wire (snaplen truncation) is
//! still delivered with the bytes that were captured, and counted in
//! [`PcapReader::snapped`]; the datapath parser then drops it as malformed if
//! the missing bytes mattered, so the drop shows up under a named reason.
//!
//! The writer emits classic little-endian pcap, Ethernet, snaplen 65535,
//! microsecond timestamps by default (read by every tool) or nanosecond on
//! request. It flushes on [`PcapWriter::finish`] and, best effort, on drop.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use byteorder::LittleEndian;
use pcap_file::pcap::{PcapHeader, PcapParser, RawPcapPacket};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::{
    ENHANCED_PACKET_BLOCK, INTERFACE_DESCRIPTION_BLOCK, PACKET_BLOCK, SECTION_HEADER_BLOCK,
    SIMPLE_PACKET_BLOCK,
};
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{DataLink, Endianness};

use super::{slot, PacketIo, RxPacket};

/// Ethernet's link-layer header type (LINKTYPE_ETHERNET).
pub const LINKTYPE_ETHERNET: u32 = 1;

/// The largest captured length we accept for one packet. libpcap uses the
/// same ceiling (MAXIMUM_SNAPLEN); a bigger length means a corrupt file, and
/// refusing it keeps a flipped bit from asking for gigabytes.
pub const MAX_PACKET_LEN: u32 = 262_144;

/// The largest pcapng block we read, for the same reason.
const MAX_BLOCK_LEN: u32 = 16 * 1024 * 1024;

const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
/// The first field of a Section Header Block's body, in the section's order.
const PCAPNG_BYTE_ORDER: u32 = 0x1a2b_3c4d;

/// The read window's size: thousands of typical records per read, and room
/// for the largest record we accept. Only a bigger pcapng block grows it.
const WINDOW: usize = 1 << 20;

/// Timestamp resolution of a classic pcap file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TsResolution {
    #[default]
    Micro,
    Nano,
}

impl From<TsResolution> for pcap_file::TsResolution {
    fn from(res: TsResolution) -> Self {
        match res {
            TsResolution::Micro => pcap_file::TsResolution::MicroSecond,
            TsResolution::Nano => pcap_file::TsResolution::NanoSecond,
        }
    }
}

/// Which container the reader found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pcap(TsResolution),
    PcapNg,
}

/// What went wrong, without the file name (see [`PcapError`]). `packet` is
/// 0 where no packet is concerned (file and section headers).
#[derive(Debug)]
pub enum PcapErrorKind {
    /// The operating system refused a read or write.
    Io(io::Error),
    /// The first four bytes are not a pcap or pcapng magic number.
    NotPcap { magic: u32 },
    /// A capture whose link type is not Ethernet.
    Linktype { linktype: u32 },
    /// The file ends inside a header or a packet. `what` names the piece.
    Truncated {
        packet: u64,
        offset: u64,
        what: &'static str,
        wanted: u64,
        present: u64,
    },
    /// A length or number makes no sense.
    Corrupt {
        packet: u64,
        offset: u64,
        reason: &'static str,
        value: u64,
    },
    /// pcap-file refused a header or block that is all there.
    Malformed {
        packet: u64,
        offset: u64,
        error: pcap_file::PcapError,
    },
}

impl From<io::Error> for PcapErrorKind {
    fn from(e: io::Error) -> Self {
        PcapErrorKind::Io(e)
    }
}

/// A pcap read or write failure, naming the file.
#[derive(Debug)]
pub struct PcapError {
    pub file: String,
    pub kind: PcapErrorKind,
}

impl PcapError {
    fn new(file: &str, kind: PcapErrorKind) -> PcapError {
        PcapError {
            file: file.to_string(),
            kind,
        }
    }
}

fn linktype_name(linktype: u32) -> &'static str {
    match linktype {
        0 => "NULL/loopback",
        1 => "Ethernet",
        101 => "raw IP",
        105 => "IEEE 802.11",
        113 => "Linux cooked (SLL)",
        127 => "802.11 radiotap",
        228 => "raw IPv4",
        229 => "raw IPv6",
        276 => "Linux cooked v2 (SLL2)",
        _ => "unknown",
    }
}

/// "packet 3 at byte 120 is corrupt: ", or "corrupt at byte 0: " outside
/// any packet.
fn corrupt_at(f: &mut fmt::Formatter<'_>, packet: u64, offset: u64) -> fmt::Result {
    match packet {
        0 => write!(f, "corrupt at byte {offset}: "),
        _ => write!(f, "packet {packet} at byte {offset} is corrupt: "),
    }
}

impl fmt::Display for PcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        match &self.kind {
            PcapErrorKind::Io(e) => write!(f, "{e}"),
            PcapErrorKind::NotPcap { magic } => write!(
                f,
                "not a pcap or pcapng file (starts with 0x{magic:08x})"
            ),
            PcapErrorKind::Linktype { linktype } => write!(
                f,
                "link type {linktype} ({}) is not supported; rampart reads Ethernet (link type 1) captures only",
                linktype_name(*linktype)
            ),
            PcapErrorKind::Truncated { packet: 0, offset, what, wanted, present } => write!(
                f,
                "{what} at byte {offset} is truncated (needs {wanted} bytes, {present} present)"
            ),
            PcapErrorKind::Truncated { packet, offset, what, wanted, present } => write!(
                f,
                "packet {packet} is truncated: {what} at byte {offset} (header says {wanted} bytes, {present} present)"
            ),
            PcapErrorKind::Corrupt { packet, offset, reason, value } => {
                corrupt_at(f, *packet, *offset)?;
                write!(f, "{reason} ({value})")
            }
            PcapErrorKind::Malformed { packet, offset, error } => {
                corrupt_at(f, *packet, *offset)?;
                match error {
                    // pcap-file's own wording names the block and field.
                    pcap_file::PcapError::InvalidField(what) => f.write_str(what),
                    other => write!(f, "{other}"),
                }
            }
        }
    }
}

impl std::error::Error for PcapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            PcapErrorKind::Io(e) => Some(e),
            PcapErrorKind::Malformed { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<PcapError> for io::Error {
    fn from(e: PcapError) -> io::Error {
        let kind = match &e.kind {
            PcapErrorKind::Io(inner) => inner.kind(),
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

fn truncated(
    packet: u64,
    offset: u64,
    what: &'static str,
    wanted: u64,
    have: usize,
) -> PcapErrorKind {
    PcapErrorKind::Truncated {
        packet,
        offset,
        what,
        wanted,
        present: have as u64,
    }
}

fn corrupt(packet: u64, offset: u64, reason: &'static str, value: u32) -> PcapErrorKind {
    PcapErrorKind::Corrupt {
        packet,
        offset,
        reason,
        value: u64::from(value),
    }
}

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

/// Writes classic pcap, Ethernet link type, snaplen 65535.
pub struct PcapWriter<W: Write = BufWriter<File>> {
    /// `None` only after `into_inner`.
    dst: Option<W>,
    file: String,
    res: TsResolution,
    packets: u64,
}

/// The snaplen written in the file header; longer frames are cut to it.
pub const WRITE_SNAPLEN: u32 = 65_535;

/// A pcap-file write error: the operating system's, or a record it refused.
fn write_error(error: pcap_file::PcapError, packet: u64) -> PcapErrorKind {
    match error {
        pcap_file::PcapError::IoError(e) => PcapErrorKind::Io(e),
        error => PcapErrorKind::Malformed {
            packet,
            offset: 0,
            error,
        },
    }
}

impl PcapWriter<BufWriter<File>> {
    /// Create (or truncate) `path` with microsecond timestamps.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, PcapError> {
        PcapWriter::create_with(path, TsResolution::Micro)
    }

    /// Create (or truncate) `path` with the given timestamp resolution.
    pub fn create_with(path: impl AsRef<Path>, res: TsResolution) -> Result<Self, PcapError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = File::create(path).map_err(|e| PcapError::new(&name, PcapErrorKind::Io(e)))?;
        PcapWriter::new(BufWriter::with_capacity(1 << 16, file), &name, res)
    }
}

impl<W: Write> PcapWriter<W> {
    /// Write the file header to `dst`; `name` is used in error messages.
    pub fn new(mut dst: W, name: &str, res: TsResolution) -> Result<Self, PcapError> {
        // Version 2.4, thiszone and sigfigs zero (pcap-file's defaults).
        let header = PcapHeader {
            snaplen: WRITE_SNAPLEN,
            datalink: DataLink::ETHERNET,
            ts_resolution: res.into(),
            endianness: Endianness::Little,
            ..PcapHeader::default()
        };
        header
            .write_to(&mut dst)
            .map_err(|e| PcapError::new(name, write_error(e, 0)))?;
        Ok(PcapWriter {
            dst: Some(dst),
            file: name.to_string(),
            res,
            packets: 0,
        })
    }

    /// Append one frame captured at `ts_ns` (nanoseconds since the epoch).
    pub fn write(&mut self, frame: &[u8], ts_ns: u64) -> Result<(), PcapError> {
        let packet = self.packets + 1;
        let secs = ts_ns / 1_000_000_000;
        let Ok(ts_sec) = u32::try_from(secs) else {
            return Err(PcapError::new(
                &self.file,
                PcapErrorKind::Corrupt {
                    packet,
                    offset: 0,
                    reason: "timestamp past 2106 does not fit pcap",
                    value: secs,
                },
            ));
        };
        let sub = (ts_ns % 1_000_000_000) as u32;
        let ts_frac = match self.res {
            TsResolution::Micro => sub / 1000,
            TsResolution::Nano => sub,
        };
        let orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let incl_len = orig_len.min(WRITE_SNAPLEN);
        let record = RawPcapPacket {
            ts_sec,
            ts_frac,
            incl_len,
            orig_len,
            data: Cow::Borrowed(frame.get(..incl_len as usize).unwrap_or(frame)),
        };
        let Some(dst) = self.dst.as_mut() else {
            return Ok(());
        };
        record
            .write_to::<_, LittleEndian>(dst)
            .map_err(|e| PcapError::new(&self.file, write_error(e, packet)))?;
        self.packets += 1;
        Ok(())
    }

    /// Packets written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Flush buffered output; call before dropping to see write errors.
    pub fn finish(&mut self) -> Result<(), PcapError> {
        match self.dst.as_mut() {
            Some(dst) => dst
                .flush()
                .map_err(|e| PcapError::new(&self.file, PcapErrorKind::Io(e))),
            None => Ok(()),
        }
    }

    /// Flush and hand back the destination.
    pub fn into_inner(mut self) -> Result<W, PcapError> {
        self.finish()?;
        match self.dst.take() {
            Some(dst) => Ok(dst),
            None => Err(PcapError::new(
                &self.file,
                PcapErrorKind::Io(io::ErrorKind::NotConnected.into()),
            )),
        }
    }
}

impl<W: Write> Drop for PcapWriter<W> {
    fn drop(&mut self) {
        if let Some(dst) = self.dst.as_mut() {
            // Errors here have nowhere to go; `finish` is the checked path.
            let _ = dst.flush();
        }
    }
}
/// `rampart replay`'s backend: packets from a capture, transmitted frames
/// into an optional output capture (counted either way).
pub struct PcapIo {
    rx: PcapReader,
    tx: Option<PcapWriter>,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

impl PcapIo {
    pub fn new(rx: PcapReader, tx: Option<PcapWriter>) -> PcapIo {
        PcapIo {
            rx,
            tx,
            tx_packets: 0,
            tx_bytes: 0,
        }
    }

    pub fn reader(&self) -> &PcapReader {
        &self.rx
    }

    /// Flush and close the output capture.
    pub fn finish(&mut self) -> Result<(), PcapError> {
        match self.tx.as_mut() {
            Some(w) => w.finish(),
            None => Ok(()),
        }
    }
}

impl PacketIo for PcapIo {
    type Buf = RxPacket;

    fn rx_burst(&mut self, bufs: &mut Vec<RxPacket>, max: usize) -> io::Result<usize> {
        let mut n = 0;
        while n < max {
            if !self.rx.next_into(slot(bufs, n))? {
                break;
            }
            n += 1;
        }
        Ok(n)
    }

    fn tx(&mut self, pkt: &RxPacket) -> io::Result<()> {
        self.tx_packets += 1;
        self.tx_bytes += pkt.data.len() as u64;
        if let Some(w) = self.tx.as_mut() {
            w.write(&pkt.data, pkt.ts_ns)?;
        }
        Ok(())
    }

    fn tx_frame(&mut self, frame: &[u8], ts_ns: u64) -> io::Result<()> {
        self.tx_packets += 1;
        self.tx_bytes += frame.len() as u64;
        if let Some(w) = self.tx.as_mut() {
            w.write(frame, ts_ns)?;
        }
        Ok(())
    }

    /// The writer's 64 KiB buffer batches the writes already; flushing every
    /// burst would add a syscall per 32 packets. [`PcapIo::finish`] flushes.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn exhausted(&self) -> bool {
        self.rx.is_done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
                io.tx(p).unwrap();
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
}
