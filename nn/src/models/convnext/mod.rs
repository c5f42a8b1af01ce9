//! timm's ConvNeXt and ConvNeXt V2 (`convnext.py`): a stem (a 4×4 patchify conv, or two
//! overlapping 3×3 stride-2 convs), four stages of depthwise-7×7 blocks (`block.rs`: LayerNorm,
//! inverted MLP with GELU, V1's layer scale or V2's global response norm, stochastic depth), and
//! timm's `NormMlpClassifierHead` (pool, LayerNorm, linear). Parameter names follow timm.

mod block;
mod config;
mod kwargs;
mod model;
mod variants;

pub use config::{ConvNeXtCfg, StemType};
pub use model::ConvNeXt;
pub use variants::variants;
pub(crate) use variants::FAMILY;
