//! timm's `EfficientNet` class (`efficientnet.py`): a stem, the builder's stages of block strings
//! scaled in width and depth, and the head `conv_head`, `bn2`, pool, dropout, `classifier`. It
//! builds EfficientNet B0–B8 and L2 and their `tf_` ports, EfficientNet-EdgeTPU, MobileNetV1,
//! MobileNetV2, MobileNet-EdgeTPU, MixNet, MnasNet, FBNet-C, Single-Path NAS and TinyNet (their
//! names and configs:
//! `variants.rs`). The `tf_` variants pad convs as TensorFlow's "same" and use
//! BatchNorm eps 1e-3.

pub(crate) mod blocks;
pub(crate) mod builder;
mod model;
mod variants;

pub use builder::Depth;
pub(crate) use model::{cfg, init_linear_goog, stem_and_blocks_matcher};
pub use model::{ArchDef, EfficientNet, EfficientNetCfg, HeadWidth};
pub use variants::variants;
pub(crate) use variants::FAMILY;
