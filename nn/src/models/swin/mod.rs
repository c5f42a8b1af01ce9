//! timm's SwinTransformer (`swin_transformer.py`): a 4×4 patch embedding with LayerNorm, four
//! stages of (shifted) window attention blocks on NHWC tokens, PatchMerging between stages, a
//! final LayerNorm and an average-pooled `head.fc`. Built for one input size (timm's
//! `strict_img_size`), which fixes each block's window, shift and shift mask.

mod block;
mod kwargs;
mod model;
mod variants;

pub use block::{pad_hw, shift_mask, window_partition, window_reverse, SwinBlock};
pub use model::{SwinCfg, SwinTransformer};
pub use variants::variants;
pub(crate) use variants::FAMILY;
