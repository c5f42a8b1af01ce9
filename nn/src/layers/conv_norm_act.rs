//! timm's `ConvNormAct` with BatchNorm: a bias-free conv with timm's symmetric padding
//! (`get_padding`), then `BatchNormAct2d` (`conv`, `bn`).

use super::{Activation, BatchNormAct2d, Conv2d};
use crate::{Children, Module, Result};
use kiln_engine::{Conv2dParams, Tensor};

/// `conv` (no bias) then `bn` with an optional activation.
#[derive(Debug, Clone, Children)]
pub struct ConvNormAct {
    /// The conv, padded `((stride - 1) + dilation · (k - 1)) / 2`.
    #[child]
    pub conv: Conv2d,
    /// The BatchNorm and its activation.
    #[child]
    pub bn: BatchNormAct2d,
}

impl ConvNormAct {
    /// A `k`×`k` conv `in_c` → `out_c` at `stride` in `groups`, BN (eps 1e-5), then `act`, with
    /// PyTorch's default conv init.
    pub fn new(
        in_c: usize,
        out_c: usize,
        k: usize,
        stride: usize,
        groups: usize,
        act: Option<Activation>,
    ) -> Result<ConvNormAct> {
        ConvNormAct::dilated(in_c, out_c, k, stride, 1, groups, act)
    }

    /// [`ConvNormAct::new`] with the conv's `dilation`.
    pub fn dilated(
        in_c: usize,
        out_c: usize,
        k: usize,
        stride: usize,
        dilation: usize,
        groups: usize,
        act: Option<Activation>,
    ) -> Result<ConvNormAct> {
        let pad = ((stride - 1) + dilation * (k - 1)) / 2;
        let params = Conv2dParams {
            stride: [stride; 2],
            padding: [pad; 2],
            dilation: [dilation; 2],
            groups,
        };
        Ok(ConvNormAct {
            conv: Conv2d::with_params(in_c, out_c, [k, k], params, false)?,
            bn: BatchNormAct2d::new(out_c, 1e-5, act)?,
        })
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.conv.weight.shape()[0]
    }
}

impl Module for ConvNormAct {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.bn.forward(&self.conv.forward(x)?)
    }
}
