//! timm's `ResNestBottleneck` (`resnest.py`): the bottleneck whose 3×3 conv is split attention
//! ([`SplitAttn`]), with "avd": a stride-2 stage's first block keeps its convs at stride 1 and
//! average-pools (3×3, stride 2, padding 1) before (`avd_first`) or after the split conv.

use super::downsample::Downsample;
use super::ResNetCfg;
use crate::layers::{AvgPool2d, Conv2d, DropBlock, Norm2d, SplitAttn};
use crate::{Children, Module, Result};
use kiln_engine::{Pool2d, Tensor};

/// `conv1`/`bn1` (1×1), `conv2` split attention, `conv3`/`bn3` (1×1 to 4·planes), the
/// shortcut; `avd_first`/`avd_last` hold the pool where the block strides.
#[derive(Children)]
pub(super) struct ResNestBottleneck {
    #[child]
    conv1: Conv2d,
    #[child]
    bn1: Norm2d,
    avd_first: Option<AvgPool2d>,
    #[child]
    pub(super) conv2: SplitAttn,
    avd_last: Option<AvgPool2d>,
    #[child]
    pub(super) conv3: Conv2d,
    #[child]
    pub(super) bn3: Norm2d,
    #[child]
    downsample: Option<Downsample>,
    pub(super) drop_path: f64,
    #[training]
    training: bool,
}

impl ResNestBottleneck {
    /// The block `in_c` → `4 · planes` at `stride` with `radix` splits; with `avd` a strided
    /// block pools instead of striding its conv (timm's `is_first` is never set by the builder).
    pub(super) fn new(
        rc: &ResNetCfg,
        (radix, avd, avd_first): (usize, bool, bool),
        (in_c, planes, stride): (usize, usize, usize),
        downsample: Option<Downsample>,
        drop_path: f64,
    ) -> Result<ResNestBottleneck> {
        // timm: group_width = int(planes * (base_width / 64.)) * cardinality
        let width = planes * rc.base_width / 64 * rc.cardinality;
        let pooled = avd && stride > 1;
        let pool = || AvgPool2d(Pool2d::new(3, stride, 1));
        let conv_stride = if pooled { 1 } else { stride };
        Ok(ResNestBottleneck {
            conv1: Conv2d::new(in_c, width, 1, 1, 0, false)?,
            bn1: rc.norm.create(width)?,
            avd_first: (pooled && avd_first).then(pool),
            conv2: SplitAttn::new(width, width, 3, conv_stride, rc.cardinality, radix, rc.norm)?,
            avd_last: (pooled && !avd_first).then(pool),
            conv3: Conv2d::new(width, planes * 4, 1, 1, 0, false)?,
            bn3: rc.norm.create(planes * 4)?,
            downsample,
            drop_path,
            training: true,
        })
    }

    /// Places (or with `None` removes) the block's DropBlock: timm passes it to the split
    /// attention, after `bn0`.
    pub(super) fn set_drop_block(&mut self, drop_block: Option<DropBlock>) {
        self.conv2.drop = drop_block;
    }
}

impl Module for ResNestBottleneck {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut out = self.bn1.forward_conv(&self.conv1, x, None, true)?;
        if let Some(p) = &self.avd_first {
            out = p.forward(&out)?;
        }
        out = self.conv2.forward(&out)?;
        if let Some(p) = &self.avd_last {
            out = p.forward(&out)?;
        }
        // timm's ResNestBottleneck applies its drop path to the block's input, which only the
        // shortcut's projection reads (`x = self.drop_path(x)` before `self.downsample(x)`): a
        // block without a projection is never dropped, and the residual branch never is.
        let shortcut = match &self.downsample {
            Some(d) if self.training && self.drop_path > 0.0 => {
                d.forward(&x.drop_path(self.drop_path, true)?)?
            }
            Some(d) => d.forward(x)?,
            None => x.clone(),
        };
        self.bn3
            .forward_conv(&self.conv3, &out, Some(&shortcut), true)
    }

    crate::module::not_prunable!();
}
