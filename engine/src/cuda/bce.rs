//! Binary cross-entropy with logits on the device, over dense rows.

use super::softmax::Targets;
use super::CudaStorage;
use crate::{DType, Error, Result};
use kiln_kernels::cpu::bce::BceOpts;
use kiln_kernels::cuda::bce as k;

/// The kernels' dtype suffix: f32 or f64 (the tensor layer widens f16/bf16 logits first).
fn loss_ty(op: &'static str, dtype: DType) -> Result<&'static str> {
    match dtype {
        DType::F32 => Ok("f32"),
        DType::F64 => Ok("f64"),
        other => Err(Error::UnsupportedDType { op, dtype: other }),
    }
}

/// Per-row sums of the elementwise loss of logits \[rows, len\].
pub fn bce_fwd(x: &CudaStorage, len: usize, t: Targets, o: BceOpts) -> Result<CudaStorage> {
    let ty = loss_ty("binary_cross_entropy", x.dtype())?;
    let n = x.len() / len.max(1);
    let loss = CudaStorage::alloc(x.device(), x.dtype(), n)?;
    let targets = t.launch_arg(x)?;
    let kernels = x.device().kernels();
    k::bce_fwd(kernels, ty, x.ptr(), len, n, targets, o, loss.ptr())?;
    Ok(loss)
}

/// `dlogits = scale\[r\]·((1 - y) - lw·σ(-x))`.
pub fn bce_bwd(
    x: &CudaStorage,
    len: usize,
    t: Targets,
    o: BceOpts,
    scale: &CudaStorage,
) -> Result<CudaStorage> {
    let ty = loss_ty("binary_cross_entropy_backward", x.dtype())?;
    let n = x.len() / len.max(1);
    let dx = CudaStorage::alloc(x.device(), x.dtype(), x.len())?;
    let targets = t.launch_arg(x)?;
    let (kernels, xp, sp) = (x.device().kernels(), x.ptr(), scale.ptr());
    k::bce_bwd(kernels, ty, xp, len, n, targets, o, sp, dx.ptr())?;
    Ok(dx)
}
