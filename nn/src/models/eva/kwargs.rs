//! The model-specific kwargs (`--model-kwargs`) EVA takes, as timm's constructor names them.

use super::{EvaCfg, EvaMlp};
use crate::model_kwargs::{
    heads_divide, token_stack, token_switches, transformer, Bad, Kwargs, TakesKwargs,
};

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
        let (bias, class) = (&mut self.qkv_bias, &mut self.class_token);
        token_switches(kw, bias, class, &mut self.init_values)?;
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
