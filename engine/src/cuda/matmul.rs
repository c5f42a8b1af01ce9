//! Matrix products on the device.

use super::{unsupported, CudaStorage};
use crate::{Layout, Result};

/// Batched matrix product of two rank-3 views.
pub fn bmm(_a: (&CudaStorage, &Layout), _b: (&CudaStorage, &Layout)) -> Result<CudaStorage> {
    unsupported("matmul")
}
