//! timm's `LayerScale2d`: a learned per-channel scale `gamma` of an NCHW tensor.

use crate::module::{map_tensor, push, Kind, NamedTensor, TensorMap};
use crate::{Module, Result};
use kiln_engine::{DType, Tensor};

/// x · gamma (gamma initialized to `init_values`).
#[derive(Debug, Clone)]
pub struct LayerScale2d {
    /// The per-channel scale.
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

    fn map_tensors(&mut self, prefix: &str, f: &mut TensorMap<'_>) -> Result<()> {
        map_tensor(f, prefix, "gamma", &mut self.gamma)
    }

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        push(out, prefix, "gamma", &self.gamma, Kind::Parameter);
    }
}
