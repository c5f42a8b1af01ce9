//! Launchers for `grad_norm.cu`: per-chunk partial sums of g² over a list of f32 tensors, one
//! launch per 32 tensors. Twin of [`crate::cpu::grad_norm`].

use super::optim::{same_counts, tensor_lists};
use super::{DevPtr, Kernels};
use crate::Result;

const FILE: &str = "grad_norm.cu";

fn rows(grads: &[DevPtr], lens: &[usize]) -> Vec<([DevPtr; 1], usize)> {
    grads.iter().zip(lens).map(|(&g, &n)| ([g], n)).collect()
}

/// How many partial sums [`sq_norm_partials`] writes for tensors of `lens` elements.
pub fn partial_count(lens: &[usize]) -> Result<usize> {
    let rows = rows(&vec![0; lens.len()], lens);
    Ok(tensor_lists(&rows)?
        .iter()
        .map(|(_, cfg)| cfg.grid_dim.0 as usize)
        .sum())
}

/// Writes Σ g² of each chunk of every f32 tensor in `grads` to `partial`, which holds
/// [`partial_count`]`(lens)` f32s; their sum is the squared global norm.
pub fn sq_norm_partials(
    k: &Kernels,
    grads: &[DevPtr],
    lens: &[usize],
    partial: DevPtr,
) -> Result<()> {
    same_counts("sq_norm_partials", &[grads.len(), lens.len()])?;
    let mut out = partial;
    for (l, cfg) in tensor_lists(&rows(grads, lens))? {
        // SAFETY: every listed tensor has `len` f32 elements; `out` has room for this launch's
        // grid_dim.x partials (partial_count sums the same grids); the list matches
        // `sq_norm_partials_f32(TensorList<1>, float*)`.
        unsafe { k.launch(FILE, "sq_norm_partials_f32", cfg, &[&l, &out])? };
        out += cfg.grid_dim.0 as u64 * 4;
    }
    Ok(())
}

/// Writes to the f32 at `factor` clip_grad_norm_'s coefficient from the `count` partials of
/// [`sq_norm_partials`]: max_norm / (√Σ + eps) when below 1, else 1 (the twin's
/// [`crate::cpu::grad_norm::clip_factor`], with the same bits). One thread, for a CUDA graph.
pub fn clip_factor(
    k: &Kernels,
    partial: DevPtr,
    count: usize,
    max_norm: f64,
    eps: f64,
    factor: DevPtr,
) -> Result<()> {
    let count = i32::try_from(count)
        .map_err(|_| crate::Error::Launch(format!("clip_factor: {count} partials")))?;
    let cfg = cudarc::driver::LaunchConfig {
        grid_dim: (1, 1, 1),
        block_dim: (1, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: `partial` holds `count` f32s and `factor` one f32 (the caller's guarantee); the
    // list matches `clip_factor_f32(const float*, int, double, double, float*)`.
    unsafe {
        k.launch(
            FILE,
            "clip_factor_f32",
            cfg,
            &[&partial, &count, &max_norm, &eps, &factor],
        )
    }
}
