//! Fuzz target: see `kiln_fuzz::hfds`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiln_fuzz::hfds::run(data));
