//! timm's VisionTransformer (`vit_tiny/small/base_patch16_224`, `deit_tiny_patch16_224`): a
//! 16×16 patch embedding, a class token and a learned position embedding, pre-norm blocks of
//! multi-head self-attention and MLP, a final LayerNorm and the class-token (or mean) head.
//! The distilled DeiTs (`deit_*_distilled_patch16_224`, timm's `VisionTransformerDistilled`) add
//! a distillation token after the class token and a second head on it (`head_dist`).

use super::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::layers::{checkpoint_seq, Checkpointed, Conv2d, DropPath, LayerNorm, Linear};
use crate::module::{join, push, Kind, NamedTensor};
use crate::{init, Error, ModelArgs, Module, Result};
use kiln_engine::{with_global_generator, DType, Tensor};

const PATCH: usize = 16;

/// timm's `Attention` on its `fused_attn` path: one qkv projection, softmax(q·kᵀ/√d)·v per head
/// as one fused op (`F.scaled_dot_product_attention`), an output projection.
struct Attention {
    qkv: Linear,
    proj: Linear,
    heads: usize,
}

impl Attention {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let &[b, n, c] = x.shape() else {
            return Err(Error::BadArgument {
                model: "vit".into(),
                msg: format!("attention takes [B, N, C] tokens, got {:?}", x.shape()),
            });
        };
        let d = c / self.heads;
        let qkv = self
            .qkv
            .forward(x)?
            .reshape(&[b, n, 3, self.heads, d])?
            .permute(&[2, 0, 3, 1, 4])?;
        let part = |i| -> Result<Tensor> { Ok(qkv.narrow(0, i, 1)?.squeeze(0)?) };
        let (q, k, v) = (part(0)?, part(1)?, part(2)?);
        let heads = Tensor::scaled_dot_product_attention(&q, &k, &v, None, false)?;
        self.proj
            .forward(&heads.transpose(1, 2)?.contiguous()?.reshape(&[b, n, c])?)
    }

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        self.qkv.collect(&join(prefix, "qkv"), out);
        self.proj.collect(&join(prefix, "proj"), out);
    }
}

/// timm's ViT `Block`: x + drop_path(attn(norm1(x))), then x + drop_path(mlp(norm2(x))).
struct Block {
    norm1: LayerNorm,
    attn: Attention,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    drop_path: DropPath,
}

impl Block {
    fn new(dim: usize, heads: usize, drop_path: f64) -> Result<Block> {
        let linear = |i, o| Linear::trunc_normal(i, o, 0.02);
        Ok(Block {
            norm1: LayerNorm::new(dim)?,
            attn: Attention {
                qkv: linear(dim, 3 * dim)?,
                proj: linear(dim, dim)?,
                heads,
            },
            norm2: LayerNorm::new(dim)?,
            fc1: linear(dim, 4 * dim)?,
            fc2: linear(4 * dim, dim)?,
            drop_path: DropPath {
                p: drop_path,
                training: true,
            },
        })
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let a = self.attn.forward(&self.norm1.forward(x)?)?;
        let x = x.add(&self.drop_path.forward(&a)?)?;
        let h = self.fc1.forward(&self.norm2.forward(&x)?)?.gelu()?;
        Ok(x.add(&self.drop_path.forward(&self.fc2.forward(&h)?)?)?)
    }

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        self.norm1.collect(&join(prefix, "norm1"), out);
        self.attn.collect(&join(prefix, "attn"), out);
        self.norm2.collect(&join(prefix, "norm2"), out);
        self.fc1.collect(&join(prefix, "mlp.fc1"), out);
        self.fc2.collect(&join(prefix, "mlp.fc2"), out);
    }

    fn set_training(&mut self, training: bool) {
        self.drop_path.set_training(training);
    }
}

/// How the head reduces the tokens (timm's `global_pool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenPool {
    /// The class token.
    Token,
    /// The mean of the patch tokens.
    Avg,
    /// No reduction (num_classes 0).
    None,
}

impl TokenPool {
    fn parse(p: &str, model: &str) -> Result<TokenPool> {
        match p {
            "token" => Ok(TokenPool::Token),
            "avg" => Ok(TokenPool::Avg),
            "" => Ok(TokenPool::None),
            other => Err(Error::BadArgument {
                model: model.into(),
                msg: format!("global_pool '{other}': a ViT pools by 'token', 'avg' or '' (none)"),
            }),
        }
    }
}

/// What distinguishes one ViT variant from another.
#[derive(Debug, Clone, Copy)]
pub struct VitCfg {
    /// Token width.
    pub dim: usize,
    /// Blocks.
    pub depth: usize,
    /// Attention heads.
    pub heads: usize,
    /// A distillation token and head (timm's `VisionTransformerDistilled`).
    pub distilled: bool,
}

/// timm's `VisionTransformer` with a class token, no registers and no layer scale.
pub struct VisionTransformer {
    patch_embed: Conv2d,
    cls_token: Tensor,
    /// The distillation token of a distilled DeiT.
    dist_token: Option<Tensor>,
    pos_embed: Tensor,
    blocks: Vec<Checkpointed<Block>>,
    grad_checkpointing: bool,
    /// The final norm: `norm` for the class-token head, `fc_norm` (after pooling) for avg.
    norm: LayerNorm,
    fc_norm: bool,
    pool: TokenPool,
    head: Option<Linear>,
    /// The distillation head of a distilled DeiT (none without classes).
    head_dist: Option<Linear>,
    img_size: usize,
    drop_rate: f64,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
    training: bool,
}

impl VisionTransformer {
    /// Builds a ViT for `args.img_size` (224 by default) with timm's init: trunc-normal (.02)
    /// linear weights and position embedding, N(0, 1e-6) class token, PyTorch's patch conv.
    pub fn new(vc: &VitCfg, args: &ModelArgs, mut cfg: PretrainedCfg) -> Result<Self> {
        let img_size = args.img_size.unwrap_or(224);
        if img_size == 0 || !img_size.is_multiple_of(PATCH) {
            return Err(Error::BadArgument {
                model: cfg.name.clone(),
                msg: format!("img_size {img_size} is not a multiple of the patch size {PATCH}"),
            });
        }
        cfg.input_size = [args.in_chans, img_size, img_size];
        let pool = TokenPool::parse(args.global_pool.as_deref().unwrap_or("token"), &cfg.name)?;
        if vc.distilled && pool != TokenPool::Token {
            return Err(distilled_pool_error(&cfg.name));
        }
        let prefix = 1 + usize::from(vc.distilled);
        let tokens = prefix + (img_size / PATCH).pow(2);
        let dim = vc.dim;
        let total = vc.depth;
        let blocks = (0..vc.depth)
            .map(|i| {
                let rate = args.drop_path_rate * i as f64 / (total.max(2) - 1) as f64;
                Block::new(dim, vc.heads, rate).map(Checkpointed::new)
            })
            .collect::<Result<Vec<_>>>()?;
        let feature_info = (0..vc.depth)
            .map(|i| FeatureInfo {
                num_chs: dim,
                reduction: PATCH,
                module: format!("blocks.{i}"),
            })
            .collect();
        let cls = with_global_generator(|g| g.normal(&[1, 1, dim], 0.0, 1e-6, DType::F32))?;
        let mut model = VisionTransformer {
            patch_embed: Conv2d::new(args.in_chans, dim, PATCH, PATCH, 0, true)?,
            cls_token: cls.requires_grad_(true).clone(),
            dist_token: vc
                .distilled
                .then(|| init::trunc_normal(&[1, 1, dim], 0.02))
                .transpose()?,
            pos_embed: init::trunc_normal(&[1, tokens, dim], 0.02)?,
            blocks,
            grad_checkpointing: false,
            norm: LayerNorm::new(dim)?,
            fc_norm: pool == TokenPool::Avg,
            pool,
            head: None,
            head_dist: None,
            img_size,
            drop_rate: args.drop_rate,
            feature_info,
            cfg,
            training: true,
        };
        model.reset_classifier(args.num_classes, None)?;
        Ok(model)
    }

    /// Every block's stochastic-depth rate (`drop_path_rate · i / (depth − 1)`).
    pub fn drop_path_rates(&self) -> Vec<f64> {
        self.blocks.iter().map(|b| b.get().drop_path.p).collect()
    }

    /// Patch tokens with the class (and distillation) token in front and the position embedding
    /// added.
    fn embed(&self, x: &Tensor) -> Result<Tensor> {
        let &[b, _, h, w] = x.shape() else {
            return Err(self.bad_input(x));
        };
        if h != self.img_size || w != self.img_size {
            return Err(self.bad_input(x));
        }
        let patches = self
            .patch_embed
            .forward(x)?
            .flatten_from(2)?
            .transpose(1, 2)?;
        // Under autocast the patches come out of the projection in f16/bf16; the class token
        // and the position embedding join their dtype (parameter casts), so the tokens carry
        // one dtype from here on with no cast pass over them.
        let dtype = patches.dtype();
        let dim = self.cls_token.shape()[2];
        let prefix =
            |t: &Tensor| -> Result<Tensor> { Ok(t.to_dtype(dtype)?.expand(&[b, 1, dim])?) };
        let mut tokens = vec![prefix(&self.cls_token)?];
        if let Some(dist) = &self.dist_token {
            tokens.push(prefix(dist)?);
        }
        tokens.push(patches);
        Ok(Tensor::cat(&tokens, 1)?.add(&self.pos_embed.to_dtype(dtype)?)?)
    }

    /// The class and distillation tokens of `x` (final tokens, [B, N, C]).
    fn prefix_tokens(x: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((
            x.narrow(1, 0, 1)?.squeeze(1)?,
            x.narrow(1, 1, 1)?.squeeze(1)?,
        ))
    }

    /// timm's `VisionTransformerDistilled.forward_head`: both tokens' heads averaged (the
    /// tokens themselves for `pre_logits` or without classes), no head dropout.
    fn distilled_head(&self, x: &Tensor, pre_logits: bool) -> Result<Tensor> {
        let (cls, dist) = Self::prefix_tokens(x)?;
        let (cls, dist) = match (&self.head, &self.head_dist, pre_logits) {
            (Some(h), Some(hd), false) => (h.forward(&cls)?, hd.forward(&dist)?),
            _ => (cls, dist),
        };
        Ok(cls.add(&dist)?.mul_scalar(0.5)?)
    }

    fn bad_input(&self, x: &Tensor) -> Error {
        let s = self.img_size;
        Error::BadArgument {
            model: self.cfg.name.clone(),
            msg: format!(
                "input of shape {:?}: this ViT was built for [N, C, {s}, {s}] (set img_size)",
                x.shape()
            ),
        }
    }
}

impl Module for VisionTransformer {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_head(&self.forward_features(x)?, false)
    }

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        let mut local = Vec::new();
        push(
            &mut local,
            "",
            "cls_token",
            &self.cls_token,
            Kind::Parameter,
        );
        push(
            &mut local,
            "",
            "pos_embed",
            &self.pos_embed,
            Kind::Parameter,
        );
        if let Some(dist) = &self.dist_token {
            push(&mut local, "", "dist_token", dist, Kind::Parameter);
        }
        self.patch_embed.collect("patch_embed.proj", &mut local);
        for (i, b) in self.blocks.iter().enumerate() {
            b.collect(&format!("blocks.{i}"), &mut local);
        }
        let norm = if self.fc_norm { "fc_norm" } else { "norm" };
        self.norm.collect(norm, &mut local);
        if let Some(head) = &self.head {
            head.collect("head", &mut local);
        }
        if let Some(head) = &self.head_dist {
            head.collect("head_dist", &mut local);
        }
        out.extend(local.into_iter().map(|t| NamedTensor {
            name: join(prefix, &t.name),
            ..t
        }));
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        for b in &mut self.blocks {
            b.set_training(training);
        }
    }
}

impl Model for VisionTransformer {
    fn set_grad_checkpointing(&mut self, enable: bool) -> Result<()> {
        self.grad_checkpointing = enable;
        Ok(())
    }

    fn grad_checkpointing(&self) -> bool {
        self.grad_checkpointing
    }

    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.embed(x)?;
        let x = checkpoint_seq(&self.blocks, x, self.grad_checkpointing)?;
        if self.fc_norm {
            Ok(x)
        } else {
            self.norm.forward(&x)
        }
    }

    fn forward_head(&self, x: &Tensor, pre_logits: bool) -> Result<Tensor> {
        if self.dist_token.is_some() {
            return self.distilled_head(x, pre_logits);
        }
        let n = x.shape()[1];
        let pooled = match self.pool {
            TokenPool::Token => x.narrow(1, 0, 1)?.squeeze(1)?,
            TokenPool::Avg => x.narrow(1, 1, n - 1)?.mean(1, false)?,
            TokenPool::None => x.clone(),
        };
        let pooled = if self.fc_norm {
            self.norm.forward(&pooled)?
        } else {
            pooled
        };
        let x = pooled.dropout(self.drop_rate, self.training)?;
        match (&self.head, pre_logits) {
            (Some(head), false) => head.forward(&x),
            _ => Ok(x),
        }
    }

    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut h = self.embed(x)?;
        let mut out = Vec::new();
        for b in &self.blocks {
            h = b.forward(&h)?;
            out.push(h.clone());
        }
        Ok(out)
    }

    fn feature_info(&self) -> &[FeatureInfo] {
        &self.feature_info
    }

    fn get_classifier(&self) -> Option<&Linear> {
        self.head.as_ref()
    }

    fn reset_classifier(&mut self, num_classes: usize, global_pool: Option<&str>) -> Result<()> {
        if let Some(p) = global_pool {
            let pool = TokenPool::parse(p, &self.cfg.name)?;
            if self.dist_token.is_some() && pool != TokenPool::Token {
                return Err(distilled_pool_error(&self.cfg.name));
            }
            if pool == TokenPool::Avg && !self.fc_norm || pool == TokenPool::Token && self.fc_norm {
                return Err(Error::BadArgument {
                    model: self.cfg.name.clone(),
                    msg: format!("global_pool '{p}' moves the final norm: build the model with it"),
                });
            }
            self.pool = pool;
        }
        if self.pool == TokenPool::None && num_classes > 0 {
            return Err(Error::BadArgument {
                model: self.cfg.name.clone(),
                msg: "global_pool '' needs num_classes 0".into(),
            });
        }
        let dim = self.num_features();
        let new_head = || {
            (num_classes > 0)
                .then(|| Linear::trunc_normal(dim, num_classes, 0.02))
                .transpose()
        };
        self.head = new_head()?;
        if self.dist_token.is_some() {
            self.head_dist = new_head()?;
        }
        Ok(())
    }

    fn num_classes(&self) -> usize {
        self.head.as_ref().map_or(0, Linear::out_features)
    }

    fn num_features(&self) -> usize {
        self.norm.weight.shape()[0]
    }

    fn pretrained_cfg(&self) -> &PretrainedCfg {
        &self.cfg
    }

    fn group_matcher(&self, _coarse: bool) -> Vec<GroupRule> {
        let stem = if self.dist_token.is_some() {
            r"^cls_token|pos_embed|patch_embed|dist_token"
        } else {
            r"^cls_token|reg_token|pos_embed|patch_embed|norm_pre"
        };
        vec![
            GroupRule::new("stem", stem),
            GroupRule::new("blocks", r"^blocks\.(\d+)"),
            GroupRule::new("blocks", r"^norm").with_suffix(99999.0),
        ]
    }

    fn no_weight_decay(&self) -> Vec<String> {
        ["cls_token", "dist_token", "reg_token", "pos_embed"]
            .map(String::from)
            .to_vec()
    }

    fn has_distillation_head(&self) -> bool {
        self.dist_token.is_some()
    }

    fn forward_distilled(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (Some(head), Some(head_dist), true) =
            (&self.head, &self.head_dist, self.dist_token.is_some())
        else {
            return Err(super::no_distillation_head(&self.cfg.name));
        };
        let (cls, dist) = Self::prefix_tokens(&self.forward_features(x)?)?;
        Ok((head.forward(&cls)?, head_dist.forward(&dist)?))
    }
}

/// A distilled DeiT pools by its class and distillation tokens only (timm asserts `token`).
fn distilled_pool_error(model: &str) -> Error {
    Error::BadArgument {
        model: model.into(),
        msg: "a distilled DeiT pools by 'token' only (its class and distillation tokens)".into(),
    }
}

/// timm's pretrained config of `arch.tag` (224², crop 0.9, bicubic); a distilled DeiT's
/// classifier is both heads (timm's `('head', 'head_dist')`).
fn cfg(arch: &str, tag: &str, inception: bool) -> PretrainedCfg {
    let (mean, std) = super::mean_std(inception);
    PretrainedCfg {
        name: format!("{arch}.{tag}"),
        hf_hub_id: None,
        input_size: [3, 224, 224],
        test_input_size: None,
        pool_size: [224 / PATCH, 224 / PATCH],
        crop_pct: 0.9,
        test_crop_pct: None,
        crop_mode: "center".into(),
        interpolation: "bicubic".into(),
        mean,
        std,
        first_conv: "patch_embed.proj".into(),
        classifier: if arch.contains("_distilled_") {
            "head,head_dist".into()
        } else {
            "head".into()
        },
        num_classes: 1000,
    }
}

/// Every registered ViT: (name, architecture, default pretrained config).
pub fn variants() -> Vec<(&'static str, VitCfg, PretrainedCfg)> {
    let vit = |dim, heads| VitCfg {
        dim,
        depth: 12,
        heads,
        distilled: false,
    };
    let distilled = |dim, heads| VitCfg {
        distilled: true,
        ..vit(dim, heads)
    };
    vec![
        (
            "vit_tiny_patch16_224",
            vit(192, 3),
            cfg("vit_tiny_patch16_224", "augreg_in21k_ft_in1k", true),
        ),
        (
            "vit_small_patch16_224",
            vit(384, 6),
            cfg("vit_small_patch16_224", "augreg_in21k_ft_in1k", true),
        ),
        (
            "vit_base_patch16_224",
            vit(768, 12),
            cfg("vit_base_patch16_224", "augreg2_in21k_ft_in1k", true),
        ),
        (
            "deit_tiny_patch16_224",
            vit(192, 3),
            cfg("deit_tiny_patch16_224", "fb_in1k", false),
        ),
        (
            "deit_tiny_distilled_patch16_224",
            distilled(192, 3),
            cfg("deit_tiny_distilled_patch16_224", "fb_in1k", false),
        ),
        (
            "deit_small_distilled_patch16_224",
            distilled(384, 6),
            cfg("deit_small_distilled_patch16_224", "fb_in1k", false),
        ),
        (
            "deit_base_distilled_patch16_224",
            distilled(768, 12),
            cfg("deit_base_distilled_patch16_224", "fb_in1k", false),
        ),
    ]
}
