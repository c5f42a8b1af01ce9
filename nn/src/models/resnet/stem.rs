//! The ResNet stem (`conv1`, `bn1`, `act1`): timm's `stem_type` '' (one 7×7/2 conv), 'deep'
//! and 'deep_tiered' (three 3×3 convs, the first strided); and the stem's pool (`maxpool`):
//! a 3×3/2 max pool, its anti-aliased forms, or ResNet-RS's strided conv.

use super::config::{ResNetCfg, StemType};
use crate::layers::{AaLayer, AaPool, Conv2d, MaxPool2d, Norm2d};
use crate::{Children, Module, Result};
use kiln_engine::{Pool2d, Tensor};

/// `conv1` + `bn1` + ReLU; a deep stem's convs are `conv1.0`, `conv1.3`, `conv1.6` with norms
/// `conv1.1`, `conv1.4` (and `bn1` after the last).
#[derive(Children)]
#[children(group)]
pub(super) struct Stem {
    #[child(name = "conv1")]
    convs: StemConvs,
    #[child(name = "bn1")]
    norm: Norm2d,
}

/// The stem's convs, and a deep stem's norms between them.
#[derive(Children)]
#[children(group)]
enum StemConvs {
    /// The 7×7 conv.
    Single(Conv2d),
    /// The three 3×3 convs.
    Deep(Box<DeepStem>),
}

/// timm's `nn.Sequential` of a deep stem (conv, norm, act, conv, norm, act, conv), without its
/// last norm (the stem's `bn1`), listed in the Sequential's order.
#[derive(Children)]
#[children(group)]
struct DeepStem {
    #[child(name = "0")]
    conv0: Conv2d,
    #[child(name = "1")]
    norm0: Norm2d,
    #[child(name = "3")]
    conv1: Conv2d,
    #[child(name = "4")]
    norm1: Norm2d,
    #[child(name = "6")]
    conv2: Conv2d,
}

impl Stem {
    pub(super) fn new(rc: &ResNetCfg, in_chans: usize) -> Result<Stem> {
        if rc.stem == StemType::Single {
            let conv = Conv2d::new(in_chans, 64, 7, 2, 3, false)?;
            let norm = rc.norm.create(64)?;
            let convs = StemConvs::Single(conv);
            return Ok(Stem { convs, norm });
        }
        let [w0, w1, w2] = rc.stem.deep_widths(rc.stem_width);
        // the convs first: their draws come in this order
        let (conv0, conv1, conv2) = (
            Conv2d::new(in_chans, w0, 3, 2, 1, false)?,
            Conv2d::new(w0, w1, 3, 1, 1, false)?,
            Conv2d::new(w1, w2, 3, 1, 1, false)?,
        );
        let deep = DeepStem {
            conv0,
            conv1,
            conv2,
            norm0: rc.norm.create(w0)?,
            norm1: rc.norm.create(w1)?,
        };
        let norm = rc.norm.create(w2)?;
        let convs = StemConvs::Deep(Box::new(deep));
        Ok(Stem { convs, norm })
    }

    /// The channels the stem puts out.
    pub(super) fn out_channels(&self) -> usize {
        self.last_conv().weight.shape()[0]
    }

    fn last_conv(&self) -> &Conv2d {
        match &self.convs {
            StemConvs::Single(conv) => conv,
            StemConvs::Deep(d) => &d.conv2,
        }
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = match &self.convs {
            StemConvs::Single(_) => x.clone(),
            StemConvs::Deep(d) => {
                let h = d.norm0.forward_conv(&d.conv0, x, None, true)?;
                d.norm1.forward_conv(&d.conv1, &h, None, true)?
            }
        };
        self.norm.forward_conv(self.last_conv(), &h, None, true)
    }
}

/// timm's `maxpool`, whatever it holds.
#[derive(Children)]
pub(super) enum StemPool {
    /// `nn.MaxPool2d(3, 2, 1)` (`max` alone); with `aa_layer` `nn.AvgPool2d(2)` (`aa` alone) or
    /// `Sequential(MaxPool2d(3, 1, 1), BlurPool2d(stride=2))` (both).
    Pool {
        max: Option<MaxPool2d>,
        aa: Option<AaPool>,
    },
    /// `replace_stem_pool`: `Sequential(conv 3×3/2, norm, ReLU)`.
    Conv {
        #[child(name = "0")]
        conv: Conv2d,
        #[child(name = "1")]
        norm: Norm2d,
    },
    /// `replace_stem_pool` with `aa_layer`: `Sequential(conv 3×3/1, aa at stride 2, norm,
    /// ReLU)`.
    ConvAa {
        #[child(name = "0")]
        conv: Conv2d,
        aa: AaPool,
        #[child(name = "2")]
        norm: Norm2d,
    },
}

impl StemPool {
    /// The pool after a stem of `channels`.
    pub(super) fn new(rc: &ResNetCfg, channels: usize) -> Result<StemPool> {
        let max = |stride| Some(MaxPool2d(Pool2d::new(3, stride, 1)));
        if !rc.replace_stem_pool {
            return Ok(match rc.aa {
                None => StemPool::Pool {
                    max: max(2),
                    aa: None,
                },
                Some(AaLayer::Avg) => StemPool::Pool {
                    max: None,
                    aa: Some(AaLayer::Avg.create(channels, 2)),
                },
                Some(AaLayer::Blur) => StemPool::Pool {
                    max: max(1),
                    aa: Some(AaLayer::Blur.create(channels, 2)),
                },
            });
        }
        let stride = if rc.aa.is_some() { 1 } else { 2 };
        let conv = Conv2d::new(channels, channels, 3, stride, 1, false)?;
        let norm = rc.norm.create(channels)?;
        Ok(match rc.aa {
            None => StemPool::Conv { conv, norm },
            Some(aa) => StemPool::ConvAa {
                conv,
                aa: aa.create(channels, 2),
                norm,
            },
        })
    }
}

impl Module for StemPool {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            StemPool::Pool { max, aa } => {
                let mut h = x.clone();
                if let Some(m) = max {
                    h = m.forward(&h)?;
                }
                match aa {
                    Some(aa) => aa.forward(&h),
                    None => Ok(h),
                }
            }
            StemPool::Conv { conv, norm } => norm.forward_conv(conv, x, None, true),
            StemPool::ConvAa { conv, aa, norm } => norm
                .forward(&aa.forward(&conv.forward(x)?)?)?
                .relu()
                .map_err(Into::into),
        }
    }
}
