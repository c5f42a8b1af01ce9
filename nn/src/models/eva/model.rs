//! timm's `Eva` (eva.py): the model and its configuration.

use super::attention::{AttnCfg, BlockRope, EvaAttention};
use super::block::{Block, EvaBlock, EvaBlockPostNorm};
use crate::layers::{
    checkpoint_seq, AxialRope, Checkpointed, Conv2d, DropPath, LayerNorm, Linear, MapCfg, Mlp,
    MlpAct, RopeLayout, RopeMixed, SwiGluMlp, TokenFamily, TokenHead, TokenHeadCfg, TokenPool,
};
use crate::models::vit::{block_maps, patch_tokens, pos_embed, prepend_tokens, BlockMlp};
use crate::models::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::{init, Children, Error, FeatureCfg, ModelArgs, Module, OutIndices, Result};
use kiln_engine::{Device, Tensor};

/// The block MLP eva.py builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvaMlp {
    /// timm's `Mlp` with GELU (`swiglu_mlp=False`).
    Gelu,
    /// The packed SwiGLU (`GluMlp`, the gate first).
    SwiGluPacked,
    /// The split SwiGLU (`SwiGLU`: `fc1_g`, `fc1_x`), for `scale_mlp` or `swiglu_align_to`.
    SwiGlu,
}

/// The rotary embedding eva.py builds (`use_rot_pos_emb` with its `rope_type`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EvaRope {
    /// An axial embedding (`rope_type` 'cat' or 'dinov3').
    Axial(AxialRope),
    /// RoPE-ViT's learned per-block frequencies (`rope_type='mixed'`), of this temperature,
    /// `xy` indexed.
    Mixed {
        /// The frequency base (`rope_temperature`).
        temperature: f64,
        /// `rope_grid_indexing='xy'`.
        xy: bool,
    },
}

/// What distinguishes one EVA from another (timm's `Eva` arguments).
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
    /// The MLP's hidden width (`int(dim * mlp_ratio)`, rounded up to `swiglu_align_to`).
    pub mlp_hidden: usize,
    /// The MLP.
    pub mlp: EvaMlp,
    /// A LayerNorm on the MLP's hidden features (`scale_mlp`).
    pub scale_mlp: bool,
    /// One qkv projection (`qkv_fused`), else q_proj, k_proj, v_proj.
    pub qkv_fused: bool,
    /// Biased projections (`qkv_bias`).
    pub qkv_bias: bool,
    /// timm's `AttentionRope` (`attn_type='rope'`), else `EvaAttention`.
    pub rope_attn: bool,
    /// A LayerNorm of the attention output (`scale_attn_inner`).
    pub scale_attn_inner: bool,
    /// Layer scale's initial value (`init_values`), none without layer scale.
    pub init_values: Option<f64>,
    /// `EvaBlockPostNorm` blocks (`use_post_norm`).
    pub post_norm: bool,
    /// A class token.
    pub class_token: bool,
    /// Register tokens (`num_reg_tokens`).
    pub reg_tokens: usize,
    /// The position embedding covers the patches alone (`no_embed_class`).
    pub no_embed_class: bool,
    /// A learned position embedding (`use_abs_pos_emb`).
    pub abs_pos: bool,
    /// The rotary embedding (`use_rot_pos_emb`), none without.
    pub rope: Option<EvaRope>,
    /// A LayerNorm before the blocks and an unbiased patch embedding (`use_pre_transformer_norm`).
    pub pre_norm: bool,
    /// The final norm at all (`use_post_transformer_norm`): `None` for timm's default (after the
    /// blocks unless `fc_norm`).
    pub final_norm: Option<bool>,
    /// `use_fc_norm`: `None` for timm's default (after `avg` pooling).
    pub fc_norm: Option<bool>,
    /// The default pooling (`global_pool`).
    pub global_pool: &'static str,
    /// The `map` pool's heads (`attn_pool_num_heads`) and MLP ratio (`attn_pool_mlp_ratio`).
    pub attn_pool: Option<(usize, f64)>,
    /// The LayerNorms' eps (timm's `LayerNorm` 1e-6, PE's and DINOv3's 1e-5).
    pub eps: f64,
}

impl EvaCfg {
    /// Class and register tokens ahead of the patches.
    pub fn prefix_tokens(&self) -> usize {
        usize::from(self.class_token) + self.reg_tokens
    }
}

/// EVA's head family: pools by `avg`, `token` or `map`, a classifier named `head` with
/// `nn.Linear`'s init, LayerNorms of `eps`.
fn head_family(eps: f64) -> TokenFamily {
    TokenFamily {
        kind: "eva",
        noun: "an EVA",
        pools: &[TokenPool::Avg, TokenPool::Token, TokenPool::Map],
        nhwc: false,
        fc_name: "head",
        new_classifier: |i, o| Linear::new(i, o, true),
        eps,
        rms: false,
    }
}

/// The rotary embedding's state the model keeps to move with it.
enum RopeState {
    None,
    Fixed(Tensor),
    Mixed(RopeMixed),
}

/// timm's `Eva`.
#[derive(Children)]
pub struct Eva {
    #[param]
    cls_token: Option<Tensor>,
    /// The register tokens, [1, reg_tokens, C].
    #[param]
    reg_token: Option<Tensor>,
    #[param]
    pos_embed: Option<Tensor>,
    #[child(name = "patch_embed.proj")]
    patch_embed: Conv2d,
    /// The mixed rotary embedding's frequencies (`rope.freqs`).
    #[param(name = "rope.freqs")]
    rope_freqs: Option<Tensor>,
    #[child]
    norm_pre: Option<LayerNorm>,
    #[child]
    blocks: Vec<Checkpointed<Block>>,
    grad_checkpointing: bool,
    /// The final norm, the pool (`attn_pool` with `map`), `fc_norm` and the classifier.
    #[child(flatten)]
    head: TokenHead,
    patch: usize,
    no_embed_class: bool,
    prefix: usize,
    /// The rotary embedding every block's attention reads.
    rope: RopeState,
    img_size: usize,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
}

impl Eva {
    /// Builds an EVA for `args.img_size` (the pretrained config's by default) with timm's init:
    /// trunc-normal (.02) linears, class and register tokens and position embedding; zero
    /// biases; layer scale at `init_values`; each block's `attn.proj` and `mlp.fc2` weights
    /// divided by √(2·(i+1)) (`fix_init_weight`); the head scaled by 0.001 (`head_init_scale`).
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
        let (dim, head_dim, prefix) = (ec.dim, ec.dim / ec.heads, ec.prefix_tokens());
        let (rope, rope_freqs, layout) = match ec.rope {
            None => (RopeState::None, None, RopeLayout::Interleaved),
            Some(EvaRope::Axial(a)) => (RopeState::Fixed(a.embed(head_dim, grid)?), None, a.layout),
            Some(EvaRope::Mixed { temperature, xy }) => {
                let freqs = RopeMixed::init_freqs(head_dim, ec.depth, ec.heads, temperature)?;
                let mixed = RopeMixed::new(freqs.clone(), grid, xy)?;
                (
                    RopeState::Mixed(mixed),
                    Some(freqs),
                    RopeLayout::Interleaved,
                )
            }
        };
        let attn = AttnCfg {
            dim,
            heads: ec.heads,
            fused: ec.qkv_fused,
            bias: ec.qkv_bias,
            rope_attn: ec.rope_attn,
            inner_norm: ec.scale_attn_inner.then_some(ec.eps),
            prefix,
            layout,
        };
        let blocks = (0..ec.depth)
            .map(|i| {
                let block_rope = match &rope {
                    RopeState::None => BlockRope::None,
                    RopeState::Fixed(t) => BlockRope::Fixed(t.clone()),
                    RopeState::Mixed(m) => BlockRope::Mixed(m.clone(), i),
                };
                let rate = args.drop_path_or(0.0) * i as f64 / (ec.depth.max(2) - 1) as f64;
                let mut block = new_block(ec, &attn, block_rope, rate)?;
                let scale = 1.0 / (2.0 * (i + 1) as f64).sqrt();
                let (attn, mlp, _) = block.parts();
                attn.proj.weight = scaled(&attn.proj.weight, scale)?;
                let fc2 = mlp.fc2_weight();
                *fc2 = scaled(fc2, scale)?;
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
        let map = ec.attn_pool.map(|(heads, ratio)| MapCfg {
            heads,
            mlp_hidden: (dim as f64 * ratio) as usize,
            act: MlpAct::Gelu,
            include_prefix: true,
        });
        let head = TokenHeadCfg {
            dim,
            num_classes: args.num_classes,
            global_pool: args.global_pool.as_deref().unwrap_or(ec.global_pool),
            fc_norm: ec.fc_norm,
            prefix_tokens: prefix,
            class_token: ec.class_token,
            distilled: false,
            drop_rate: args.drop_rate,
            map,
            final_norm: ec.final_norm.unwrap_or(true),
        };
        let tokens = |n: usize| init::trunc_normal(&[1, n, dim], 0.02);
        let pos_tokens = grid * grid + if ec.no_embed_class { 0 } else { prefix };
        let mut model = Eva {
            cls_token: ec.class_token.then(|| tokens(1)).transpose()?,
            reg_token: (ec.reg_tokens > 0)
                .then(|| tokens(ec.reg_tokens))
                .transpose()?,
            pos_embed: ec.abs_pos.then(|| pos_embed(pos_tokens, dim)).transpose()?,
            patch_embed: Conv2d::new(args.in_chans, dim, ec.patch, ec.patch, 0, !ec.pre_norm)?,
            rope_freqs,
            norm_pre: ec
                .pre_norm
                .then(|| LayerNorm::with_eps(dim, ec.eps))
                .transpose()?,
            blocks,
            grad_checkpointing: false,
            head: TokenHead::new(head_family(ec.eps), &head, &cfg.name)?,
            patch: ec.patch,
            no_embed_class: ec.no_embed_class,
            prefix,
            rope,
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
        self.blocks.iter().map(|b| b.get().drop_rate()).collect()
    }

    /// The class and register tokens and the patch tokens with the position embedding added,
    /// through `norm_pre`.
    fn embed(&self, x: &Tensor) -> Result<Tensor> {
        let patches = patch_tokens(&self.patch_embed, x, self.img_size, "EVA", &self.cfg.name)?;
        let dtype = patches.dtype();
        let pos = self
            .pos_embed
            .as_ref()
            .map(|p| p.to_dtype(dtype))
            .transpose()?;
        let patches = match (&pos, self.no_embed_class) {
            (Some(p), true) => patches.add(p)?,
            _ => patches,
        };
        let prefix = [&self.cls_token, &self.reg_token];
        let x = prepend_tokens(prefix.into_iter().flatten(), patches)?;
        let x = match (&pos, self.no_embed_class) {
            (Some(p), false) => x.add(p)?,
            _ => x,
        };
        match &self.norm_pre {
            Some(norm) => norm.forward(&x),
            None => Ok(x),
        }
    }
}

/// A block of `ec` (its attention of `attn` applying `rope`), its stochastic depth `rate`.
fn new_block(ec: &EvaCfg, attn: &AttnCfg, rope: BlockRope, rate: f64) -> Result<Block> {
    let dim = ec.dim;
    let mlp = match ec.mlp {
        EvaMlp::Gelu => {
            let mut m = Mlp::new(dim, ec.mlp_hidden, MlpAct::Gelu)?;
            m.norm = ec
                .scale_mlp
                .then(|| LayerNorm::with_eps(ec.mlp_hidden, ec.eps))
                .transpose()?;
            BlockMlp::Plain(m)
        }
        EvaMlp::SwiGluPacked => BlockMlp::SwiGlu(SwiGluMlp::new(dim, ec.mlp_hidden, false, false)?),
        EvaMlp::SwiGlu => BlockMlp::SwiGlu(SwiGluMlp::new(dim, ec.mlp_hidden, true, ec.scale_mlp)?),
    };
    let norm = || LayerNorm::with_eps(dim, ec.eps);
    let drop_path = DropPath {
        p: rate,
        training: true,
    };
    let attn = EvaAttention::new(attn, rope)?;
    if ec.post_norm {
        return Ok(Block::Post(EvaBlockPostNorm {
            attn,
            norm1: norm()?,
            mlp,
            norm2: norm()?,
            drop_path,
        }));
    }
    let gamma = || -> Result<Option<Tensor>> {
        ec.init_values
            .map(|v| -> Result<Tensor> {
                let g = Tensor::full(&[dim], v, kiln_engine::DType::F32)?;
                Ok(g.requires_grad_(true).clone())
            })
            .transpose()
    };
    Ok(Block::Pre(EvaBlock {
        gamma_1: gamma()?,
        gamma_2: gamma()?,
        norm1: norm()?,
        attn,
        norm2: norm()?,
        mlp,
        drop_path,
    }))
}

impl Module for Eva {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_head(&self.forward_features(x)?, false)
    }

    /// The parameters and the rotary embedding (timm's non-persistent buffers, not in the state
    /// dict) move to `device`.
    fn to_device(&self, device: Device) -> Result<()> {
        for t in self.named_tensors() {
            t.tensor.move_to_(device)?;
        }
        match &self.rope {
            RopeState::None => Ok(()),
            RopeState::Fixed(t) => Ok(t.move_to_(device)?),
            RopeState::Mixed(m) => m.move_to_(device),
        }
    }

    crate::module::not_prunable!();
}

impl Model for Eva {
    crate::models::shared::model_fields!(head, cfg, feature_info, grad_checkpointing);

    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let x = checkpoint_seq(&self.blocks, self.embed(x)?, self.grad_checkpointing)?;
        self.head.forward_norm(&x)
    }

    /// timm's `forward_intermediates` (`NCHW`): each block's patch tokens as a
    /// `[B, C, H/patch, W/patch]` map, without the class and register tokens or the final norm.
    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let grid = self.img_size / self.patch;
        block_maps(&self.blocks, self.embed(x)?, self.prefix, grid)
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
            GroupRule::new(
                "stem",
                r"^cls_token|reg_token|pos_embed|patch_embed|norm_pre",
            ),
            GroupRule::new("blocks", r"^blocks\.(\d+)"),
            GroupRule::new("blocks", r"^norm").with_suffix(99999.0),
        ]
    }

    /// timm's `no_weight_decay`: the tokens, the position embedding and the mixed rotary
    /// embedding's frequencies (`rope.freqs`).
    fn no_weight_decay(&self) -> Vec<String> {
        let mut names: Vec<String> = ["pos_embed", "cls_token", "reg_token"]
            .map(String::from)
            .to_vec();
        if self.rope_freqs.is_some() {
            names.push("rope.freqs".into());
        }
        names
    }
}

/// `t · s` as a fresh leaf parameter.
fn scaled(t: &Tensor, s: f64) -> Result<Tensor> {
    Ok(t.mul_scalar(s)?.detach().requires_grad_(true).clone())
}
