//! What distinguishes one DLA from another (timm's `DLA` arguments of a registered name).

/// The residual block of the trees (timm's `block`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// `DlaBasic`: two 3×3 conv-BNs.
    Basic,
    /// `DlaBottleneck`: 1×1, grouped 3×3, 1×1 (half the output width inside).
    Bottleneck,
    /// `DlaBottle2neck`: Res2Net's split of the 3×3 into scale-4 hierarchical groups.
    Bottle2neck,
}

/// timm's `DLA` arguments of a registered name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DlaCfg {
    /// Convs of level0 and level1, then the tree depth of level2 … level5.
    pub levels: [usize; 6],
    /// Width of the base layer and each level.
    pub channels: [usize; 6],
    /// The trees' block.
    pub block: BlockKind,
    /// Groups of the blocks' 3×3 convs.
    pub cardinality: usize,
    /// Width per group, over 64.
    pub base_width: usize,
    /// The roots add their first input (timm's `shortcut_root`).
    pub shortcut_root: bool,
}
