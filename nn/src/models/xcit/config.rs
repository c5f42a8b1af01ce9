//! What distinguishes one XCiT from another (timm's `Xcit` constructor arguments).

/// timm's `Xcit` arguments that its entry points set, and the kwargs kiln passes on.
#[derive(Debug, Clone, Copy)]
pub struct XcitCfg {
    /// Patch size: 16 (four stride-2 convs) or 8 (three).
    pub patch: usize,
    /// Token width (timm's `embed_dim`).
    pub dim: usize,
    /// XCA blocks (timm's `depth`).
    pub depth: usize,
    /// Attention heads of every block.
    pub heads: usize,
    /// The MLPs' hidden width (`int(dim * mlp_ratio)`).
    pub mlp_hidden: usize,
    /// A bias on the q/k/v projections (timm's `qkv_bias`).
    pub qkv_bias: bool,
    /// Class-attention blocks after the XCA blocks (timm's `cls_attn_layers`).
    pub cls_attn_layers: usize,
    /// The Fourier position encoding (timm's `use_pos_embed`).
    pub use_pos_embed: bool,
    /// Every layer-scale gamma's initial value (timm's `eta`).
    pub eta: f64,
    /// The class-attention blocks normalize every token before their MLP, not only the class
    /// token (timm's `tokens_norm`).
    pub tokens_norm: bool,
}

impl XcitCfg {
    /// timm's `Xcit` defaults (MLP ratio 4, a biased qkv, two class-attention blocks, the
    /// position encoding) for `patch`, `dim`, `depth`, `heads`, `eta` and `tokens_norm`.
    pub const fn new(
        patch: usize,
        dim: usize,
        depth: usize,
        heads: usize,
        eta: f64,
        tokens_norm: bool,
    ) -> XcitCfg {
        XcitCfg {
            patch,
            dim,
            depth,
            heads,
            mlp_hidden: 4 * dim,
            qkv_bias: true,
            cls_attn_layers: 2,
            use_pos_embed: true,
            eta,
            tokens_norm,
        }
    }
}
