//! timm's DLA (`dla.py`, Deep Layer Aggregation, and its Res2Net blocks): a 7×7 base layer, two
//! conv levels, four trees of residual blocks whose outputs roots fuse (iterative and
//! hierarchical aggregation), and timm's 1×1-conv classifier (`fc`). Parameter names follow
//! timm, so timm's state dicts load unchanged. The classifier being a conv, `get_classifier`
//! (which returns a Linear) gives `None`; `reset_classifier` and the class count work.

mod block;
mod config;
mod kwargs;
mod model;
mod tree;
mod variants;

pub use block::{DlaBlock, DlaRoot};
pub use config::{BlockKind, DlaCfg};
pub use model::{ConvLevel, Dla};
pub use tree::{DlaTree, Node, Project};
pub use variants::variants;
pub(crate) use variants::FAMILY;
