//! Pure-Rust pcap backend: read classic pcap and pcapng captures, write
//! classic pcap.
//!
//! The reader detects the format by its first four bytes:
//!
//! * classic pcap (libpcap `savefile` format) in either byte order, with
//!   microsecond (`a1b2c3d4`) or nanosecond (`a1b23c4d`) timestamps;
//! * pcapng (draft-ietf-opsawg-pcapng): Section Header, Interface
//!   Description, Enhanced / Simple / obsolete Packet blocks; every other block
//!   is skipped. `if_tsresol` and `if_tsoffset` are honoured, so timestamps
//!   come out in nanoseconds whatever the interface's resolution.
//!
//! Only Ethernet (link type 1) is accepted: rampart parses from the Ethernet
//! header on, and anything else is refused with an error naming the link type.
//!
//! Damage is reported, never panicked on: a short header, a record whose
//! length runs past the end of the file, an absurd length or a broken pcapng
//! block each give a [`PcapError`] naming the file, the packet number
//! (1-based, as Wireshark counts frames) and the byte offset. After an error
//! the reader is finished and yields nothing more.
//!
//! A packet captured shorter than it was on the wire (snaplen truncation) is
//! still delivered with the bytes that were captured, and counted in
//! [`PcapReader::snapped`]; the datapath parser then drops it as malformed if
//! the missing bytes mattered, so the drop shows up under a named reason.
//!
//! The writer emits classic little-endian pcap, Ethernet, snaplen 65535,
//! microsecond timestamps by default (read by every tool) or nanosecond on
//! request. It flushes on [`PcapWriter::finish`] and, best effort, on drop.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

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
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BYTE_ORDER: u32 = 0x1a2b_3c4d;

const BLOCK_IDB: u32 = 1;
const BLOCK_PB: u32 = 2;
const BLOCK_SPB: u32 = 3;
const BLOCK_EPB: u32 = 6;

const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

/// Timestamp resolution of a classic pcap file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TsResolution {
    #[default]
    Micro,
    Nano,
}

/// Which container the reader found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pcap(TsResolution),
    PcapNg,
}

/// What went wrong, without the file name (see [`PcapError`]).
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
    /// A header field makes no sense.
    Corrupt {
        packet: u64,
        offset: u64,
        reason: &'static str,
        value: u64,
    },
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
            PcapErrorKind::Corrupt { packet: 0, offset, reason, value } => {
                write!(f, "corrupt at byte {offset}: {reason} ({value})")
            }
            PcapErrorKind::Corrupt { packet, offset, reason, value } => {
                write!(f, "packet {packet} at byte {offset} is corrupt: {reason} ({value})")
            }
        }
    }
}

impl std::error::Error for PcapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            PcapErrorKind::Io(e) => Some(e),
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }

    fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }
}

/// Little helpers over a byte slice that never panic: out of range reads
/// give zero, and callers check lengths before trusting a field.
fn get2(b: &[u8], at: usize) -> [u8; 2] {
    let mut out = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        out.copy_from_slice(s);
    }
    out
}

fn get4(b: &[u8], at: usize) -> [u8; 4] {
    let mut out = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        out.copy_from_slice(s);
    }
    out
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

enum State {
    Pcap {
        endian: Endian,
        res: TsResolution,
    },
    PcapNg {
        endian: Endian,
        interfaces: Vec<Interface>,
    },
}

/// Reads a classic pcap or pcapng capture packet by packet into reused
/// buffers.
pub struct PcapReader<R: Read = BufReader<File>> {
    src: R,
    file: String,
    state: State,
    /// Bytes consumed so far: the offset of the next header, for error
    /// messages and progress bars.
    offset: u64,
    packets: u64,
    snapped: u64,
    done: bool,
    /// pcapng block scratch, reused.
    block: Vec<u8>,
}

impl PcapReader<BufReader<File>> {
    /// Open `path` and read its file header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, PcapError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| PcapError::new(&name, PcapErrorKind::Io(e)))?;
        PcapReader::from_reader(BufReader::with_capacity(1 << 16, file), &name)
    }
}

impl<R: Read> PcapReader<R> {
    /// Read a capture from any byte source; `name` is used in error messages.
    pub fn from_reader(mut src: R, name: &str) -> Result<Self, PcapError> {
        let mut magic = [0u8; 4];
        let got = read_full(&mut src, &mut magic)
            .map_err(|e| PcapError::new(name, PcapErrorKind::Io(e)))?;
        let mut r = PcapReader {
            src,
            file: name.to_string(),
            state: State::Pcap {
                endian: Endian::Little,
                res: TsResolution::Micro,
            },
            offset: got as u64,
            packets: 0,
            snapped: 0,
            done: false,
            block: Vec::new(),
        };
        if got < 4 {
            return Err(r.truncated(0, 0, "file header", 24, got as u64));
        }
        let le = u32::from_le_bytes(magic);
        let be = u32::from_be_bytes(magic);
        if le == PCAPNG_SHB {
            r.state = State::PcapNg {
                endian: Endian::Little,
                interfaces: Vec::new(),
            };
            r.read_shb_rest()?;
            return Ok(r);
        }
        let (endian, res) = match (le, be) {
            (PCAP_MAGIC_US, _) => (Endian::Little, TsResolution::Micro),
            (PCAP_MAGIC_NS, _) => (Endian::Little, TsResolution::Nano),
            (_, PCAP_MAGIC_US) => (Endian::Big, TsResolution::Micro),
            (_, PCAP_MAGIC_NS) => (Endian::Big, TsResolution::Nano),
            _ => return Err(PcapError::new(name, PcapErrorKind::NotPcap { magic: be })),
        };
        let mut rest = [0u8; 20];
        let got = r.read(&mut rest)?;
        if got < rest.len() {
            return Err(r.truncated(0, 0, "file header", 24, 4 + got as u64));
        }
        // Version (4), thiszone (4), sigfigs (4), snaplen (4), linktype (4).
        // The top bits of the link type field carry FCS information.
        let linktype = endian.u32(get4(&rest, 16)) & 0x0fff_ffff;
        if linktype != LINKTYPE_ETHERNET {
            return Err(PcapError::new(name, PcapErrorKind::Linktype { linktype }));
        }
        r.state = State::Pcap { endian, res };
        Ok(r)
    }

    /// The container format found in the file header.
    pub fn format(&self) -> Format {
        match self.state {
            State::Pcap { res, .. } => Format::Pcap(res),
            State::PcapNg { .. } => Format::PcapNg,
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
        self.offset
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
        let res = match self.state {
            State::Pcap { endian, res } => self.next_pcap(endian, res, pkt),
            State::PcapNg { .. } => self.next_pcapng(pkt),
        };
        match res {
            Ok(true) => {
                self.packets += 1;
                Ok(true)
            }
            other => {
                self.done = true;
                other
            }
        }
    }

    fn next_pcap(
        &mut self,
        endian: Endian,
        res: TsResolution,
        pkt: &mut RxPacket,
    ) -> Result<bool, PcapError> {
        let index = self.packets + 1;
        let start = self.offset;
        let mut hdr = [0u8; 16];
        let got = self.read(&mut hdr)?;
        if got == 0 {
            return Ok(false);
        }
        if got < hdr.len() {
            return Err(self.truncated(index, start, "record header", 16, got as u64));
        }
        let ts_sec = u64::from(endian.u32(get4(&hdr, 0)));
        let ts_frac = u64::from(endian.u32(get4(&hdr, 4)));
        let incl = endian.u32(get4(&hdr, 8));
        let orig = endian.u32(get4(&hdr, 12));
        if incl > MAX_PACKET_LEN {
            return Err(self.corrupt(
                index,
                start,
                "captured length is over 262144",
                u64::from(incl),
            ));
        }
        let frac_ns = match res {
            TsResolution::Micro => ts_frac * 1000,
            TsResolution::Nano => ts_frac,
        };
        pkt.ts_ns = ts_sec * 1_000_000_000 + frac_ns;
        pkt.data.clear();
        pkt.data.resize(incl as usize, 0);
        let got = self.read(&mut pkt.data)?;
        if got < incl as usize {
            pkt.data.truncate(got);
            return Err(self.truncated(index, start, "packet data", u64::from(incl), got as u64));
        }
        if incl < orig {
            self.snapped += 1;
        }
        Ok(true)
    }

    fn next_pcapng(&mut self, pkt: &mut RxPacket) -> Result<bool, PcapError> {
        let index = self.packets + 1;
        loop {
            let start = self.offset;
            let mut hdr = [0u8; 8];
            let got = self.read(&mut hdr)?;
            if got == 0 {
                return Ok(false);
            }
            if got < hdr.len() {
                return Err(self.truncated(index, start, "block header", 8, got as u64));
            }
            let State::PcapNg { endian, .. } = self.state else {
                return Ok(false);
            };
            let btype = endian.u32(get4(&hdr, 0));
            if btype == PCAPNG_SHB {
                // A new section: byte order and interfaces start over.
                self.read_shb_body(start, get4(&hdr, 4))?;
                continue;
            }
            let len = endian.u32(get4(&hdr, 4));
            self.read_block_body(index, start, len)?;
            match btype {
                BLOCK_IDB => self.add_interface(index, start, endian)?,
                BLOCK_EPB | BLOCK_PB | BLOCK_SPB => {
                    self.packet_block(btype, index, start, endian, pkt)?;
                    return Ok(true);
                }
                _ => {}
            }
        }
    }

    /// After the SHB's block type: its length and byte-order magic.
    fn read_shb_rest(&mut self) -> Result<(), PcapError> {
        let mut len = [0u8; 4];
        let got = self.read(&mut len)?;
        if got < 4 {
            return Err(self.truncated(0, 0, "section header block", 28, 4 + got as u64));
        }
        self.read_shb_body(0, len)
    }

    /// Read a Section Header Block whose type field started at `start`.
    fn read_shb_body(&mut self, start: u64, raw_len: [u8; 4]) -> Result<(), PcapError> {
        let mut bom = [0u8; 4];
        let got = self.read(&mut bom)?;
        if got < 4 {
            return Err(self.truncated(0, start, "section header block", 28, 8 + got as u64));
        }
        let endian = if u32::from_le_bytes(bom) == PCAPNG_BYTE_ORDER {
            Endian::Little
        } else if u32::from_be_bytes(bom) == PCAPNG_BYTE_ORDER {
            Endian::Big
        } else {
            return Err(self.corrupt(
                0,
                start,
                "bad pcapng byte-order magic",
                u64::from(u32::from_be_bytes(bom)),
            ));
        };
        let len = endian.u32(raw_len);
        if len < 28 || len & 3 != 0 || len > MAX_BLOCK_LEN {
            return Err(self.corrupt(0, start, "bad section header block length", u64::from(len)));
        }
        // The rest: version, section length, options, trailing length.
        self.fill_block(0, start, len, 12, "section header block", endian)?;
        self.state = State::PcapNg {
            endian,
            interfaces: Vec::new(),
        };
        Ok(())
    }

    /// Read the body of a non-SHB block (`len` bytes from `start`, 8 already
    /// read) into `self.block`, trailing length stripped.
    fn read_block_body(&mut self, index: u64, start: u64, len: u32) -> Result<(), PcapError> {
        if len < 12 || len & 3 != 0 || len > MAX_BLOCK_LEN {
            return Err(self.corrupt(index, start, "bad pcapng block length", u64::from(len)));
        }
        let State::PcapNg { endian, .. } = self.state else {
            return Ok(());
        };
        self.fill_block(index, start, len, 8, "pcapng block", endian)
    }

    /// Read the `len - already` bytes left of a block into `self.block`,
    /// check that its trailing length repeats `len`, and strip it.
    fn fill_block(
        &mut self,
        index: u64,
        start: u64,
        len: u32,
        already: u32,
        what: &'static str,
        endian: Endian,
    ) -> Result<(), PcapError> {
        let rest = (len - already) as usize;
        self.block.clear();
        self.block.resize(rest, 0);
        let mut block = std::mem::take(&mut self.block);
        let got = self.read(&mut block);
        self.block = block;
        let got = got?;
        if got < rest {
            return Err(self.truncated(
                index,
                start,
                what,
                u64::from(len),
                u64::from(already) + got as u64,
            ));
        }
        let trailer = endian.u32(get4(&self.block, rest - 4));
        if trailer != len {
            return Err(self.corrupt(
                index,
                start,
                "block trailing length differs from its header",
                u64::from(trailer),
            ));
        }
        self.block.truncate(rest - 4);
        Ok(())
    }

    fn add_interface(&mut self, index: u64, start: u64, endian: Endian) -> Result<(), PcapError> {
        let b = &self.block;
        if b.len() < 8 {
            return Err(self.corrupt(
                index,
                start,
                "interface description block too short",
                b.len() as u64,
            ));
        }
        let linktype = u32::from(endian.u16(get2(b, 0)));
        if linktype != LINKTYPE_ETHERNET {
            return Err(PcapError::new(
                &self.file,
                PcapErrorKind::Linktype { linktype },
            ));
        }
        let mut iface = Interface {
            tsresol: 6,
            tsoffset_s: 0,
            snaplen: endian.u32(get4(b, 4)),
        };
        let mut at = 8;
        while at + 4 <= b.len() {
            let code = endian.u16(get2(b, at));
            let olen = usize::from(endian.u16(get2(b, at + 2)));
            let val = b.get(at + 4..at + 4 + olen).unwrap_or(&[]);
            match code {
                0 => break,
                OPT_IF_TSRESOL if !val.is_empty() => iface.tsresol = val[0],
                OPT_IF_TSOFFSET if val.len() == 8 => {
                    let mut raw = [0u8; 8];
                    raw.copy_from_slice(val);
                    iface.tsoffset_s = match endian {
                        Endian::Little => i64::from_le_bytes(raw),
                        Endian::Big => i64::from_be_bytes(raw),
                    };
                }
                _ => {}
            }
            at += 4 + olen.div_ceil(4) * 4;
        }
        if let State::PcapNg { interfaces, .. } = &mut self.state {
            interfaces.push(iface);
        }
        Ok(())
    }

    fn packet_block(
        &mut self,
        btype: u32,
        index: u64,
        start: u64,
        endian: Endian,
        pkt: &mut RxPacket,
    ) -> Result<(), PcapError> {
        let State::PcapNg { interfaces, .. } = &self.state else {
            return Ok(());
        };
        let b = &self.block;
        // (interface, timestamp ticks, captured length, original length, data offset)
        let (ifid, ticks, cap, orig, data_at) = match btype {
            BLOCK_EPB | BLOCK_PB => {
                if b.len() < 20 {
                    return Err(self.corrupt(
                        index,
                        start,
                        "packet block too short",
                        b.len() as u64,
                    ));
                }
                let ifid = if btype == BLOCK_EPB {
                    endian.u32(get4(b, 0))
                } else {
                    u32::from(endian.u16(get2(b, 0)))
                };
                let hi = u64::from(endian.u32(get4(b, 4)));
                let lo = u64::from(endian.u32(get4(b, 8)));
                let cap = endian.u32(get4(b, 12));
                (
                    ifid,
                    Some((hi << 32) | lo),
                    cap,
                    endian.u32(get4(b, 16)),
                    20,
                )
            }
            _ => {
                // Simple Packet Block: interface 0, no timestamp, the captured
                // length is whatever the block holds up to the snaplen.
                if b.len() < 4 {
                    return Err(self.corrupt(
                        index,
                        start,
                        "simple packet block too short",
                        b.len() as u64,
                    ));
                }
                let orig = endian.u32(get4(b, 0));
                let mut cap = orig.min((b.len() - 4) as u32);
                if let Some(i) = interfaces.first() {
                    if i.snaplen != 0 {
                        cap = cap.min(i.snaplen);
                    }
                }
                (0, None, cap, orig, 4)
            }
        };
        let Some(iface) = interfaces.get(ifid as usize).copied() else {
            return Err(self.corrupt(
                index,
                start,
                "packet names an undeclared interface",
                u64::from(ifid),
            ));
        };
        let Some(data) = b.get(data_at..data_at + cap as usize) else {
            return Err(self.corrupt(
                index,
                start,
                "captured length runs past the block",
                u64::from(cap),
            ));
        };
        pkt.fill(data, ticks.map_or(0, |t| iface.ticks_to_ns(t)));
        if cap < orig {
            self.snapped += 1;
        }
        Ok(())
    }

    /// Read as much of `buf` as the file has; count the bytes consumed.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, PcapError> {
        let got = read_full(&mut self.src, buf)
            .map_err(|e| PcapError::new(&self.file, PcapErrorKind::Io(e)))?;
        self.offset += got as u64;
        Ok(got)
    }

    fn truncated(
        &self,
        packet: u64,
        offset: u64,
        what: &'static str,
        wanted: u64,
        present: u64,
    ) -> PcapError {
        PcapError::new(
            &self.file,
            PcapErrorKind::Truncated {
                packet,
                offset,
                what,
                wanted,
                present,
            },
        )
    }

    fn corrupt(&self, packet: u64, offset: u64, reason: &'static str, value: u64) -> PcapError {
        PcapError::new(
            &self.file,
            PcapErrorKind::Corrupt {
                packet,
                offset,
                reason,
                value,
            },
        )
    }
}

/// Fill `buf` until it is full or the source ends; return the bytes read.
fn read_full<R: Read>(src: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match src.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
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
        let magic = match res {
            TsResolution::Micro => PCAP_MAGIC_US,
            TsResolution::Nano => PCAP_MAGIC_NS,
        };
        let mut hdr = [0u8; 24];
        hdr[0..4].copy_from_slice(&magic.to_le_bytes());
        hdr[4..6].copy_from_slice(&2u16.to_le_bytes());
        hdr[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay zero.
        hdr[16..20].copy_from_slice(&WRITE_SNAPLEN.to_le_bytes());
        hdr[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        dst.write_all(&hdr)
            .map_err(|e| PcapError::new(name, PcapErrorKind::Io(e)))?;
        Ok(PcapWriter {
            dst: Some(dst),
            file: name.to_string(),
            res,
            packets: 0,
        })
    }

    /// Append one frame captured at `ts_ns` (nanoseconds since the epoch).
    pub fn write(&mut self, frame: &[u8], ts_ns: u64) -> Result<(), PcapError> {
        let secs = ts_ns / 1_000_000_000;
        let Ok(secs) = u32::try_from(secs) else {
            let packet = self.packets + 1;
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
        let frac = match self.res {
            TsResolution::Micro => sub / 1000,
            TsResolution::Nano => sub,
        };
        let orig = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let incl = orig.min(WRITE_SNAPLEN);
        let mut hdr = [0u8; 16];
        hdr[0..4].copy_from_slice(&secs.to_le_bytes());
        hdr[4..8].copy_from_slice(&frac.to_le_bytes());
        hdr[8..12].copy_from_slice(&incl.to_le_bytes());
        hdr[12..16].copy_from_slice(&orig.to_le_bytes());
        let Some(dst) = self.dst.as_mut() else {
            return Ok(());
        };
        let res = dst
            .write_all(&hdr)
            .and_then(|()| dst.write_all(&frame[..incl as usize]));
        res.map_err(|e| PcapError::new(&self.file, PcapErrorKind::Io(e)))?;
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
        ng_block(PCAPNG_SHB, &body)
    }

    fn ng_idb(linktype: u16, options: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&linktype.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(options);
        ng_block(BLOCK_IDB, &body)
    }

    fn ng_epb(ticks: u64, data: &[u8], orig: u32) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(&((ticks >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ticks as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&orig.to_le_bytes());
        body.extend_from_slice(data);
        ng_block(BLOCK_EPB, &body)
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
        b.extend(ng_block(BLOCK_SPB, &spb));
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
