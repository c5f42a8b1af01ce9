//! Depthwise 2-d convolution (channel multiplier 1) computed directly, NCHW and NHWC: forward,
//! input gradient and weight gradient. On CUDA, depthwise shapes run `cuda/conv.cu`'s direct
//! kernels.
//!
//! Each channel convolves its own plane with its own KH×KW filter, so a tap is a scaled copy of
//! a shifted row: no im2col and no GEMM. NCHW works plane by plane along output rows (contiguous
//! for stride 1); NHWC works pixel by pixel along the channels, with the filter transposed to
//! `[tap][C]` so every inner loop is a contiguous multiply-add over channels. Weights are
//! `[C, KH·KW]` in both layouts (OIHW and OHWI coincide when I = 1). The weight gradient sums
//! per-image partials in image order, so it does not depend on the thread count.

use super::im2col::ConvGeom;
use super::Real;
use rayon::prelude::*;
use std::ops::Range;

/// A depthwise convolution over a batch: `geom.c` is the channel count (input = output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depthwise {
    /// Batch size.
    pub n: usize,
    /// Channels, image, kernel, stride, padding, dilation and output size.
    pub geom: ConvGeom,
}

/// `acc[i] += a[i] · b[i]` over the shortest of the three.
#[inline(always)]
fn fma_rows<T: Real>(acc: &mut [T], a: &[T], b: &[T]) {
    for (o, (&x, &y)) in acc.iter_mut().zip(a.iter().zip(b)) {
        *o += x * y;
    }
}

impl Depthwise {
    fn taps(&self) -> usize {
        self.geom.k[0] * self.geom.k[1]
    }

    fn in_plane(&self) -> usize {
        self.geom.hw[0] * self.geom.hw[1]
    }

    fn out_plane(&self) -> usize {
        self.geom.p_len()
    }

    /// Kernel taps along axis `a` whose input coordinate for output `o` lies inside the image.
    fn taps_in(&self, a: usize, o: usize) -> Range<usize> {
        let g = &self.geom;
        let start = o * g.stride[a];
        let lo = g.pad[a].saturating_sub(start).div_ceil(g.dil[a]);
        let hi = (g.hw[a] + g.pad[a])
            .saturating_sub(start)
            .div_ceil(g.dil[a]);
        lo.min(g.k[a])..hi.min(g.k[a])
    }

    /// Input coordinate along axis `a` read by output `o` through tap `t` (inside by
    /// construction of [`Self::taps_in`]).
    #[inline(always)]
    fn src(&self, a: usize, o: usize, t: usize) -> usize {
        let g = &self.geom;
        o * g.stride[a] + t * g.dil[a] - g.pad[a]
    }

    /// Outputs along axis `a` that read an inside input through tap `t`.
    fn outs_for(&self, a: usize, t: usize) -> Range<usize> {
        let g = &self.geom;
        let off = t * g.dil[a];
        let lo = g.pad[a].saturating_sub(off).div_ceil(g.stride[a]);
        let hi = (g.hw[a] + g.pad[a])
            .saturating_sub(off)
            .div_ceil(g.stride[a]);
        lo.min(g.out[a])..hi.min(g.out[a])
    }

    /// The filter `[C, taps]` transposed to `[taps, C]`.
    fn by_tap<T: Real>(&self, w: &[T]) -> Vec<T> {
        let (c, taps) = (self.geom.c, self.taps());
        let mut t = vec![T::zero(); c * taps];
        for (ch, row) in w.chunks_exact(taps).enumerate() {
            for (tap, &v) in row.iter().enumerate() {
                t[tap * c + ch] = v;
            }
        }
        t
    }

    // ---- NCHW --------------------------------------------------------------------------------

    /// y `[N, C, OH, OW]` = conv(x `[N, C, H, W]`, w `[C, KH·KW]`).
    pub fn forward_nchw<T: Real>(&self, x: &[T], w: &[T], y: &mut [T]) {
        let (c, taps, kw) = (self.geom.c, self.taps(), self.geom.k[1]);
        let (ip, op, ow) = (self.in_plane(), self.out_plane(), self.geom.out[1]);
        y.par_chunks_mut(op.max(1))
            .enumerate()
            .for_each(|(plane, yp)| {
                let (xp, wc) = (&x[plane * ip..][..ip], &w[plane % c * taps..][..taps]);
                yp.fill(T::zero());
                for (oh, yr) in yp.chunks_exact_mut(ow.max(1)).enumerate() {
                    for r in self.taps_in(0, oh) {
                        let xr = &xp[self.src(0, oh, r) * self.geom.hw[1]..][..self.geom.hw[1]];
                        for s in 0..kw {
                            self.axpy_row(yr, xr, wc[r * kw + s], s);
                        }
                    }
                }
            });
    }

    /// `yr[ow] += wv · xr[ow·stride + s·dil - pad]` over the outputs whose input is inside.
    #[inline(always)]
    fn axpy_row<T: Real>(&self, yr: &mut [T], xr: &[T], wv: T, s: usize) {
        let outs = self.outs_for(1, s);
        if outs.is_empty() {
            return;
        }
        let first = self.src(1, outs.start, s);
        let sw = self.geom.stride[1];
        if sw == 1 {
            let len = outs.len();
            for (o, &v) in yr[outs].iter_mut().zip(&xr[first..first + len]) {
                *o += wv * v;
            }
        } else {
            for (o, &v) in yr[outs].iter_mut().zip(xr[first..].iter().step_by(sw)) {
                *o += wv * v;
            }
        }
    }

    /// dx `[N, C, H, W]` from dy `[N, C, OH, OW]` and w: each plane scatters its own taps.
    pub fn backward_data_nchw<T: Real>(&self, dy: &[T], w: &[T], dx: &mut [T]) {
        let (c, taps, kw) = (self.geom.c, self.taps(), self.geom.k[1]);
        let (ip, op, [oh_n, ow]) = (self.in_plane(), self.out_plane(), self.geom.out);
        let wd = self.geom.hw[1];
        dx.par_chunks_mut(ip.max(1))
            .enumerate()
            .for_each(|(plane, dxp)| {
                let (dyp, wc) = (&dy[plane * op..][..op], &w[plane % c * taps..][..taps]);
                dxp.fill(T::zero());
                for oh in 0..oh_n {
                    let dyr = &dyp[oh * ow..][..ow];
                    for r in self.taps_in(0, oh) {
                        let dxr = &mut dxp[self.src(0, oh, r) * wd..][..wd];
                        for s in 0..kw {
                            self.scatter_row(dxr, dyr, wc[r * kw + s], s);
                        }
                    }
                }
            });
    }

    /// `dxr[ow·stride + s·dil - pad] += wv · dyr[ow]`, the transpose of [`Self::axpy_row`].
    #[inline(always)]
    fn scatter_row<T: Real>(&self, dxr: &mut [T], dyr: &[T], wv: T, s: usize) {
        let outs = self.outs_for(1, s);
        if outs.is_empty() {
            return;
        }
        let first = self.src(1, outs.start, s);
        let sw = self.geom.stride[1];
        if sw == 1 {
            let len = outs.len();
            for (o, &v) in dxr[first..first + len].iter_mut().zip(&dyr[outs]) {
                *o += wv * v;
            }
        } else {
            for (o, &v) in dxr[first..].iter_mut().step_by(sw).zip(&dyr[outs]) {
                *o += wv * v;
            }
        }
    }

    /// dw `[C, KH·KW]` from x and dy, NCHW: channels in parallel, each summing its images in
    /// order.
    pub fn backward_filter_nchw<T: Real>(&self, x: &[T], dy: &[T], dw: &mut [T]) {
        let (c, taps, kw) = (self.geom.c, self.taps(), self.geom.k[1]);
        let (ip, op, [oh_n, ow]) = (self.in_plane(), self.out_plane(), self.geom.out);
        let wd = self.geom.hw[1];
        dw.par_chunks_mut(taps.max(1))
            .enumerate()
            .for_each(|(ch, dwc)| {
                dwc.fill(T::zero());
                for img in 0..self.n {
                    let plane = img * c + ch;
                    let (xp, dyp) = (&x[plane * ip..][..ip], &dy[plane * op..][..op]);
                    for oh in 0..oh_n {
                        let dyr = &dyp[oh * ow..][..ow];
                        for r in self.taps_in(0, oh) {
                            let xr = &xp[self.src(0, oh, r) * wd..][..wd];
                            for s in 0..kw {
                                dwc[r * kw + s] += self.dot_row(xr, dyr, s);
                            }
                        }
                    }
                }
            });
    }

    /// Σ_ow dyr[ow] · xr[ow·stride + s·dil - pad] over the outputs whose input is inside.
    #[inline(always)]
    fn dot_row<T: Real>(&self, xr: &[T], dyr: &[T], s: usize) -> T {
        let outs = self.outs_for(1, s);
        if outs.is_empty() {
            return T::zero();
        }
        let first = self.src(1, outs.start, s);
        let sw = self.geom.stride[1];
        let xs = xr[first..].iter().step_by(sw);
        dyr[outs].iter().zip(xs).map(|(&a, &b)| a * b).sum()
    }

    // ---- NHWC --------------------------------------------------------------------------------

    /// y `[N, OH, OW, C]` = conv(x `[N, H, W, C]`, w `[C, KH·KW]`), one output row per task.
    pub fn forward_nhwc<T: Real>(&self, x: &[T], w: &[T], y: &mut [T]) {
        let wt = self.by_tap(w);
        let (c, kw, [h, wd], [oh_n, ow]) =
            (self.geom.c, self.geom.k[1], self.geom.hw, self.geom.out);
        y.par_chunks_mut((ow * c).max(1))
            .enumerate()
            .for_each(|(row, yr)| {
                let (img, oh) = (row / oh_n, row % oh_n);
                yr.fill(T::zero());
                for r in self.taps_in(0, oh) {
                    let xr = &x[(img * h + self.src(0, oh, r)) * wd * c..][..wd * c];
                    for (o, yp) in yr.chunks_exact_mut(c).enumerate() {
                        for s in self.taps_in(1, o) {
                            let xp = &xr[self.src(1, o, s) * c..][..c];
                            fma_rows(yp, xp, &wt[(r * kw + s) * c..][..c]);
                        }
                    }
                }
            });
    }

    /// dx `[N, H, W, C]` from dy `[N, OH, OW, C]` and w: each input row gathers the outputs that
    /// read it (no two tasks write the same element).
    pub fn backward_data_nhwc<T: Real>(&self, dy: &[T], w: &[T], dx: &mut [T]) {
        let wt = self.by_tap(w);
        let g = &self.geom;
        let (c, [kh, kw], [h, wd], [oh_n, ow]) = (g.c, g.k, g.hw, g.out);
        dx.par_chunks_mut((wd * c).max(1))
            .enumerate()
            .for_each(|(row, dxr)| {
                let (img, ih) = (row / h, row % h);
                dxr.fill(T::zero());
                for r in 0..kh {
                    let Some(oh) = self.out_for(0, ih, r) else {
                        continue;
                    };
                    let dyr = &dy[(img * oh_n + oh) * ow * c..][..ow * c];
                    for (iw, dxp) in dxr.chunks_exact_mut(c).enumerate() {
                        for s in 0..kw {
                            if let Some(o) = self.out_for(1, iw, s) {
                                fma_rows(dxp, &dyr[o * c..][..c], &wt[(r * kw + s) * c..][..c]);
                            }
                        }
                    }
                }
            });
    }

    /// The output along axis `a` that reads input `i` through tap `t`, if any.
    #[inline(always)]
    fn out_for(&self, a: usize, i: usize, t: usize) -> Option<usize> {
        let g = &self.geom;
        let v = (i + g.pad[a]).checked_sub(t * g.dil[a])?;
        let o = v / g.stride[a];
        (v % g.stride[a] == 0 && o < g.out[a]).then_some(o)
    }

    /// dw `[C, KH·KW]` from x and dy, NHWC: one `[tap, C]` partial per image, summed in image
    /// order and transposed.
    pub fn backward_filter_nhwc<T: Real>(&self, x: &[T], dy: &[T], dw: &mut [T]) {
        let g = &self.geom;
        let (c, kw, [h, wd], [oh_n, ow]) = (g.c, g.k[1], g.hw, g.out);
        let len = self.taps() * c;
        let partials: Vec<Vec<T>> = (0..self.n)
            .into_par_iter()
            .map(|img| {
                let mut part = vec![T::zero(); len];
                for oh in 0..oh_n {
                    let dyr = &dy[(img * oh_n + oh) * ow * c..][..ow * c];
                    for r in self.taps_in(0, oh) {
                        let xr = &x[(img * h + self.src(0, oh, r)) * wd * c..][..wd * c];
                        for (o, dyp) in dyr.chunks_exact(c).enumerate() {
                            for s in self.taps_in(1, o) {
                                let xp = &xr[self.src(1, o, s) * c..][..c];
                                fma_rows(&mut part[(r * kw + s) * c..][..c], dyp, xp);
                            }
                        }
                    }
                }
                part
            })
            .collect();
        let mut total = vec![T::zero(); len];
        for part in &partials {
            for (t, &p) in total.iter_mut().zip(part) {
                *t += p;
            }
        }
        for (tap, row) in total.chunks_exact(c.max(1)).enumerate() {
            for (ch, &v) in row.iter().enumerate() {
                dw[ch * self.taps() + tap] = v;
            }
        }
    }
}
