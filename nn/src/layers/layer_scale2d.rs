//! timm's `LayerScale2d`: a learned per-channel scale `gamma` of an NCHW tensor.

use crate::{Children, Module, Result};
use kiln_engine::{DType, Tensor};

/// x · gamma (gamma initialized to `init_values`).
#[derive(Debug, Clone, Children)]
pub struct LayerScale2d {
    /// The per-channel scale.
    #[param]
    pub gamma: Tensor,
}

impl LayerScale2d {
    /// `LayerScale2d(dim, init_values)`.
    pub fn new(dim: usize, init_values: f64) -> Result<LayerScale2d> {
        let gamma = Tensor::full(&[dim], init_values, DType::F32)?;
        Ok(LayerScale2d {
            gamma: gamma.requires_grad_(true).clone(),
        })
    }
}

impl Module for LayerScale2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // under autocast gamma joins the activations' dtype, as timm's parameter cast
        let c = self.gamma.shape()[0];
        let gamma = self.gamma.to_dtype(x.dtype())?.reshape(&[1, c, 1, 1])?;
        Ok(x.mul(&gamma)?)
    }
}
