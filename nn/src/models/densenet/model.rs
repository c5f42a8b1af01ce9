//! DenseNet: its config and stems, the model (dense blocks and transitions, head) and its `Model`
//! surface.

use super::block::{conv, DenseBlock, DenseTransition};
use crate::layers::{BatchNorm2d, BlurPool2d, ClassifierHead, Conv2d, PoolType};
use crate::models::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::{Children, ModelArgs, Module, Result};
use kiln_engine::{Pool2d, Tensor};

/// timm's DenseNet stems (`stem_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StemType {
    /// One 7×7 stride-2 conv to `2 · growth_rate` channels ('').
    Plain,
    /// 'deep': 3×3 convs to `growth_rate`, `growth_rate`, then `2 · growth_rate` (the first at
    /// stride 2).
    Deep,
}

/// What distinguishes one DenseNet from another (timm's `DenseNet` arguments).
#[derive(Debug, Clone, Copy)]
pub struct DenseNetCfg {
    /// Channels each dense layer adds (`k` in the paper).
    pub growth_rate: usize,
    /// Dense layers per block.
    pub block_config: [usize; 4],
    /// Bottleneck width over `growth_rate` (timm's default 4).
    pub bn_size: usize,
    /// The stem.
    pub stem_type: StemType,
    /// timm's `aa_layer=BlurPool2d` (with `aa_stem_only`): the stem's max pool at stride 1
    /// followed by a stride-2 blur.
    pub blur_stem: bool,
}

/// The stem's convs (`conv{i}`, each followed by `norm{i}` and ReLU), then `pool0`.
#[derive(Children)]
#[children(group)]
struct Stem {
    #[child(each = "conv{}", pair = "norm{}")]
    convs: Vec<(Conv2d, BatchNorm2d)>,
    blur: Option<BlurPool2d>,
}

impl Stem {
    fn new(dc: &DenseNetCfg, in_chans: usize) -> Result<Stem> {
        let init = 2 * dc.growth_rate;
        let shapes = match dc.stem_type {
            StemType::Plain => vec![(in_chans, init, 7, 2)],
            StemType::Deep => {
                let g = dc.growth_rate;
                vec![(in_chans, g, 3, 2), (g, g, 3, 1), (g, init, 3, 1)]
            }
        };
        let convs = shapes
            .into_iter()
            .map(|(i, o, k, s)| Ok((conv(i, o, k, s)?, BatchNorm2d::new(o)?)))
            .collect::<Result<_>>()?;
        let blur = dc.blur_stem.then(|| BlurPool2d::new(init));
        Ok(Stem { convs, blur })
    }

    /// The last norm's output (timm's first feature), before `pool0`.
    fn forward_convs(&self, x: &Tensor) -> Result<Tensor> {
        self.convs
            .iter()
            .try_fold(x.clone(), |h, (c, n)| n.forward_conv(c, &h, None, true))
    }

    /// `pool0`: a 3×3 max pool at stride 2, or at stride 1 then the blur at stride 2.
    fn pool(&self, x: &Tensor) -> Result<Tensor> {
        match &self.blur {
            None => Ok(x.max_pool2d(Pool2d::new(3, 2, 1))?),
            Some(blur) => blur.forward(&x.max_pool2d(Pool2d::new(3, 1, 1))?),
        }
    }
}

/// timm's `DenseNet`.
#[derive(Children)]
pub struct DenseNet {
    #[child(name = "features")]
    stem: Stem,
    /// Each dense block with the transition after it (none after the last).
    #[child(
        each = "features.denseblock{}",
        pair = "features.transition{}",
        start = 1
    )]
    stages: Vec<(DenseBlock, Option<DenseTransition>)>,
    #[child(name = "features.norm5")]
    norm5: BatchNorm2d,
    #[child(flatten)]
    head: ClassifierHead,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
    /// timm's `set_grad_checkpointing`: every dense layer's bottleneck (the concatenation,
    /// `norm1` and `conv1`) runs checkpointed, as timm's `memory_efficient`.
    grad_checkpointing: bool,
}

impl DenseNet {
    /// Builds a DenseNet with timm's ("the official torch repo's") init: convs N(0, 2/fan_in),
    /// BNs γ=1 β=0, the classifier PyTorch's default weight with a zero bias.
    pub fn new(dc: &DenseNetCfg, args: &ModelArgs, cfg: PretrainedCfg) -> Result<DenseNet> {
        crate::models::shared::refuse_drop_path(args.drop_path_or(0.0), &cfg.name)?;
        let stem = Stem::new(dc, args.in_chans)?;
        let mut num_features = 2 * dc.growth_rate;
        let stem_norm = stem.convs.len() - 1;
        let mut feature_info = vec![FeatureInfo {
            num_chs: num_features,
            reduction: 2,
            module: format!("features.norm{}", if stem_norm > 0 { 2 } else { 0 }),
        }];
        let (mut stages, mut reduction) = (Vec::new(), 4);
        for (i, &layers) in dc.block_config.iter().enumerate() {
            let block = DenseBlock::new(layers, num_features, dc.bn_size, dc.growth_rate)?;
            num_features += layers * dc.growth_rate;
            let mut transition = None;
            if i + 1 < dc.block_config.len() {
                feature_info.push(FeatureInfo {
                    num_chs: num_features,
                    reduction,
                    module: format!("features.denseblock{}", i + 1),
                });
                reduction *= 2;
                transition = Some(DenseTransition::new(num_features, num_features / 2)?);
                num_features /= 2;
            }
            stages.push((block, transition));
        }
        feature_info.push(FeatureInfo {
            num_chs: num_features,
            reduction,
            module: "features.norm5".into(),
        });
        let mut model = DenseNet {
            stem,
            stages,
            norm5: BatchNorm2d::new(num_features)?,
            head: ClassifierHead::new(num_features, 0, PoolType::Avg, args.drop_rate)?
                .named("classifier"),
            feature_info,
            cfg,
            grad_checkpointing: false,
        };
        model.reset_classifier(args.num_classes, args.global_pool.as_deref())?;
        if let Some(b) = model.head.fc.as_ref().and_then(|fc| fc.bias.as_ref()) {
            b.copy_(&Tensor::zeros(b.shape(), b.dtype())?)?;
        }
        Ok(model)
    }

    /// The stem (before `pool0`), each block's output, and the final BN + ReLU; `keep` gets
    /// them in order.
    fn run(&self, x: &Tensor, keep: &mut dyn FnMut(&Tensor)) -> Result<Tensor> {
        let h = self.stem.forward_convs(x)?;
        keep(&h);
        let mut h = self.stem.pool(&h)?;
        for (block, transition) in &self.stages {
            h = block.forward(&h, self.grad_checkpointing)?;
            if let Some(t) = transition {
                keep(&h);
                h = t.forward(&h)?;
            }
        }
        let h = self.norm5.forward_act(&h, None, true)?;
        keep(&h);
        Ok(h)
    }
}

crate::models::shared::model_module!(DenseNet, not_prunable);

impl Model for DenseNet {
    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, &mut |_| {})
    }

    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut out = Vec::new();
        self.run(x, &mut |h| out.push(h.clone()))?;
        Ok(out)
    }

    fn group_matcher(&self, coarse: bool) -> Vec<GroupRule> {
        let stem = GroupRule::new(
            "stem",
            r"^features\.conv[012]|features\.norm[012]|features\.pool[012]",
        );
        if coarse {
            let blocks = r"^features\.(?:denseblock|transition)(\d+)";
            return vec![stem, GroupRule::new("blocks", blocks)];
        }
        vec![
            stem,
            GroupRule::new("blocks", r"^features\.denseblock(\d+)\.denselayer(\d+)"),
            GroupRule::new("blocks", r"^features\.transition(\d+)").with_suffix(99999.0),
        ]
    }

    crate::models::shared::model_fields!(head, cfg, feature_info, grad_checkpointing);
}
