//! What distinguishes one ConvNeXt variant from another (timm's `ConvNeXt` arguments) and its stem
//! kinds.

use crate::layers::Activation;

/// timm's `stem_type` (the names use these three of its four).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StemType {
    /// `patch`: one 4×4 stride-4 conv.
    Patch,
    /// `overlap`: 3×3 stride-2 convs to `dims[0]`, then to `dims[0]`.
    Overlap,
    /// `overlap_tiered`: the first conv to `make_divisible(dims[0] / 2)`.
    OverlapTiered,
}

/// What distinguishes one ConvNeXt variant from another.
#[derive(Debug, Clone, Copy)]
pub struct ConvNeXtCfg {
    /// Blocks per stage.
    pub depths: [usize; 4],
    /// Channels per stage.
    pub dims: [usize; 4],
    /// 1×1 convs and LayerNorm2d in the MLP (the small variants) instead of linear layers on NHWC.
    pub conv_mlp: bool,
    /// The stem.
    pub stem: StemType,
    /// Global response norm in the MLP (ConvNeXt V2).
    pub use_grn: bool,
    /// Layer scale's initial value; `None` (V2) leaves it out.
    pub ls_init_value: Option<f64>,
    /// Epsilon of every LayerNorm (timm's `norm_eps`, 1e-6; 1e-5 for xxlarge and the tests).
    pub norm_eps: f64,
    /// The MLP's activation (GELU; tanh-approximated in the test models).
    pub act: Activation,
}

impl ConvNeXtCfg {
    /// A V1 ConvNeXt: patch stem, layer scale 1e-6, no GRN.
    pub const fn v1(depths: [usize; 4], dims: [usize; 4], conv_mlp: bool) -> ConvNeXtCfg {
        ConvNeXtCfg {
            depths,
            dims,
            conv_mlp,
            stem: StemType::Patch,
            use_grn: false,
            ls_init_value: Some(1e-6),
            norm_eps: 1e-6,
            act: Activation::Gelu,
        }
    }

    /// A ConvNeXt V2: GRN and no layer scale.
    pub const fn v2(depths: [usize; 4], dims: [usize; 4], conv_mlp: bool) -> ConvNeXtCfg {
        ConvNeXtCfg {
            use_grn: true,
            ls_init_value: None,
            ..ConvNeXtCfg::v1(depths, dims, conv_mlp)
        }
    }
}
