//! timm's `BatchNormAct2d`: BatchNorm then an optional activation, with BatchNorm's names.

use super::{Activation, BatchNorm2d};
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// BN followed by `act` (none when timm's `apply_act=False`); ReLU runs fused into the BN.
#[derive(Debug, Clone, Children)]
pub struct BatchNormAct2d {
    /// The BatchNorm (its tensors are the layer's).
    #[child(flatten)]
    pub bn: BatchNorm2d,
    /// The activation after it.
    pub act: Option<Activation>,
}

impl BatchNormAct2d {
    /// A BN over `c` channels with variance epsilon `eps`, then `act`.
    pub fn new(c: usize, eps: f64, act: Option<Activation>) -> Result<BatchNormAct2d> {
        let mut bn = BatchNorm2d::new(c)?;
        bn.eps = eps;
        Ok(BatchNormAct2d { bn, act })
    }
}

impl Module for BatchNormAct2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self.act {
            Some(Activation::Relu) => self.bn.forward_act(x, None, true),
            Some(act) => act.forward(&self.bn.forward(x)?),
            None => self.bn.forward(x),
        }
    }
}
