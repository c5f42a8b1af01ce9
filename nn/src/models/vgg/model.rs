//! VGG: its config, the model (`features.N` numbered as timm's Sequential, ConvMlp pre-logits,
//! head) and its `Model` surface.

use super::block::{ConvMlp, Feature};
use crate::layers::{ClassifierHead, Head, PoolType};
use crate::models::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::{init, Children, FeatureCfg, ModelArgs, Module, OutIndices, Result};
use kiln_engine::Tensor;

/// Channels of `pre_logits` (timm's `head_hidden_size`).
const HEAD_HIDDEN: usize = 4096;

/// What distinguishes one VGG from another: timm's `cfgs` entry, split at its 'M's.
#[derive(Debug, Clone, Copy)]
pub struct VggCfg {
    /// Each stage's conv widths; every stage ends in a 2×2 max pool.
    pub stages: &'static [&'static [usize]],
    /// A BatchNorm after every conv (the `_bn` names).
    pub batch_norm: bool,
}

/// timm's `VGG`.
#[derive(Children)]
pub struct Vgg {
    /// timm's flat `features`: each stage's convs (with BNs and ReLUs), then its max pool.
    #[child]
    features: Vec<Feature>,
    #[child]
    pre_logits: ConvMlp,
    /// timm's `ClassifierHead` over the conv MLP's 4096 features.
    #[child]
    head: ClassifierHead,
    num_features: usize,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
}

impl Vgg {
    /// Builds a VGG with timm's `_initialize_weights`: convs (the head's too) N(0, 2/fan_out)
    /// with zero biases, BNs γ=1 β=0, the classifier N(0, 0.01²) with a zero bias.
    pub fn new(vc: &VggCfg, args: &ModelArgs, cfg: PretrainedCfg) -> Result<Vgg> {
        crate::models::shared::refuse_drop_path(args.drop_path_or(0.0), &cfg.name)?;
        let (mut features, mut feature_info) = (Vec::new(), Vec::new());
        let (mut in_c, mut reduction) = (args.in_chans, 1);
        for widths in vc.stages {
            for &w in widths.iter() {
                Feature::push_conv(&mut features, in_c, w, vc.batch_norm)?;
                in_c = w;
            }
            feature_info.push(FeatureInfo {
                num_chs: in_c,
                reduction,
                module: format!("features.{}", features.len() - 1),
            });
            features.push(Feature::Pool);
            reduction *= 2;
        }
        feature_info.push(FeatureInfo {
            num_chs: in_c,
            reduction,
            module: format!("features.{}", features.len() - 1),
        });
        let mut model = Vgg {
            features,
            pre_logits: ConvMlp::new(in_c, HEAD_HIDDEN, 7, args.drop_rate)?,
            head: ClassifierHead::new(HEAD_HIDDEN, 0, PoolType::Avg, args.drop_rate)?,
            num_features: in_c,
            feature_info,
            cfg,
        };
        model.reset_classifier(args.num_classes, args.global_pool.as_deref())?;
        if let Some(fc) = &model.head.fc {
            fc.weight.copy_(&init::normal(fc.weight.shape(), 0.01)?)?;
            if let Some(b) = &fc.bias {
                b.copy_(&Tensor::zeros(b.shape(), b.dtype())?)?;
            }
        }
        Ok(model)
    }

    /// The features; `keep` gets each stage's output before its pool, then the last pool's.
    fn run(&self, x: &Tensor, keep: &mut dyn FnMut(&Tensor)) -> Result<Tensor> {
        Feature::run(&self.features, x, keep)
    }
}

crate::models::shared::model_module!(Vgg, not_prunable);

impl Model for Vgg {
    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, &mut |_| {})
    }

    /// `pre_logits` (the conv MLP), then the head's pool and dropout; `pre_logits` stops before
    /// `head.fc`, with the pooled 4096 features (timm's `head_hidden_size`).
    fn forward_head(&self, x: &Tensor, pre_logits: bool) -> Result<Tensor> {
        self.head
            .forward_head(&self.pre_logits.forward(x)?, pre_logits)
    }

    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut out = Vec::new();
        self.run(x, &mut |h| out.push(h.clone()))?;
        Ok(out)
    }

    /// timm's `feature_cfg`: the five stages and the last pool.
    fn feature_cfg(&self) -> FeatureCfg {
        FeatureCfg {
            out_indices: OutIndices::List((0..6).collect()),
            ..FeatureCfg::default()
        }
    }

    fn num_features(&self) -> usize {
        self.num_features
    }

    fn head_hidden_size(&self) -> usize {
        self.head.num_features()
    }

    /// timm's: the first conv, then one group per `features` index (a `_bn` name's BN its own).
    fn group_matcher(&self, _coarse: bool) -> Vec<GroupRule> {
        vec![
            GroupRule::new("stem", r"^features\.0"),
            GroupRule::new("blocks", r"^features\.(\d+)"),
        ]
    }

    crate::models::shared::model_fields!(head: head, cfg: cfg, feature_info: feature_info);
}

crate::model_kwargs::takes_none!(VggCfg);
