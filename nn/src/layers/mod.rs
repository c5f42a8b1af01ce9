//! Layers, one concept per file, with PyTorch's names for their tensors.

mod activation;
mod batchnorm;
mod checkpoint_seq;
mod conv;
mod conv_pad;
mod drop_block;
mod dropout;
mod layer_norm;
mod layer_scale2d;
mod linear;
mod mixed_conv2d;
mod multi_query_attention2d;
mod norm_act;
mod pool;
mod sequential;
mod split_batchnorm;
mod squeeze_excite;

pub use activation::{Activation, Identity};
pub use batchnorm::BatchNorm2d;
pub use checkpoint_seq::{checkpoint_seq, Checkpointed};
pub use conv::Conv2d;
pub use conv_pad::{same_padding, Conv2dPad, PadType};
pub use drop_block::{drop_blocks_from_seeds, DropBlock};
pub use dropout::{DropPath, Dropout};
pub use layer_norm::{LayerNorm, LayerNorm2d};
pub use layer_scale2d::LayerScale2d;
pub use linear::Linear;
pub use mixed_conv2d::{split_channels, MixedConv2d};
pub use multi_query_attention2d::{MqaCfg, MultiQueryAttention2d};
pub use norm_act::BatchNormAct2d;
pub use pool::{AvgPool2d, MaxPool2d, PoolType, SelectAdaptivePool2d};
pub use sequential::Sequential;
pub use split_batchnorm::convert_splitbn_model;
pub use squeeze_excite::{squeeze_excite, SqueezeExcite};
