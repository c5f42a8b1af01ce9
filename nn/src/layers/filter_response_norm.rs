//! timm's `FilterResponseNormTlu2d` (Singh & Krishnan, "Filter Response Normalization Layer"):
//! each channel of each sample divided by its root mean square over the positions (`eps` inside
//! the root), the per-channel affine, then the thresholded linear unit `max(x, τ)` (none with
//! `apply_act=False`).

use crate::{Children, Error, Module, Result};
use kiln_engine::{DType, Tensor};

/// FRN with TLU: `weight`, `bias` and, with the activation, `tau` (all \[C\]) named as timm's.
#[derive(Debug, Clone, Children)]
pub struct FilterResponseNormTlu2d {
    /// γ \[C\].
    #[param]
    pub weight: Tensor,
    /// β \[C\].
    #[param]
    pub bias: Tensor,
    /// The TLU's learned threshold τ \[C\] (none without the activation).
    #[param]
    pub tau: Option<Tensor>,
    /// Added to the mean square.
    pub eps: f64,
}

impl FilterResponseNormTlu2d {
    /// timm's defaults over `channels`: eps 1e-5, γ = 1, β = 0 and, with `apply_act`, τ = 0.
    pub fn new(channels: usize, apply_act: bool) -> Result<FilterResponseNormTlu2d> {
        let param = |v: f64| -> Result<Tensor> {
            Ok(Tensor::full(&[channels], v, DType::F32)?
                .requires_grad_(true)
                .clone())
        };
        Ok(FilterResponseNormTlu2d {
            weight: param(1.0)?,
            bias: param(0.0)?,
            tau: apply_act.then(|| param(0.0)).transpose()?,
            eps: 1e-5,
        })
    }
}

impl Module for FilterResponseNormTlu2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let channels = self.weight.numel();
        let shape = x.shape();
        if shape.len() != 4 || shape[1] != channels {
            return Err(Error::BadArgument {
                model: "FilterResponseNormTlu2d".into(),
                msg: format!("needs [N, {channels}, H, W], got {shape:?}"),
            });
        }
        let per_channel = |t: &Tensor| -> Result<Tensor> {
            Ok(t.reshape(&[1, channels, 1, 1])?.to_dtype(x.dtype())?)
        };
        let inv_rms = x
            .sqr()?
            .mean_dims(&[2, 3], true)?
            .add_scalar(self.eps)?
            .rsqrt()?;
        let h = x
            .mul(&inv_rms)?
            .mul(&per_channel(&self.weight)?)?
            .add(&per_channel(&self.bias)?)?;
        match &self.tau {
            Some(tau) => Ok(h.maximum(&per_channel(tau)?)?),
            None => Ok(h),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FilterResponseNormTlu2d;
    use crate::Module;
    use kiln_engine::{check_gradients, DType, GradCheck, Tensor};

    fn layer(p: &[Tensor]) -> FilterResponseNormTlu2d {
        FilterResponseNormTlu2d {
            weight: p[0].clone(),
            bias: p[1].clone(),
            tau: Some(p[2].clone()),
            eps: 1e-5,
        }
    }

    #[test]
    fn forward_matches_the_definition() {
        let x = Tensor::randn(&[2, 3, 2, 2], DType::F64, 1).unwrap();
        let p: Vec<Tensor> = (2..5)
            .map(|s| Tensor::randn(&[3], DType::F64, s).unwrap())
            .collect();
        let vals: Vec<Vec<f64>> = p.iter().map(|t| t.to_vec::<f64>().unwrap()).collect();
        let got = layer(&p).forward(&x).unwrap().to_vec::<f64>().unwrap();
        for (i, chunk) in x.to_vec::<f64>().unwrap().chunks(4).enumerate() {
            let c = i % 3;
            let nu2 = chunk.iter().map(|u| u * u).sum::<f64>() / 4.0;
            for (j, u) in chunk.iter().enumerate() {
                let want = (u / (nu2 + 1e-5).sqrt() * vals[0][c] + vals[1][c]).max(vals[2][c]);
                assert!((got[i * 4 + j] - want).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let x = Tensor::randn(&[2, 3, 2, 3], DType::F64, 6).unwrap();
        let p: Vec<Tensor> = (7..10)
            .map(|s| Tensor::randn(&[3], DType::F64, s).unwrap())
            .collect();
        let mut inputs = vec![x];
        inputs.extend(p);
        check_gradients(
            &inputs,
            |v| Ok(layer(&v[1..]).forward(&v[0]).unwrap()),
            GradCheck::default(),
        )
        .unwrap();
    }
}
