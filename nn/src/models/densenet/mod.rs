//! timm's DenseNet (`densenet.py`, torchvision's DenseNet-BC): a stem (`features.conv0`,
//! `norm0`, `pool0`; three 3×3 convs for the deep stem of the `d` names), four `DenseBlock`s
//! joined by `DenseTransition`s, a final BN + ReLU (`features.norm5`) and a `classifier` after
//! the global pool. Parameter names follow timm, so timm's state dicts load unchanged.

mod block;
mod kwargs;
mod model;
mod variants;

pub use model::{DenseNet, DenseNetCfg, StemType};
pub use variants::variants;
pub(crate) use variants::FAMILY;
