//! Binary cross-entropy with logits on the device, over dense rows. f16/bf16 logits are read as
//! they are; their losses, soft targets and scales are f32 (`dtype::stat_dtype`).

use super::elementwise::float_ty;
use super::softmax::{row_dims, Targets};
use super::CudaStorage;
use crate::dtype::stat_dtype;
use crate::{Error, Result};
use kiln_kernels::cpu::bce::BceOpts;
use kiln_kernels::cuda::bce as k;

/// Per-row sums of the elementwise loss of logits \[rows, len\], in the statistics dtype.
pub fn bce_fwd(x: &CudaStorage, len: usize, t: Targets, o: BceOpts) -> Result<CudaStorage> {
    let ty = float_ty("binary_cross_entropy", x.dtype())?;
    let d = row_dims(x, len);
    let loss = CudaStorage::alloc(x.device(), stat_dtype(x.dtype()), d.rows)?;
    let targets = t.launch_arg(x)?;
    let kernels = x.device().kernels();
    k::bce_fwd(kernels, ty, x.ptr(), d, targets, o, loss.ptr())?;
    Ok(loss)
}

/// `dlogits = scale\[r\]·((1 - y) - lw·σ(-x))`, with `scale` in the statistics dtype.
pub fn bce_bwd(
    x: &CudaStorage,
    len: usize,
    t: Targets,
    o: BceOpts,
    scale: &CudaStorage,
) -> Result<CudaStorage> {
    let ty = float_ty("binary_cross_entropy_backward", x.dtype())?;
    if scale.dtype() != stat_dtype(x.dtype()) {
        return Err(Error::DTypeMismatch {
            op: "binary_cross_entropy_backward",
            lhs: stat_dtype(x.dtype()),
            rhs: scale.dtype(),
        });
    }
    let d = row_dims(x, len);
    let dx = CudaStorage::alloc(x.device(), x.dtype(), x.len())?;
    let targets = t.launch_arg(x)?;
    let (kernels, xp, sp) = (x.device().kernels(), x.ptr(), scale.ptr());
    k::bce_bwd(kernels, ty, xp, d, targets, o, (sp, dx.ptr()))?;
    Ok(dx)
}
