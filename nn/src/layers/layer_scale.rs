//! timm's `LayerScale`: a learned per-channel scale `gamma` of tokens with channels last, as a
//! layer or as a parameter of the block itself (ResMLP's `ls1`, CaiT's `gamma_1`).

use crate::{Children, Module, Result};
use kiln_engine::{DType, Tensor};

/// A per-channel scale parameter of `dim` channels at `init_values`.
pub fn layer_scale_gamma(dim: usize, init_values: f64) -> Result<Tensor> {
    let gamma = Tensor::full(&[dim], init_values, DType::F32)?;
    Ok(gamma.requires_grad_(true).clone())
}

/// `x · gamma` over the last dim; under autocast gamma joins the activations' dtype, as timm's
/// parameter cast.
pub fn scale_channels(x: &Tensor, gamma: &Tensor) -> Result<Tensor> {
    Ok(x.mul(&gamma.to_dtype(x.dtype())?)?)
}

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
        Ok(LayerScale {
            gamma: layer_scale_gamma(dim, init_values)?,
        })
    }
}

impl Module for LayerScale {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scale_channels(x, &self.gamma)
    }
}
