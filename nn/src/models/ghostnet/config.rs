//! What distinguishes one GhostNet from another (timm's `_create_ghostnet` arguments), and the
//! stage table every width scales.

/// The block generation: timm's `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// GhostNet: ghost modules of a primary conv and a cheap depthwise conv.
    V1,
    /// GhostNetV2: the expanding ghost module of every block after the second gated by DFC
    /// attention (timm's mode 'attn').
    V2,
    /// GhostNetV3: re-parameterizable branches (three convs, a 1×1 scale branch, a BN skip),
    /// and DFC attention after the second block (mode 'shortcut').
    V3,
}

/// timm's `GhostNet` arguments of a registered name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GhostNetCfg {
    /// Width multiplier.
    pub width: f64,
    /// The block generation.
    pub version: Version,
}

/// One bottleneck of timm's table: (kernel, expansion width, output width, SE ratio, stride).
pub(super) type BlockRow = (usize, usize, usize, f64, usize);

/// timm's `cfgs`: nine stages of bottlenecks (before the final 1×1 conv stage).
pub(super) fn stage_table() -> Vec<Vec<BlockRow>> {
    vec![
        vec![(3, 16, 16, 0.0, 1)],
        vec![(3, 48, 24, 0.0, 2)],
        vec![(3, 72, 24, 0.0, 1)],
        vec![(5, 72, 40, 0.25, 2)],
        vec![(5, 120, 40, 0.25, 1)],
        vec![(3, 240, 80, 0.0, 2)],
        vec![
            (3, 200, 80, 0.0, 1),
            (3, 184, 80, 0.0, 1),
            (3, 184, 80, 0.0, 1),
            (3, 480, 112, 0.25, 1),
            (3, 672, 112, 0.25, 1),
        ],
        vec![(5, 672, 160, 0.25, 2)],
        vec![
            (5, 960, 160, 0.0, 1),
            (5, 960, 160, 0.25, 1),
            (5, 960, 160, 0.0, 1),
            (5, 960, 160, 0.25, 1),
        ],
    ]
}
