//! Fuzz target: see `kiln_fuzz::tar`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiln_fuzz::tar::run(data));
