//! The Swin Transformer: its config, the model (patch embedding, stages of window blocks, token
//! head over the NHWC map) and its `Model` surface.

use super::block::{PatchMerging, SwinBlock, LN_EPS};
use crate::layers::{
    checkpoint_seq, Checkpointed, Conv2d, LayerNorm, Linear, TokenFamily, TokenHead, TokenHeadCfg,
    TokenPool,
};
use crate::models::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::{Children, Error, FeatureCfg, FeatureFormat, ModelArgs, Module, OutIndices, Result};
use kiln_engine::Tensor;

/// timm's `SwinTransformer(drop_path_rate=0.1)`: the rate an unset `--drop-path` leaves.
const DEFAULT_DROP_PATH: f64 = 0.1;
const PATCH: usize = 4;

/// Swin's head: `avg` over the NHWC map's tokens after the final norm, a trunc-normal (.02)
/// classifier named `head.fc`.
const HEAD: TokenFamily = TokenFamily {
    kind: "swin",
    noun: "a Swin",
    pools: &[TokenPool::Avg],
    nhwc: true,
    fc_name: "head.fc",
    new_classifier: |i, o| Linear::trunc_normal(i, o, 0.02),
    eps: LN_EPS,
    rms: false,
};

/// What distinguishes one Swin from another.
#[derive(Debug, Clone, Copy)]
pub struct SwinCfg {
    /// Channels of the first stage (doubling each stage).
    pub embed_dim: usize,
    /// Blocks per stage.
    pub depths: [usize; 4],
    /// Attention heads per stage.
    pub heads: [usize; 4],
    /// Window side (clamped to a stage's map).
    pub window: usize,
}

/// timm's `SwinTransformerStage`: PatchMerging (all but the first) then the blocks.
#[derive(Children)]
#[children(group)]
struct Stage {
    #[child]
    downsample: Option<PatchMerging>,
    #[child]
    blocks: Vec<Checkpointed<SwinBlock>>,
}

/// timm's `SwinTransformer`.
#[derive(Children)]
pub struct SwinTransformer {
    #[child(name = "patch_embed.proj")]
    patch_embed: Conv2d,
    #[child(name = "patch_embed.norm")]
    patch_norm: LayerNorm,
    #[child]
    layers: Vec<Stage>,
    /// The final norm, the pool (timm's 'avg' or '') and the classifier.
    #[child(flatten)]
    head: TokenHead,
    grad_checkpointing: bool,
    img_size: usize,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
}

impl SwinTransformer {
    /// Builds a Swin for `args.img_size` (the tag's input size by default; a multiple of 32)
    /// with timm's init: trunc-normal (.02) linear weights and bias tables, PyTorch's patch conv.
    pub fn new(sc: &SwinCfg, args: &ModelArgs, mut cfg: PretrainedCfg) -> Result<Self> {
        let img_size = args.img_size.unwrap_or(cfg.input_size[2]);
        if img_size == 0 || !img_size.is_multiple_of(PATCH * 8) {
            return Err(Error::BadArgument {
                model: cfg.name.clone(),
                msg: format!("img_size {img_size} is not a multiple of 32 (patch 4, 3 merges)"),
            });
        }
        cfg.input_size = [args.in_chans, img_size, img_size];
        cfg.pool_size = [img_size / 32, img_size / 32];
        let total: usize = sc.depths.iter().sum();
        let grid = img_size / PATCH;
        let mut index = 0;
        let mut layers = Vec::new();
        let mut feature_info = Vec::new();
        for (i, (&depth, &heads)) in sc.depths.iter().zip(&sc.heads).enumerate() {
            let dim = sc.embed_dim << i;
            let res = grid >> i;
            let downsample = (i > 0)
                .then(|| PatchMerging::new(dim / 2, dim))
                .transpose()?;
            let blocks = (0..depth)
                .map(|j| {
                    let rate = args.drop_path_or(DEFAULT_DROP_PATH) * index as f64
                        / (total.max(2) - 1) as f64;
                    index += 1;
                    SwinBlock::new(dim, heads, res, (sc.window, j % 2 == 1), rate)
                        .map(Checkpointed::new)
                })
                .collect::<Result<Vec<_>>>()?;
            layers.push(Stage { downsample, blocks });
            feature_info.push(FeatureInfo {
                num_chs: dim,
                reduction: PATCH << i,
                module: format!("layers.{i}"),
            });
        }
        let head = TokenHeadCfg {
            dim: sc.embed_dim << 3,
            num_classes: args.num_classes,
            global_pool: args.global_pool.as_deref().unwrap_or("avg"),
            fc_norm: Some(false),
            prefix_tokens: 0,
            class_token: false,
            distilled: false,
            drop_rate: args.drop_rate,
            map: None,
            final_norm: true,
        };
        Ok(SwinTransformer {
            patch_embed: Conv2d::new(args.in_chans, sc.embed_dim, PATCH, PATCH, 0, true)?,
            patch_norm: LayerNorm::with_eps(sc.embed_dim, LN_EPS)?,
            layers,
            head: TokenHead::new(HEAD, &head, &cfg.name)?,
            grad_checkpointing: false,
            img_size,
            feature_info,
            cfg,
        })
    }

    /// Every block's stochastic-depth rate (`drop_path_rate · i / (blocks − 1)`).
    pub fn drop_path_rates(&self) -> Vec<f64> {
        self.blocks().map(|b| b.get().drop_path.p).collect()
    }

    /// Every block's (window, shift), stage by stage.
    pub fn window_shifts(&self) -> Vec<(usize, usize)> {
        self.blocks().map(|b| b.get().window_shift()).collect()
    }

    fn blocks(&self) -> impl Iterator<Item = &Checkpointed<SwinBlock>> {
        self.layers.iter().flat_map(|s| &s.blocks)
    }

    /// timm's `PatchEmbed` with NHWC output: the 4×4 conv, then LayerNorm over channels.
    fn embed(&self, x: &Tensor) -> Result<Tensor> {
        let &[_, _, h, w] = x.shape() else {
            return Err(self.bad_input(x));
        };
        if h != self.img_size || w != self.img_size {
            return Err(self.bad_input(x));
        }
        let y = self.patch_embed.forward(x)?.permute(&[0, 2, 3, 1])?;
        self.patch_norm.forward(&y)
    }

    fn stage(&self, s: &Stage, x: Tensor) -> Result<Tensor> {
        let x = match &s.downsample {
            Some(d) => d.forward(&x)?,
            None => x,
        };
        checkpoint_seq(&s.blocks, x, self.grad_checkpointing)
    }

    fn bad_input(&self, x: &Tensor) -> Error {
        let s = self.img_size;
        Error::BadArgument {
            model: self.cfg.name.clone(),
            msg: format!(
                "input of shape {:?}: this Swin was built for [N, C, {s}, {s}] (set img_size)",
                x.shape()
            ),
        }
    }
}

crate::models::shared::model_module!(SwinTransformer, not_prunable);

impl Model for SwinTransformer {
    crate::models::shared::model_fields!(head, cfg, feature_info, grad_checkpointing);

    /// The final LayerNorm's NHWC map [B, H/32, W/32, C] (timm's `output_fmt` 'NHWC').
    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let x = self
            .layers
            .iter()
            .try_fold(self.embed(x)?, |h, s| self.stage(s, h))?;
        self.head.forward_norm(&x)
    }

    /// Each stage's output as NCHW (timm's `forward_intermediates`, no final norm).
    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut h = self.embed(x)?;
        let mut out = Vec::new();
        for s in &self.layers {
            h = self.stage(s, h)?;
            out.push(h.permute(&[0, 3, 1, 2])?.contiguous()?);
        }
        Ok(out)
    }

    /// timm's `feature_cfg`: every stage, in Swin's NHWC layout (its `output_fmt`).
    fn feature_cfg(&self) -> FeatureCfg {
        FeatureCfg {
            out_indices: OutIndices::List((0..self.layers.len() as i64).collect()),
            output_fmt: FeatureFormat::Nhwc,
        }
    }

    fn group_matcher(&self, coarse: bool) -> Vec<GroupRule> {
        if coarse {
            return vec![
                GroupRule::new("stem", r"^patch_embed"),
                GroupRule::new("blocks", r"^layers\.(\d+)"),
            ];
        }
        vec![
            GroupRule::new("stem", r"^patch_embed"),
            GroupRule::new("blocks", r"^layers\.(\d+).downsample").with_suffix(0.0),
            GroupRule::new("blocks", r"^layers\.(\d+)\.\w+\.(\d+)"),
            GroupRule::new("blocks", r"^norm").with_suffix(99999.0),
        ]
    }

    /// timm's: every parameter whose name holds `relative_position_bias_table`.
    fn no_weight_decay(&self) -> Vec<String> {
        self.named_tensors()
            .into_iter()
            .map(|t| t.name)
            .filter(|n| n.contains("relative_position_bias_table"))
            .collect()
    }
}
