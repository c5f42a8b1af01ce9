//! Softmax, log-softmax and softmax cross-entropy with label smoothing or soft targets, forward and
//! backward. Twin of `cuda/softmax_xent.cu`.
//!
//! The cross-entropy keeps only each row's log-sum-exp between forward and backward: the backward
//! rebuilds softmax from the logits, so probabilities are never stored.

use super::{c, Real};
use rayon::prelude::*;

/// log Σ exp(x), stable.
fn logsumexp<T: Real>(row: &[T]) -> T {
    let m = row.iter().copied().fold(T::neg_infinity(), T::max);
    if m == T::neg_infinity() {
        return m;
    }
    m + row.iter().map(|&v| (v - m).exp()).sum::<T>().ln()
}

/// Softmax (or log-softmax when `log`) over each row of length `len`.
pub fn softmax_rows<T: Real>(x: &[T], len: usize, log: bool, y: &mut [T]) {
    y.par_chunks_mut(len)
        .zip(x.par_chunks(len))
        .for_each(|(y, x)| {
            let lse = logsumexp(x);
            for (o, &v) in y.iter_mut().zip(x) {
                *o = if log { v - lse } else { (v - lse).exp() };
            }
        });
}

/// Softmax backward: dx = y ⊙ (dy - Σ dy⊙y); log-softmax: dx = dy - exp(y) Σ dy.
pub fn softmax_rows_bwd<T: Real>(y: &[T], dy: &[T], len: usize, log: bool, dx: &mut [T]) {
    dx.par_chunks_mut(len)
        .zip(y.par_chunks(len).zip(dy.par_chunks(len)))
        .for_each(|(dx, (y, dy))| {
            if log {
                let s: T = dy.iter().copied().sum();
                for ((o, &y), &g) in dx.iter_mut().zip(y).zip(dy) {
                    *o = g - y.exp() * s;
                }
            } else {
                let s: T = dy.iter().zip(y).map(|(&g, &y)| g * y).sum();
                for ((o, &y), &g) in dx.iter_mut().zip(y).zip(dy) {
                    *o = y * (g - s);
                }
            }
        });
}

/// Cross-entropy targets: class indices with label smoothing, or a distribution per row.
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a, T> {
    /// Class index per row and the smoothing factor (timm's LabelSmoothingCrossEntropy).
    Hard(&'a [i64], f64),
    /// A target distribution per row (Mixup/CutMix, timm's SoftTargetCrossEntropy).
    Soft(&'a [T]),
}

impl<T: Real> Targets<'_, T> {
    /// The target probability of class `k` in row `r` of `len` classes.
    #[inline(always)]
    pub(crate) fn q(&self, r: usize, k: usize, len: usize) -> T {
        match *self {
            Targets::Hard(t, s) => {
                let on = if t[r] as usize == k { 1.0 - s } else { 0.0 };
                c(on + s / len as f64)
            }
            Targets::Soft(q) => q[r * len + k],
        }
    }
}

/// Per-row loss -Σ q log softmax(x) and per-row log-sum-exp (kept for the backward).
pub fn xent_fwd<T: Real>(x: &[T], len: usize, targets: Targets<T>, loss: &mut [T], lse: &mut [T]) {
    loss.par_iter_mut()
        .zip(lse.par_iter_mut())
        .enumerate()
        .for_each(|(r, (loss, lse))| {
            let row = &x[r * len..][..len];
            *lse = logsumexp(row);
            *loss = row
                .iter()
                .enumerate()
                .map(|(k, &v)| targets.q(r, k, len) * (*lse - v))
                .sum();
        });
}

/// `dx = scale\[r\] · (softmax(x)·Σq - q)`, recomputing softmax from the saved log-sum-exp (Σq is 1
/// for class indices; soft rows need not sum to 1).
pub fn xent_bwd<T: Real>(
    x: &[T],
    len: usize,
    targets: Targets<T>,
    lse: &[T],
    scale: &[T],
    dx: &mut [T],
) {
    dx.par_chunks_mut(len).enumerate().for_each(|(r, dx)| {
        let row = &x[r * len..][..len];
        let mass = match targets {
            Targets::Hard(..) => T::one(),
            Targets::Soft(q) => q[r * len..][..len].iter().copied().sum(),
        };
        for (k, (o, &v)) in dx.iter_mut().zip(row).enumerate() {
            *o = scale[r] * ((v - lse[r]).exp() * mass - targets.q(r, k, len));
        }
    });
}

/// Checks that every class index lies in 0..len; returns the first offender.
pub fn first_bad_target(t: &[i64], len: usize) -> Option<i64> {
    t.iter().copied().find(|&v| v < 0 || v as usize >= len)
}
