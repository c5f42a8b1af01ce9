//! What distinguishes one CSPNet from another (timm's `CspModelCfg`: the stem, the stages, the
//! activation) and the output stride it is built for.

use crate::layers::Activation;

/// How a stage is wired (timm's `stage_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageType {
    /// `'csp'`: a cross stage whose blocks run on the second half of the expanded map, each half
    /// through its own transition conv before they meet (`CrossStage`).
    Csp,
    /// `'cs3'`: blocks on the first half, one transition conv after the halves are concatenated
    /// (`CrossStage3`).
    Cs3,
    /// `'dark'`: a downsampling conv then the blocks, no split (`DarkStage`).
    Dark,
}

/// The residual block a stage repeats (timm's `block_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockType {
    /// `'bottle'`: 1×1, 3×3, 1×1 convs and an activation after the sum (`BottleneckBlock`).
    Bottle,
    /// `'dark'`: 1×1 then 3×3 conv (`DarkBlock`).
    Dark,
    /// `'edge'`: 3×3 then 1×1 conv (`EdgeBlock`).
    Edge,
}

/// timm's `CspStemCfg`: a chain of convs, optionally a 3×3 stride-2 max pool.
#[derive(Debug, Clone, PartialEq)]
pub struct StemCfg {
    /// Width of each conv (`stem.conv1`, `stem.conv2`, ...).
    pub out_chs: Vec<usize>,
    /// The stem's total stride: 1, 2 or 4.
    pub stride: usize,
    /// Kernel of every stem conv.
    pub kernel_size: usize,
    /// Explicit padding of the first conv (the focus stem's 2); None is timm's symmetric `''`.
    pub padding: Option<usize>,
    /// A max pool ends the stem (`pool='max'`).
    pub pool: bool,
}

/// One stage of timm's `CspStagesCfg`, its per-stage tuples already expanded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageCfg {
    /// Blocks in the stage.
    pub depth: usize,
    /// Output width.
    pub out_chs: usize,
    /// The stage's stride.
    pub stride: usize,
    /// Groups of the 3×3 convs.
    pub groups: usize,
    /// Block output width over the stage's.
    pub block_ratio: f64,
    /// Block inner width over the block's output.
    pub bottle_ratio: f64,
    /// Downsample by a 2×2 average pool and a 1×1 conv instead of a strided 3×3 conv.
    pub avg_down: bool,
    /// Squeeze-excite in the blocks, with its reduction ratio (timm's `attn_layer='se'`).
    pub se_ratio: Option<f64>,
    /// How the stage is wired.
    pub stage_type: StageType,
    /// The block it repeats.
    pub block_type: BlockType,
    /// Cross stages: expansion width over the output width.
    pub expand_ratio: f64,
    /// Cross stages: no activation after the expansion conv.
    pub cross_linear: bool,
    /// Cross stages: the downsampling conv grows to the output width.
    pub down_growth: bool,
}

/// timm's `CspModelCfg` (`zero_init_last` comes from [`crate::ModelArgs`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CspNetCfg {
    /// The stem.
    pub stem: StemCfg,
    /// The stages, in order.
    pub stages: Vec<StageCfg>,
    /// The activation of every conv-norm-act and squeeze-excite (`act_layer`).
    pub act: Activation,
    /// The network's output stride: 32, or 16 or 8 where the last stages dilate instead of
    /// striding (timm's `output_stride`).
    pub output_stride: usize,
}
