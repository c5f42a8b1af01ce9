//! The model-specific kwargs (`--model-kwargs`) ViT takes, as timm's constructor names them.

use super::VitCfg;
use crate::model_kwargs::{
    heads_divide, token_stack, token_switches, transformer, Bad, KwargValue, Kwargs, TakesKwargs,
};

impl TakesKwargs for VitCfg {
    const KEYS: &'static [&'static str] = &[
        "patch_size",
        "embed_dim",
        "depth",
        "num_heads",
        "mlp_ratio",
        "qkv_bias",
        "class_token",
        "reg_tokens",
        "no_embed_class",
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
        if let Some(v) = kw.get("reg_tokens") {
            self.reg_tokens = match v {
                KwargValue::Int(i) if *i >= 0 => *i as usize,
                _ => return Err(Kwargs::bad("reg_tokens", v, "a count")),
            };
        }
        self.no_embed_class = kw.flag("no_embed_class")?.unwrap_or(self.no_embed_class);
        if let Some(v) = kw.get("reg_tokens").filter(|_| self.reg_tokens > 4096) {
            return Err(Kwargs::bad("reg_tokens", v, "at most 4096"));
        }
        heads_divide(self.dim, self.heads)
    }

    fn params(&self) -> f64 {
        let patch = (3 * self.patch * self.patch * self.dim) as f64;
        patch + transformer(self.depth, self.dim, self.mlp_hidden)
    }
}
