//! Fused BatchNorm on the device.

use super::{unsupported, CudaStorage};
use crate::backend::{BnGrads, BnSaved};
use crate::Result;
use kiln_kernels::cpu::bn_relu::ChannelDims;

/// Batch statistics.
pub fn bn_stats(_x: &CudaStorage, _d: ChannelDims) -> Result<(CudaStorage, CudaStorage)> {
    unsupported("batch_norm")
}
/// Fused apply.
pub fn bn_apply(
    _x: &CudaStorage,
    _r: Option<&CudaStorage>,
    _scale: &CudaStorage,
    _shift: &CudaStorage,
    _relu: bool,
    _d: ChannelDims,
) -> Result<CudaStorage> {
    unsupported("batch_norm")
}
/// Fused backward.
pub fn bn_backward(_dy: &CudaStorage, _s: &BnSaved, _d: ChannelDims) -> Result<BnGrads> {
    unsupported("batch_norm")
}
