//! timm's `ResBlock` (ResMLP): a linear layer across the tokens, then an MLP across the
//! channels, each after an `Affine` norm, scaled by its layer scale and added back through
//! stochastic depth.

use super::block_parts::{drop_path, residual, BlockCfg};
use super::init;
use super::norm::MixerNorm;
use crate::layers::{layer_scale_gamma, scale_channels, DropPath, Linear, Mlp, MlpAct};
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// timm's `ResBlock` on `[B, N, C]` tokens: x + ls1·linear_tokens(norm1(x)ᵀ)ᵀ, then
/// + ls2·mlp_channels(norm2(x)), each branch through stochastic depth.
#[derive(Children)]
pub(super) struct ResBlock {
    #[param]
    ls1: Tensor,
    #[param]
    ls2: Tensor,
    #[child]
    norm1: MixerNorm,
    #[child]
    linear_tokens: Linear,
    #[child]
    norm2: MixerNorm,
    #[child]
    mlp_channels: Mlp,
    #[child]
    pub(super) drop_path: DropPath,
}

impl ResBlock {
    /// The block of `bc` with layer scales at `init_values` and stochastic depth `rate`.
    pub(super) fn new(bc: &BlockCfg, init_values: f64, rate: f64) -> Result<ResBlock> {
        let (dim, hidden) = (bc.dim, bc.channels_hidden);
        let (fc1, fc2) = (
            init::linear(dim, hidden, true)?,
            init::linear(hidden, dim, true)?,
        );
        Ok(ResBlock {
            ls1: layer_scale_gamma(dim, init_values)?,
            ls2: layer_scale_gamma(dim, init_values)?,
            norm1: MixerNorm::new(dim, true)?,
            linear_tokens: init::linear(bc.seq_len, bc.seq_len, false)?,
            norm2: MixerNorm::new(dim, true)?,
            mlp_channels: Mlp::from_linears(fc1, fc2, MlpAct::Gelu),
            drop_path: drop_path(rate),
        })
    }
}

impl Module for ResBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let tokens = self.norm1.forward(x)?.transpose(1, 2)?;
        let mixed = self.linear_tokens.forward(&tokens)?.transpose(1, 2)?;
        let x = residual(x, &scale_channels(&mixed, &self.ls1)?, &self.drop_path)?;
        let channels = self.mlp_channels.forward(&self.norm2.forward(&x)?)?;
        residual(&x, &scale_channels(&channels, &self.ls2)?, &self.drop_path)
    }

    crate::module::not_prunable!();
}
