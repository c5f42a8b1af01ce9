//! The squared L2 norm of a list of f32 tensors, in one pass (the global gradient norm that
//! `clip_grad_norm_` clips by). Twin of `cuda/grad_norm.cu`.

use super::PAR_GRAIN;
use rayon::prelude::*;

/// Σ over every tensor of Σ v², accumulated in f64.
pub fn sq_norm(tensors: &[&[f32]]) -> f64 {
    tensors
        .iter()
        .map(|t| {
            t.par_chunks(PAR_GRAIN)
                .map(|c| c.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>())
                .sum::<f64>()
        })
        .sum()
}
