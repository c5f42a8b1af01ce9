//! The CPU backend: glue from (storage, layout) to the kernels in `kiln_kernels::cpu`, plus
//! matrix products and convolutions on the `gemm` crate. Computes in f32 or f64; the tensor layer
//! converts f16/bf16 to f32 around compute ops.

pub mod alloc;
pub mod attention;
pub mod bce;
pub mod conv;
pub mod conv_tile;
pub mod depthwise;
pub mod direct_conv;
pub mod elementwise;
pub mod grouped_conv;
pub mod heap;
pub mod implicit_gemm;
pub mod layer_norm;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod random;
pub mod reduce;
pub mod scratch;
pub mod small_image_conv;
pub mod softmax;
pub mod squeeze_excite;
pub mod threads;
pub mod transpose;
pub mod winograd;

use crate::{CpuStorage, Layout};
use kiln_kernels::cpu::copy::copy_strided;
use kiln_kernels::cpu::elementwise::Strided;
use std::borrow::Cow;

/// Runs `$body` once per float dtype with `$v` bound to the slice and `$T` to its type, wrapping a
/// returned `Vec<$T>` back into storage; other dtypes are an error naming `$op`.
macro_rules! float_map {
    ($op:expr, $s:expr, |$v:ident : $T:ident| $body:expr) => {
        match $s {
            $crate::CpuStorage::F32($v) => {
                #[allow(dead_code)]
                type $T = f32;
                $crate::CpuStorage::F32($body)
            }
            $crate::CpuStorage::F64($v) => {
                #[allow(dead_code)]
                type $T = f64;
                $crate::CpuStorage::F64($body)
            }
            other => {
                return Err($crate::Error::UnsupportedDType {
                    op: $op,
                    dtype: other.dtype(),
                })
            }
        }
    };
}
pub(crate) use float_map;

/// Like [`float_map!`] over two storages of the same float dtype.
macro_rules! float_map2 {
    ($op:expr, $a:expr, $b:expr, |$x:ident, $y:ident : $T:ident| $body:expr) => {
        match ($a, $b) {
            ($crate::CpuStorage::F32($x), $crate::CpuStorage::F32($y)) => {
                #[allow(dead_code)]
                type $T = f32;
                $crate::CpuStorage::F32($body)
            }
            ($crate::CpuStorage::F64($x), $crate::CpuStorage::F64($y)) => {
                #[allow(dead_code)]
                type $T = f64;
                $crate::CpuStorage::F64($body)
            }
            (a, b) if a.dtype() != b.dtype() => {
                return Err($crate::Error::DTypeMismatch {
                    op: $op,
                    lhs: a.dtype(),
                    rhs: b.dtype(),
                })
            }
            (a, _) => {
                return Err($crate::Error::UnsupportedDType {
                    op: $op,
                    dtype: a.dtype(),
                })
            }
        }
    };
}
pub(crate) use float_map2;

/// A strided view of `v` through `l` (strides indexed like `l`'s shape).
pub fn strided<'a, T>(v: &'a [T], l: &'a Layout) -> Strided<'a, T> {
    Strided {
        data: v,
        strides: l.strides(),
        offset: l.offset(),
    }
}

/// The elements of `v` under `l`, row-major and gap-free (borrowed when already so).
pub fn contiguous<'a, T: Copy + Send + Sync>(v: &'a [T], l: &Layout) -> Cow<'a, [T]> {
    if l.is_contiguous() {
        return Cow::Borrowed(&v[l.offset()..l.offset() + l.numel()]);
    }
    let Some(&first) = v.get(l.offset()) else {
        return Cow::Borrowed(&[]);
    };
    let mut out = vec![first; l.numel()];
    copy_strided(l.shape(), strided(v, l), &mut out, |x| x);
    Cow::Owned(out)
}

/// The elements of `v` under `l` in memory order if `l` is dense (any dimension order), with the
/// matching offset-0 layout; otherwise a contiguous copy.
pub fn dense<'a, T: Copy + Send + Sync>(v: &'a [T], l: &Layout) -> (Cow<'a, [T]>, Layout) {
    if l.is_dense() {
        (
            Cow::Borrowed(&v[l.offset()..l.offset() + l.numel()]),
            l.dense_like(),
        )
    } else {
        (contiguous(v, l), Layout::contiguous(l.shape()))
    }
}

/// Runs `$body` with `$v` bound to the typed Vec of a `CpuStorage`, wrapping the resulting Vec
/// back into the same variant.
macro_rules! map_same {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            CpuStorage::F32($v) => CpuStorage::F32($body),
            CpuStorage::F64($v) => CpuStorage::F64($body),
            CpuStorage::F16($v) => CpuStorage::F16($body),
            CpuStorage::BF16($v) => CpuStorage::BF16($body),
            CpuStorage::I64($v) => CpuStorage::I64($body),
            CpuStorage::I32($v) => CpuStorage::I32($body),
            CpuStorage::U8($v) => CpuStorage::U8($body),
            CpuStorage::Bool($v) => CpuStorage::Bool($body),
        }
    };
}

/// Copies `s` under `l` into a new buffer laid out as `out` (same shape, dense).
pub fn copy_to_layout(s: &CpuStorage, l: &Layout, out: &Layout) -> CpuStorage {
    let order = out.dense_order().unwrap_or_else(|| (0..l.rank()).collect());
    let src = l.permute(&order).unwrap_or_else(|_| l.clone());
    map_same!(s, v => {
        let mut dst = alloc::zeroed(l.numel());
        copy_strided(src.shape(), strided(v, &src), &mut dst, |x| x);
        dst
    })
}
