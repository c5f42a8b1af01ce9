//! Fuzz target: see `kiln_fuzz::image_folder` (structure-aware: the input is a generated tree).
#![no_main]
libfuzzer_sys::fuzz_target!(
    |tree: kiln_fuzz::image_folder::Tree| kiln_fuzz::image_folder::run(&tree)
);
