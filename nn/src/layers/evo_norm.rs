//! timm's `EvoNorm2dS0` (Liu et al., "Evolving Normalization-Activation Layers"): a sample-wise
//! norm-activation, `x · sigmoid(v · x) / group_std(x)` then the per-channel affine; without the
//! activation (`apply_act=False`) the affine alone.

use crate::{Children, Error, Module, Result};
use kiln_engine::{DType, Tensor};

/// EvoNorm-S0: `weight`, `bias` and, with the activation, `v` (all \[C\]) named as timm's.
#[derive(Debug, Clone, Children)]
pub struct EvoNorm2dS0 {
    /// γ \[C\].
    #[param]
    pub weight: Tensor,
    /// β \[C\].
    #[param]
    pub bias: Tensor,
    /// The swish-like gate's per-channel slope \[C\] (none without the activation).
    #[param]
    pub v: Option<Tensor>,
    /// Groups the channels' standard deviation is taken over.
    pub groups: usize,
    /// Added to the groups' variance.
    pub eps: f64,
}

impl EvoNorm2dS0 {
    /// timm's defaults over `channels`: 32 groups (which must divide them), eps 1e-5, γ = 1,
    /// β = 0 and, with `apply_act`, v = 1.
    pub fn new(channels: usize, apply_act: bool) -> Result<EvoNorm2dS0> {
        let groups = 32;
        if !channels.is_multiple_of(groups) {
            return Err(Error::BadArgument {
                model: "EvoNorm2dS0".into(),
                msg: format!("{groups} groups do not divide {channels} channels"),
            });
        }
        let param = |v: f64| -> Result<Tensor> {
            Ok(Tensor::full(&[channels], v, DType::F32)?
                .requires_grad_(true)
                .clone())
        };
        Ok(EvoNorm2dS0 {
            weight: param(1.0)?,
            bias: param(0.0)?,
            v: apply_act.then(|| param(1.0)).transpose()?,
            groups,
            eps: 1e-5,
        })
    }

    /// timm's `group_std`: each (sample, group)'s biased standard deviation over its channels and
    /// positions (`eps` inside the root), as `[N, groups, 1]`.
    fn group_std(&self, x: &Tensor) -> Result<Tensor> {
        let n = x.shape()[0];
        let grouped = x.reshape(&[n, self.groups, x.numel() / (n * self.groups).max(1)])?;
        Ok(grouped
            .var_dims(&[2], false, true)?
            .add_scalar(self.eps)?
            .sqrt()?)
    }
}

/// `t` \[C\] shaped to broadcast over `[N, C, H, W]`, in `dtype`.
fn per_channel(t: &Tensor, dtype: DType) -> Result<Tensor> {
    Ok(t.reshape(&[1, t.numel(), 1, 1])?.to_dtype(dtype)?)
}

impl Module for EvoNorm2dS0 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let channels = self.weight.numel();
        let shape = x.shape().to_vec();
        if shape.len() != 4 || shape[1] != channels {
            return Err(Error::BadArgument {
                model: "EvoNorm2dS0".into(),
                msg: format!("needs [N, {channels}, H, W], got {shape:?}"),
            });
        }
        let dtype = x.dtype();
        let h = match &self.v {
            Some(v) => {
                let gated = x.mul(&x.mul(&per_channel(v, dtype)?)?.sigmoid()?)?;
                let (n, g) = (shape[0], self.groups);
                gated
                    .reshape(&[n, g, x.numel() / (n * g).max(1)])?
                    .div(&self.group_std(x)?)?
                    .reshape(&shape)?
            }
            None => x.clone(),
        };
        let h = h.mul(&per_channel(&self.weight, dtype)?)?;
        Ok(h.add(&per_channel(&self.bias, dtype)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::EvoNorm2dS0;
    use crate::Module;
    use kiln_engine::{check_gradients, DType, GradCheck, Tensor};

    /// timm's forward written out: x · sigmoid(v·x) / std of its group, then γ·h + β.
    fn naive(x: &[f64], [n, c, hw]: [usize; 3], groups: usize, p: [&[f64]; 3]) -> Vec<f64> {
        let [w, b, v] = p;
        let per_group = c / groups * hw;
        let mut y = vec![0.0; x.len()];
        for (i, chunk) in x.chunks(per_group).enumerate() {
            let mean = chunk.iter().sum::<f64>() / per_group as f64;
            let var = chunk.iter().map(|u| (u - mean).powi(2)).sum::<f64>() / per_group as f64;
            for (j, u) in chunk.iter().enumerate() {
                let ch = (i % groups) * (c / groups) + j / hw;
                let gate = 1.0 / (1.0 + (-v[ch] * u).exp());
                y[i * per_group + j] = u * gate / (var + 1e-5).sqrt() * w[ch] + b[ch];
            }
        }
        assert_eq!(y.len(), n * c * hw);
        y
    }

    fn layer(p: &[Tensor], groups: usize) -> EvoNorm2dS0 {
        EvoNorm2dS0 {
            weight: p[0].clone(),
            bias: p[1].clone(),
            v: Some(p[2].clone()),
            groups,
            eps: 1e-5,
        }
    }

    #[test]
    fn forward_matches_the_definition() {
        let x = Tensor::randn(&[2, 4, 3, 3], DType::F64, 1).unwrap();
        let p: Vec<Tensor> = (2..5)
            .map(|s| Tensor::randn(&[4], DType::F64, s).unwrap())
            .collect();
        let vals: Vec<Vec<f64>> = p.iter().map(|t| t.to_vec::<f64>().unwrap()).collect();
        let want = naive(
            &x.to_vec::<f64>().unwrap(),
            [2, 4, 9],
            2,
            [&vals[0], &vals[1], &vals[2]],
        );
        let got = layer(&p, 2).forward(&x).unwrap().to_vec::<f64>().unwrap();
        for (g, e) in got.iter().zip(&want) {
            assert!((g - e).abs() < 1e-12, "{g} vs {e}");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let x = Tensor::randn(&[2, 4, 2, 3], DType::F64, 6).unwrap();
        let p: Vec<Tensor> = (7..10)
            .map(|s| Tensor::randn(&[4], DType::F64, s).unwrap())
            .collect();
        let mut inputs = vec![x];
        inputs.extend(p);
        check_gradients(
            &inputs,
            |v| Ok(layer(&v[1..], 2).forward(&v[0]).unwrap()),
            GradCheck::default(),
        )
        .unwrap();
    }

    #[test]
    fn groups_must_divide_the_channels() {
        let err = EvoNorm2dS0::new(48, true).unwrap_err().to_string();
        assert!(err.contains("32 groups do not divide 48 channels"), "{err}");
        assert!(EvoNorm2dS0::new(64, false).unwrap().v.is_none());
    }
}
