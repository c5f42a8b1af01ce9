//! What distinguishes one Normalization-Free network from another (timm's `NfCfg`).

use crate::layers::Activation;
use crate::models::efficientnet::blocks::make_divisible;

/// The stem (timm's `stem_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NfStem {
    /// One 3×3 stride-2 conv (`'3x3'`, the NF-RegNets).
    Conv3x3,
    /// One 7×7 stride-2 conv and a 3×3 stride-2 max pool (`'7x7_pool'`, the NF-ResNets).
    Conv7x7Pool,
    /// Four 3×3 convs, the first and last at stride 2 (`'deep_quad'`, the NFNets).
    DeepQuad,
}

/// The channel attention of each block (timm's `attn_layer` with its `attn_kwargs`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NfAttn {
    /// None.
    None,
    /// Squeeze-excite reducing by `rd_ratio` (to a multiple of 8).
    Se {
        /// The reduced width as a fraction of the block's.
        rd_ratio: f64,
    },
    /// Efficient channel attention.
    Eca,
}

/// timm's `NfCfg`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NfCfg {
    /// Blocks per stage.
    pub depths: [usize; 4],
    /// Output width of each stage (before `width_factor`).
    pub channels: [usize; 4],
    /// The residual branch's scale.
    pub alpha: f64,
    /// The stem.
    pub stem: NfStem,
    /// The stem's width (the first stage's when `None`).
    pub stem_chs: Option<usize>,
    /// Channels per group of the 3×3 convs (`None`: one group).
    pub group_size: Option<usize>,
    /// The channel attention.
    pub attn: NfAttn,
    /// The attention output's gain.
    pub attn_gain: f64,
    /// Every width's multiplier.
    pub width_factor: f64,
    /// Bottleneck width over the block's output (RegNets: over its input).
    pub bottle_ratio: f64,
    /// Width of the final 1×1 conv (0: none).
    pub num_features: usize,
    /// Widths are rounded to multiples of this.
    pub ch_div: usize,
    /// RegNet blocks: bottleneck from the input width, attention between the 3×3 and last conv.
    pub reg: bool,
    /// A second 3×3 conv in each block (the NFNets).
    pub extra_conv: bool,
    /// The activation's gain applied after it rather than folded into the convs (DeepMind's).
    pub gamma_in_act: bool,
    /// TensorFlow's "same" padding.
    pub same_padding: bool,
    /// Added to the filters' variance in weight standardization.
    pub std_conv_eps: f64,
    /// A learned scalar gain on each residual branch, zero at init.
    pub skipinit: bool,
    /// A zero-initialized classifier.
    pub zero_init_fc: bool,
    /// The activation.
    pub act: Activation,
}

impl NfCfg {
    /// timm's `make_divisible(v · width_factor, ch_div)`.
    pub fn width(&self, v: usize) -> usize {
        make_divisible(v as f64 * self.width_factor, self.ch_div)
    }

    /// The stem's output width.
    pub fn stem_width(&self) -> usize {
        self.width(self.stem_chs.unwrap_or(self.channels[0]))
    }
}

/// DeepMind's gain that keeps each activation's output at unit variance for unit-normal input
/// (timm's `_nonlin_gamma`); `None` for an activation timm has no gain for.
pub fn nonlin_gamma(act: Activation) -> Option<f64> {
    Some(match act {
        Activation::Relu => 1.7139588594436646,
        Activation::Relu6 => 1.7131484746932983,
        Activation::Silu => 1.7881293296813965,
        Activation::Gelu => 1.7015043497085571,
        Activation::Sigmoid => 4.803835391998291,
        Activation::Tanh => 1.5939117670059204,
        _ => return None,
    })
}
