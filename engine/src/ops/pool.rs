//! Max, average and adaptive 2-d pooling with autograd, in the memory format of the input.

use super::record_node;
use crate::cpu::pool::PoolKind;
use crate::trace::{self, Op};
use crate::{Error, Layout, MemoryFormat, Result, Storage, Tensor};
use kiln_kernels::cpu::pool::{Dims4, Window};

/// Window settings of `max_pool2d` / `avg_pool2d` (PyTorch's arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2d {
    /// Kernel (h, w).
    pub kernel: [usize; 2],
    /// Stride (h, w).
    pub stride: [usize; 2],
    /// Implicit padding (h, w): -inf for max, zeros for average.
    pub padding: [usize; 2],
    /// Dilation (max pooling only).
    pub dilation: [usize; 2],
    /// Round output sizes up.
    pub ceil_mode: bool,
    /// Count padding in the average's divisor.
    pub count_include_pad: bool,
}

impl Pool2d {
    /// A square window of `k` with stride `s` and padding `p`.
    pub fn new(k: usize, s: usize, p: usize) -> Pool2d {
        Pool2d {
            kernel: [k, k],
            stride: [s, s],
            padding: [p, p],
            dilation: [1, 1],
            ceil_mode: false,
            count_include_pad: true,
        }
    }

    fn window(&self) -> Window {
        Window {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            ceil_mode: self.ceil_mode,
        }
    }
}

fn dims(t: &Layout) -> Dims4 {
    let s = t.strides();
    Dims4 {
        size: [t.shape()[0], t.shape()[1], t.shape()[2], t.shape()[3]],
        stride: [s[0], s[1], s[2], s[3]],
    }
}

impl Tensor {
    /// `F.max_pool2d`.
    pub fn max_pool2d(&self, p: Pool2d) -> Result<Tensor> {
        self.check_window("max_pool2d", &p)?;
        let w = p.window();
        let out = [
            w.out_size(0, self.shape()[2]),
            w.out_size(1, self.shape()[3]),
        ];
        self.pool(PoolKind::Max(w), out)
    }

    /// `F.avg_pool2d`.
    pub fn avg_pool2d(&self, p: Pool2d) -> Result<Tensor> {
        self.check_window("avg_pool2d", &p)?;
        let w = p.window();
        let out = [
            w.out_size(0, self.shape()[2]),
            w.out_size(1, self.shape()[3]),
        ];
        self.pool(PoolKind::Avg(w, p.count_include_pad), out)
    }

    /// `F.adaptive_avg_pool2d` to `out` (h, w).
    pub fn adaptive_avg_pool2d(&self, out: [usize; 2]) -> Result<Tensor> {
        self.pool(PoolKind::AdaptiveAvg, out)
    }

    /// `F.adaptive_max_pool2d` to `out` (h, w).
    pub fn adaptive_max_pool2d(&self, out: [usize; 2]) -> Result<Tensor> {
        self.pool(PoolKind::AdaptiveMax, out)
    }

    fn check_window(&self, op: &'static str, p: &Pool2d) -> Result<()> {
        if self.rank() != 4 {
            return Err(Error::BadShape {
                op,
                shape: self.shape().to_vec(),
                msg: "needs [N, C, H, W]".into(),
            });
        }
        if p.kernel.contains(&0)
            || p.stride.contains(&0)
            || p.dilation.contains(&0)
            || (0..2).any(|a| 2 * p.padding[a] > p.kernel[a])
        {
            return Err(Error::InvalidArgument {
                op,
                msg: format!("invalid window {p:?} (padding must be at most half the kernel)"),
            });
        }
        Ok(())
    }

    fn pool(&self, kind: PoolKind, out: [usize; 2]) -> Result<Tensor> {
        trace::traced(
            || Op::Pool { kind, out },
            [self],
            || {
                if self.rank() != 4 || out.contains(&0) {
                    return Err(Error::BadShape {
                        op: "pool2d",
                        shape: self.shape().to_vec(),
                        msg: format!(
                            "needs [N, C, H, W] and a non-empty output, got output {out:?}"
                        ),
                    });
                }
                Tensor::in_kernel_precision(&[self], |t| {
                    let channels_last = t[0].layout().prefers_channels_last();
                    let format = if channels_last {
                        MemoryFormat::ChannelsLast
                    } else {
                        MemoryFormat::Contiguous
                    };
                    let x = t[0].packed(format)?;
                    let [n, c, ..] = [x.shape()[0], x.shape()[1]];
                    let out_layout = Layout::with_format(&[n, c, out[0], out[1]], format);
                    let (xd, yd) = (dims(x.layout()), dims(&out_layout));
                    let (y, idx) = x.storage().pool_fwd(xd, yd, kind)?;
                    let in_layout = x.layout().clone();
                    let dtype = x.dtype();
                    let node = record_node("pool2d", &[&x], move |g| {
                        let g = g.to_dtype(dtype)?.packed(format)?;
                        let dx = Storage::pool_bwd(&g.storage(), yd, xd, kind, &idx)?;
                        Ok(vec![Some(Tensor::plain(dx, in_layout.clone()))])
                    });
                    Ok(Tensor::result(y, out_layout, node))
                })
            },
        )
    }
}
