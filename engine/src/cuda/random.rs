//! Philox draws on the device (`rng.cu`), bit-identical in what they keep to the CPU's.

use super::elementwise::float_ty;
use super::{CudaDevice, CudaStorage};
use crate::{DType, Result};
use kiln_kernels::cuda::rng;
use std::sync::Arc;

/// `n` values of `dtype`: 1/(1-p) where uniform draw `i` of (seed, offset) is at least p, else 0.
pub fn dropout_mask(
    device: &Arc<CudaDevice>,
    dtype: DType,
    seed: u64,
    offset: u64,
    p: f64,
    n: usize,
) -> Result<CudaStorage> {
    let ty = float_ty("dropout", dtype)?;
    let out = CudaStorage::alloc(device, dtype, n)?;
    rng::dropout_mask(device.kernels(), ty, seed, offset, p, out.ptr(), n)?;
    Ok(out)
}
