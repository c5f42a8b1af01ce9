//! Fused scaled-dot-product attention, forward and backward, flash-attention style. Twin of
//! `cuda/attention.cu`.
//!
//! Notation: `bh` independent problems (batch·heads), each with `lq` query rows and `lk` key/value
//! rows of head dim `d`, all dense row-major. S = scale·Q·Kᵀ, P = softmax(S) per row, O = P·V.
//! Every product is a `gemm`-crate call on blocks of `BQ` (64) query rows by `BK` (128) keys,
//! single-threaded inside (rayon spreads the blocks). The forward, per (problem, query block),
//! walks the key blocks with an online softmax: S = scale·Q·Kᵀ, the running row max m and sum l,
//! the partial O rescaled by e^(m_old − m_new), then O += P·V; only one BQ×BK block of scores
//! exists at a time, and it keeps lse = m + ln l per row. The backward recomputes
//! P = e^(S − lse) from Q, K and lse: with Δ = rowsum(dO∘O) first, per (key block, query block)
//! it forms S and dP = dO·Vᵀ, then dS = P∘(dP − Δ), dV += Pᵀ·dO, dK += scale·dSᵀ·Q and
//! dQ += scale·dS·K, in one pass per problem (rayon over batch·heads) in a fixed order: no
//! atomics, no L×S matrix, each block of P and dS computed once. The causal mask lets query i see
//! keys j ≤ i (PyTorch's top-left aligned `is_causal`). An optional additive bias (PyTorch's
//! float `attn_mask`; Swin's relative position bias plus shift mask) is read block by block as the
//! scores are formed: S = scale·Q·Kᵀ + B, with problem h reading matrix (h / div) % count of a
//! dense [count, lq, lk] bias. Its gradient is dS summed over the problems sharing a matrix: the
//! backward then runs the problems of each matrix in fixed-size groups, each group adding into its
//! own [lq, lk] partial, and sums the partials in order (deterministic, no L×S per problem).

use super::{c, Real};
use rayon::prelude::*;

/// Query rows one block product covers.
const BQ: usize = 64;
/// Keys whose scores exist at once, per query row: ViT's 197 tokens take two blocks.
const BK: usize = 128;

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
    /// Where each problem finds its additive bias, when there is one.
    pub bias: Option<BiasMap>,
}

/// Where problem `h` finds its additive score bias: matrix `(h / div) % count` of a dense
/// [count, lq, lk] tensor (a bias broadcast over some of the batch·head dims).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BiasMap {
    /// Bias matrices; `bh` is a multiple of `count·div`.
    pub count: usize,
    /// Consecutive problems sharing one matrix.
    pub div: usize,
}

impl BiasMap {
    /// The bias matrix of problem `h`.
    #[inline]
    pub fn of(&self, h: usize) -> usize {
        (h / self.div) % self.count
    }

    /// Problems reading each matrix, of `bh` in all.
    pub fn per(&self, bh: usize) -> usize {
        bh / self.count
    }

    /// The `t`-th problem (of [`BiasMap::per`]) reading matrix `n`.
    pub fn problem(&self, n: usize, t: usize) -> usize {
        ((t / self.div) * self.count + n) * self.div + t % self.div
    }
}

/// Problem `h`'s [lq, lk] bias matrix.
fn bias_of<'a, T>(bias: Option<&'a [T]>, dims: &AttnDims, h: usize) -> Option<&'a [T]> {
    let (map, b) = match (dims.bias, bias) {
        (Some(map), Some(b)) => (map, b),
        (None, None) => return None,
        _ => panic!("attention bias data and map must come together"),
    };
    let n = dims.lq * dims.lk;
    Some(&b[map.of(h) * n..][..n])
}

/// Problem groups per bias matrix aim at this many groups in all (rayon's parallelism when the
/// bias needs its gradient).
const GROUPS: usize = 64;

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

/// A read-only strided matrix: element (r, c) is `data[r·rs + c·cs]`.
#[derive(Clone, Copy)]
struct Mat<'a, T> {
    data: &'a [T],
    rs: usize,
    cs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// Row-major with row stride `ld`.
    fn rows(data: &'a [T], ld: usize) -> Self {
        Mat {
            data,
            rs: ld,
            cs: 1,
        }
    }

    /// The transpose of the row-major matrix with row stride `ld`.
    fn t(data: &'a [T], ld: usize) -> Self {
        Mat {
            data,
            rs: 1,
            cs: ld,
        }
    }

    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// C\[m×n\] (row-major, row stride `ldc`) = mul·A\[m×k\]·B\[k×n\], or += with `acc`, on one
/// thread of the `gemm` crate (rayon already spreads the blocks).
fn mm<T: Real>(
    [m, n, k]: [usize; 3],
    (c, ldc, acc): (&mut [T], usize, bool),
    a: Mat<T>,
    b: Mat<T>,
    mul: T,
) {
    assert!(
        a.fits(m, k) && b.fits(k, n),
        "attention gemm operands out of bounds"
    );
    assert!(
        m == 0 || n == 0 || (m - 1) * ldc + n <= c.len(),
        "attention gemm output out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the asserts keep every element gemm reads inside `a` and `b` and every element it
    // writes (and reads, with `acc`) inside `c`, which this call borrows exclusively; `T` is f32
    // or f64, both of which gemm dispatches on.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            ldc as isize,
            acc,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            T::one(),
            mul,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// O (`bh·lq·d`) and the per-row logsumexp of the scores (`bh·lq`) from Q, K, V and the
/// optional bias (`count·lq·lk`, as `dims.bias` maps it).
pub fn attention_fwd<T: Real>(
    q: &[T],
    k: &[T],
    v: &[T],
    bias: Option<&[T]>,
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
            let bias = bias_of(bias, &dims, h);
            o.par_chunks_mut(BQ * d)
                .zip(lse.par_chunks_mut(BQ))
                .enumerate()
                .for_each(|(b, (o, lse))| fwd_block(q, (k, v, bias), dims, b * BQ, o, lse));
        });
}

/// Keys of block `[j0, j0 + bk)` query row `i` sees: the first `visible(..)` of them.
#[inline]
fn visible(dims: &AttnDims, i: usize, j0: usize, bk: usize) -> usize {
    dims.keys(i).min(j0 + bk).saturating_sub(j0)
}

/// The online-softmax state of one query block: running row max `m` and row sum `l`.
struct Online<T> {
    m: Vec<T>,
    l: Vec<T>,
}

impl<T: Real> Online<T> {
    /// Turns the score rows `s` (row stride BK) of key block `[j0, j0 + bk)` into e^(s − m_new)
    /// (zero where masked) and rescales the rows of `o` and `l` by e^(m_old − m_new).
    fn update(
        &mut self,
        dims: &AttnDims,
        (i0, j0, bk): (usize, usize, usize),
        s: &mut [T],
        o: &mut [T],
    ) {
        let d = dims.d;
        for (r, (m, l)) in self.m.iter_mut().zip(&mut self.l).enumerate() {
            let row = &mut s[r * BK..][..bk];
            let jn = visible(dims, i0 + r, j0, bk);
            if jn == 0 {
                row.fill(T::zero());
                continue;
            }
            let bm = row[..jn].iter().fold(T::neg_infinity(), |a, &b| a.max(b));
            let mn = m.max(bm);
            if mn == T::neg_infinity() {
                // Every key so far masked by the bias: nothing to add, no scale to change.
                row.fill(T::zero());
                continue;
            }
            let alpha = (*m - mn).exp();
            if alpha != T::one() {
                o[r * d..][..d].iter_mut().for_each(|x| *x *= alpha);
            }
            row[..jn].iter_mut().for_each(|x| *x = (*x - mn).exp());
            row[jn..].fill(T::zero());
            *l = *l * alpha + row[..jn].iter().copied().sum::<T>();
            *m = mn;
        }
    }
}

/// The forward of query rows `[i0, i0 + lse.len())` of one problem: per key block,
/// S = scale·Q·Kᵀ (+ the problem's bias) and O += P·V as block products, the online softmax in
/// between.
fn fwd_block<T: Real>(
    q: &[T],
    (k, v, bias): (&[T], &[T], Option<&[T]>),
    dims: AttnDims,
    i0: usize,
    o: &mut [T],
    lse: &mut [T],
) {
    let (d, scale) = (dims.d, c::<T>(dims.scale));
    let rows = lse.len();
    let mut st = Online {
        m: vec![T::neg_infinity(); rows],
        l: vec![T::zero(); rows],
    };
    let mut s = vec![T::zero(); rows * BK];
    let qb = Mat::rows(&q[i0 * d..][..rows * d], d);
    o.fill(T::zero());
    let kend = dims.keys(i0 + rows - 1);
    for j0 in (0..kend).step_by(BK) {
        let bk = BK.min(kend - j0);
        let kb = Mat::t(&k[j0 * d..][..bk * d], d);
        mm([rows, bk, d], (&mut s, BK, false), qb, kb, scale);
        if let Some(b) = bias {
            add_bias(&dims, (i0, j0, bk), b, &mut s);
        }
        st.update(&dims, (i0, j0, bk), &mut s, o);
        let vb = Mat::rows(&v[j0 * d..][..bk * d], d);
        mm([rows, d, bk], (o, d, true), Mat::rows(&s, BK), vb, T::one());
    }
    for (r, (&m, &l)) in st.m.iter().zip(&st.l).enumerate() {
        let inv = l.recip();
        o[r * d..][..d].iter_mut().for_each(|x| *x *= inv);
        lse[r] = m + l.ln();
    }
}

/// Adds the bias block of query rows from `i0` (as many as `s` holds rows of BK) and keys
/// `[j0, j0 + bk)` to the visible scores in `s`.
fn add_bias<T: Real>(dims: &AttnDims, (i0, j0, bk): (usize, usize, usize), b: &[T], s: &mut [T]) {
    for (r, row) in s.chunks_mut(BK).enumerate() {
        let i = i0 + r;
        if i >= dims.lq {
            break;
        }
        let jn = visible(dims, i, j0, bk);
        let brow = &b[i * dims.lk + j0..][..jn];
        row[..jn].iter_mut().zip(brow).for_each(|(x, &y)| *x += y);
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
    /// The forward's bias, `count·lq·lk` as `dims.bias` maps it (one problem's [lq, lk] inside
    /// the per-problem code).
    pub bias: Option<&'a [T]>,
}

/// dQ, dK and dV (shaped as Q, K and V) from what the forward saved and dO, and the bias
/// gradient (`count·lq·lk`: dS summed over the problems reading each matrix) into `dbias`.
pub fn attention_bwd<T: Real>(
    x: AttnBwdInputs<T>,
    dims: AttnDims,
    (dq, dk, dv): (&mut [T], &mut [T], &mut [T]),
    dbias: Option<&mut [T]>,
) {
    let (lq, lk, d) = (dims.lq, dims.lk, dims.d);
    let mut delta = vec![T::zero(); dims.bh * lq];
    delta.par_chunks_mut(BQ).enumerate().for_each(|(b, delta)| {
        for (r, dl) in delta.iter_mut().enumerate() {
            let i = (b * BQ + r) * d;
            *dl = dot(&x.dout[i..][..d], &x.o[i..][..d]);
        }
    });
    let Some(dbias) = dbias else {
        dq.par_chunks_mut(lq * d)
            .zip(dk.par_chunks_mut(lk * d))
            .zip(dv.par_chunks_mut(lk * d))
            .enumerate()
            .for_each(|(h, ((dq, dk), dv))| {
                let delta = &delta[h * lq..][..lq];
                bwd_head(&head(&x, h, dims), delta, dims, (dq, dk, dv), None);
            });
        return;
    };
    let map = dims.bias.expect("a bias gradient needs a bias");
    let (per, ls) = (map.per(dims.bh), lq * lk);
    let groups = GROUPS.div_ceil(map.count).clamp(1, per.max(1));
    type Grads<'g, T> = (&'g mut [T], &'g mut [T], &'g mut [T]);
    let mut slots: Vec<Option<Grads<T>>> = dq
        .chunks_mut(lq * d)
        .zip(dk.chunks_mut(lk * d))
        .zip(dv.chunks_mut(lk * d))
        .map(|((a, b), c)| Some((a, b, c)))
        .collect();
    // Group g of matrix n: problems t ∈ [g·per/groups, (g+1)·per/groups) of it, in order.
    let mut tasks: Vec<Vec<(usize, Grads<T>)>> = Vec::with_capacity(map.count * groups);
    for n in 0..map.count {
        for g in 0..groups {
            let list = (g * per / groups..(g + 1) * per / groups)
                .map(|t| {
                    let h = map.problem(n, t);
                    (h, slots[h].take().expect("each problem reads one matrix"))
                })
                .collect();
            tasks.push(list);
        }
    }
    let mut partial = vec![T::zero(); map.count * groups * ls];
    tasks
        .into_par_iter()
        .zip(partial.par_chunks_mut(ls))
        .for_each(|(list, part)| {
            for (h, grads) in list {
                let delta = &delta[h * lq..][..lq];
                bwd_head(&head(&x, h, dims), delta, dims, grads, Some(&mut *part));
            }
        });
    dbias
        .par_chunks_mut(ls)
        .zip(partial.par_chunks(groups * ls))
        .for_each(|(db, parts)| {
            db.fill(T::zero());
            for p in parts.chunks(ls) {
                db.iter_mut().zip(p).for_each(|(a, &b)| *a += b);
            }
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
        bias: bias_of(x.bias, &dims, h),
    }
}

/// dQ, dK and dV of one problem in one pass over key blocks (query blocks inner), each block of
/// P and dS computed once and every product a `gemm` call on blocks, in a fixed order; dS added
/// into `dbias` ([lq, lk]) when given. `x.bias` is the problem's own matrix.
fn bwd_head<T: Real>(
    x: &AttnBwdInputs<T>,
    delta: &[T],
    dims: AttnDims,
    (dq, dk, dv): (&mut [T], &mut [T], &mut [T]),
    mut dbias: Option<&mut [T]>,
) {
    let (d, scale) = (dims.d, c::<T>(dims.scale));
    let (mut p, mut ds) = (vec![T::zero(); BQ * BK], vec![T::zero(); BQ * BK]);
    dq.fill(T::zero());
    dk.fill(T::zero());
    dv.fill(T::zero());
    for j0 in (0..dims.lk).step_by(BK) {
        let bk = BK.min(dims.lk - j0);
        let (kj, vj) = (&x.k[j0 * d..][..bk * d], &x.v[j0 * d..][..bk * d]);
        let (dkj, dvj) = (&mut dk[j0 * d..][..bk * d], &mut dv[j0 * d..][..bk * d]);
        for i0 in (dims.first_query(j0) / BQ * BQ..dims.lq).step_by(BQ) {
            let rows = BQ.min(dims.lq - i0);
            let qi = Mat::rows(&x.q[i0 * d..][..rows * d], d);
            let doi = Mat::rows(&x.dout[i0 * d..][..rows * d], d);
            mm([rows, bk, d], (&mut p, BK, false), qi, Mat::t(kj, d), scale);
            mm(
                [rows, bk, d],
                (&mut ds, BK, false),
                doi,
                Mat::t(vj, d),
                T::one(),
            );
            let blk = (i0, j0, bk);
            if let Some(b) = x.bias {
                add_bias(&dims, blk, b, &mut p[..rows * BK]);
            }
            probs_and_dscores(&dims, blk, (&x.lse[i0..], &delta[i0..]), &mut p, &mut ds);
            if let Some(db) = dbias.as_deref_mut() {
                for (r, row) in ds.chunks(BK).take(rows).enumerate() {
                    let dst = &mut db[(i0 + r) * dims.lk + j0..][..bk];
                    dst.iter_mut().zip(row).for_each(|(a, &b)| *a += b);
                }
            }
            mm([bk, d, rows], (dvj, d, true), Mat::t(&p, BK), doi, T::one());
            mm([bk, d, rows], (dkj, d, true), Mat::t(&ds, BK), qi, scale);
            let dqi = &mut dq[i0 * d..][..rows * d];
            mm(
                [rows, d, bk],
                (dqi, d, true),
                Mat::rows(&ds, BK),
                Mat::rows(kj, d),
                scale,
            );
        }
    }
}

/// Given the scores (scaled, biased) in `p` and dP = dO·Vᵀ in `ds` (row stride BK) of query rows from `i0`
/// and key block `[j0, j0 + bk)`, writes P = e^(S − lse) into `p` and dS/scale = P∘(dP − Δ)
/// into `ds`, both zero where masked.
fn probs_and_dscores<T: Real>(
    dims: &AttnDims,
    (i0, j0, bk): (usize, usize, usize),
    (lse, delta): (&[T], &[T]),
    p: &mut [T],
    ds: &mut [T],
) {
    let rows = BQ.min(dims.lq - i0);
    for r in 0..rows {
        let (pr, dr) = (&mut p[r * BK..][..bk], &mut ds[r * BK..][..bk]);
        let jn = visible(dims, i0 + r, j0, bk);
        for (pv, dv) in pr[..jn].iter_mut().zip(&mut dr[..jn]) {
            *pv = (*pv - lse[r]).exp();
            *dv = *pv * (*dv - delta[r]);
        }
        pr[jn..].fill(T::zero());
        dr[jn..].fill(T::zero());
    }
}
