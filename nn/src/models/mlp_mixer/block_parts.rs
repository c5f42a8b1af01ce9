//! What every kind of mixer block is built from: its widths, stochastic depth and residual.

use super::MixerBlockKind;
use crate::layers::DropPath;
use crate::{Module, Result};
use kiln_engine::Tensor;

/// What a block is built from.
pub(super) struct BlockCfg {
    /// Token width.
    pub dim: usize,
    /// Tokens (patches) the token mixer spans (timm's `seq_len`).
    pub seq_len: usize,
    /// The token MLP's hidden width (`MixerBlock`'s alone).
    pub tokens_hidden: usize,
    /// The channel MLP's hidden width.
    pub channels_hidden: usize,
    /// The block kind.
    pub kind: MixerBlockKind,
}

/// timm's stochastic depth of a residual branch at `rate`.
pub(super) fn drop_path(rate: f64) -> DropPath {
    DropPath {
        p: rate,
        training: true,
    }
}

/// `x + drop_path(branch)`, both `[B, N, C]` tokens.
pub(super) fn residual(x: &Tensor, branch: &Tensor, drop_path: &DropPath) -> Result<Tensor> {
    Ok(x.add(&drop_path.forward(branch)?)?)
}
