//! timm's MetaFormer `Stem` (a 7×7 stride-4 conv, then the downsampling norm) and
//! `Downsampling` (the norm, then a 3×3 stride-2 conv) between stages.

use crate::layers::{Conv2d, LayerNorm2d};
use crate::{Children, Module, Result};
use kiln_engine::{Conv2dParams, Tensor};

/// A biased `k`×`k` conv of stride `s` and padding `p` with timm's trunc-normal (.02) init.
fn conv(in_c: usize, out_c: usize, k: usize, s: usize, p: usize) -> Result<Conv2d> {
    let params = Conv2dParams {
        stride: [s, s],
        padding: [p, p],
        ..Default::default()
    };
    Conv2d::trunc_normal(in_c, out_c, [k, k], params, true, 0.02)
}

/// The downsampling norm of `dim` channels where the model has one (`LayerNorm2dNoBias`).
fn norm(dim: usize, with_norm: bool) -> Result<Option<LayerNorm2d>> {
    with_norm
        .then(|| Ok(LayerNorm2d::new(dim)?.without_bias()))
        .transpose()
}

/// `stem`: conv (7×7, stride 4, padding 2), then the norm.
#[derive(Children)]
pub(super) struct Stem {
    #[child]
    conv: Conv2d,
    #[child]
    norm: Option<LayerNorm2d>,
}

impl Stem {
    /// `in_chans` to `dim` channels, normed with `with_norm`.
    pub(super) fn new(in_chans: usize, dim: usize, with_norm: bool) -> Result<Stem> {
        Ok(Stem {
            conv: conv(in_chans, dim, 7, 4, 2)?,
            norm: norm(dim, with_norm)?,
        })
    }
}

impl Module for Stem {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.conv.forward(x)?;
        match &self.norm {
            Some(n) => n.forward(&x),
            None => Ok(x),
        }
    }
}

/// A stage's `downsample`: the norm, then conv (3×3, stride 2, padding 1).
#[derive(Children)]
pub(super) struct Downsampling {
    #[child]
    norm: Option<LayerNorm2d>,
    #[child]
    conv: Conv2d,
}

impl Downsampling {
    /// `in_c` to `out_c` channels, normed first with `with_norm`.
    pub(super) fn new(in_c: usize, out_c: usize, with_norm: bool) -> Result<Downsampling> {
        Ok(Downsampling {
            norm: norm(in_c, with_norm)?,
            conv: conv(in_c, out_c, 3, 2, 1)?,
        })
    }
}

impl Module for Downsampling {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.norm {
            Some(n) => self.conv.forward(&n.forward(x)?),
            None => self.conv.forward(x),
        }
    }
}
