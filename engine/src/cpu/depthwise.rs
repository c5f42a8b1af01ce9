//! Depthwise convolutions (groups = in = out channels) on the direct kernels of
//! `kiln_kernels::cpu::depthwise`, in the memory format of the [`ConvShape`].

use super::alloc;
use super::float_map2;
use crate::conv_shape::ConvShape;
use crate::{CpuStorage, Result};
use kiln_kernels::cpu::depthwise::Depthwise;

/// y = depthwise conv(x, w) with w `[C, 1, KH, KW]` (or its OHWI twin).
pub fn forward(x: &CpuStorage, w: &CpuStorage, s: &ConvShape, d: &Depthwise) -> Result<CpuStorage> {
    Ok(float_map2!("conv2d", x, w, |xv, wv: T| {
        let mut y = alloc::zeroed(s.n * s.c * s.geom.p_len());
        if s.channels_last {
            d.forward_nhwc(xv, wv, &mut y)
        } else {
            d.forward_nchw(xv, wv, &mut y)
        }
        y
    }))
}

/// dx of a depthwise conv from dy and w.
pub fn backward_data(
    dy: &CpuStorage,
    w: &CpuStorage,
    s: &ConvShape,
    d: &Depthwise,
) -> Result<CpuStorage> {
    Ok(float_map2!("conv2d_backward", dy, w, |dyv, wv: T| {
        let mut dx = alloc::zeroed(s.n * s.c * s.geom.hw[0] * s.geom.hw[1]);
        if s.channels_last {
            d.backward_data_nhwc(dyv, wv, &mut dx)
        } else {
            d.backward_data_nchw(dyv, wv, &mut dx)
        }
        dx
    }))
}

/// dw `[C, 1, KH, KW]` of a depthwise conv from x and dy, summed in a fixed order.
pub fn backward_filter(
    x: &CpuStorage,
    dy: &CpuStorage,
    s: &ConvShape,
    d: &Depthwise,
) -> Result<CpuStorage> {
    Ok(float_map2!("conv2d_bwd_filter", x, dy, |xv, dyv: T| {
        let mut dw = vec![T::default(); s.c * s.geom.k[0] * s.geom.k[1]];
        if s.channels_last {
            d.backward_filter_nhwc(xv, dyv, &mut dw)
        } else {
            d.backward_filter_nchw(xv, dyv, &mut dw)
        }
        dw
    }))
}
