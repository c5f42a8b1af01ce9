//! Convolutions on the device.

use super::{unsupported, CudaStorage};
use crate::cpu::conv::ConvShape;
use crate::Result;

/// Forward.
pub fn conv2d_fwd(_x: &CudaStorage, _w: &CudaStorage, _s: &ConvShape) -> Result<CudaStorage> {
    unsupported("conv2d")
}
/// Input gradient.
pub fn conv2d_bwd_data(_dy: &CudaStorage, _w: &CudaStorage, _s: &ConvShape) -> Result<CudaStorage> {
    unsupported("conv2d")
}
/// Weight gradient.
pub fn conv2d_bwd_filter(
    _x: &CudaStorage,
    _dy: &CudaStorage,
    _s: &ConvShape,
) -> Result<CudaStorage> {
    unsupported("conv2d")
}
