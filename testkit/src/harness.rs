//! The datapath entry as the fuzzer and its regression tests drive it.
//!
//! An input is a sequence of frames, each prefixed by a 16-bit big-endian
//! length (a short final frame takes what is left), all run through one
//! worker of the reference config, so the fuzzer reaches connection state
//! (a SYN then its replies), not only the parser. Whatever the bytes, the
//! datapath must return a verdict without panicking, and a frame it
//! forwards must still parse.

use crate::fixtures;
use rampart::datapath::{process, Verdict, WorkerState};
use rampart::snapshot::Snapshot;
use rampart::wire;

/// Frames per input at most: bounds the work one input can cause.
pub const MAX_FRAMES: usize = 64;

/// Splits a fuzz input into frames.
pub fn frames(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 && out.len() < MAX_FRAMES {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        rest = &rest[2..];
        let take = len.min(rest.len());
        out.push(&rest[..take]);
        rest = &rest[take..];
    }
    out
}

/// Joins frames into one fuzz input (seed corpus, regression cases).
pub fn join(frames: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        let len = f.len().min(u16::MAX as usize);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&f[..len]);
    }
    out
}

/// A snapshot of the reference config with a small connection table (so
/// the fuzzer can also fill it), built once per process.
pub fn snapshot() -> &'static Snapshot {
    static SNAP: std::sync::OnceLock<Snapshot> = std::sync::OnceLock::new();
    SNAP.get_or_init(|| {
        let mut cfg = fixtures::config();
        cfg.conntrack.capacity = 16;
        // Few hold buffers: fast to set up per input, and easy to exhaust.
        cfg.synproxy.hold_slots = 32;
        Snapshot::build(&cfg)
    })
}

/// Workers the harness pretends there are: worker 0 of 256 owns 252 FullNAT
/// ports per local address, so a run starts fast and can exhaust them.
const WORKERS: u16 = 256;

/// Runs one fuzz input and returns the worker's counters. Panics only if an
/// invariant breaks.
pub fn run(data: &[u8]) -> rampart::stats::WorkerStats {
    let snap = snapshot();
    let mut ws = WorkerState::new(snap, 0, WORKERS, 0x0f0f);
    // The fixtures' capture time, so the SYN proxy seeds' cookies are live
    // and the fuzzer starts from spliced connections.
    let mut clock = (fixtures::timestamp(0) / 1_000_000_000) as u32;
    for f in frames(data) {
        let mut buf = f.to_vec();
        // A last byte of 0xf0 or above moves the clock by (byte & 0xf) x
        // 10 s, so aging, timeouts and SYN resends run when the fuzzer asks
        // for them; other frames (all the seeds' handshakes) leave it alone.
        let step = f
            .last()
            .filter(|b| **b >= 0xf0)
            .map_or(0, |b| u32::from(*b & 0x0f) * 10);
        clock = clock.wrapping_add(step);
        ws.set_clock(clock);
        match process(&mut buf, &mut ws, snap) {
            Verdict::Forward | Verdict::Reply => {
                // Only encapsulation grows a frame, by at most its outer headers.
                assert!(
                    buf.len() <= f.len() + rampart::xmit::FRONT_MAX,
                    "the datapath made a frame longer than encapsulation can"
                );
                assert!(parses(&buf), "the datapath sent a frame it cannot parse");
            }
            Verdict::Consumed | Verdict::Handover(_) | Verdict::Kernel | Verdict::Drop(_) => {}
        }
        for (_, _, out) in ws.outbox.iter_all() {
            assert!(
                parses(out),
                "the datapath originated a frame it cannot parse"
            );
        }
        ws.outbox.clear();
        ws.age(snap);
    }
    let s = &ws.stats;
    let held_dropped = s.events[rampart::stats::Event::FragmentHeldDropped as usize];
    assert_eq!(
        s.rx_packets + held_dropped,
        s.tx_packets + s.consumed + s.dropped_total(),
        "a packet was neither sent, taken over nor counted as dropped"
    );
    ws.stats
}

/// A whole packet, or a fragment (which the parser refuses as such).
fn parses(frame: &[u8]) -> bool {
    wire::parse(frame).is_ok() || wire::parse_fragment(frame).is_ok()
}
