//! What distinguishes one ResNet variant from another: the config and its block and stem kinds
//! (timm's `ResNet` arguments).

use super::Pruned;
use crate::layers::{AaLayer, AttnLayer, NormLayer};

/// What distinguishes one ResNet variant from another (timm's `ResNet` arguments).
#[derive(Debug, Clone, Copy)]
pub struct ResNetCfg {
    /// Block type of each stage (timm's `block`, one class or one per stage).
    pub blocks: [BlockKind; 4],
    /// Blocks per stage.
    pub layers: [usize; 4],
    /// Each stage's `planes` (timm's `channels`: 64, 128, 256, 512); its output is
    /// `planes · expansion`.
    pub channels: [usize; 4],
    /// Stem type.
    pub stem: StemType,
    /// Width of a deep stem's convs (its output is twice this; the 7×7 stem puts out 64).
    pub stem_width: usize,
    /// Average-pool shortcut downsampling (the "D" tweak).
    pub avg_down: bool,
    /// Kernel size of a strided conv shortcut (1 for most, 3 for SENet-154).
    pub down_kernel_size: usize,
    /// Reduction of the first conv's output width in every block (2 for SENet-154, else 1).
    pub block_reduce_first: usize,
    /// Groups of the bottleneck's 3×3 conv (ResNeXt; 1 for ResNet).
    pub cardinality: usize,
    /// Bottleneck width per group at 64 planes (64 for ResNet, 4 for ResNeXt 32x4d, 128 wide).
    pub base_width: usize,
    /// timm's `attn_layer` in every block (`se`, `eca`), if any.
    pub attn: Option<AttnLayer>,
    /// timm's `norm_layer`.
    pub norm: NormLayer,
    /// timm's `aa_layer`: strided blocks downsample after their strided conv's activation
    /// (the conv at stride 1), and the stem pools through it.
    pub aa: Option<AaLayer>,
    /// timm's `replace_stem_pool`: the stem's max pool becomes a strided 3×3 conv, norm, ReLU.
    pub replace_stem_pool: bool,
    /// timm's `pruned=True`: the convs' and norms' widths of a pruned structure.
    pub pruned: Option<Pruned>,
}

impl ResNetCfg {
    /// timm's `ResNet` defaults for `block` in every stage: 7×7 stem, strided 1×1 conv
    /// shortcuts, BatchNorm, no attention, no anti-aliasing.
    pub fn new(block: BlockKind, layers: [usize; 4]) -> ResNetCfg {
        ResNetCfg {
            blocks: [block; 4],
            layers,
            channels: [64, 128, 256, 512],
            stem: StemType::Single,
            stem_width: 64,
            avg_down: false,
            down_kernel_size: 1,
            block_reduce_first: 1,
            cardinality: 1,
            base_width: 64,
            attn: None,
            norm: NormLayer::BatchNorm,
            aa: None,
            replace_stem_pool: false,
            pruned: None,
        }
    }
}

/// The residual block types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3×3 convs (expansion 1).
    Basic,
    /// 1×1, 3×3, 1×1 convs (expansion 4).
    Bottleneck,
    /// ResNeSt's bottleneck (timm's `ResNestBottleneck`, expansion 4): the 3×3 conv is split
    /// attention over `radix` (≥ 1) splits; with `avd` a strided block average-pools, before the
    /// split conv when `avd_first`, else after it.
    ResNest {
        /// Splits per channel (1: a sigmoid gate instead of the softmax across splits).
        radix: usize,
        /// Pool instead of striding the conv.
        avd: bool,
        /// Pool before the split conv.
        avd_first: bool,
    },
}

impl BlockKind {
    /// Output channels per `planes` (timm's `expansion`).
    pub(super) fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck | BlockKind::ResNest { .. } => 4,
        }
    }
}

/// timm's `stem_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StemType {
    /// `''`: a 7×7 stride-2 conv to 64 channels.
    Single,
    /// `'deep'`: 3×3 convs of `stem_width`, `stem_width`, then `2 * stem_width` channels.
    Deep,
    /// `'deep_tiered'`: 3×3 convs of `3 * (stem_width / 4)`, `stem_width`, `2 * stem_width`.
    DeepTiered,
}

impl StemType {
    /// The widths of a deep stem's convs (the last is what the stages start from, timm's
    /// `inplanes`; a single conv puts out 64).
    pub(super) fn deep_widths(self, stem_width: usize) -> [usize; 3] {
        match self {
            StemType::DeepTiered => [3 * (stem_width / 4), stem_width, 2 * stem_width],
            StemType::Single | StemType::Deep => [stem_width, stem_width, 2 * stem_width],
        }
    }

    /// The first conv's name in the state dict (the pretrained config's `first_conv`).
    pub fn first_conv(self) -> &'static str {
        match self {
            StemType::Single => "conv1",
            StemType::Deep | StemType::DeepTiered => "conv1.0",
        }
    }
}
