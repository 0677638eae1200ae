//! What the integration tests share: the repository root, the frames of a
//! capture and writing one.

use std::path::{Path, PathBuf};

use rampart::io::{PcapReader, PcapWriter};

/// The repository's root (configs/, pcap-fixtures/, tests/ are below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Every frame of the capture at `p`, in order; panics with the reader's
/// message on a bad file.
pub fn frames(p: &Path) -> Vec<Vec<u8>> {
    match PcapReader::open(p) {
        Ok(r) => r
            .map(|f| match f {
                Ok(f) => f.data,
                Err(e) => panic!("{e}"),
            })
            .collect(),
        Err(e) => panic!("{e}"),
    }
}

/// Writes a capture at `p` of `frames`, each with its capture time in
/// nanoseconds; panics with the writer's message on failure.
pub fn write_pcap<F: AsRef<[u8]>>(p: &Path, frames: impl IntoIterator<Item = (u64, F)>) {
    let written = PcapWriter::create(p).and_then(|mut w| {
        for (ts, f) in frames {
            w.write(f.as_ref(), ts)?;
        }
        w.finish()
    });
    if let Err(e) = written {
        panic!("{e}")
    }
}

/// A `Command` for the `rampart` binary of the package under test; expands
/// in the calling test, where cargo names the binary's path.
#[macro_export]
macro_rules! rampart_bin {
    () => {
        std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
    };
}
