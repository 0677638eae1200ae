//! Fuzz the config loader: bytes as TOML through the parser and validator
//! `rampart check-config` runs (see `rampart_testkit::fuzz::config`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rampart_testkit::fuzz::config(data);
});
