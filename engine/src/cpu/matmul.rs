//! Matrix products on the `gemm` crate (AVX-512 kernels with feature `x86-v4`).

use super::float_map2;
use crate::{CpuStorage, Error, Layout, Result};
use gemm::Parallelism;
use rayon::prelude::*;
use std::mem::MaybeUninit;

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

/// The matrix in `data` whose element (i, j) is `data[offset + i·rs + j·cs]`.
pub fn mat<T>(data: &[T], offset: usize, rs: usize, cs: usize) -> MatRef<'_, T> {
    MatRef {
        data,
        offset,
        rs,
        cs,
    }
}

impl<T> MatRef<'_, T> {
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || self.offset + (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// Multiply-adds below which one product is not worth splitting across threads.
const PAR_MIN_MACS: usize = 1 << 21;

/// dst[m×n] (row-major, row stride `ld`) = lhs[m×k] · rhs[k×n], or += when `accumulate`.
///
/// With `parallel`, C is cut into one band per rayon thread along its longer side and each band
/// runs single-threaded: `gemm`'s own threading scales poorly on the conv shapes (64×576 by a long
/// k ran 1.5× faster split this way on 2 cores, square products equally fast).
pub fn gemm<T: Element>(
    dims: [usize; 3],
    dst: &mut [T],
    ld: usize,
    lhs: MatRef<T>,
    rhs: MatRef<T>,
    accumulate: bool,
    parallel: bool,
) {
    // SAFETY: `dst` is an exclusive, initialized slice of dst.len() elements.
    unsafe {
        gemm_into(
            dims,
            (dst.as_mut_ptr(), dst.len()),
            ld,
            lhs,
            rhs,
            accumulate,
            parallel,
        )
    }
}

/// The element types [`gemm()`] multiplies (f32 and f64 in practice).
pub trait Element: 'static + Copy + Send + Sync + num_traits::Zero + num_traits::One {}
impl<T: 'static + Copy + Send + Sync + num_traits::Zero + num_traits::One> Element for T {}

/// [`gemm()`] into raw memory `dst` = (pointer, length). Without `accumulate` every element of the
/// m×n block is written and none is read, so the memory may be uninitialized (fresh outputs
/// need no zero fill).
///
/// # Safety
/// `dst.0` must be valid for writes of `dst.1` elements, and for reads too when `accumulate`, and
/// nothing else may access that memory during the call.
unsafe fn gemm_into<T: Element>(
    [m, n, k]: [usize; 3],
    (dst, dst_len): (*mut T, usize),
    ld: usize,
    lhs: MatRef<T>,
    rhs: MatRef<T>,
    accumulate: bool,
    parallel: bool,
) {
    assert!(
        lhs.fits(m, k) && rhs.fits(k, n),
        "gemm operands out of bounds"
    );
    assert!(
        m == 0 || n == 0 || (m - 1) * ld + n <= dst_len,
        "gemm destination out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    let bands = if parallel && m * n * k >= PAR_MIN_MACS {
        rayon::current_num_threads()
    } else {
        1
    };
    let by_rows = m >= n;
    let len = if by_rows { m } else { n };
    // Bands start on multiples of 16 so the vector tiles inside them stay aligned to C's columns.
    let step = len.div_ceil(bands).next_multiple_of(16);
    let c = SendPtr(dst);
    let band = |start: usize| {
        let len = step.min(len - start);
        let (rows, cols, c_start, lhs, rhs) = if by_rows {
            let lhs = MatRef {
                offset: lhs.offset + start * lhs.rs,
                ..lhs
            };
            (len, n, start * ld, lhs, rhs)
        } else {
            let rhs = MatRef {
                offset: rhs.offset + start * rhs.cs,
                ..rhs
            };
            (m, len, start, lhs, rhs)
        };
        // SAFETY: the asserts above keep every element gemm touches inside the operand slices
        // and the `dst_len` elements the caller vouches for (read only when `accumulate`); bands
        // write disjoint rows or columns of them and only read the operands.
        unsafe {
            gemm::gemm(
                rows,
                cols,
                k,
                c.at(c_start),
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
                Parallelism::None,
            )
        }
    };
    if step >= len {
        band(0)
    } else {
        (0..len).into_par_iter().step_by(step).for_each(band)
    }
}

/// C's pointer handed to the threads of one [`gemm`]; each writes only its own band through it.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: the bands of one `gemm` call write disjoint elements and the borrows it holds outlive them.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer `i` elements on (a method, so closures capture the whole `SendPtr`).
    fn at(self, i: usize) -> *mut T {
        self.0.wrapping_add(i)
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
        let mut out: Vec<T> = Vec::with_capacity(batch * m * n);
        let run = |i: usize, dst: &mut [MaybeUninit<T>], parallel: bool| {
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
            let dst = (dst.as_mut_ptr().cast::<T>(), dst.len());
            // SAFETY: `dst` is this product's own m×n chunk of the output's spare capacity, and
            // without accumulate gemm only writes it.
            unsafe { gemm_into([m, n, k], dst, n, lhs, rhs, false, parallel) };
        };
        let spare = &mut out.spare_capacity_mut()[..batch * m * n];
        if batch >= rayon::current_num_threads() && m * n > 0 {
            spare
                .par_chunks_mut(m * n)
                .enumerate()
                .for_each(|(i, dst)| run(i, dst, false));
        } else {
            for (i, dst) in spare.chunks_mut((m * n).max(1)).enumerate().take(batch) {
                run(i, dst, true);
            }
        }
        // SAFETY: the chunks tile the first batch·m·n elements and each product wrote all of its
        // chunk (when m·n is 0 there is nothing to write).
        unsafe { out.set_len(batch * m * n) };
        out
    }))
}
