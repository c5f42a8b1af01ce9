//! What both cuDNN paths (the legacy API in [`super::cudnn`], the graph API in
//! [`super::cudnn_graph`]) key their plans by: the direction of a convolution ([`Op`]), and its
//! sizes, layout, types and algorithm mode ([`Key`]).

use crate::conv_shape::ConvShape;
use crate::DType;
use cudarc::cudnn::sys::{cudnnDataType_t, cudnnMathType_t};

/// The direction of a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Op {
    /// y from x and w.
    Forward,
    /// dx from dy and w.
    BackwardData,
    /// dw from x and dy.
    BackwardFilter,
}

/// One convolution's sizes (as cuDNN's ints), layout, types and algorithm mode: the key both paths
/// cache their plans by (with the direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Key {
    pub(super) x: [i32; 4],
    pub(super) y: [i32; 4],
    pub(super) w: [i32; 4],
    pub(super) pad: [i32; 2],
    pub(super) stride: [i32; 2],
    pub(super) dilation: [i32; 2],
    pub(super) groups: i32,
    pub(super) channels_last: bool,
    /// Storage type, compute type and math mode.
    pub(super) ty: cudnnDataType_t,
    pub(super) compute: cudnnDataType_t,
    pub(super) math: cudnnMathType_t,
    pub(super) benchmark: bool,
}

impl Key {
    /// The shapes and storage type, for messages.
    pub(super) fn describe(&self) -> String {
        let layout = if self.channels_last { "nhwc" } else { "nchw" };
        format!(
            "x {:?} w {:?} {layout} {:?} (stride {:?}, pad {:?}, dilation {:?}, groups {})",
            self.x, self.w, self.ty, self.stride, self.pad, self.dilation, self.groups
        )
    }

    /// None when the dtype has no cuDNN convolution, or a tensor is empty or too large for
    /// cuDNN's 32-bit sizes.
    pub(super) fn new(s: &ConvShape, dtype: DType, benchmark: bool) -> Option<Key> {
        use cudnnDataType_t::*;
        use cudnnMathType_t::*;
        // f16/bf16 on tensor cores accumulating in f32; f32 without TF32 (FMA math).
        let (ty, compute, math) = match dtype {
            DType::F32 => (CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT, CUDNN_FMA_MATH),
            DType::F64 => (CUDNN_DATA_DOUBLE, CUDNN_DATA_DOUBLE, CUDNN_DEFAULT_MATH),
            DType::F16 => (CUDNN_DATA_HALF, CUDNN_DATA_FLOAT, CUDNN_TENSOR_OP_MATH),
            DType::BF16 => (CUDNN_DATA_BFLOAT16, CUDNN_DATA_FLOAT, CUDNN_TENSOR_OP_MATH),
            _ => return None,
        };
        let g = &s.geom;
        let int = |v: usize| i32::try_from(v).ok();
        let dims = |d: [usize; 4]| -> Option<[i32; 4]> {
            let count = d.iter().try_fold(1usize, |a, &v| a.checked_mul(v))?;
            if count == 0 || int(count).is_none() {
                return None;
            }
            Some([int(d[0])?, int(d[1])?, int(d[2])?, int(d[3])?])
        };
        let pair = |p: [usize; 2]| Some([int(p[0])?, int(p[1])?]);
        Some(Key {
            x: dims([s.n, s.c, g.hw[0], g.hw[1]])?,
            y: dims([s.n, s.oc, g.out[0], g.out[1]])?,
            w: dims([s.oc, g.c, g.k[0], g.k[1]])?,
            pad: pair(g.pad)?,
            stride: pair(g.stride)?,
            dilation: pair(g.dil)?,
            groups: int(s.groups)?,
            channels_last: s.channels_last,
            ty,
            compute,
            math,
            benchmark,
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::conv_shape::Conv2dParams;

    /// The key of a plain convolution (stride 1, no padding, one group) of x over w.
    pub(in crate::cuda) fn plain_key(
        x: [usize; 4],
        w: [usize; 4],
        channels_last: bool,
        dtype: DType,
    ) -> Key {
        let s = ConvShape::new(&x, &w, &Conv2dParams::default(), channels_last).unwrap();
        Key::new(&s, dtype, false).unwrap()
    }

    /// Calls `f` with the key of every convolution case the descriptor tests cover: plain,
    /// strided with a 7x7 filter, grouped and dilated, depthwise; each NCHW and NHWC, in f32,
    /// f64, f16 and bf16.
    pub(in crate::cuda) fn for_each_conv_case(mut f: impl FnMut(&Key)) {
        let p = |stride, padding, dilation, groups| Conv2dParams {
            stride: [stride; 2],
            padding: [padding; 2],
            dilation: [dilation; 2],
            groups,
        };
        let cases = [
            ([2, 8, 9, 11], [16, 8, 3, 3], p(1, 1, 1, 1)),
            ([2, 3, 15, 13], [8, 3, 7, 7], p(2, 3, 1, 1)),
            ([2, 8, 11, 9], [12, 2, 3, 3], p(1, 2, 2, 4)),
            ([2, 8, 9, 9], [8, 1, 3, 3], p(2, 1, 1, 8)),
        ];
        for (x, w, params) in cases {
            for channels_last in [false, true] {
                for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
                    let s = ConvShape::new(&x, &w, &params, channels_last).unwrap();
                    f(&Key::new(&s, dtype, false).unwrap());
                }
            }
        }
    }
}
