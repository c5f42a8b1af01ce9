//! timm's `MlpMixer`: the patch embedding (`stem`), the blocks, the final norm and the
//! mean-pooled head.

use super::block::Block;
use super::block_parts::BlockCfg;
use super::init;
use super::norm::MixerNorm;
use super::MixerCfg;
use crate::layers::{
    checkpoint_seq, Checkpointed, Conv2d, Linear, TokenFamily, TokenHead, TokenHeadCfg, TokenPool,
};
use crate::models::vit::{block_maps, patch_tokens};
use crate::models::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::{Children, Error, FeatureCfg, ModelArgs, Module, OutIndices, Result};
use kiln_engine::{DType, Tensor};

/// The mixers' head: `avg` pooling (the mean of the tokens) or none, dropout and `head`; the
/// final norm is the model's own (`norm`, a LayerNorm or an `Affine`). A reset classifier has
/// PyTorch's default init, as timm's `reset_classifier` builds a plain `nn.Linear`.
const HEAD: TokenFamily = TokenFamily {
    kind: "mlp_mixer",
    noun: "an MLP-Mixer",
    pools: &[TokenPool::Avg],
    nhwc: false,
    fc_name: "head",
    new_classifier: |i, o| Linear::new(i, o, true),
    eps: 1e-6,
    rms: false,
};

/// timm's `MlpMixer` (MLP-Mixer, gMixer, ResMLP, gMLP).
#[derive(Children)]
pub struct MlpMixer {
    /// The patch embedding's conv (timm's `PatchEmbed.proj`).
    #[child(name = "stem.proj")]
    stem: Conv2d,
    /// The patch embedding's norm (`stem_norm`).
    #[child(name = "stem.norm")]
    stem_norm: Option<MixerNorm>,
    #[child]
    blocks: Vec<Checkpointed<Block>>,
    grad_checkpointing: bool,
    /// The final norm.
    #[child]
    norm: MixerNorm,
    /// The pool, dropout and classifier.
    #[child(flatten)]
    head: TokenHead,
    img_size: usize,
    patch: usize,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
}

impl MlpMixer {
    /// Builds a mixer for `args.img_size` (the pretrained config's by default, as timm takes
    /// `img_size` from it: the token mixers span its patches) with timm's init: xavier-uniform
    /// linear weights, N(0, 1e-6) MLP biases, a lecun-normal stem, the gates' own init and a
    /// zero classifier (its bias −log(num_classes) with `nlhb`).
    pub fn new(mc: &MixerCfg, args: &ModelArgs, mut cfg: PretrainedCfg) -> Result<Self> {
        let img_size = args.img_size.unwrap_or(cfg.input_size[1]);
        let patch = mc.patch;
        // as timm's PatchEmbed, a size that is no multiple of the patch drops the remainder
        if img_size < patch {
            return Err(Error::BadArgument {
                model: cfg.name.clone(),
                msg: format!("img_size {img_size} is smaller than the patch size {patch}"),
            });
        }
        cfg.input_size = [args.in_chans, img_size, img_size];
        let (tokens_hidden, channels_hidden) = mc.hidden();
        let bc = BlockCfg {
            dim: mc.dim,
            seq_len: (img_size / patch).pow(2),
            tokens_hidden,
            channels_hidden,
            kind: mc.block,
        };
        // timm's mixers give every block the same stochastic-depth rate
        let rate = args.drop_path_or(0.0);
        let blocks = (0..mc.num_blocks)
            .map(|_| Block::new(&bc, rate).map(Checkpointed::new))
            .collect::<Result<Vec<_>>>()?;
        let feature_info = (0..mc.num_blocks)
            .map(|i| FeatureInfo {
                num_chs: mc.dim,
                reduction: patch,
                module: format!("blocks.{i}"),
            })
            .collect();
        let affine = mc.block.affine();
        Ok(MlpMixer {
            stem: init::stem_conv(args.in_chans, mc.dim, patch)?,
            stem_norm: mc
                .stem_norm
                .then(|| MixerNorm::new(mc.dim, affine))
                .transpose()?,
            blocks,
            grad_checkpointing: false,
            norm: MixerNorm::new(mc.dim, affine)?,
            head: head(mc, args, &cfg.name)?,
            img_size,
            patch,
            feature_info,
            cfg,
        })
    }

    /// Every block's stochastic-depth rate (timm's: `drop_path_rate` for each).
    pub fn drop_path_rates(&self) -> Vec<f64> {
        self.blocks
            .iter()
            .map(|b| b.get().drop_path_rate())
            .collect()
    }

    /// The patch tokens `[B, N, C]` of `[B, C, H, W]` images, through the stem's norm.
    fn embed(&self, x: &Tensor) -> Result<Tensor> {
        let tokens = patch_tokens(&self.stem, x, self.img_size, "mixer", &self.cfg.name)?;
        match &self.stem_norm {
            Some(norm) => norm.forward(&tokens),
            None => Ok(tokens),
        }
    }
}

/// The head of `mc` for `args` (pooling `avg` by default): timm's zero classifier, its bias
/// −log(num_classes) with `nlhb`.
fn head(mc: &MixerCfg, args: &ModelArgs, model: &str) -> Result<TokenHead> {
    let hc = TokenHeadCfg {
        dim: mc.dim,
        num_classes: args.num_classes,
        global_pool: args.global_pool.as_deref().unwrap_or("avg"),
        fc_norm: Some(false),
        prefix_tokens: 0,
        class_token: false,
        distilled: false,
        drop_rate: args.drop_rate,
        map: None,
        final_norm: false,
    };
    let mut head = TokenHead::new(HEAD, &hc, model)?;
    let n = args.num_classes;
    if n > 0 {
        let bias = if mc.nlhb { -(n as f64).ln() } else { 0.0 };
        head.fc = Some(Linear {
            weight: crate::init::zeros(&[n, mc.dim])?,
            bias: Some(
                Tensor::full(&[n], bias, DType::F32)?
                    .requires_grad_(true)
                    .clone(),
            ),
        });
    }
    Ok(head)
}

crate::models::shared::model_module!(MlpMixer, not_prunable);

impl Model for MlpMixer {
    crate::models::shared::model_fields!(head, cfg, feature_info, grad_checkpointing);

    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let x = checkpoint_seq(&self.blocks, self.embed(x)?, self.grad_checkpointing)?;
        self.norm.forward(&x)
    }

    /// timm's `forward_intermediates` (`NCHW`): each block's tokens as a
    /// `[B, C, H/patch, W/patch]` map, without the final norm.
    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        block_maps(&self.blocks, self.embed(x)?, 0, self.img_size / self.patch)
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
            GroupRule::new("stem", r"^stem"),
            GroupRule::new("blocks", r"^blocks\.(\d+)"),
            GroupRule::new("blocks", r"^norm").with_suffix(99999.0),
        ]
    }
}
