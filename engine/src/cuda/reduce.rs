//! Reductions on the device.

use super::{unsupported, CudaStorage};
use crate::{Layout, Result};
use kiln_kernels::cpu::reduce::ReduceOp;

/// Reduces `dims` away.
pub fn reduce(
    _s: &CudaStorage,
    _l: &Layout,
    _dims: &[usize],
    _op: ReduceOp,
) -> Result<CudaStorage> {
    unsupported("reduce")
}

/// Index of the maximum along `dim`.
pub fn argmax(_s: &CudaStorage, _l: &Layout, _dim: usize) -> Result<CudaStorage> {
    unsupported("argmax")
}
