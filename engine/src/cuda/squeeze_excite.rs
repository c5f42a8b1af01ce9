//! The fused squeeze-excite's feature-map passes on the device (`squeeze_excite.cu`); f16/bf16
//! activations keep their per-channel vectors in f32 (`dtype::stat_dtype`).

use super::elementwise::float_ty;
use super::CudaStorage;
use crate::dtype::stat_dtype;
use crate::{DType, Error, Result};
use kiln_kernels::cpu::bn_relu::ChannelDims;
use kiln_kernels::cuda::squeeze_excite as k;

fn ptr_or_null(s: Option<&CudaStorage>) -> u64 {
    s.map_or(0, CudaStorage::ptr)
}

/// An error unless every given operand is of `want` (the kernels read them as that type).
fn expect_dtype(want: DType, operands: &[Option<&CudaStorage>]) -> Result<()> {
    match operands.iter().flatten().find(|s| s.dtype() != want) {
        Some(s) => Err(Error::DTypeMismatch {
            op: "squeeze_excite",
            lhs: want,
            rhs: s.dtype(),
        }),
        None => Ok(()),
    }
}

/// `[N·C]` sums `scale · Σ_hw a·b` (b = 1 when absent) in the statistics dtype.
pub fn channel_sum(
    a: &CudaStorage,
    b: Option<&CudaStorage>,
    d: ChannelDims,
    scale: f64,
) -> Result<CudaStorage> {
    let ty = float_ty("squeeze_excite", a.dtype())?;
    expect_dtype(a.dtype(), &[b])?;
    let out = CudaStorage::alloc(a.device(), stat_dtype(a.dtype()), d.n * d.c)?;
    let ops = (a.ptr(), ptr_or_null(b));
    k::channel_sum(a.device().kernels(), ty, &d, ops, out.ptr(), scale)?;
    Ok(out)
}

/// `a · g[n, c] + add[n, c]` (no addend when absent), laid out as a; g and add in the statistics
/// dtype.
pub fn channel_apply(
    a: &CudaStorage,
    g: &CudaStorage,
    add: Option<&CudaStorage>,
    d: ChannelDims,
) -> Result<CudaStorage> {
    let ty = float_ty("squeeze_excite", a.dtype())?;
    expect_dtype(stat_dtype(a.dtype()), &[Some(g), add])?;
    let out = CudaStorage::alloc(a.device(), a.dtype(), a.len())?;
    let ops = (a.ptr(), g.ptr(), ptr_or_null(add));
    k::channel_apply(a.device().kernels(), ty, &d, ops, out.ptr())?;
    Ok(out)
}
