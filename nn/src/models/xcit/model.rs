//! timm's `Xcit`: the conv patch embedding and Fourier position encoding, XCA blocks on the
//! patch grid, the class token joined for the class-attention blocks, the final norm and the
//! class-token (or mean) head.

use super::block::{BlockCfg, ClassAttentionBlock, XcaBlock};
use super::embed::{ConvPatchEmbed, FourierPosition};
use super::XcitCfg;
use crate::layers::{
    checkpoint_seq, Checkpointed, Linear, TokenFamily, TokenHead, TokenHeadCfg, TokenPool,
};
use crate::models::vit::prepend_tokens;
use crate::models::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::{init, Children, Error, FeatureCfg, ModelArgs, Module, OutIndices, Result};
use kiln_engine::Tensor;

/// XCiT's head: the final LayerNorm (1e-6) before the pool, `token` or `avg` pooling (the mean
/// of the patch tokens), trunc-normal (.02) classifiers named `head`.
const HEAD: TokenFamily = TokenFamily {
    kind: "xcit",
    noun: "an XCiT",
    pools: &[TokenPool::Token, TokenPool::Avg],
    nhwc: false,
    fc_name: "head",
    new_classifier: |i, o| Linear::trunc_normal(i, o, 0.02),
    eps: 1e-6,
    rms: false,
};

/// timm's `Xcit`.
#[derive(Children)]
pub struct Xcit {
    /// The class token, [1, 1, C], joined for the class-attention blocks.
    #[param]
    cls_token: Tensor,
    #[child]
    patch_embed: ConvPatchEmbed,
    /// The Fourier position encoding (none with `use_pos_embed=False`).
    #[child]
    pos_embed: Option<FourierPosition>,
    /// The XCA blocks, on `[B, H, W, C]` grids.
    #[child]
    blocks: Vec<Checkpointed<XcaBlock>>,
    #[child]
    cls_attn_blocks: Vec<Checkpointed<ClassAttentionBlock>>,
    grad_checkpointing: bool,
    /// The final norm, the pool and the classifier.
    #[child(flatten)]
    head: TokenHead,
    patch: usize,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
}

impl Xcit {
    /// Builds an XCiT with timm's init: trunc-normal (.02) linear weights and class token, zero
    /// linear biases, PyTorch's conv init. The input size is free (any multiple of the patch);
    /// `args.img_size` only sets the config's.
    pub fn new(xc: &XcitCfg, args: &ModelArgs, mut cfg: PretrainedCfg) -> Result<Self> {
        let img_size = args.img_size.unwrap_or(cfg.input_size[1]);
        cfg.input_size = [args.in_chans, img_size, img_size];
        let bc = BlockCfg {
            dim: xc.dim,
            heads: xc.heads,
            mlp_hidden: xc.mlp_hidden,
            qkv_bias: xc.qkv_bias,
            eta: xc.eta,
        };
        // timm's XCiT gives every block the same stochastic-depth rate
        let rate = args.drop_path_or(0.0);
        let blocks = (0..xc.depth)
            .map(|_| XcaBlock::new(&bc, rate).map(Checkpointed::new))
            .collect::<Result<Vec<_>>>()?;
        let cls_attn_blocks = (0..xc.cls_attn_layers)
            .map(|_| ClassAttentionBlock::new(&bc, xc.tokens_norm).map(Checkpointed::new))
            .collect::<Result<Vec<_>>>()?;
        let feature_info = (0..xc.depth)
            .map(|i| FeatureInfo {
                num_chs: xc.dim,
                reduction: xc.patch,
                module: format!("blocks.{i}"),
            })
            .collect();
        let head = TokenHeadCfg {
            dim: xc.dim,
            num_classes: args.num_classes,
            global_pool: args.global_pool.as_deref().unwrap_or("token"),
            fc_norm: Some(false),
            prefix_tokens: 1,
            class_token: true,
            distilled: false,
            drop_rate: args.drop_rate,
            map: None,
            final_norm: true,
        };
        Ok(Xcit {
            cls_token: init::trunc_normal(&[1, 1, xc.dim], 0.02)?,
            patch_embed: ConvPatchEmbed::new(args.in_chans, xc.dim, xc.patch, &cfg.name)?,
            pos_embed: xc
                .use_pos_embed
                .then(|| FourierPosition::new(xc.dim))
                .transpose()?,
            blocks,
            cls_attn_blocks,
            grad_checkpointing: false,
            head: TokenHead::new(HEAD, &head, &cfg.name)?,
            patch: xc.patch,
            feature_info,
            cfg,
        })
    }

    /// Every XCA block's stochastic-depth rate (timm's: `drop_path_rate` for each).
    pub fn drop_path_rates(&self) -> Vec<f64> {
        self.blocks.iter().map(|b| b.get().drop_path.p).collect()
    }

    /// The patch grid `[B, H/patch, W/patch, C]` with the position encoding added.
    fn embed(&self, x: &Tensor) -> Result<Tensor> {
        let patch = self.patch;
        if !matches!(x.shape(), &[_, _, h, w] if h >= patch && w >= patch) {
            return Err(Error::BadArgument {
                model: self.cfg.name.clone(),
                msg: format!(
                    "input of shape {:?}: XCiT takes [N, C, H, W] images of at least \
                     {patch}×{patch} pixels",
                    x.shape()
                ),
            });
        }
        let grid = self
            .patch_embed
            .forward(x)?
            .permute(&[0, 2, 3, 1])?
            .contiguous()?;
        match &self.pos_embed {
            Some(pos) => pos.forward(&grid),
            None => Ok(grid),
        }
    }

    /// The XCA blocks' output grid as tokens, the class token in front, through the
    /// class-attention blocks (timm's `forward_cls`).
    fn forward_cls(&self, grid: &Tensor) -> Result<Tensor> {
        // the grid [B, H, W, C] (from `embed`) as H·W tokens
        let s = grid.shape();
        let tokens = grid.reshape(&[s[0], s[1] * s[2], s[3]])?;
        let x = prepend_tokens([&self.cls_token], tokens)?;
        checkpoint_seq(&self.cls_attn_blocks, x, self.grad_checkpointing)
    }
}

crate::models::shared::model_module!(Xcit, not_prunable);

impl Model for Xcit {
    crate::models::shared::model_fields!(head, cfg, feature_info, grad_checkpointing);

    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let grid = checkpoint_seq(&self.blocks, self.embed(x)?, self.grad_checkpointing)?;
        self.head.forward_norm(&self.forward_cls(&grid)?)
    }

    /// timm's `forward_intermediates` (`NCHW`): each XCA block's output as a
    /// `[B, C, H/patch, W/patch]` map, without the final norm.
    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut grid = self.embed(x)?;
        let mut out = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            grid = b.forward_checkpointed(&grid, self.grad_checkpointing)?;
            out.push(grid.permute(&[0, 3, 1, 2])?.contiguous()?);
        }
        Ok(out)
    }

    /// timm's `feature_cfg` (`out_indices=3`, its `getter`): the last three blocks.
    fn feature_cfg(&self) -> FeatureCfg {
        FeatureCfg {
            out_indices: OutIndices::Last(3),
            ..FeatureCfg::default()
        }
    }

    fn group_matcher(&self, _coarse: bool) -> Vec<GroupRule> {
        vec![
            GroupRule::new("stem", r"^cls_token|pos_embed|patch_embed"),
            GroupRule::new("blocks", r"^blocks\.(\d+)"),
            GroupRule::new("cls_attn_blocks", r"^cls_attn_blocks\.(\d+)"),
            GroupRule::new("cls_attn_blocks", r"^norm").with_suffix(99999.0),
        ]
    }

    /// timm's `no_weight_decay`: the whole position encoding and the class token.
    fn no_weight_decay(&self) -> Vec<String> {
        ["pos_embed.*", "cls_token"].map(String::from).to_vec()
    }
}
