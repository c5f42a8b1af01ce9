//! timm's CSPNet family (`cspnet.py`): CSPResNet(X)t, CSPDarkNet, DarkNet and the CS3 DarkNets
//! and EdgeNets. A stem of convs (and a max pool in the ResNet-like ones), stages that split the
//! expanded map in two and run blocks on one half (cross stage partial) or plain DarkNet stages,
//! and timm's `ClassifierHead` (`head.fc`). Parameter names follow timm, so timm's state dicts
//! load unchanged.

mod block;
mod config;
mod kwargs;
mod model;
mod stage;
mod variants;

pub use block::{BottleneckBlock, CspBlock, DarkBlock};
pub use config::{BlockType, CspNetCfg, StageCfg, StageType, StemCfg};
pub use model::CspNet;
pub use stage::{CspStage, Down};
pub use variants::variants;
pub(crate) use variants::FAMILY;
