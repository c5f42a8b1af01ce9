//! timm's `SpatialGatingBlock` (gMLP): one gated MLP after a norm, added back through
//! stochastic depth.

use super::block_parts::{drop_path, residual, BlockCfg};
use super::gated_mlp::GatedMlp;
use super::norm::MixerNorm;
use crate::layers::DropPath;
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// timm's `SpatialGatingBlock` on `[B, N, C]` tokens: x + mlp_channels(norm(x)).
#[derive(Children)]
pub(super) struct SpatialGatingBlock {
    #[child]
    norm: MixerNorm,
    #[child]
    mlp_channels: GatedMlp,
    #[child]
    pub(super) drop_path: DropPath,
}

impl SpatialGatingBlock {
    /// The block of `bc` with stochastic depth `rate`.
    pub(super) fn new(bc: &BlockCfg, rate: f64) -> Result<SpatialGatingBlock> {
        Ok(SpatialGatingBlock {
            norm: MixerNorm::new(bc.dim, false)?,
            mlp_channels: GatedMlp::new(bc.dim, bc.channels_hidden, bc.seq_len)?,
            drop_path: drop_path(rate),
        })
    }
}

impl Module for SpatialGatingBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let branch = self.mlp_channels.forward(&self.norm.forward(x)?)?;
        residual(x, &branch, &self.drop_path)
    }

    crate::module::not_prunable!();
}
