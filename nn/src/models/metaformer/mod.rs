//! timm's MetaFormers (metaformer.py): PoolFormer v1 and v2, ConvFormer and CAFormer. A 7×7
//! stride-4 stem, four stages (a 3×3 stride-2 downsampling conv between them) of MetaFormer
//! blocks, each a token mixer (pooling, a separable conv, or attention on tokens) and an MLP
//! (GELU or StarReLU) behind norms, with layer and residual scales; the head pools, normalizes
//! and classifies with a linear layer or timm's `MlpHead`.

mod attention;
mod block;
mod config;
mod head;
mod kwargs;
mod mixer;
mod mlp;
mod model;
mod norm;
mod scale;
mod sep_conv;
mod stage;
mod stem;
mod variants;

pub use config::{BlockAct, BlockNorm, MetaFormerCfg, Mixer};
pub use model::MetaFormer;
pub use variants::variants;
pub(crate) use variants::FAMILY;
