//! timm's MetaFormer `SepConv`: MobileNetV2's inverted separable conv (ConvFormer's token mixer).

use crate::layers::{Conv2d, StarRelu};
use crate::{Children, Module, Result};
use kiln_engine::{Conv2dParams, Tensor};

/// pwconv2(dwconv(StarReLU(pwconv1(x)))): a bias-free 1×1 conv to twice the width, StarReLU
/// (`act1`), a bias-free depthwise 7×7 conv, a bias-free 1×1 conv back.
#[derive(Children)]
pub(super) struct SepConv {
    #[child]
    pwconv1: Conv2d,
    #[child]
    act1: StarRelu,
    #[child]
    dwconv: Conv2d,
    #[child]
    pwconv2: Conv2d,
}

impl SepConv {
    /// The mixer of `dim` channels (expansion 2, kernel 7) with timm's trunc-normal (.02) init.
    pub(super) fn new(dim: usize) -> Result<SepConv> {
        let mid = 2 * dim;
        let conv = |i: usize, o: usize, k: usize, params: Conv2dParams| {
            Conv2d::trunc_normal(i, o, [k, k], params, false, 0.02)
        };
        let depthwise = Conv2dParams {
            padding: [3, 3],
            groups: mid,
            ..Default::default()
        };
        Ok(SepConv {
            pwconv1: conv(dim, mid, 1, Conv2dParams::default())?,
            act1: StarRelu::new()?,
            dwconv: conv(mid, mid, 7, depthwise)?,
            pwconv2: conv(mid, dim, 1, Conv2dParams::default())?,
        })
    }
}

impl Module for SepConv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.act1.forward(&self.pwconv1.forward(x)?)?;
        self.pwconv2.forward(&self.dwconv.forward(&h)?)
    }
}
