//! timm's VGG (`vgg.py`, torchvision's VGG with a conv head): `features`, one `nn.Sequential`
//! of 3×3 convs (each followed by a BN in the `_bn` names, then ReLU) and 2×2 max pools, under
//! timm's indices (`features.0`, `features.1`, …); `pre_logits`, timm's `ConvMlp` (a 7×7 conv
//! to 4096, ReLU, dropout, a 1×1 conv, ReLU); and timm's `ClassifierHead` (global pool,
//! dropout, `head.fc`). Parameter names follow timm, so timm's state dicts load unchanged.

mod block;
mod model;
mod variants;

pub use model::{Vgg, VggCfg};
pub use variants::variants;
pub(crate) use variants::FAMILY;
