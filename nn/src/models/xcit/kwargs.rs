//! The model-specific kwargs (`--model-kwargs`) XCiT takes, as timm's `Xcit` names them.

use super::XcitCfg;
use crate::model_kwargs::{heads_divide, token_stack, transformer, Bad, Kwargs, TakesKwargs};

impl TakesKwargs for XcitCfg {
    const KEYS: &'static [&'static str] = &[
        "patch_size",
        "embed_dim",
        "depth",
        "num_heads",
        "mlp_ratio",
        "qkv_bias",
        "cls_attn_layers",
        "use_pos_embed",
        "eta",
        "tokens_norm",
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
        if !matches!(self.patch, 8 | 16) {
            return Err(format!(
                "patch_size {}: XCiT's conv patch embedding takes 8 or 16",
                self.patch
            ));
        }
        self.qkv_bias = kw.flag("qkv_bias")?.unwrap_or(self.qkv_bias);
        self.cls_attn_layers = kw.count("cls_attn_layers")?.unwrap_or(self.cls_attn_layers);
        self.use_pos_embed = kw.flag("use_pos_embed")?.unwrap_or(self.use_pos_embed);
        self.eta = kw.positive("eta")?.unwrap_or(self.eta);
        self.tokens_norm = kw.flag("tokens_norm")?.unwrap_or(self.tokens_norm);
        heads_divide(self.dim, self.heads)
    }

    fn params(&self) -> f64 {
        let embed = (9 * self.dim * self.dim / 2) as f64;
        let cls = transformer(self.cls_attn_layers, self.dim, self.mlp_hidden);
        embed + transformer(self.depth, self.dim, self.mlp_hidden) + cls
    }
}
