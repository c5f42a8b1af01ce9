//! Softmax and fused cross-entropy on the device.

use super::{unsupported, CudaStorage};
use crate::Result;

/// Cross-entropy targets on the device.
#[derive(Clone, Copy)]
pub enum Targets<'a> {
    /// I64 class indices and smoothing.
    Hard(&'a CudaStorage, f64),
    /// Soft target rows.
    Soft(&'a CudaStorage),
}

/// Softmax over rows.
pub fn softmax(_x: &CudaStorage, _len: usize, _log: bool) -> Result<CudaStorage> {
    unsupported("softmax")
}
/// Softmax backward.
pub fn softmax_bwd(
    _y: &CudaStorage,
    _dy: &CudaStorage,
    _len: usize,
    _log: bool,
) -> Result<CudaStorage> {
    unsupported("softmax")
}
/// Per-row loss and lse.
pub fn xent_fwd(_x: &CudaStorage, _len: usize, _t: Targets) -> Result<(CudaStorage, CudaStorage)> {
    unsupported("cross_entropy")
}
/// Logit gradient.
pub fn xent_bwd(
    _x: &CudaStorage,
    _len: usize,
    _t: Targets,
    _lse: &CudaStorage,
    _scale: &CudaStorage,
) -> Result<CudaStorage> {
    unsupported("cross_entropy")
}
