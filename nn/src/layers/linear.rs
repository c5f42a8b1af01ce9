//! Linear with PyTorch's tensors and default init.

use crate::module::{map_tensor, push, Kind, NamedTensor, TensorMap};
use crate::{init, Module, Result};
use kiln_engine::Tensor;

/// `nn.Linear`: weight [out, in], bias \[out\].
#[derive(Debug, Clone)]
pub struct Linear {
    /// The weight matrix.
    pub weight: Tensor,
    /// The bias, if any.
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

    fn map_tensors(&mut self, prefix: &str, f: &mut TensorMap<'_>) -> Result<()> {
        map_tensor(f, prefix, "weight", &mut self.weight)?;
        match &mut self.bias {
            Some(b) => map_tensor(f, prefix, "bias", b),
            None => Ok(()),
        }
    }

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        push(out, prefix, "weight", &self.weight, Kind::Parameter);
        if let Some(b) = &self.bias {
            push(out, prefix, "bias", b, Kind::Parameter);
        }
    }
}
