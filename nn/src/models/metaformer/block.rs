//! timm's `MetaFormerBlock`: x·res_scale1 + layer_scale1(drop_path(token_mixer(norm1(x)))), then
//! the same with norm2 and the MLP; on an NCHW map, or on `[B, N, C]` tokens in an attention
//! stage.

use super::config::{BlockNorm, MetaFormerCfg, Mixer};
use super::mixer::TokenMixer;
use super::mlp::Mlp;
use super::norm::Norm;
use super::scale::{scaled, Scale};
use crate::layers::DropPath;
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// One block of a stage `dim` wide.
#[derive(Children)]
pub(super) struct Block {
    #[child]
    norm1: Norm,
    #[child]
    token_mixer: TokenMixer,
    #[child]
    layer_scale1: Option<Scale>,
    #[child]
    res_scale1: Option<Scale>,
    #[child]
    norm2: Norm,
    #[child]
    mlp: Mlp,
    #[child]
    layer_scale2: Option<Scale>,
    #[child]
    res_scale2: Option<Scale>,
    #[child]
    pub(super) drop_path: DropPath,
}

/// What a stage's blocks share.
pub(super) struct BlockCfg {
    pub dim: usize,
    pub mixer: Mixer,
    pub norm: BlockNorm,
    /// The stage's residual scale (none without).
    pub res_scale: Option<f64>,
}

impl Block {
    /// A block of `bc` in a model of `mc`, with stochastic depth `drop_path`.
    pub(super) fn new(mc: &MetaFormerCfg, bc: &BlockCfg, drop_path: f64) -> Result<Block> {
        let (dim, nchw) = (bc.dim, bc.mixer != Mixer::Attention);
        let scale = |init: Option<f64>| init.map(|v| Scale::new(dim, v, nchw)).transpose();
        Ok(Block {
            norm1: Norm::new(bc.norm, dim, nchw)?,
            token_mixer: TokenMixer::new(bc.mixer, dim)?,
            layer_scale1: scale(mc.layer_scale)?,
            res_scale1: scale(bc.res_scale)?,
            norm2: Norm::new(bc.norm, dim, nchw)?,
            mlp: Mlp::new(dim, mc.act, mc.mlp_bias, nchw)?,
            layer_scale2: scale(mc.layer_scale)?,
            res_scale2: scale(bc.res_scale)?,
            drop_path: DropPath {
                p: drop_path,
                training: true,
            },
        })
    }

    /// res_scale(x) + layer_scale(drop_path(branch)).
    fn residual(
        &self,
        x: &Tensor,
        branch: &Tensor,
        res: Option<&Scale>,
        layer: Option<&Scale>,
    ) -> Result<Tensor> {
        let branch = scaled(layer, self.drop_path.forward(branch)?)?;
        Ok(scaled(res, x.clone())?.add(&branch)?)
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mixed = self.token_mixer.forward(&self.norm1.forward(x)?)?;
        let x = self.residual(
            x,
            &mixed,
            self.res_scale1.as_ref(),
            self.layer_scale1.as_ref(),
        )?;
        let mlp = self.mlp.forward(&self.norm2.forward(&x)?)?;
        self.residual(
            &x,
            &mlp,
            self.res_scale2.as_ref(),
            self.layer_scale2.as_ref(),
        )
    }
}
