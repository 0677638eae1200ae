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
//!
//! The reader ([`PcapReader`], `read.rs`), the writer ([`PcapWriter`],
//! `write.rs`) and the errors both report ([`PcapError`], `error.rs`) are
//! one file each; this one holds what they share and the `replay` backend.

use std::io;

use super::{slot, PacketIo, RxPacket};

mod error;
mod read;
mod write;

pub use error::{PcapError, PcapErrorKind};
pub use read::{count_packets, PcapReader};
pub use write::{PcapWriter, WRITE_SNAPLEN};

/// Ethernet's link-layer header type (LINKTYPE_ETHERNET).
pub const LINKTYPE_ETHERNET: u32 = 1;

/// The largest captured length we accept for one packet. libpcap uses the
/// same ceiling (MAXIMUM_SNAPLEN); a bigger length means a corrupt file, and
/// refusing it keeps a flipped bit from asking for gigabytes.
pub const MAX_PACKET_LEN: u32 = 262_144;

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

    fn tx(&mut self, _idx: usize, pkt: &RxPacket) -> io::Result<()> {
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
mod tests;
