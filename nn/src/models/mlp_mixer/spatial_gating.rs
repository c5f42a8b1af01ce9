//! gMLP's `SpatialGatingUnit`: half of the features gate the other half after a linear layer
//! across the tokens.

use super::init;
use crate::layers::{LayerNorm, Linear};
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// timm's `SpatialGatingUnit` on `[B, N, 2·G]` features: `u · proj(norm(v)ᵀ)ᵀ` for the halves
/// `u`, `v` (each G wide); `norm` is `nn.LayerNorm`'s (eps 1e-5).
#[derive(Children)]
pub(super) struct SpatialGatingUnit {
    #[child]
    norm: LayerNorm,
    #[child]
    proj: Linear,
}

impl SpatialGatingUnit {
    /// The gate of `dim` features (its halves `dim / 2` wide) over `seq_len` tokens, with its
    /// `init_weights` (the projection near zero with a bias of one: a gate of about one).
    pub(super) fn new(dim: usize, seq_len: usize) -> Result<SpatialGatingUnit> {
        Ok(SpatialGatingUnit {
            norm: LayerNorm::with_eps(dim / 2, 1e-5)?,
            proj: init::gate_proj(seq_len)?,
        })
    }
}

impl Module for SpatialGatingUnit {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let half = x.shape()[x.rank() - 1] / 2;
        let (u, v) = (x.narrow(-1, 0, half)?, x.narrow(-1, half, half)?);
        let v = self.norm.forward(&v)?.transpose(-1, -2)?;
        let v = self.proj.forward(&v)?.transpose(-1, -2)?;
        Ok(u.mul(&v)?)
    }

    crate::module::not_prunable!();
}
