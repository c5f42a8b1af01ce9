//! Reductions over the rows of a dense `[rows, len]` view. Twin of `cuda/reduce.cu`.

use super::{Real, PAR_GRAIN};
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

/// `out\[r\] = reduce(x[r, ..len])` for every row, rows in parallel.
pub fn reduce_rows<T: Real>(op: ReduceOp, x: &[T], len: usize, out: &mut [T]) {
    let grain = (PAR_GRAIN / len.max(1)).max(1);
    out.par_chunks_mut(grain)
        .enumerate()
        .for_each(|(task, out)| {
            for (i, o) in out.iter_mut().enumerate() {
                let row = &x[(task * grain + i) * len..][..len];
                *o = match op {
                    ReduceOp::Sum => sum(row),
                    ReduceOp::Max => row.iter().copied().fold(T::neg_infinity(), nan_max),
                    ReduceOp::Min => row.iter().copied().fold(T::infinity(), nan_min),
                };
            }
        });
}

/// Σ x, in blocks of partial sums (fast and accurate: the error grows with log n, not n).
pub fn sum<T: Real>(x: &[T]) -> T {
    const LANES: usize = 16;
    let mut acc = [T::zero(); LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for ch in chunks {
        for (a, &v) in acc.iter_mut().zip(ch) {
            *a += v;
        }
    }
    acc.iter().copied().sum::<T>() + tail.iter().copied().sum::<T>()
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
