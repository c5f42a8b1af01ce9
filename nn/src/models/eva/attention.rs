//! timm's `EvaAttention` and `AttentionRope` (layers/attention.py) as eva.py builds them: q, k, v
//! from one projection or three, the rotary embedding on the patch tokens' queries and keys, the
//! fused softmax attention, an optional LayerNorm of the output (`scale_attn_inner`), the output
//! projection.

use crate::layers::{apply_rope, LayerNorm, Linear, RopeLayout, RopeMixed};
use crate::{init, Children, Error, Module, Result};
use kiln_engine::Tensor;

/// The rotary embedding one block's attention applies.
#[derive(Clone)]
pub(super) enum BlockRope {
    /// No rotary embedding.
    None,
    /// A fixed embedding of the patch grid, [patches, 2·head_dim] (shared by every block;
    /// timm's non-persistent buffer, not in the state dict).
    Fixed(Tensor),
    /// The learned mixed embedding and the block's index into its frequencies.
    Mixed(RopeMixed, usize),
}

/// The q, k, v projections.
#[derive(Children)]
#[children(group)]
enum Qkv {
    /// One projection: `EvaAttention`'s unbiased `qkv` with the `q_bias` and `v_bias` parameters
    /// (k's bias a zero buffer), or `AttentionRope`'s `qkv` with its own bias.
    Fused {
        #[param]
        q_bias: Option<Tensor>,
        #[param]
        v_bias: Option<Tensor>,
        #[child(name = "qkv")]
        weight: Linear,
    },
    /// Three projections (`q_proj`, `k_proj`, `v_proj`); `EvaAttention`'s k is unbiased.
    Separate {
        #[child(name = "q_proj")]
        q: Linear,
        #[child(name = "k_proj")]
        k: Linear,
        #[child(name = "v_proj")]
        v: Linear,
    },
}

/// What one attention is built from (timm's `EvaAttention` / `AttentionRope` arguments).
#[derive(Debug, Clone, Copy)]
pub(super) struct AttnCfg {
    /// Token width.
    pub dim: usize,
    /// Attention heads.
    pub heads: usize,
    /// One qkv projection (`qkv_fused`).
    pub fused: bool,
    /// Biased q and v (and k, in `AttentionRope`) projections (`qkv_bias`).
    pub bias: bool,
    /// timm's `AttentionRope` (`attn_type='rope'`): k biased as q and v, a fused projection with
    /// its own bias.
    pub rope_attn: bool,
    /// A LayerNorm of the attention output before the projection (`scale_attn_inner`), of `eps`.
    pub inner_norm: Option<f64>,
    /// Class and register tokens, which the rotary embedding skips.
    pub prefix: usize,
    /// The rotary embedding's pairing (`rope_rotate_half`).
    pub layout: RopeLayout,
}

/// timm's `EvaAttention` / `AttentionRope` (fused path).
#[derive(Children)]
#[children(group)]
pub(super) struct EvaAttention {
    #[child(flatten)]
    qkv: Qkv,
    /// The output's LayerNorm (`norm`, with `scale_attn_inner`).
    #[child]
    norm: Option<LayerNorm>,
    /// The output projection.
    #[child]
    pub proj: Linear,
    heads: usize,
    prefix: usize,
    layout: RopeLayout,
    rope: BlockRope,
}

impl EvaAttention {
    /// The attention of `c` applying `rope`, with timm's init: trunc-normal (.02) weights, zero
    /// biases.
    pub fn new(c: &AttnCfg, rope: BlockRope) -> Result<EvaAttention> {
        let dim = c.dim;
        let linear = |i, o, bias: bool| -> Result<Linear> {
            let mut l = Linear::trunc_normal(i, o, 0.02)?;
            if !bias {
                l.bias = None;
            }
            Ok(l)
        };
        let bias = |on: bool| on.then(|| init::zeros(&[dim])).transpose();
        let qkv = match (c.fused, c.rope_attn) {
            (true, false) => Qkv::Fused {
                weight: linear(dim, 3 * dim, false)?,
                q_bias: bias(c.bias)?,
                v_bias: bias(c.bias)?,
            },
            (true, true) => Qkv::Fused {
                weight: linear(dim, 3 * dim, c.bias)?,
                q_bias: None,
                v_bias: None,
            },
            (false, rope_attn) => Qkv::Separate {
                q: linear(dim, dim, c.bias)?,
                k: linear(dim, dim, c.bias && rope_attn)?,
                v: linear(dim, dim, c.bias)?,
            },
        };
        Ok(EvaAttention {
            qkv,
            norm: c
                .inner_norm
                .map(|e| LayerNorm::with_eps(dim, e))
                .transpose()?,
            proj: linear(dim, dim, true)?,
            heads: c.heads,
            prefix: c.prefix,
            layout: c.layout,
            rope,
        })
    }

    /// The attention of [B, N, C] tokens.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let &[b, n, c] = x.shape() else {
            return Err(Error::BadArgument {
                model: "eva".into(),
                msg: format!("attention takes [B, N, C] tokens, got {:?}", x.shape()),
            });
        };
        let (h, d) = (self.heads, c / self.heads);
        let heads =
            |t: Tensor| -> Result<Tensor> { Ok(t.reshape(&[b, n, h, d])?.permute(&[0, 2, 1, 3])?) };
        let (q, k, v) = match &self.qkv {
            Qkv::Fused {
                weight,
                q_bias,
                v_bias,
            } => {
                let qkv = match (q_bias, v_bias) {
                    // timm's F.linear(x, qkv.weight, cat(q_bias, k_bias = 0, v_bias))
                    (Some(qb), Some(vb)) => {
                        let bias =
                            Tensor::cat(&[qb.clone(), Tensor::zeros_like(qb)?, vb.clone()], 0)?;
                        x.linear(&weight.weight, Some(&bias.to_dtype(x.dtype())?))?
                    }
                    _ => weight.forward(x)?,
                };
                let qkv = qkv.reshape(&[b, n, 3, h, d])?.permute(&[2, 0, 3, 1, 4])?;
                let part = |i| -> Result<Tensor> { Ok(qkv.narrow(0, i, 1)?.squeeze(0)?) };
                (part(0)?, part(1)?, part(2)?)
            }
            Qkv::Separate { q, k, v } => (
                heads(q.forward(x)?)?,
                heads(k.forward(x)?)?,
                heads(v.forward(x)?)?,
            ),
        };
        let emb = match &self.rope {
            BlockRope::None => None,
            BlockRope::Fixed(t) => Some(t.clone()),
            BlockRope::Mixed(m, block) => Some(m.embed(*block)?),
        };
        let (q, k) = match emb {
            Some(e) => (
                apply_rope(&q, &e, self.prefix, self.layout)?,
                apply_rope(&k, &e, self.prefix, self.layout)?,
            ),
            None => (q, k),
        };
        let out = Tensor::scaled_dot_product_attention(&q, &k, &v, None, false)?;
        let out = out.transpose(1, 2)?.contiguous()?.reshape(&[b, n, c])?;
        let out = match &self.norm {
            Some(norm) => norm.forward(&out)?,
            None => out,
        };
        self.proj.forward(&out)
    }
}
