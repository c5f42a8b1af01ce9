//! timm's `MobileNetV3` class (`mobilenetv3.py`): MobileNetV3 large and small (hard-swish, ReLU
//! in the early blocks), their "minimal" ReLU forms and `tf_` ports, LCNet (activated
//! depthwise-separable blocks) and MobileNetV4 (universal inverted residuals; the hybrids add
//! mobile multi-query attention);
//! squeeze-excite sized from the expanded channels with a ReLU and a hard-sigmoid gate, and the
//! "efficient head": pool, `conv_head` (biased 1×1), act, flatten, dropout, `classifier`
//! (MobileNetV4: an unbiased `conv_head`, then `norm_head`, a BatchNorm with the act).

use super::efficientnet::{cfg, init_linear_goog, stem_and_blocks_matcher, ArchDef};
use super::efficientnet_blocks::init_conv_goog;
use super::efficientnet_builder::{decode_arch_def, BuilderCfg, Depth, Trunk};
use super::family::Variants;
use super::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::layers::SelectAdaptivePool2d;
use crate::layers::{Activation, BatchNormAct2d, Conv2d, Linear, PadType, PoolType};
use crate::{Children, Error, ModelArgs, Module, Result};
use kiln_engine::Tensor;

/// timm's `_gen_mobilenet_v3` block strings for `mobilenetv3_large_*`.
const LARGE: ArchDef = &[
    &["ds_r1_k3_s1_e1_c16_nre"],
    &["ir_r1_k3_s2_e4_c24_nre", "ir_r1_k3_s1_e3_c24_nre"],
    &["ir_r3_k5_s2_e3_c40_se0.25_nre"],
    &[
        "ir_r1_k3_s2_e6_c80",
        "ir_r1_k3_s1_e2.5_c80",
        "ir_r2_k3_s1_e2.3_c80",
    ],
    &["ir_r2_k3_s1_e6_c112_se0.25"],
    &["ir_r3_k5_s2_e6_c160_se0.25"],
    &["cn_r1_k1_s1_c960"],
];

/// timm's `_gen_mobilenet_v3` block strings for `mobilenetv3_small_*`.
const SMALL: ArchDef = &[
    &["ds_r1_k3_s2_e1_c16_se0.25_nre"],
    &["ir_r1_k3_s2_e4.5_c24_nre", "ir_r1_k3_s1_e3.67_c24_nre"],
    &["ir_r1_k5_s2_e4_c40_se0.25", "ir_r2_k5_s1_e6_c40_se0.25"],
    &["ir_r2_k5_s1_e3_c48_se0.25"],
    &["ir_r3_k5_s2_e6_c96_se0.25"],
    &["cn_r1_k1_s1_c576"],
];

/// timm's `_gen_mobilenet_v3` block strings for `*_large_minimal_*` (3×3 kernels, no SE).
const LARGE_MINIMAL: ArchDef = &[
    &["ds_r1_k3_s1_e1_c16"],
    &["ir_r1_k3_s2_e4_c24", "ir_r1_k3_s1_e3_c24"],
    &["ir_r3_k3_s2_e3_c40"],
    &[
        "ir_r1_k3_s2_e6_c80",
        "ir_r1_k3_s1_e2.5_c80",
        "ir_r2_k3_s1_e2.3_c80",
    ],
    &["ir_r2_k3_s1_e6_c112"],
    &["ir_r3_k3_s2_e6_c160"],
    &["cn_r1_k1_s1_c960"],
];

/// timm's `_gen_mobilenet_v3` block strings for `*_small_minimal_*`.
const SMALL_MINIMAL: ArchDef = &[
    &["ds_r1_k3_s2_e1_c16"],
    &["ir_r1_k3_s2_e4.5_c24", "ir_r1_k3_s1_e3.67_c24"],
    &["ir_r1_k3_s2_e4_c40", "ir_r2_k3_s1_e6_c40"],
    &["ir_r2_k3_s1_e3_c48"],
    &["ir_r3_k3_s2_e6_c96"],
    &["cn_r1_k1_s1_c576"],
];

/// timm's `_gen_lcnet` block strings.
const LCNET: ArchDef = &[
    &["dsa_r1_k3_s1_c32"],
    &["dsa_r2_k3_s2_c64"],
    &["dsa_r2_k3_s2_c128"],
    &["dsa_r1_k3_s2_c256", "dsa_r1_k5_s1_c256"],
    &["dsa_r4_k5_s1_c256"],
    &["dsa_r2_k5_s2_c512_se0.25"],
];

/// timm's `_gen_mobilenet_v4` block strings for `mobilenetv4_conv_small*`.
const MNV4_CONV_SMALL: ArchDef = &[
    &["cn_r1_k3_s2_e1_c32", "cn_r1_k1_s1_e1_c32"],
    &["cn_r1_k3_s2_e1_c96", "cn_r1_k1_s1_e1_c64"],
    &[
        "uir_r1_a5_k5_s2_e3_c96",
        "uir_r4_a0_k3_s1_e2_c96",
        "uir_r1_a3_k0_s1_e4_c96",
    ],
    &[
        "uir_r1_a3_k3_s2_e6_c128",
        "uir_r1_a5_k5_s1_e4_c128",
        "uir_r1_a0_k5_s1_e4_c128",
        "uir_r1_a0_k5_s1_e3_c128",
        "uir_r2_a0_k3_s1_e4_c128",
    ],
    &["cn_r1_k1_s1_c960"],
];

/// timm's `_gen_mobilenet_v4` block strings for `mobilenetv4_conv_medium`.
const MNV4_CONV_MEDIUM: ArchDef = &[
    &["er_r1_k3_s2_e4_c48"],
    &["uir_r1_a3_k5_s2_e4_c80", "uir_r1_a3_k3_s1_e2_c80"],
    &[
        "uir_r1_a3_k5_s2_e6_c160",
        "uir_r2_a3_k3_s1_e4_c160",
        "uir_r1_a3_k5_s1_e4_c160",
        "uir_r1_a3_k3_s1_e4_c160",
        "uir_r1_a3_k0_s1_e4_c160",
        "uir_r1_a0_k0_s1_e2_c160",
        "uir_r1_a3_k0_s1_e4_c160",
    ],
    &[
        "uir_r1_a5_k5_s2_e6_c256",
        "uir_r1_a5_k5_s1_e4_c256",
        "uir_r2_a3_k5_s1_e4_c256",
        "uir_r1_a0_k0_s1_e4_c256",
        "uir_r1_a3_k0_s1_e4_c256",
        "uir_r1_a3_k5_s1_e2_c256",
        "uir_r1_a5_k5_s1_e4_c256",
        "uir_r2_a0_k0_s1_e4_c256",
        "uir_r1_a5_k0_s1_e2_c256",
    ],
    &["cn_r1_k1_s1_c960"],
];

/// timm's `_gen_mobilenet_v4` block strings for `mobilenetv4_conv_large`.
const MNV4_CONV_LARGE: ArchDef = &[
    &["er_r1_k3_s2_e4_c48"],
    &["uir_r1_a3_k5_s2_e4_c96", "uir_r1_a3_k3_s1_e4_c96"],
    &[
        "uir_r1_a3_k5_s2_e4_c192",
        "uir_r3_a3_k3_s1_e4_c192",
        "uir_r1_a3_k5_s1_e4_c192",
        "uir_r5_a5_k3_s1_e4_c192",
        "uir_r1_a3_k0_s1_e4_c192",
    ],
    &[
        "uir_r4_a5_k5_s2_e4_c512",
        "uir_r1_a5_k0_s1_e4_c512",
        "uir_r1_a5_k3_s1_e4_c512",
        "uir_r2_a5_k0_s1_e4_c512",
        "uir_r1_a5_k3_s1_e4_c512",
        "uir_r1_a5_k5_s1_e4_c512",
        "uir_r3_a5_k0_s1_e4_c512",
    ],
    &["cn_r1_k1_s1_c960"],
];

/// timm's `_gen_mobilenet_v4` block strings for `mobilenetv4_hybrid_medium*`.
const MNV4_HYBRID_MEDIUM: ArchDef = &[
    &["er_r1_k3_s2_e4_c48"],
    &["uir_r1_a3_k5_s2_e4_c80", "uir_r1_a3_k3_s1_e2_c80"],
    &[
        "uir_r1_a3_k5_s2_e6_c160",
        "uir_r1_a0_k0_s1_e2_c160",
        "uir_r1_a3_k3_s1_e4_c160",
        "uir_r1_a3_k5_s1_e4_c160",
        "mqa_r1_k3_h4_s1_v2_d64_c160",
        "uir_r1_a3_k3_s1_e4_c160",
        "mqa_r1_k3_h4_s1_v2_d64_c160",
        "uir_r1_a3_k0_s1_e4_c160",
        "mqa_r1_k3_h4_s1_v2_d64_c160",
        "uir_r1_a3_k3_s1_e4_c160",
        "mqa_r1_k3_h4_s1_v2_d64_c160",
        "uir_r1_a3_k0_s1_e4_c160",
    ],
    &[
        "uir_r1_a5_k5_s2_e6_c256",
        "uir_r1_a5_k5_s1_e4_c256",
        "uir_r2_a3_k5_s1_e4_c256",
        "uir_r1_a0_k0_s1_e2_c256",
        "uir_r1_a3_k5_s1_e2_c256",
        "uir_r1_a0_k0_s1_e2_c256",
        "uir_r1_a0_k0_s1_e4_c256",
        "mqa_r1_k3_h4_s1_d64_c256",
        "uir_r1_a3_k0_s1_e4_c256",
        "mqa_r1_k3_h4_s1_d64_c256",
        "uir_r1_a5_k5_s1_e4_c256",
        "mqa_r1_k3_h4_s1_d64_c256",
        "uir_r1_a5_k0_s1_e4_c256",
        "mqa_r1_k3_h4_s1_d64_c256",
        "uir_r1_a5_k0_s1_e4_c256",
    ],
    &["cn_r1_k1_s1_c960"],
];

/// timm's `_gen_mobilenet_v4` block strings for `mobilenetv4_hybrid_large*`.
const MNV4_HYBRID_LARGE: ArchDef = &[
    &["er_r1_k3_s2_e4_c48"],
    &["uir_r1_a3_k5_s2_e4_c96", "uir_r1_a3_k3_s1_e4_c96"],
    &[
        "uir_r1_a3_k5_s2_e4_c192",
        "uir_r3_a3_k3_s1_e4_c192",
        "uir_r1_a3_k5_s1_e4_c192",
        "uir_r2_a5_k3_s1_e4_c192",
        "mqa_r1_k3_h8_s1_v2_d48_c192",
        "uir_r1_a5_k3_s1_e4_c192",
        "mqa_r1_k3_h8_s1_v2_d48_c192",
        "uir_r1_a5_k3_s1_e4_c192",
        "mqa_r1_k3_h8_s1_v2_d48_c192",
        "uir_r1_a5_k3_s1_e4_c192",
        "mqa_r1_k3_h8_s1_v2_d48_c192",
        "uir_r1_a3_k0_s1_e4_c192",
    ],
    &[
        "uir_r4_a5_k5_s2_e4_c512",
        "uir_r1_a5_k0_s1_e4_c512",
        "uir_r1_a5_k3_s1_e4_c512",
        "uir_r2_a5_k0_s1_e4_c512",
        "uir_r1_a5_k3_s1_e4_c512",
        "uir_r1_a5_k5_s1_e4_c512",
        "mqa_r1_k3_h8_s1_d64_c512",
        "uir_r1_a5_k0_s1_e4_c512",
        "mqa_r1_k3_h8_s1_d64_c512",
        "uir_r1_a5_k0_s1_e4_c512",
        "mqa_r1_k3_h8_s1_d64_c512",
        "uir_r1_a5_k0_s1_e4_c512",
        "mqa_r1_k3_h8_s1_d64_c512",
        "uir_r1_a5_k0_s1_e4_c512",
    ],
    &["cn_r1_k1_s1_c960"],
];

/// What distinguishes one MobileNetV3-class model from another (timm's `_gen_*` arguments).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MobileNetV3Cfg {
    /// The block strings.
    pub arch: ArchDef,
    /// Width multiplier.
    pub channel_multiplier: f64,
    /// Depth multiplier ('ceil').
    pub depth_multiplier: f64,
    /// Width of `conv_head` (timm's `num_features`, the classifier's input).
    pub head: usize,
    /// The model's activation.
    pub act: Activation,
    /// Squeeze-excite width rounding: `round_channels` to this divisor, or Python's `round`.
    pub se_round_divisor: Option<usize>,
    /// Stem channels before width scaling.
    pub stem_size: usize,
    /// The stem stays unscaled (timm's `fix_stem`).
    pub fix_stem: bool,
    /// An unbiased `conv_head` followed by `norm_head` (timm's `head_norm`, MobileNetV4).
    pub head_norm: bool,
    /// Layer scale of the uir and mqa blocks (the MobileNetV4 hybrids: 1e-5).
    pub layer_scale: Option<f64>,
    /// TensorFlow port: "same" padding and BatchNorm eps 1e-3.
    pub tf: bool,
}

/// timm's `MobileNetV3`.
#[derive(Children)]
pub struct MobileNetV3 {
    #[child(flatten)]
    trunk: Trunk,
    pool: SelectAdaptivePool2d,
    #[child]
    conv_head: Conv2d,
    #[child]
    norm_head: Option<BatchNormAct2d>,
    act: Activation,
    #[child]
    classifier: Option<Linear>,
    drop_rate: f64,
    cfg: PretrainedCfg,
    #[training]
    training: bool,
}

impl MobileNetV3 {
    /// Builds the model with timm's `_init_weight_goog` init.
    pub fn new(mc: &MobileNetV3Cfg, args: &ModelArgs, cfg: PretrainedCfg) -> Result<MobileNetV3> {
        let bc = BuilderCfg {
            channel_multiplier: mc.channel_multiplier,
            channel_divisor: 8,
            round_limit: 0.9,
            pad: if mc.tf {
                PadType::Same
            } else {
                PadType::Symmetric
            },
            bn_eps: if mc.tf { 1e-3 } else { 1e-5 },
            act: mc.act,
            se_from_exp: true,
            se_round_divisor: mc.se_round_divisor,
            se_force_act: Some(Activation::Relu),
            se_gate: Activation::HardSigmoid,
            layer_scale: mc.layer_scale,
            drop_path_rate: args.drop_path_or(0.0),
        };
        let arch = decode_arch_def(mc.arch, Depth::ceil(mc.depth_multiplier))?;
        let stem = match mc.fix_stem {
            true => mc.stem_size,
            false => bc.round_chs(mc.stem_size),
        };
        let trunk = Trunk::new(&bc, args.in_chans, stem, &arch)?;
        let pool = SelectAdaptivePool2d {
            pool_type: PoolType::parse(args.global_pool.as_deref().unwrap_or("avg"))?,
        };
        let pooled = trunk.out_chs * pool.pool_type.feat_mult();
        let conv_head = Conv2d::new(pooled, mc.head, 1, 1, 0, !mc.head_norm)?;
        init_conv_goog(&conv_head)?;
        let norm_head = mc
            .head_norm
            .then(|| BatchNormAct2d::new(mc.head, bc.bn_eps, Some(bc.act)))
            .transpose()?;
        let mut model = MobileNetV3 {
            trunk,
            pool,
            conv_head,
            norm_head,
            act: bc.act,
            classifier: None,
            drop_rate: args.drop_rate,
            cfg,
            training: true,
        };
        model.reset_classifier(args.num_classes, None)?;
        if let Some(c) = &model.classifier {
            init_linear_goog(c)?;
        }
        Ok(model)
    }

    /// Width of `conv_head`'s output, the classifier's input (timm's `head_hidden_size`).
    fn head_hidden_size(&self) -> usize {
        self.conv_head.weight.shape()[0]
    }
}

impl MobileNetV3 {
    /// Every block's stochastic-depth rate (`drop_path_rate · block_idx / block_count`).
    pub fn drop_path_rates(&self) -> Vec<f64> {
        self.trunk.drop_path_rates()
    }
}

impl Module for MobileNetV3 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_head(&self.forward_features(x)?, false)
    }
}

impl Model for MobileNetV3 {
    fn set_grad_checkpointing(&mut self, enable: bool) -> Result<()> {
        self.trunk.grad_checkpointing = enable;
        Ok(())
    }

    fn grad_checkpointing(&self) -> bool {
        self.trunk.grad_checkpointing
    }

    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        self.trunk.forward(x)
    }

    fn forward_head(&self, x: &Tensor, pre_logits: bool) -> Result<Tensor> {
        let mut h = self.pool.forward(x)?;
        let pooled = self.pool.pool_type != PoolType::None;
        if pooled {
            h = h.reshape(&[h.shape()[0], h.shape()[1], 1, 1])?;
        }
        h = self.conv_head.forward(&h)?;
        h = match &self.norm_head {
            Some(n) => n.forward(&h)?,
            None => self.act.forward(&h)?,
        };
        if pooled {
            h = h.flatten_from(1)?;
        }
        let h = h.dropout(self.drop_rate, self.training)?;
        match (&self.classifier, pre_logits) {
            (Some(c), false) => c.forward(&h),
            _ => Ok(h),
        }
    }

    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        self.trunk.forward_intermediates(x)
    }

    fn feature_info(&self) -> &[FeatureInfo] {
        &self.trunk.feature_info
    }

    fn get_classifier(&self) -> Option<&Linear> {
        self.classifier.as_ref()
    }

    fn reset_classifier(&mut self, num_classes: usize, global_pool: Option<&str>) -> Result<()> {
        let mult = self.pool.pool_type.feat_mult();
        let mut pool = self.pool;
        super::reset_pool(&mut pool, global_pool, num_classes, &self.cfg.name)?;
        if pool.pool_type.feat_mult() != mult {
            return Err(Error::BadArgument {
                model: self.cfg.name.clone(),
                msg: "the head conv is sized for the pooled width, pooling can not change it"
                    .into(),
            });
        }
        self.pool = pool;
        self.classifier = super::new_classifier(self.head_hidden_size(), num_classes)?;
        Ok(())
    }

    fn num_classes(&self) -> usize {
        self.classifier.as_ref().map_or(0, Linear::out_features)
    }

    fn num_features(&self) -> usize {
        self.trunk.out_chs
    }

    fn pretrained_cfg(&self) -> &PretrainedCfg {
        &self.cfg
    }

    fn group_matcher(&self, coarse: bool) -> Vec<GroupRule> {
        stem_and_blocks_matcher(coarse)
    }
}

/// `_gen_mobilenet_v3` with `arch` at `width` and `depth`: head 1280 (large) or 1024 (small),
/// hard-swish or ReLU (the minimal forms), squeeze-excite rounded to 8, the stem fixed below
/// width 0.75.
const fn mobilenet_v3(arch: ArchDef, head: usize, act: Activation, width: f64) -> MobileNetV3Cfg {
    MobileNetV3Cfg {
        arch,
        channel_multiplier: width,
        depth_multiplier: 1.0,
        head,
        act,
        se_round_divisor: Some(8),
        stem_size: 16,
        fix_stem: width < 0.75,
        head_norm: false,
        layer_scale: None,
        tf: false,
    }
}

/// `_gen_mobilenet_v3` for `mobilenetv3_large_*` and `mobilenetv3_small_*` at `width`.
const fn large(width: f64) -> MobileNetV3Cfg {
    mobilenet_v3(LARGE, 1280, Activation::HardSwish, width)
}

/// See [`large`].
const fn small(width: f64) -> MobileNetV3Cfg {
    mobilenet_v3(SMALL, 1024, Activation::HardSwish, width)
}

/// `_gen_lcnet`: hard-swish, head 1280, squeeze-excite rounded by Python's `round`.
const fn lcnet(width: f64) -> MobileNetV3Cfg {
    MobileNetV3Cfg {
        se_round_divisor: None,
        fix_stem: false,
        ..mobilenet_v3(LCNET, 1280, Activation::HardSwish, width)
    }
}

/// `_gen_mobilenet_v4` (the convolutional ones): ReLU, head 1280 with `norm_head`, the stem
/// fixed below width 1.
const fn mobilenet_v4(arch: ArchDef, stem_size: usize, width: f64) -> MobileNetV3Cfg {
    MobileNetV3Cfg {
        stem_size,
        fix_stem: width < 1.0,
        head_norm: true,
        ..mobilenet_v3(arch, 1280, Activation::Relu, width)
    }
}

/// A TensorFlow port (timm's `tf_` names).
const fn tf(c: MobileNetV3Cfg) -> MobileNetV3Cfg {
    MobileNetV3Cfg { tf: true, ..c }
}

/// The family's registration: [`variants`], built by [`MobileNetV3::new`].
pub(crate) const FAMILY: Variants<MobileNetV3Cfg, MobileNetV3> = Variants {
    variants,
    new: MobileNetV3::new,
};

/// Every registered MobileNetV3-class model: (name, architecture, default pretrained config).
pub fn variants() -> Vec<(&'static str, MobileNetV3Cfg, PretrainedCfg)> {
    let large_minimal = mobilenet_v3(LARGE_MINIMAL, 1280, Activation::Relu, 1.0);
    let small_minimal = mobilenet_v3(SMALL_MINIMAL, 1024, Activation::Relu, 1.0);
    // (name, architecture, timm's default tag, bilinear, Inception mean/std), all at 224
    let table: [(&str, MobileNetV3Cfg, &str, bool, bool); 16] = [
        (
            "mobilenetv3_large_075",
            large(0.75),
            "untrained",
            true,
            false,
        ),
        ("mobilenetv3_large_100", large(1.0), "ra_in1k", false, false),
        (
            "mobilenetv3_small_050",
            small(0.5),
            "lamb_in1k",
            false,
            false,
        ),
        (
            "mobilenetv3_small_075",
            small(0.75),
            "lamb_in1k",
            false,
            false,
        ),
        (
            "mobilenetv3_small_100",
            small(1.0),
            "lamb_in1k",
            false,
            false,
        ),
        (
            "tf_mobilenetv3_large_075",
            tf(large(0.75)),
            "in1k",
            true,
            true,
        ),
        (
            "tf_mobilenetv3_large_100",
            tf(large(1.0)),
            "in1k",
            true,
            true,
        ),
        (
            "tf_mobilenetv3_large_minimal_100",
            tf(large_minimal),
            "in1k",
            true,
            true,
        ),
        (
            "tf_mobilenetv3_small_075",
            tf(small(0.75)),
            "in1k",
            true,
            true,
        ),
        (
            "tf_mobilenetv3_small_100",
            tf(small(1.0)),
            "in1k",
            true,
            true,
        ),
        (
            "tf_mobilenetv3_small_minimal_100",
            tf(small_minimal),
            "in1k",
            true,
            true,
        ),
        ("lcnet_035", lcnet(0.35), "untrained", true, false),
        ("lcnet_050", lcnet(0.5), "ra2_in1k", false, false),
        ("lcnet_075", lcnet(0.75), "ra2_in1k", false, false),
        ("lcnet_100", lcnet(1.0), "ra2_in1k", false, false),
        ("lcnet_150", lcnet(1.5), "untrained", true, false),
    ];
    let bilinear = |c: PretrainedCfg| PretrainedCfg {
        interpolation: "bilinear".into(),
        ..c
    };
    let mut out: Vec<_> = table
        .iter()
        .map(|&(name, arch, tag, bilin, inception)| {
            let c = cfg(name, tag, 224, None, 0.875, inception);
            (name, arch, if bilin { bilinear(c) } else { c })
        })
        .collect();
    // trained at 256, tested at 320
    let name = "mobilenetv3_large_150d";
    let c = cfg(name, "ra4_e3600_r256_in1k", 256, Some(320), 0.95, true);
    let arch = MobileNetV3Cfg {
        depth_multiplier: 1.2,
        ..large(1.5)
    };
    out.push((name, arch, bilinear(c)));
    // MobileNetV4: the small ones at 224 tested at 256 with crop 0.95, the others at 1.0
    let small = |n: &str, tag: &str, inception: bool| PretrainedCfg {
        test_crop_pct: Some(0.95),
        ..cfg(n, tag, 224, Some(256), 0.875, inception)
    };
    let mnv4 = [
        ("mobilenetv4_conv_small_035", MNV4_CONV_SMALL, 32, 0.35),
        ("mobilenetv4_conv_small_050", MNV4_CONV_SMALL, 32, 0.5),
        ("mobilenetv4_conv_small", MNV4_CONV_SMALL, 32, 1.0),
        ("mobilenetv4_conv_medium", MNV4_CONV_MEDIUM, 32, 1.0),
        ("mobilenetv4_conv_large", MNV4_CONV_LARGE, 24, 1.0),
    ];
    let mnv4_cfgs = [
        small(mnv4[0].0, "untrained", true),
        small(mnv4[1].0, "e3000_r224_in1k", true),
        small(mnv4[2].0, "e2400_r224_in1k", false),
        cfg(mnv4[3].0, "e500_r256_in1k", 256, Some(320), 0.95, false),
        cfg(mnv4[4].0, "e600_r384_in1k", 384, Some(448), 0.95, false),
    ];
    for ((name, arch, stem, width), c) in mnv4.into_iter().zip(mnv4_cfgs) {
        out.push((name, mobilenet_v4(arch, stem, width), c));
    }
    // the hybrids: layer scale 1e-5; large with GELU
    let hybrid = |arch, stem, width, act| MobileNetV3Cfg {
        act,
        layer_scale: Some(1e-5),
        ..mobilenet_v4(arch, stem, width)
    };
    let hybrids = [
        (
            "mobilenetv4_hybrid_medium",
            MNV4_HYBRID_MEDIUM,
            32,
            1.0,
            Activation::Relu,
        ),
        (
            "mobilenetv4_hybrid_medium_075",
            MNV4_HYBRID_MEDIUM,
            32,
            0.75,
            Activation::Relu,
        ),
        (
            "mobilenetv4_hybrid_large",
            MNV4_HYBRID_LARGE,
            24,
            1.0,
            Activation::Gelu,
        ),
        (
            "mobilenetv4_hybrid_large_075",
            MNV4_HYBRID_LARGE,
            24,
            0.75,
            Activation::Gelu,
        ),
    ];
    let hybrid_cfgs = [
        cfg(
            hybrids[0].0,
            "e200_r256_in12k_ft_in1k",
            256,
            Some(320),
            0.95,
            false,
        ),
        cfg(hybrids[1].0, "untrained", 224, None, 0.95, false),
        cfg(
            hybrids[2].0,
            "ix_e600_r384_in1k",
            384,
            Some(448),
            0.95,
            false,
        ),
        cfg(hybrids[3].0, "untrained", 256, None, 0.95, false),
    ];
    for ((name, arch, stem, width, act), c) in hybrids.into_iter().zip(hybrid_cfgs) {
        out.push((name, hybrid(arch, stem, width, act), c));
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::{create_model, ModelArgs};
    use kiln_engine::{DType, Tensor};

    #[test]
    fn efficient_head_keeps_its_pooled_width() {
        let args = ModelArgs {
            global_pool: Some("catavgmax".into()),
            ..Default::default()
        };
        let mut m = create_model("mobilenetv3_small_100", &args).unwrap();
        let conv_head = m
            .named_parameters()
            .into_iter()
            .find(|t| t.name == "conv_head.weight")
            .unwrap();
        assert_eq!(conv_head.tensor.shape(), [1024, 1152, 1, 1]);
        let x = Tensor::zeros(&[2, 3, 32, 32], DType::F32).unwrap();
        let features = m.forward_features(&x).unwrap();
        assert_eq!(m.forward_head(&features, true).unwrap().shape(), [2, 1024]);
        assert!(m.reset_classifier(5, Some("avg")).is_err());
        m.reset_classifier(0, None).unwrap();
        assert_eq!((m.num_classes(), m.num_features()), (0, 576));
        assert_eq!(m.forward(&x).unwrap().shape(), [2, 1024]);
    }
}
