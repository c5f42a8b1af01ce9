//! Pooling on the device (`pool.cu`); inputs are packed NCHW or NHWC, described by `Dims4`.

use super::elementwise::float_ty;
use super::CudaStorage;
use crate::cpu::pool::PoolKind;
use crate::{DType, Result};
use kiln_kernels::cpu::pool::Dims4;
use kiln_kernels::cuda::pool as k;

fn numel(d: Dims4) -> usize {
    d.size.iter().product()
}

/// Pools x into y (`yd`); returns y and, for max kinds, the argmax per output (else empty).
pub fn pool_fwd(
    x: &CudaStorage,
    xd: Dims4,
    yd: Dims4,
    kind: PoolKind,
) -> Result<(CudaStorage, CudaStorage)> {
    let ty = float_ty("pool2d", x.dtype())?;
    let (dev, n) = (x.device(), numel(yd));
    let y = CudaStorage::alloc(dev, x.dtype(), n)?;
    let max = matches!(kind, PoolKind::Max(_) | PoolKind::AdaptiveMax);
    let idx = CudaStorage::alloc(dev, DType::I64, if max { n } else { 0 })?;
    let (kk, xp, yp, ip) = (dev.kernels(), x.ptr(), y.ptr(), idx.ptr());
    match kind {
        PoolKind::Max(w) => k::max_pool_fwd(kk, ty, (xp, xd), (yp, yd), &w, ip)?,
        PoolKind::Avg(w, include_pad) => {
            k::avg_pool_fwd(kk, ty, (xp, xd), (yp, yd), &w, include_pad)?
        }
        PoolKind::AdaptiveAvg => k::adaptive_pool_fwd(kk, ty, (xp, xd), (yp, yd), false, None)?,
        PoolKind::AdaptiveMax => k::adaptive_pool_fwd(kk, ty, (xp, xd), (yp, yd), true, Some(ip))?,
    }
    Ok((y, idx))
}

/// dx from dy for the pooling `kind` (argmax `idx` for max kinds).
pub fn pool_bwd(
    dy: &CudaStorage,
    yd: Dims4,
    xd: Dims4,
    kind: PoolKind,
    idx: &CudaStorage,
) -> Result<CudaStorage> {
    let ty = float_ty("pool2d_backward", dy.dtype())?;
    let dev = dy.device();
    let dx = CudaStorage::alloc(dev, dy.dtype(), numel(xd))?;
    let (kk, gp, dp) = (dev.kernels(), dy.ptr(), dx.ptr());
    match kind {
        PoolKind::Max(w) => k::max_pool_bwd(kk, ty, (gp, yd), idx.ptr(), (dp, xd), Some(&w))?,
        PoolKind::AdaptiveMax => k::max_pool_bwd(kk, ty, (gp, yd), idx.ptr(), (dp, xd), None)?,
        PoolKind::Avg(w, include_pad) => {
            k::avg_pool_bwd(kk, ty, (gp, yd), (dp, xd), &w, include_pad)?
        }
        PoolKind::AdaptiveAvg => k::adaptive_avg_pool_bwd(kk, ty, (gp, yd), (dp, xd))?,
    }
    Ok(dx)
}
