//! timm's `LayerScale`: a learned per-channel scale `gamma` of tokens with channels last.

use crate::{Children, Module, Result};
use kiln_engine::{DType, Tensor};

/// x · gamma over the last dim (gamma initialized to `init_values`; DeiT III, the register ViTs).
#[derive(Debug, Clone, Children)]
pub struct LayerScale {
    /// The per-channel scale.
    #[param]
    pub gamma: Tensor,
}

impl LayerScale {
    /// `LayerScale(dim, init_values)`.
    pub fn new(dim: usize, init_values: f64) -> Result<LayerScale> {
        let gamma = Tensor::full(&[dim], init_values, DType::F32)?;
        Ok(LayerScale {
            gamma: gamma.requires_grad_(true).clone(),
        })
    }
}

impl Module for LayerScale {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // under autocast gamma joins the activations' dtype, as timm's parameter cast
        Ok(x.mul(&self.gamma.to_dtype(x.dtype())?)?)
    }
}
