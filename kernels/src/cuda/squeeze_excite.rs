//! Launchers for `squeeze_excite.cu`: the per-channel sums and the per-channel scale-and-shift
//! passes of the fused squeeze-excite, NCHW or NHWC. Twin of [`crate::cpu::squeeze_excite`].
//! Activations are f32, f64, f16 or bf16 (`ty`); per-channel vectors `[N·C]` are in the
//! accumulation type (f64 for f64, f32 otherwise).

use super::bn_relu::elementwise_args;
use super::{grid_1d, DevPtr, Kernels};
use crate::cpu::bn_relu::ChannelDims;
use crate::Result;
use cudarc::driver::LaunchConfig;

const FILE: &str = "squeeze_excite.cu";

/// `out[n·C + c] = scale · Σ_p a·b` over each (image, channel) plane; `b` = 0 means b = 1.
pub fn channel_sum(
    k: &Kernels,
    ty: &str,
    d: &ChannelDims,
    (a, b): (DevPtr, DevPtr),
    out: DevPtr,
    scale: f64,
) -> Result<()> {
    if d.n * d.c == 0 {
        return Ok(());
    }
    let cfg = if d.channels_last {
        LaunchConfig {
            grid_dim: (d.c.div_ceil(32) as u32, d.n as u32, 1),
            block_dim: (32, 8, 1),
            shared_mem_bytes: 0,
        }
    } else {
        LaunchConfig {
            grid_dim: ((d.n * d.c) as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        }
    };
    let (c, hw, cl) = (d.c as i64, d.hw as i64, d.channels_last as i32);
    // SAFETY: a (and b unless null) hold n·c·hw elements of `ty`, out n·c of the accumulation
    // type; the grid covers every (n, c) once; the list matches `se_channel_sum_<ty>`.
    unsafe {
        k.launch(
            FILE,
            &format!("se_channel_sum_{ty}"),
            cfg,
            &[&a, &b, &out, &c, &hw, &cl, &scale],
        )
    }
}

/// `out = a · g[n·C + c] + add[n·C + c]` elementwise; `add` = 0 means no addend.
pub fn channel_apply(
    k: &Kernels,
    ty: &str,
    d: &ChannelDims,
    (a, g, add): (DevPtr, DevPtr, DevPtr),
    out: DevPtr,
) -> Result<()> {
    let total = d.n * d.c * d.hw;
    if total == 0 {
        return Ok(());
    }
    let (total64, c, hw, cl) = elementwise_args(d);
    // SAFETY: a and out hold n·c·hw elements of `ty`, g (and add unless null) n·c of the
    // accumulation type; the list matches `se_channel_apply_<ty>`.
    unsafe {
        k.launch(
            FILE,
            &format!("se_channel_apply_{ty}"),
            grid_1d(total),
            &[&a, &g, &add, &out, &total64, &c, &hw, &cl],
        )
    }
}
