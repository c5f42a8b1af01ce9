//! NHWC convolutions over images so small that many taps fall in the zero padding: one GEMM per
//! output pixel and kernel row, over the whole batch and that row's in-image taps only.
//!
//! ResNet's last stages on 28–64-pixel inputs run 3×3 kernels over 4×4, 2×2 and 1×1 images.
//! im2col multiplies every tap of the padded window, 9 per output pixel where 4 (at 2×2) or 1 (at
//! 1×1) read the image. Here output pixel q's kernel row i reads the contiguous NHWC run
//! `x[n, ih, iw0..iw1, :]` of every image n (row stride H·W·C) against the matching run of the
//! OHWI weights, so each product's inner dimension is (iw1 − iw0)·C and no padding is multiplied.
//! The products are few (OH·OW·KH, with at most 16 output pixels), and each spans the whole batch.

use super::alloc;
use super::matmul::{gemm, mat};
use crate::conv_shape::ConvShape;
use kiln_kernels::cpu::Real;

/// Most output pixels per image this path takes: it issues a few products per output pixel.
const MAX_PIXELS: usize = 16;

/// Fewest images this path takes. Each product's rows are the batch, and below 64 rows they run
/// too far under the GEMM's peak to win: at batch 32 the forward of ResNet's 2×2 and 4×4 stages
/// took up to 1.5× im2col's time (for 44–69 % of its multiply-adds), the training step broke even.
/// Smaller batches go to `direct_conv`, whose register tiles run along the batch where AVX-512
/// is present. At batch 128 this path beats those tiles in the gradients (4×4 stage 18 against
/// 21 ms, 2×2 stage 12.5 against 17 ms per convolution's input and weight gradient).
const MIN_BATCH: usize = 64;

/// A convolution of an NHWC batch `[n, h, w, c]` into `[n, oh, ow, oc]` with OHWI weights,
/// ungrouped and undilated, over images small enough that this path skips many padded taps.
#[derive(Debug, Clone, Copy)]
pub struct SmallImageConv {
    n: usize,
    c: usize,
    oc: usize,
    k: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
    hw: [usize; 2],
    out: [usize; 2],
}

/// The in-image taps of one kernel row at one output pixel.
#[derive(Debug, Clone, Copy)]
struct RowTaps {
    /// Output pixel, numbered within the image.
    q: usize,
    /// Kernel row.
    i: usize,
    /// First in-image kernel column, and how many there are.
    j0: usize,
    len: usize,
    /// The input pixel kernel tap (i, j0) reads, numbered within the image.
    p: usize,
}

/// The kernel taps `t` in `0..k` that output position `o` reaches inside `0..size` along one axis,
/// as (first tap, count, input position of the first tap).
fn in_image(o: usize, k: usize, stride: usize, pad: usize, size: usize) -> (usize, usize, usize) {
    let start = o * stride;
    let t0 = pad.saturating_sub(start);
    let t1 = k.min((size + pad).saturating_sub(start));
    let len = t1.saturating_sub(t0);
    (t0, len, (start + t0).saturating_sub(pad))
}

impl SmallImageConv {
    /// The convolution of `s`, when it is NHWC, ungrouped and undilated, has at least
    /// `MIN_BATCH` images of at most `MAX_PIXELS` output pixels, and at most three quarters
    /// of its padded taps read the image (so at least a quarter of im2col's multiply-adds are
    /// skipped).
    pub fn new(s: &ConvShape) -> Option<SmallImageConv> {
        let g = &s.geom;
        let fits = s.channels_last
            && s.groups == 1
            && g.dil == [1, 1]
            && g.p_len() <= MAX_PIXELS
            && s.n >= MIN_BATCH
            && g.p_len() * s.oc * g.c > 0;
        if !fits {
            return None;
        }
        let conv = SmallImageConv {
            n: s.n,
            c: g.c,
            oc: s.oc,
            k: g.k,
            stride: g.stride,
            pad: g.pad,
            hw: g.hw,
            out: g.out,
        };
        let read: usize = conv.row_taps().iter().map(|r| r.len).sum();
        let all = conv.out[0] * conv.out[1] * conv.k[0] * conv.k[1];
        (4 * read <= 3 * all).then_some(conv)
    }

    /// Every output pixel's kernel rows that reach the image, with their in-image taps.
    fn row_taps(&self) -> Vec<RowTaps> {
        let mut rows = Vec::new();
        for oh in 0..self.out[0] {
            let (i0, ilen, ih0) = in_image(oh, self.k[0], self.stride[0], self.pad[0], self.hw[0]);
            for ow in 0..self.out[1] {
                let (j0, len, iw0) =
                    in_image(ow, self.k[1], self.stride[1], self.pad[1], self.hw[1]);
                if len == 0 {
                    continue;
                }
                rows.extend((0..ilen).map(|d| RowTaps {
                    q: oh * self.out[1] + ow,
                    i: i0 + d,
                    j0,
                    len,
                    p: (ih0 + d) * self.hw[1] + iw0,
                }));
            }
        }
        rows
    }

    fn in_image_len(&self) -> usize {
        self.hw[0] * self.hw[1] * self.c
    }

    fn out_image_len(&self) -> usize {
        self.out[0] * self.out[1] * self.oc
    }

    /// Elements in one output channel's OHWI weights.
    fn taps_len(&self) -> usize {
        self.k[0] * self.k[1] * self.c
    }

    /// Where row `r`'s first tap sits in one output channel's OHWI weights.
    fn weight_offset(&self, r: &RowTaps) -> usize {
        (r.i * self.k[1] + r.j0) * self.c
    }

    /// y `[n, oh, ow, oc]` = conv(x, w): x `[n, h, w, c]`, w OHWI.
    pub fn forward<T: Real>(&self, x: &[T], w: &[T]) -> Vec<T> {
        let mut y = alloc::filled(self.n * self.out_image_len(), T::zero());
        for r in self.row_taps() {
            gemm(
                [self.n, self.oc, r.len * self.c],
                &mut y[r.q * self.oc..],
                self.out_image_len(),
                mat(x, r.p * self.c, self.in_image_len(), 1),
                mat(w, self.weight_offset(&r), 1, self.taps_len()),
                true,
                true,
            );
        }
        y
    }

    /// dx `[n, h, w, c]` from dy `[n, oh, ow, oc]` and w (OHWI).
    pub fn backward_data<T: Real>(&self, dy: &[T], w: &[T]) -> Vec<T> {
        let mut dx = alloc::filled(self.n * self.in_image_len(), T::zero());
        for r in self.row_taps() {
            gemm(
                [self.n, r.len * self.c, self.oc],
                &mut dx[r.p * self.c..],
                self.in_image_len(),
                mat(dy, r.q * self.oc, self.out_image_len(), 1),
                mat(w, self.weight_offset(&r), self.taps_len(), 1),
                true,
                true,
            );
        }
        dx
    }

    /// dw (OHWI) from x `[n, h, w, c]` and dy `[n, oh, ow, oc]`.
    pub fn backward_filter<T: Real>(&self, x: &[T], dy: &[T]) -> Vec<T> {
        let mut dw = alloc::filled(self.oc * self.taps_len(), T::zero());
        for r in self.row_taps() {
            gemm(
                [self.oc, r.len * self.c, self.n],
                &mut dw[self.weight_offset(&r)..],
                self.taps_len(),
                mat(dy, r.q * self.oc, 1, self.out_image_len()),
                mat(x, r.p * self.c, self.in_image_len(), 1),
                true,
                true,
            );
        }
        dw
    }
}
