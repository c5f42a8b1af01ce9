//! Softmax and fused softmax cross-entropy on the CPU, over the last dim of a dense buffer.

use super::alloc;
use super::{float_map, float_map2};
use crate::{CpuStorage, Error, Result};
use kiln_kernels::cpu::softmax_xent::{self as k, Targets};

/// Softmax (or log-softmax) over rows of `len`.
pub fn softmax(x: &CpuStorage, len: usize, log: bool) -> Result<CpuStorage> {
    Ok(float_map!("softmax", x, |v: T| {
        let mut y = alloc::zeroed(v.len());
        k::softmax_rows(v, len, log, &mut y);
        y
    }))
}

/// Softmax backward from the forward output y and dy.
pub fn softmax_bwd(y: &CpuStorage, dy: &CpuStorage, len: usize, log: bool) -> Result<CpuStorage> {
    Ok(float_map2!("softmax_backward", y, dy, |yv, g: T| {
        let mut dx = alloc::zeroed(yv.len());
        k::softmax_rows_bwd(yv, g, len, log, &mut dx);
        dx
    }))
}

/// Cross-entropy targets as storage: class indices with smoothing, or soft target rows.
pub enum XentTargets<'a> {
    /// I64 class indices and the smoothing factor.
    Hard(&'a [i64], f64),
    /// Target distributions, same dtype as the logits.
    Soft(&'a CpuStorage),
}

/// The kernels' view of `t` for logits of type `T`.
pub(crate) fn targets<'a, T: crate::StorageElem>(t: &XentTargets<'a>) -> Result<Targets<'a, T>> {
    Ok(match *t {
        XentTargets::Hard(idx, s) => Targets::Hard(idx, s),
        XentTargets::Soft(q) => Targets::Soft(q.as_slice::<T>("cross_entropy soft targets")?),
    })
}

/// Checks that class-index targets lie in 0..len; `op` names the loss in the error.
pub(crate) fn check_labels(op: &'static str, t: &XentTargets, len: usize) -> Result<()> {
    if let XentTargets::Hard(idx, _) = t {
        if let Some(bad) = k::first_bad_target(idx, len) {
            return Err(Error::InvalidArgument {
                op,
                msg: format!("target {bad} out of range for {len} classes"),
            });
        }
    }
    Ok(())
}

/// Per-row losses and log-sum-exps of logits x [rows, len].
pub fn xent_fwd(x: &CpuStorage, len: usize, t: &XentTargets) -> Result<(CpuStorage, CpuStorage)> {
    let rows = x.len() / len.max(1);
    check_labels("cross_entropy", t, len)?;
    let lse_out;
    let loss = float_map!("cross_entropy", x, |v: T| {
        let (mut loss, mut lse) = (vec![T::default(); rows], vec![T::default(); rows]);
        k::xent_fwd(v, len, targets::<T>(t)?, &mut loss, &mut lse);
        lse_out = <T as crate::StorageElem>::wrap(lse);
        loss
    });
    Ok((loss, lse_out))
}

/// `dlogits = scale\[r\]·(softmax(x)·Σq - q)`.
pub fn xent_bwd(
    x: &CpuStorage,
    len: usize,
    t: &XentTargets,
    lse: &CpuStorage,
    scale: &CpuStorage,
) -> Result<CpuStorage> {
    Ok(float_map2!("cross_entropy_backward", x, lse, |v, l: T| {
        let mut dx = alloc::zeroed(v.len());
        k::xent_bwd(
            v,
            len,
            targets::<T>(t)?,
            l,
            scale.as_slice::<T>("cross_entropy_backward")?,
            &mut dx,
        );
        dx
    }))
}
