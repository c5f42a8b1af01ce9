//! The surface every timm model shares ([`Model`]) and its layer-wise grouping rules.

use crate::layers::{Head, Linear};
use crate::{Error, FeatureCfg, FeatureInfo, Module, PretrainedCfg, Result};
use kiln_engine::Tensor;

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
        match self.classifier_head() {
            Some(head) => head.hidden_size(),
            None => self.num_features(),
        }
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

    /// timm's most common `group_matcher`: the `stem` group, then the `blocks` group by stage
    /// (`blocks[0]`, when `coarse`) or by block (`blocks[1]`).
    pub fn stem_and_blocks(coarse: bool, stem: &str, blocks: [&str; 2]) -> Vec<GroupRule> {
        let blocks = blocks[usize::from(!coarse)];
        vec![
            GroupRule::new("stem", stem),
            GroupRule::new("blocks", blocks),
        ]
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
pub(crate) fn no_distillation_head(model: &str) -> Error {
    Error::BadArgument {
        model: model.into(),
        msg: "no distillation token and head (token distillation needs a distilled DeiT, e.g. \
              deit_tiny_distilled_patch16_224, with classes)"
            .into(),
    }
}
