//! timm's models, one family per folder, behind the common [`Model`] surface.

/// The two [`Model`] accessors of a model whose head is the [`crate::layers::ClassifierHead`] or
/// [`crate::layers::TokenHead`] in `$field` (the head methods then default to it).
macro_rules! classifier_head_in {
    ($field:ident) => {
        fn classifier_head(&self) -> Option<&dyn $crate::layers::Head> {
            Some(&self.$field)
        }

        fn classifier_head_mut(&mut self) -> Option<&mut dyn $crate::layers::Head> {
            Some(&mut self.$field)
        }
    };
}
use classifier_head_in;

mod args;
pub mod byobnet;
pub mod convnext;
pub mod densenet;
pub mod efficientnet;
pub mod eva;
mod family;
pub mod mobilenetv3;
pub mod regnet;
pub mod resnest;
pub mod resnet;
pub mod swin;
pub mod vgg;
pub mod vit;

pub use args::ModelArgs;
pub(crate) use family::{Build, Family};

use crate::features::FeatureCfg;
use crate::layers::{new_classifier, reset_pool, Head, Linear};
use crate::{Error, Module, Result};
use kiln_engine::Tensor;

/// timm's ImageNet mean.
pub const IMAGENET_DEFAULT_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// timm's ImageNet std.
pub const IMAGENET_DEFAULT_STD: [f64; 3] = [0.229, 0.224, 0.225];
/// timm's Inception mean.
pub const IMAGENET_INCEPTION_MEAN: [f64; 3] = [0.5, 0.5, 0.5];
/// timm's Inception std.
pub const IMAGENET_INCEPTION_STD: [f64; 3] = [0.5, 0.5, 0.5];

/// Every registered family, in the order the registry looks a name up (each declares its
/// `FAMILY` in its own folder).
pub(crate) const FAMILIES: &[&dyn Family] = &[
    &resnet::FAMILY,
    &byobnet::FAMILY,
    &convnext::FAMILY,
    &densenet::FAMILY,
    &efficientnet::FAMILY,
    &mobilenetv3::FAMILY,
    &regnet::FAMILY,
    &resnest::FAMILY,
    &swin::FAMILY,
    &vgg::FAMILY,
    &vit::FAMILY,
    &eva::FAMILY,
];

/// Normalization (mean, std): timm's Inception constants (0.5) or its ImageNet ones.
fn mean_std(inception: bool) -> ([f64; 3], [f64; 3]) {
    if inception {
        (IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD)
    } else {
        (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)
    }
}

/// A model without stochastic depth refuses a `drop_path_rate` (timm's DenseNet and VGG take no
/// such argument: a TypeError there).
fn refuse_drop_path(drop_path_rate: f64, model: &str) -> Result<()> {
    if drop_path_rate > 0.0 {
        return Err(Error::BadArgument {
            model: model.into(),
            msg: format!(
                "this model has no stochastic depth (drop_path_rate {drop_path_rate}, --drop-path)"
            ),
        });
    }
    Ok(())
}

/// A model's pretrained config: what its weights expect at input (timm's `pretrained_cfg`).
#[derive(Debug, Clone, PartialEq)]
pub struct PretrainedCfg {
    /// `arch.tag`, e.g. `resnet50.a1_in1k`.
    pub name: String,
    /// The Hugging Face hub repo of the weights (`timm/resnet50.a1_in1k`), if any.
    pub hf_hub_id: Option<String>,
    /// (C, H, W) for training.
    pub input_size: [usize; 3],
    /// (C, H, W) for testing, when different.
    pub test_input_size: Option<[usize; 3]>,
    /// Spatial size of the final feature map at `input_size`.
    pub pool_size: [usize; 2],
    /// Eval center-crop fraction.
    pub crop_pct: f64,
    /// Eval crop fraction at `test_input_size`.
    pub test_crop_pct: Option<f64>,
    /// Eval crop mode (timm's `crop_mode`): `center`, `squash` or `border`.
    pub crop_mode: String,
    /// Resize interpolation (`bilinear`, `bicubic`).
    pub interpolation: String,
    /// Normalization mean per channel.
    pub mean: [f64; 3],
    /// Normalization std per channel.
    pub std: [f64; 3],
    /// Name of the first conv (for in_chans adaptation); comma-separated where several convs
    /// read the input (RepVGG's and MobileOne's stem branches, timm's tuple). See
    /// [`PretrainedCfg::first_convs`].
    pub first_conv: String,
    /// Name of the classifier; comma-separated where there are several (a distilled DeiT's
    /// `head,head_dist`, timm's tuple). See [`PretrainedCfg::classifiers`].
    pub classifier: String,
    /// Classes of the pretrained head.
    pub num_classes: usize,
}

impl PretrainedCfg {
    /// The classifier modules, one name each (`head` and `head_dist` for a distilled DeiT).
    pub fn classifiers(&self) -> impl Iterator<Item = &str> {
        self.classifier.split(',')
    }

    /// The convs that read the input, one name each (RepVGG's `stem.conv_kxk.conv` and
    /// `stem.conv_1x1.conv`).
    pub fn first_convs(&self) -> impl Iterator<Item = &str> {
        self.first_conv.split(',')
    }
}

/// A model that neither has a [`Head`] nor overrides the head methods.
fn no_head(model: &str) -> Error {
    Error::BadArgument {
        model: model.into(),
        msg: "this model defines no classifier head".into(),
    }
}

/// A model without a distillation token refuses [`Model::forward_distilled`].
fn no_distillation_head(model: &str) -> Error {
    Error::BadArgument {
        model: model.into(),
        msg: "no distillation token and head (token distillation needs a distilled DeiT, e.g. \
              deit_tiny_distilled_patch16_224, with classes)"
            .into(),
    }
}

/// One feature map a model exposes for feature extraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureInfo {
    /// Channels.
    pub num_chs: usize,
    /// Input-to-feature stride.
    pub reduction: usize,
    /// The module that produces it.
    pub module: String,
}

/// One rule of timm's dict `group_matcher`: a parameter whose name matches `regex` at its start
/// belongs to `group`; parameters sort by (the group's position among the rules' groups, the
/// numbers the regex captures, `suffix`), as timm's `group_with_matcher` sorts them.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRule {
    /// The group's name (`stem`, `blocks`, ...); rules may share one.
    pub group: String,
    /// A regex anchored at the name's start.
    pub regex: String,
    /// timm's ordinal suffix; `99999` (timm's `MATCH_PREV_GROUP`) puts the parameters in the
    /// layer of the ones sorted just before them (a final norm with the last block).
    pub suffix: Option<f64>,
}

impl GroupRule {
    /// A rule without a suffix.
    pub fn new(group: &str, regex: &str) -> GroupRule {
        GroupRule {
            group: group.into(),
            regex: regex.into(),
            suffix: None,
        }
    }

    /// This rule with timm's ordinal suffix.
    pub fn with_suffix(self, suffix: f64) -> GroupRule {
        GroupRule {
            suffix: Some(suffix),
            ..self
        }
    }
}

/// The surface every timm model shares.
pub trait Model: Module {
    /// The trunk: input to final feature map.
    fn forward_features(&self, x: &Tensor) -> Result<Tensor>;
    /// Pool, dropout and classifier; `pre_logits` stops before the classifier.
    fn forward_head(&self, x: &Tensor, pre_logits: bool) -> Result<Tensor> {
        match self.classifier_head() {
            Some(head) => head.forward_head(x, pre_logits),
            None => Err(no_head(&self.pretrained_cfg().name)),
        }
    }
    /// Every feature map listed in [`Model::feature_info`], in order.
    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>>;
    /// The feature maps' channels, reductions and modules.
    fn feature_info(&self) -> &[FeatureInfo];
    /// timm's `feature_cfg`: the maps `features_only` takes by default, and their layout.
    fn feature_cfg(&self) -> FeatureCfg {
        FeatureCfg::default()
    }
    /// The model's head where it is timm's [`crate::layers::ClassifierHead`] or a
    /// [`crate::layers::TokenHead`]: the head methods below default to it (a model with another
    /// head overrides them).
    fn classifier_head(&self) -> Option<&dyn Head> {
        None
    }
    /// [`Model::classifier_head`], to change.
    fn classifier_head_mut(&mut self) -> Option<&mut dyn Head> {
        None
    }
    /// The classifier, if the model has one.
    fn get_classifier(&self) -> Option<&Linear> {
        self.classifier_head()?.classifier()
    }
    /// Replaces the head: `num_classes` 0 removes it; `global_pool` optionally changes pooling.
    fn reset_classifier(&mut self, num_classes: usize, global_pool: Option<&str>) -> Result<()> {
        let name = self.pretrained_cfg().name.clone();
        match self.classifier_head_mut() {
            Some(head) => head.reset(num_classes, global_pool, &name),
            None => Err(no_head(&name)),
        }
    }
    /// Classes of the current head (0 = none).
    fn num_classes(&self) -> usize {
        self.classifier_head().map_or(0, |h| h.num_classes())
    }
    /// Channels of the final feature map.
    fn num_features(&self) -> usize {
        self.classifier_head().map_or(0, |h| h.num_features())
    }
    /// Width of the pooled pre-logits features (timm's `head_hidden_size`): `num_features`
    /// unless a head layer sits between the feature map and the classifier (VGG's 4096).
    fn head_hidden_size(&self) -> usize {
        self.num_features()
    }
    /// The pretrained config.
    fn pretrained_cfg(&self) -> &PretrainedCfg;
    /// timm's `group_matcher`: rules in layer order, for layer-wise lr decay; `coarse` groups
    /// whole stages. Empty when the model defines none.
    fn group_matcher(&self, _coarse: bool) -> Vec<GroupRule> {
        Vec::new()
    }
    /// timm's `no_weight_decay`: parameter names (shell patterns) left undecayed.
    fn no_weight_decay(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether the model has a distillation token and head (timm's `set_distilled_training`
    /// exists): the distilled DeiTs.
    fn has_distillation_head(&self) -> bool {
        false
    }
    /// timm's training forward with `distilled_training` on: the class head's and the
    /// distillation head's logits, in train and eval mode alike (plain `forward` averages them).
    fn forward_distilled(&self, _x: &Tensor) -> Result<(Tensor, Tensor)> {
        Err(no_distillation_head(&self.pretrained_cfg().name))
    }
    /// timm's `set_grad_checkpointing`: with `enable`, each block runs checkpointed (its
    /// activations recomputed in backward instead of kept: less memory, a second forward).
    fn set_grad_checkpointing(&mut self, enable: bool) -> Result<()> {
        match enable {
            false => Ok(()),
            true => Err(crate::Error::BadArgument {
                model: self.pretrained_cfg().name.clone(),
                msg: "this model has no gradient checkpointing (--grad-checkpointing)".into(),
            }),
        }
    }
    /// timm's `reparameterize_model`: every re-parameterizable block (RepVGG, MobileOne) folds
    /// its train-time branches into one conv, leaving the eval output unchanged; parameter
    /// names become timm's `reparam_conv.*`. Nothing to do for other models (as in timm).
    fn reparameterize(&mut self) -> Result<()> {
        Ok(())
    }
    /// Whether the blocks run checkpointed (timm's `grad_checkpointing` attribute).
    fn grad_checkpointing(&self) -> bool {
        false
    }
    /// timm's `drop_block_rate`: DropBlock where the model places it (0 removes it).
    fn set_drop_block(&mut self, rate: f64) -> Result<()> {
        Err(crate::Error::BadArgument {
            model: self.pretrained_cfg().name.clone(),
            msg: format!("this model places no DropBlock (drop_block_rate {rate})"),
        })
    }
}
