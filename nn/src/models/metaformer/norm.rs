//! The MetaFormer blocks' norms (timm's `GroupNorm1`, `GroupNorm1NoBias`, `LayerNorm2dNoBias`
//! and `LayerNormNoBias`), built from the shared layers.

use super::config::BlockNorm;
use crate::layers::{GroupNorm, LayerNorm, LayerNorm2d};
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// A block's norm, its tensors under its own name (`norm1.weight`, and `norm1.bias` for
/// `GroupNorm1`).
#[derive(Children)]
pub(super) enum Norm {
    /// One group over an NCHW map.
    Group(GroupNorm),
    /// Over the channels of an NCHW map.
    Layer2d(LayerNorm2d),
    /// Over the last dim of `[B, N, C]` tokens (an attention stage's).
    Layer(LayerNorm),
}

impl Norm {
    /// `kind` over `dim` channels, of a map (`nchw`) or of tokens.
    pub(super) fn new(kind: BlockNorm, dim: usize, nchw: bool) -> Result<Norm> {
        Ok(match (kind, nchw) {
            (BlockNorm::GroupNorm1, _) => Norm::Group(GroupNorm::with_groups(dim, 1)?),
            (BlockNorm::GroupNorm1NoBias, _) => Norm::Group(GroupNorm {
                eps: 1e-6,
                ..GroupNorm::with_groups(dim, 1)?.without_bias()
            }),
            (BlockNorm::LayerNormNoBias, true) => {
                Norm::Layer2d(LayerNorm2d::new(dim)?.without_bias())
            }
            (BlockNorm::LayerNormNoBias, false) => Norm::Layer(LayerNorm::new(dim)?.without_bias()),
        })
    }
}

impl Module for Norm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Norm::Group(n) => n.forward(x),
            Norm::Layer2d(n) => n.forward(x),
            Norm::Layer(n) => n.forward(x),
        }
    }
}
