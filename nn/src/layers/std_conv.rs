//! timm's `StdConv2d` (BiT's conv): each output filter standardized over its fan-in (its mean
//! subtracted, divided by √(biased variance + eps), as timm's `F.batch_norm` of the filters
//! computes it), then convolved as `nn.Conv2d` would. [`standardize_weight`] is also the first
//! step of the NF-Nets' [`super::ScaledStdConv2d`].

use super::Conv2d;
use crate::{Children, Module, Result};
use kiln_engine::{Conv2dParams, Tensor};

/// `w` \[OC, ...\] standardized per output filter with `eps` added to the variance, each filter
/// then times `scale` \[OC, 1, 1, 1\] when given.
pub fn standardize_weight(w: &Tensor, eps: f64, scale: Option<&Tensor>) -> Result<Tensor> {
    let dims: Vec<isize> = (1..w.rank() as isize).collect();
    let mean = w.mean_dims(&dims, true)?;
    let var = w.var_dims(&dims, false, true)?;
    let inv_std = var.add_scalar(eps)?.rsqrt()?;
    let factor = match scale {
        Some(s) => inv_std.mul(s)?,
        None => inv_std,
    };
    Ok(w.sub(&mean)?.mul(&factor)?)
}

/// A bias-free conv whose filters are weight-standardized; `weight` named as timm's.
#[derive(Debug, Clone, Children)]
pub struct StdConv2d {
    /// The conv holding the raw filters, padded as timm's `get_padding`.
    #[child(flatten)]
    pub conv: Conv2d,
    /// Added to the filters' variance (timm's default 1e-6, BiT's 1e-8).
    pub eps: f64,
}

impl StdConv2d {
    /// A `k`×`k` conv `in_c` → `out_c` at `stride`, padded `((stride - 1) + (k - 1)) / 2`, with
    /// PyTorch's default init.
    pub fn new(in_c: usize, out_c: usize, k: usize, stride: usize, eps: f64) -> Result<StdConv2d> {
        let params = Conv2dParams {
            stride: [stride; 2],
            padding: [((stride - 1) + (k - 1)) / 2; 2],
            ..Default::default()
        };
        Ok(StdConv2d {
            conv: Conv2d::with_params(in_c, out_c, [k, k], params, false)?,
            eps,
        })
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.conv.weight.shape()[0]
    }
}

impl Module for StdConv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = &self.conv;
        let w = standardize_weight(&c.weight, self.eps, None)?;
        Ok(x.conv2d(&w, c.bias.as_ref(), c.params)?)
    }
}

#[cfg(test)]
mod tests {
    use super::standardize_weight;
    use kiln_engine::{DType, Tensor};

    #[test]
    fn each_filter_has_zero_mean_and_unit_variance() {
        let w = Tensor::randn(&[3, 2, 3, 3], DType::F64, 7).unwrap();
        let s = standardize_weight(&w, 0.0, None)
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        for filter in s.chunks(18) {
            let mean = filter.iter().sum::<f64>() / 18.0;
            let var = filter.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 18.0;
            assert!(
                mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12,
                "{mean} {var}"
            );
        }
    }
}
