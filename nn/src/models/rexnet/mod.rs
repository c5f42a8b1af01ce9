//! timm's ReXNet (`rexnet.py`): a 3×3 stride-2 stem, a `features` sequence of linear
//! bottlenecks whose widths grow linearly block by block (squeeze-excite with a BatchNorm from
//! the third stage, a partial residual where the width grows), a final 1×1 conv, and timm's
//! `ClassifierHead` (`head.fc`). Parameter names follow timm, so timm's state dicts load
//! unchanged. kiln builds output stride 32 (timm's default `output_stride`).

mod block;
mod config;
mod kwargs;
mod model;
mod variants;

pub use block::LinearBottleneck;
pub use config::{BlockPlan, RexNetCfg};
pub use model::{Feature, RexNet};
pub use variants::variants;
pub(crate) use variants::FAMILY;
