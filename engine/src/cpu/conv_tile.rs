//! The register tile of the direct convolutions (see `direct_conv.rs`): up to [`MAX_ROWS`] rows
//! by 16 or 32 columns of f32 accumulators that live in AVX-512 registers for a whole reduction.
//!
//! Each step of the reduction broadcasts one A scalar per row and multiplies it into one or two
//! 16-lane B vectors. A and B are read through strides, so a convolution reads its input in place
//! with no im2col; the reduction is cut into [`Run`]s so one tile can sum over every kernel tap
//! (forward) or every row of output pixels (weight gradient).

/// Most rows one tile holds: 14 rows × 2 vectors leave 4 of the 32 registers for operands, and 14
/// divides the ResNet widths 56, 28, 14 and 7.
pub const MAX_ROWS: usize = 14;

/// Lanes of one accumulator vector; a tile is 16 or 32 columns wide.
pub const LANES: usize = 16;

use std::mem::MaybeUninit;
use std::ops::Range;

/// One stretch of a tile's reduction: `len` steps from element `a` of A and element `b` of B.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Offset of the first step's row-0 scalar in A.
    pub a: usize,
    /// Offset of the first step's B vector.
    pub b: usize,
    /// Steps.
    pub len: usize,
}

/// Strides of a tile's operands, in elements.
#[derive(Debug, Clone, Copy)]
pub struct Strides {
    /// From one tile row's A scalar to the next row's.
    pub a_row: usize,
    /// From one step's A scalar to the next step's.
    pub a_step: usize,
    /// From one step's B vector to the next step's.
    pub b_step: usize,
    /// From one tile row's output to the next row's.
    pub c_row: usize,
}

/// Where a tile's sums go: `c[r·c_row + j]` for its rows × cols.
#[derive(Debug)]
pub enum Output<'a> {
    /// Overwrite; the elements may be uninitialized (fresh outputs need no zero fill).
    Write(&'a mut [MaybeUninit<f32>]),
    /// Add to the elements already there.
    Add(&'a mut [f32]),
}

impl Output<'_> {
    /// The same output from element `from` on.
    pub fn tail(&mut self, from: usize) -> Output<'_> {
        match self {
            Output::Write(c) => Output::Write(&mut c[from..]),
            Output::Add(c) => Output::Add(&mut c[from..]),
        }
    }

    fn len(&self) -> usize {
        match self {
            Output::Write(c) => c.len(),
            Output::Add(c) => c.len(),
        }
    }

    fn as_mut_ptr(&mut self) -> *mut f32 {
        match self {
            Output::Write(c) => c.as_mut_ptr().cast(),
            Output::Add(c) => c.as_mut_ptr(),
        }
    }
}

/// Whether this CPU runs the tile (x86-64 with AVX-512F), unless `KILN_NO_AVX512` is set to
/// anything but `0` (the portable paths then run, as under Valgrind, which lacks AVX-512).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static AVX512: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AVX512.get_or_init(|| {
            let off = std::env::var("KILN_NO_AVX512").is_ok_and(|v| v != "0");
            !off && std::arch::is_x86_feature_detected!("avx512f")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Asks the CPU to bring `data` into L2 ahead of its use: a hint that changes no result.
pub fn prefetch_l2(data: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in data.chunks(LANES) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        // SAFETY: SSE is part of x86-64, and a prefetch reads nothing architecturally.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// `c[r·c_row + j] (+)= Σ_runs Σ_k a[run.a + r·a_row + k·a_step] · b[run.b + k·b_step + j]` for
/// `r < rows` and `j < cols`, written or added as `c` says.
///
/// # Panics
/// If the CPU lacks AVX-512F, if `rows` is not in 1..=[`MAX_ROWS`] or `cols` not 16 or 32, if
/// neither `a_row` nor `a_step` is 1, or if any operand would be read or written out of bounds.
pub fn tile(
    (rows, cols): (usize, usize),
    a: &[f32],
    b: &[f32],
    runs: &[Run],
    st: Strides,
    mut c: Output,
) {
    assert!((1..=MAX_ROWS).contains(&rows) && (cols == LANES || cols == 2 * LANES));
    assert!(
        st.a_row == 1 || st.a_step == 1,
        "A must be contiguous along rows or steps"
    );
    assert!(
        (rows - 1) * st.c_row + cols <= c.len(),
        "tile output out of bounds"
    );
    for run in runs.iter().filter(|run| run.len > 0) {
        let last = run.len - 1;
        let a_end = run.a + (rows - 1) * st.a_row + last * st.a_step;
        assert!(a_end < a.len(), "tile run reads A out of bounds");
        assert!(
            run.b + last * st.b_step + cols <= b.len(),
            "tile run reads B out of bounds"
        );
    }
    assert!(available(), "the convolution tile needs AVX-512F");
    #[cfg(target_arch = "x86_64")]
    {
        let kernel = if cols == LANES {
            avx512::pick::<1>(rows, st.a_row)
        } else {
            avx512::pick::<2>(rows, st.a_row)
        };
        let accumulate = matches!(c, Output::Add(_));
        // SAFETY: AVX-512F is present (asserted above), and the asserts bound every element the
        // kernel reads (run offsets plus row and step strides) and writes (rows × cols of `c`);
        // it reads `c` only when adding, when `c` is initialized.
        unsafe { kernel(a.as_ptr(), b.as_ptr(), runs, st, c.as_mut_ptr(), accumulate) }
    }
}

/// `range` cut into the fewest tiles of at most [`MAX_ROWS`]: (first, len) pairs.
pub fn balanced_tiles(range: Range<usize>) -> impl Iterator<Item = (usize, usize)> {
    let tiles = range.len().div_ceil(MAX_ROWS);
    balanced(range, tiles).map(|r| (r.start, r.len()))
}

/// `range` cut into `parts` consecutive ranges whose lengths differ by at most one.
pub fn balanced(range: Range<usize>, parts: usize) -> impl Iterator<Item = Range<usize>> {
    let parts = parts.max(1);
    let (base, extra) = (range.len() / parts, range.len() % parts);
    (0..parts).scan(range.start, move |first, i| {
        let start = *first;
        *first += base + usize::from(i < extra);
        Some(start..*first)
    })
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Run, Strides, LANES};
    use std::arch::x86_64::*;

    type Kernel = unsafe fn(*const f32, *const f32, &[Run], Strides, *mut f32, bool);

    /// The kernel for `rows` rows of `NV` vectors and A stride `row` between rows. Strides of 1
    /// and of the common channel counts are compiled in, so row addresses are constant
    /// displacements; others are read at run time.
    pub(super) fn pick<const NV: usize>(rows: usize, row: usize) -> Kernel {
        macro_rules! by_rows {
            ($row:literal: $($r:literal)*) => {
                match rows {
                    $($r => kernel::<$r, NV, $row> as Kernel,)*
                    _ => unreachable!("tile rows are checked by the caller"),
                }
            };
        }
        match row {
            1 => by_rows!(1: 1 2 3 4 5 6 7 8 9 10 11 12 13 14),
            64 => by_rows!(64: 1 2 3 4 5 6 7 8 9 10 11 12 13 14),
            128 => by_rows!(128: 1 2 3 4 5 6 7 8 9 10 11 12 13 14),
            256 => by_rows!(256: 1 2 3 4 5 6 7 8 9 10 11 12 13 14),
            _ => by_rows!(0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14),
        }
    }

    /// # Safety
    /// AVX-512F must be present and every address the runs and strides reach must be in bounds.
    /// `ROW` is the A stride between rows when known at compile time (1 means `a_step` is the
    /// runtime stride), else 0 (then `a_row` is, and `a_step` is 1).
    #[target_feature(enable = "avx512f")]
    unsafe fn kernel<const R: usize, const NV: usize, const ROW: usize>(
        a: *const f32,
        b: *const f32,
        runs: &[Run],
        st: Strides,
        c: *mut f32,
        accumulate: bool,
    ) {
        let (row, step) = match ROW {
            0 => (st.a_row, 1),
            1 => (1, st.a_step),
            _ => (ROW, 1),
        };
        let mut acc = [[_mm512_setzero_ps(); NV]; R];
        for run in runs {
            // SAFETY: the caller bounds every step of every run.
            unsafe {
                let (mut ap, mut bp) = (a.add(run.a), b.add(run.b));
                for _ in 0..run.len {
                    fma_step(&mut acc, ap, row, bp);
                    ap = ap.add(step);
                    bp = bp.add(st.b_step);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (v, &sum) in acc.iter().enumerate() {
                // SAFETY: the caller bounds the rows × cols block of `c`.
                unsafe {
                    let p = c.add(r * st.c_row + v * LANES);
                    let sum = if accumulate {
                        _mm512_add_ps(sum, _mm512_loadu_ps(p))
                    } else {
                        sum
                    };
                    _mm512_storeu_ps(p, sum);
                }
            }
        }
    }

    /// One step: `acc[r][v] += a[r·row] · b[16·v..]`.
    ///
    /// # Safety
    /// AVX-512F must be present and the R scalars and NV vectors in bounds.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn fma_step<const R: usize, const NV: usize>(
        acc: &mut [[__m512; NV]; R],
        a: *const f32,
        row: usize,
        b: *const f32,
    ) {
        // SAFETY: the caller bounds the scalars and vectors read.
        unsafe {
            let mut bv = [_mm512_setzero_ps(); NV];
            for (v, bv) in bv.iter_mut().enumerate() {
                *bv = _mm512_loadu_ps(b.add(v * LANES));
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(r * row));
                for (acc, &bv) in acc.iter_mut().zip(&bv) {
                    *acc = _mm512_fmadd_ps(av, bv, *acc);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tile against a naive sum, for every row count, both widths, accumulate on and off,
    /// and each compiled-in row stride (1, 64, 128, 256) as well as one read at run time (40).
    #[test]
    fn tile_matches_a_naive_sum() {
        if !available() {
            return;
        }
        let value = |i: usize| ((i * 7919) % 23) as f32 / 8.0 - 1.0;
        let a: Vec<f32> = (0..20_000).map(value).collect();
        let b: Vec<f32> = (0..4_000).map(|i| value(i + 5)).collect();
        let runs = [
            Run { a: 3, b: 1, len: 5 },
            Run { a: 0, b: 0, len: 0 },
            Run {
                a: 9,
                b: 70,
                len: 6,
            },
        ];
        for (a_row, a_step) in [(1, 33), (64, 1), (128, 1), (256, 1), (40, 1)] {
            for rows in 1..=MAX_ROWS {
                for cols in [LANES, 2 * LANES] {
                    for accumulate in [false, true] {
                        let st = Strides {
                            a_row,
                            a_step,
                            b_step: 37,
                            c_row: 50,
                        };
                        let mut c: Vec<f32> = (0..rows * 50).map(|i| value(i + 11)).collect();
                        let mut expected = c.clone();
                        for r in 0..rows {
                            for j in 0..cols {
                                let sum: f32 = runs
                                    .iter()
                                    .flat_map(|run| (0..run.len).map(move |k| (run, k)))
                                    .map(|(run, k)| {
                                        a[run.a + r * a_row + k * a_step]
                                            * b[run.b + k * st.b_step + j]
                                    })
                                    .sum();
                                let e = &mut expected[r * st.c_row + j];
                                *e = if accumulate { *e + sum } else { sum };
                            }
                        }
                        let out = if accumulate {
                            Output::Add(&mut c)
                        } else {
                            // SAFETY: f32 and MaybeUninit<f32> have the same layout, and the
                            // tile only writes initialized values.
                            Output::Write(unsafe {
                                &mut *(c.as_mut_slice() as *mut [f32] as *mut [MaybeUninit<f32>])
                            })
                        };
                        tile((rows, cols), &a, &b, &runs, st, out);
                        for (i, (x, y)) in c.iter().zip(&expected).enumerate() {
                            assert!(
                                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                                "a_row {a_row}, {rows}x{cols}, accumulate {accumulate}: \
                                 element {i} is {x}, expected {y}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Bounds are checked before anything runs (and before the CPU check, so on any machine).
    #[test]
    #[should_panic(expected = "out of bounds")]
    fn a_run_past_the_end_of_b_panics() {
        let (a, b, mut c) = (vec![0f32; 64], vec![0f32; 64], vec![0f32; 32]);
        let runs = [Run {
            a: 0,
            b: 40,
            len: 1,
        }];
        let st = Strides {
            a_row: 1,
            a_step: 1,
            b_step: 1,
            c_row: 32,
        };
        tile((1, 32), &a, &b, &runs, st, Output::Add(&mut c));
    }
}
