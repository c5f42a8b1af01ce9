//! timm's Normalization-Free networks (`nfnet.py`): NF-ResNets, NF-RegNets, NFNet-F, the
//! DeepMind-compatible DM-NFNets and the ECA-NFNet-L models. Pre-activation bottleneck blocks
//! without normalization: weight-standardized, scaled convs (`ScaledStdConv2d`), residual
//! branches scaled by `alpha` and inputs by the expected variance's `beta`, optional skipinit
//! gains. Parameter names follow timm, so timm's state dicts load unchanged. kiln builds output
//! stride 32 (timm's default `output_stride`).

mod block;
mod config;
mod kwargs;
mod model;
mod variants;

pub use block::{BlockAttn, DownsampleAvg, GammaAct, NormFreeBlock};
pub use config::{nonlin_gamma, NfAttn, NfCfg, NfStem};
pub use model::{NormFreeNet, Stem};
pub use variants::variants;
pub(crate) use variants::FAMILY;
