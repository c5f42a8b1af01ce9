//! ResNet-V2's conv (timm's `conv_layer`): the weight-standardized `StdConv2d` (BiT) or
//! `create_conv2d`'s plain conv.

use super::config::ResNetV2Cfg;
use crate::layers::{Conv2d, StdConv2d};
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// A bias-free conv, weight-standardized or plain; `weight` named as timm's.
#[derive(Children)]
pub(super) enum Conv {
    /// timm's `StdConv2d`.
    Std(StdConv2d),
    /// timm's `create_conv2d` (symmetric padding).
    Plain(Conv2d),
}

impl Conv {
    /// A `k`×`k` conv `in_c` → `out_c` at `stride` as `rc` builds its convs.
    pub(super) fn new(
        rc: &ResNetV2Cfg,
        in_c: usize,
        out_c: usize,
        k: usize,
        stride: usize,
    ) -> Result<Conv> {
        Ok(match rc.std_conv_eps {
            Some(eps) => Conv::Std(StdConv2d::new(in_c, out_c, k, stride, eps)?),
            None => {
                let pad = ((stride - 1) + (k - 1)) / 2;
                Conv::Plain(Conv2d::new(in_c, out_c, k, stride, pad, false)?)
            }
        })
    }

    /// Output channels.
    pub(super) fn out_channels(&self) -> usize {
        match self {
            Conv::Std(c) => c.out_channels(),
            Conv::Plain(c) => c.weight.shape()[0],
        }
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Conv::Std(c) => c.forward(x),
            Conv::Plain(c) => c.forward(x),
        }
    }
}
