//! f32 matrix transposes in 16×16 register blocks on AVX-512, for repacking weights into the
//! direct convolution's panels (done element by element it took 8 % of a 512-channel forward).

use super::conv_tile::{available, LANES};

/// `dst[i·dst_stride + j] = src[j·src_stride + i]` for `j < rows`, `i < cols`: the `rows × cols`
/// matrix in `src` written transposed into `dst`. Columns past the last multiple of 16 (an RGB
/// stem's 147 taps) are copied one by one.
///
/// # Panics
/// If the CPU lacks AVX-512F, if `rows` is not a multiple of 16, or if either matrix reaches
/// past its slice.
pub fn transpose(
    src: &[f32],
    src_stride: usize,
    [rows, cols]: [usize; 2],
    dst: &mut [f32],
    dst_stride: usize,
) {
    assert!(
        rows.is_multiple_of(LANES),
        "transpose of {rows}×{cols}: the rows must be a multiple of {LANES}"
    );
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        (rows - 1) * src_stride + cols <= src.len() && (cols - 1) * dst_stride + rows <= dst.len(),
        "transpose of {rows}×{cols} reaches past its source or destination"
    );
    assert!(available(), "the block transpose needs AVX-512F");
    let blocked = cols - cols % LANES;
    for i in blocked..cols {
        for j in 0..rows {
            dst[i * dst_stride + j] = src[j * src_stride + i];
        }
    }
    #[cfg(target_arch = "x86_64")]
    for i in (0..blocked).step_by(LANES) {
        for j in (0..rows).step_by(LANES) {
            // SAFETY: AVX-512F is present; the block's 16 source rows start at
            // (j + r)·src_stride + i and its 16 destination rows at (i + r)·dst_stride + j, all
            // 16 wide and inside the slices by the bounds asserted above.
            unsafe {
                avx512::block(
                    src.as_ptr().add(j * src_stride + i),
                    src_stride,
                    dst.as_mut_ptr().add(i * dst_stride + j),
                    dst_stride,
                )
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// Transposes the 16×16 block at `src` (row stride `ss`) into `dst` (row stride `ds`).
    ///
    /// # Safety
    /// AVX-512F must be present, and 16 rows of 16 floats must be readable at `src` and
    /// writable at `dst` with those strides.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn block(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
        // SAFETY: the caller bounds the 16 rows read and written.
        let r: [__m512; 16] = std::array::from_fn(|i| unsafe { _mm512_loadu_ps(src.add(i * ss)) });
        // Pairs of rows interleaved: t[2p] holds columns 4L, 4L+1 and t[2p+1] columns 4L+2,
        // 4L+3 of rows 2p, 2p+1 in 128-bit lane L.
        let t: [__m512; 16] = std::array::from_fn(|i| {
            let (a, b) = (r[i & !1], r[i | 1]);
            if i % 2 == 0 {
                _mm512_unpacklo_ps(a, b)
            } else {
                _mm512_unpackhi_ps(a, b)
            }
        });
        // Quads: u[4g + k] holds column 4L + k of rows 4g..4g+4 in lane L.
        let u: [__m512; 16] = std::array::from_fn(|i| {
            let (g, k) = (i / 4, i % 4);
            let (a, b) = (t[4 * g + k / 2], t[4 * g + 2 + k / 2]);
            if k % 2 == 0 {
                _mm512_shuffle_ps::<0x44>(a, b)
            } else {
                _mm512_shuffle_ps::<0xEE>(a, b)
            }
        });
        // Lanes regrouped: v[k][h] pairs quads (0,1) and (2,3) for lanes 2h, 2h+1; the output
        // row 4L + k takes lane L of every quad.
        for k in 0..4 {
            let half = |g: usize, high: bool| {
                let (a, b) = (u[4 * g + k], u[4 * g + 4 + k]);
                if high {
                    _mm512_shuffle_f32x4::<0xEE>(a, b)
                } else {
                    _mm512_shuffle_f32x4::<0x44>(a, b)
                }
            };
            for (h, high) in [false, true].into_iter().enumerate() {
                let (lo, hi) = (half(0, high), half(2, high));
                let rows = [
                    _mm512_shuffle_f32x4::<0x88>(lo, hi),
                    _mm512_shuffle_f32x4::<0xDD>(lo, hi),
                ];
                for (l, row) in rows.into_iter().enumerate() {
                    let out = 4 * (2 * h + l) + k;
                    // SAFETY: the caller bounds the 16 rows written.
                    unsafe { _mm512_storeu_ps(dst.add(out * ds), row) };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole 16×16 blocks, and columns past them (147 = 9·16 + 3, a 7×7 RGB stem's taps).
    #[test]
    fn transpose_matches_element_by_element() {
        if !available() {
            return;
        }
        for [rows, cols, ss, ds] in [[48, 32, 37, 53], [32, 147, 150, 40]] {
            let src: Vec<f32> = (0..rows * ss).map(|i| i as f32).collect();
            let mut dst = vec![-1.0; cols * ds];
            transpose(&src, ss, [rows, cols], &mut dst, ds);
            for i in 0..cols {
                for j in 0..ds {
                    let expected = if j < rows { src[j * ss + i] } else { -1.0 };
                    assert_eq!(dst[i * ds + j], expected, "{rows}×{cols}: dst[{i}][{j}]");
                }
            }
        }
    }
}
