//! Launchers for `bce.cu`: binary cross-entropy with logits over rows, the forward writing each
//! row's sum, the backward rebuilding targets and σ from labels and logits. Twin of
//! [`crate::cpu::bce`].

use super::softmax_xent::{launch_loss_rows, XentTargets};
use super::{Arg, DevPtr, Kernels, RowDims};
use crate::cpu::bce::BceOpts;
use crate::Result;

const FILE: &str = "bce.cu";

/// The kernels' (thresh, threshold, pos_weight) arguments; no weight is a weight of 1.
fn opts_args(o: BceOpts) -> (i32, f64, f64) {
    (
        o.threshold.is_some() as i32,
        o.threshold.unwrap_or(0.0),
        o.pos_weight.unwrap_or(1.0),
    )
}

/// loss\[r\] = Σ_k (1 - y)·x + lw·softplus(-x) over the rows `d` of logits of dtype `ty`;
/// loss and soft targets are in the accumulation type (f32 for f16/bf16 logits).
pub fn bce_fwd(
    k: &Kernels,
    ty: &str,
    x: DevPtr,
    d: RowDims,
    t: XentTargets,
    o: BceOpts,
    loss: DevPtr,
) -> Result<()> {
    let (thresh, threshold, pos_weight) = opts_args(o);
    let name = format!("bce_fwd_{ty}");
    let middle: [&dyn Arg; 4] = [&thresh, &threshold, &pos_weight, &loss];
    // SAFETY: x holds rows·len elements of `ty`, soft targets rows·len of its accumulation type A
    // (f32 for f16/bf16), labels rows i64s, loss rows of A; the list matches `bce_fwd_<ty>(const
    // T*, i64, i64, int, const i64*, double, const A*, int, double, double, A*, int)`. The unused
    // target pointer is null and never read.
    unsafe { launch_loss_rows(k, (FILE, &name), x, d, t, &middle) }
}

/// dx = scale\[r\]·((1 - y) - lw·σ(-x)) over the rows `d` of logits of dtype `ty`.
pub fn bce_bwd(
    k: &Kernels,
    ty: &str,
    x: DevPtr,
    d: RowDims,
    t: XentTargets,
    o: BceOpts,
    (scale, dx): (DevPtr, DevPtr),
) -> Result<()> {
    let (thresh, threshold, pos_weight) = opts_args(o);
    let name = format!("bce_bwd_{ty}");
    let middle: [&dyn Arg; 5] = [&thresh, &threshold, &pos_weight, &scale, &dx];
    // SAFETY: x and dx hold rows·len elements of `ty`, soft targets rows·len of its accumulation
    // type A, labels rows i64s, scale rows of A; the list matches `bce_bwd_<ty>(const T*, i64,
    // i64, int, const i64*, double, const A*, int, double, double, const A*, T*, int)`.
    unsafe { launch_loss_rows(k, (FILE, &name), x, d, t, &middle) }
}
