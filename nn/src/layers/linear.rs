//! Linear with PyTorch's tensors and default init.

use crate::{init, Children, Module, Result};
use kiln_engine::Tensor;

/// `nn.Linear`: weight [out, in], bias \[out\].
#[derive(Debug, Clone, Children)]
pub struct Linear {
    /// The weight matrix.
    #[param]
    pub weight: Tensor,
    /// The bias, if any.
    #[param]
    pub bias: Option<Tensor>,
}

impl Linear {
    /// A linear layer with PyTorch's default init (U(±1/√in)).
    pub fn new(in_f: usize, out_f: usize, bias: bool) -> Result<Linear> {
        let weight = init::uniform_fan_in(&[out_f, in_f], in_f)?
            .requires_grad_(true)
            .clone();
        let bias = if bias {
            Some(
                init::uniform_fan_in(&[out_f], in_f)?
                    .requires_grad_(true)
                    .clone(),
            )
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    /// A linear layer with timm's ConvNeXt/ViT init: trunc-normal weight of `std`, zero bias.
    pub fn trunc_normal(in_f: usize, out_f: usize, std: f64) -> Result<Linear> {
        Ok(Linear {
            weight: init::trunc_normal(&[out_f, in_f], std)?,
            bias: Some(init::zeros(&[out_f])?),
        })
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.linear(&self.weight, self.bias.as_ref())?)
    }
}
