//! ReXNet: the model (stem, the `features` sequence of bottlenecks ending in a 1×1 conv, head)
//! and its `Model` surface.

use super::block::{conv_norm_act, LinearBottleneck};
use super::config::RexNetCfg;
use crate::layers::PoolType;
use crate::layers::{checkpoint_seq, Activation, Checkpointed, ClassifierHead, ConvNormAct};
use crate::models::efficientnet::init_linear_goog;
use crate::models::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::{Children, ModelArgs, Module, Result};
use kiln_engine::Tensor;

/// One entry of timm's `features` sequence: a bottleneck, or the final 1×1 conv.
#[derive(Children)]
pub enum Feature {
    /// A `LinearBottleneck`.
    Block(Box<LinearBottleneck>),
    /// The final `ConvNormAct` (SiLU) to the head's width.
    Conv(ConvNormAct),
}

impl Module for Feature {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Feature::Block(b) => b.forward(x),
            Feature::Conv(c) => c.forward(x),
        }
    }
}

/// timm's `RexNet`.
#[derive(Children)]
pub struct RexNet {
    #[child]
    stem: ConvNormAct,
    #[child(each = "features.{}")]
    features: Vec<Checkpointed<Feature>>,
    #[child]
    head: ClassifierHead,
    /// Indices into `features` of the feature taps (timm's `stage_ends`).
    stage_ends: Vec<usize>,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
    grad_checkpointing: bool,
}

impl RexNet {
    /// Builds a ReXNet with timm's `efficientnet_init_weights` (N(0, 2/fan_out) convs,
    /// U(±1/√out) classifier, zero biases).
    pub fn new(rc: &RexNetCfg, args: &ModelArgs, cfg: PretrainedCfg) -> Result<RexNet> {
        let silu = Some(Activation::Silu);
        let stem_chs = rc.stem_chs();
        let stem = conv_norm_act(args.in_chans, stem_chs, 3, 2, 1, silu)?;
        let plan = rc.blocks();
        let dpr = args.drop_path_or(0.0);
        let (mut features, mut feature_info) = (Vec::new(), Vec::new());
        let (mut prev, mut feat_chs, mut curr_stride) = (stem_chs, stem_chs, 2);
        for (i, b) in plan.iter().enumerate() {
            if b.stride > 1 {
                feature_info.push(FeatureInfo {
                    num_chs: feat_chs,
                    reduction: curr_stride,
                    module: match i {
                        0 => "stem".into(),
                        _ => format!("features.{}", i - 1),
                    },
                });
            }
            let rate = dpr * i as f64 / (plan.len() - 1) as f64;
            let shape = (b.stride, b.exp_ratio, b.se_ratio);
            let block = LinearBottleneck::new(rc, prev, b.out_chs, shape, rate)?;
            feat_chs = block.out_chs();
            features.push(Checkpointed::new(Feature::Block(Box::new(block))));
            curr_stride *= b.stride;
            prev = b.out_chs;
        }
        feature_info.push(FeatureInfo {
            num_chs: feat_chs,
            reduction: curr_stride,
            module: format!("features.{}", features.len() - 1),
        });
        let pen = rc.pen_chs();
        let last = conv_norm_act(prev, pen, 1, 1, 1, silu)?;
        features.push(Checkpointed::new(Feature::Conv(last)));
        let stage_ends = feature_info
            .iter()
            .map(|f| {
                f.module
                    .trim_start_matches("features.")
                    .parse()
                    .unwrap_or(0)
            })
            .collect();
        let mut model = RexNet {
            stem,
            features,
            head: ClassifierHead::new(pen, 0, PoolType::Avg, args.drop_rate)?,
            stage_ends,
            feature_info,
            cfg,
            grad_checkpointing: false,
        };
        model.reset_classifier(args.num_classes, args.global_pool.as_deref())?;
        if let Some(fc) = &model.head.fc {
            init_linear_goog(fc)?;
        }
        Ok(model)
    }

    /// Every bottleneck's stochastic-depth rate (`drop_path_rate · block_idx / (blocks − 1)`).
    pub fn drop_path_rates(&self) -> Vec<f64> {
        (self.features.iter())
            .filter_map(|f| match &*f.get() {
                Feature::Block(b) => Some(b.drop_path),
                Feature::Conv(_) => None,
            })
            .collect()
    }
}

crate::models::shared::model_module!(RexNet);

impl Model for RexNet {
    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.stem.forward(x)?;
        checkpoint_seq(self.features.iter(), x, self.grad_checkpointing)
    }

    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut h = self.stem.forward(x)?;
        let mut out = Vec::new();
        let last = self.stage_ends.last().copied().unwrap_or(0);
        for (i, f) in self.features.iter().take(last + 1).enumerate() {
            h = f.forward(&h)?;
            if self.stage_ends.contains(&i) {
                out.push(h.clone());
            }
        }
        Ok(out)
    }

    fn group_matcher(&self, _coarse: bool) -> Vec<GroupRule> {
        vec![
            GroupRule::new("stem", r"^stem"),
            GroupRule::new("blocks", r"^features\.(\d+)"),
        ]
    }

    crate::models::shared::model_fields!(head, cfg, feature_info, grad_checkpointing);
}
