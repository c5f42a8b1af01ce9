//! Pooling on the CPU; inputs are dense NCHW or NHWC (described by `Dims4`).

use super::alloc;
use super::float_map;
use crate::{CpuStorage, Result};
use kiln_kernels::cpu::pool::{self as k, Dims4, Window};

/// How a pooling op reduces its window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PoolKind {
    /// Max over the window (with dilation).
    Max(Window),
    /// Average over the window.
    Avg(Window, bool),
    /// Adaptive average to the output size.
    AdaptiveAvg,
    /// Adaptive max to the output size.
    AdaptiveMax,
}

/// Pools x into y (`yd`); returns y and, for max kinds, the argmax per output.
pub fn pool_fwd(
    x: &CpuStorage,
    xd: Dims4,
    yd: Dims4,
    kind: PoolKind,
) -> Result<(CpuStorage, Vec<i64>)> {
    let numel: usize = yd.size.iter().product();
    let mut idx = alloc::filled(numel, -1i64);
    let y = float_map!("pool2d", x, |v: T| {
        let mut y = alloc::zeroed(numel);
        match kind {
            PoolKind::Max(w) => k::max_pool_fwd(v, xd, &w, &mut y, yd, &mut idx),
            PoolKind::Avg(w, include_pad) => k::avg_pool_fwd(v, xd, &w, include_pad, &mut y, yd),
            PoolKind::AdaptiveAvg => k::adaptive_pool_fwd(v, xd, false, &mut y, yd, &mut idx),
            PoolKind::AdaptiveMax => k::adaptive_pool_fwd(v, xd, true, &mut y, yd, &mut idx),
        }
        y
    });
    Ok((y, idx))
}

/// dx from dy for the pooling `kind` (argmax `idx` for max kinds).
pub fn pool_bwd(
    dy: &CpuStorage,
    yd: Dims4,
    xd: Dims4,
    kind: PoolKind,
    idx: &[i64],
) -> Result<CpuStorage> {
    let numel: usize = xd.size.iter().product();
    Ok(float_map!("pool2d_backward", dy, |g: T| {
        let mut dx = alloc::zeroed(numel);
        match kind {
            PoolKind::Max(_) | PoolKind::AdaptiveMax => k::max_pool_bwd(g, yd, idx, &mut dx, xd),
            PoolKind::Avg(w, include_pad) => k::avg_pool_bwd(g, yd, &w, include_pad, &mut dx, xd),
            PoolKind::AdaptiveAvg => k::adaptive_avg_pool_bwd(g, yd, &mut dx, xd),
        }
        dx
    }))
}
