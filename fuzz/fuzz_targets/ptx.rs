//! Fuzz target: see `kiln_fuzz::ptx`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiln_fuzz::ptx::run(data));
