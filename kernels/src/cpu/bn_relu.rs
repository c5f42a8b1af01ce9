//! BatchNorm over (N, H, W) per channel, fused with an optional residual add and ReLU, forward and
//! backward, for NCHW and NHWC. Twin of `cuda/bn_relu.cu`.
//!
//! Fusing saves two full passes over the activation per layer: y = relu(x·scale + shift + residual)
//! is written once, and the backward recovers the ReLU mask from y instead of a stored mask.
//!
//! Every pass walks the tensor in runs that share a layout: in NCHW a run is one channel of one
//! image (the per-channel parameters are constants), in NHWC a run is one pixel (the parameters are
//! slices as long as the run). Inner loops are plain slice arithmetic the compiler vectorizes;
//! sums accumulate in `T` over short blocks and in f64 across them.

use super::{c, f64_of, merge_in_order, Real, PAR_GRAIN};
use rayon::prelude::*;
use std::array::from_fn;

/// The shape of a BN input: `n` images, `c` channels, `hw` pixels each, in NCHW or NHWC order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelDims {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Pixels per image and channel (H·W).
    pub hw: usize,
    /// NHWC memory order when true, NCHW otherwise.
    pub channels_last: bool,
}

impl ChannelDims {
    /// Elements per channel (N·H·W), the count BN's statistics run over.
    pub fn per_channel(&self) -> usize {
        self.n * self.hw
    }

    /// Elements of one run: a channel plane (NCHW) or a pixel's channels (NHWC).
    fn run(&self) -> usize {
        if self.channels_last { self.c } else { self.hw }.max(1)
    }

    /// Runs handed to one parallel task.
    fn runs_per_task(&self) -> usize {
        (PAR_GRAIN / self.run()).max(1)
    }

    /// Pixels per run of [`map_channels`]: in NHWC, runs of about `MAP_RUN` elements keep its
    /// inner loop long (one pixel of 64 channels is only four AVX-512 vectors).
    fn pixels_per_map_run(&self) -> usize {
        if self.channels_last {
            (MAP_RUN / self.c.max(1)).max(1)
        } else {
            1
        }
    }

    /// Where channel `ch` first occurs.
    fn first_of(&self, ch: usize) -> usize {
        if self.channels_last {
            ch
        } else {
            ch * self.hw
        }
    }
}

/// Lanes of the partial sums (one AVX-512 register of f32).
const LANES: usize = 16;
/// Elements a `T` partial sum covers before it is added to the f64 total.
const BLOCK: usize = 1024;
/// Elements per NHWC run of [`map_channels`] (whole pixels).
const MAP_RUN: usize = 1024;
/// NHWC runs summed in `T` before the per-channel f64 totals take them.
const RUNS_PER_FLUSH: usize = 64;

/// Batch mean and biased variance per channel.
pub fn bn_stats<T: Real>(x: &[T], d: ChannelDims) -> (Vec<f64>, Vec<f64>) {
    let m = d.per_channel().max(1) as f64;
    // Summing x − (a sample of its channel) keeps E[x²] − E[x]² from cancelling when |mean| ≫ std.
    let pivot: Vec<T> = (0..d.c)
        .map(|ch| x.get(d.first_of(ch)).copied().unwrap_or_else(T::zero))
        .collect();
    let [s1, s2] = channel_sums(d, [x], [&pivot], |[p], [x]| {
        let u = x - p;
        [u, u * u]
    });
    let mut mean = Vec::with_capacity(d.c);
    let mut var = Vec::with_capacity(d.c);
    for ch in 0..d.c {
        let shifted_mean = s1[ch] / m;
        mean.push(f64_of(pivot[ch]) + shifted_mean);
        var.push((s2[ch] / m - shifted_mean * shifted_mean).max(0.0));
    }
    (mean, var)
}

/// PyTorch's running-statistics update after a training batch of `m` values per channel with
/// mean `mean` and biased variance `var`: r ← (1 − momentum)·r + momentum·batch, the variance
/// made unbiased (·m/(m − 1)), computed in f64. Twin of `update_running` in `bn_relu.cu`.
pub fn update_running<T: Real>(
    (mean, var): (&[f64], &[f64]),
    m: usize,
    momentum: f64,
    run_mean: Option<&mut [T]>,
    run_var: Option<&mut [T]>,
) {
    let unbias = if m > 1 {
        m as f64 / (m - 1) as f64
    } else {
        1.0
    };
    let blend = |run: &mut [T], batch: &[f64], factor: f64| {
        for (r, &b) in run.iter_mut().zip(batch) {
            *r = c((1.0 - momentum) * f64_of(*r) + momentum * b * factor);
        }
    };
    if let Some(r) = run_mean {
        blend(r, mean, 1.0);
    }
    if let Some(r) = run_var {
        blend(r, var, unbias);
    }
}

/// The forward's per-channel vectors from batch statistics, in f64: invstd = 1/√(var + eps),
/// scale = γ·invstd, shift = β - mean·scale (γ, β: ones and zeros when None). Twin of
/// `write_affine` in `bn_relu.cu`.
pub fn affine_from_stats(
    (mean, var): (&[f64], &[f64]),
    gamma: Option<&[f64]>,
    beta: Option<&[f64]>,
    eps: f64,
) -> [Vec<f64>; 3] {
    let mut out: [Vec<f64>; 3] = Default::default();
    for ch in 0..mean.len() {
        let is = 1.0 / (var[ch] + eps).sqrt();
        let sc = gamma.map_or(1.0, |g| g[ch]) * is;
        out[0].push(is);
        out[1].push(sc);
        out[2].push(beta.map_or(0.0, |b| b[ch]) - mean[ch] * sc);
    }
    out
}

/// y = act(x·scale\[c\] + shift\[c\] + residual), act = ReLU when `relu`.
pub fn bn_act_fwd<T: Real>(
    x: &[T],
    residual: Option<&[T]>,
    scale: &[T],
    shift: &[T],
    relu: bool,
    d: ChannelDims,
    y: &mut [T],
) {
    if relu {
        fwd_with(x, residual, [scale, shift], d, y, |v| v.max(T::zero()));
    } else {
        fwd_with(x, residual, [scale, shift], d, y, |v| v);
    }
}

fn fwd_with<T: Real>(
    x: &[T],
    residual: Option<&[T]>,
    affine: [&[T]; 2],
    d: ChannelDims,
    y: &mut [T],
    act: impl Fn(T) -> T + Sync,
) {
    match residual {
        Some(r) => map_channels(d, y, [x, r], affine, |[s, b], [x, r]| act(x * s + b + r)),
        None => map_channels(d, y, [x], affine, |[s, b], [x]| act(x * s + b)),
    }
}

/// What the BN backward needs besides the incoming gradient.
pub struct BnBackward<'a, T> {
    /// The BN input.
    pub x: &'a [T],
    /// The forward output (post-activation): its sign is the ReLU mask.
    pub y: &'a [T],
    /// The mean the forward normalized with (batch or running).
    pub mean: &'a [f64],
    /// 1/√(var + eps) the forward normalized with.
    pub invstd: &'a [f64],
    /// γ (ones when the BN has no affine weight).
    pub gamma: &'a [f64],
    /// Whether a ReLU followed the BN.
    pub relu: bool,
    /// Whether batch statistics were used (gradients flow through mean and variance).
    pub training: bool,
}

/// The gradients of the fused BN: (dx, dγ, dβ); `dres`, when given, receives the residual's gradient.
pub fn bn_act_bwd<T: Real>(
    dy: &[T],
    s: &BnBackward<T>,
    d: ChannelDims,
    dx: &mut [T],
    dres: Option<&mut [T]>,
) -> (Vec<f64>, Vec<f64>) {
    if s.relu {
        bwd_with(dy, s, d, dx, dres, |g, y| {
            if y <= T::zero() {
                T::zero()
            } else {
                g
            }
        })
    } else {
        bwd_with(dy, s, d, dx, dres, |g, _| g)
    }
}

/// The backward with the activation's gradient `mask(dy, y)` (dy itself without ReLU).
fn bwd_with<T: Real>(
    dy: &[T],
    s: &BnBackward<T>,
    d: ChannelDims,
    dx: &mut [T],
    dres: Option<&mut [T]>,
    mask: impl Fn(T, T) -> T + Sync + Copy,
) -> (Vec<f64>, Vec<f64>) {
    if let Some(dres) = dres {
        map_channels(d, dres, [dy, s.y], [], |[], [g, y]| mask(g, y));
    }
    let mean: Vec<T> = s.mean.iter().map(|&v| c(v)).collect();
    let [gsum, gxsum] = channel_sums(d, [dy, s.y, s.x], [&mean], |[m], [g, y, x]| {
        let g = mask(g, y);
        [g, g * (x - m)]
    });
    let dgamma: Vec<f64> = gxsum.iter().zip(s.invstd).map(|(a, b)| a * b).collect();
    let m = d.per_channel().max(1) as f64;
    let scale: Vec<T> = (0..d.c).map(|ch| c(s.gamma[ch] * s.invstd[ch])).collect();
    if s.training {
        let mean_g: Vec<T> = gsum.iter().map(|v| c(v / m)).collect();
        let k: Vec<T> = (0..d.c)
            .map(|ch| c(s.invstd[ch] * s.invstd[ch] * gxsum[ch] / m))
            .collect();
        let params = [&scale[..], &mean_g, &mean, &k];
        map_channels(d, dx, [dy, s.y, s.x], params, |[s, mg, m, k], [g, y, x]| {
            s * (mask(g, y) - mg - (x - m) * k)
        });
    } else {
        map_channels(d, dx, [dy, s.y], [&scale], |[s], [g, y]| s * mask(g, y));
    }
    (dgamma, gsum)
}

/// dst\[i\] = f(p, v): `p` holds the per-channel parameters of element i's channel, `v` element i
/// of each source. Runs in parallel.
fn map_channels<T: Real, const P: usize, const K: usize>(
    d: ChannelDims,
    dst: &mut [T],
    srcs: [&[T]; K],
    params: [&[T]; P],
    f: impl Fn([T; P], [T; K]) -> T + Sync,
) {
    let pixels = d.pixels_per_map_run();
    let run = d.run() * pixels;
    let per_task = (PAR_GRAIN / run).max(1);
    // NHWC runs hold several pixels: the parameters, repeated once per pixel, zip with them.
    let tiled: [Vec<T>; P] = from_fn(|q| match d.channels_last {
        true => params[q][..d.c].repeat(pixels),
        false => Vec::new(),
    });
    dst.par_chunks_mut(run * per_task)
        .enumerate()
        .for_each(|(task, chunk)| {
            for (i, out) in chunk.chunks_mut(run).enumerate() {
                let r = task * per_task + i;
                let v: [&[T]; K] = from_fn(|k| &srcs[k][r * run..r * run + out.len()]);
                if d.channels_last {
                    let p: [&[T]; P] = from_fn(|q| &tiled[q][..out.len()]);
                    for (j, o) in out.iter_mut().enumerate() {
                        *o = f(from_fn(|q| p[q][j]), from_fn(|k| v[k][j]));
                    }
                } else {
                    let p: [T; P] = from_fn(|q| params[q][r % d.c]);
                    for (j, o) in out.iter_mut().enumerate() {
                        *o = f(p, from_fn(|k| v[k][j]));
                    }
                }
            }
        });
}

/// Per channel, the two sums Σ f(p, v)\[0\] and Σ f(p, v)\[1\] over all its elements (`p`, `v` as
/// in [`map_channels`]). Runs in parallel.
fn channel_sums<T: Real, const P: usize, const K: usize>(
    d: ChannelDims,
    srcs: [&[T]; K],
    params: [&[T]; P],
    f: impl Fn([T; P], [T; K]) -> [T; 2] + Sync,
) -> [Vec<f64>; 2] {
    let (run, mut per_task) = (d.run(), d.runs_per_task());
    let runs = (d.n * d.c * d.hw) / run;
    if d.channels_last {
        // Each NHWC task sets up and flushes run-long partial sums: a few big tasks per thread.
        per_task = per_task.max(runs.div_ceil(4 * rayon::current_num_threads()));
    }
    let partials = (0..runs.div_ceil(per_task))
        .into_par_iter()
        .map(|task| {
            let mut totals = [vec![0f64; d.c], vec![0f64; d.c]];
            let task_runs = task * per_task..((task + 1) * per_task).min(runs);
            if d.channels_last {
                sum_pixels(d.c, task_runs, srcs, params, &f, &mut totals);
            } else {
                for r in task_runs {
                    let v: [&[T]; K] = from_fn(|k| &srcs[k][r * run..(r + 1) * run]);
                    let p: [T; P] = from_fn(|q| params[q][r % d.c]);
                    let [a, b] = sum_plane(v, p, &f);
                    totals[0][r % d.c] += a;
                    totals[1][r % d.c] += b;
                }
            }
            totals
        })
        .collect::<Vec<_>>();
    // Added in task order: a `reduce` would group the sum as work is stolen (see
    // `sum_in_ranges`), and the statistics would differ from run to run in their last bits.
    merge_in_order(
        partials,
        || [vec![0f64; d.c], vec![0f64; d.c]],
        |a, b| {
            for (acc, part) in a.iter_mut().zip(b) {
                acc.iter_mut().zip(part).for_each(|(x, y)| *x += y);
            }
        },
    )
}

/// The two sums of `f(p, v)` over one channel plane (NCHW run), in `LANES` partial sums.
fn sum_plane<T: Real, const P: usize, const K: usize>(
    v: [&[T]; K],
    p: [T; P],
    f: &impl Fn([T; P], [T; K]) -> [T; 2],
) -> [f64; 2] {
    let len = v.first().map_or(0, |s| s.len());
    let mut total = [0f64; 2];
    for start in (0..len).step_by(BLOCK) {
        let end = (start + BLOCK).min(len);
        let mut lanes = [[T::zero(); LANES]; 2];
        let whole = start + (end - start) / LANES * LANES;
        for base in (start..whole).step_by(LANES) {
            let chunk: [&[T]; K] = from_fn(|k| &v[k][base..base + LANES]);
            for l in 0..LANES {
                let [a, b] = f(p, from_fn(|k| chunk[k][l]));
                lanes[0][l] += a;
                lanes[1][l] += b;
            }
        }
        (whole..end).for_each(|j| {
            let [a, b] = f(p, from_fn(|k| v[k][j]));
            lanes[0][0] += a;
            lanes[1][0] += b;
        });
        for (t, l) in total.iter_mut().zip(&lanes) {
            *t += l.iter().map(|&x| f64_of(x)).sum::<f64>();
        }
    }
    total
}

/// Adds the two sums of `f(p, v)` over the NHWC pixels `pixels` into `totals`, per channel.
/// Pixels are taken a run of [`MAP_RUN`] elements at a time, into partial sums one run long.
fn sum_pixels<T: Real, const P: usize, const K: usize>(
    c: usize,
    pixels: std::ops::Range<usize>,
    srcs: [&[T]; K],
    params: [&[T]; P],
    f: &impl Fn([T; P], [T; K]) -> [T; 2],
    totals: &mut [Vec<f64>; 2],
) {
    let run = c * (MAP_RUN / c).max(1);
    let tiled: [Vec<T>; P] = from_fn(|q| params[q][..c].repeat(run / c));
    let mut partial = [vec![T::zero(); run], vec![T::zero(); run]];
    let flush = |partial: &mut [Vec<T>; 2], totals: &mut [Vec<f64>; 2]| {
        for (part, tot) in partial.iter_mut().zip(totals.iter_mut()) {
            for pixel in part.chunks_mut(c) {
                for (x, t) in pixel.iter_mut().zip(tot.iter_mut()) {
                    *t += f64_of(*x);
                    *x = T::zero();
                }
            }
        }
    };
    let (start, end) = (pixels.start * c, pixels.end * c);
    for (i, base) in (start..end).step_by(run).enumerate() {
        let len = run.min(end - base);
        let v: [&[T]; K] = from_fn(|k| &srcs[k][base..base + len]);
        let p: [&[T]; P] = from_fn(|q| &tiled[q][..len]);
        let [a, b] = &mut partial;
        let (a, b) = (&mut a[..len], &mut b[..len]);
        for j in 0..len {
            let [da, db] = f(from_fn(|q| p[q][j]), from_fn(|k| v[k][j]));
            a[j] += da;
            b[j] += db;
        }
        if (i + 1) % RUNS_PER_FLUSH == 0 {
            flush(&mut partial, totals);
        }
    }
    flush(&mut partial, totals);
}
