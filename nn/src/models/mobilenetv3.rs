//! MobileNetV3 large and small (timm's `mobilenetv3.py`): hard-swish (ReLU in the early blocks),
//! squeeze-excite sized from the expanded channels with a ReLU and a hard-sigmoid gate, and the
//! "efficient head": pool, `conv_head` (biased 1×1), hard-swish, flatten, dropout, `classifier`.

use super::efficientnet::{cfg, init_linear_goog, stem_and_blocks_matcher};
use super::efficientnet_blocks::init_conv_goog;
use super::efficientnet_builder::{decode_arch_def, BuilderCfg, Trunk};
use super::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::layers::SelectAdaptivePool2d;
use crate::layers::{Activation, BatchNorm2d, Conv2d, Linear, PadType, PoolType};
use crate::module::{join, NamedTensor};
use crate::{Error, ModelArgs, Module, Result};
use kiln_engine::{MemoryFormat, Tensor};

/// timm's `_gen_mobilenet_v3` block strings for `mobilenetv3_large_*`.
const LARGE: [&[&str]; 7] = [
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
const SMALL: [&[&str]; 6] = [
    &["ds_r1_k3_s2_e1_c16_se0.25_nre"],
    &["ir_r1_k3_s2_e4.5_c24_nre", "ir_r1_k3_s1_e3.67_c24_nre"],
    &["ir_r1_k5_s2_e4_c40_se0.25", "ir_r2_k5_s1_e6_c40_se0.25"],
    &["ir_r2_k5_s1_e3_c48_se0.25"],
    &["ir_r3_k5_s2_e6_c96_se0.25"],
    &["cn_r1_k1_s1_c576"],
];

/// What distinguishes one MobileNetV3 variant from another.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MobileNetV3Cfg {
    /// The small architecture (head 1024) rather than the large one (head 1280).
    pub small: bool,
    /// Width multiplier.
    pub channel_multiplier: f64,
}

/// timm's `MobileNetV3`.
pub struct MobileNetV3 {
    trunk: Trunk,
    pool: SelectAdaptivePool2d,
    conv_head: Conv2d,
    act: Activation,
    classifier: Option<Linear>,
    drop_rate: f64,
    cfg: PretrainedCfg,
    training: bool,
}

impl MobileNetV3 {
    /// Builds the model with timm's `_init_weight_goog` init.
    pub fn new(mc: &MobileNetV3Cfg, args: &ModelArgs, cfg: PretrainedCfg) -> Result<MobileNetV3> {
        let bc = BuilderCfg {
            channel_multiplier: mc.channel_multiplier,
            channel_divisor: 8,
            pad: PadType::Symmetric,
            bn_eps: 1e-5,
            act: Activation::HardSwish,
            se_from_exp: true,
            se_round_divisor: Some(8),
            se_force_act: Some(Activation::Relu),
            se_gate: Activation::HardSigmoid,
            drop_path_rate: args.drop_path_rate,
        };
        let (arch, head): (&[&[&str]], usize) = if mc.small {
            (&SMALL, 1024)
        } else {
            (&LARGE, 1280)
        };
        let arch = decode_arch_def(arch, 1.0)?;
        // timm's fix_stem: the stem stays 16 wide below multiplier 0.75
        let stem = if mc.channel_multiplier < 0.75 {
            16
        } else {
            bc.round_chs(16)
        };
        let trunk = Trunk::new(&bc, args.in_chans, stem, &arch)?;
        let pool = SelectAdaptivePool2d {
            pool_type: PoolType::parse(args.global_pool.as_deref().unwrap_or("avg"))?,
        };
        let pooled = trunk.out_chs * pool.pool_type.feat_mult();
        let conv_head = Conv2d::new(pooled, head, 1, 1, 0, true)?;
        init_conv_goog(&conv_head)?;
        let mut model = MobileNetV3 {
            trunk,
            pool,
            conv_head,
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

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        self.trunk.collect(prefix, out);
        self.conv_head.collect(&join(prefix, "conv_head"), out);
        if let Some(c) = &self.classifier {
            c.collect(&join(prefix, "classifier"), out);
        }
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        self.trunk.set_training(training);
    }

    fn for_each_batch_norm(&mut self, f: &mut dyn FnMut(&mut BatchNorm2d)) {
        self.trunk.for_each_batch_norm(f);
    }

    fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        self.trunk.set_memory_format(format)?;
        self.conv_head.set_memory_format(format)
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
        h = self.act.forward(&self.conv_head.forward(&h)?)?;
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

/// Every registered MobileNetV3: (name, architecture, default pretrained config).
pub fn variants() -> Vec<(&'static str, MobileNetV3Cfg, PretrainedCfg)> {
    // (name, small, width multiplier, timm's default tag, interpolation is bilinear)
    const VARIANTS: [(&str, bool, f64, &str, bool); 5] = [
        ("mobilenetv3_large_075", false, 0.75, "untrained", true),
        ("mobilenetv3_large_100", false, 1.0, "ra_in1k", false),
        ("mobilenetv3_small_050", true, 0.5, "lamb_in1k", false),
        ("mobilenetv3_small_075", true, 0.75, "lamb_in1k", false),
        ("mobilenetv3_small_100", true, 1.0, "lamb_in1k", false),
    ];
    VARIANTS
        .iter()
        .map(|&(name, small, channel_multiplier, tag, bilinear)| {
            let arch = MobileNetV3Cfg {
                small,
                channel_multiplier,
            };
            let mut pretrained = cfg(name, tag, 224, None, 0.875, false);
            if bilinear {
                pretrained.interpolation = "bilinear".into();
            }
            (name, arch, pretrained)
        })
        .collect()
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
