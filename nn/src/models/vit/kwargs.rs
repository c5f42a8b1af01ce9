//! The model-specific kwargs (`--model-kwargs`) ViT takes, as timm's constructor names them.

use super::VitCfg;
use crate::model_kwargs::{
    apply_token_kwargs, token_keys, transformer, Bad, KwargValue, Kwargs, TakesKwargs,
};

impl TakesKwargs for VitCfg {
    const KEYS: &'static [&'static str] = token_keys!["reg_tokens", "no_embed_class"];

    fn apply(&mut self, kw: &Kwargs) -> std::result::Result<(), Bad> {
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
        apply_token_kwargs!(self, kw)
    }

    fn params(&self) -> f64 {
        let patch = (3 * self.patch * self.patch * self.dim) as f64;
        patch + transformer(self.depth, self.dim, self.mlp_hidden)
    }
}
