//! timm's `MixerBlock` (MLP-Mixer, gMixer): an MLP across the tokens, then one across the
//! channels, each after a norm and added back through stochastic depth.

use super::block_parts::{drop_path, residual, BlockCfg};
use super::init;
use super::norm::MixerNorm;
use super::MixerBlockKind;
use crate::layers::{DropPath, Mlp, MlpAct, SwiGluMlp};
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// A `MixerBlock`'s MLP: timm's `Mlp` (GELU) or `GluMlp` (SiLU, the gate last).
#[derive(Debug, Clone, Children)]
enum MixerMlp {
    Plain(Mlp),
    Glu(SwiGluMlp),
}

impl MixerMlp {
    /// An MLP `dim` → `hidden` → `dim` of the block's kind, with timm's mixer init (and
    /// `GluMlp.init_weights`: the gate's half of `fc1` near zero with a bias of one).
    fn new(dim: usize, hidden: usize, glu: bool) -> Result<MixerMlp> {
        if !glu {
            let (fc1, fc2) = (
                init::linear(dim, hidden, true)?,
                init::linear(hidden, dim, true)?,
            );
            return Ok(MixerMlp::Plain(Mlp::from_linears(fc1, fc2, MlpAct::Gelu)));
        }
        let fc1 = init::glu_fc1(dim, hidden)?;
        let fc2 = init::linear(hidden / 2, dim, true)?;
        Ok(MixerMlp::Glu(SwiGluMlp::gate_last(fc1, fc2)))
    }
}

impl Module for MixerMlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            MixerMlp::Plain(m) => m.forward(x),
            MixerMlp::Glu(m) => m.forward(x),
        }
    }

    crate::module::not_prunable!();
}

/// timm's `MixerBlock` on `[B, N, C]` tokens: x + mlp_tokens(norm1(x)ᵀ)ᵀ, then
/// + mlp_channels(norm2(x)), each branch through stochastic depth.
#[derive(Children)]
pub(super) struct MixerBlock {
    #[child]
    norm1: MixerNorm,
    #[child]
    mlp_tokens: MixerMlp,
    #[child]
    norm2: MixerNorm,
    #[child]
    mlp_channels: MixerMlp,
    #[child]
    pub(super) drop_path: DropPath,
}

impl MixerBlock {
    /// The block of `bc` (`Mixer` or `GluMixer`) with stochastic depth `rate`.
    pub(super) fn new(bc: &BlockCfg, rate: f64) -> Result<MixerBlock> {
        let (affine, glu) = (bc.kind.affine(), bc.kind == MixerBlockKind::GluMixer);
        Ok(MixerBlock {
            norm1: MixerNorm::new(bc.dim, affine)?,
            mlp_tokens: MixerMlp::new(bc.seq_len, bc.tokens_hidden, glu)?,
            norm2: MixerNorm::new(bc.dim, affine)?,
            mlp_channels: MixerMlp::new(bc.dim, bc.channels_hidden, glu)?,
            drop_path: drop_path(rate),
        })
    }
}

impl Module for MixerBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let tokens = self.norm1.forward(x)?.transpose(1, 2)?;
        let mixed = self.mlp_tokens.forward(&tokens)?.transpose(1, 2)?;
        let x = residual(x, &mixed, &self.drop_path)?;
        let channels = self.mlp_channels.forward(&self.norm2.forward(&x)?)?;
        residual(&x, &channels, &self.drop_path)
    }

    crate::module::not_prunable!();
}
