//! timm's EVA (eva.py's `Eva`): a ViT whose attention rotates the patch tokens' queries and keys
//! by a rotary position embedding and whose blocks take a GELU or SwiGLU MLP, as EVA-01 and
//! EVA-02 (and their CLIP towers), timm's SBB RoPE ViTs, Perception Encoder, RoPE-ViT, DINOv3
//! and LingBot-Vision configure it: class and register tokens, an optional learned position
//! embedding, `EvaAttention` (q and v biases, k's a zero buffer) or `AttentionRope`, pre-norm
//! blocks with optional layer scale or post-norm ones, and the mean, class-token or
//! attention-pool head.

mod attention;
mod block;
mod kwargs;
mod model;
mod variants;

pub use model::{Eva, EvaCfg, EvaMlp, EvaRope};
pub(crate) use variants::FAMILY;
pub use variants::{variants, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD};
