//! LayerNorm's state across the backend boundary: what its backward reads and the gradients it
//! gives, generic over the storage type (`&Storage` at the boundary, each backend's own below it).

use crate::{DType, Result, Storage};

/// What LayerNorm's backward reads besides dy: the input, γ in the parameters' dtype (the
/// input's, or f32 for f16/bf16 input on CUDA), μ and rstd per row in the statistics dtype (f32
/// for half types).
pub struct LnSaved<S> {
    /// The LayerNorm input, dense rows.
    pub x: S,
    /// γ, when the forward had one.
    pub gamma: Option<S>,
    /// The dtype of γ and β, which dγ and dβ are written in.
    pub param_dtype: DType,
    /// Each row's mean.
    pub mean: S,
    /// Each row's 1/√(var + eps).
    pub rstd: S,
    /// Whether dγ and dβ are wanted (the forward had γ or β).
    pub affine: bool,
}

impl<'a> LnSaved<&'a Storage> {
    /// The same buffers on one backend, taken out by `pick` (which names the op on a mismatch).
    pub(crate) fn on<S>(&self, pick: impl Fn(&'a Storage) -> Result<S>) -> Result<LnSaved<S>> {
        Ok(LnSaved {
            x: pick(self.x)?,
            gamma: self.gamma.map(&pick).transpose()?,
            param_dtype: self.param_dtype,
            mean: pick(self.mean)?,
            rstd: pick(self.rstd)?,
            affine: self.affine,
        })
    }
}

/// The gradients of LayerNorm: dx as dy; dγ and dβ \[len\] in the parameters' dtype, when
/// wanted.
pub struct LnGrads<S> {
    /// Input gradient.
    pub dx: S,
    /// γ and β gradients.
    pub dparams: Option<(S, S)>,
}
