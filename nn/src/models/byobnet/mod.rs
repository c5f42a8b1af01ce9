//! timm's `ByobNet` (`byobnet.py`, "bring your own blocks") as far as RepVGG and MobileOne use
//! it: a re-parameterizable stem block (the 'rep' and 'one' stem types), four stages of
//! re-parameterizable blocks (`stages.{s}.{b}`), no final conv (`num_features` 0), and timm's
//! `ClassifierHead` (`head.fc`). Parameter names follow timm, so timm's state dicts load
//! unchanged, before and after [`crate::Model::reparameterize`].

mod block;
mod model;
mod variants;

pub use block::{RepBlock, RepBlockCfg, RepKind};
pub use model::{ByobCfg, ByobNet};
pub use variants::variants;
pub(crate) use variants::FAMILY;
