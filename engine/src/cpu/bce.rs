//! Binary cross-entropy with logits on the CPU, over the rows of a dense buffer.

use super::alloc;
use super::softmax::{check_labels, targets, XentTargets};
use super::{float_map, float_map2};
use crate::{CpuStorage, Result};
use kiln_kernels::cpu::bce::{self as k, BceOpts};

/// Per-row sums of the elementwise loss of logits x [rows, len].
pub fn bce_fwd(x: &CpuStorage, len: usize, t: &XentTargets, o: BceOpts) -> Result<CpuStorage> {
    let rows = x.len() / len.max(1);
    check_labels("binary_cross_entropy", t, len)?;
    Ok(float_map!("binary_cross_entropy", x, |v: T| {
        let mut loss = vec![T::default(); rows];
        k::bce_fwd(v, len, targets::<T>(t)?, o, &mut loss);
        loss
    }))
}

/// `dlogits = scale\[r\]·((1 - y) - lw·σ(-x))`.
pub fn bce_bwd(
    x: &CpuStorage,
    len: usize,
    t: &XentTargets,
    o: BceOpts,
    scale: &CpuStorage,
) -> Result<CpuStorage> {
    Ok(float_map2!(
        "binary_cross_entropy_backward",
        x,
        scale,
        |v, s: T| {
            let mut dx = alloc::zeroed(v.len());
            k::bce_bwd(v, len, targets::<T>(t)?, o, s, &mut dx);
            dx
        }
    ))
}
