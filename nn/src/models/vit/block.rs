//! timm's ViT `Attention` and pre-norm `Block` (vision_transformer.py), with DeiT III's layer
//! scale (`ls1`, `ls2`) and the MLPs timm's ViTs take (`Mlp` with GELU, tanh GELU or quick GELU;
//! DINOv2 giant's SwiGLU).

use crate::layers::{
    attend_heads, split_heads, Conv2d, DropPath, LayerNorm, LayerScale, Linear, Mlp, MlpAct,
    SwiGluMlp, TokenNorm,
};
use crate::{init, Children, Error, Module, Result};
use kiln_engine::Tensor;

/// timm's `Attention` on its `fused_attn` path: one qkv projection, softmax(q·kᵀ/√d)·v per head
/// as one fused op (`F.scaled_dot_product_attention`), a LayerNorm with `scale_norm` (BEiT-3's),
/// an output projection.
#[derive(Children)]
#[children(group)]
pub(super) struct Attention {
    #[child]
    qkv: Linear,
    #[child]
    norm: Option<LayerNorm>,
    #[child]
    proj: Linear,
    /// Width of one head; the head count follows the qkv projection (pruning removes heads).
    head_dim: usize,
}

impl Attention {
    /// The attention of the first `queries` tokens over all of `x`'s tokens: [B, queries, C].
    fn forward(&self, x: &Tensor, queries: usize) -> Result<Tensor> {
        let heads = self.qkv.out_features() / (3 * self.head_dim);
        let qkv = split_heads(&self.qkv.forward(x)?, 3, heads)?;
        let q = match queries {
            q if q == qkv[0].shape()[2] => qkv[0].clone(),
            q => qkv[0].narrow(2, 0, q)?,
        };
        let heads = attend_heads(&q, &qkv[1], &qkv[2])?;
        match &self.norm {
            Some(norm) => self.proj.forward(&norm.forward(&heads)?),
            None => self.proj.forward(&heads),
        }
    }
}

/// What a block is built from.
pub(super) struct BlockCfg {
    pub dim: usize,
    pub heads: usize,
    /// The MLP's hidden width (`int(dim * mlp_ratio)`).
    pub mlp_hidden: usize,
    pub qkv_bias: bool,
    /// Layer scale's initial value (`init_values`); none without layer scale.
    pub init_values: Option<f64>,
    /// The norms' eps (timm's `norm_layer`).
    pub eps: f64,
    /// The MLP.
    pub mlp: VitMlp,
    /// LayerNorms before the attention's and in the MLP's output projections (timm's
    /// `scale_attn_norm`, `scale_mlp_norm`).
    pub scale_norms: bool,
    /// RmsNorms for `norm1` and `norm2` (timm's `norm_layer`, AIMv2's).
    pub rms_norm: bool,
    /// Biases on the attention's output projection and the MLP (timm's `proj_bias`).
    pub proj_bias: bool,
}

/// A ViT block's MLP (timm's `mlp_layer` and `act_layer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VitMlp {
    /// timm's `Mlp` with this activation.
    Plain(MlpAct),
    /// timm's `GluMlp` with SiLU, the gate first (`gate_last=False`): DINOv2 giant's SwiGLU,
    /// its `fc1` twice the hidden width.
    SwiGlu,
    /// timm's `SwiGLU`: the gate (`fc1_g`) and value (`fc1_x`) projections apart, each of the
    /// hidden width (AIMv2's).
    SwiGluSplit,
}

/// The block's `mlp`: timm's `Mlp`, or `GluMlp` / `SwiGLU` (ViT's and EVA's).
#[derive(Children)]
pub(crate) enum BlockMlp {
    /// timm's `Mlp`.
    Plain(#[child(name = "mlp")] Mlp),
    /// The packed or split SwiGLU.
    SwiGlu(#[child(name = "mlp")] SwiGluMlp),
}

impl BlockMlp {
    /// The output projection's weight (`mlp.fc2.weight`, which EVA's `fix_init_weight` rescales).
    pub(crate) fn fc2_weight(&mut self) -> &mut Tensor {
        match self {
            BlockMlp::Plain(m) => &mut m.fc2.weight,
            BlockMlp::SwiGlu(m) => &mut m.fc2.weight,
        }
    }
}

impl Module for BlockMlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            BlockMlp::Plain(m) => m.forward(x),
            BlockMlp::SwiGlu(m) => m.forward(x),
        }
    }
}

/// timm's ViT `Block`: x + drop_path(ls1(attn(norm1(x)))), then x + drop_path(ls2(mlp(norm2(x)))).
#[derive(Children)]
pub(super) struct Block {
    #[child]
    norm1: TokenNorm,
    #[child]
    attn: Attention,
    #[child]
    ls1: Option<LayerScale>,
    #[child]
    norm2: TokenNorm,
    #[child(flatten)]
    mlp: BlockMlp,
    #[child]
    ls2: Option<LayerScale>,
    #[child]
    pub(super) drop_path: DropPath,
}

impl Block {
    /// A block with timm's ViT init: trunc-normal (.02) linear weights, zero biases.
    pub(super) fn new(bc: &BlockCfg, drop_path: f64) -> Result<Block> {
        let linear = |i, o| Linear::trunc_normal(i, o, 0.02);
        let dim = bc.dim;
        let mut qkv = linear(dim, 3 * dim)?;
        if !bc.qkv_bias {
            qkv.bias = None;
        }
        let mut proj = linear(dim, dim)?;
        if !bc.proj_bias {
            proj.bias = None;
        }
        let scale = || bc.init_values.map(|v| LayerScale::new(dim, v)).transpose();
        let scale_norm = |width| {
            let norm = bc.scale_norms.then(|| LayerNorm::with_eps(width, bc.eps));
            norm.transpose()
        };
        let mlp = match bc.mlp {
            VitMlp::Plain(act) => {
                let mut mlp = Mlp::new(dim, bc.mlp_hidden, act)?;
                mlp.norm = scale_norm(bc.mlp_hidden)?;
                if !bc.proj_bias {
                    (mlp.fc1.bias, mlp.fc2.bias) = (None, None);
                }
                BlockMlp::Plain(mlp)
            }
            VitMlp::SwiGlu | VitMlp::SwiGluSplit => {
                let (split, hidden) = match bc.mlp {
                    VitMlp::SwiGluSplit => (true, bc.mlp_hidden),
                    _ => (false, bc.mlp_hidden / 2),
                };
                let mlp = SwiGluMlp::new(dim, hidden, split, bc.scale_norms)?;
                BlockMlp::SwiGlu(match bc.proj_bias {
                    true => mlp,
                    false => mlp.without_biases(),
                })
            }
        };
        let norm = || TokenNorm::new(dim, bc.eps, bc.rms_norm);
        Ok(Block {
            norm1: norm()?,
            attn: Attention {
                qkv,
                norm: scale_norm(dim)?,
                proj,
                head_dim: dim / bc.heads,
            },
            ls1: scale()?,
            norm2: norm()?,
            mlp,
            ls2: scale()?,
            drop_path: DropPath {
                p: drop_path,
                training: true,
            },
        })
    }

    /// `x + drop_path(ls(branch))`.
    fn residual(&self, x: &Tensor, branch: Tensor, ls: &Option<LayerScale>) -> Result<Tensor> {
        let branch = match ls {
            Some(ls) => ls.forward(&branch)?,
            None => branch,
        };
        Ok(x.add(&self.drop_path.forward(&branch)?)?)
    }

    /// The block's output for the first `queries` tokens, [B, queries, C]: every token is a key
    /// and a value, only those a query, and the MLP runs on them alone. `forward` takes every
    /// token; the last block of a ViT whose head reads the class token alone needs only that one
    /// (the other tokens' outputs are never read), which skips their projection and MLP.
    pub(super) fn forward_queries(&self, x: &Tensor, queries: usize) -> Result<Tensor> {
        let a = self.attn.forward(&self.norm1.forward(x)?, queries)?;
        let x = match queries {
            q if q == x.shape()[1] => x.clone(),
            q => x.narrow(1, 0, q)?,
        };
        let x = self.residual(&x, a, &self.ls1)?;
        let h = self.mlp.forward(&self.norm2.forward(&x)?)?;
        self.residual(&x, h, &self.ls2)
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let n = x.shape().get(1).copied().unwrap_or(0);
        self.forward_queries(x, n)
    }
}

/// The patch tokens of `[B, N, C]` tokens (those after `prefix` class and register tokens) as a
/// `[B, C, grid, grid]` map: timm's `forward_intermediates` output (`NCHW`), ViT and EVA alike.
pub(crate) fn tokens_to_map(x: &Tensor, prefix: usize, grid: usize) -> Result<Tensor> {
    let &[b, n, c] = x.shape() else {
        return Err(Error::BadArgument {
            model: "vit".into(),
            msg: format!("tokens of shape {:?}, not [B, N, C]", x.shape()),
        });
    };
    Ok(x.narrow(1, prefix, n - prefix)?
        .contiguous()?
        .reshape(&[b, grid, grid, c])?
        .permute(&[0, 3, 1, 2])?
        .contiguous()?)
}

/// Each of `blocks` run in turn on tokens `h`, its output's patch tokens (after `prefix`) as a
/// `[B, C, grid, grid]` map: timm's `forward_intermediates` (`NCHW`) of ViT and EVA.
pub(crate) fn block_maps<M: Module>(
    blocks: &[M],
    mut h: Tensor,
    prefix: usize,
    grid: usize,
) -> Result<Vec<Tensor>> {
    let mut out = Vec::new();
    for b in blocks {
        h = b.forward(&h)?;
        out.push(tokens_to_map(&h, prefix, grid)?);
    }
    Ok(out)
}

/// timm's `trunc_normal_(std=.02)` position embedding of `tokens` tokens of `dim`.
pub(crate) fn pos_embed(tokens: usize, dim: usize) -> Result<Tensor> {
    init::trunc_normal(&[1, tokens, dim], 0.02)
}

/// `x` [B, C, size, size] as patch tokens [B, N, C] through `patch_embed` (timm's `PatchEmbed`
/// with `flatten`); any other shape is an error naming `model`, a `kind` ("ViT", "EVA") built for
/// `size`.
pub(crate) fn patch_tokens(
    patch_embed: &Conv2d,
    x: &Tensor,
    size: usize,
    kind: &str,
    model: &str,
) -> Result<Tensor> {
    if !matches!(x.shape(), &[_, _, h, w] if h == size && w == size) {
        return Err(Error::BadArgument {
            model: model.into(),
            msg: format!(
                "input of shape {:?}: this {kind} was built for [N, C, {size}, {size}] (set \
                 img_size)",
                x.shape()
            ),
        });
    }
    Ok(patch_embed.forward(x)?.flatten_from(2)?.transpose(1, 2)?)
}

/// The `prefix` tokens ([1, n, C] each: class, register, distillation), in the dtype of `tokens`
/// [B, N, C] and expanded over its batch, in front of them.
pub(crate) fn prepend_tokens<'a>(
    prefix: impl IntoIterator<Item = &'a Tensor>,
    tokens: Tensor,
) -> Result<Tensor> {
    let (b, dim, dtype) = (tokens.shape()[0], tokens.shape()[2], tokens.dtype());
    let mut all = Vec::new();
    for t in prefix {
        all.push(t.to_dtype(dtype)?.expand(&[b, t.shape()[1], dim])?);
    }
    all.push(tokens);
    Ok(Tensor::cat(&all, 1)?)
}
