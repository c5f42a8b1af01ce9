//! im2col / col2im for convolution as GEMM, per image and group, NCHW and NHWC.
//!
//! NCHW lays the column matrix out as `[C·KH·KW, OH·OW]` (the weight multiplies from the left);
//! NHWC as `[OH·OW, KH·KW·C]` (the weight, in OHWI order, multiplies from the right), so each
//! row copy is a contiguous run of channels.

use super::Real;

/// The geometry of one convolution group on one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    /// Input channels of the group.
    pub c: usize,
    /// Input height and width.
    pub hw: [usize; 2],
    /// Kernel height and width.
    pub k: [usize; 2],
    /// Stride (h, w).
    pub stride: [usize; 2],
    /// Padding (h, w).
    pub pad: [usize; 2],
    /// Dilation (h, w).
    pub dil: [usize; 2],
    /// Output height and width.
    pub out: [usize; 2],
}

impl ConvGeom {
    /// Rows of the NCHW column matrix (C·KH·KW), the GEMM's inner dimension.
    pub fn k_len(&self) -> usize {
        self.c * self.k[0] * self.k[1]
    }

    /// Output pixels (OH·OW).
    pub fn p_len(&self) -> usize {
        self.out[0] * self.out[1]
    }

    /// The input coordinate along axis `a` read by output `o` and kernel tap `t`, if inside.
    #[inline(always)]
    fn src(&self, a: usize, o: usize, t: usize) -> Option<usize> {
        let v = (o * self.stride[a] + t * self.dil[a]) as isize - self.pad[a] as isize;
        (v >= 0 && (v as usize) < self.hw[a]).then_some(v as usize)
    }
}

/// col[(c,i,j), (oh,ow)] = x[c, oh·s+i·d-p, ow·s+j·d-p] (0 outside); `x` is the group's C×H×W planes.
pub fn im2col_nchw<T: Real>(x: &[T], g: &ConvGeom, col: &mut [T]) {
    let [h, w] = g.hw;
    let [oh, ow] = g.out;
    let mut row = 0;
    for ch in 0..g.c {
        let plane = &x[ch * h * w..][..h * w];
        for i in 0..g.k[0] {
            for j in 0..g.k[1] {
                let dst = &mut col[row * oh * ow..][..oh * ow];
                for y in 0..oh {
                    let dst = &mut dst[y * ow..][..ow];
                    match g.src(0, y, i) {
                        None => dst.fill(T::zero()),
                        Some(sy) => {
                            let src = &plane[sy * w..][..w];
                            for (xo, d) in dst.iter_mut().enumerate() {
                                *d = g.src(1, xo, j).map_or(T::zero(), |sx| src[sx]);
                            }
                        }
                    }
                }
                row += 1;
            }
        }
    }
}

/// The adjoint of [`im2col_nchw`]: dx[c, ...] += col[(c,i,j), (oh,ow)].
pub fn col2im_nchw<T: Real>(col: &[T], g: &ConvGeom, dx: &mut [T]) {
    let [h, w] = g.hw;
    let [oh, ow] = g.out;
    let mut row = 0;
    for ch in 0..g.c {
        let plane = &mut dx[ch * h * w..][..h * w];
        for i in 0..g.k[0] {
            for j in 0..g.k[1] {
                let src = &col[row * oh * ow..][..oh * ow];
                for y in 0..oh {
                    if let Some(sy) = g.src(0, y, i) {
                        let dst = &mut plane[sy * w..][..w];
                        for (xo, &v) in src[y * ow..][..ow].iter().enumerate() {
                            if let Some(sx) = g.src(1, xo, j) {
                                dst[sx] += v;
                            }
                        }
                    }
                }
                row += 1;
            }
        }
    }
}

/// col[(oh,ow), (i,j,c)] = x[oh·s+i·d-p, ow·s+j·d-p, c0 + c]; `x` is one H×W×`ctot` image.
pub fn im2col_nhwc<T: Real>(x: &[T], ctot: usize, c0: usize, g: &ConvGeom, col: &mut [T]) {
    let [_, w] = g.hw;
    let k = g.k_len();
    for y in 0..g.out[0] {
        for xo in 0..g.out[1] {
            let dst = &mut col[(y * g.out[1] + xo) * k..][..k];
            for i in 0..g.k[0] {
                for j in 0..g.k[1] {
                    let d = &mut dst[(i * g.k[1] + j) * g.c..][..g.c];
                    match (g.src(0, y, i), g.src(1, xo, j)) {
                        (Some(sy), Some(sx)) => {
                            d.copy_from_slice(&x[(sy * w + sx) * ctot + c0..][..g.c])
                        }
                        _ => d.fill(T::zero()),
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col_nhwc`]: dx[.., c0 + c] += col[(oh,ow), (i,j,c)].
pub fn col2im_nhwc<T: Real>(col: &[T], ctot: usize, c0: usize, g: &ConvGeom, dx: &mut [T]) {
    let [_, w] = g.hw;
    let k = g.k_len();
    for y in 0..g.out[0] {
        for xo in 0..g.out[1] {
            let src = &col[(y * g.out[1] + xo) * k..][..k];
            for i in 0..g.k[0] {
                for j in 0..g.k[1] {
                    if let (Some(sy), Some(sx)) = (g.src(0, y, i), g.src(1, xo, j)) {
                        let d = &mut dx[(sy * w + sx) * ctot + c0..][..g.c];
                        for (d, &v) in d.iter_mut().zip(&src[(i * g.k[1] + j) * g.c..][..g.c]) {
                            *d += v;
                        }
                    }
                }
            }
        }
    }
}
