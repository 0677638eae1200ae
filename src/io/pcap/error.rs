//! The errors of the reader and the writer: what went wrong, where (packet
//! number and byte offset) and in which file.

use std::fmt;
use std::io;

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
    pub(super) fn new(file: &str, kind: PcapErrorKind) -> PcapError {
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

pub(super) fn truncated(
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

pub(super) fn corrupt(packet: u64, offset: u64, reason: &'static str, value: u32) -> PcapErrorKind {
    PcapErrorKind::Corrupt {
        packet,
        offset,
        reason,
        value: u64::from(value),
    }
}
