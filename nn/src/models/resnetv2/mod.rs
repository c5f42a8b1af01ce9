//! timm's ResNet-V2 (`resnetv2.py`): pre-activation ResNets (norm-act before each conv, a final
//! norm-act after the last stage) and Google's Big Transfer (BiT) models with weight-standardized
//! convs (`StdConv2d`), GroupNorm and a fixed-padding stem; BatchNorm, GroupNorm, EvoNorm-S0 and
//! FRN variants with deep stems and average-pool downsampling. The classifier is timm's 1×1
//! conv (`head.fc`, weight [classes, C, 1, 1]). Parameter names follow timm, so timm's state
//! dicts load unchanged. kiln builds output stride 32 (timm's default `output_stride`).

mod block;
mod config;
mod conv;
mod downsample;
mod kwargs;
mod model;
mod norm;
mod stem;
mod variants;

pub use config::{NormKind, ResNetV2Cfg, StemType};
pub use model::ResNetV2;
pub use variants::variants;
pub(crate) use variants::FAMILY;
