//! The shape of one 2-d convolution call: its parameters ([`Conv2dParams`]) and the sizes and
//! per-group geometry derived from the input and weight shapes ([`ConvShape`]). Shared by the
//! tensor layer, the backend boundary and every convolution kernel family of both backends.

use crate::{Error, Layout, Result};
use kiln_kernels::cpu::depthwise::Depthwise;
use kiln_kernels::cpu::im2col::ConvGeom;

/// Stride, padding, dilation and groups of a 2-d convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Stride (h, w).
    pub stride: [usize; 2],
    /// Zero padding (h, w).
    pub padding: [usize; 2],
    /// Dilation (h, w).
    pub dilation: [usize; 2],
    /// Channel groups (in_channels for depthwise).
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// Everything one conv call needs to know about its shapes.
#[derive(Debug, Clone, Copy)]
pub struct ConvShape {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Output channels.
    pub oc: usize,
    /// Groups.
    pub groups: usize,
    /// Per-group geometry.
    pub geom: ConvGeom,
    /// NHWC memory order for input and output.
    pub channels_last: bool,
}

impl ConvShape {
    /// Validates shapes x [N, C, H, W] and w [OC, C/groups, KH, KW] and derives the output size.
    pub fn new(
        x: &[usize],
        w: &[usize],
        p: &Conv2dParams,
        channels_last: bool,
    ) -> Result<ConvShape> {
        let mismatch = || Error::ShapeMismatch {
            op: "conv2d",
            lhs: x.to_vec(),
            rhs: w.to_vec(),
        };
        let (&[n, c, h, wd], &[oc, cg, kh, kw]) = (x, w) else {
            return Err(mismatch());
        };
        let g = p.groups.max(1);
        if c % g != 0 || oc % g != 0 || cg != c / g {
            return Err(mismatch());
        }
        let out = |a: usize, size: usize, k: usize| {
            let span = p.dilation[a] * (k - 1) + 1;
            (size + 2 * p.padding[a])
                .checked_sub(span)
                .map(|v| v / p.stride[a] + 1)
        };
        let (Some(oh), Some(ow)) = (out(0, h, kh), out(1, wd, kw)) else {
            return Err(Error::BadShape {
                op: "conv2d",
                shape: x.to_vec(),
                msg: format!("input smaller than the {kh}x{kw} kernel"),
            });
        };
        let geom = ConvGeom {
            c: cg,
            hw: [h, wd],
            k: [kh, kw],
            stride: p.stride,
            pad: p.padding,
            dil: p.dilation,
            out: [oh, ow],
        };
        Ok(ConvShape {
            n,
            c,
            oc,
            groups: g,
            geom,
            channels_last,
        })
    }

    /// Output shape [N, OC, OH, OW].
    pub fn out_shape(&self) -> [usize; 4] {
        [self.n, self.oc, self.geom.out[0], self.geom.out[1]]
    }

    /// Layout of a tensor of `shape` in this conv's memory format.
    pub fn layout(&self, shape: &[usize]) -> Layout {
        let format = if self.channels_last {
            crate::MemoryFormat::ChannelsLast
        } else {
            crate::MemoryFormat::Contiguous
        };
        Layout::with_format(shape, format)
    }

    /// The direct depthwise kernels' view of this shape, when every channel is its own group.
    pub fn depthwise(&self) -> Option<Depthwise> {
        (self.groups == self.c && self.oc == self.c).then_some(Depthwise {
            n: self.n,
            geom: ConvGeom {
                c: self.c,
                ..self.geom
            },
        })
    }
}
