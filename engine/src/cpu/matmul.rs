//! Matrix products on the `gemm` crate (AVX-512 kernels with feature `x86-v4`).

use super::float_map2;
use crate::{CpuStorage, Error, Layout, Result};
use gemm::Parallelism;
use rayon::prelude::*;

/// A read-only strided matrix inside a slice.
#[derive(Clone, Copy)]
pub struct MatRef<'a, T> {
    /// The backing elements.
    pub data: &'a [T],
    /// Offset of element (0, 0).
    pub offset: usize,
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl<T> MatRef<'_, T> {
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || self.offset + (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// dst[m×n] (row-major, row stride `ld`) = lhs[m×k] · rhs[k×n], or += when `accumulate`.
pub fn gemm<T: 'static + Copy + num_traits::Zero + num_traits::One>(
    dims: [usize; 3],
    dst: &mut [T],
    ld: usize,
    lhs: MatRef<T>,
    rhs: MatRef<T>,
    accumulate: bool,
    parallel: bool,
) {
    let [m, n, k] = dims;
    assert!(
        lhs.fits(m, k) && rhs.fits(k, n),
        "gemm operands out of bounds"
    );
    assert!(
        m == 0 || n == 0 || (m - 1) * ld + n <= dst.len(),
        "gemm destination out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    let par = if parallel {
        Parallelism::Rayon(rayon::current_num_threads())
    } else {
        Parallelism::None
    };
    // SAFETY: the asserts above keep every element gemm touches inside the three slices, and `dst`
    // is borrowed mutably so nothing else aliases it.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            ld as isize,
            accumulate,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.cs as isize,
            rhs.rs as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            par,
        )
    }
}

/// Batched a[b, m, k] · b[b, k, n] -> row-major [b, m, n]; operands may be strided or broadcast.
pub fn bmm(a: (&CpuStorage, &Layout), b: (&CpuStorage, &Layout)) -> Result<CpuStorage> {
    let (la, lb) = (a.1, b.1);
    let (&[batch, m, k], &[_, _, n]) = (la.shape(), lb.shape()) else {
        return Err(Error::ShapeMismatch {
            op: "matmul",
            lhs: la.shape().to_vec(),
            rhs: lb.shape().to_vec(),
        });
    };
    let (sa, sb) = (la.strides(), lb.strides());
    Ok(float_map2!("matmul", a.0, b.0, |x, y: T| {
        let mut out = vec![T::default(); batch * m * n];
        let run = |i: usize, dst: &mut [T], parallel: bool| {
            let lhs = MatRef {
                data: x.as_slice(),
                offset: la.offset() + i * sa[0],
                rs: sa[1],
                cs: sa[2],
            };
            let rhs = MatRef {
                data: y.as_slice(),
                offset: lb.offset() + i * sb[0],
                rs: sb[1],
                cs: sb[2],
            };
            gemm([m, n, k], dst, n, lhs, rhs, false, parallel);
        };
        if batch >= rayon::current_num_threads() && m * n > 0 {
            out.par_chunks_mut(m * n)
                .enumerate()
                .for_each(|(i, dst)| run(i, dst, false));
        } else {
            for (i, dst) in out.chunks_mut((m * n).max(1)).enumerate().take(batch) {
                run(i, dst, true);
            }
        }
        out
    }))
}
