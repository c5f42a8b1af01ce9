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
    let k = g.k_len();
    for y in 0..g.out[0] {
        for xo in 0..g.out[1] {
            let dst = &mut col[(y * g.out[1] + xo) * k..][..k];
            for (i, dst) in dst.chunks_mut(g.k[1] * g.c).enumerate() {
                match g.src(0, y, i) {
                    Some(sy) => kernel_row_segments(g, ctot, c0, sy, xo, |j, src, len| match src {
                        Some(src) => dst[j * g.c..][..len].copy_from_slice(&x[src..][..len]),
                        None => dst[j * g.c..][..len].fill(T::zero()),
                    }),
                    None => dst.fill(T::zero()),
                }
            }
        }
    }
}

/// The adjoint of [`im2col_nhwc`]: dx[.., c0 + c] += col[(oh,ow), (i,j,c)].
pub fn col2im_nhwc<T: Real>(col: &[T], ctot: usize, c0: usize, g: &ConvGeom, dx: &mut [T]) {
    let k = g.k_len();
    for y in 0..g.out[0] {
        for xo in 0..g.out[1] {
            let src = &col[(y * g.out[1] + xo) * k..][..k];
            for (i, src) in src.chunks(g.k[1] * g.c).enumerate() {
                let Some(sy) = g.src(0, y, i) else { continue };
                kernel_row_segments(g, ctot, c0, sy, xo, |j, dst, len| {
                    if let Some(dst) = dst {
                        let dst = &mut dx[dst..][..len];
                        for (d, &v) in dst.iter_mut().zip(&src[j * g.c..][..len]) {
                            *d += v;
                        }
                    }
                });
            }
        }
    }
}

/// Splits kernel row `i` (input row `sy`) of output column `xo` into segments and calls
/// `f(first_tap, input_offset, len)`: `len` column-matrix elements from tap `first_tap` on, which
/// come from `input_offset` on in the image, or are padding (`None`). Without dilation and groups,
/// the taps inside the image are one contiguous run of the input (one copy instead of one per tap).
#[inline(always)]
fn kernel_row_segments(
    g: &ConvGeom,
    ctot: usize,
    c0: usize,
    sy: usize,
    xo: usize,
    mut f: impl FnMut(usize, Option<usize>, usize),
) {
    let [_, w] = g.hw;
    let kw = g.k[1];
    if g.dil[1] != 1 || ctot != g.c {
        for j in 0..kw {
            f(j, g.src(1, xo, j).map(|sx| (sy * w + sx) * ctot + c0), g.c);
        }
        return;
    }
    // Taps j read input column xo·s − p + j: inside the image for j in [first, last).
    let left = (xo * g.stride[1]) as isize - g.pad[1] as isize;
    let first = (-left).clamp(0, kw as isize) as usize;
    let last = (w as isize - left).clamp(first as isize, kw as isize) as usize;
    if first > 0 {
        f(0, None, first * g.c);
    }
    if last > first {
        let sx = (left + first as isize) as usize;
        f(first, Some((sy * w + sx) * ctot + c0), (last - first) * g.c);
    }
    if kw > last {
        f(last, None, (kw - last) * g.c);
    }
}
