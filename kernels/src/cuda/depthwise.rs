//! Launchers for `depthwise.cu`: depthwise convolution forward and input gradient, NCHW or NHWC,
//! a tile of outputs per block with its filters in shared memory. Twin of
//! [`crate::cpu::depthwise`]; the weight gradient runs `conv.cu`'s direct kernel.

use super::{DevPtr, Kernels};
use crate::cpu::depthwise::Depthwise;
use crate::Result;
use cudarc::driver::{DeviceRepr, LaunchConfig};

const FILE: &str = "depthwise.cu";

/// The most filter taps (KH·KW) the kernels stage in shared memory (`DW_MAX_TAPS`).
pub const MAX_TAPS: usize = 81;

/// Sizes of one depthwise convolution, as the kernels' `DwGeom`: n, c, then (h, w), (oh, ow),
/// (kh, kw), (sh, sw), (ph, pw) and (dh, dw), i32 each in that order.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct DwGeom {
    n: i32,
    c: i32,
    pairs: [[i32; 2]; 6],
}

// SAFETY: plain-old-data with the C layout the kernels declare (14 consecutive i32s).
unsafe impl DeviceRepr for DwGeom {}

impl DwGeom {
    fn new(d: &Depthwise) -> DwGeom {
        let g = &d.geom;
        let pair = |v: [usize; 2]| v.map(|x| x as i32);
        DwGeom {
            n: d.n as i32,
            c: g.c as i32,
            pairs: [g.hw, g.out, g.k, g.stride, g.pad, g.dil].map(pair),
        }
    }
}

/// Whether the kernels take `d` (at most [`MAX_TAPS`] taps, sizes within i32 and the grid).
pub fn supports(d: &Depthwise) -> bool {
    let g = &d.geom;
    let rows = d.n * g.out[0].max(g.hw[0]);
    g.k[0] * g.k[1] <= MAX_TAPS
        && d.n * g.c * g.hw[0] * g.hw[1] < i32::MAX as usize
        && rows < i32::MAX as usize
        && g.out[1].max(g.hw[1]).div_ceil(8) <= 65535
        && g.out[0].max(g.hw[0]).div_ceil(8) <= 65535
}

/// The grid over an output of `rows`×`cols` pixels per image.
fn grid(d: &Depthwise, [rows, cols]: [usize; 2], channels_last: bool) -> LaunchConfig {
    let dims = if channels_last {
        (d.n * rows, cols.div_ceil(8), d.geom.c.div_ceil(32))
    } else {
        (d.n * d.geom.c, rows.div_ceil(8), cols.div_ceil(32))
    };
    LaunchConfig {
        grid_dim: (dims.0 as u32, dims.1 as u32, dims.2 as u32),
        block_dim: (32, 8, 1),
        shared_mem_bytes: 0,
    }
}

/// One pass: `stem` "depthwise_fwd" (x → y) or "depthwise_bwd_data" (dy → dx).
fn pass(
    k: &Kernels,
    stem: &str,
    ty: &str,
    d: &Depthwise,
    channels_last: bool,
    (src, w, dst): (DevPtr, DevPtr, DevPtr),
    out: [usize; 2],
) -> Result<()> {
    if d.n * d.geom.c * out[0] * out[1] == 0 {
        return Ok(());
    }
    let layout = if channels_last { "nhwc" } else { "nchw" };
    let g = DwGeom::new(d);
    // SAFETY: src, w and dst hold the dense tensors `d` describes in `ty` (w as C·KH·KW); the
    // grid covers dst's pixels once; `supports(d)` held; the list matches the kernel.
    unsafe {
        k.launch(
            FILE,
            &format!("{stem}_{layout}_{ty}"),
            grid(d, out, channels_last),
            &[&src, &w, &dst, &g],
        )
    }
}

/// y = depthwise conv(x, w).
pub fn forward(
    k: &Kernels,
    ty: &str,
    d: &Depthwise,
    channels_last: bool,
    (x, w, y): (DevPtr, DevPtr, DevPtr),
) -> Result<()> {
    pass(
        k,
        "depthwise_fwd",
        ty,
        d,
        channels_last,
        (x, w, y),
        d.geom.out,
    )
}

/// dx from dy and w, each dx element gathering the outputs that read it.
pub fn backward_data(
    k: &Kernels,
    ty: &str,
    d: &Depthwise,
    channels_last: bool,
    (dy, w, dx): (DevPtr, DevPtr, DevPtr),
) -> Result<()> {
    let hw = d.geom.hw;
    pass(
        k,
        "depthwise_bwd_data",
        ty,
        d,
        channels_last,
        (dy, w, dx),
        hw,
    )
}
