//! timm's `StarReLU` (MetaFormer's activation): s · relu(x)² + b with a learned scalar scale and
//! bias.

use crate::{Children, Module, Result};
use kiln_engine::{DType, Tensor};

/// StarReLU: `scale` · relu(x)² + `bias`, each a learned \[1\] tensor.
#[derive(Debug, Clone, Children)]
pub struct StarRelu {
    /// s, initialized to 1.
    #[param]
    pub scale: Tensor,
    /// b, initialized to 0.
    #[param]
    pub bias: Tensor,
}

impl StarRelu {
    /// timm's defaults: scale 1, bias 0, both learned.
    pub fn new() -> Result<StarRelu> {
        let param = |v: f64| -> Result<Tensor> {
            Ok(Tensor::full(&[1], v, DType::F32)?
                .requires_grad_(true)
                .clone())
        };
        Ok(StarRelu {
            scale: param(1.0)?,
            bias: param(0.0)?,
        })
    }
}

impl Module for StarRelu {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // under autocast the scalars join the activations' dtype, as timm's parameter cast
        let scale = self.scale.to_dtype(x.dtype())?;
        let bias = self.bias.to_dtype(x.dtype())?;
        Ok(x.relu()?.sqr()?.mul(&scale)?.add(&bias)?)
    }
}

#[cfg(test)]
mod tests {
    use super::StarRelu;
    use crate::Module;
    use kiln_engine::{check_gradients, DType, GradCheck, Tensor};

    /// s · max(x, 0)² + b element by element, and its gradients (input, scale, bias).
    #[test]
    fn matches_the_definition_and_its_gradients() {
        let x = Tensor::randn(&[2, 3, 4], DType::F64, 1).unwrap();
        let scale = Tensor::from_vec(vec![0.7f64], &[1]).unwrap();
        let bias = Tensor::from_vec(vec![-0.2f64], &[1]).unwrap();
        let act = |s: &Tensor, b: &Tensor| StarRelu {
            scale: s.clone(),
            bias: b.clone(),
        };
        let got = act(&scale, &bias).forward(&x).unwrap();
        for (y, x) in got
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .zip(x.to_vec::<f64>().unwrap())
        {
            assert!((y - (0.7 * x.max(0.0).powi(2) - 0.2)).abs() < 1e-12);
        }
        let f = |v: &[Tensor]| Ok(act(&v[1], &v[2]).forward(&v[0]).unwrap());
        check_gradients(&[x, scale, bias], f, GradCheck::default()).unwrap();
    }
}
