//! Fuzz the metrics server's request head parser, read by read, and its
//! routing (see `rampart_testkit::fuzz::http_request`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rampart_testkit::fuzz::http_request(data);
});
