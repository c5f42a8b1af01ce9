//! timm's VoVNet (`vovnet.py`), V1 and V2 (ESE-VoVNet, ECA-VoVNet): a three-conv stem (stride
//! 4), four stages of one-shot-aggregation blocks (a chain of 3×3 conv-BN-ReLUs, or separable
//! ones, whose outputs are concatenated with the block's input and fused by a 1×1 conv; a
//! residual in V2; ESE or ECA attention after each stage's last block), and timm's
//! `ClassifierHead` (`head.fc`). Parameter names follow timm, so timm's state dicts load
//! unchanged.

mod block;
mod config;
mod kwargs;
mod model;
mod variants;

pub use block::{AttnModule, Conv3, EffectiveSe, OsaBlock, SeparableConvNormAct};
pub use config::{Attn, VovNetCfg};
pub use model::{OsaStage, VovNet};
pub use variants::variants;
pub(crate) use variants::FAMILY;
