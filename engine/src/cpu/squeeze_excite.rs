//! The fused squeeze-excite's feature-map passes on the CPU (f32, f64; half types run through
//! f32), over `kiln_kernels::cpu::squeeze_excite`.

use super::alloc;
use super::float_map;
use crate::{CpuStorage, Result, StorageElem};
use kiln_kernels::cpu::bn_relu::ChannelDims;
use kiln_kernels::cpu::squeeze_excite as k;
use kiln_kernels::cpu::{c, Real};

/// `[N·C]` sums `scale · Σ_hw a·b` (b = 1 when absent) in a's dtype.
pub fn channel_sum(
    a: &CpuStorage,
    b: Option<&CpuStorage>,
    d: ChannelDims,
    scale: f64,
) -> Result<CpuStorage> {
    Ok(float_map!("squeeze_excite", a, |v: T| {
        let b = operand::<T>(b)?;
        let mut out = vec![T::default(); d.n * d.c];
        k::channel_sum(v, b, d, c(scale), &mut out);
        out
    }))
}

/// `a · g[n, c] + add[n, c]` (no addend when absent), laid out as a.
pub fn channel_apply(
    a: &CpuStorage,
    g: &CpuStorage,
    add: Option<&CpuStorage>,
    d: ChannelDims,
) -> Result<CpuStorage> {
    Ok(float_map!("squeeze_excite", a, |v: T| {
        let (g, add) = (g.as_slice::<T>("squeeze_excite")?, operand::<T>(add)?);
        let mut out = alloc::zeroed(v.len());
        k::channel_apply(v, g, add, d, &mut out);
        out
    }))
}

fn operand<T: Real + StorageElem>(s: Option<&CpuStorage>) -> Result<Option<&[T]>> {
    s.map(|s| s.as_slice::<T>("squeeze_excite")).transpose()
}
