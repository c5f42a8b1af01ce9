//! timm's `GatedMlp` (gMLP's channel MLP): fc1, GELU, the spatial gate (which halves the
//! width), fc2.

use super::init;
use super::spatial_gating::SpatialGatingUnit;
use crate::layers::Linear;
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// `fc2(gate(gelu(fc1(x))))`, `fc1` `dim` → `hidden`, `fc2` `hidden / 2` → `dim`.
#[derive(Children)]
pub(super) struct GatedMlp {
    #[child]
    fc1: Linear,
    #[child]
    gate: SpatialGatingUnit,
    #[child]
    fc2: Linear,
}

impl GatedMlp {
    /// The MLP of `dim`-wide tokens with `hidden` (even) features gated across `seq_len`
    /// tokens, with timm's mixer init.
    pub(super) fn new(dim: usize, hidden: usize, seq_len: usize) -> Result<GatedMlp> {
        Ok(GatedMlp {
            fc1: init::linear(dim, hidden, true)?,
            gate: SpatialGatingUnit::new(hidden, seq_len)?,
            fc2: init::linear(hidden / 2, dim, true)?,
        })
    }
}

impl Module for GatedMlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.fc1.forward(x)?.gelu()?;
        self.fc2.forward(&self.gate.forward(&h)?)
    }

    crate::module::not_prunable!();
}
