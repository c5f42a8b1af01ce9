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

/// `*d += wv · s` (fused) over the pairs of `dst` and `src`, as far as the shorter goes.
#[inline(always)]
fn madd<'a, T: Real + 'a>(
    dst: impl Iterator<Item = &'a mut T>,
    src: impl Iterator<Item = &'a T>,
    wv: T,
) {
    for (d, &v) in dst.zip(src) {
        *d = wv.mul_add(v, *d);
    }
}

/// `acc[i] += a[i] · b[i]` (fused) over the shortest of the three.
#[inline(always)]
fn fma_rows<T: Real>(acc: &mut [T], a: &[T], b: &[T]) {
    for (o, (&x, &y)) in acc.iter_mut().zip(a.iter().zip(b)) {
        *o = x.mul_add(y, *o);
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

    /// Calls `f(oh, ih, tap, s)` for every output row `oh` of a plane, the input row `ih` each
    /// tap row inside the image reads for it, and each tap (`tap = r·KW + s`) of that row.
    #[inline(always)]
    fn plane_taps(&self, mut f: impl FnMut(usize, usize, usize, usize)) {
        let kw = self.geom.k[1];
        for oh in 0..self.geom.out[0] {
            for r in self.taps_in(0, oh) {
                let ih = self.src(0, oh, r);
                for s in 0..kw {
                    f(oh, ih, r * kw + s, s);
                }
            }
        }
    }

    /// For tap column `s`: the outputs along the width that read an inside input, the first
    /// input they read and the stride between inputs; none when no output does.
    #[inline(always)]
    fn row_span(&self, s: usize) -> Option<(Range<usize>, usize, usize)> {
        let outs = self.outs_for(1, s);
        let first = (!outs.is_empty()).then(|| self.src(1, outs.start, s))?;
        Some((outs, first, self.geom.stride[1]))
    }

    /// y `[N, C, OH, OW]` = conv(x `[N, C, H, W]`, w `[C, KH·KW]`).
    pub fn forward_nchw<T: Real>(&self, x: &[T], w: &[T], y: &mut [T]) {
        self.nchw_pass(x, w, y, true)
    }

    /// dx `[N, C, H, W]` from dy `[N, C, OH, OW]` and w: each plane scatters its own taps.
    pub fn backward_data_nchw<T: Real>(&self, dy: &[T], w: &[T], dx: &mut [T]) {
        self.nchw_pass(dy, w, dx, false)
    }

    /// The NCHW forward (`gather`: each output row adds its taps' input rows) or the input
    /// gradient (its transpose: each output row of `src` scatters to the input rows it read),
    /// plane by plane, each zeroed first.
    fn nchw_pass<T: Real>(&self, src: &[T], w: &[T], dst: &mut [T], gather: bool) {
        let (c, taps) = (self.geom.c, self.taps());
        let (ip, op, ow, wd) = (
            self.in_plane(),
            self.out_plane(),
            self.geom.out[1],
            self.geom.hw[1],
        );
        let (sp, dp) = if gather { (ip, op) } else { (op, ip) };
        dst.par_chunks_mut(dp.max(1))
            .enumerate()
            .for_each(|(plane, dstp)| {
                let (srcp, wc) = (&src[plane * sp..][..sp], &w[plane % c * taps..][..taps]);
                dstp.fill(T::zero());
                self.plane_taps(|oh, ih, tap, s| {
                    let Some((outs, first, sw)) = self.row_span(s) else {
                        return;
                    };
                    let wv = wc[tap];
                    if gather {
                        // yr[ow] += wv · xr[ow·stride + s·dil - pad]
                        let (yr, xr) = (&mut dstp[oh * ow..][outs], &srcp[ih * wd + first..]);
                        if sw == 1 {
                            madd(yr.iter_mut(), xr.iter(), wv);
                        } else {
                            madd(yr.iter_mut(), xr.iter().step_by(sw), wv);
                        }
                    } else {
                        // dxr[ow·stride + s·dil - pad] += wv · dyr[ow]
                        let (dxr, dyr) = (&mut dstp[ih * wd + first..], &srcp[oh * ow..][outs]);
                        if sw == 1 {
                            madd(dxr.iter_mut(), dyr.iter(), wv);
                        } else {
                            madd(dxr.iter_mut().step_by(sw), dyr.iter(), wv);
                        }
                    }
                });
            });
    }

    /// dw `[C, KH·KW]` from x and dy, NCHW: channels in parallel, each summing its images in
    /// order.
    pub fn backward_filter_nchw<T: Real>(&self, x: &[T], dy: &[T], dw: &mut [T]) {
        let (c, taps) = (self.geom.c, self.taps());
        let (ip, op, ow) = (self.in_plane(), self.out_plane(), self.geom.out[1]);
        let wd = self.geom.hw[1];
        dw.par_chunks_mut(taps.max(1))
            .enumerate()
            .for_each(|(ch, dwc)| {
                dwc.fill(T::zero());
                for img in 0..self.n {
                    let plane = img * c + ch;
                    let (xp, dyp) = (&x[plane * ip..][..ip], &dy[plane * op..][..op]);
                    self.plane_taps(|oh, ih, tap, s| {
                        let (xr, dyr) = (&xp[ih * wd..][..wd], &dyp[oh * ow..][..ow]);
                        dwc[tap] += self.dot_row(xr, dyr, s);
                    });
                }
            });
    }

    /// Σ_ow dyr[ow] · xr[ow·stride + s·dil - pad] over the outputs whose input is inside.
    #[inline(always)]
    fn dot_row<T: Real>(&self, xr: &[T], dyr: &[T], s: usize) -> T {
        let Some((outs, first, sw)) = self.row_span(s) else {
            return T::zero();
        };
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
        // Each span of taps × channels adds the images up in order: parallel, yet the same sums
        // whatever the thread count.
        let mut total = vec![T::zero(); len];
        const SPAN: usize = 1024;
        total
            .par_chunks_mut(SPAN)
            .enumerate()
            .for_each(|(i, span)| {
                for part in &partials {
                    for (t, &p) in span.iter_mut().zip(&part[i * SPAN..]) {
                        *t += p;
                    }
                }
            });
        for (tap, row) in total.chunks_exact(c.max(1)).enumerate() {
            for (ch, &v) in row.iter().enumerate() {
                dw[ch * self.taps() + tap] = v;
            }
        }
    }
}
