//! rampart's test tooling, beside the product rather than inside it (as
//! Katran keeps `lib/testing/`): the golden fixtures ([`fixtures`]: rows of
//! description, input frame, expected verdict and expected output for
//! every forwarding mode), the fuzz harness ([`harness`]), the other fuzz
//! targets and their seeds ([`fuzz`]) and what the
//! integration tests share ([`common`]). The `fixtures` binary writes
//! `pcap-fixtures/` and the fuzz seed corpus from them.
//!
//! The product keeps what its own commands need: the frame builder
//! (`rampart::gen`) and the synthetic workloads of `rampart gen` and
//! `rampart bench` (`rampart::workload`).

pub mod common;
pub mod fixtures;
pub mod fuzz;
pub mod harness;
pub mod toml;
