//! timm's EVA-02 (eva.py's `Eva` as the `eva02_*` entry points build it): a ViT with a class
//! token and a learned position embedding, whose attention adds biases to q and v alone (k's is a
//! zero buffer) and rotates the patch tokens' queries and keys by a 2-D rotary position
//! embedding (`RotaryEmbeddingCat` over the patch grid, scaled to the 16×16 grid of pretraining);
//! a SwiGLU MLP (packed for tiny and small; split with a LayerNorm on the hidden features,
//! `scale_mlp`, for base and large, whose q, k and v are separate projections); no layer scale;
//! mean pooling of the patch tokens with `fc_norm`.

use super::family::Variants;
use super::vit::{patch_tokens, pos_embed, prepend_tokens, tokens_to_map};
use super::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::layers::{
    apply_rot_embed_after_prefix, checkpoint_seq, rope_embed_cat, Checkpointed, Conv2d, DropPath,
    LayerNorm, Linear, SwiGluMlp, TokenFamily, TokenHead, TokenHeadCfg, TokenPool,
};
use crate::model_kwargs::{heads_divide, token_stack, transformer, Bad, Kwargs, TakesKwargs};
use crate::{init, Children, Error, FeatureCfg, ModelArgs, Module, OutIndices, Result};
use kiln_engine::{Device, Tensor};

/// timm's `EvaAttention` (fused path): q, k, v from one projection (or three, `qkv_fused=False`)
/// with the biases of q and v, the rotary embedding on the patch tokens' q and k, the fused
/// softmax attention, an output projection.
#[derive(Children)]
#[children(group)]
struct EvaAttention {
    #[child(flatten)]
    qkv: Qkv,
    #[child]
    proj: Linear,
    heads: usize,
    /// The sin/cos embedding of the patch grid, [patches, 2·head_dim] (shared by every block;
    /// timm's non-persistent buffer, not in the state dict).
    rope: Tensor,
}

/// The q, k, v projections: fused (`qkv` without bias, `q_bias` and `v_bias`) or separate
/// (`q_proj`, `k_proj` without bias, `v_proj`).
#[derive(Children)]
#[children(group)]
enum Qkv {
    Fused {
        #[param]
        q_bias: Tensor,
        #[param]
        v_bias: Tensor,
        #[child(name = "qkv")]
        weight: Linear,
    },
    Separate {
        #[child(name = "q_proj")]
        q: Linear,
        #[child(name = "k_proj")]
        k: Linear,
        #[child(name = "v_proj")]
        v: Linear,
    },
}

impl EvaAttention {
    fn new(dim: usize, heads: usize, fused: bool, rope: Tensor) -> Result<EvaAttention> {
        let linear = |i, o| Linear::trunc_normal(i, o, 0.02);
        let unbiased = |i, o| -> Result<Linear> {
            let mut l = linear(i, o)?;
            l.bias = None;
            Ok(l)
        };
        let qkv = if fused {
            Qkv::Fused {
                weight: unbiased(dim, 3 * dim)?,
                q_bias: init::zeros(&[dim])?,
                v_bias: init::zeros(&[dim])?,
            }
        } else {
            Qkv::Separate {
                q: linear(dim, dim)?,
                k: unbiased(dim, dim)?,
                v: linear(dim, dim)?,
            }
        };
        Ok(EvaAttention {
            qkv,
            proj: linear(dim, dim)?,
            heads,
            rope,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
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
                // timm's F.linear(x, qkv.weight, cat(q_bias, k_bias = 0, v_bias))
                let k_bias = Tensor::zeros_like(q_bias)?;
                let bias = Tensor::cat(&[q_bias.clone(), k_bias, v_bias.clone()], 0)?;
                let qkv = x
                    .linear(&weight.weight, Some(&bias.to_dtype(x.dtype())?))?
                    .reshape(&[b, n, 3, h, d])?
                    .permute(&[2, 0, 3, 1, 4])?;
                let part = |i| -> Result<Tensor> { Ok(qkv.narrow(0, i, 1)?.squeeze(0)?) };
                (part(0)?, part(1)?, part(2)?)
            }
            Qkv::Separate { q, k, v } => (
                heads(q.forward(x)?)?,
                heads(k.forward(x)?)?,
                heads(v.forward(x)?)?,
            ),
        };
        let prefix = n - self.rope.shape()[0];
        let q = apply_rot_embed_after_prefix(&q, &self.rope, prefix)?;
        let k = apply_rot_embed_after_prefix(&k, &self.rope, prefix)?;
        let out = Tensor::scaled_dot_product_attention(&q, &k, &v, None, false)?;
        self.proj
            .forward(&out.transpose(1, 2)?.contiguous()?.reshape(&[b, n, c])?)
    }
}

/// timm's `EvaBlock` without layer scale: x + drop_path(attn(norm1(x))), then
/// x + drop_path(mlp(norm2(x))).
#[derive(Children)]
struct EvaBlock {
    #[child]
    norm1: LayerNorm,
    #[child]
    attn: EvaAttention,
    #[child]
    norm2: LayerNorm,
    #[child]
    mlp: SwiGluMlp,
    #[child]
    drop_path: DropPath,
}

impl Module for EvaBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let a = self.attn.forward(&self.norm1.forward(x)?)?;
        let x = x.add(&self.drop_path.forward(&a)?)?;
        let m = self.mlp.forward(&self.norm2.forward(&x)?)?;
        Ok(x.add(&self.drop_path.forward(&m)?)?)
    }

    /// Not prunable: kiln's pruning has no rule for this layer.
    fn tensors_resizable(&self) -> bool {
        false
    }
}

/// What distinguishes one EVA-02 from another (timm's `Eva` arguments).
#[derive(Debug, Clone, Copy)]
pub struct EvaCfg {
    /// Patch size.
    pub patch: usize,
    /// Token width.
    pub dim: usize,
    /// Blocks.
    pub depth: usize,
    /// Attention heads.
    pub heads: usize,
    /// The SwiGLU's hidden width (`int(dim * mlp_ratio)`, mlp_ratio 4·2/3).
    pub mlp_hidden: usize,
    /// One qkv projection with q and v biases (`qkv_fused`), else q_proj, k_proj, v_proj.
    pub qkv_fused: bool,
    /// The split SwiGLU with a LayerNorm on its hidden features (`scale_mlp`), else the packed one.
    pub scale_mlp: bool,
    /// The patch grid the rotary embedding is scaled to (`ref_feat_shape`).
    pub ref_grid: usize,
}

/// EVA's head: pools by `avg` or `token`, a classifier named `head` with `nn.Linear`'s init.
const HEAD: TokenFamily = TokenFamily {
    kind: "eva",
    noun: "an EVA",
    pools: &[TokenPool::Avg, TokenPool::Token],
    nhwc: false,
    fc_name: "head",
    new_classifier: |i, o| Linear::new(i, o, true),
    eps: 1e-6,
    rms: false,
};

/// timm's `Eva` as EVA-02 configures it.
#[derive(Children)]
pub struct Eva {
    #[param]
    cls_token: Tensor,
    #[param]
    pos_embed: Tensor,
    #[child(name = "patch_embed.proj")]
    patch_embed: Conv2d,
    patch: usize,
    /// The rotary embedding every block's attention reads.
    rope: Tensor,
    #[child]
    blocks: Vec<Checkpointed<EvaBlock>>,
    grad_checkpointing: bool,
    /// The final norm (`fc_norm` after `avg` pooling), the pool and the classifier.
    #[child(flatten)]
    head: TokenHead,
    img_size: usize,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
}

impl Eva {
    /// Builds an EVA-02 for `args.img_size` (the pretrained config's by default) with timm's
    /// init: trunc-normal (.02) linears, class token and position embedding; zero q/v biases;
    /// each block's `attn.proj` and `mlp.fc2` weights divided by √(2·(i+1)) (`fix_init_weight`);
    /// the head scaled by 0.001 (`head_init_scale`).
    pub fn new(ec: &EvaCfg, args: &ModelArgs, mut cfg: PretrainedCfg) -> Result<Self> {
        let img_size = args.img_size.unwrap_or(cfg.input_size[1]);
        if img_size < ec.patch {
            return Err(Error::BadArgument {
                model: cfg.name.clone(),
                msg: format!(
                    "img_size {img_size} is smaller than the patch size {}",
                    ec.patch
                ),
            });
        }
        cfg.input_size = [args.in_chans, img_size, img_size];
        let grid = img_size / ec.patch;
        let dim = ec.dim;
        let rope = rope_embed_cat(dim / ec.heads, grid, ec.ref_grid, 10000.0)?;
        let blocks = (0..ec.depth)
            .map(|i| {
                let rate = args.drop_path_or(0.0) * i as f64 / (ec.depth.max(2) - 1) as f64;
                let mut block = EvaBlock {
                    norm1: LayerNorm::new(dim)?,
                    attn: EvaAttention::new(dim, ec.heads, ec.qkv_fused, rope.clone())?,
                    norm2: LayerNorm::new(dim)?,
                    mlp: SwiGluMlp::new(dim, ec.mlp_hidden, ec.scale_mlp, ec.scale_mlp)?,
                    drop_path: DropPath {
                        p: rate,
                        training: true,
                    },
                };
                let scale = 1.0 / (2.0 * (i + 1) as f64).sqrt();
                block.attn.proj.weight = scaled(&block.attn.proj.weight, scale)?;
                block.mlp.fc2.weight = scaled(&block.mlp.fc2.weight, scale)?;
                Ok(Checkpointed::new(block))
            })
            .collect::<Result<Vec<_>>>()?;
        let feature_info = (0..ec.depth)
            .map(|i| FeatureInfo {
                num_chs: dim,
                reduction: ec.patch,
                module: format!("blocks.{i}"),
            })
            .collect();
        // timm's Eva: fc_norm for avg pooling, else the final norm before the head
        let head = TokenHeadCfg {
            dim,
            num_classes: args.num_classes,
            global_pool: args.global_pool.as_deref().unwrap_or("avg"),
            fc_norm: None,
            prefix_tokens: 1,
            class_token: true,
            distilled: false,
            drop_rate: args.drop_rate,
            map: None,
            final_norm: true,
        };
        let mut model = Eva {
            patch_embed: Conv2d::new(args.in_chans, dim, ec.patch, ec.patch, 0, true)?,
            patch: ec.patch,
            cls_token: init::trunc_normal(&[1, 1, dim], 0.02)?,
            pos_embed: pos_embed(grid * grid + 1, dim)?,
            rope,
            blocks,
            grad_checkpointing: false,
            head: TokenHead::new(HEAD, &head, &cfg.name)?,
            img_size,
            feature_info,
            cfg,
        };
        // timm's head_init_scale: at construction a trunc-normal (.02) weight and zero bias,
        // times 0.001
        if let Some(head) = &mut model.head.fc {
            let w = init::trunc_normal(head.weight.shape(), 0.02)?;
            head.weight = scaled(&w, 0.001)?;
            head.bias = Some(init::zeros(&[head.out_features()])?);
        }
        Ok(model)
    }

    /// Every block's stochastic-depth rate (`drop_path_rate · i / (depth − 1)`).
    pub fn drop_path_rates(&self) -> Vec<f64> {
        self.blocks.iter().map(|b| b.get().drop_path.p).collect()
    }

    /// The class token and the patch tokens with the position embedding added.
    fn embed(&self, x: &Tensor) -> Result<Tensor> {
        let patches = patch_tokens(&self.patch_embed, x, self.img_size, "EVA", &self.cfg.name)?;
        let dtype = patches.dtype();
        let x = prepend_tokens([&self.cls_token], patches)?;
        Ok(x.add(&self.pos_embed.to_dtype(dtype)?)?)
    }
}

impl Module for Eva {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_head(&self.forward_features(x)?, false)
    }

    /// The parameters and the rotary embedding (timm's non-persistent buffer, not in the state
    /// dict) move to `device`.
    fn to_device(&self, device: Device) -> Result<()> {
        for t in self.named_tensors() {
            t.tensor.move_to_(device)?;
        }
        self.rope.move_to_(device)?;
        Ok(())
    }

    /// Not prunable: kiln's pruning has no rule for this layer.
    fn tensors_resizable(&self) -> bool {
        false
    }
}

impl Model for Eva {
    super::shared::model_fields!(
        head: head,
        cfg: cfg,
        feature_info: feature_info,
        grad_checkpointing: grad_checkpointing,
    );

    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let x = checkpoint_seq(&self.blocks, self.embed(x)?, self.grad_checkpointing)?;
        self.head.forward_norm(&x)
    }

    /// timm's `forward_intermediates` (`NCHW`): each block's patch tokens as a
    /// `[B, C, H/patch, W/patch]` map, without the class token or the final norm.
    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut h = self.embed(x)?;
        let grid = self.img_size / self.patch;
        let mut out = Vec::new();
        for b in &self.blocks {
            h = b.forward(&h)?;
            out.push(tokens_to_map(&h, 1, grid)?);
        }
        Ok(out)
    }

    /// timm's `feature_cfg` (its `getter`): the last three blocks.
    fn feature_cfg(&self) -> FeatureCfg {
        FeatureCfg {
            out_indices: OutIndices::Last(3),
            ..FeatureCfg::default()
        }
    }

    fn group_matcher(&self, _coarse: bool) -> Vec<GroupRule> {
        vec![
            GroupRule::new("stem", r"^cls_token|reg_token|pos_embed|patch_embed"),
            GroupRule::new("blocks", r"^blocks\.(\d+)"),
            GroupRule::new("blocks", r"^norm").with_suffix(99999.0),
        ]
    }

    fn no_weight_decay(&self) -> Vec<String> {
        ["pos_embed", "cls_token", "reg_token"]
            .map(String::from)
            .to_vec()
    }
}

/// `t · s` as a fresh leaf parameter.
fn scaled(t: &Tensor, s: f64) -> Result<Tensor> {
    Ok(t.mul_scalar(s)?.detach().requires_grad_(true).clone())
}

/// timm's EVA-02 pretrained config of `arch.tag`: OpenAI CLIP's mean and std, bicubic, center
/// crop.
fn cfg(
    arch: &str,
    tag: &str,
    size: usize,
    crop_pct: f64,
    num_classes: usize,
    patch: usize,
) -> PretrainedCfg {
    PretrainedCfg {
        name: format!("{arch}.{tag}"),
        hf_hub_id: None,
        input_size: [3, size, size],
        test_input_size: None,
        pool_size: [size / patch; 2],
        crop_pct,
        test_crop_pct: None,
        crop_mode: "center".into(),
        interpolation: "bicubic".into(),
        mean: OPENAI_CLIP_MEAN,
        std: OPENAI_CLIP_STD,
        first_conv: "patch_embed.proj".into(),
        classifier: "head".into(),
        num_classes,
    }
}

/// timm's OpenAI CLIP mean.
pub const OPENAI_CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
/// timm's OpenAI CLIP std.
pub const OPENAI_CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

/// The family's registration: [`variants`], built by [`Eva::new`].
pub(crate) const FAMILY: Variants<EvaCfg, Eva> = Variants {
    variants,
    new: Eva::new,
};

/// Every registered EVA-02: (name, architecture, default pretrained config).
pub fn variants() -> Vec<(&'static str, EvaCfg, PretrainedCfg)> {
    // mlp_ratio 4·2/3: int(dim · 8/3)
    let eva02 = |dim: usize, depth, heads, split: bool| EvaCfg {
        patch: 14,
        dim,
        depth,
        heads,
        mlp_hidden: (dim as f64 * (4.0 * 2.0 / 3.0)) as usize,
        qkv_fused: !split,
        scale_mlp: split,
        ref_grid: 16,
    };
    let (tiny, small) = (eva02(192, 12, 3, false), eva02(384, 12, 6, false));
    let (base, large) = (eva02(768, 12, 12, true), eva02(1024, 24, 16, true));
    let (pt, ft) = ("mim_in22k", "mim_in22k_ft_in1k");
    #[rustfmt::skip]
    let rows = vec![
        ("eva02_tiny_patch14_224", tiny, pt, 224, 0.9, 0),
        ("eva02_small_patch14_224", small, pt, 224, 0.9, 0),
        ("eva02_base_patch14_224", base, pt, 224, 0.9, 0),
        ("eva02_large_patch14_224", large, pt, 224, 0.9, 0),
        ("eva02_tiny_patch14_336", tiny, ft, 336, 1.0, 1000),
        ("eva02_small_patch14_336", small, ft, 336, 1.0, 1000),
        ("eva02_base_patch14_448", base, "mim_in22k_ft_in22k_in1k", 448, 1.0, 1000),
        ("eva02_large_patch14_448", large, "mim_in22k_ft_in22k_in1k", 448, 1.0, 1000),
    ];
    rows.into_iter()
        .map(|(name, ec, tag, size, crop, classes)| {
            let mut c = cfg(name, tag, size, crop, classes, 14);
            if size == 448 {
                c.crop_mode = "squash".into();
            }
            (name, ec, c)
        })
        .collect()
}

impl TakesKwargs for EvaCfg {
    const KEYS: &'static [&'static str] =
        &["patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio"];

    fn apply(&mut self, kw: &Kwargs) -> std::result::Result<(), Bad> {
        let shape = [
            &mut self.patch,
            &mut self.dim,
            &mut self.depth,
            &mut self.heads,
            &mut self.mlp_hidden,
        ];
        token_stack(kw, shape)?;
        heads_divide(self.dim, self.heads)
    }

    fn params(&self) -> f64 {
        let patch = (3 * self.patch * self.patch * self.dim) as f64;
        // SwiGLU: two input projections and one output.
        patch + transformer(self.depth, self.dim, 3 * self.mlp_hidden / 2)
    }
}
