//! The two feature-map passes of the fused squeeze-excite, NCHW or NHWC. Twin of
//! `cuda/squeeze_excite.cu`.
//!
//! Forward: s = mean_hw(x) ([`channel_sum`] with scale 1/HW), the tiny FC layers on s (outside
//! these kernels), then out = x · g ([`channel_apply`]). Backward: dg = Σ_hw dout · x
//! ([`channel_sum`] of a product), the FC backward, then dx = dout · g + ds/HW
//! ([`channel_apply`] with an addend). Per-channel vectors are `[N·C]` in the compute type.

use super::bn_relu::ChannelDims;
use super::Real;
use rayon::prelude::*;

/// `out[n·C + c] = scale · Σ_p a[n, c, p] · b[n, c, p]` (b = 1 when `None`), summed in pixel
/// order in f64 (these sums feed every gate and gradient, so f32 inputs lose nothing here).
pub fn channel_sum<T: Real>(a: &[T], b: Option<&[T]>, d: ChannelDims, scale: T, out: &mut [T]) {
    let (c, hw) = (d.c, d.hw);
    let wide = |v: T| v.to_f64().unwrap_or(f64::NAN);
    let scale = wide(scale);
    let plane = |i: usize| i * hw..(i + 1) * hw;
    if !d.channels_last {
        out.par_iter_mut().enumerate().for_each(|(i, o)| {
            let xa = &a[plane(i)];
            let s: f64 = match b {
                Some(b) => xa
                    .iter()
                    .zip(&b[plane(i)])
                    .map(|(&u, &v)| wide(u * v))
                    .sum(),
                None => xa.iter().map(|&u| wide(u)).sum(),
            };
            *o = super::c::<T>(s * scale);
        });
        return;
    }
    out.par_chunks_mut(c.max(1))
        .enumerate()
        .for_each(|(img, out)| {
            let mut acc = vec![0f64; c];
            let rows = img * hw * c..(img + 1) * hw * c;
            for (p, xa) in a[rows.clone()].chunks_exact(c).enumerate() {
                match b {
                    Some(b) => {
                        let xb = &b[rows.start + p * c..][..c];
                        for (o, (&u, &v)) in acc.iter_mut().zip(xa.iter().zip(xb)) {
                            *o += wide(u * v);
                        }
                    }
                    None => {
                        for (o, &u) in acc.iter_mut().zip(xa) {
                            *o += wide(u);
                        }
                    }
                }
            }
            for (o, &s) in out.iter_mut().zip(&acc) {
                *o = super::c::<T>(s * scale);
            }
        });
}

/// `out[n, c, p] = a[n, c, p] · g[n·C + c] + add[n·C + c]` (add = 0 when `None`).
pub fn channel_apply<T: Real>(a: &[T], g: &[T], add: Option<&[T]>, d: ChannelDims, out: &mut [T]) {
    let (c, hw) = (d.c, d.hw);
    let shift = |i: usize| add.map_or(T::zero(), |v| v[i]);
    if !d.channels_last {
        out.par_chunks_mut(hw.max(1))
            .zip(a.par_chunks(hw.max(1)))
            .enumerate()
            .for_each(|(i, (o, x))| {
                let (gi, si) = (g[i], shift(i));
                for (o, &v) in o.iter_mut().zip(x) {
                    *o = v * gi + si;
                }
            });
        return;
    }
    out.par_chunks_mut(c.max(1))
        .zip(a.par_chunks(c.max(1)))
        .enumerate()
        .for_each(|(p, (o, x))| {
            let nc = p / hw.max(1) * c;
            let gs = &g[nc..nc + c];
            match add {
                Some(add) => {
                    let ss = &add[nc..nc + c];
                    for (o, ((&v, &gv), &sv)) in o.iter_mut().zip(x.iter().zip(gs).zip(ss)) {
                        *o = v * gv + sv;
                    }
                }
                None => {
                    for (o, (&v, &gv)) in o.iter_mut().zip(x.iter().zip(gs)) {
                        *o = v * gv;
                    }
                }
            }
        });
}
