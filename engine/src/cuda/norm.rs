//! The fused BatchNorm(+residual)(+ReLU) on the device, NCHW or NHWC. Activations may be f16 or
//! bf16; per-channel vectors are then f32 (`dtype::stat_dtype`).

use super::elementwise::float_ty;
use super::CudaStorage;
use crate::dtype::stat_dtype;
use crate::saved::{BnGrads, BnRunning, BnSaved, BnStats};
use crate::{DType, Error, Result, Storage};
use kiln_kernels::cpu::bn_relu::ChannelDims;
use kiln_kernels::cuda::bn_relu::{self as k, BnBwd, TilePartials};
use kiln_kernels::cuda::Kernels;
use kiln_kernels::Result as KResult;

const OP: &str = "batch_norm running statistics";

/// Batch statistics and the forward's invstd, scale, shift from γ, β and eps; the same launch
/// updates the buffers of `run` (statistics dtype, i64 for the count).
pub fn bn_stats(
    x: &CudaStorage,
    d: ChannelDims,
    run: BnRunning,
    gbe: (&CudaStorage, &CudaStorage, f64),
) -> Result<BnStats> {
    let ty = float_ty("batch_norm", x.dtype())?;
    stats_with(x, d, run, gbe, |kern, out, running, affine| {
        k::bn_stats(kern, ty, x.ptr(), d, out, running, affine)
    })
}

/// [`bn_stats`] from the partials a convolution's epilogue wrote for x (f16/bf16/f32 x only,
/// whose statistics are f32): one `bn_finalize_tiles` launch, x not read.
pub fn bn_stats_from_partials(
    x: &CudaStorage,
    parts: &TilePartials,
    d: ChannelDims,
    run: BnRunning,
    gbe: (&CudaStorage, &CudaStorage, f64),
) -> Result<BnStats> {
    if stat_dtype(x.dtype()) != DType::F32 {
        return Err(Error::InvalidArgument {
            op: "batch_norm",
            msg: format!(
                "partial statistics need f32 statistics, not {:?}'s",
                x.dtype()
            ),
        });
    }
    stats_with(x, d, run, gbe, |kern, out, running, affine| {
        k::bn_stats_from_tiles(kern, parts, d, out, running, affine)
    })
}

/// Allocates the statistics' vectors, resolves the running buffers and γ, β to pointers, and
/// runs `launch` with them: (mean, var) out, the running buffers, the affine vectors.
fn stats_with(
    x: &CudaStorage,
    d: ChannelDims,
    run: BnRunning,
    (gamma, beta, eps): (&CudaStorage, &CudaStorage, f64),
    launch: impl FnOnce(&Kernels, (u64, u64), &k::BnRunning, &k::BnAffine) -> KResult<()>,
) -> Result<BnStats> {
    let stat = stat_dtype(x.dtype());
    let ptr = |s: Option<&CudaStorage>, dtype: DType, len: usize| -> Result<u64> {
        let Some(s) = s else { return Ok(0) };
        if s.dtype() != dtype || s.len() < len {
            return Err(Error::DTypeMismatch {
                op: OP,
                lhs: s.dtype(),
                rhs: dtype,
            });
        }
        Ok(s.ptr())
    };
    fn on_device(s: Option<&mut Storage>) -> Result<Option<&CudaStorage>> {
        s.map(|s| s.cuda(OP)).transpose()
    }
    let running = k::BnRunning {
        mean: ptr(on_device(run.mean)?, stat, d.c)?,
        var: ptr(on_device(run.var)?, stat, d.c)?,
        batches: ptr(on_device(run.batches)?, DType::I64, 1)?,
        momentum: run.momentum,
    };
    let vec = || CudaStorage::alloc(x.device(), stat, d.c);
    let (mean, var, invstd, scale, shift) = (vec()?, vec()?, vec()?, vec()?, vec()?);
    let affine = k::BnAffine {
        gamma: ptr(Some(gamma), stat, d.c)?,
        beta: ptr(Some(beta), stat, d.c)?,
        invstd: invstd.ptr(),
        scale: scale.ptr(),
        shift: shift.ptr(),
        eps,
    };
    launch(
        x.device().kernels(),
        (mean.ptr(), var.ptr()),
        &running,
        &affine,
    )?;
    let s = Storage::Cuda;
    Ok(BnStats {
        mean: s(mean),
        var: s(var),
        invstd: s(invstd),
        scale: s(scale),
        shift: s(shift),
    })
}

/// y = act(x·scale\[c\] + shift\[c\] + residual).
pub fn bn_apply(
    x: &CudaStorage,
    residual: Option<&CudaStorage>,
    scale: &CudaStorage,
    shift: &CudaStorage,
    relu: bool,
    d: ChannelDims,
) -> Result<CudaStorage> {
    let ty = float_ty("batch_norm", x.dtype())?;
    let y = CudaStorage::alloc(x.device(), x.dtype(), x.len())?;
    let res = residual.map(|r| r.ptr());
    let (xp, sc, sh) = (x.ptr(), scale.ptr(), shift.ptr());
    k::bn_act_fwd(
        x.device().kernels(),
        ty,
        (xp, res),
        (sc, sh),
        relu,
        d,
        y.ptr(),
    )?;
    Ok(y)
}

/// The fused backward: dx, dres (when the forward added a residual), dγ and dβ.
pub fn bn_backward(dy: &CudaStorage, s: &BnSaved, d: ChannelDims) -> Result<BnGrads> {
    let ty = float_ty("batch_norm_backward", dy.dtype())?;
    let dev = dy.device();
    let affine_ptr = |i: usize| -> Result<u64> {
        let a = s
            .affine
            .map(|a| a[i].cuda("batch_norm_backward"))
            .transpose()?;
        Ok(a.map_or(0, |a| a.ptr()))
    };
    let saved = BnBwd {
        x: s.x.cuda("batch_norm_backward")?.ptr(),
        y: s.y
            .map(|y| y.cuda("batch_norm_backward"))
            .transpose()?
            .map_or(0, |y| y.ptr()),
        scale: affine_ptr(0)?,
        shift: affine_ptr(1)?,
        mean: s.mean.cuda("batch_norm_backward")?.ptr(),
        invstd: s.invstd.cuda("batch_norm_backward")?.ptr(),
        gamma: s.gamma.cuda("batch_norm_backward")?.ptr(),
        relu: s.relu,
        training: s.training,
    };
    let dx = CudaStorage::alloc(dev, dy.dtype(), dy.len())?;
    let dres = s
        .has_residual
        .then(|| CudaStorage::alloc(dev, dy.dtype(), dy.len()))
        .transpose()?;
    let dgamma = CudaStorage::alloc(dev, stat_dtype(dy.dtype()), d.c)?;
    let dbeta = CudaStorage::alloc(dev, stat_dtype(dy.dtype()), d.c)?;
    k::bn_act_bwd(
        dev.kernels(),
        ty,
        dy.ptr(),
        &saved,
        d,
        (dx.ptr(), dres.as_ref().map(|r| r.ptr())),
        (dgamma.ptr(), dbeta.ptr()),
    )?;
    Ok(BnGrads {
        dx: Storage::Cuda(dx),
        dres: dres.map(Storage::Cuda),
        dgamma: Storage::Cuda(dgamma),
        dbeta: Storage::Cuda(dbeta),
    })
}
