//! The model-specific kwargs (`--model-kwargs`) EVA takes, as timm's constructor names them.

use super::{EvaCfg, EvaMlp};
use crate::model_kwargs::{heads_divide, token_stack, transformer, Bad, Kwargs, TakesKwargs};

impl TakesKwargs for EvaCfg {
    const KEYS: &'static [&'static str] = &[
        "patch_size",
        "embed_dim",
        "depth",
        "num_heads",
        "mlp_ratio",
        "qkv_bias",
        "class_token",
        "init_values",
    ];

    fn apply(&mut self, kw: &Kwargs) -> std::result::Result<(), Bad> {
        let shape = [
            &mut self.patch,
            &mut self.dim,
            &mut self.depth,
            &mut self.heads,
            &mut self.mlp_hidden,
        ];
        token_stack(kw, shape)?;
        self.qkv_bias = kw.flag("qkv_bias")?.unwrap_or(self.qkv_bias);
        self.class_token = kw.flag("class_token")?.unwrap_or(self.class_token);
        self.init_values = kw.positive("init_values")?.or(self.init_values);
        heads_divide(self.dim, self.heads)
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
