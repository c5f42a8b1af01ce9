//! LayerNorm over the last dim of dense rows on the device; f16/bf16 rows keep their statistics
//! in f32 (`dtype::stat_dtype`) and take γ and β in their own dtype or in f32 (autocast's
//! parameters), with dγ and dβ in the parameters' dtype.

use super::elementwise::float_ty;
use super::softmax::row_dims;
use super::storage::suffix;
use super::CudaStorage;
use crate::dtype::stat_dtype;
use crate::saved::{LnGrads, LnSaved};
use crate::{DType, Error, Result};
use kiln_kernels::cuda::layer_norm::{self as k, LnInputs};

fn ptr_or_null(s: Option<&CudaStorage>) -> u64 {
    s.map_or(0, CudaStorage::ptr)
}

/// The kernels' suffix for rows of `x` with parameters of `params`: x's dtype, or f32 for
/// f16/bf16 rows.
fn kernel_ty(op: &'static str, x: DType, params: DType) -> Result<String> {
    let ty = float_ty(op, x)?;
    let half_with_f32 = matches!(x, DType::F16 | DType::BF16) && params == DType::F32;
    if params != x && !half_with_f32 {
        return Err(Error::DTypeMismatch {
            op,
            lhs: x,
            rhs: params,
        });
    }
    Ok(k::suffix(ty, suffix(params)))
}

/// (y, μ, rstd) of rows of `len`; γ and β, when given, of one dtype: x's, or f32 for f16/bf16 x.
pub fn layer_norm_fwd(
    x: &CudaStorage,
    len: usize,
    gamma: Option<&CudaStorage>,
    beta: Option<&CudaStorage>,
    eps: f64,
) -> Result<(CudaStorage, CudaStorage, CudaStorage)> {
    const OP: &str = "layer_norm";
    let pdtype = gamma.or(beta).map_or(x.dtype(), CudaStorage::dtype);
    if let (Some(g), Some(b)) = (gamma, beta) {
        if g.dtype() != b.dtype() {
            return Err(Error::DTypeMismatch {
                op: OP,
                lhs: g.dtype(),
                rhs: b.dtype(),
            });
        }
    }
    let ty = kernel_ty(OP, x.dtype(), pdtype)?;
    let d = row_dims(x, len);
    let dev = x.device();
    let y = CudaStorage::alloc(dev, x.dtype(), x.len())?;
    let mean = CudaStorage::alloc(dev, stat_dtype(x.dtype()), d.rows)?;
    let rstd = CudaStorage::alloc(dev, stat_dtype(x.dtype()), d.rows)?;
    let inp = LnInputs {
        x: x.ptr(),
        gamma: ptr_or_null(gamma),
        beta: ptr_or_null(beta),
    };
    let stats = (mean.ptr(), rstd.ptr());
    k::layer_norm_fwd(dev.kernels(), &ty, inp, y.ptr(), stats, d, eps)?;
    Ok((y, mean, rstd))
}

/// dx, and dγ and dβ in `s.param_dtype`, from dy and what the forward saved.
pub fn layer_norm_bwd(
    dy: &CudaStorage,
    s: &LnSaved<&CudaStorage>,
    len: usize,
) -> Result<LnGrads<CudaStorage>> {
    const OP: &str = "layer_norm_backward";
    if let Some(g) = s.gamma.filter(|g| g.dtype() != s.param_dtype) {
        return Err(Error::DTypeMismatch {
            op: OP,
            lhs: s.param_dtype,
            rhs: g.dtype(),
        });
    }
    let ty = kernel_ty(OP, dy.dtype(), s.param_dtype)?;
    let d = row_dims(dy, len);
    let (dev, stat) = (dy.device(), stat_dtype(dy.dtype()));
    let stats = (s.mean.ptr(), s.rstd.ptr());
    let dx = CudaStorage::alloc(dev, dy.dtype(), dy.len())?;
    let xg = (s.x.ptr(), ptr_or_null(s.gamma));
    k::layer_norm_bwd_dx(dev.kernels(), &ty, xg, dy.ptr(), stats, dx.ptr(), d)?;
    if !s.affine {
        return Ok(LnGrads { dx, dparams: None });
    }
    let scratch_len = k::params_scratch_len(d.rows, len);
    let part_g = CudaStorage::alloc(dev, stat, scratch_len)?;
    let part_b = CudaStorage::alloc(dev, stat, scratch_len)?;
    let dgamma = CudaStorage::alloc(dev, s.param_dtype, len)?;
    let dbeta = CudaStorage::alloc(dev, s.param_dtype, len)?;
    k::layer_norm_bwd_params(
        dev.kernels(),
        &ty,
        (s.x.ptr(), dy.ptr()),
        stats,
        (part_g.ptr(), part_b.ptr()),
        (dgamma.ptr(), dbeta.ptr()),
        d,
    )?;
    Ok(LnGrads {
        dx,
        dparams: Some((dgamma, dbeta)),
    })
}
