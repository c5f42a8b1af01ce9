//! Pooling on the device.

use super::{unsupported, CudaStorage};
use crate::cpu::pool::PoolKind;
use crate::Result;
use kiln_kernels::cpu::pool::Dims4;

/// Forward; returns y and argmax indices.
pub fn pool_fwd(
    _x: &CudaStorage,
    _xd: Dims4,
    _yd: Dims4,
    _kind: PoolKind,
) -> Result<(CudaStorage, CudaStorage)> {
    unsupported("pool2d")
}
/// Input gradient.
pub fn pool_bwd(
    _dy: &CudaStorage,
    _yd: Dims4,
    _xd: Dims4,
    _kind: PoolKind,
    _idx: &CudaStorage,
) -> Result<CudaStorage> {
    unsupported("pool2d")
}
