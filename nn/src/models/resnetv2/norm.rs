//! ResNet-V2's norm-activation layer (timm's `norm_layer` with ReLU where it takes
//! `act_layer`): BatchNorm, GroupNorm, EvoNorm-S0 or FRN with TLU.

use super::config::NormKind;
use crate::layers::{
    Activation, BatchNormAct2d, EvoNorm2dS0, FilterResponseNormTlu2d, GroupNormAct,
};
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// A norm with its activation (ReLU, or the norm's own nonlinearity).
#[derive(Children)]
pub(super) enum NormAct {
    /// timm's `BatchNormAct2d`.
    Batch(BatchNormAct2d),
    /// timm's `GroupNormAct`.
    Group(GroupNormAct),
    /// timm's `EvoNorm2dS0`.
    Evo(EvoNorm2dS0),
    /// timm's `FilterResponseNormTlu2d`.
    Frn(FilterResponseNormTlu2d),
}

impl NormAct {
    /// `kind` over `channels`, activated.
    pub(super) fn new(kind: NormKind, channels: usize) -> Result<NormAct> {
        let relu = Some(Activation::Relu);
        Ok(match kind {
            NormKind::BatchNorm => NormAct::Batch(BatchNormAct2d::new(channels, 1e-5, relu)?),
            NormKind::GroupNorm => NormAct::Group(GroupNormAct::new(channels, 32, relu)?),
            NormKind::EvoNormS0 => NormAct::Evo(EvoNorm2dS0::new(channels, true)?),
            NormKind::FrnTlu => NormAct::Frn(FilterResponseNormTlu2d::new(channels, true)?),
        })
    }
}

impl Module for NormAct {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            NormAct::Batch(n) => n.forward(x),
            NormAct::Group(n) => n.forward(x),
            NormAct::Evo(n) => n.forward(x),
            NormAct::Frn(n) => n.forward(x),
        }
    }
}
