//! The emulator's per-launch counters (`KILN_EMU_STATS`: one JSON object a line), for the tests
//! that judge kernels by what they launched, executed or moved.
#![allow(dead_code)]

use std::path::Path;

/// The stats lines of the launches `f` made (the device is synchronized before and after).
pub fn launches(stats: &Path, f: impl FnOnce()) -> Vec<String> {
    let dev = kiln_engine::cuda::device(0).unwrap();
    dev.synchronize().unwrap();
    let before = std::fs::read_to_string(stats).unwrap_or_default().len();
    f();
    dev.synchronize().unwrap();
    let text = std::fs::read_to_string(stats).unwrap_or_default();
    text[before..].lines().map(str::to_owned).collect()
}

/// A numeric field of a stats line (0 when absent).
pub fn field(line: &str, name: &str) -> u64 {
    let key = format!("\"{name}\":");
    line.split(&key)
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The kernel a stats line is about.
pub fn kernel(line: &str) -> &str {
    line.split("\"kernel\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("")
}

/// Global bytes loaded and stored by the launches of `lines`.
pub fn global_bytes(lines: &[String]) -> u64 {
    lines
        .iter()
        .map(|l| field(l, "global_load_bytes") + field(l, "global_store_bytes"))
        .sum()
}
pub mod conv_bn;
