//! Stride-1, undilated, ungrouped NHWC convolutions as implicit GEMMs: no im2col.
//!
//! Flatten a zero-padded NHWC batch to rows of C channels. For output pixel q (numbered on the
//! padded grid, Wp per image row), the KW taps of kernel row i are the KW·C contiguous values that
//! start at row q + i·Wp. So the column matrix of kernel row i is the padded input itself, read in
//! place with a row stride of C (rows overlap), and each kernel row is one GEMM with inner dimension
//! KW·C. Outputs are computed on the padded grid and the Wp − OW extra pixels of each row dropped,
//! so the method only pays off when OW is not much smaller than Wp.
//!
//! Work is cut into blocks of whole output rows of one image; each block's grid-shaped output
//! stays in cache across the KH products and is compacted into the result.

use super::elementwise::add_assign;
use super::matmul::{gemm, MatRef};
use super::scratch::with_scratch;
use crate::conv_shape::ConvShape;
use kiln_kernels::cpu::{sum_in_ranges, Real};
use rayon::prelude::*;
use std::ops::Range;

/// A stride-1 convolution of an NHWC batch `[n, h, w, c]` into `[n, oh, ow, oc]`, weights OHWI.
#[derive(Debug, Clone, Copy)]
pub struct Taps {
    n: usize,
    c: usize,
    oc: usize,
    k: [usize; 2],
    pad: [usize; 2],
    hw: [usize; 2],
    out: [usize; 2],
}

impl Taps {
    /// The forward convolution of `s`, when it is one this module handles well.
    pub fn forward(s: &ConvShape) -> Option<Taps> {
        let g = &s.geom;
        let fits = s.channels_last
            && s.groups == 1
            && g.stride == [1, 1]
            && g.dil == [1, 1]
            && g.k != [1, 1]
            && g.pad[0] < g.k[0]
            && g.pad[1] < g.k[1]
            && wasted_fraction_pays(
                g.p_len(),
                (g.hw[0] + 2 * g.pad[0]) * (g.hw[1] + 2 * g.pad[1]),
                s.oc,
            );
        fits.then_some(Taps {
            n: s.n,
            c: g.c,
            oc: s.oc,
            k: g.k,
            pad: g.pad,
            hw: g.hw,
            out: g.out,
        })
    }

    /// The input gradient of this convolution as a forward one: dy convolved with the flipped,
    /// channel-transposed weights (see [`flip_weights`]) at padding K − 1 − P.
    pub fn backward_data(&self) -> Taps {
        Taps {
            n: self.n,
            c: self.oc,
            oc: self.c,
            k: self.k,
            pad: [self.k[0] - 1 - self.pad[0], self.k[1] - 1 - self.pad[1]],
            hw: self.out,
            out: self.hw,
        }
    }

    fn padded_height(&self) -> usize {
        self.hw[0] + 2 * self.pad[0]
    }

    fn padded_width(&self) -> usize {
        self.hw[1] + 2 * self.pad[1]
    }

    fn weight_len(&self) -> usize {
        self.oc * self.k[0] * self.k[1] * self.c
    }

    /// Whether grid row `gr` (a padded image row) holds outputs.
    fn has_outputs(&self, gr: usize) -> bool {
        gr % self.padded_height() < self.out[0]
    }

    /// Output rows, counted over the whole batch, that come before grid row `gr`.
    fn outputs_before(&self, gr: usize) -> usize {
        let hp = self.padded_height();
        gr / hp * self.out[0] + (gr % hp).min(self.out[0])
    }

    /// Ranges of grid rows that together cover every output. A block's grid-shaped output stays
    /// near 1 MiB of f32, holds at least 256 pixels (so one GEMM amortizes packing the weights)
    /// and the batch still splits into a few blocks per thread.
    fn blocks(&self) -> Vec<Range<usize>> {
        let (hp, wp) = (self.padded_height(), self.padded_width());
        let end = (self.n - 1) * hp + self.out[0];
        let cache_rows = (1 << 18) / (self.oc * wp).max(1);
        let balance_rows = end / (4 * rayon::current_num_threads());
        let rows = cache_rows.min(balance_rows).max(256usize.div_ceil(wp));
        (0..end)
            .step_by(rows)
            .map(|g0| g0..(g0 + rows).min(end))
            .collect()
    }

    /// The zero-padded input, plus KW − 1 zero pixels after the last image for the reads of the
    /// last grid row's dropped pixels.
    fn pad_input<T: Real>(&self, x: &[T]) -> Vec<T> {
        let [h, w] = self.hw;
        let [ph, pw] = self.pad;
        let wp = self.padded_width();
        let c = self.c;
        let tail = (self.k[1] - 1) * c;
        let mut xp = Vec::with_capacity(self.n * self.padded_height() * wp * c + tail);
        for image in x.chunks(h * w * c).take(self.n) {
            xp.resize(xp.len() + ph * wp * c, T::zero());
            for row in image.chunks(w * c) {
                xp.resize(xp.len() + pw * c, T::zero());
                xp.extend_from_slice(row);
                xp.resize(xp.len() + pw * c, T::zero());
            }
            xp.resize(xp.len() + ph * wp * c, T::zero());
        }
        xp.resize(xp.len() + tail, T::zero());
        xp
    }

    /// Kernel row `i`'s column matrix for the grid rows from `gr`: the padded input in place.
    fn columns<'a, T>(&self, xp: &'a [T], gr: usize, i: usize) -> MatRef<'a, T> {
        MatRef {
            data: xp,
            offset: (gr + i) * self.padded_width() * self.c,
            rs: self.c,
            cs: 1,
        }
    }

    /// y = conv(x, w): x `[n, h, w, c]`, w OHWI, y `[n, oh, ow, oc]`.
    pub fn run_forward<T: Real>(&self, x: &[T], w: &[T], y: &mut [T]) {
        let xp = self.pad_input(x);
        let (wp, oc, [kh, kw]) = (self.padded_width(), self.oc, self.k);
        let row_len = self.out[1] * oc;
        let mut parts = Vec::new();
        let mut rest = y;
        for rows in self.blocks() {
            let outputs = self.outputs_before(rows.end) - self.outputs_before(rows.start);
            let (part, tail) = rest.split_at_mut(outputs * row_len);
            parts.push((rows, part));
            rest = tail;
        }
        parts.into_par_iter().for_each(|(rows, y)| {
            let m = rows.len() * wp;
            with_scratch(m * oc, |grid: &mut [T]| {
                for i in 0..kh {
                    let taps = MatRef {
                        data: w,
                        offset: i * kw * self.c,
                        rs: 1,
                        cs: kh * kw * self.c,
                    };
                    let cols = self.columns(&xp, rows.start, i);
                    gemm([m, oc, kw * self.c], grid, oc, cols, taps, i > 0, false);
                }
                let valid = rows
                    .zip(grid.chunks(wp * oc))
                    .filter(|&(gr, _)| self.has_outputs(gr));
                for (dst, (_, src)) in y.chunks_mut(row_len).zip(valid) {
                    dst.copy_from_slice(&src[..row_len]);
                }
            });
        });
    }

    /// dw = the weight gradient (OHWI) from x `[n, h, w, c]` and dy `[n, oh, ow, oc]`.
    pub fn run_backward_filter<T: Real>(&self, x: &[T], dy: &[T]) -> Vec<T> {
        let xp = self.pad_input(x);
        let (wp, oc, [kh, kw]) = (self.padded_width(), self.oc, self.k);
        let row_len = self.out[1] * oc;
        let blocks = self.blocks();
        sum_in_ranges(
            blocks.len(),
            || vec![T::zero(); self.weight_len()],
            |dw, b| {
                let rows = blocks[b].clone();
                let m = rows.len() * wp;
                let first = self.outputs_before(rows.start) * row_len;
                let mut dy = dy[first..].chunks(row_len);
                with_scratch(m * oc, |grid: &mut [T]| {
                    for (gr, dst) in rows.clone().zip(grid.chunks_mut(wp * oc)) {
                        match self.has_outputs(gr).then(|| dy.next()).flatten() {
                            Some(src) => {
                                dst[..row_len].copy_from_slice(src);
                                dst[row_len..].fill(T::zero());
                            }
                            None => dst.fill(T::zero()),
                        }
                    }
                    let dyt = MatRef {
                        data: &*grid,
                        offset: 0,
                        rs: 1,
                        cs: oc,
                    };
                    for i in 0..kh {
                        let cols = self.columns(&xp, rows.start, i);
                        let dst = &mut dw[i * kw * self.c..];
                        let dims = [oc, kw * self.c, m];
                        gemm(dims, dst, kh * kw * self.c, dyt, cols, true, false);
                    }
                });
            },
            |a, b| add_assign(a, &b),
        )
    }
}

/// Whether computing `grid` pixels for `outputs` is cheaper than im2col. The waste costs GEMM
/// time in proportion to the extra pixels; im2col's copy costs about as much as a GEMM with 32
/// output channels, so it matters less the more output channels there are. Measured on 2 cores at
/// batch 32: 64ch 56² and 128ch 28² forward 1.8× and 1.3× faster, 64ch 16² even, 128ch 8² and
/// 256ch 14² slower.
fn wasted_fraction_pays(outputs: usize, grid: usize, out_channels: usize) -> bool {
    (grid - outputs) * out_channels <= 32 * outputs
}

/// OHWI weights `w[o, i, j, c]` → `w'[c, KH−1−i, KW−1−j, o]`, the weights of the input gradient
/// as a forward convolution (see [`Taps::backward_data`]).
pub fn flip_weights<T: Real>(w: &[T], t: &Taps) -> Vec<T> {
    let ([kh, kw], c, oc) = (t.k, t.c, t.oc);
    let mut out = vec![T::zero(); w.len()];
    for o in 0..oc {
        for i in 0..kh {
            for j in 0..kw {
                let src = &w[((o * kh + i) * kw + j) * c..][..c];
                let tap = (kh - 1 - i) * kw + (kw - 1 - j);
                for (ci, &v) in src.iter().enumerate() {
                    out[(ci * kh * kw + tap) * oc + o] = v;
                }
            }
        }
    }
    out
}
