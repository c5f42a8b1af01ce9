//! timm's RegNet (`regnet.py`), the X and Y design spaces: a 3×3 stride-2 stem, four stages
//! `s1`..`s4` of bottleneck blocks whose widths, depths and group widths come from four numbers
//! (w0, wa, wm, depth; `widths.rs`), and timm's `ClassifierHead` (`head.fc`). Parameter names
//! follow timm, so timm's state dicts load unchanged.
//!
//! kiln builds what the X and Y names use of timm's `RegNetCfg`: the 'conv1x1' shortcut, a
//! ReLU after the residual add (`linear_out` false), post-activation blocks (`preact` false),
//! BatchNorm and ReLU, and no final conv (`num_features` 0: `final_conv` is an identity).

mod block;
mod config;
mod kwargs;
mod model;
mod variants;
mod widths;

pub use config::RegNetCfg;
pub use model::RegNet;
pub use variants::variants;
pub(crate) use variants::FAMILY;
pub use widths::{stage_args, StageArgs};
