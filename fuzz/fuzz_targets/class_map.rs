//! Fuzz target: see `kiln_fuzz::class_map`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiln_fuzz::class_map::run(data));
