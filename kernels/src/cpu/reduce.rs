//! Reductions over the rows of a dense `[rows, len]` view (and over the columns of a
//! `[len, cols]` one). Twin of `cuda/reduce.cu`.

use super::{c, f64_of, Real, PAR_GRAIN};
use rayon::prelude::*;

/// A reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// Σ x
    Sum,
    /// max x
    Max,
    /// min x
    Min,
}

impl ReduceOp {
    /// The op's name.
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
        }
    }
}

/// `out\[r\] = reduce(x[r, ..len])` for every row, rows in parallel (and, when there are fewer
/// rows than threads, pieces of each row in parallel).
pub fn reduce_rows<T: Real>(op: ReduceOp, x: &[T], len: usize, out: &mut [T]) {
    if out.len() < rayon::current_num_threads() && len > PAR_GRAIN {
        for (r, o) in out.iter_mut().enumerate() {
            // Combined in order, not by `reduce`, whose grouping follows work-stealing.
            let pieces: Vec<T> = x[r * len..][..len]
                .par_chunks(PAR_GRAIN)
                .map(|piece| op.over(piece))
                .collect();
            *o = pieces
                .into_iter()
                .fold(op.identity(), |a, b| op.combine(a, b));
        }
        return;
    }
    let grain = (PAR_GRAIN / len.max(1)).max(1);
    out.par_chunks_mut(grain)
        .enumerate()
        .for_each(|(task, out)| {
            for (i, o) in out.iter_mut().enumerate() {
                *o = op.over(&x[(task * grain + i) * len..][..len]);
            }
        });
}

/// `out\[c\] = reduce(x[.., c])` over the `len` rows of a dense `[len, cols]` view: the sum over
/// leading dims that bias and scale gradients need, without transposing `x` first. Blocks of
/// rows reduce in parallel into partial rows, combined in block order (deterministic).
pub fn reduce_cols<T: Real>(op: ReduceOp, x: &[T], len: usize, out: &mut [T]) {
    if op == ReduceOp::Sum {
        return sum_cols(x, len, out);
    }
    let cols = out.len();
    let block_rows = (PAR_GRAIN / cols.max(1)).max(1);
    let partials: Vec<Vec<T>> = x[..len * cols]
        .par_chunks((block_rows * cols).max(1))
        .map(|block| {
            let mut acc = vec![op.identity(); cols];
            for row in block.chunks_exact(cols) {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a = op.combine(*a, v);
                }
            }
            acc
        })
        .collect();
    out.fill(op.identity());
    for partial in &partials {
        for (o, &p) in out.iter_mut().zip(partial) {
            *o = op.combine(*o, p);
        }
    }
}

/// `reduce_cols` of a sum, accumulated in f64 in blocks of rows (in parallel), the blocks combined
/// in order: a bias gradient summed over the rows of a batch of tokens keeps float32's precision
/// whatever the number of rows.
fn sum_cols<T: Real>(x: &[T], len: usize, out: &mut [T]) {
    let cols = out.len();
    let block_rows = (PAR_GRAIN / cols.max(1)).max(1);
    let partials: Vec<Vec<f64>> = x[..len * cols]
        .par_chunks((block_rows * cols).max(1))
        .map(|block| {
            let mut acc = vec![0f64; cols];
            for row in block.chunks_exact(cols) {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += f64_of(v);
                }
            }
            acc
        })
        .collect();
    let mut total = vec![0f64; cols];
    for partial in &partials {
        for (t, p) in total.iter_mut().zip(partial) {
            *t += p;
        }
    }
    for (o, t) in out.iter_mut().zip(total) {
        *o = c(t);
    }
}

impl ReduceOp {
    /// The reduction of an empty slice.
    fn identity<T: Real>(self) -> T {
        match self {
            ReduceOp::Sum => T::zero(),
            ReduceOp::Max => T::neg_infinity(),
            ReduceOp::Min => T::infinity(),
        }
    }

    /// Two partial results combined.
    fn combine<T: Real>(self, a: T, b: T) -> T {
        match self {
            ReduceOp::Sum => a + b,
            ReduceOp::Max => nan_max(a, b),
            ReduceOp::Min => nan_min(a, b),
        }
    }

    /// The reduction of `x`.
    fn over<T: Real>(self, x: &[T]) -> T {
        match self {
            ReduceOp::Sum => sum(x),
            _ => x.iter().fold(self.identity(), |a, &b| self.combine(a, b)),
        }
    }
}

/// Σ x, in 16 lanes of f64 partial sums (vectorized; float32 input loses nothing to the sum's
/// length, as PyTorch's cascaded sums do not).
pub fn sum<T: Real>(x: &[T]) -> T {
    const LANES: usize = 16;
    let mut acc = [0f64; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for ch in chunks {
        for (a, &v) in acc.iter_mut().zip(ch) {
            *a += f64_of(v);
        }
    }
    c(acc.iter().sum::<f64>() + tail.iter().map(|&v| f64_of(v)).sum::<f64>())
}

/// Index of the max (first on ties, NaN wins as PyTorch) in each row.
pub fn argmax_rows<T: Real>(x: &[T], len: usize, out: &mut [i64]) {
    out.par_iter_mut().enumerate().for_each(|(r, o)| {
        let row = &x[r * len..][..len];
        let mut best = 0;
        for (i, &v) in row.iter().enumerate() {
            if v > row[best] || (v.is_nan() && !row[best].is_nan()) {
                best = i;
            }
        }
        *o = best as i64;
    });
}

#[inline(always)]
fn nan_max<T: Real>(a: T, b: T) -> T {
    if a.is_nan() || b.is_nan() {
        T::nan()
    } else {
        a.max(b)
    }
}

#[inline(always)]
fn nan_min<T: Real>(a: T, b: T) -> T {
    if a.is_nan() || b.is_nan() {
        T::nan()
    } else {
        a.min(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduce_cols_matches_reduce_rows_of_the_transpose() {
        for (len, cols) in [(1, 1), (7, 3), (1000, 5), (33, 1111), (40000, 2)] {
            let x: Vec<f64> = (0..len * cols)
                .map(|i| ((i * 37) % 101) as f64 - 50.0)
                .collect();
            let xt: Vec<f64> = (0..cols * len)
                .map(|i| x[(i % len) * cols + i / len])
                .collect();
            for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min] {
                let (mut got, mut want) = (vec![0.0; cols], vec![0.0; cols]);
                reduce_cols(op, &x, len, &mut got);
                reduce_rows(op, &xt, len, &mut want);
                assert_eq!(got, want, "{op:?} over [{len}, {cols}]");
            }
        }
    }
}
