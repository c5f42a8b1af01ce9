//! timm's GhostNet (`ghostnet.py`), V1, V2 and V3: a 3×3 stride-2 stem, nine stages of ghost
//! bottlenecks (ghost modules: a primary 1×1 conv and a cheap depthwise conv on its output,
//! concatenated; V2 gates the expanding module by DFC attention, V3 builds each conv as a sum of
//! re-parameterizable branches), a 1×1 conv stage, and timm's efficient head (pool,
//! `conv_head`, ReLU, `classifier`). Parameter names follow timm, so timm's state dicts load
//! unchanged. kiln builds V3 in its training form (the branches; timm's `convert_to_deploy`
//! fusion is not built).

mod block;
mod config;
mod kwargs;
mod model;
mod module;
mod variants;

pub use block::GhostBottleneck;
pub use config::{GhostNetCfg, Version};
pub use model::{Block, GhostNet};
pub use module::ConvBnAct;
pub use variants::variants;
pub(crate) use variants::FAMILY;
