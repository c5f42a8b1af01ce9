//! Fuzz target: see `kiln_fuzz::yaml_config`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiln_fuzz::yaml_config::run(data));
