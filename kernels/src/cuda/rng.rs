//! Launchers for `rng.cu`: Philox4x32-10 dropout masks, uniform and normal fills giving the CPU's
//! numbers for the same (seed, offset), with offsets in Philox blocks as the engine's `Generator`
//! hands them out. Twin of [`crate::cpu::philox`].

use super::{grid_1d, DevPtr, Kernels};
use crate::Result;

const FILE: &str = "rng.cu";

/// out\[i\] = 1/(1-p) where f32(uniform(bits(seed, offset, i))) >= f32(p), else 0 (the engine's
/// keep decision, bit for bit); `n` elements of `ty` (f32 f64 f16 bf16).
pub fn dropout_mask(
    k: &Kernels,
    ty: &str,
    seed: u64,
    offset: u64,
    p: f64,
    out: DevPtr,
    n: usize,
) -> Result<()> {
    let (p32, scale, n64) = (p as f32, 1.0 / (1.0 - p), n as i64);
    // SAFETY: out holds n elements of `ty`; the list matches `dropout_mask_<ty>(u64, u64, float,
    // double, T*, i64)`.
    unsafe {
        k.launch(
            FILE,
            &format!("dropout_mask_{ty}"),
            grid_1d(n.div_ceil(4)),
            &[&seed, &offset, &p32, &scale, &out, &n64],
        )
    }
}

/// out\[i\] = lo + (hi - lo)·uniform(bits(seed, offset, i)), computed in f64 as the twin.
#[allow(clippy::too_many_arguments)]
pub fn uniform(
    k: &Kernels,
    ty: &str,
    seed: u64,
    offset: u64,
    lo: f64,
    hi: f64,
    out: DevPtr,
    n: usize,
) -> Result<()> {
    let n64 = n as i64;
    // SAFETY: out holds n elements of `ty`; the list matches `uniform_<ty>(u64, u64, double,
    // double, T*, i64)`.
    unsafe {
        k.launch(
            FILE,
            &format!("uniform_{ty}"),
            grid_1d(n.div_ceil(4)),
            &[&seed, &offset, &lo, &hi, &out, &n64],
        )
    }
}

/// out\[i\] = mean + std·normal(seed, offset, i) (Box-Muller in f64, as the twin).
#[allow(clippy::too_many_arguments)]
pub fn normal(
    k: &Kernels,
    ty: &str,
    seed: u64,
    offset: u64,
    mean: f64,
    std: f64,
    out: DevPtr,
    n: usize,
) -> Result<()> {
    let n64 = n as i64;
    // SAFETY: out holds n elements of `ty`; the list matches `normal_<ty>(u64, u64, double,
    // double, T*, i64)`.
    unsafe {
        k.launch(
            FILE,
            &format!("normal_{ty}"),
            grid_1d(n.div_ceil(2)),
            &[&seed, &offset, &mean, &std, &out, &n64],
        )
    }
}
