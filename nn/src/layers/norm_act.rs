//! timm's norm + activation layers (`norm_act.py`): `BatchNormAct2d` and `GroupNormAct`, each the
//! norm then an optional activation, with the norm's names.

use super::{Activation, BatchNorm2d, GroupNorm};
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

/// timm's `GroupNormAct`: GroupNorm then `act` (none when timm's `apply_act=False`).
#[derive(Debug, Clone, Children)]
pub struct GroupNormAct {
    /// The GroupNorm (its tensors are the layer's).
    #[child(flatten)]
    pub gn: GroupNorm,
    /// The activation after it.
    pub act: Option<Activation>,
}

impl GroupNormAct {
    /// `num_groups` groups over `c` channels (which they must divide), eps 1e-5, then `act`.
    pub fn new(c: usize, num_groups: usize, act: Option<Activation>) -> Result<GroupNormAct> {
        Ok(GroupNormAct {
            gn: GroupNorm::with_groups(c, num_groups)?,
            act,
        })
    }
}

impl Module for GroupNormAct {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.gn.forward(x)?;
        match self.act {
            Some(act) => act.forward(&y),
            None => Ok(y),
        }
    }
}
