//! The shortcut projection of a ResNet stage's first block: timm's `downsample_conv` and
//! `downsample_avg`, with their kernel-size rules.

use super::ResNetCfg;
use crate::layers::{AvgPool2d, Conv2d, Norm2d};
use crate::module::{join, NamedTensor};
use crate::{Module, Result};
use kiln_engine::{MemoryFormat, Pool2d, Tensor};

/// `downsample.0` conv + `downsample.1` norm, or with `avg_down` `downsample.0` avg-pool (an
/// identity at stride 1 that still takes index 0), `downsample.1` 1×1 conv, `downsample.2` norm.
pub(super) struct Downsample {
    pool: Option<AvgPool2d>,
    avg_down: bool,
    pub(super) conv: Conv2d,
    pub(super) norm: Norm2d,
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
        let pool = (rc.avg_down && stride > 1).then(|| {
            let mut p = Pool2d::new(2, stride, 0);
            p.ceil_mode = true;
            p.count_include_pad = false;
            AvgPool2d(p)
        });
        let conv = if rc.avg_down {
            Conv2d::new(in_c, out_c, 1, 1, 0, false)?
        } else {
            let k = if stride == 1 { 1 } else { rc.down_kernel_size };
            Conv2d::new(in_c, out_c, k, stride, padding(k, stride), false)?
        };
        Ok(Downsample {
            pool,
            avg_down: rc.avg_down,
            conv,
            norm: rc.norm.create(out_c)?,
        })
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = match &self.pool {
            Some(p) => p.forward(x)?,
            None => x.clone(),
        };
        self.norm.forward_conv(&self.conv, &x, None, false)
    }

    pub(super) fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        let first = usize::from(self.avg_down);
        self.conv.collect(&join(prefix, &first.to_string()), out);
        self.norm
            .collect(&join(prefix, &(first + 1).to_string()), out);
    }

    pub(super) fn map_tensors(&mut self, prefix: &str, f: &mut crate::TensorMap<'_>) -> Result<()> {
        let first = usize::from(self.avg_down);
        self.conv
            .map_tensors(&join(prefix, &first.to_string()), f)?;
        self.norm
            .map_tensors(&join(prefix, &(first + 1).to_string()), f)
    }

    pub(super) fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        self.conv.set_memory_format(format)
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
