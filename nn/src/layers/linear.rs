//! Linear with PyTorch's tensors and default init; also timm's 1×1-conv classifier
//! (`use_conv=True`), which applies to pooled features as a Linear with a \[out, in, 1, 1\] weight.

use crate::{init, Children, Module, Result};
use kiln_engine::Tensor;

/// `nn.Linear`: weight [out, in] (or a 1×1 conv's \[out, in, 1, 1\]), bias \[out\].
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

    /// timm's 1×1-conv classifier (`create_classifier(use_conv=True)`) with PyTorch's default
    /// conv init: weight \[out, in, 1, 1\], bias \[out\].
    pub fn conv1x1(in_f: usize, out_f: usize) -> Result<Linear> {
        let param = |shape: &[usize]| -> Result<Tensor> {
            Ok(init::uniform_fan_in(shape, in_f)?
                .requires_grad_(true)
                .clone())
        };
        Ok(Linear {
            weight: param(&[out_f, in_f, 1, 1])?,
            bias: Some(param(&[out_f])?),
        })
    }

    /// The weight as the [out, in] matrix it applies (a 1×1 conv's flattened).
    pub fn weight_matrix(&self) -> Result<Tensor> {
        match self.weight.rank() {
            2 => Ok(self.weight.clone()),
            _ => Ok(self.weight.reshape(&self.weight.shape()[..2])?),
        }
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
        Ok(x.linear(&self.weight_matrix()?, self.bias.as_ref())?)
    }
}
