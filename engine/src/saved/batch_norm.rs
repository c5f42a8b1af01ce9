//! The fused BatchNorm's state across the backend boundary: the running buffers its statistics
//! pass updates, the statistics it returns, what its backward reads and the gradients it gives.

use crate::Storage;

/// The gradients of the fused BatchNorm.
pub struct BnGrads {
    /// Input gradient, laid out as the input.
    pub dx: Storage,
    /// Residual gradient, when the forward added one.
    pub dres: Option<Storage>,
    /// γ gradient \[C\].
    pub dgamma: Storage,
    /// β gradient \[C\].
    pub dbeta: Storage,
}

/// The buffers a training BN's statistics pass updates in place: dense running mean and
/// variance \[C\] in the statistics' dtype and num_batches_tracked (one i64), each optional.
#[derive(Default)]
pub struct BnRunning<'a> {
    /// Running mean, blended with the batch mean by `momentum`.
    pub mean: Option<&'a mut Storage>,
    /// Running variance, blended with the unbiased batch variance by `momentum`.
    pub var: Option<&'a mut Storage>,
    /// num_batches_tracked, incremented.
    pub batches: Option<&'a mut Storage>,
    /// Running-average factor.
    pub momentum: f64,
}

/// A training BN's batch statistics and the per-channel vectors its forward applies, dense \[C\]
/// in the statistics' dtype, all from one statistics pass.
pub struct BnStats {
    /// Batch mean.
    pub mean: Storage,
    /// Biased batch variance.
    pub var: Storage,
    /// 1/√(var + eps).
    pub invstd: Storage,
    /// γ·invstd.
    pub scale: Storage,
    /// β - mean·scale.
    pub shift: Storage,
}

/// What the BN backward reads besides the incoming gradient; per-channel vectors are dense \[C\]
/// storages of the input's dtype.
pub struct BnSaved<'a> {
    /// The BN input.
    pub x: &'a Storage,
    /// The forward output; none where it was never stored (a convolution's BN prologue): the
    /// ReLU mask is then recomputed from x and `affine` (CUDA).
    pub y: Option<&'a Storage>,
    /// scale = γ·invstd and shift = β - mean·scale of the forward, for a missing `y`.
    pub affine: Option<[&'a Storage; 2]>,
    /// Mean the forward normalized with.
    pub mean: &'a Storage,
    /// 1/√(var+eps) the forward normalized with.
    pub invstd: &'a Storage,
    /// γ (ones without affine weight).
    pub gamma: &'a Storage,
    /// Whether a ReLU followed.
    pub relu: bool,
    /// Whether batch statistics were used.
    pub training: bool,
    /// Whether a residual was added.
    pub has_residual: bool,
}
