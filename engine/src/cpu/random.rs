//! Philox draws that ops consume whole (dropout masks), the CPU twin of `rng.cu`.

use super::elementwise::cast;
use crate::{CpuStorage, DType, Layout, Result};
use kiln_kernels::cpu::philox;
use rayon::prelude::*;

/// `n` values of `dtype`: 1/(1-p) where the f32 uniform draw `i` of (seed, offset) is at least
/// p, else 0. The CUDA kernel keeps exactly the same elements.
pub fn dropout_mask(dtype: DType, seed: u64, offset: u64, p: f64, n: usize) -> Result<CpuStorage> {
    let scale = 1.0 / (1.0 - p);
    let v: Vec<f64> = (0..n as u64)
        .into_par_iter()
        .map(|i| {
            let u = philox::uniform(philox::bits(seed, offset, i)) as f32;
            if u >= p as f32 {
                scale
            } else {
                0.0
            }
        })
        .collect();
    Ok(cast(&CpuStorage::F64(v), &Layout::contiguous(&[n]), dtype)?.0)
}
