//! What distinguishes one VoVNet from another (timm's `model_cfgs` entries).

/// The attention after each stage's last block (timm's `attn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attn {
    /// None (`''`).
    None,
    /// Effective squeeze-excite (`'ese'`): one biased 1×1 conv, hard-sigmoid gate.
    Ese,
    /// Efficient channel attention (`'eca'`).
    Eca,
}

/// timm's VoVNet `model_cfgs` entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VovNetCfg {
    /// Widths of the three stem convs.
    pub stem_chs: [usize; 3],
    /// Width of each stage's 3×3 convs.
    pub stage_conv_chs: [usize; 4],
    /// Output width of each stage.
    pub stage_out_chs: [usize; 4],
    /// 3×3 convs per one-shot-aggregation block.
    pub layer_per_block: usize,
    /// Blocks per stage.
    pub block_per_stage: [usize; 4],
    /// A residual around every block but each stage's first.
    pub residual: bool,
    /// Separable (depthwise + pointwise) convs in place of the 3×3 ones.
    pub depthwise: bool,
    /// Attention after each stage's last block.
    pub attn: Attn,
}
