//! timm's EfficientNet class: its config (block strings, width and depth multipliers, head
//! width), the model built from them, and its `Model` surface.

use super::blocks::init_conv_goog;
use super::builder::Depth;
use super::builder::{decode_arch_def, BuilderCfg, Trunk};
use crate::layers::{
    Activation, BatchNormAct2d, ClassifierHead, Conv2dPad, Linear, PadType, PoolType,
};
use crate::models::{GroupRule, Model, PretrainedCfg};
use crate::{init, Children, ModelArgs, Module, Result};
use kiln_engine::Tensor;

/// Block strings, one list per stage (timm's `arch_def`).
pub type ArchDef = &'static [&'static [&'static str]];

/// The width of the head conv (timm's `num_features` of each generator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadWidth {
    /// Fixed, whatever the width multiplier.
    Fixed(usize),
    /// `round_channels(n)` under the width multiplier.
    Scaled(usize),
    /// `max(n, round_channels(n))`: scaled up, never down.
    AtLeast(usize),
    /// No head conv (timm's `num_features=0`: `conv_head` and `bn2` are identities and the
    /// classifier reads the last block's channels).
    None,
}

/// What distinguishes one EfficientNet-class model from another (timm's `_gen_*` arguments).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EfficientNetCfg {
    /// The block strings.
    pub arch: ArchDef,
    /// Width multiplier.
    pub channel_multiplier: f64,
    /// Divisor of the width rounding (8; 16 for some GroupNorm experiments).
    pub channel_divisor: usize,
    /// `round_limit` of the width rounding (0.9; 0 for EfficientNetV2-B*).
    pub round_limit: f64,
    /// Depth scaling.
    pub depth: Depth,
    /// Stem channels before width scaling.
    pub stem_size: usize,
    /// Kernel of the stem conv (3; 5 or 7 for MobileNet-EdgeTPU-V2).
    pub stem_kernel: usize,
    /// Channels per group of every block's spatial conv without a `gs` of its own (timm's
    /// `group_size` of `decode_arch_def`; None: the block type's default).
    pub group_size: Option<usize>,
    /// The stem keeps `stem_size` channels (timm's `fix_stem`).
    pub fix_stem: bool,
    /// Head conv width.
    pub head: HeadWidth,
    /// The model's activation.
    pub act: Activation,
    /// TensorFlow port: "same" padding and BatchNorm eps 1e-3.
    pub tf: bool,
    /// BatchNorm eps 1e-3 when built for pretrained weights (timm's `fbnetc_100`).
    pub pretrained_tf_eps: bool,
}

/// timm's `EfficientNet`.
#[derive(Children)]
pub struct EfficientNet {
    #[child(flatten)]
    trunk: Trunk,
    #[child]
    conv_head: Option<Conv2dPad>,
    #[child]
    bn2: Option<BatchNormAct2d>,
    #[child(flatten)]
    head: ClassifierHead,
    cfg: PretrainedCfg,
}

impl EfficientNet {
    /// Builds the model with timm's `_init_weight_goog` init.
    pub fn new(ec: &EfficientNetCfg, args: &ModelArgs, cfg: PretrainedCfg) -> Result<EfficientNet> {
        let tf_eps = ec.tf || (ec.pretrained_tf_eps && args.pretrained.is_some());
        let bc = BuilderCfg {
            channel_multiplier: ec.channel_multiplier,
            channel_divisor: ec.channel_divisor,
            round_limit: ec.round_limit,
            pad: if ec.tf {
                PadType::Same
            } else {
                PadType::Symmetric
            },
            bn_eps: if tf_eps { 1e-3 } else { 1e-5 },
            act: ec.act,
            se_from_exp: false,
            se_round_divisor: None,
            se_force_act: None,
            se_gate: Activation::Sigmoid,
            layer_scale: None,
            stem_kernel: ec.stem_kernel,
            drop_path_rate: args.drop_path_or(0.0),
        };
        let mut arch = decode_arch_def(ec.arch, ec.depth)?;
        if let Some(gs) = ec.group_size {
            arch.iter_mut().flatten().for_each(|b| {
                b.group_size.get_or_insert(gs);
            });
        }
        let stem = match ec.fix_stem {
            true => ec.stem_size,
            false => bc.round_chs(ec.stem_size),
        };
        let trunk = Trunk::new(&bc, args.in_chans, stem, &arch)?;
        let num_features = match ec.head {
            HeadWidth::Fixed(n) => n,
            HeadWidth::Scaled(n) => bc.round_chs(n),
            HeadWidth::AtLeast(n) => n.max(bc.round_chs(n)),
            HeadWidth::None => trunk.out_chs,
        };
        let (conv_head, bn2) = match ec.head {
            HeadWidth::None => (None, None),
            _ => {
                let conv = Conv2dPad::new(trunk.out_chs, num_features, 1, 1, 1, bc.pad, false)?;
                init_conv_goog(&conv.conv)?;
                let bn = BatchNormAct2d::new(num_features, bc.bn_eps, Some(bc.act))?;
                (Some(conv), Some(bn))
            }
        };
        let mut model = EfficientNet {
            trunk,
            conv_head,
            bn2,
            head: ClassifierHead::new(num_features, 0, PoolType::Avg, args.drop_rate)?
                .named("classifier"),
            cfg,
        };
        model.reset_classifier(args.num_classes, args.global_pool.as_deref())?;
        if let Some(c) = &model.head.fc {
            init_linear_goog(c)?;
        }
        Ok(model)
    }
}

/// timm's `_init_weight_goog` on a Linear: U(±1/√out) weight, zero bias.
pub(crate) fn init_linear_goog(l: &Linear) -> Result<()> {
    l.weight
        .copy_(&init::goog_linear_uniform(l.weight.shape())?)?;
    if let Some(b) = &l.bias {
        b.copy_(&Tensor::zeros(b.shape(), b.dtype())?)?;
    }
    Ok(())
}

impl EfficientNet {
    /// Every block's stochastic-depth rate (`drop_path_rate · block_idx / block_count`).
    pub fn drop_path_rates(&self) -> Vec<f64> {
        self.trunk.drop_path_rates()
    }
}

crate::models::shared::model_module!(EfficientNet, not_prunable);

impl Model for EfficientNet {
    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.trunk.forward(x)?;
        match (&self.conv_head, &self.bn2) {
            (Some(conv), Some(bn)) => bn.forward(&conv.forward(&x)?),
            _ => Ok(x),
        }
    }

    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        self.trunk.forward_intermediates(x)
    }

    fn group_matcher(&self, coarse: bool) -> Vec<GroupRule> {
        // timm puts conv_head|bn2 after every block (its ordinal 99999 in the blocks group)
        let mut groups = stem_and_blocks_matcher(coarse);
        groups.push(GroupRule::new("blocks", r"conv_head|bn2").with_suffix(99999.0));
        groups
    }

    crate::models::shared::model_fields!(
        head: head,
        cfg: cfg,
        feature_info: trunk.feature_info,
        grad_checkpointing: trunk.grad_checkpointing,
    );
}

/// The `stem` and `blocks` groups of timm's EfficientNet and MobileNetV3 `group_matcher`.
pub(crate) fn stem_and_blocks_matcher(coarse: bool) -> Vec<GroupRule> {
    let blocks = [r"^blocks\.(\d+)", r"^blocks\.(\d+)\.(\d+)"];
    GroupRule::stem_and_blocks(coarse, r"^conv_stem|bn1", blocks)
}

/// timm's `_cfg` of this family for `arch.tag` (bicubic; `test` sizes evaluate at crop 1.0).
pub(crate) fn cfg(
    arch: &str,
    tag: &str,
    size: usize,
    test: Option<usize>,
    crop_pct: f64,
    inception: bool,
) -> PretrainedCfg {
    let (mean, std) = crate::models::shared::mean_std(inception);
    PretrainedCfg {
        name: format!("{arch}.{tag}"),
        hf_hub_id: None,
        input_size: [3, size, size],
        test_input_size: test.map(|t| [3, t, t]),
        pool_size: [size.div_ceil(32); 2],
        crop_pct,
        test_crop_pct: test.map(|_| 1.0),
        crop_mode: "center".into(),
        interpolation: "bicubic".into(),
        mean,
        std,
        first_conv: "conv_stem".into(),
        classifier: "classifier".into(),
        num_classes: 1000,
    }
}

crate::model_kwargs::takes_none!(EfficientNetCfg);
