//! timm's VisionTransformer (vision_transformer.py, deit.py): a patch embedding, class and
//! register tokens and a learned position embedding (added to the patches alone with
//! `no_embed_class`, DeiT III's and the register ViTs'), pre-norm blocks of multi-head
//! self-attention and MLP with optional layer scale, a final LayerNorm and the class-token or
//! mean head (`fc_norm` after the mean). The distilled DeiTs (timm's `VisionTransformerDistilled`)
//! add a distillation token after the class token and a second head on it (`head_dist`).

mod block;
mod kwargs;
mod model;
mod variants;

pub use block::VitMlp;
pub(crate) use block::{block_maps, patch_tokens, pos_embed, prepend_tokens, BlockMlp};
pub use model::{VisionTransformer, VitCfg};
pub use variants::variants;
pub(crate) use variants::FAMILY;
