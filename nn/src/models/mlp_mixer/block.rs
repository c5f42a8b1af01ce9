//! One mixer layer of whichever kind the model is built of.

use super::block_parts::BlockCfg;
use super::gating_block::SpatialGatingBlock;
use super::mixer_block::MixerBlock;
use super::res_block::ResBlock;
use super::MixerBlockKind;
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// A block of [`MixerBlockKind`] on `[B, N, C]` tokens.
#[derive(Children)]
pub(super) enum Block {
    /// MLP-Mixer's and gMixer's.
    Mixer(MixerBlock),
    /// ResMLP's.
    Res(ResBlock),
    /// gMLP's.
    SpatialGating(SpatialGatingBlock),
}

impl Block {
    /// A block of `bc` with stochastic depth `rate`.
    pub(super) fn new(bc: &BlockCfg, rate: f64) -> Result<Block> {
        Ok(match bc.kind {
            MixerBlockKind::Mixer | MixerBlockKind::GluMixer => {
                Block::Mixer(MixerBlock::new(bc, rate)?)
            }
            MixerBlockKind::Res { init_values } => {
                Block::Res(ResBlock::new(bc, init_values, rate)?)
            }
            MixerBlockKind::SpatialGating => {
                Block::SpatialGating(SpatialGatingBlock::new(bc, rate)?)
            }
        })
    }

    /// The block's stochastic-depth rate.
    pub(super) fn drop_path_rate(&self) -> f64 {
        match self {
            Block::Mixer(b) => b.drop_path.p,
            Block::Res(b) => b.drop_path.p,
            Block::SpatialGating(b) => b.drop_path.p,
        }
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Block::Mixer(b) => b.forward(x),
            Block::Res(b) => b.forward(x),
            Block::SpatialGating(b) => b.forward(x),
        }
    }

    crate::module::not_prunable!();
}
