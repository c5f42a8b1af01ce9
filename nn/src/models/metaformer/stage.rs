//! timm's `MetaFormerStage`: the downsampling conv (none where the width does not change), then
//! the blocks, on the NCHW map or, in an attention stage, on its `[B, H·W, C]` tokens.

use super::block::{Block, BlockCfg};
use super::config::{MetaFormerCfg, Mixer};
use super::stem::Downsampling;
use crate::layers::{checkpoint_seq, Checkpointed};
use crate::{Children, Error, Module, Result};
use kiln_engine::Tensor;

/// One stage, its blocks each checkpointed with `grad_checkpointing`.
#[derive(Children)]
#[children(group)]
pub(super) struct Stage {
    #[child]
    downsample: Option<Downsampling>,
    #[child]
    pub(super) blocks: Vec<Checkpointed<Block>>,
    /// The blocks run on the map, not on tokens (timm's `use_nchw`: not an attention stage).
    nchw: bool,
    pub(super) grad_checkpointing: bool,
}

impl Stage {
    /// Stage `i` of `mc` from `in_c` channels, its blocks' stochastic-depth `rates`.
    pub(super) fn new(mc: &MetaFormerCfg, i: usize, in_c: usize, rates: &[f64]) -> Result<Stage> {
        let dim = mc.dims[i];
        let bc = BlockCfg {
            dim,
            mixer: mc.mixers[i],
            norm: mc.norm,
            res_scale: mc.res_scale[i],
        };
        let blocks = rates
            .iter()
            .map(|&r| Block::new(mc, &bc, r).map(Checkpointed::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(Stage {
            downsample: (in_c != dim)
                .then(|| Downsampling::new(in_c, dim, mc.downsample_norm))
                .transpose()?,
            blocks,
            nchw: bc.mixer != Mixer::Attention,
            grad_checkpointing: false,
        })
    }

    /// `[B, C, H, W]` in, `[B, C', H', W']` out.
    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = match &self.downsample {
            Some(d) => d.forward(x)?,
            None => x.clone(),
        };
        if self.nchw {
            return checkpoint_seq(&self.blocks, x, self.grad_checkpointing);
        }
        let &[b, c, h, w] = x.shape() else {
            return Err(Error::BadArgument {
                model: "metaformer".into(),
                msg: format!("a stage takes [B, C, H, W] maps, got {:?}", x.shape()),
            });
        };
        let tokens = x.reshape(&[b, c, h * w])?.transpose(1, 2)?.contiguous()?;
        let tokens = checkpoint_seq(&self.blocks, tokens, self.grad_checkpointing)?;
        Ok(tokens
            .transpose(1, 2)?
            .contiguous()?
            .reshape(&[b, c, h, w])?)
    }
}
