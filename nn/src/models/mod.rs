//! timm's models, one family per folder, behind the common [`Model`] surface.

mod args;
pub mod byobnet;
pub mod convnext;
pub mod cspnet;
pub mod densenet;
pub mod dla;
pub mod efficientnet;
pub mod eva;
pub(crate) mod family;
pub mod ghostnet;
pub mod hardcorenas;
pub mod metaformer;
pub mod mlp_mixer;
pub mod mobilenetv3;
pub mod nfnet;
pub mod regnet;
pub mod resnest;
pub mod resnet;
pub mod resnetv2;
pub mod rexnet;
pub(crate) mod shared;
pub mod swin;
pub mod vgg;
pub mod vit;
pub mod vovnet;
pub mod xcit;

pub use args::ModelArgs;

pub use crate::feature_cfg::FeatureInfo;
pub use crate::model::{GroupRule, Model};
pub use crate::pretrained_cfg::{
    PretrainedCfg, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, IMAGENET_INCEPTION_MEAN,
    IMAGENET_INCEPTION_STD,
};
