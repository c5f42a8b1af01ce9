//! ResMLP's `Affine` "norm": a learned per-channel scale and shift of tokens with channels last.

use crate::{Children, Module, Result};
use kiln_engine::{DType, Tensor};

/// timm's `Affine`: `beta + alpha · x` (`torch.addcmul`), `alpha` ones and `beta` zeros of
/// shape [1, 1, dim].
#[derive(Debug, Clone, Children)]
pub(super) struct Affine {
    #[param]
    alpha: Tensor,
    #[param]
    beta: Tensor,
}

impl Affine {
    /// The identity affine map of `dim` channels.
    pub(super) fn new(dim: usize) -> Result<Affine> {
        let param = |v: f64| -> Result<Tensor> {
            Ok(Tensor::full(&[1, 1, dim], v, DType::F32)?
                .requires_grad_(true)
                .clone())
        };
        Ok(Affine {
            alpha: param(1.0)?,
            beta: param(0.0)?,
        })
    }
}

impl Module for Affine {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // under autocast the parameters join the activations' dtype
        let dtype = x.dtype();
        let scaled = x.mul(&self.alpha.to_dtype(dtype)?)?;
        Ok(scaled.add(&self.beta.to_dtype(dtype)?)?)
    }

    crate::module::not_prunable!();
}
