//! The model-specific kwargs (`--model-kwargs`) EVA takes, as timm's constructor names them.

use super::{EvaCfg, EvaMlp};
use crate::model_kwargs::{apply_token_kwargs, token_keys, transformer, Bad, Kwargs, TakesKwargs};

impl TakesKwargs for EvaCfg {
    const KEYS: &'static [&'static str] = token_keys![];

    fn apply(&mut self, kw: &Kwargs) -> std::result::Result<(), Bad> {
        apply_token_kwargs!(self, kw)
    }

    fn params(&self) -> f64 {
        let patch = (3 * self.patch * self.patch * self.dim) as f64;
        // A SwiGLU has two input projections and one output.
        let mlp = match self.mlp {
            EvaMlp::Gelu => self.mlp_hidden,
            EvaMlp::SwiGlu | EvaMlp::SwiGluPacked => 3 * self.mlp_hidden / 2,
        };
        patch + transformer(self.depth, self.dim, mlp)
    }
}
