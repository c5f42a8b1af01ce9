//! timm's VisionTransformer (DeiT and its distilled variant, registers, `no_embed_class`, CLIP's
//! `pre_norm`, SigLIP's `map` head): its config, the model (patch embedding, prefix tokens,
//! blocks, token head) and its `Model` surface.

use super::block::{block_maps, patch_tokens, pos_embed, prepend_tokens, Block, BlockCfg, VitMlp};
use crate::layers::{
    checkpoint_seq, Checkpointed, Conv2d, LayerNorm, Linear, MapCfg, MlpAct, TokenFamily,
    TokenHead, TokenHeadCfg, TokenNorm, TokenPool,
};
use crate::models::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::{init, Children, Error, FeatureCfg, ModelArgs, Module, OutIndices, Result};
use kiln_engine::Tensor;

/// The ViT's head: pools by `token`, `avg` or `map`, trunc-normal (.02) classifiers named `head`
/// (the final norm's eps is the config's).
const HEAD: TokenFamily = TokenFamily {
    kind: "vit",
    noun: "a ViT",
    pools: &[TokenPool::Token, TokenPool::Avg, TokenPool::Map],
    nhwc: false,
    fc_name: "head",
    new_classifier: |i, o| Linear::trunc_normal(i, o, 0.02),
    eps: 1e-6,
    rms: false,
};

/// What distinguishes one ViT variant from another (timm's `VisionTransformer` arguments).
#[derive(Debug, Clone, Copy)]
pub struct VitCfg {
    /// Patch size (the patch embedding's kernel and stride).
    pub patch: usize,
    /// Token width.
    pub dim: usize,
    /// Blocks.
    pub depth: usize,
    /// Attention heads.
    pub heads: usize,
    /// The MLP's hidden width (`int(dim * mlp_ratio)`).
    pub mlp_hidden: usize,
    /// A bias on the qkv projection (timm's `qkv_bias`).
    pub qkv_bias: bool,
    /// A class token (timm's `class_token`).
    pub class_token: bool,
    /// Register tokens after the class token (timm's `reg_tokens`).
    pub reg_tokens: usize,
    /// The position embedding covers the patches only, added before the prefix tokens join.
    pub no_embed_class: bool,
    /// Layer scale's initial value (timm's `init_values`); none without layer scale.
    pub init_values: Option<f64>,
    /// timm's default `global_pool`: `token` or `avg`.
    pub global_pool: &'static str,
    /// timm's `fc_norm`: `None` puts the final norm after the pooling for `avg` alone.
    pub fc_norm: Option<bool>,
    /// A distillation token and head (timm's `VisionTransformerDistilled`).
    pub distilled: bool,
    /// A LayerNorm after the position embedding (`norm_pre`) and no patch-embedding bias (timm's
    /// `pre_norm`, CLIP's).
    pub pre_norm: bool,
    /// Every LayerNorm's eps (timm's `norm_layer`: 1e-6, CLIP's 1e-5).
    pub norm_eps: f64,
    /// The blocks' MLP (timm's `act_layer`, `mlp_layer`).
    pub mlp: VitMlp,
    /// LayerNorms before the attention's and in the MLP's output projections (timm's
    /// `scale_attn_norm` and `scale_mlp_norm`, BEiT-3's).
    pub scale_norms: bool,
    /// A final norm (`norm` or `fc_norm`; timm's `final_norm`, off in RADIO).
    pub final_norm: bool,
    /// RmsNorms instead of LayerNorms (timm's `norm_layer`, AIMv2's).
    pub rms_norm: bool,
    /// Biases on the attention's output projection and the MLP (timm's `proj_bias`).
    pub proj_bias: bool,
    /// A norm of the patch embedding's tokens (`patch_embed.norm`, timm's `embed_norm_layer`).
    pub embed_norm: bool,
}

impl VitCfg {
    /// timm's `VisionTransformer` defaults for `patch`, `dim`, `depth`, `heads`: MLP ratio 4,
    /// a biased qkv, a class token, no registers or layer scale, the class-token head.
    pub const fn new(patch: usize, dim: usize, depth: usize, heads: usize) -> VitCfg {
        VitCfg {
            patch,
            dim,
            depth,
            heads,
            mlp_hidden: 4 * dim,
            qkv_bias: true,
            class_token: true,
            reg_tokens: 0,
            no_embed_class: false,
            init_values: None,
            global_pool: "token",
            fc_norm: None,
            distilled: false,
            pre_norm: false,
            norm_eps: 1e-6,
            mlp: VitMlp::Plain(MlpAct::Gelu),
            scale_norms: false,
            final_norm: true,
            rms_norm: false,
            proj_bias: true,
            embed_norm: false,
        }
    }

    /// Class, register and distillation tokens ahead of the patches.
    fn prefix_tokens(&self) -> usize {
        usize::from(self.class_token) + self.reg_tokens + usize::from(self.distilled)
    }
}

/// timm's `VisionTransformer` (and `VisionTransformerDistilled`).
#[derive(Children)]
pub struct VisionTransformer {
    #[param]
    cls_token: Option<Tensor>,
    /// The register tokens, [1, reg_tokens, C].
    #[param]
    reg_token: Option<Tensor>,
    #[param]
    pos_embed: Tensor,
    /// The distillation token of a distilled DeiT (timm's subclass registers it after the
    /// position embedding).
    #[param]
    dist_token: Option<Tensor>,
    #[child(name = "patch_embed.proj")]
    patch_embed: Conv2d,
    /// AIMv2's norm of the patch tokens.
    #[child(name = "patch_embed.norm")]
    patch_norm: Option<TokenNorm>,
    /// CLIP's LayerNorm of the embedded tokens.
    #[child]
    norm_pre: Option<LayerNorm>,
    patch: usize,
    no_embed_class: bool,
    #[child]
    blocks: Vec<Checkpointed<Block>>,
    grad_checkpointing: bool,
    /// The final norm, the pool and the classifiers (`head_dist` of a distilled DeiT).
    #[child(flatten)]
    head: TokenHead,
    img_size: usize,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
}

impl VisionTransformer {
    /// Builds a ViT for `args.img_size` (the pretrained config's size by default, as timm takes
    /// `img_size` from it) with timm's init: trunc-normal (.02) linear weights and position
    /// embedding, N(0, 1e-6) class and register tokens, PyTorch's patch conv.
    pub fn new(vc: &VitCfg, args: &ModelArgs, mut cfg: PretrainedCfg) -> Result<Self> {
        let img_size = args.img_size.unwrap_or(cfg.input_size[1]);
        let patch = vc.patch;
        // as timm's PatchEmbed, a size that is no multiple of the patch drops the remainder
        if img_size < patch {
            return Err(Error::BadArgument {
                model: cfg.name.clone(),
                msg: format!("img_size {img_size} is smaller than the patch size {patch}"),
            });
        }
        cfg.input_size = [args.in_chans, img_size, img_size];
        let patches = (img_size / patch).pow(2);
        let embed_len = if vc.no_embed_class {
            patches
        } else {
            patches + vc.prefix_tokens()
        };
        let dim = vc.dim;
        let bc = BlockCfg {
            dim,
            heads: vc.heads,
            mlp_hidden: vc.mlp_hidden,
            qkv_bias: vc.qkv_bias,
            init_values: vc.init_values,
            eps: vc.norm_eps,
            mlp: vc.mlp,
            scale_norms: vc.scale_norms,
            rms_norm: vc.rms_norm,
            proj_bias: vc.proj_bias,
        };
        let blocks = (0..vc.depth)
            .map(|i| {
                let rate = args.drop_path_or(0.0) * i as f64 / (vc.depth.max(2) - 1) as f64;
                Block::new(&bc, rate).map(Checkpointed::new)
            })
            .collect::<Result<Vec<_>>>()?;
        let feature_info = (0..vc.depth)
            .map(|i| FeatureInfo {
                num_chs: dim,
                reduction: patch,
                module: format!("blocks.{i}"),
            })
            .collect();
        let small_normal = |n| -> Result<Tensor> {
            let t = init::normal(&[1, n, dim], 1e-6)?;
            Ok(t.requires_grad_(true).clone())
        };
        let head = TokenHeadCfg {
            dim,
            num_classes: args.num_classes,
            global_pool: args.global_pool.as_deref().unwrap_or(vc.global_pool),
            fc_norm: vc.fc_norm,
            prefix_tokens: vc.prefix_tokens(),
            class_token: vc.class_token,
            distilled: vc.distilled,
            drop_rate: args.drop_rate,
            // timm's pool takes the ViT's heads, MLP ratio, activation and norm (the SiLU `Mlp`
            // pool of a SwiGLU ViT and an RmsNorm pool are not built here)
            map: match vc.mlp {
                VitMlp::Plain(act) if !vc.rms_norm => Some(MapCfg {
                    heads: vc.heads,
                    mlp_hidden: vc.mlp_hidden,
                    act,
                    include_prefix: false,
                }),
                _ => None,
            },
            final_norm: vc.final_norm,
        };
        let family = TokenFamily {
            eps: vc.norm_eps,
            rms: vc.rms_norm,
            ..HEAD
        };
        Ok(VisionTransformer {
            patch_embed: Conv2d::new(args.in_chans, dim, patch, patch, 0, !vc.pre_norm)?,
            patch_norm: vc
                .embed_norm
                .then(|| TokenNorm::new(dim, vc.norm_eps, vc.rms_norm))
                .transpose()?,
            norm_pre: vc
                .pre_norm
                .then(|| LayerNorm::with_eps(dim, vc.norm_eps))
                .transpose()?,
            patch,
            cls_token: vc.class_token.then(|| small_normal(1)).transpose()?,
            reg_token: (vc.reg_tokens > 0)
                .then(|| small_normal(vc.reg_tokens))
                .transpose()?,
            dist_token: vc
                .distilled
                .then(|| init::trunc_normal(&[1, 1, dim], 0.02))
                .transpose()?,
            pos_embed: pos_embed(embed_len, dim)?,
            no_embed_class: vc.no_embed_class,
            blocks,
            grad_checkpointing: false,
            head: TokenHead::new(family, &head, &cfg.name)?,
            img_size,
            feature_info,
            cfg,
        })
    }

    /// Every block's stochastic-depth rate (`drop_path_rate · i / (depth − 1)`).
    pub fn drop_path_rates(&self) -> Vec<f64> {
        self.blocks.iter().map(|b| b.get().drop_path.p).collect()
    }

    /// Patch tokens with the class, register (and distillation) tokens in front and the position
    /// embedding added (timm's `_pos_embed`: before the prefix joins with `no_embed_class`), then
    /// `norm_pre`.
    fn embed(&self, x: &Tensor) -> Result<Tensor> {
        let patches = patch_tokens(&self.patch_embed, x, self.img_size, "ViT", &self.cfg.name)?;
        let patches = match &self.patch_norm {
            Some(norm) => norm.forward(&patches)?,
            None => patches,
        };
        // Under autocast the patches come out of the projection in f16/bf16; the prefix tokens
        // and the position embedding join their dtype (parameter casts), so the tokens carry
        // one dtype from here on with no cast pass over them.
        let dtype = patches.dtype();
        let pos = self.pos_embed.to_dtype(dtype)?;
        let patches = if self.no_embed_class {
            patches.add(&pos)?
        } else {
            patches
        };
        let prefix = [&self.cls_token, &self.reg_token, &self.dist_token];
        let x = prepend_tokens(prefix.into_iter().flatten(), patches)?;
        let x = if self.no_embed_class { x } else { x.add(&pos)? };
        match &self.norm_pre {
            Some(norm) => norm.forward(&x),
            None => Ok(x),
        }
    }

    /// `forward_features`, or with `first_token_only` the final features of the first token
    /// alone ([B, 1, C]), its last block run for that token by [`Block::forward_queries`].
    fn features(&self, x: &Tensor, first_token_only: bool) -> Result<Tensor> {
        let x = self.embed(x)?;
        let gc = self.grad_checkpointing;
        let x = match self.blocks.split_last() {
            Some((last, rest)) if first_token_only => {
                let x = checkpoint_seq(rest, x, gc)?;
                last.run_checkpointed(&[x], gc, |b, xs| b.forward_queries(&xs[0], 1))?
            }
            _ => checkpoint_seq(&self.blocks, x, gc)?,
        };
        self.head.forward_norm(&x)
    }
}

impl Module for VisionTransformer {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // A head that reads the class token alone needs the last block's output for that token
        // only: the features stop at it, and the output is timm's to float32 rounding.
        let first_token_only = self.head.reads_class_token_only();
        self.forward_head(&self.features(x, first_token_only)?, false)
    }
}

impl Model for VisionTransformer {
    crate::models::shared::model_fields!(head, cfg, feature_info, grad_checkpointing);

    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        self.features(x, false)
    }

    /// timm's `forward_intermediates` (`NCHW`): each block's patch tokens as a
    /// `[B, C, H/patch, W/patch]` map, the prefix tokens left out, without the final norm.
    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let (prefix, grid) = (self.head.num_prefix_tokens(), self.img_size / self.patch);
        block_maps(&self.blocks, self.embed(x)?, prefix, grid)
    }

    /// timm's `feature_cfg` (its `getter`): the last three blocks.
    fn feature_cfg(&self) -> FeatureCfg {
        FeatureCfg {
            out_indices: OutIndices::Last(3),
            ..FeatureCfg::default()
        }
    }

    fn group_matcher(&self, _coarse: bool) -> Vec<GroupRule> {
        let stem = if self.dist_token.is_some() {
            r"^cls_token|pos_embed|patch_embed|dist_token"
        } else {
            r"^cls_token|reg_token|pos_embed|patch_embed"
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
        if !self.head.distills() {
            return Err(crate::model::no_distillation_head(&self.cfg.name));
        }
        self.head
            .distilled_logits(&self.forward_features(x)?, false)
    }
}
