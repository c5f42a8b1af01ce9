//! The ResNet stem (`conv1`, `bn1`, `act1`): timm's `stem_type` '' (one 7×7/2 conv), 'deep'
//! and 'deep_tiered' (three 3×3 convs, the first strided).

use super::config::{ResNetCfg, StemType};
use crate::layers::{Conv2d, Norm2d};
use crate::{Children, Result};
use kiln_engine::Tensor;

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
