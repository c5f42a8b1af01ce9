//! timm's MLP-Mixer module (mlp_mixer.py): a patch embedding, then blocks that mix the tokens
//! (an MLP or a linear layer across the patches) and the channels (an MLP per token), a final
//! norm and the mean-pooled head. Its four block kinds: MLP-Mixer's (`MixerBlock`), gMixer's
//! (`MixerBlock` of SwiGLU MLPs), ResMLP's (`ResBlock`: `Affine` norms, a linear token mixer,
//! layer scale) and gMLP's (`SpatialGatingBlock`: a gated MLP whose gate mixes the tokens).

mod affine;
mod block;
mod block_parts;
mod config;
mod gated_mlp;
mod gating_block;
mod init;
mod kwargs;
mod mixer_block;
mod model;
mod norm;
mod res_block;
mod spatial_gating;
mod variants;

pub use config::{MixerBlockKind, MixerCfg};
pub use model::MlpMixer;
pub use variants::variants;
pub(crate) use variants::FAMILY;
