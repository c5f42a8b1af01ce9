//! Elementwise ops, casts and layout copies on the CPU.

use super::alloc;
use super::{contiguous, dense, float_map, float_map2};
use crate::broadcast::{coalesce, plan};
use crate::{CpuStorage, DType, Error, Layout, Result, WithDType};
use kiln_kernels::cpu::copy::convert;
use kiln_kernels::cpu::elementwise::{self as k, BinaryOp, CmpOp, UnaryOp};
use rayon::prelude::*;
use std::borrow::Cow;

/// `dst[i] += src[i]`, in parallel over large slices: gradients accumulated in place and the
/// per-thread partial sums of reductions.
pub(crate) fn add_assign<T: Copy + std::ops::AddAssign + Send + Sync>(dst: &mut [T], src: &[T]) {
    assert_eq!(dst.len(), src.len(), "add_assign of unequal lengths");
    dst.par_chunks_mut(1 << 15)
        .zip(src.par_chunks(1 << 15))
        .for_each(|(d, s)| d.iter_mut().zip(s).for_each(|(d, &s)| *d += s));
}

/// y = op(x), keeping x's memory order when dense.
pub fn unary(s: &CpuStorage, l: &Layout, op: UnaryOp) -> Result<(CpuStorage, Layout)> {
    let out_layout;
    let out = float_map!(op.name(), s, |v: T| {
        let (x, lx) = dense(v, l);
        out_layout = lx;
        let mut y = alloc::zeroed(x.len());
        k::unary_fwd(op, &x, &mut y);
        y
    });
    Ok((out, out_layout))
}

/// The elements of `v` under `l`: in memory order when `dense_order` (`l` dense), else row-major.
fn in_order<'a, T: Copy + Send + Sync>(dense_order: bool, v: &'a [T], l: &Layout) -> Cow<'a, [T]> {
    match dense_order {
        true => dense(v, l).0,
        false => contiguous(v, l),
    }
}

/// dx = dy · op'(x) given the forward's x and y (same layout) and dy of the same shape.
pub fn unary_bwd(
    x: (&CpuStorage, &Layout),
    y: (&CpuStorage, &Layout),
    dy: (&CpuStorage, &Layout),
    op: UnaryOp,
) -> Result<(CpuStorage, Layout)> {
    // x, y and dy in one dense layout (an NHWC activation and its gradient): work in memory
    // order and keep that layout, rather than gathering all three into row-major order.
    let same = x.1.is_dense() && x.1.same_mapping(y.1) && x.1.same_mapping(dy.1);
    let out_layout = match same {
        true => x.1.dense_like(),
        false => Layout::contiguous(x.1.shape()),
    };
    let xy = float_map2!(op.name(), x.0, y.0, |xv, yv: T| {
        let xs = in_order(same, xv, x.1);
        let ys = in_order(same, yv, y.1);
        let dys: Cow<[T]> = match dy.0 {
            CpuStorage::F32(_) | CpuStorage::F64(_) => {
                in_order(same, dy.0.as_slice::<T>(op.name())?, dy.1)
            }
            other => {
                return Err(Error::UnsupportedDType {
                    op: op.name(),
                    dtype: other.dtype(),
                })
            }
        };
        let mut dx = alloc::zeroed(xs.len());
        k::unary_bwd(op, &xs, &ys, &dys, &mut dx);
        dx
    });
    Ok((xy, out_layout))
}

/// out = a ⊙ b with broadcasting.
pub fn binary(
    a: (&CpuStorage, &Layout),
    b: (&CpuStorage, &Layout),
    shape: &[usize],
    op: BinaryOp,
) -> Result<(CpuStorage, Layout)> {
    let p = plan(shape, &[a.1, b.1])?;
    let numel = p.out.numel();
    let out = float_map2!(op.name(), a.0, b.0, |x, y: T| {
        let mut out = alloc::zeroed(numel);
        k::binary(op, &p.shape, p.operand(0, x), p.operand(1, y), &mut out);
        out
    });
    Ok((out, p.out))
}

/// out = (a cmp b) as Bool, with broadcasting.
pub fn compare(
    a: (&CpuStorage, &Layout),
    b: (&CpuStorage, &Layout),
    shape: &[usize],
    op: CmpOp,
) -> Result<(CpuStorage, Layout)> {
    let p = plan(shape, &[a.1, b.1])?;
    let mut out = vec![0u8; p.out.numel()];
    macro_rules! cmp {
        ($x:expr, $y:expr) => {
            k::compare(op, &p.shape, p.operand(0, $x), p.operand(1, $y), &mut out)
        };
    }
    match (a.0, b.0) {
        (CpuStorage::F32(x), CpuStorage::F32(y)) => cmp!(x, y),
        (CpuStorage::F64(x), CpuStorage::F64(y)) => cmp!(x, y),
        (CpuStorage::F16(x), CpuStorage::F16(y)) => cmp!(x, y),
        (CpuStorage::BF16(x), CpuStorage::BF16(y)) => cmp!(x, y),
        (CpuStorage::I64(x), CpuStorage::I64(y)) => cmp!(x, y),
        (CpuStorage::I32(x), CpuStorage::I32(y)) => cmp!(x, y),
        (CpuStorage::U8(x), CpuStorage::U8(y)) | (CpuStorage::Bool(x), CpuStorage::Bool(y)) => {
            cmp!(x, y)
        }
        (x, y) => {
            return Err(Error::DTypeMismatch {
                op: "compare",
                lhs: x.dtype(),
                rhs: y.dtype(),
            })
        }
    }
    Ok((CpuStorage::Bool(out), p.out))
}

/// out = cond ? a : b with broadcasting of all three.
pub fn select(
    cond: (&CpuStorage, &Layout),
    a: (&CpuStorage, &Layout),
    b: (&CpuStorage, &Layout),
    shape: &[usize],
) -> Result<(CpuStorage, Layout)> {
    let p = plan(shape, &[a.1, b.1])?;
    let cond_view = cond.1.broadcast_as(shape)?;
    let order = p
        .out
        .dense_order()
        .unwrap_or_else(|| (0..shape.len()).collect());
    let cond_dense = match cond.0 {
        CpuStorage::Bool(c) | CpuStorage::U8(c) => {
            let view = cond_view.permute(&order)?;
            contiguous(c, &view).into_owned()
        }
        other => {
            return Err(Error::UnsupportedDType {
                op: "where",
                dtype: other.dtype(),
            })
        }
    };
    let numel = p.out.numel();
    let out = float_map2!("where", a.0, b.0, |x, y: T| {
        let mut out = alloc::zeroed(numel);
        k::select(
            &p.shape,
            &cond_dense,
            p.operand(0, x),
            p.operand(1, y),
            &mut out,
        );
        out
    });
    Ok((out, p.out))
}

/// Converts every element to `dtype` (Bool: nonzero), keeping a dense memory order.
pub fn cast(s: &CpuStorage, l: &Layout, dtype: DType) -> Result<(CpuStorage, Layout)> {
    fn to<S: WithDType, D: WithDType + Default>(x: &[S], f: impl Fn(f64) -> D + Sync) -> Vec<D> {
        let mut out = alloc::zeroed(x.len());
        convert(x, &mut out, |v| f(v.to_f64()));
        out
    }
    let out_layout;
    let out = crate::with_vec!(s, v => {
        let (x, lx) = dense(v.as_slice(), l);
        out_layout = lx;
        match dtype {
            DType::F32 => CpuStorage::F32(to(&x, |v| v as f32)),
            DType::F64 => CpuStorage::F64(to(&x, |v| v)),
            DType::F16 => CpuStorage::F16(to(&x, half::f16::from_f64)),
            DType::BF16 => CpuStorage::BF16(to(&x, half::bf16::from_f64)),
            DType::I64 => CpuStorage::I64(to(&x, |v| v as i64)),
            DType::I32 => CpuStorage::I32(to(&x, |v| v as i32)),
            DType::U8 => CpuStorage::U8(to(&x, |v| v as u8)),
            DType::Bool => CpuStorage::Bool(to(&x, |v| (v != 0.0) as u8)),
        }
    });
    Ok((out, out_layout))
}

/// Fills a new dense buffer of `shape` with `value`.
pub fn full(dtype: DType, numel: usize, value: f64) -> CpuStorage {
    if value == 0.0 {
        return CpuStorage::zeros(dtype, numel);
    }
    match cast(
        &CpuStorage::F64(vec![value]),
        &Layout::contiguous(&[1]),
        dtype,
    ) {
        Ok((one, _)) => one.splat_first(numel),
        Err(_) => CpuStorage::zeros(dtype, numel),
    }
}

/// Writes `src` (under `ls`, same shape as `ld`) into `dst` under `ld`, converting nothing.
/// Layouts that map elements to storage alike and fill a gap-free block (two row-major or two
/// channels-last tensors: a state-dict load, a parameter update) copy as one slice; others walk
/// the destination's memory order with adjacent dimensions merged.
pub fn copy_into(src: (&CpuStorage, &Layout), dst: (&mut CpuStorage, &Layout)) -> Result<()> {
    let (ls, ld) = (src.1, dst.1);
    let n = ld.numel();
    if n == 0 {
        return Ok(());
    }
    let block = (ld.is_dense() && ls.same_mapping(ld)).then(|| (ls.offset(), ld.offset()));
    macro_rules! copy {
        ($d:expr, $s:expr) => {{
            match block {
                Some((so, dof)) => $d[dof..dof + n].copy_from_slice(&$s[so..so + n]),
                None => copy_in_dst_order($s, ls, $d, ld)?,
            }
        }};
    }
    match (dst.0, src.0) {
        (CpuStorage::F32(d), CpuStorage::F32(s)) => copy!(d, s),
        (CpuStorage::F64(d), CpuStorage::F64(s)) => copy!(d, s),
        (CpuStorage::F16(d), CpuStorage::F16(s)) => copy!(d, s),
        (CpuStorage::BF16(d), CpuStorage::BF16(s)) => copy!(d, s),
        (CpuStorage::I64(d), CpuStorage::I64(s)) => copy!(d, s),
        (CpuStorage::I32(d), CpuStorage::I32(s)) => copy!(d, s),
        (CpuStorage::U8(d), CpuStorage::U8(s)) | (CpuStorage::Bool(d), CpuStorage::Bool(s)) => {
            copy!(d, s)
        }
        (d, s) => {
            return Err(Error::DTypeMismatch {
                op: "copy_",
                lhs: d.dtype(),
                rhs: s.dtype(),
            })
        }
    }
    Ok(())
}

/// `d` under `ld` = `s` under `ls` (same shape), walked in the destination's memory order with
/// adjacent dimensions merged: a channel slice of a channels-last map (DenseNet's and ResNeSt's
/// concatenations) copies one run of channels per pixel, where a row-major walk went element by
/// element across the channels.
fn copy_in_dst_order<T: Copy>(s: &[T], ls: &Layout, d: &mut [T], ld: &Layout) -> Result<()> {
    let order = ld.stride_order();
    let (pd, ps) = (ld.permute(&order)?, ls.permute(&order)?);
    let (shape, strides) = coalesce(pd.shape(), &[pd.strides(), ps.strides()]);
    let (dst_strides, src_strides) = (&strides[0], &strides[1]);
    let Some((&inner, outer)) = shape.split_last() else {
        d[pd.offset()] = s[ps.offset()];
        return Ok(());
    };
    let (di, si) = (dst_strides[outer.len()], src_strides[outer.len()]);
    let mut index = vec![0; outer.len()];
    for _ in 0..outer.iter().product::<usize>() {
        let at = |base: usize, st: &[usize]| {
            base + index.iter().zip(st).map(|(i, s)| i * s).sum::<usize>()
        };
        let (dof, sof) = (at(pd.offset(), dst_strides), at(ps.offset(), src_strides));
        if di == 1 && si == 1 {
            d[dof..dof + inner].copy_from_slice(&s[sof..sof + inner]);
        } else {
            for j in 0..inner {
                d[dof + j * di] = s[sof + j * si];
            }
        }
        for (i, &len) in index.iter_mut().zip(outer).rev() {
            *i += 1;
            if *i < len {
                break;
            }
            *i = 0;
        }
    }
    Ok(())
}
