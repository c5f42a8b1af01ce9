//! Max, average and adaptive pooling, forward and backward, NCHW or NHWC. Twin of `cuda/pool.cu`.
//!
//! Tensors are described by [`Dims4`] (logical N, C, H, W sizes and strides), so one loop nest
//! serves both memory formats. Batches run in parallel; each image's writes stay in its slice.

use super::Real;
use rayon::prelude::*;

/// Logical NCHW sizes and element strides of a 4-d tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims4 {
    /// Sizes (N, C, H, W).
    pub size: [usize; 4],
    /// Strides of N, C, H, W in elements.
    pub stride: [usize; 4],
}

impl Dims4 {
    #[inline(always)]
    fn at(&self, c: usize, h: usize, w: usize) -> usize {
        c * self.stride[1] + h * self.stride[2] + w * self.stride[3]
    }
}

/// A pooling window: kernel, stride, padding and dilation per spatial axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Kernel (h, w).
    pub kernel: [usize; 2],
    /// Stride (h, w).
    pub stride: [usize; 2],
    /// Padding (h, w).
    pub padding: [usize; 2],
    /// Dilation (h, w).
    pub dilation: [usize; 2],
    /// Round output sizes up (PyTorch's ceil_mode).
    pub ceil_mode: bool,
}

impl Window {
    /// Output size along axis `a` for input size `n`, with PyTorch's ceil_mode rule.
    pub fn out_size(&self, a: usize, n: usize) -> usize {
        let span = self.dilation[a] * (self.kernel[a] - 1) + 1;
        let padded = n + 2 * self.padding[a];
        if padded < span {
            return 0;
        }
        let s = self.stride[a];
        let mut out = if self.ceil_mode {
            (padded - span).div_ceil(s) + 1
        } else {
            (padded - span) / s + 1
        };
        if self.ceil_mode && (out - 1) * s >= n + self.padding[a] {
            out -= 1;
        }
        out
    }
}

/// Runs `f(image_index, image_out, ...)` over the batch in parallel, handing each image its slice.
fn per_image<T: Send>(out: &mut [T], image_len: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    out.par_chunks_mut(image_len.max(1))
        .enumerate()
        .for_each(|(n, o)| f(n, o));
}

/// Max pooling: writes `y` and the argmax (h·W + w within the plane, as PyTorch) of each output.
pub fn max_pool_fwd<T: Real>(
    x: &[T],
    xd: Dims4,
    win: &Window,
    y: &mut [T],
    yd: Dims4,
    idx: &mut [i64],
) {
    let [_, c, oh, ow] = yd.size;
    let [_, _, h, w] = xd.size;
    let img = yd.stride[0];
    let mut pairs: Vec<(&mut [T], &mut [i64])> =
        y.chunks_mut(img).zip(idx.chunks_mut(img)).collect();
    pairs.par_iter_mut().enumerate().for_each(|(n, (y, idx))| {
        let x = &x[n * xd.stride[0]..];
        for ch in 0..c {
            for i in 0..oh {
                for j in 0..ow {
                    let (mut best, mut arg) = (T::neg_infinity(), -1i64);
                    for ki in 0..win.kernel[0] {
                        let hi = (i * win.stride[0] + ki * win.dilation[0]) as isize
                            - win.padding[0] as isize;
                        if hi < 0 || hi >= h as isize {
                            continue;
                        }
                        for kj in 0..win.kernel[1] {
                            let wj = (j * win.stride[1] + kj * win.dilation[1]) as isize
                                - win.padding[1] as isize;
                            if wj < 0 || wj >= w as isize {
                                continue;
                            }
                            let v = x[xd.at(ch, hi as usize, wj as usize)];
                            if v > best || v.is_nan() || arg < 0 {
                                best = v;
                                arg = hi as i64 * w as i64 + wj as i64;
                            }
                        }
                    }
                    let o = yd.at(ch, i, j);
                    y[o] = best;
                    idx[o] = arg;
                }
            }
        }
    });
}

/// Max pooling backward: dx (zeroed by the caller) += dy at each output's argmax.
pub fn max_pool_bwd<T: Real>(dy: &[T], yd: Dims4, idx: &[i64], dx: &mut [T], xd: Dims4) {
    let [_, c, oh, ow] = yd.size;
    let w = xd.size[3];
    per_image(dx, xd.stride[0], |n, dx| {
        let (dy, idx) = (&dy[n * yd.stride[0]..], &idx[n * yd.stride[0]..]);
        for ch in 0..c {
            for i in 0..oh {
                for j in 0..ow {
                    let o = yd.at(ch, i, j);
                    if idx[o] >= 0 {
                        let (hi, wj) = (idx[o] as usize / w, idx[o] as usize % w);
                        dx[xd.at(ch, hi, wj)] += dy[o];
                    }
                }
            }
        }
    });
}

/// The clipped window of output (i, j) and the divisor average pooling uses for it.
fn avg_window(
    win: &Window,
    i: usize,
    j: usize,
    h: usize,
    w: usize,
    count_include_pad: bool,
) -> ([usize; 4], usize) {
    let span = |a: usize, o: usize, n: usize| {
        let start = (o * win.stride[a]) as isize - win.padding[a] as isize;
        let end = (start + win.kernel[a] as isize).min((n + win.padding[a]) as isize);
        let padded = (end - start) as usize;
        (
            start.max(0) as usize,
            end.min(n as isize).max(0) as usize,
            padded,
        )
    };
    let (h0, h1, ph) = span(0, i, h);
    let (w0, w1, pw) = span(1, j, w);
    let count = if count_include_pad {
        ph * pw
    } else {
        (h1.saturating_sub(h0)) * (w1.saturating_sub(w0))
    };
    ([h0, h1, w0, w1], count.max(1))
}

/// Average pooling forward.
pub fn avg_pool_fwd<T: Real>(
    x: &[T],
    xd: Dims4,
    win: &Window,
    count_include_pad: bool,
    y: &mut [T],
    yd: Dims4,
) {
    let [_, c, oh, ow] = yd.size;
    let [_, _, h, w] = xd.size;
    per_image(y, yd.stride[0], |n, y| {
        let x = &x[n * xd.stride[0]..];
        for ch in 0..c {
            for i in 0..oh {
                for j in 0..ow {
                    let ([h0, h1, w0, w1], count) = avg_window(win, i, j, h, w, count_include_pad);
                    let mut s = T::zero();
                    for hi in h0..h1 {
                        for wj in w0..w1 {
                            s += x[xd.at(ch, hi, wj)];
                        }
                    }
                    y[yd.at(ch, i, j)] = s / super::c(count as f64);
                }
            }
        }
    });
}

/// Average pooling backward: dx (zeroed by the caller) += dy / count over each window.
pub fn avg_pool_bwd<T: Real>(
    dy: &[T],
    yd: Dims4,
    win: &Window,
    count_include_pad: bool,
    dx: &mut [T],
    xd: Dims4,
) {
    let [_, _, h, w] = xd.size;
    spread_over_windows(dy, yd, dx, xd, |i, j| {
        avg_window(win, i, j, h, w, count_include_pad)
    });
}

/// Adds `dy / count` of every output to each input of its window (`window(i, j)` gives the
/// clipped window \[h0, h1, w0, w1\] and the divisor): the backward of any average pooling.
fn spread_over_windows<T: Real>(
    dy: &[T],
    yd: Dims4,
    dx: &mut [T],
    xd: Dims4,
    window: impl Fn(usize, usize) -> ([usize; 4], usize) + Sync,
) {
    let [_, c, oh, ow] = yd.size;
    per_image(dx, xd.stride[0], |n, dx| {
        let dy = &dy[n * yd.stride[0]..];
        for ch in 0..c {
            for i in 0..oh {
                for j in 0..ow {
                    let ([h0, h1, w0, w1], count) = window(i, j);
                    let g = dy[yd.at(ch, i, j)] / super::c(count as f64);
                    for hi in h0..h1 {
                        for wj in w0..w1 {
                            dx[xd.at(ch, hi, wj)] += g;
                        }
                    }
                }
            }
        }
    });
}

/// The input range [start, end) that adaptive pooling maps output `o` of `out` onto, from `n`.
pub fn adaptive_range(o: usize, out: usize, n: usize) -> (usize, usize) {
    (o * n / out, ((o + 1) * n).div_ceil(out))
}

/// Adaptive pooling forward (average, or max with argmax in `idx`).
pub fn adaptive_pool_fwd<T: Real>(
    x: &[T],
    xd: Dims4,
    max: bool,
    y: &mut [T],
    yd: Dims4,
    idx: &mut [i64],
) {
    let [_, c, oh, ow] = yd.size;
    let [_, _, h, w] = xd.size;
    let img = yd.stride[0];
    let mut pairs: Vec<(&mut [T], &mut [i64])> =
        y.chunks_mut(img).zip(idx.chunks_mut(img)).collect();
    pairs.par_iter_mut().enumerate().for_each(|(n, (y, idx))| {
        let x = &x[n * xd.stride[0]..];
        for ch in 0..c {
            for i in 0..oh {
                let (h0, h1) = adaptive_range(i, oh, h);
                for j in 0..ow {
                    let (w0, w1) = adaptive_range(j, ow, w);
                    let (mut acc, mut arg) =
                        (if max { T::neg_infinity() } else { T::zero() }, -1i64);
                    for hi in h0..h1 {
                        for wj in w0..w1 {
                            let v = x[xd.at(ch, hi, wj)];
                            if !max {
                                acc += v;
                            } else if v > acc || v.is_nan() || arg < 0 {
                                acc = v;
                                arg = (hi * w + wj) as i64;
                            }
                        }
                    }
                    let o = yd.at(ch, i, j);
                    y[o] = if max {
                        acc
                    } else {
                        acc / super::c(((h1 - h0) * (w1 - w0)).max(1) as f64)
                    };
                    idx[o] = arg;
                }
            }
        }
    });
}

/// Adaptive average pooling backward: dx (zeroed by the caller) += dy / window size.
pub fn adaptive_avg_pool_bwd<T: Real>(dy: &[T], yd: Dims4, dx: &mut [T], xd: Dims4) {
    let ([_, _, oh, ow], [_, _, h, w]) = (yd.size, xd.size);
    spread_over_windows(dy, yd, dx, xd, |i, j| {
        let ((h0, h1), (w0, w1)) = (adaptive_range(i, oh, h), adaptive_range(j, ow, w));
        ([h0, h1, w0, w1], ((h1 - h0) * (w1 - w0)).max(1))
    });
}
