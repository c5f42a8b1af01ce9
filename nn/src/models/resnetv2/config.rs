//! What distinguishes one ResNet-V2 from another (timm's `ResNetV2` constructor arguments).

use crate::models::efficientnet::blocks::make_divisible;

/// The stem (timm's `stem_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StemType {
    /// One 7×7 stride-2 conv (`''`).
    Plain,
    /// Three 3×3 convs, the first at stride 2, 32 then 32 wide at a 64 stem (`'deep'`).
    Deep,
    /// [`StemType::Deep`] 24 then 32 wide at a 64 stem (`'tiered'`).
    Tiered,
}

impl StemType {
    /// The first two convs' widths of a deep stem `out` wide (none for the 7×7 stem).
    pub fn deep_widths(self, out: usize) -> Option<[usize; 2]> {
        match self {
            StemType::Plain => None,
            StemType::Deep => Some([out / 2, out / 2]),
            StemType::Tiered => Some([3 * out / 8, out / 2]),
        }
    }
}

/// Which norm-activation layer every norm is (timm's `norm_layer`, with ReLU where it takes
/// `act_layer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormKind {
    /// `BatchNormAct2d`.
    BatchNorm,
    /// `GroupNormAct` of 32 groups (BiT's).
    GroupNorm,
    /// `EvoNorm2dS0`.
    EvoNormS0,
    /// `FilterResponseNormTlu2d`.
    FrnTlu,
}

/// timm's `ResNetV2` arguments that its entry points set, and the kwargs kiln passes on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResNetV2Cfg {
    /// Blocks per stage (timm's `layers`).
    pub layers: [usize; 4],
    /// Each stage's output width before the width factor.
    pub channels: [usize; 4],
    /// Every width's multiplier (timm's `width_factor`: BiT's x1–x4).
    pub width_factor: usize,
    /// The stem's width before the width factor.
    pub stem_chs: usize,
    /// The stem's convs.
    pub stem_type: StemType,
    /// BiT's fixed padding before the stem's max pool (a zero pad of 1, then an unpadded pool).
    pub stem_fixed: bool,
    /// Average-pool downsampling in the shortcut projections (the D variants).
    pub avg_down: bool,
    /// Pre-activation basic blocks instead of bottlenecks (timm's `basic`).
    pub basic: bool,
    /// Bottleneck width over the block's output.
    pub bottle_ratio: f64,
    /// The norm-activation layer.
    pub norm: NormKind,
    /// Weight-standardized convs (`StdConv2d`) with this eps; plain convs (`create_conv2d`)
    /// when `None`.
    pub std_conv_eps: Option<f64>,
}

impl ResNetV2Cfg {
    /// timm's `make_divisible(v · width_factor)`.
    pub fn width(&self, v: usize) -> usize {
        make_divisible((v * self.width_factor) as f64, 8)
    }
}
