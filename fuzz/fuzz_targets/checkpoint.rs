//! Fuzz target: see `kiln_fuzz::checkpoint`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiln_fuzz::checkpoint::run(data));
