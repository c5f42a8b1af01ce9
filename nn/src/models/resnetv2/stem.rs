//! timm's `create_resnetv2_stem` (pre-activation, so no norm after the last conv): one 7×7
//! stride-2 conv (`conv`) or three 3×3 convs (`conv1`–`conv3`, the first at stride 2, norm-acts
//! after the first two), then a 3×3 stride-2 max pool, padded 1 or, BiT's `fixed` stems, after a
//! zero pad of 1.

use super::config::ResNetV2Cfg;
use super::conv::Conv;
use super::norm::NormAct;
use crate::layers::MaxPool2d;
use crate::{Children, Module, Result};
use kiln_engine::{Pool2d, Tensor};

/// The stem's convs and its pool (no tensors).
#[derive(Children)]
#[children(group)]
pub(super) struct Stem {
    /// The 7×7 conv; none in a deep stem.
    #[child]
    conv: Option<Conv>,
    /// A deep stem's first two convs, each with the norm-act after it.
    #[child(each = "conv{}", pair = "norm{}", start = 1)]
    deep: Vec<(Conv, NormAct)>,
    /// A deep stem's last conv.
    #[child]
    conv3: Option<Conv>,
    /// BiT's zero pad before an unpadded pool.
    fixed: bool,
}

impl Stem {
    /// The stem of `rc` from `in_c` channels to `out_c`.
    pub(super) fn new(rc: &ResNetV2Cfg, in_c: usize, out_c: usize) -> Result<Stem> {
        let fixed = rc.stem_fixed;
        let Some([w1, w2]) = rc.stem_type.deep_widths(out_c) else {
            let conv = Some(Conv::new(rc, in_c, out_c, 7, 2)?);
            let (deep, conv3) = (Vec::new(), None);
            return Ok(Stem {
                conv,
                deep,
                conv3,
                fixed,
            });
        };
        let deep = vec![
            (Conv::new(rc, in_c, w1, 3, 2)?, NormAct::new(rc.norm, w1)?),
            (Conv::new(rc, w1, w2, 3, 1)?, NormAct::new(rc.norm, w2)?),
        ];
        let conv3 = Some(Conv::new(rc, w2, out_c, 3, 1)?);
        Ok(Stem {
            conv: None,
            deep,
            conv3,
            fixed,
        })
    }

    /// The feature tap (the last conv's output, timm's `stem.conv` or `stem.conv3`) and the
    /// pooled output.
    pub(super) fn forward_split(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut h = x.clone();
        for (conv, norm) in &self.deep {
            h = norm.forward(&conv.forward(&h)?)?;
        }
        let last = self.conv.as_ref().or(self.conv3.as_ref());
        let tap = match last {
            Some(conv) => conv.forward(&h)?,
            None => h,
        };
        let out = match self.fixed {
            true => MaxPool2d(Pool2d::new(3, 2, 0)).forward(&tap.pad2d([1; 4])?)?,
            false => MaxPool2d(Pool2d::new(3, 2, 1)).forward(&tap)?,
        };
        Ok((tap, out))
    }

    /// The tap's module name (timm's `feature_info`).
    pub(super) fn tap_module(&self) -> &'static str {
        match self.conv {
            Some(_) => "stem.conv",
            None => "stem.conv3",
        }
    }
}
