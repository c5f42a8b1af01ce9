//! What distinguishes one RegNet variant from another (timm's `RegNetCfg`).

/// timm's `RegNetCfg`: what distinguishes one RegNet from another.
#[derive(Debug, Clone, Copy)]
pub struct RegNetCfg {
    /// Blocks in all.
    pub depth: usize,
    /// Width of the first block.
    pub w0: usize,
    /// Slope of the linear widths (w0 + wa · block).
    pub wa: f64,
    /// Ratio between the quantized widths of consecutive stages.
    pub wm: f64,
    /// Channels per group of the 3×3 convs.
    pub group_size: usize,
    /// Bottleneck width over the block's output width.
    pub bottle_ratio: f64,
    /// Squeeze-excite reduction width over the block's input width (0: none; RegNet-Y 0.25).
    pub se_ratio: f64,
    /// torchvision's rounding of widths to the group width, when above 0 (the `_tv` names: 0.9).
    pub group_min_ratio: f64,
    /// Channels of the stem conv.
    pub stem_width: usize,
}
