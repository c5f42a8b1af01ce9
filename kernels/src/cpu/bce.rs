//! Binary cross-entropy with logits over the rows of a dense `[rows, len]` buffer, forward and
//! backward, with timm's `BinaryCrossEntropy` targets: class indices one-hot with label smoothing,
//! or soft rows, optionally binarized by a threshold, and a positive-class weight. Twin of
//! `cuda/bce.cu`.
//!
//! Per element, with lw = 1 + (pos_weight - 1)·y (PyTorch's `binary_cross_entropy_with_logits`):
//! loss = (1 - y)·x + lw·softplus(-x), dloss/dx = (1 - y) - lw·σ(-x). The forward writes only
//! each row's sum; the backward recomputes σ from the logits, so no probabilities are stored.

use super::softmax_xent::Targets;
use super::{c, Real};
use rayon::prelude::*;

/// What turns the class-index or soft targets into BCE's per-class targets, and the weighting.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BceOpts {
    /// Targets above this become 1, the others 0 (timm's `target_threshold`).
    pub threshold: Option<f64>,
    /// Weight of the positive term (timm's `pos_weight`; 1 when `None`).
    pub pos_weight: Option<f64>,
}

impl BceOpts {
    /// The binary target of class `k` in row `r` of `len` classes.
    #[inline(always)]
    fn target<T: Real>(&self, t: &Targets<T>, r: usize, k: usize, len: usize) -> T {
        let y = t.q(r, k, len);
        match self.threshold {
            Some(th) if y > c(th) => T::one(),
            Some(_) => T::zero(),
            None => y,
        }
    }

    /// The positive-term weight lw = 1 + (pos_weight - 1)·y.
    #[inline(always)]
    fn log_weight<T: Real>(&self, y: T) -> T {
        match self.pos_weight {
            Some(pw) => (c::<T>(pw) - T::one()) * y + T::one(),
            None => T::one(),
        }
    }
}

/// softplus(-x) = -log σ(x), without overflow.
#[inline(always)]
fn softplus_neg<T: Real>(x: T) -> T {
    (-x).max(T::zero()) + (-x.abs()).exp().ln_1p()
}

/// Per-row sums over `len` classes of the elementwise BCE-with-logits loss.
pub fn bce_fwd<T: Real>(x: &[T], len: usize, targets: Targets<T>, opts: BceOpts, loss: &mut [T]) {
    loss.par_iter_mut().enumerate().for_each(|(r, loss)| {
        let row = &x[r * len..][..len];
        *loss = row
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                let y = opts.target(&targets, r, k, len);
                (T::one() - y) * v + opts.log_weight(y) * softplus_neg(v)
            })
            .sum();
    });
}

/// `dx = scale\[r\]·((1 - y) - lw·σ(-x))`.
pub fn bce_bwd<T: Real>(
    x: &[T],
    len: usize,
    targets: Targets<T>,
    opts: BceOpts,
    scale: &[T],
    dx: &mut [T],
) {
    dx.par_chunks_mut(len).enumerate().for_each(|(r, dx)| {
        let row = &x[r * len..][..len];
        for (k, (o, &v)) in dx.iter_mut().zip(row).enumerate() {
            let y = opts.target(&targets, r, k, len);
            let sig_neg = T::one() / (T::one() + v.exp());
            *o = scale[r] * ((T::one() - y) - opts.log_weight(y) * sig_neg);
        }
    });
}
