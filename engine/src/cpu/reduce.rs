//! Reductions over dimensions on the CPU.

use super::{contiguous, float_map};
use crate::{CpuStorage, Error, Layout, Result};
use kiln_kernels::cpu::reduce::{argmax_rows, reduce_cols, reduce_rows, ReduceOp};

/// `l` with the reduced dims moved last, and (rows, row length). The reduced dims go in memory
/// order (largest stride first), so reducing a dense tensor of any layout over all of its dims, or
/// over its trailing memory dims, needs no copy.
pub(crate) fn rows_view(l: &Layout, dims: &[usize]) -> Result<(Layout, usize, usize)> {
    let kept: Vec<usize> = (0..l.rank()).filter(|d| !dims.contains(d)).collect();
    let mut reduced = dims.to_vec();
    reduced.sort_by_key(|&d| std::cmp::Reverse(l.strides()[d]));
    let order: Vec<usize> = kept.iter().chain(&reduced).copied().collect();
    let len: usize = dims.iter().map(|&d| l.shape()[d]).product();
    Ok((l.permute(&order)?, l.numel() / len.max(1), len))
}

/// Reduces `dims` away; the result is row-major over the kept dims.
pub fn reduce(s: &CpuStorage, l: &Layout, dims: &[usize], op: ReduceOp) -> Result<CpuStorage> {
    let (view, rows, len) = rows_view(l, dims)?;
    if len == 0 && op != ReduceOp::Sum {
        return Err(Error::BadShape {
            op: op.name(),
            shape: l.shape().to_vec(),
            msg: "cannot reduce an empty dimension".into(),
        });
    }
    // Reduced dims outermost in memory and the kept ones dense inside them in order (a bias or
    // scale gradient summed over [N, H, W] of an NHWC tensor): reduce columns, copying nothing.
    let cols_view = match view.is_contiguous() {
        true => None,
        false => Some(cols_view(l, dims)?).filter(Layout::is_contiguous),
    };
    Ok(float_map!(op.name(), s, |v: T| {
        let mut out = vec![T::default(); rows];
        match &cols_view {
            Some(c) => reduce_cols(op, &v[c.offset()..][..c.numel()], len, &mut out),
            None => reduce_rows(op, &contiguous(v, &view), len, &mut out),
        }
        out
    }))
}

/// `l` with the reduced dims first (in memory order) and the kept ones after them in order.
fn cols_view(l: &Layout, dims: &[usize]) -> Result<Layout> {
    let mut order = dims.to_vec();
    order.sort_by_key(|&d| std::cmp::Reverse(l.strides()[d]));
    order.extend((0..l.rank()).filter(|d| !dims.contains(d)));
    l.permute(&order)
}

/// Index of the maximum along `dim` (I64, row-major over the other dims).
pub fn argmax(s: &CpuStorage, l: &Layout, dim: usize) -> Result<CpuStorage> {
    let (view, rows, len) = rows_view(l, &[dim])?;
    let mut out = vec![0i64; rows];
    match s {
        CpuStorage::F32(v) => argmax_rows(&contiguous(v, &view), len, &mut out),
        CpuStorage::F64(v) => argmax_rows(&contiguous(v, &view), len, &mut out),
        other => {
            return Err(Error::UnsupportedDType {
                op: "argmax",
                dtype: other.dtype(),
            })
        }
    }
    Ok(CpuStorage::I64(out))
}
