//! timm's `EvaBlock` (pre-norm, optional layer scale `gamma_1`, `gamma_2`) and
//! `EvaBlockPostNorm` (the norms after each branch, EVA-02 CLIP enormous's), with the MLP eva.py
//! picks: timm's `Mlp` (GELU), the packed SwiGLU (`GluMlp`) or the split one (`SwiGLU`, with
//! `scale_mlp`'s hidden LayerNorm or `swiglu_align_to`).

use super::attention::EvaAttention;
use crate::layers::{DropPath, LayerNorm};
use crate::models::vit::BlockMlp;
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// timm's `EvaBlock`: x + drop_path(gamma_1 · attn(norm1(x))), then
/// x + drop_path(gamma_2 · mlp(norm2(x))), each gamma where layer scale is on.
#[derive(Children)]
#[children(group)]
pub(super) struct EvaBlock {
    /// The attention branch's layer scale.
    #[param]
    pub gamma_1: Option<Tensor>,
    /// The MLP branch's layer scale.
    #[param]
    pub gamma_2: Option<Tensor>,
    #[child]
    pub norm1: LayerNorm,
    #[child]
    pub attn: EvaAttention,
    #[child]
    pub norm2: LayerNorm,
    #[child(flatten)]
    pub mlp: BlockMlp,
    #[child]
    pub drop_path: DropPath,
}

/// timm's `EvaBlockPostNorm`: x + drop_path(norm1(attn(x))), then x + drop_path(norm2(mlp(x))).
#[derive(Children)]
#[children(group)]
pub(super) struct EvaBlockPostNorm {
    #[child]
    pub attn: EvaAttention,
    #[child]
    pub norm1: LayerNorm,
    #[child(flatten)]
    pub mlp: BlockMlp,
    #[child]
    pub norm2: LayerNorm,
    #[child]
    pub drop_path: DropPath,
}

/// One block of either kind.
#[derive(Children)]
pub(super) enum Block {
    /// Pre-norm.
    Pre(EvaBlock),
    /// Post-norm.
    Post(EvaBlockPostNorm),
}

/// `x · gamma` where there is one, in x's dtype.
fn scaled(x: Tensor, gamma: &Option<Tensor>) -> Result<Tensor> {
    match gamma {
        Some(g) => Ok(x.mul(&g.to_dtype(x.dtype())?)?),
        None => Ok(x),
    }
}

impl Block {
    /// The block's attention, MLP and stochastic depth.
    pub fn parts(&mut self) -> (&mut EvaAttention, &mut BlockMlp, &mut DropPath) {
        match self {
            Block::Pre(b) => (&mut b.attn, &mut b.mlp, &mut b.drop_path),
            Block::Post(b) => (&mut b.attn, &mut b.mlp, &mut b.drop_path),
        }
    }

    /// The stochastic-depth rate.
    pub fn drop_rate(&self) -> f64 {
        match self {
            Block::Pre(b) => b.drop_path.p,
            Block::Post(b) => b.drop_path.p,
        }
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Block::Pre(b) => {
                let a = scaled(b.attn.forward(&b.norm1.forward(x)?)?, &b.gamma_1)?;
                let x = x.add(&b.drop_path.forward(&a)?)?;
                let m = scaled(b.mlp.forward(&b.norm2.forward(&x)?)?, &b.gamma_2)?;
                Ok(x.add(&b.drop_path.forward(&m)?)?)
            }
            Block::Post(b) => {
                let a = b.norm1.forward(&b.attn.forward(x)?)?;
                let x = x.add(&b.drop_path.forward(&a)?)?;
                let m = b.norm2.forward(&b.mlp.forward(&x)?)?;
                Ok(x.add(&b.drop_path.forward(&m)?)?)
            }
        }
    }

    crate::module::not_prunable!();
}
