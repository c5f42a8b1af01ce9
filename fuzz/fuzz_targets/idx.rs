//! Fuzz target: see `kiln_fuzz::idx`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiln_fuzz::idx::run(data));
