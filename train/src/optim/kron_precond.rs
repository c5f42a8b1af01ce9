//! Kron's Kronecker-factored preconditioner (timm's `_init_Q_exprs`, `_calc_A_and_conjB`,
//! `_q_terms`, `_norm_lower_bound`, `_balance_Q` and `_precond_grad`) in plain f32 loops on the
//! host. One factor Q_i per dimension of the (optionally flattened) parameter: an upper-triangular
//! matrix, or a vector for the dims timm keeps diagonal. timm's einsum expressions are mode
//! products: A = G ×_i Q_i, conj(B) = V ×_i Q_i⁻¹ (a triangular solve from the right), the terms
//! are the Gram matrices of A and B along each dim, and the preconditioned gradient is
//! G ×_i Q_iᵀQ_i. Every op rounds to f32 as timm's does; sums accumulate in f64.

/// `torch.finfo(torch.bfloat16).tiny`, the floor timm adds to the normalisers.
const TINY: f32 = f32::MIN_POSITIVE;

/// timm's `memory_save_mode`: which dims take a diagonal factor whatever their size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemorySave {
    /// None: every dim triangular (within the size and rank limits).
    Off,
    /// `one_diag`: the largest dim (the last of equal largest) diagonal.
    OneDiag,
    /// `smart_one_diag`: the largest dim diagonal when it is strictly the largest.
    SmartOneDiag,
    /// `all_diag`: every dim diagonal.
    AllDiag,
}

/// How a parameter's factors are chosen and initialised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FactorCfg {
    /// `max_size_triangular`: larger dims take a diagonal factor.
    pub max_size_triangular: usize,
    /// `min_ndim_triangular`: parameters of lower rank take diagonal factors only.
    pub min_ndim_triangular: usize,
    /// `memory_save_mode`.
    pub memory_save: MemorySave,
    /// `precond_init_scale`: the product of the initial factors' scales.
    pub init_scale: f64,
}

/// One dimension's factor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Factor {
    /// A diagonal, as a vector.
    Diag(Vec<f32>),
    /// An upper-triangular n × n matrix, row-major.
    Tri(Vec<f32>),
}

impl Factor {
    /// The stored values (the matrix row-major, zeros below the diagonal included).
    pub fn values(&self) -> &[f32] {
        match self {
            Factor::Diag(q) | Factor::Tri(q) => q,
        }
    }

    fn values_mut(&mut self) -> &mut [f32] {
        match self {
            Factor::Diag(q) | Factor::Tri(q) => q,
        }
    }
}

/// The factors of one parameter, over its (flattened) dims.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Precond {
    dims: Vec<usize>,
    /// One per dim.
    pub factors: Vec<Factor>,
}

/// The largest of `v` (torch's `norm(inf)` of a vector, as the max of absolute values).
fn max_abs(v: impl Iterator<Item = f32>) -> f32 {
    v.fold(0.0, |m, x| m.max(x.abs()))
}

/// (outer, n, inner): the extents before, at and after dim `i`.
fn split(dims: &[usize], i: usize) -> (usize, usize, usize) {
    let outer = dims[..i].iter().product();
    let inner = dims[i + 1..].iter().product();
    (outer, dims[i], inner)
}

/// Replaces every fiber of `x` along dim `i` by `f(fiber)`, in place.
fn map_fibers(x: &mut [f32], dims: &[usize], i: usize, mut f: impl FnMut(&mut [f32])) {
    let (outer, n, inner) = split(dims, i);
    let mut fiber = vec![0.0f32; n];
    for o in 0..outer {
        for r in 0..inner {
            let base = o * n * inner + r;
            fiber
                .iter_mut()
                .enumerate()
                .for_each(|(k, v)| *v = x[base + k * inner]);
            f(&mut fiber);
            fiber
                .iter()
                .enumerate()
                .for_each(|(k, v)| x[base + k * inner] = *v);
        }
    }
}

/// `Q·x` for upper-triangular `q` (n × n), in place.
fn tri_mul(q: &[f32], x: &mut [f32]) {
    let n = x.len();
    for a in 0..n {
        let row = &q[a * n..(a + 1) * n];
        x[a] = (a..n).map(|k| row[k] as f64 * x[k] as f64).sum::<f64>() as f32;
    }
}

/// `x·Q⁻¹` for upper-triangular `q` (n × n), in place (forward substitution).
fn tri_solve_right(q: &[f32], x: &mut [f32]) {
    let n = x.len();
    for k in 0..n {
        let s: f64 = (0..k).map(|j| x[j] as f64 * q[j * n + k] as f64).sum();
        x[k] = ((x[k] as f64 - s) as f32) / q[k * n + k];
    }
}

/// `M·x` for a dense n × n `m`, into `out`.
fn dense_mul(m: &[f32], x: &[f32], out: &mut [f32]) {
    let n = x.len();
    for (a, o) in out.iter_mut().enumerate() {
        let row = &m[a * n..(a + 1) * n];
        *o = row
            .iter()
            .zip(x)
            .map(|(&r, &v)| r as f64 * v as f64)
            .sum::<f64>() as f32;
    }
}

/// The Gram matrix of `x` along dim `i`: T[a, b] = Σ over the other dims of x[..a..]·x[..b..].
fn gram(x: &[f32], dims: &[usize], i: usize) -> Vec<f32> {
    let (outer, n, inner) = split(dims, i);
    let mut acc = vec![0.0f64; n * n];
    for block in x.chunks_exact(n * inner).take(outer) {
        for a in 0..n {
            let ra = &block[a * inner..(a + 1) * inner];
            for b in a..n {
                let rb = &block[b * inner..(b + 1) * inner];
                acc[a * n + b] += ra
                    .iter()
                    .zip(rb)
                    .map(|(&u, &v)| u as f64 * v as f64)
                    .sum::<f64>();
            }
        }
    }
    let mut t = vec![0.0f32; n * n];
    for a in 0..n {
        for b in a..n {
            t[a * n + b] = acc[a * n + b] as f32;
            t[b * n + a] = acc[a * n + b] as f32;
        }
    }
    t
}

/// The diagonal of [`gram`]: Σ over the other dims of x[..a..]².
fn sum_sq(x: &[f32], dims: &[usize], i: usize) -> Vec<f32> {
    let (_, n, inner) = split(dims, i);
    let mut acc = vec![0.0f64; n];
    for (j, &v) in x.iter().enumerate() {
        acc[(j / inner) % n] += v as f64 * v as f64;
    }
    acc.into_iter().map(|s| s as f32).collect()
}

/// The Euclidean norm of `v`, in f32.
fn norm2(v: &[f32]) -> f32 {
    (v.iter().map(|&x| x as f64 * x as f64).sum::<f64>() as f32).sqrt()
}

/// timm's `_norm_lower_bound`: a cheap lower bound on the spectral norm of the n × n `a`, from
/// its row or column of largest norm pushed through it once.
pub(crate) fn norm_lower_bound(a: &[f32], n: usize) -> f32 {
    let max = max_abs(a.iter().copied());
    if max <= 0.0 {
        return max;
    }
    let a: Vec<f32> = a.iter().map(|&v| v / max).collect();
    let at = |r: usize, c: usize| a[r * n + c] as f64;
    let sq = |r: usize, c: usize| {
        let v = a[r * n + c];
        v * v
    };
    let col_sums: Vec<f32> = (0..n)
        .map(|c| (0..n).map(|r| sq(r, c) as f64).sum::<f64>() as f32)
        .collect();
    let row_sums: Vec<f32> = (0..n)
        .map(|r| (0..n).map(|c| sq(r, c) as f64).sum::<f64>() as f32)
        .collect();
    // torch.max returns the first index of the largest value.
    let argmax = |v: &[f32]| {
        (1..n).fold(
            (v[0], 0),
            |(m, i), j| if v[j] > m { (v[j], j) } else { (m, i) },
        )
    };
    let ((value0, i), (value1, j)) = (argmax(&col_sums), argmax(&row_sums));
    let y: Vec<f32> = if value0 > value1 {
        // x = A[:, i]ᵀ·A, then ‖(x/‖x‖)·Aᵀ‖
        let x: Vec<f32> = (0..n)
            .map(|k| (0..n).map(|r| at(r, i) * at(r, k)).sum::<f64>() as f32)
            .collect();
        let xn = norm2(&x);
        let x: Vec<f32> = x.iter().map(|&v| v / xn).collect();
        (0..n)
            .map(|r| (0..n).map(|k| x[k] as f64 * at(r, k)).sum::<f64>() as f32)
            .collect()
    } else {
        // x = A·A[j], then ‖Aᵀ·(x/‖x‖)‖
        let x: Vec<f32> = (0..n)
            .map(|r| (0..n).map(|k| at(r, k) * at(j, k)).sum::<f64>() as f32)
            .collect();
        let xn = norm2(&x);
        let x: Vec<f32> = x.iter().map(|&v| v / xn).collect();
        (0..n)
            .map(|k| (0..n).map(|r| at(r, k) * x[r] as f64).sum::<f64>() as f32)
            .collect()
    };
    max * norm2(&y)
}

/// `q -= lr·(t1 − t2)·q / (max|t1 + t2| + tiny)` for a diagonal factor.
fn update_diag(q: &mut [f32], t1: &[f32], t2: &[f32], lr: f32) {
    let denom = max_abs(t1.iter().zip(t2).map(|(a, b)| a + b)) + TINY;
    for ((q, a), b) in q.iter_mut().zip(t1).zip(t2) {
        let tmp = (a - b) * lr * *q / denom;
        *q -= tmp;
    }
}

/// `q -= triu(lr·(t1 − t2)) / (‖t1 + t2‖₂ lower bound + tiny) · q` for a triangular factor.
fn update_tri(q: &mut [f32], t1: &[f32], t2: &[f32], lr: f32) {
    let n = (q.len() as f64).sqrt() as usize;
    let sum: Vec<f32> = t1.iter().zip(t2).map(|(a, b)| a + b).collect();
    let denom = norm_lower_bound(&sum, n) + TINY;
    let tmp: Vec<f32> = (0..n * n)
        .map(|k| match k % n >= k / n {
            true => (t1[k] - t2[k]) * lr / denom,
            false => 0.0,
        })
        .collect();
    let mut step = vec![0.0f32; n * n];
    for a in 0..n {
        for c in a..n {
            let s: f64 = (a..=c)
                .map(|b| tmp[a * n + b] as f64 * q[b * n + c] as f64)
                .sum();
            step[a * n + c] = s as f32;
        }
    }
    q.iter_mut().zip(&step).for_each(|(q, s)| *q -= s);
}

impl Precond {
    /// timm's `_init_Q_exprs` for a gradient of shape `shape` (a scalar as one element): the
    /// identity (or ones) times `init_scale^(1/rank)` per dim.
    pub fn new(shape: &[usize], cfg: &FactorCfg) -> Precond {
        let dims = match shape.is_empty() {
            true => vec![1],
            false => shape.to_vec(),
        };
        let scale = cfg.init_scale.powf(1.0 / dims.len() as f64) as f32;
        let factors = diagonal_dims(&dims, cfg)
            .into_iter()
            .zip(&dims)
            .map(|(diag, &n)| match diag {
                true => Factor::Diag(vec![scale; n]),
                false => Factor::Tri((0..n * n).map(|k| eye(k, n) * scale).collect()),
            })
            .collect();
        Precond { dims, factors }
    }

    /// These dims with restored factor values; None when a value count does not fit.
    pub fn with_values(mut self, values: &[Vec<f32>]) -> Option<Precond> {
        if values.len() != self.factors.len() {
            return None;
        }
        for (f, v) in self.factors.iter_mut().zip(values) {
            if f.values().len() != v.len() {
                return None;
            }
            f.values_mut().copy_from_slice(v);
        }
        Some(self)
    }

    /// One preconditioner update from `g` (momentum or gradient) and the noise `v`, both in the
    /// parameter's (flattened) row-major order.
    pub fn update(&mut self, g: &[f32], v: &[f32], precond_lr: f32) {
        let mut a = g.to_vec();
        let mut b = v.to_vec();
        for (i, f) in self.factors.iter().enumerate() {
            match f {
                Factor::Diag(q) => {
                    map_fibers(&mut a, &self.dims, i, |x| {
                        x.iter_mut().zip(q).for_each(|(x, q)| *x *= q)
                    });
                    map_fibers(&mut b, &self.dims, i, |x| {
                        x.iter_mut().zip(q).for_each(|(x, q)| *x /= q)
                    });
                }
                Factor::Tri(q) => {
                    map_fibers(&mut a, &self.dims, i, |x| tri_mul(q, x));
                    map_fibers(&mut b, &self.dims, i, |x| tri_solve_right(q, x));
                }
            }
        }
        let terms: Vec<(Vec<f32>, Vec<f32>)> = (0..self.factors.len())
            .map(|i| match &self.factors[i] {
                Factor::Diag(_) => (sum_sq(&a, &self.dims, i), sum_sq(&b, &self.dims, i)),
                Factor::Tri(_) => (gram(&a, &self.dims, i), gram(&b, &self.dims, i)),
            })
            .collect();
        for (f, (t1, t2)) in self.factors.iter_mut().zip(&terms) {
            match f {
                Factor::Diag(q) => update_diag(q, t1, t2, precond_lr),
                Factor::Tri(q) => update_tri(q, t1, t2, precond_lr),
            }
        }
    }

    /// The preconditioned `g`: G ×_i Q_iᵀQ_i.
    pub fn apply(&self, g: &[f32]) -> Vec<f32> {
        let mut x = g.to_vec();
        for (i, f) in self.factors.iter().enumerate() {
            match f {
                Factor::Diag(q) => map_fibers(&mut x, &self.dims, i, |x| {
                    x.iter_mut().zip(q).for_each(|(x, q)| *x *= q * q)
                }),
                Factor::Tri(q) => {
                    let p = gram_of_columns(q, self.dims[i]);
                    let mut out = vec![0.0f32; self.dims[i]];
                    map_fibers(&mut x, &self.dims, i, |x| {
                        dense_mul(&p, x, &mut out);
                        x.copy_from_slice(&out);
                    });
                }
            }
        }
        x
    }

    /// timm's `_balance_Q`: every factor rescaled to the geometric mean of their max-norms.
    pub fn balance(&mut self) {
        let norms: Vec<f32> = self
            .factors
            .iter()
            .map(|f| max_abs(f.values().iter().copied()))
            .collect();
        let prod: f32 = norms.iter().product();
        // torch's pow takes sqrt for an exponent of 0.5, powf otherwise.
        let mean = match norms.len() {
            1 => prod,
            2 => prod.sqrt(),
            k => prod.powf((1.0 / k as f64) as f32),
        };
        for (f, n) in self.factors.iter_mut().zip(norms) {
            let s = mean / n;
            f.values_mut().iter_mut().for_each(|v| *v *= s);
        }
    }
}

/// The identity's entry `k` of an n × n matrix.
fn eye(k: usize, n: usize) -> f32 {
    if k / n == k % n {
        1.0
    } else {
        0.0
    }
}

/// QᵀQ for the n × n `q`.
fn gram_of_columns(q: &[f32], n: usize) -> Vec<f32> {
    let mut p = vec![0.0f32; n * n];
    for r in 0..n {
        for c in r..n {
            let s: f64 = (0..n)
                .map(|a| q[a * n + r] as f64 * q[a * n + c] as f64)
                .sum();
            p[r * n + c] = s as f32;
            p[c * n + r] = s as f32;
        }
    }
    p
}

/// Which dims of `dims` take a diagonal factor (timm's `_init_Q_exprs`).
fn diagonal_dims(dims: &[usize], cfg: &FactorCfg) -> Vec<bool> {
    let rank = dims.len();
    let mut forced = vec![cfg.memory_save == MemorySave::AllDiag; rank];
    // numpy's argsort(shape)[::-1][0]: the last of the equal largest dims.
    let largest = (0..rank).max_by_key(|&i| (dims[i], i));
    let mut sorted = dims.to_vec();
    sorted.sort_unstable();
    let strictly = rank >= 2 && sorted[rank - 1] > sorted[rank - 2];
    match (cfg.memory_save, largest) {
        (MemorySave::OneDiag, Some(i)) => forced[i] = true,
        (MemorySave::SmartOneDiag, Some(i)) if strictly => forced[i] = true,
        _ => {}
    }
    dims.iter()
        .zip(forced)
        .map(|(&n, f)| n == 1 || n > cfg.max_size_triangular || rank < cfg.min_ndim_triangular || f)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed pseudo-random fill.
    fn fill(n: usize, seed: f32) -> Vec<f32> {
        (0..n)
            .map(|k| (k as f32 * 0.731 + seed).sin() * 1.3)
            .collect()
    }

    /// The spectral norm of a symmetric matrix by power iteration (f64).
    fn spectral(a: &[f32], n: usize) -> f64 {
        let mut x = vec![1.0f64; n];
        let mut s = 0.0;
        for _ in 0..500 {
            let y: Vec<f64> = (0..n)
                .map(|r| (0..n).map(|c| a[r * n + c] as f64 * x[c]).sum())
                .collect();
            s = y.iter().map(|v| v * v).sum::<f64>().sqrt();
            x = y.iter().map(|v| v / s).collect();
        }
        s
    }

    #[test]
    fn norm_lower_bound_is_below_and_near_the_spectral_norm() {
        let n = 7;
        let b = fill(n * n, 0.3);
        let a: Vec<f32> = (0..n * n)
            .map(|k| {
                let (r, c) = (k / n, k % n);
                (0..n).map(|j| b[r * n + j] * b[c * n + j]).sum()
            })
            .collect();
        let (lb, exact) = (norm_lower_bound(&a, n) as f64, spectral(&a, n));
        assert!(
            lb <= exact * (1.0 + 1e-6) && lb >= 0.5 * exact,
            "{lb} {exact}"
        );
    }

    #[test]
    fn solve_right_inverts_the_triangular_product() {
        let n = 5;
        let q: Vec<f32> = fill(n * n, 1.0)
            .iter()
            .enumerate()
            .map(|(k, v)| match (k / n, k % n) {
                (r, c) if r == c => 2.0 + v.abs(),
                (r, c) if c > r => *v,
                _ => 0.0,
            })
            .collect();
        let y = fill(n, 2.0);
        // x = y·Q, then solving x·Q⁻¹ gives y back.
        let mut x: Vec<f32> = (0..n)
            .map(|c| (0..n).map(|j| y[j] * q[j * n + c]).sum())
            .collect();
        tri_solve_right(&q, &mut x);
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b).abs() < 1e-5, "{x:?} {y:?}");
        }
    }

    #[test]
    fn memory_save_modes_pick_timms_diagonal_dims() {
        let cfg = |memory_save| FactorCfg {
            max_size_triangular: 6,
            min_ndim_triangular: 2,
            memory_save,
            init_scale: 1.0,
        };
        let dims = [6, 4, 4, 1];
        let pick = |m| diagonal_dims(&dims, &cfg(m));
        assert_eq!(pick(MemorySave::Off), [false, false, false, true]);
        assert_eq!(pick(MemorySave::OneDiag), [true, false, false, true]);
        assert_eq!(pick(MemorySave::SmartOneDiag), [true, false, false, true]);
        assert_eq!(pick(MemorySave::AllDiag), [true; 4]);
        let square = [4, 4];
        let one = diagonal_dims(&square, &cfg(MemorySave::OneDiag));
        assert_eq!(one, [false, true]);
        let smart = diagonal_dims(&square, &cfg(MemorySave::SmartOneDiag));
        assert_eq!(smart, [false, false]);
        assert_eq!(diagonal_dims(&[9, 3], &cfg(MemorySave::Off)), [true, false]);
        assert_eq!(diagonal_dims(&[5], &cfg(MemorySave::Off)), [true]);
    }
}
