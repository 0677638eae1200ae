//! Fuzz the control API: request lines through the function the control
//! socket answers a line with, against the control state of
//! `configs/rampart.toml` (see `rampart_testkit::fuzz::control_request`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rampart_testkit::fuzz::control_request(data);
});
