//! The shortcut projection of a stage's first block, on the pre-activated input (so without a
//! norm): timm's `DownsampleConv` (a strided 1×1 conv) and `DownsampleAvg` (a 2×2 average pool,
//! ceil mode, padding excluded from the count, then a 1×1 conv).

use super::config::ResNetV2Cfg;
use super::conv::Conv;
use crate::layers::AvgPool2d;
use crate::{Children, Module, Result};
use kiln_engine::{Pool2d, Tensor};

/// `pool` (avg_down at stride 2, no tensors) then `conv`.
#[derive(Children)]
pub(super) struct Downsample {
    pool: Option<AvgPool2d>,
    #[child]
    conv: Conv,
}

impl Downsample {
    /// The projection `in_c` → `out_c` at `stride`.
    pub(super) fn new(rc: &ResNetV2Cfg, in_c: usize, out_c: usize, stride: usize) -> Result<Self> {
        if !rc.avg_down {
            let conv = Conv::new(rc, in_c, out_c, 1, stride)?;
            return Ok(Downsample { pool: None, conv });
        }
        let pool = (stride > 1).then(|| {
            let mut p = Pool2d::new(2, stride, 0);
            p.ceil_mode = true;
            p.count_include_pad = false;
            AvgPool2d(p)
        });
        let conv = Conv::new(rc, in_c, out_c, 1, 1)?;
        Ok(Downsample { pool, conv })
    }
}

impl Module for Downsample {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.pool {
            Some(p) => self.conv.forward(&p.forward(x)?),
            None => self.conv.forward(x),
        }
    }
}
