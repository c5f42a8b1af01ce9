//! LayerNorm over the last dim of dense rows on the device; f16/bf16 rows keep their statistics
//! and the γ/β gradients in f32 (`ops::norm::stat_dtype`).

use super::elementwise::float_ty;
use super::CudaStorage;
use crate::backend::{LnGrads, LnSaved};
use crate::ops::norm::stat_dtype;
use crate::Result;
use kiln_kernels::cuda::layer_norm::{self as k, LnInputs};

fn ptr_or_null(s: Option<&CudaStorage>) -> u64 {
    s.map_or(0, CudaStorage::ptr)
}

/// (y, μ, rstd) of rows of `len`; γ and β in x's dtype when given.
pub fn layer_norm_fwd(
    x: &CudaStorage,
    len: usize,
    gamma: Option<&CudaStorage>,
    beta: Option<&CudaStorage>,
    eps: f64,
) -> Result<(CudaStorage, CudaStorage, CudaStorage)> {
    let ty = float_ty("layer_norm", x.dtype())?;
    let rows = x.len() / len.max(1);
    let dev = x.device();
    let y = CudaStorage::alloc(dev, x.dtype(), x.len())?;
    let mean = CudaStorage::alloc(dev, stat_dtype(x.dtype()), rows)?;
    let rstd = CudaStorage::alloc(dev, stat_dtype(x.dtype()), rows)?;
    let inp = LnInputs {
        x: x.ptr(),
        gamma: ptr_or_null(gamma),
        beta: ptr_or_null(beta),
    };
    let stats = (mean.ptr(), rstd.ptr());
    k::layer_norm_fwd(dev.kernels(), ty, inp, y.ptr(), stats, rows, len, eps)?;
    Ok((y, mean, rstd))
}

/// dx, dγ and dβ from dy and what the forward saved.
pub fn layer_norm_bwd(
    dy: &CudaStorage,
    s: &LnSaved<&CudaStorage>,
    len: usize,
) -> Result<LnGrads<CudaStorage>> {
    let ty = float_ty("layer_norm_backward", dy.dtype())?;
    let rows = dy.len() / len.max(1);
    let (dev, stat) = (dy.device(), stat_dtype(dy.dtype()));
    let stats = (s.mean.ptr(), s.rstd.ptr());
    let dx = CudaStorage::alloc(dev, dy.dtype(), dy.len())?;
    let xg = (s.x.ptr(), ptr_or_null(s.gamma));
    k::layer_norm_bwd_dx(dev.kernels(), ty, xg, dy.ptr(), stats, dx.ptr(), rows, len)?;
    if !s.affine {
        return Ok(LnGrads { dx, dparams: None });
    }
    let scratch_len = k::params_scratch_len(rows, len);
    let part_g = CudaStorage::alloc(dev, stat, scratch_len)?;
    let part_b = CudaStorage::alloc(dev, stat, scratch_len)?;
    let dgamma = CudaStorage::alloc(dev, stat, len)?;
    let dbeta = CudaStorage::alloc(dev, stat, len)?;
    k::layer_norm_bwd_params(
        dev.kernels(),
        ty,
        (s.x.ptr(), dy.ptr()),
        stats,
        (part_g.ptr(), part_b.ptr()),
        (dgamma.ptr(), dbeta.ptr()),
        rows,
        len,
    )?;
    Ok(LnGrads {
        dx,
        dparams: Some((dgamma, dbeta)),
    })
}
