//! timm's MobileNetV3 class (V3, LCNet, V4): its config, the model with its efficient head
//! (pool, conv_head, act, classifier), and its `Model` surface.

use crate::layers::{Activation, BatchNormAct2d, Conv2d, ConvHead, PadType, PoolType};
use crate::models::efficientnet::blocks::init_conv_goog;
use crate::models::efficientnet::builder::{decode_arch_def, BuilderCfg, Trunk};
use crate::models::efficientnet::{init_linear_goog, stem_and_blocks_matcher, ArchDef, Depth};
use crate::models::{GroupRule, Model, PretrainedCfg};
use crate::{Children, ModelArgs, Result};
use kiln_engine::Tensor;

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
    /// A bias on `conv_head` when it has no norm (timm's `head_bias`; false for
    /// `mobilenetv3_rw`).
    pub head_bias: bool,
    /// The squeeze-excite's activation is ReLU (timm's `force_act_layer`), not the block's.
    pub se_relu: bool,
    /// BatchNorm eps 1e-3 (TensorFlow's) with PyTorch padding (`mobilenetv3_rw`).
    pub tf_eps: bool,
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
    #[child(flatten)]
    head: ConvHead,
    cfg: PretrainedCfg,
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
            bn_eps: if mc.tf || mc.tf_eps { 1e-3 } else { 1e-5 },
            act: mc.act,
            se_from_exp: true,
            se_round_divisor: mc.se_round_divisor,
            se_force_act: mc.se_relu.then_some(Activation::Relu),
            se_gate: Activation::HardSigmoid,
            layer_scale: mc.layer_scale,
            stem_kernel: 3,
            drop_path_rate: args.drop_path_or(0.0),
        };
        let arch = decode_arch_def(mc.arch, Depth::ceil(mc.depth_multiplier))?;
        let stem = match mc.fix_stem {
            true => mc.stem_size,
            false => bc.round_chs(mc.stem_size),
        };
        let trunk = Trunk::new(&bc, args.in_chans, stem, &arch)?;
        let pool = PoolType::parse(args.global_pool.as_deref().unwrap_or("avg"))?;
        let pooled = trunk.out_chs * pool.feat_mult();
        let conv_head = Conv2d::new(pooled, mc.head, 1, 1, 0, mc.head_bias && !mc.head_norm)?;
        init_conv_goog(&conv_head)?;
        let norm_head = mc
            .head_norm
            .then(|| BatchNormAct2d::new(mc.head, bc.bn_eps, Some(bc.act)))
            .transpose()?;
        let head = ConvHead::new(pool, conv_head, bc.act, args.drop_rate).with_norm(norm_head);
        let mut model = MobileNetV3 { trunk, head, cfg };
        model.reset_classifier(args.num_classes, None)?;
        if let Some(c) = model.get_classifier() {
            init_linear_goog(c)?;
        }
        Ok(model)
    }
}

impl MobileNetV3 {
    /// Every block's stochastic-depth rate (`drop_path_rate · block_idx / block_count`).
    pub fn drop_path_rates(&self) -> Vec<f64> {
        self.trunk.drop_path_rates()
    }
}

crate::models::shared::model_module!(MobileNetV3);

impl Model for MobileNetV3 {
    crate::models::shared::model_fields!(
        head: head,
        cfg: cfg,
        feature_info: trunk.feature_info,
        grad_checkpointing: trunk.grad_checkpointing,
    );

    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        self.trunk.forward(x)
    }

    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        self.trunk.forward_intermediates(x)
    }

    fn group_matcher(&self, coarse: bool) -> Vec<GroupRule> {
        stem_and_blocks_matcher(coarse)
    }
}

crate::model_kwargs::takes_none!(MobileNetV3Cfg);
