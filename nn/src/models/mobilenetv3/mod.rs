//! timm's `MobileNetV3` class (`mobilenetv3.py`): MobileNetV3 large and small (hard-swish, ReLU
//! in the early blocks), their "minimal" ReLU forms and `tf_` ports, LCNet (activated
//! depthwise-separable blocks) and MobileNetV4 (universal inverted residuals; the hybrids add
//! mobile multi-query attention);
//! squeeze-excite sized from the expanded channels with a ReLU and a hard-sigmoid gate, and the
//! "efficient head": pool, `conv_head` (biased 1×1), act, flatten, dropout, `classifier`
//! (MobileNetV4: an unbiased `conv_head`, then `norm_head`, a BatchNorm with the act).

mod model;
mod variants;

pub use model::{MobileNetV3, MobileNetV3Cfg};
pub use variants::variants;
pub(crate) use variants::FAMILY;
