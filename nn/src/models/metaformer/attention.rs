//! timm's MetaFormer `Attention`: multi-head self-attention of 32-wide heads, without biases
//! (CAFormer's token mixer in its last two stages).

use crate::layers::{attend_heads, split_heads, Linear};
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// Every head's width (timm's `head_dim`).
pub(super) const HEAD_DIM: usize = 32;

/// proj(softmax(q·kᵀ/√32)·v) over `[B, N, C]` tokens, one fused attention call for the
/// `C / 32` heads (at least one); `qkv` and `proj` bias-free.
#[derive(Children)]
pub(super) struct Attention {
    #[child]
    qkv: Linear,
    #[child]
    proj: Linear,
}

impl Attention {
    /// The attention of `dim`-wide tokens with timm's trunc-normal (.02) init.
    pub(super) fn new(dim: usize) -> Result<Attention> {
        let width = (dim / HEAD_DIM).max(1) * HEAD_DIM;
        let unbiased = |i: usize, o: usize| -> Result<Linear> {
            let mut l = Linear::trunc_normal(i, o, 0.02)?;
            l.bias = None;
            Ok(l)
        };
        Ok(Attention {
            qkv: unbiased(dim, 3 * width)?,
            proj: unbiased(width, dim)?,
        })
    }
}

impl Module for Attention {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let heads = self.qkv.out_features() / (3 * HEAD_DIM);
        let qkv = split_heads(&self.qkv.forward(x)?, 3, heads)?;
        self.proj.forward(&attend_heads(&qkv[0], &qkv[1], &qkv[2])?)
    }
}
