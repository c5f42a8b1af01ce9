//! Fuzz target: see `kiln_fuzz::torch_file`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiln_fuzz::torch_file::run(data));
