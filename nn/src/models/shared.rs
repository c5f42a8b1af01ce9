//! What the families share: the head accessors of a model holding a `ClassifierHead`, the choice
//! of normalization constants, and the refusal of stochastic depth.

/// The two [`crate::Model`] accessors of a model whose head is the [`crate::layers::ClassifierHead`]
/// or [`crate::layers::TokenHead`] in `$field` (the head methods then default to it).
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
pub(crate) use classifier_head_in;

use crate::pretrained_cfg::{
    IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD,
};
use crate::{Error, Result};

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
