//! timm's `create_attn(attn_layer, channels)`: a block's channel-attention module by name.

use super::{EcaModule, SqueezeExcite};
use crate::{Module, Result};

/// The attention layers a block may carry (timm's `attn_layer` strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttnLayer {
    /// `'se'`: timm's `SEModule` (rd ratio 1/16, ReLU, sigmoid gate).
    Se,
    /// `'eca'`: timm's `EcaModule`.
    Eca,
    /// `partial(get_attn('se'), rd_ratio=0.25)` (ResNet-RS): `SEModule` reducing to a quarter.
    SeQuarter,
}

impl AttnLayer {
    /// This attention module over `channels`, named `se` in the block as timm names it.
    pub fn create(self, channels: usize) -> Result<Box<dyn Module>> {
        Ok(match self {
            AttnLayer::Se => Box::new(SqueezeExcite::new(channels)?),
            AttnLayer::Eca => Box::new(EcaModule::new(channels)?),
            AttnLayer::SeQuarter => {
                // timm: make_divisible(channels * 0.25, 8, round_limit=0.)
                let rd = ((channels / 4 + 4) / 8 * 8).max(8);
                Box::new(SqueezeExcite::with_rd_channels(channels, rd)?)
            }
        })
    }
}
