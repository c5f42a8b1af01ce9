//! Softmax and the fused softmax cross-entropy on the device, over dense rows.

use super::elementwise::float_ty;
use super::CudaStorage;
use crate::dtype::stat_dtype;
use crate::{DType, Error, Result};
use kiln_kernels::cuda::softmax_xent::{self as k, XentTargets};
use kiln_kernels::cuda::RowDims;

/// Cross-entropy targets on the device.
#[derive(Clone, Copy)]
pub enum Targets<'a> {
    /// I64 class indices and the smoothing factor.
    Hard(&'a CudaStorage, f64),
    /// Target distributions in the logits' statistics dtype (f32 for f16/bf16).
    Soft(&'a CudaStorage),
}

impl Targets<'_> {
    /// The launchers' view of these targets for logits `x`, checking their dtypes.
    pub(crate) fn launch_arg(self, x: &CudaStorage) -> Result<XentTargets> {
        Ok(match self {
            Targets::Hard(labels, smoothing) => {
                if labels.dtype() != DType::I64 {
                    return Err(Error::UnsupportedDType {
                        op: "cross_entropy targets",
                        dtype: labels.dtype(),
                    });
                }
                XentTargets::Hard {
                    labels: labels.ptr(),
                    smoothing,
                }
            }
            Targets::Soft(probs) => {
                if probs.dtype() != stat_dtype(x.dtype()) {
                    return Err(Error::DTypeMismatch {
                        op: "cross_entropy",
                        lhs: stat_dtype(x.dtype()),
                        rhs: probs.dtype(),
                    });
                }
                XentTargets::Soft { probs: probs.ptr() }
            }
        })
    }
}

/// The rows of `len` that `s` holds.
pub(crate) fn row_dims(s: &CudaStorage, len: usize) -> RowDims {
    RowDims {
        rows: s.len() / len.max(1),
        len,
    }
}

/// Softmax (or log-softmax) over rows of `len`.
pub fn softmax(x: &CudaStorage, len: usize, log: bool) -> Result<CudaStorage> {
    let ty = float_ty("softmax", x.dtype())?;
    let y = CudaStorage::alloc(x.device(), x.dtype(), x.len())?;
    k::softmax_rows(
        x.device().kernels(),
        ty,
        x.ptr(),
        y.ptr(),
        row_dims(x, len),
        log,
    )?;
    Ok(y)
}

/// Softmax backward from the forward output y and dy.
pub fn softmax_bwd(
    y: &CudaStorage,
    dy: &CudaStorage,
    len: usize,
    log: bool,
) -> Result<CudaStorage> {
    let ty = float_ty("softmax_backward", y.dtype())?;
    let dx = CudaStorage::alloc(y.device(), y.dtype(), y.len())?;
    let d = row_dims(y, len);
    k::softmax_rows_bwd(
        y.device().kernels(),
        ty,
        (y.ptr(), dy.ptr()),
        dx.ptr(),
        d,
        log,
    )?;
    Ok(dx)
}

/// Per-row losses and log-sum-exps of logits \[rows, len\], in the statistics dtype (f32 for
/// f16/bf16 logits, which the kernel reads as they are).
pub fn xent_fwd(x: &CudaStorage, len: usize, t: Targets) -> Result<(CudaStorage, CudaStorage)> {
    let ty = float_ty("cross_entropy", x.dtype())?;
    let d = row_dims(x, len);
    let stat = stat_dtype(x.dtype());
    let (loss, lse) = (
        CudaStorage::alloc(x.device(), stat, d.rows)?,
        CudaStorage::alloc(x.device(), stat, d.rows)?,
    );
    let targets = t.launch_arg(x)?;
    let out = (loss.ptr(), lse.ptr());
    k::xent_fwd(x.device().kernels(), ty, x.ptr(), d, targets, out)?;
    Ok((loss, lse))
}

/// `dlogits = scale\[r\]·(softmax(x)·Σq - q)` from the saved log-sum-exps.
pub fn xent_bwd(
    x: &CudaStorage,
    len: usize,
    t: Targets,
    lse: &CudaStorage,
    scale: &CudaStorage,
) -> Result<CudaStorage> {
    let ty = float_ty("cross_entropy_backward", x.dtype())?;
    let d = row_dims(x, len);
    let dx = CudaStorage::alloc(x.device(), x.dtype(), x.len())?;
    let targets = t.launch_arg(x)?;
    let saved = (lse.ptr(), scale.ptr());
    k::xent_bwd(
        x.device().kernels(),
        ty,
        x.ptr(),
        d,
        targets,
        saved,
        dx.ptr(),
    )?;
    Ok(dx)
}
