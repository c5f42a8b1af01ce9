//! The emulator's per-launch counters (`KILN_EMU_STATS`: one JSON object a line), for the tests
//! that judge kernels by what they launched, executed or moved.
#![allow(dead_code)]

use kiln_engine::{cuda, Conv2dParams};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// CUDA device 0, or `None` (the test skipped, the reason on stderr) where there is none.
pub fn cuda_device() -> Option<Arc<cuda::CudaDevice>> {
    match cuda::device(0) {
        Ok(d) => Some(d),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "skipped: {e}");
            None
        }
    }
}

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

/// Convolution parameters from (h, w) strides, paddings and dilations, and a group count.
pub fn conv2d_params(
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
) -> Conv2dParams {
    Conv2dParams {
        stride,
        padding,
        dilation,
        groups,
    }
}

/// A named convolution: input (NCHW), weight (OIHW) and parameters.
pub type ConvCase = (&'static str, [usize; 4], [usize; 4], Conv2dParams);

/// `x` convolved with `w` under square `stride`, `padding` and `dilation`, in the groups the
/// shapes imply (x's channels over w's input channels).
pub fn conv_case(
    name: &'static str,
    x: [usize; 4],
    w: [usize; 4],
    stride: usize,
    padding: usize,
    dilation: usize,
) -> ConvCase {
    let p = conv2d_params([stride; 2], [padding; 2], [dilation; 2], x[1] / w[1]);
    (name, x, w, p)
}
