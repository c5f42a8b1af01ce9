//! The blocks' token mixers (timm's `token_mixers`): pooling, the separable conv, attention.

use super::attention::Attention;
use super::config::Mixer;
use super::sep_conv::SepConv;
use crate::{Children, Module, Result};
use kiln_engine::{Pool2d, Tensor};

/// A block's `token_mixer`.
#[derive(Children)]
pub(super) enum TokenMixer {
    /// timm's `Pooling`: avg_pool3×3(x) − x, the padding left out of each average.
    Pooling,
    /// timm's `SepConv`.
    SepConv(SepConv),
    /// timm's `Attention`, on tokens.
    Attention(Attention),
}

impl TokenMixer {
    /// The mixer `kind` of `dim` channels.
    pub(super) fn new(kind: Mixer, dim: usize) -> Result<TokenMixer> {
        Ok(match kind {
            Mixer::Pooling => TokenMixer::Pooling,
            Mixer::SepConv => TokenMixer::SepConv(SepConv::new(dim)?),
            Mixer::Attention => TokenMixer::Attention(Attention::new(dim)?),
        })
    }
}

impl Module for TokenMixer {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            TokenMixer::Pooling => {
                let pool = Pool2d {
                    count_include_pad: false,
                    ..Pool2d::new(3, 1, 1)
                };
                Ok(x.avg_pool2d(pool)?.sub(x)?)
            }
            TokenMixer::SepConv(m) => m.forward(x),
            TokenMixer::Attention(m) => m.forward(x),
        }
    }
}
