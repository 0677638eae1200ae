//! Fuzz the datapath entry: sequences of frames through one worker of the
//! reference config (see `rampart_testkit::harness`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = rampart_testkit::harness::run(data);
});
