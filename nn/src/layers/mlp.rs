//! timm's `Mlp` (mlp.py) of the token models: fc1, an activation, an optional LayerNorm, fc2,
//! with the activations the ViTs name (`gelu`, `gelu_tanh`, `quick_gelu`), built from the
//! engine's elementwise ops.

use super::{LayerNorm, Linear};
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// The MLP's activation (timm's `act_layer` of a ViT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MlpAct {
    /// Exact GELU (`nn.GELU`, timm's default).
    Gelu,
    /// tanh-approximated GELU (`gelu_tanh`, SigLIP's).
    GeluTanh,
    /// x·sigmoid(1.702·x) (`quick_gelu`, OpenAI CLIP's).
    QuickGelu,
}

impl MlpAct {
    /// The activation of `x`.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            MlpAct::Gelu => x.gelu()?,
            MlpAct::GeluTanh => x.gelu_tanh()?,
            MlpAct::QuickGelu => x.mul(&x.mul_scalar(1.702)?.sigmoid()?)?,
        })
    }
}

/// timm's `Mlp`: fc2(norm(act(fc1(x)))).
#[derive(Debug, Clone, Children)]
pub struct Mlp {
    /// The hidden projection.
    #[child]
    pub fc1: Linear,
    /// The hidden features' LayerNorm (timm's `norm_layer`, BEiT-3's `scale_mlp_norm`).
    #[child]
    pub norm: Option<LayerNorm>,
    /// The output projection.
    #[child]
    pub fc2: Linear,
    act: MlpAct,
}

impl Mlp {
    /// `hidden` features of `dim`-wide tokens with timm's trunc-normal (.02) linear weights and
    /// zero biases.
    pub fn new(dim: usize, hidden: usize, act: MlpAct) -> Result<Mlp> {
        Ok(Mlp {
            fc1: Linear::trunc_normal(dim, hidden, 0.02)?,
            norm: None,
            fc2: Linear::trunc_normal(hidden, dim, 0.02)?,
            act,
        })
    }

    /// The MLP of `fc1` and `fc2` as a family initializes them (the mixers' xavier-uniform).
    pub fn from_linears(fc1: Linear, fc2: Linear, act: MlpAct) -> Mlp {
        Mlp {
            fc1,
            norm: None,
            fc2,
            act,
        }
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.act.apply(&self.fc1.forward(x)?)?;
        let h = match &self.norm {
            Some(norm) => norm.forward(&h)?,
            None => h,
        };
        self.fc2.forward(&h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_engine::{check_gradients, DType, GradCheck};

    /// quick_gelu(x) = x / (1 + e^(−1.702·x)), element by element, with its gradient.
    #[test]
    fn quick_gelu_matches_the_definition() {
        let x = Tensor::randn(&[3, 5], DType::F64, 1).unwrap();
        let got = MlpAct::QuickGelu
            .apply(&x)
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        for (y, x) in got.iter().zip(x.to_vec::<f64>().unwrap()) {
            assert!((y - x / (1.0 + (-1.702 * x).exp())).abs() < 1e-12);
        }
        let f = |v: &[Tensor]| Ok(MlpAct::QuickGelu.apply(&v[0]).unwrap());
        check_gradients(&[x], f, GradCheck::default()).unwrap();
    }
}
