//! Fused scaled-dot-product attention, forward and backward, flash-attention style. Twin of
//! `cuda/attention.cu`.
//!
//! Notation: `bh` independent problems (batch·heads), each with `lq` query rows and `lk` key/value
//! rows of head dim `d`, all dense row-major. S = scale·Q·Kᵀ, P = softmax(S) per row, O = P·V.
//! The forward walks the keys in blocks of `BK` (64) with an online softmax (running max m and sum
//! l, the partial O rescaled by e^(m_old − m_new)), so only one block of scores exists at a time,
//! and it keeps lse = m + ln l per row. The backward recomputes P = e^(S − lse) from Q, K and lse:
//! with Δ = rowsum(dO∘O) first, dS = P∘(dO·Vᵀ − Δ), dQ = scale·dS·K, dK = scale·dSᵀ·Q and
//! dV = Pᵀ·dO, accumulated in one pass per problem (rayon over batch·heads) in a fixed order: no
//! atomics, no N×N matrix, each P and dS computed once. Key blocks are transposed once so scores
//! are axpys over keys (no horizontal sums). The causal mask lets query i see keys j ≤ i
//! (PyTorch's top-left aligned `is_causal`).

use super::{c, Real};
use rayon::prelude::*;

/// Query rows one task owns.
const BQ: usize = 32;
/// Keys whose scores exist at once, per query row.
const BK: usize = 64;

/// The shape of one attention call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttnDims {
    /// Independent problems (batch × heads).
    pub bh: usize,
    /// Query rows per problem.
    pub lq: usize,
    /// Key and value rows per problem (at least 1).
    pub lk: usize,
    /// Head dim of queries, keys and values.
    pub d: usize,
    /// The factor on Q·Kᵀ (PyTorch's default 1/√d).
    pub scale: f64,
    /// Whether query i sees only keys j ≤ i.
    pub causal: bool,
}

impl AttnDims {
    /// Keys query row `i` sees: `[0, keys(i))`.
    #[inline]
    pub fn keys(&self, i: usize) -> usize {
        if self.causal {
            (i + 1).min(self.lk)
        } else {
            self.lk
        }
    }

    /// The first query row that sees key `j`.
    #[inline]
    fn first_query(&self, j: usize) -> usize {
        if self.causal {
            j
        } else {
            0
        }
    }
}

/// Σ a·b with eight independent accumulators, so the compiler vectorizes it.
#[inline]
fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: T = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(&x, &y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for ((a, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *a += x * y;
        }
    }
    acc.iter().copied().sum::<T>() + tail
}

/// y += a·x.
#[inline]
fn axpy<T: Real>(y: &mut [T], a: T, x: &[T]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// O (`bh·lq·d`) and the per-row logsumexp of the scaled scores (`bh·lq`) from Q, K and V.
pub fn attention_fwd<T: Real>(
    q: &[T],
    k: &[T],
    v: &[T],
    dims: AttnDims,
    o: &mut [T],
    lse: &mut [T],
) {
    let (lq, lk, d) = (dims.lq, dims.lk, dims.d);
    o.par_chunks_mut(lq * d)
        .zip(lse.par_chunks_mut(lq))
        .enumerate()
        .for_each(|(h, (o, lse))| {
            let (q, k, v) = (
                &q[h * lq * d..][..lq * d],
                &k[h * lk * d..][..lk * d],
                &v[h * lk * d..][..lk * d],
            );
            o.par_chunks_mut(BQ * d)
                .zip(lse.par_chunks_mut(BQ))
                .enumerate()
                .for_each(|(b, (o, lse))| fwd_block(q, k, v, dims, b * BQ, o, lse));
        });
}

/// kt\[c·BK + t\] = src\[t·d + c\] for the `bk` rows of `src`: a key block with the head dim
/// outermost, so scores vectorize over keys.
fn transpose_block<T: Real>(src: &[T], d: usize, kt: &mut [T]) {
    for (t, row) in src.chunks_exact(d).enumerate() {
        for (c, &x) in row.iter().enumerate() {
            kt[c * BK + t] = x;
        }
    }
}

/// s\[t\] = mul·Σ_c x\[c\]·kt\[c·BK + t\] for t < s.len(): one axpy per head-dim element over
/// the block's keys, no horizontal sums.
fn scores<T: Real>(x: &[T], kt: &[T], mul: T, s: &mut [T]) {
    s.fill(T::zero());
    for (c, &xc) in x.iter().enumerate() {
        axpy(s, xc, &kt[c * BK..][..s.len()]);
    }
    s.iter_mut().for_each(|v| *v *= mul);
}

/// The forward of query rows `[i0, i0 + lse.len())` of one problem.
fn fwd_block<T: Real>(
    q: &[T],
    k: &[T],
    v: &[T],
    dims: AttnDims,
    i0: usize,
    o: &mut [T],
    lse: &mut [T],
) {
    let (d, scale) = (dims.d, c::<T>(dims.scale));
    let rows = lse.len();
    let mut m = vec![T::neg_infinity(); rows];
    let mut l = vec![T::zero(); rows];
    let mut kt = vec![T::zero(); d * BK];
    let mut s = [T::zero(); BK];
    o.fill(T::zero());
    let kend = dims.keys(i0 + rows - 1);
    for j0 in (0..kend).step_by(BK) {
        let bk = BK.min(kend - j0);
        transpose_block(&k[j0 * d..][..bk * d], d, &mut kt);
        for r in 0..rows {
            let jn = dims.keys(i0 + r).min(j0 + bk).saturating_sub(j0);
            if jn == 0 {
                continue;
            }
            scores(&q[(i0 + r) * d..][..d], &kt, scale, &mut s[..jn]);
            let bm = s[..jn].iter().fold(T::neg_infinity(), |a, &b| a.max(b));
            let mn = m[r].max(bm);
            let alpha = (m[r] - mn).exp();
            let orow = &mut o[r * d..][..d];
            if alpha != T::one() {
                orow.iter_mut().for_each(|x| *x *= alpha);
            }
            l[r] *= alpha;
            for (t, &sj) in s[..jn].iter().enumerate() {
                let p = (sj - mn).exp();
                l[r] += p;
                axpy(orow, p, &v[(j0 + t) * d..][..d]);
            }
            m[r] = mn;
        }
    }
    for r in 0..rows {
        let inv = l[r].recip();
        o[r * d..][..d].iter_mut().for_each(|x| *x *= inv);
        lse[r] = m[r] + l[r].ln();
    }
}

/// What the backward reads: the forward's inputs, its output and logsumexp, and dO.
#[derive(Debug, Clone, Copy)]
pub struct AttnBwdInputs<'a, T> {
    /// Queries, `bh·lq·d`.
    pub q: &'a [T],
    /// Keys, `bh·lk·d`.
    pub k: &'a [T],
    /// Values, `bh·lk·d`.
    pub v: &'a [T],
    /// The forward's output, `bh·lq·d`.
    pub o: &'a [T],
    /// The forward's per-row logsumexp, `bh·lq`.
    pub lse: &'a [T],
    /// The gradient of O, `bh·lq·d`.
    pub dout: &'a [T],
}

/// dQ, dK and dV (shaped as Q, K and V) from what the forward saved and dO.
pub fn attention_bwd<T: Real>(
    x: AttnBwdInputs<T>,
    dims: AttnDims,
    dq: &mut [T],
    dk: &mut [T],
    dv: &mut [T],
) {
    let (lq, lk, d) = (dims.lq, dims.lk, dims.d);
    let mut delta = vec![T::zero(); dims.bh * lq];
    delta.par_chunks_mut(BQ).enumerate().for_each(|(b, delta)| {
        for (r, dl) in delta.iter_mut().enumerate() {
            let i = (b * BQ + r) * d;
            *dl = dot(&x.dout[i..][..d], &x.o[i..][..d]);
        }
    });
    dq.par_chunks_mut(lq * d)
        .zip(dk.par_chunks_mut(lk * d))
        .zip(dv.par_chunks_mut(lk * d))
        .enumerate()
        .for_each(|(h, ((dq, dk), dv))| {
            let delta = &delta[h * lq..][..lq];
            bwd_head(&head(&x, h, dims), delta, dims, (dq, dk, dv));
        });
}

/// Problem `h`'s slices of `x`.
fn head<'a, T>(x: &AttnBwdInputs<'a, T>, h: usize, dims: AttnDims) -> AttnBwdInputs<'a, T> {
    let (lq, lk, d) = (dims.lq, dims.lk, dims.d);
    AttnBwdInputs {
        q: &x.q[h * lq * d..][..lq * d],
        k: &x.k[h * lk * d..][..lk * d],
        v: &x.v[h * lk * d..][..lk * d],
        o: &x.o[h * lq * d..][..lq * d],
        lse: &x.lse[h * lq..][..lq],
        dout: &x.dout[h * lq * d..][..lq * d],
    }
}

/// dQ, dK and dV of one problem in one pass over key blocks (queries inner), each P\[i, j\] and
/// dS\[i, j\] computed once, in a fixed order.
fn bwd_head<T: Real>(
    x: &AttnBwdInputs<T>,
    delta: &[T],
    dims: AttnDims,
    (dq, dk, dv): (&mut [T], &mut [T], &mut [T]),
) {
    let (d, scale) = (dims.d, c::<T>(dims.scale));
    let (mut kt, mut vt) = (vec![T::zero(); d * BK], vec![T::zero(); d * BK]);
    let (mut s, mut dp) = ([T::zero(); BK], [T::zero(); BK]);
    dq.fill(T::zero());
    dk.fill(T::zero());
    dv.fill(T::zero());
    for j0 in (0..dims.lk).step_by(BK) {
        let bk = BK.min(dims.lk - j0);
        transpose_block(&x.k[j0 * d..][..bk * d], d, &mut kt);
        transpose_block(&x.v[j0 * d..][..bk * d], d, &mut vt);
        for i in dims.first_query(j0)..dims.lq {
            let jn = dims.keys(i).min(j0 + bk).saturating_sub(j0);
            let (qi, doi) = (&x.q[i * d..][..d], &x.dout[i * d..][..d]);
            scores(qi, &kt, scale, &mut s[..jn]);
            scores(doi, &vt, T::one(), &mut dp[..jn]);
            let dqi = &mut dq[i * d..][..d];
            for t in 0..jn {
                let p = (s[t] - x.lse[i]).exp();
                let ds = p * (dp[t] - delta[i]) * scale;
                let j = (j0 + t) * d;
                axpy(dqi, ds, &x.k[j..][..d]);
                axpy(&mut dk[j..][..d], ds, qi);
                axpy(&mut dv[j..][..d], p, doi);
            }
        }
    }
}
