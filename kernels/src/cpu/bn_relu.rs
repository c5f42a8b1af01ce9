//! BatchNorm over (N, H, W) per channel, fused with an optional residual add and ReLU, forward and
//! backward, for NCHW and NHWC. Twin of `cuda/bn_relu.cu`.
//!
//! Fusing saves two full passes over the activation per layer: y = relu(x·scale + shift + residual)
//! is written once, and the backward recovers the ReLU mask from y instead of a stored mask.
//! Statistics accumulate in f64.

use super::{c, Real, PAR_GRAIN};
use rayon::prelude::*;

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
}

#[inline(always)]
fn f64_of<T: Real>(v: T) -> f64 {
    v.to_f64().unwrap_or(f64::NAN)
}

/// Batch mean and biased variance per channel.
pub fn bn_stats<T: Real>(x: &[T], d: ChannelDims) -> (Vec<f64>, Vec<f64>) {
    let m = d.per_channel().max(1) as f64;
    let mean: Vec<f64> = channel_sums(d, |i, _| f64_of(x[i]))
        .into_iter()
        .map(|s| s / m)
        .collect();
    let var = channel_sums(d, |i, ch| (f64_of(x[i]) - mean[ch]).powi(2))
        .into_iter()
        .map(|s| s / m)
        .collect();
    (mean, var)
}

fn add_vecs(mut a: Vec<f64>, b: Vec<f64>) -> Vec<f64> {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
    a
}

/// Applies `f(element, channel)` to every element of `dst` (read alongside `srcs`), in parallel.
fn map_channels<T: Real, const K: usize>(
    dst: &mut [T],
    srcs: [&[T]; K],
    d: ChannelDims,
    f: impl Fn(usize, [T; K]) -> T + Sync,
) {
    let run = if d.channels_last { d.c } else { d.hw }.max(1);
    let runs_per_task = (PAR_GRAIN / run).max(1);
    dst.par_chunks_mut(run * runs_per_task)
        .enumerate()
        .for_each(|(task, chunk)| {
            for (i, out) in chunk.chunks_mut(run).enumerate() {
                let r = task * runs_per_task + i;
                let base = r * run;
                for (j, o) in out.iter_mut().enumerate() {
                    let ch = if d.channels_last { j } else { r % d.c };
                    *o = f(ch, std::array::from_fn(|k| srcs[k][base + j]));
                }
            }
        });
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
    let act = |v: T| if relu { v.max(T::zero()) } else { v };
    match residual {
        Some(r) => map_channels(y, [x, r], d, |ch, [x, r]| {
            act(x * scale[ch] + shift[ch] + r)
        }),
        None => map_channels(y, [x], d, |ch, [x]| act(x * scale[ch] + shift[ch])),
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
    let g_of = |dy: T, y: T| {
        if s.relu && y <= T::zero() {
            T::zero()
        } else {
            dy
        }
    };
    if let Some(dres) = dres {
        map_channels(dres, [dy, s.y], d, |_, [dy, y]| g_of(dy, y));
    }
    let gsum = channel_sums(d, |i, _| f64_of(g_of(dy[i], s.y[i])));
    let gxsum = channel_sums(d, |i, ch| {
        f64_of(g_of(dy[i], s.y[i])) * (f64_of(s.x[i]) - s.mean[ch])
    });
    let dbeta = gsum.clone();
    let dgamma: Vec<f64> = gxsum.iter().zip(s.invstd).map(|(a, b)| a * b).collect();
    let m = d.per_channel().max(1) as f64;
    let scale: Vec<T> = (0..d.c).map(|ch| c(s.gamma[ch] * s.invstd[ch])).collect();
    if s.training {
        let mean_g: Vec<T> = gsum.iter().map(|v| c(v / m)).collect();
        let k: Vec<T> = (0..d.c)
            .map(|ch| c(s.invstd[ch] * s.invstd[ch] * gxsum[ch] / m))
            .collect();
        let mean: Vec<T> = s.mean.iter().map(|&v| c(v)).collect();
        map_channels(dx, [dy, s.y, s.x], d, |ch, [dy, y, x]| {
            scale[ch] * (g_of(dy, y) - mean_g[ch] - (x - mean[ch]) * k[ch])
        });
    } else {
        map_channels(dx, [dy, s.y], d, |ch, [dy, y]| scale[ch] * g_of(dy, y));
    }
    (dgamma, dbeta)
}

/// Per-channel Σ f(i, channel) over element indices.
fn channel_sums(d: ChannelDims, f: impl Fn(usize, usize) -> f64 + Sync) -> Vec<f64> {
    let run = if d.channels_last { d.c } else { d.hw }.max(1);
    let total = d.n * d.c * d.hw;
    let runs = total / run;
    let runs_per_task = (PAR_GRAIN / run).max(1);
    (0..runs.div_ceil(runs_per_task))
        .into_par_iter()
        .map(|task| {
            let mut acc = vec![0f64; d.c];
            for r in task * runs_per_task..((task + 1) * runs_per_task).min(runs) {
                let base = r * run;
                if d.channels_last {
                    for (ch, a) in acc.iter_mut().enumerate() {
                        *a += f(base + ch, ch);
                    }
                } else {
                    let ch = r % d.c;
                    acc[ch] += (base..base + run).map(|i| f(i, ch)).sum::<f64>();
                }
            }
            acc
        })
        .reduce(|| vec![0f64; d.c], add_vecs)
}
