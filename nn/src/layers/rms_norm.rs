//! timm's `RmsNorm` (norm.py) over the last dim, and the token models' norm: a LayerNorm or an
//! RmsNorm under one name.

use super::LayerNorm;
use crate::{Children, Module, Result};
use kiln_engine::{DType, Tensor};

/// timm's `RmsNorm`: x / √(mean(x²) + eps) · weight over the last dim (`weight` ones), built from
/// the engine's elementwise ops and mean.
#[derive(Debug, Clone, Children)]
pub struct RmsNorm {
    /// γ over the normalized dim.
    #[param]
    pub weight: Tensor,
    /// Added to the mean square.
    pub eps: f64,
}

impl RmsNorm {
    /// An RmsNorm over a last dim of `dim` with `eps`.
    pub fn new(dim: usize, eps: f64) -> Result<RmsNorm> {
        let weight = Tensor::full(&[dim], 1.0, DType::F32)?;
        Ok(RmsNorm {
            weight: weight.requires_grad_(true).clone(),
            eps,
        })
    }
}

impl Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let inv_rms = x.sqr()?.mean(-1, true)?.add_scalar(self.eps)?.rsqrt()?;
        Ok(x.mul(&inv_rms)?.mul(&self.weight.to_dtype(x.dtype())?)?)
    }
}

/// A token model's norm over the last dim: timm's `LayerNorm` or, where its `norm_layer` is
/// `RmsNorm` (AIMv2), an RmsNorm; its tensors under the norm's own name.
#[derive(Debug, Clone, Children)]
pub enum TokenNorm {
    /// `weight` and `bias`.
    Layer(#[child(flatten)] LayerNorm),
    /// `weight` alone.
    Rms(#[child(flatten)] RmsNorm),
}

impl TokenNorm {
    /// A LayerNorm, or with `rms` an RmsNorm, of `dim` with `eps`.
    pub fn new(dim: usize, eps: f64, rms: bool) -> Result<TokenNorm> {
        Ok(match rms {
            true => TokenNorm::Rms(RmsNorm::new(dim, eps)?),
            false => TokenNorm::Layer(LayerNorm::with_eps(dim, eps)?),
        })
    }

    /// The normalized width.
    pub fn width(&self) -> usize {
        match self {
            TokenNorm::Layer(n) => n.weight.shape()[0],
            TokenNorm::Rms(n) => n.weight.shape()[0],
        }
    }
}

impl Module for TokenNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            TokenNorm::Layer(n) => n.forward(x),
            TokenNorm::Rms(n) => n.forward(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_engine::{check_gradients, GradCheck};

    /// Each row divided by its root mean square (eps 1e-5), times the weight, with its gradient.
    #[test]
    fn rms_norm_matches_the_definition() {
        let norm = RmsNorm::new(5, 1e-5).unwrap();
        norm.to_dtype(DType::F64).unwrap();
        let w = Tensor::randn(&[5], DType::F64, 2).unwrap();
        norm.weight.copy_(&w).unwrap();
        let x = Tensor::randn(&[3, 5], DType::F64, 1).unwrap();
        let got = norm.forward(&x).unwrap().to_vec::<f64>().unwrap();
        let (xs, ws) = (x.to_vec::<f64>().unwrap(), w.to_vec::<f64>().unwrap());
        for (row, out) in xs.chunks(5).zip(got.chunks(5)) {
            let rms = (row.iter().map(|v| v * v).sum::<f64>() / 5.0 + 1e-5).sqrt();
            for ((v, o), w) in row.iter().zip(out).zip(&ws) {
                assert!((o - v / rms * w).abs() < 1e-12);
            }
        }
        let f = |v: &[Tensor]| Ok(norm.forward(&v[0]).unwrap());
        check_gradients(&[x], f, GradCheck::default()).unwrap();
    }
}
