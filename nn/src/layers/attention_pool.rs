//! timm's `AttentionPoolLatent` (attention_pool.py, the ViTs' `map` pooling: SigLIP): a learned
//! latent query attends over the tokens, then an output projection and a residual MLP; and the
//! multi-head attention step it shares with the ViT's self-attention.

use super::{LayerNorm, Linear, Mlp, MlpAct};
use crate::{init, Children, Error, Module, Result};
use kiln_engine::Tensor;

/// `[B, N, parts·C]` projections as `parts` tensors of `[B, heads, N, C/heads]` (timm's
/// `reshape(B, N, parts, heads, head_dim).permute(2, 0, 3, 1, 4)` and `unbind(0)`).
pub fn split_heads(x: &Tensor, parts: usize, heads: usize) -> Result<Vec<Tensor>> {
    let &[b, n, width] = x.shape() else {
        return Err(Error::BadArgument {
            model: "attention".into(),
            msg: format!("attention takes [B, N, C] tokens, got {:?}", x.shape()),
        });
    };
    let d = width / (parts * heads);
    let x = x
        .reshape(&[b, n, parts, heads, d])?
        .permute(&[2, 0, 3, 1, 4])?;
    (0..parts)
        .map(|i| Ok(x.narrow(0, i, 1)?.squeeze(0)?))
        .collect()
}

/// softmax(q·kᵀ/√d)·v per head as one fused op (`F.scaled_dot_product_attention`) for q
/// `[B, H, M, d]` and k, v `[B, H, N, d]`, the heads joined back: `[B, M, H·d]`.
pub fn attend_heads(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    let &[b, h, m, d] = q.shape() else {
        return Err(Error::BadArgument {
            model: "attention".into(),
            msg: format!("queries of shape {:?}, not [B, H, M, d]", q.shape()),
        });
    };
    let heads = Tensor::scaled_dot_product_attention(q, k, v, None, false)?;
    Ok(heads
        .transpose(1, 2)?
        .contiguous()?
        .reshape(&[b, m, h * d])?)
}

/// timm's `AttentionPoolLatent` with one latent query and `pool_type='token'`: [B, N, C] tokens
/// to [B, C].
#[derive(Debug, Clone, Children)]
pub struct AttentionPoolLatent {
    /// The learned query, [1, 1, C].
    #[param]
    latent: Tensor,
    #[child]
    q: Linear,
    #[child]
    kv: Linear,
    #[child]
    proj: Linear,
    #[child]
    norm: LayerNorm,
    #[child]
    mlp: Mlp,
    heads: usize,
}

impl AttentionPoolLatent {
    /// The pool of `dim`-wide tokens with `heads` heads, an MLP of `hidden` features and `act`, a
    /// LayerNorm of `eps` (timm's ViT passes its `num_heads`, `mlp_ratio`, `norm_layer` and
    /// `act_layer`): trunc-normal (.02) linear weights, zero biases, the latent trunc-normal
    /// (std dim^-0.5, cut at ±2 std).
    pub fn new(dim: usize, heads: usize, hidden: usize, act: MlpAct, eps: f64) -> Result<Self> {
        let linear = |i, o| Linear::trunc_normal(i, o, 0.02);
        Ok(AttentionPoolLatent {
            latent: init::trunc_normal_tf(&[1, 1, dim], (dim as f64).powf(-0.5))?,
            q: linear(dim, dim)?,
            kv: linear(dim, 2 * dim)?,
            proj: linear(dim, dim)?,
            norm: LayerNorm::with_eps(dim, eps)?,
            mlp: Mlp::new(dim, hidden, act)?,
            heads,
        })
    }
}

impl Module for AttentionPoolLatent {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, dim) = (x.shape()[0], self.latent.shape()[2]);
        let latent = self.latent.to_dtype(x.dtype())?.expand(&[b, 1, dim])?;
        let q = split_heads(&self.q.forward(&latent)?, 1, self.heads)?.remove(0);
        let kv = split_heads(&self.kv.forward(x)?, 2, self.heads)?;
        let pooled = self.proj.forward(&attend_heads(&q, &kv[0], &kv[1])?)?;
        let pooled = pooled.add(&self.mlp.forward(&self.norm.forward(&pooled)?)?)?;
        Ok(pooled.squeeze(1)?)
    }

    crate::module::not_prunable!();
}
