//! timm's ResNet builder (`resnet.py`): stem types, downsample types, block attention layers and
//! norm layers, the model, and the registered variants. Parameter names follow timm, so timm's
//! state dicts load unchanged.
//!
//! Variants are data ([`ResNetCfg`]): `layers` per stage, the block type, the stem (7×7, deep or
//! deep-tiered 3×3 of `stem_width`), the shortcut (strided conv of `down_kernel_size`, or
//! average-pool then 1×1 conv), the bottleneck's `cardinality` and `base_width` (ResNeXt, wide
//! ResNets), the attention layer of every block (SE, ECA) and the norm (BatchNorm, GroupNorm).
//! The pruned ECA-ResNets take their widths from timm's pruned shapes ([`Pruned`]).
//! ResNeSt (`super::resnest`) is this builder with its split-attention block
//! ([`BlockKind::ResNest`]).

mod block;
mod config;
mod downsample;
mod kwargs;
mod model;
mod pruned;
mod resnest;
mod stem;
mod variants;

pub use config::{BlockKind, ResNetCfg, StemType};
pub use model::ResNet;
pub use pruned::Pruned;
pub use variants::variants;
pub(crate) use variants::FAMILY;
