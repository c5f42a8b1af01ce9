//! The shortcut projection of a ResNet stage's first block: timm's `downsample_conv` and
//! `downsample_avg`, with their kernel-size rules.

use super::ResNetCfg;
use crate::layers::{AvgPool2d, Conv2d, Norm2d};
use crate::{Children, Module, Result};
use kiln_engine::{Pool2d, Tensor};

/// `downsample.0` conv + `downsample.1` norm, or with `avg_down` `downsample.0` avg-pool (an
/// identity at stride 1 that still takes index 0), `downsample.1` 1×1 conv, `downsample.2` norm.
#[derive(Children)]
#[children(group)]
pub(super) enum Downsample {
    /// timm's `downsample_conv`.
    Conv {
        #[child(name = "0")]
        conv: Conv2d,
        #[child(name = "1")]
        norm: Norm2d,
    },
    /// timm's `downsample_avg`.
    Avg {
        pool: Option<AvgPool2d>,
        #[child(name = "1")]
        conv: Conv2d,
        #[child(name = "2")]
        norm: Norm2d,
    },
}

/// timm's `get_padding(kernel_size, stride)` at dilation 1.
fn padding(kernel_size: usize, stride: usize) -> usize {
    ((stride - 1) + (kernel_size - 1)) / 2
}

impl Downsample {
    /// The projection `in_c` → `out_c` at `stride`. timm's `downsample_conv` uses
    /// `rc.down_kernel_size` only where it strides (1×1 at stride 1); `downsample_avg` pools 2×2
    /// (ceil mode, padding excluded from the count) and projects with a 1×1 conv.
    pub(super) fn new(rc: &ResNetCfg, in_c: usize, out_c: usize, stride: usize) -> Result<Self> {
        if !rc.avg_down {
            let k = if stride == 1 { 1 } else { rc.down_kernel_size };
            let conv = Conv2d::new(in_c, out_c, k, stride, padding(k, stride), false)?;
            let norm = rc.norm.create(out_c)?;
            return Ok(Downsample::Conv { conv, norm });
        }
        let pool = (stride > 1).then(|| {
            let mut p = Pool2d::new(2, stride, 0);
            p.ceil_mode = true;
            p.count_include_pad = false;
            AvgPool2d(p)
        });
        let conv = Conv2d::new(in_c, out_c, 1, 1, 0, false)?;
        let norm = rc.norm.create(out_c)?;
        Ok(Downsample::Avg { pool, conv, norm })
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Downsample::Conv { conv, norm } => norm.forward_conv(conv, x, None, false),
            Downsample::Avg { pool, conv, norm } => {
                let x = match pool {
                    Some(p) => p.forward(x)?,
                    None => x.clone(),
                };
                norm.forward_conv(conv, &x, None, false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::padding;

    #[test]
    fn padding_is_timms_get_padding() {
        // timm: ((stride - 1) + dilation * (kernel_size - 1)) // 2
        for (k, s, p) in [
            (1, 1, 0),
            (1, 2, 0),
            (3, 2, 1),
            (3, 1, 1),
            (5, 2, 2),
            (7, 2, 3),
        ] {
            assert_eq!(padding(k, s), p, "kernel {k} stride {s}");
        }
    }
}
