//! The squared L2 norm of a list of f32 tensors, in one pass (the global gradient norm that
//! `clip_grad_norm_` clips by). Twin of `cuda/grad_norm.cu`.

use super::PAR_GRAIN;
use rayon::prelude::*;

/// Σ over every tensor of Σ v², accumulated in f64.
pub fn sq_norm(tensors: &[&[f32]]) -> f64 {
    tensors
        .iter()
        .map(|t| {
            // Summed in chunk order: a parallel `sum` groups by work-stealing.
            t.par_chunks(PAR_GRAIN)
                .map(|c| c.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>())
                .collect::<Vec<f64>>()
                .into_iter()
                .sum::<f64>()
        })
        .sum()
}

/// clip_grad_norm_'s factor from the global `norm`: max_norm / (norm + eps) when below 1, else
/// 1 (the gradients stay as they are). Twin of `clip_factor_f32`, which takes the norm as the
/// root of the partials added in f64 in the host's order.
pub fn clip_factor(norm: f64, max_norm: f64, eps: f64) -> f32 {
    let coef = max_norm / (norm + eps);
    if coef < 1.0 {
        coef as f32
    } else {
        1.0
    }
}
