//! Writing classic little-endian pcap through pcap-file's record encoder.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use byteorder::LittleEndian;
use pcap_file::pcap::{PcapHeader, RawPcapPacket};
use pcap_file::{DataLink, Endianness};

use super::{PcapError, PcapErrorKind, TsResolution};

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
