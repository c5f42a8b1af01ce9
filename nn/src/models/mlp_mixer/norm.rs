//! A mixer's `norm_layer`: a LayerNorm (eps 1e-6) or ResMLP's `Affine`.

use super::affine::Affine;
use crate::layers::LayerNorm;
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// The norm of the blocks, the stem (with `stem_norm`) and the features.
#[derive(Debug, Clone, Children)]
pub(super) enum MixerNorm {
    /// `partial(nn.LayerNorm, eps=1e-6)`.
    Layer(LayerNorm),
    /// `Affine`.
    Affine(Affine),
}

impl MixerNorm {
    /// The norm of `dim` channels: `Affine` where `affine`, else a LayerNorm.
    pub(super) fn new(dim: usize, affine: bool) -> Result<MixerNorm> {
        Ok(match affine {
            true => MixerNorm::Affine(Affine::new(dim)?),
            false => MixerNorm::Layer(LayerNorm::with_eps(dim, 1e-6)?),
        })
    }
}

impl Module for MixerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            MixerNorm::Layer(n) => n.forward(x),
            MixerNorm::Affine(n) => n.forward(x),
        }
    }

    crate::module::not_prunable!();
}
