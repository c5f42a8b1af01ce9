//! Launchers for `rng.cu`: Philox4x32-10 dropout masks, uniform and normal fills giving the CPU's
//! numbers for the same (seed, offset), with offsets in Philox blocks as the engine's `Generator`
//! hands them out. Twin of [`crate::cpu::philox`].

use super::{grid_1d, Arg, DevPtr, Kernels};
use crate::Result;

const FILE: &str = "rng.cu";

/// What [`fill`] draws.
#[derive(Debug, Clone, Copy)]
pub enum Dist {
    /// lo + (hi - lo)·uniform(bits(seed, offset, i)), computed in f64 as the twin.
    Uniform {
        /// The low end.
        lo: f64,
        /// The high end.
        hi: f64,
    },
    /// mean + std·normal(seed, offset, i) (Box-Muller in f64, as the twin).
    Normal {
        /// The mean.
        mean: f64,
        /// The standard deviation.
        std: f64,
    },
}

/// Launches `<kernel>_<ty>(u64 seed, u64 offset, a, b, T* out, i64 n)`, a thread for every
/// `per_thread` of the `n` elements.
///
/// # Safety
/// As [`Kernels::launch`]: `out` must hold `n` elements of `ty`, and `a` and `b` have the types
/// of the kernel's parameters.
unsafe fn launch(
    k: &Kernels,
    (kernel, ty, per_thread): (&str, &str, usize),
    (seed, offset): (u64, u64),
    [a, b]: [&dyn Arg; 2],
    (out, n): (DevPtr, usize),
) -> Result<()> {
    let n64 = n as i64;
    let name = format!("{kernel}_{ty}");
    let cfg = grid_1d(n.div_ceil(per_thread));
    // SAFETY: the caller guarantees the arguments match the kernel.
    unsafe { k.launch(FILE, &name, cfg, &[&seed, &offset, a, b, &out, &n64]) }
}

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
    let (p32, scale) = (p as f32, 1.0 / (1.0 - p));
    // SAFETY: out holds n elements of `ty`; matches `dropout_mask_<ty>(u64, u64, float, double,
    // T*, i64)`.
    unsafe {
        launch(
            k,
            ("dropout_mask", ty, 4),
            (seed, offset),
            [&p32, &scale],
            (out, n),
        )
    }
}

/// out\[i\] = draw i of `dist` for (seed, offset); `n` elements of `ty` (f32 f64 f16 bf16).
pub fn fill(
    k: &Kernels,
    ty: &str,
    seed: u64,
    offset: u64,
    dist: Dist,
    out: DevPtr,
    n: usize,
) -> Result<()> {
    // A Philox block gives four uniforms, or two normals.
    let (kernel, per_thread, a, b) = match dist {
        Dist::Uniform { lo, hi } => ("uniform", 4, lo, hi),
        Dist::Normal { mean, std } => ("normal", 2, mean, std),
    };
    // SAFETY: out holds n elements of `ty`; matches `uniform_<ty>` and `normal_<ty>(u64, u64,
    // double, double, T*, i64)`.
    unsafe {
        launch(
            k,
            (kernel, ty, per_thread),
            (seed, offset),
            [&a, &b],
            (out, n),
        )
    }
}
