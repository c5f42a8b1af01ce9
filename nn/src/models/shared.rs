//! What the families share: the `Model` methods that read a field (`model_fields!`), the choice
//! of normalization constants, and the refusal of stochastic depth.

/// The [`crate::Model`] methods that only read or set a field, written once: `head` (the
/// model's [`crate::layers::ClassifierHead`] or [`crate::layers::TokenHead`], which the head
/// methods then default to), `cfg` (its pretrained config), `feature_info` (its feature maps) and
/// `grad_checkpointing` (the flag its blocks run checkpointed by), each naming the field (a path
/// like `trunk.feature_info` where it is nested): `model_fields!(head: head, cfg: cfg)`, or
/// the key alone where the field has its name: `model_fields!(head, cfg)`.
macro_rules! model_fields {
    ($($key:ident: $($field:ident).+),* $(,)?) => {
        $($crate::models::shared::model_fields!(@one $key $($field).+);)*
    };
    ($($key:ident),* $(,)?) => {
        $($crate::models::shared::model_fields!(@one $key $key);)*
    };
    (@one head $($f:ident).+) => {
        fn classifier_head(&self) -> Option<&dyn $crate::layers::Head> {
            Some(&self.$($f).+)
        }

        fn classifier_head_mut(&mut self) -> Option<&mut dyn $crate::layers::Head> {
            Some(&mut self.$($f).+)
        }
    };
    (@one cfg $($f:ident).+) => {
        fn pretrained_cfg(&self) -> &$crate::PretrainedCfg {
            &self.$($f).+
        }
    };
    (@one feature_info $($f:ident).+) => {
        fn feature_info(&self) -> &[$crate::FeatureInfo] {
            &self.$($f).+
        }
    };
    (@one grad_checkpointing $($f:ident).+) => {
        fn set_grad_checkpointing(&mut self, enable: bool) -> $crate::Result<()> {
            self.$($f).+ = enable;
            Ok(())
        }

        fn grad_checkpointing(&self) -> bool {
            self.$($f).+
        }
    };
}
pub(crate) use model_fields;

/// A model's [`crate::Module`]: `forward` is `forward_head(forward_features(x))`, as timm's;
/// `not_prunable` after the type marks a model kiln's pruning has no rule for.
macro_rules! model_module {
    ($ty:ty $(, $not_prunable:ident)?) => {
        impl $crate::Module for $ty {
            fn forward(&self, x: &kiln_engine::Tensor) -> $crate::Result<kiln_engine::Tensor> {
                let features = $crate::Model::forward_features(self, x)?;
                $crate::Model::forward_head(self, &features, false)
            }
            $($crate::module::$not_prunable!();)?
        }
    };
}
pub(crate) use model_module;

use crate::pretrained_cfg::{
    IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD,
};
use crate::{Error, Module, Result};
use kiln_engine::Tensor;

/// Normalization (mean, std): timm's Inception constants (0.5) or its ImageNet ones.
pub(crate) fn mean_std(inception: bool) -> ([f64; 3], [f64; 3]) {
    if inception {
        (IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD)
    } else {
        (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)
    }
}

/// A model without stochastic depth refuses a `drop_path_rate` (timm's DenseNet and VGG take no
/// such argument: a TypeError there).
pub(crate) fn refuse_drop_path(drop_path_rate: f64, model: &str) -> Result<()> {
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

/// Runs `h` through every stage's blocks in turn and pushes each stage's output onto `out` (the
/// stage maps of `forward_intermediates`).
pub(crate) fn push_stage_maps<B: Module>(
    mut h: Tensor,
    stages: &[Vec<B>],
    out: &mut Vec<Tensor>,
) -> Result<()> {
    for stage in stages {
        h = stage.iter().try_fold(h, |h, b| b.forward(&h))?;
        out.push(h.clone());
    }
    Ok(())
}
