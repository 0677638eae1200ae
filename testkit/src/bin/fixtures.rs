//! Writes the replay fixtures (`NAME.in.pcap`, `NAME.expected.pcap`) into a
//! directory, and the fuzz seed corpora if asked:
//!
//!     cargo run -p rampart-testkit --bin fixtures -- [--dir pcap-fixtures] [--fuzz-corpus DIR] [--fuzz-corpora DIR]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(about = "Write rampart's replay fixtures and fuzz seed corpus")]
struct Args {
    /// Output directory of the fixtures.
    #[arg(long, short, default_value = "pcap-fixtures")]
    dir: PathBuf,
    /// Also write the fuzz seed corpus (one input per scenario and per frame) here.
    #[arg(long)]
    fuzz_corpus: Option<PathBuf>,
    /// Write every fuzz target's seeds into DIR/TARGET (datapath, config,
    /// control_request, http_request, pcap).
    #[arg(long)]
    fuzz_corpora: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut written = match rampart_testkit::fixtures::write_all(&args.dir) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("fixtures: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(c) = args.fuzz_corpus {
        match rampart_testkit::fixtures::write_fuzz_corpus(&c) {
            Ok(w) => written.extend(w),
            Err(e) => {
                eprintln!("fixtures: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(c) = args.fuzz_corpora {
        match rampart_testkit::fuzz::write_corpora(&c) {
            Ok(w) => written.extend(w),
            Err(e) => {
                eprintln!("fixtures: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    for f in &written {
        println!("{}", f.display());
    }
    ExitCode::SUCCESS
}
