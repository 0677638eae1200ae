//! Fuzz the capture reader: bytes as a pcap or pcapng file, read to the
//! end (see `rampart_testkit::fuzz::pcap`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rampart_testkit::fuzz::pcap(data);
});
