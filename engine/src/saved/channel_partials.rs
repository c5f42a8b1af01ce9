//! The per-channel partial statistics a convolution's epilogue leaves for the training BN that
//! follows it.

use crate::Storage;
use kiln_kernels::cuda::bn_relu::TilePartials;

/// Per-channel partial statistics of a convolution's output that its epilogue wrote (an f32
/// device buffer and how they lie in it), for a training BN of that output.
#[derive(Debug)]
pub struct ChannelPartials {
    /// The buffer `parts.ptr` points into (kept alive with it).
    pub buf: Storage,
    /// The layout of the partials.
    pub parts: TilePartials,
}
