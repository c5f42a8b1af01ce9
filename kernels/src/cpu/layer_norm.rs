//! LayerNorm over the last dim of dense rows, forward and backward. Twin of `cuda/layer_norm.cu`.
//!
//! The forward keeps each row's mean and 1/σ for the backward, which needs no other statistics:
//! with x̂ = (x − μ)·rstd and g = dy·γ, dx = rstd·(g − mean(g) − x̂·mean(g·x̂)); dγ and dβ are
//! column sums over rows, taken over fixed blocks of rows and then over the blocks in order, so
//! the result does not depend on how rayon splits the work.

use super::{c, f64_of, Real, PAR_GRAIN};
use rayon::prelude::*;

/// Rows summed into one partial of dγ and dβ.
const ROWS_PER_PARTIAL: usize = 64;

/// y = (x − μ)·rstd·γ + β per row of `len`, writing each row's μ and rstd = 1/√(σ² + eps)
/// (σ² biased, as PyTorch). `gamma` and `beta` have `len` values; `None` means 1 and 0.
pub fn layer_norm_fwd<T: Real>(
    x: &[T],
    len: usize,
    (gamma, beta): (Option<&[T]>, Option<&[T]>),
    eps: f64,
    y: &mut [T],
    (mean, rstd): (&mut [T], &mut [T]),
) {
    let len = len.max(1);
    let rows_per_task = (PAR_GRAIN / len).max(1);
    y.par_chunks_mut(len * rows_per_task)
        .zip(x.par_chunks(len * rows_per_task))
        .zip(mean.par_chunks_mut(rows_per_task))
        .zip(rstd.par_chunks_mut(rows_per_task))
        .for_each(|(((y, x), mean), rstd)| {
            for (((y, x), mu), rs) in y
                .chunks_mut(len)
                .zip(x.chunks(len))
                .zip(mean.iter_mut())
                .zip(rstd.iter_mut())
            {
                (*mu, *rs) = row_stats(x, eps);
                for (k, (o, &v)) in y.iter_mut().zip(x).enumerate() {
                    let g = gamma.map_or(T::one(), |g| g[k]);
                    let b = beta.map_or(T::zero(), |b| b[k]);
                    *o = (v - *mu) * *rs * g + b;
                }
            }
        });
}

/// A row's mean and 1/√(biased variance + eps), the variance from a second pass over x − μ, both
/// summed in f64 (a float32 sum along a GroupNorm's row of C·H·W values drifts by its length
/// times the rounding unit; PyTorch's cascaded sums do not).
fn row_stats<T: Real>(x: &[T], eps: f64) -> (T, T) {
    let n = x.len() as f64;
    let mu = x.iter().map(|&v| f64_of(v)).sum::<f64>() / n;
    let var = x.iter().map(|&v| (f64_of(v) - mu).powi(2)).sum::<f64>() / n;
    (c(mu), c((var + eps).sqrt().recip()))
}

/// dx (into `dx`) from x, dy and the forward's per-row μ and rstd; returns (dγ, dβ) summed over
/// rows (each `len` long).
pub fn layer_norm_bwd<T: Real>(
    x: &[T],
    dy: &[T],
    len: usize,
    gamma: Option<&[T]>,
    (mean, rstd): (&[T], &[T]),
    dx: &mut [T],
) -> (Vec<T>, Vec<T>) {
    let len = len.max(1);
    let block = len * ROWS_PER_PARTIAL;
    let partials: Vec<(Vec<T>, Vec<T>)> = dx
        .par_chunks_mut(block)
        .zip(x.par_chunks(block).zip(dy.par_chunks(block)))
        .zip(
            mean.par_chunks(ROWS_PER_PARTIAL)
                .zip(rstd.par_chunks(ROWS_PER_PARTIAL)),
        )
        .map(|((dx, (x, dy)), stats)| rows_bwd(x, dy, len, gamma, stats, dx))
        .collect();
    let mut dgamma = vec![T::zero(); len];
    let mut dbeta = vec![T::zero(); len];
    for (pg, pb) in partials {
        dgamma.iter_mut().zip(pg).for_each(|(s, v)| *s += v);
        dbeta.iter_mut().zip(pb).for_each(|(s, v)| *s += v);
    }
    (dgamma, dbeta)
}

/// The backward of a block of rows: writes dx and returns the block's dγ and dβ.
fn rows_bwd<T: Real>(
    x: &[T],
    dy: &[T],
    len: usize,
    gamma: Option<&[T]>,
    (mean, rstd): (&[T], &[T]),
    dx: &mut [T],
) -> (Vec<T>, Vec<T>) {
    let mut dgamma = vec![T::zero(); len];
    let mut dbeta = vec![T::zero(); len];
    let n = len as f64;
    let rows = dx.chunks_mut(len).zip(x.chunks(len).zip(dy.chunks(len)));
    for ((dx, (x, dy)), (&mu, &rs)) in rows.zip(mean.iter().zip(rstd)) {
        let (mut sum_g, mut sum_gx) = (0f64, 0f64);
        for k in 0..len {
            let xhat = (x[k] - mu) * rs;
            let g = dy[k] * gamma.map_or(T::one(), |g| g[k]);
            sum_g += f64_of(g);
            sum_gx += f64_of(g * xhat);
            dgamma[k] += dy[k] * xhat;
            dbeta[k] += dy[k];
        }
        let (mean_g, mean_gx): (T, T) = (c(sum_g / n), c(sum_gx / n));
        for k in 0..len {
            let xhat = (x[k] - mu) * rs;
            let g = dy[k] * gamma.map_or(T::one(), |g| g[k]);
            dx[k] = rs * (g - mean_g - xhat * mean_gx);
        }
    }
    (dgamma, dbeta)
}
