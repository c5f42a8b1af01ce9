//! Launchers for `softmax_xent.cu`: softmax / log-softmax over rows, forward and backward, and the
//! fused cross-entropy whose backward rebuilds softmax from the saved log-sum-exp. Twin of
//! [`crate::cpu::softmax_xent`].

use super::reduce::rows_config;
use super::{Arg, DevPtr, Kernels, RowDims};
use crate::Result;

const FILE: &str = "softmax_xent.cu";

/// Cross-entropy targets on the device.
#[derive(Debug, Clone, Copy)]
pub enum XentTargets {
    /// One class index (i64) per row, and timm's label smoothing factor.
    Hard {
        /// Device address of `rows` i64 class indices.
        labels: DevPtr,
        /// Label smoothing in [0, 1).
        smoothing: f64,
    },
    /// A target distribution per row (Mixup/CutMix).
    Soft {
        /// Device address of `[rows, len]` probabilities of the logits' dtype.
        probs: DevPtr,
    },
}

impl XentTargets {
    /// The kernels' (mode, labels, smoothing, probs) arguments.
    pub(crate) fn args(self) -> (i32, DevPtr, f64, DevPtr) {
        match self {
            XentTargets::Hard { labels, smoothing } => (0, labels, smoothing, 0),
            XentTargets::Soft { probs } => (1, 0, 0.0, probs),
        }
    }
}

/// Launches a row-wise loss kernel `name` of `file` over the rows `d` of logits whose arguments
/// are `(x, len, rows, target mode, labels, smoothing, probs, middle..., warps)`.
///
/// # Safety
/// As [`Kernels::launch`]: `x` and the targets hold what `rows`×`len` addresses, and `middle`
/// matches the kernel's parameters between the targets and the warp count.
pub(crate) unsafe fn launch_loss_rows(
    k: &Kernels,
    (file, name): (&'static str, &str),
    x: DevPtr,
    d: RowDims,
    t: XentTargets,
    middle: &[&dyn Arg],
) -> Result<()> {
    let (cfg, warp) = rows_config(d.rows, d.len);
    let (mode, labels, smoothing, probs) = t.args();
    let (rows64, len64) = (d.rows as i64, d.len as i64);
    let head: [&dyn Arg; 7] = [&x, &len64, &rows64, &mode, &labels, &smoothing, &probs];
    let args: Vec<&dyn Arg> = head
        .into_iter()
        .chain(middle.iter().copied())
        .chain([&warp as &dyn Arg])
        .collect();
    // SAFETY: the caller guarantees the pointers and `middle` match the kernel.
    unsafe { k.launch(file, name, cfg, &args) }
}

/// Launches `<kernel>_<ty>` over the rows `d`: the pointers `ptrs`, then rows, len, `log` and
/// the warp count.
///
/// # Safety
/// As [`Kernels::launch`]: `ptrs` must be the kernel's pointer parameters, each holding rows·len
/// elements of `ty`.
unsafe fn launch_softmax(
    k: &Kernels,
    kernel: &str,
    ty: &str,
    ptrs: &[DevPtr],
    d: RowDims,
    log: bool,
) -> Result<()> {
    let (cfg, warp) = rows_config(d.rows, d.len);
    let (rows64, len64, log32) = (d.rows as i64, d.len as i64, log as i32);
    let tail: [&dyn Arg; 4] = [&rows64, &len64, &log32, &warp];
    let args: Vec<&dyn Arg> = ptrs.iter().map(|p| p as &dyn Arg).chain(tail).collect();
    // SAFETY: the caller guarantees the pointers match the kernel.
    unsafe { k.launch(FILE, &format!("{kernel}_{ty}"), cfg, &args) }
}

/// y = softmax(x) (log-softmax when `log`) over each of the rows `d`, dtype `ty`.
pub fn softmax_rows(
    k: &Kernels,
    ty: &str,
    x: DevPtr,
    y: DevPtr,
    d: RowDims,
    log: bool,
) -> Result<()> {
    // SAFETY: x and y hold rows·len elements of `ty`; matches `softmax_rows_<ty>(const T*, T*,
    // i64, i64, int, int)`.
    unsafe { launch_softmax(k, "softmax_rows", ty, &[x, y], d, log) }
}

/// dx from the forward output y and dy: y ⊙ (dy - Σ dy⊙y), or dy - exp(y)·Σ dy when `log`.
pub fn softmax_rows_bwd(
    k: &Kernels,
    ty: &str,
    (y, dy): (DevPtr, DevPtr),
    dx: DevPtr,
    d: RowDims,
    log: bool,
) -> Result<()> {
    // SAFETY: y, dy and dx hold rows·len elements of `ty`; matches `softmax_rows_bwd_<ty>(const
    // T*, const T*, T*, i64, i64, int, int)`.
    unsafe { launch_softmax(k, "softmax_rows_bwd", ty, &[y, dy, dx], d, log) }
}

/// Per-row loss -Σ q·log softmax(x) and log-sum-exp of the rows `d` of logits, in one pass;
/// loss, lse and soft targets are in the accumulation type (f32 for f16/bf16 logits).
pub fn xent_fwd(
    k: &Kernels,
    ty: &str,
    x: DevPtr,
    d: RowDims,
    t: XentTargets,
    (loss, lse): (DevPtr, DevPtr),
) -> Result<()> {
    let name = format!("xent_fwd_{ty}");
    // SAFETY: x holds rows·len elements of `ty`, soft targets rows·len of its accumulation type
    // A (f32 for f16/bf16), labels rows i64s, loss and lse rows of A; the list matches
    // `xent_fwd_<ty>(const T*, i64, i64, int, const i64*, double, const A*, A*, A*, int)`. The
    // unused target pointer is null and never read.
    unsafe { launch_loss_rows(k, (FILE, &name), x, d, t, &[&loss, &lse]) }
}

/// dx = scale\[r\]·(softmax(x)·Σq - q), softmax rebuilt from the forward's per-row `lse`.
pub fn xent_bwd(
    k: &Kernels,
    ty: &str,
    x: DevPtr,
    d: RowDims,
    t: XentTargets,
    (lse, scale): (DevPtr, DevPtr),
    dx: DevPtr,
) -> Result<()> {
    let name = format!("xent_bwd_{ty}");
    // SAFETY: x, dx hold rows·len elements of `ty`, soft targets rows·len of its accumulation
    // type A, labels rows i64s, lse and scale rows of A; the list matches `xent_bwd_<ty>(const
    // T*, i64, i64, int, const i64*, double, const A*, const A*, const A*, T*, int)`.
    unsafe { launch_loss_rows(k, (FILE, &name), x, d, t, &[&lse, &scale, &dx]) }
}
