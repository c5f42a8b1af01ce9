//! Fuzz target: see `kiln_fuzz::decode`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiln_fuzz::decode::run(data));
