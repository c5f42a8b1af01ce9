//! timm's `ScaledStdConv2d` and `ScaledStdConv2dSame` (the NF-Nets' conv): each output filter
//! standardized over its fan-in ([`super::standardize_weight`]: biased variance, `eps` inside the
//! root), scaled by a learned per-filter `gain` times `gamma / √fan_in`, then convolved as
//! `nn.Conv2d` would.

use super::{same_padding, standardize_weight, Conv2dPad, PadType};
use crate::{Children, Module, Result};
use kiln_engine::{DType, Tensor};

/// A conv whose filters are weight-standardized and scaled; `weight`, `bias` and `gain`
/// \[OC, 1, 1, 1\] named as timm's.
#[derive(Debug, Clone, Children)]
pub struct ScaledStdConv2d {
    /// The conv holding the raw filters and the bias, with timm's padding.
    #[child(flatten)]
    pub conv: Conv2dPad,
    /// The learned per-filter gain.
    #[param]
    pub gain: Tensor,
    /// `gamma / √fan_in`.
    pub scale: f64,
    /// Added to the filters' variance.
    pub eps: f64,
}

/// How a [`ScaledStdConv2d`] is built besides its shape.
#[derive(Debug, Clone, Copy)]
pub struct StdConvCfg {
    /// The activation's gain folded into the filters (1 when the activation applies it).
    pub gamma: f64,
    /// Added to the filters' variance.
    pub eps: f64,
    /// TensorFlow's "same" padding (`ScaledStdConv2dSame`) instead of PyTorch's symmetric one.
    pub same: bool,
}

impl ScaledStdConv2d {
    /// A biased `k`×`k` conv `in_c` → `out_c` at `stride` over `groups`, its gain `gain_init`.
    pub fn new(
        (in_c, out_c, k): (usize, usize, usize),
        stride: usize,
        groups: usize,
        gain_init: f64,
        c: StdConvCfg,
    ) -> Result<ScaledStdConv2d> {
        let pad = if c.same {
            PadType::Same
        } else {
            PadType::Symmetric
        };
        let conv = Conv2dPad::new(in_c, out_c, k, stride, groups, pad, true)?;
        let fan_in = in_c / groups.max(1) * k * k;
        let gain = Tensor::full(&[out_c, 1, 1, 1], gain_init, DType::F32)?;
        Ok(ScaledStdConv2d {
            conv,
            gain: gain.requires_grad_(true).clone(),
            scale: c.gamma / (fan_in as f64).sqrt(),
            eps: c.eps,
        })
    }

    /// The filters as the conv uses them: standardized per output channel, times
    /// `gain · scale`.
    pub fn standardized_weight(&self) -> Result<Tensor> {
        let scale = self.gain.mul_scalar(self.scale)?;
        standardize_weight(&self.conv.conv.weight, self.eps, Some(&scale))
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.conv.out_channels()
    }
}

impl Module for ScaledStdConv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = &self.conv.conv;
        let padded;
        let input = if self.conv.dynamic_same {
            let r = x.rank();
            let hw = [x.shape()[r - 2], x.shape()[r - 1]];
            let k = c.weight.shape()[2];
            padded = x.pad2d(same_padding(hw, k, c.params.stride[0]))?;
            &padded
        } else {
            x
        };
        let w = self.standardized_weight()?;
        Ok(input.conv2d(&w, c.bias.as_ref(), c.params)?)
    }
}
