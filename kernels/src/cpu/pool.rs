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
        // PyTorch's pooling_output_shape, in signed arithmetic: the numerator is negative when
        // the window spans more than the padded input, and then only ceil_mode's rounding up can
        // still leave one window (a 1×1 map under a 2×2, stride-2 ceil-mode pool gives 1×1).
        let span = (self.dilation[a] * (self.kernel[a] - 1) + 1) as i64;
        let (n, pad, s) = (n as i64, self.padding[a] as i64, self.stride[a] as i64);
        let round_up = if self.ceil_mode { s - 1 } else { 0 };
        let mut out = (n + 2 * pad - span + round_up).div_euclid(s) + 1;
        // The last window must start inside the input or its left padding.
        if self.ceil_mode && out > 0 && (out - 1) * s >= n + pad {
            out -= 1;
        }
        out.max(0) as usize
    }
}

/// Runs `f(image_index, image_out, ...)` over the batch in parallel, handing each image its slice.
fn per_image<T: Send>(out: &mut [T], image_len: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    out.par_chunks_mut(image_len.max(1))
        .enumerate()
        .for_each(|(n, o)| f(n, o));
}

/// [`per_image`] for the forwards that also write an argmax per output: `f(image_index, image_y,
/// image_idx)`.
fn per_image_with_idx<T: Send>(
    y: &mut [T],
    idx: &mut [i64],
    image_len: usize,
    f: impl Fn(usize, &mut [T], &mut [i64]) + Sync,
) {
    let mut pairs: Vec<(&mut [T], &mut [i64])> = y
        .chunks_mut(image_len)
        .zip(idx.chunks_mut(image_len))
        .collect();
    pairs
        .par_iter_mut()
        .enumerate()
        .for_each(|(n, (y, idx))| f(n, y, idx));
}

/// Calls `f(ch, i, j)` for every channel and output pixel of one image of `yd`, channels innermost
/// when they are contiguous (NHWC), so that consecutive calls touch neighbouring memory.
fn each_output(yd: Dims4, mut f: impl FnMut(usize, usize, usize)) {
    let [_, c, oh, ow] = yd.size;
    if yd.stride[1] == 1 {
        for i in 0..oh {
            for j in 0..ow {
                (0..c).for_each(|ch| f(ch, i, j));
            }
        }
    } else {
        for ch in 0..c {
            for i in 0..oh {
                (0..ow).for_each(|j| f(ch, i, j));
            }
        }
    }
}

/// The in-image taps of output (i, j)'s max-pooling window, as (h, w) pairs, row by row.
fn taps(
    win: &Window,
    i: usize,
    j: usize,
    h: usize,
    w: usize,
) -> impl Iterator<Item = (usize, usize)> {
    let win = *win;
    let at = move |a: usize, o: usize, k: usize| {
        (o * win.stride[a] + k * win.dilation[a]).checked_sub(win.padding[a])
    };
    let rows = (0..win.kernel[0]).filter_map(move |ki| at(0, i, ki).filter(|&hi| hi < h));
    rows.flat_map(move |hi| {
        (0..win.kernel[1])
            .filter_map(move |kj| at(1, j, kj).filter(|&wj| wj < w).map(|wj| (hi, wj)))
    })
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
    let [_, _, h, w] = xd.size;
    per_image_with_idx(y, idx, yd.stride[0], |n, y, idx| {
        let x = &x[n * xd.stride[0]..];
        if xd.stride[1] == 1 && yd.stride[1] == 1 {
            max_pool_pixels(x, xd, win, y, yd, idx);
            return;
        }
        each_output(yd, |ch, i, j| {
            let (mut best, mut arg) = (T::neg_infinity(), -1i64);
            for (hi, wj) in taps(win, i, j, h, w) {
                let v = x[xd.at(ch, hi, wj)];
                if v > best || v.is_nan() || arg < 0 {
                    best = v;
                    arg = (hi * w + wj) as i64;
                }
            }
            let o = yd.at(ch, i, j);
            y[o] = best;
            idx[o] = arg;
        });
    });
}

/// Max pooling of one NHWC image: per output pixel, each tap's channels are one contiguous run
/// compared lane by lane with the running maxima.
fn max_pool_pixels<T: Real>(
    x: &[T],
    xd: Dims4,
    win: &Window,
    y: &mut [T],
    yd: Dims4,
    idx: &mut [i64],
) {
    let [_, c, oh, ow] = yd.size;
    let [_, _, h, w] = xd.size;
    for i in 0..oh {
        for j in 0..ow {
            let o = yd.at(0, i, j);
            let (best, arg) = (&mut y[o..o + c], &mut idx[o..o + c]);
            best.fill(T::neg_infinity());
            arg.fill(-1);
            for (t, (hi, wj)) in taps(win, i, j, h, w).enumerate() {
                let src = &x[xd.at(0, hi, wj)..][..c];
                let at = (hi * w + wj) as i64;
                if t == 0 {
                    best.copy_from_slice(src);
                    arg.fill(at);
                    continue;
                }
                for ((b, a), &v) in best.iter_mut().zip(arg.iter_mut()).zip(src) {
                    if v > *b || v.is_nan() {
                        *b = v;
                        *a = at;
                    }
                }
            }
        }
    }
}

/// Max pooling backward: dx (zeroed by the caller) += dy at each output's argmax.
pub fn max_pool_bwd<T: Real>(dy: &[T], yd: Dims4, idx: &[i64], dx: &mut [T], xd: Dims4) {
    let w = xd.size[3];
    per_image(dx, xd.stride[0], |n, dx| {
        let (dy, idx) = (&dy[n * yd.stride[0]..], &idx[n * yd.stride[0]..]);
        each_output(yd, |ch, i, j| {
            let o = yd.at(ch, i, j);
            if idx[o] >= 0 {
                let (hi, wj) = (idx[o] as usize / w, idx[o] as usize % w);
                dx[xd.at(ch, hi, wj)] += dy[o];
            }
        });
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
    let [_, _, h, w] = xd.size;
    per_image(y, yd.stride[0], |n, y| {
        let x = &x[n * xd.stride[0]..];
        each_output(yd, |ch, i, j| {
            let ([h0, h1, w0, w1], count) = avg_window(win, i, j, h, w, count_include_pad);
            let mut s = T::zero();
            for hi in h0..h1 {
                for wj in w0..w1 {
                    s += x[xd.at(ch, hi, wj)];
                }
            }
            y[yd.at(ch, i, j)] = s / super::c(count as f64);
        });
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
    per_image(dx, xd.stride[0], |n, dx| {
        let dy = &dy[n * yd.stride[0]..];
        each_output(yd, |ch, i, j| {
            let ([h0, h1, w0, w1], count) = window(i, j);
            let g = dy[yd.at(ch, i, j)] / super::c(count as f64);
            for hi in h0..h1 {
                for wj in w0..w1 {
                    dx[xd.at(ch, hi, wj)] += g;
                }
            }
        });
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
    let [_, _, oh, ow] = yd.size;
    let [_, _, h, w] = xd.size;
    per_image_with_idx(y, idx, yd.stride[0], |n, y, idx| {
        let x = &x[n * xd.stride[0]..];
        each_output(yd, |ch, i, j| {
            let ((h0, h1), (w0, w1)) = (adaptive_range(i, oh, h), adaptive_range(j, ow, w));
            let (mut acc, mut arg) = (if max { T::neg_infinity() } else { T::zero() }, -1i64);
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
        });
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
