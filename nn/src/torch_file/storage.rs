//! Tensors out of storage bytes: a strided view (offset, size, stride in elements) of a
//! little-endian storage, checked against the storage's length and copied out contiguous, so
//! non-contiguous views are materialized and views of one storage each get their own elements.

use super::fault::{bad, Res};
use super::global_kinds::StorageType;
use super::graph::{StorageRef, TensorRef};
use kiln_engine::{DType, Tensor};

/// The tensor `t` views in `s`, whose stored bytes (the whole storage `s.key` names) are
/// `bytes`. `budget` is what the file's tensors may still take in bytes: views that repeat
/// elements (stride 0) can ask for far more than the file holds, and are refused past it.
pub(super) fn materialize(
    t: &TensorRef,
    s: &StorageRef,
    bytes: &[u8],
    budget: &mut usize,
) -> Res<Tensor> {
    let dtype = match s.dtype {
        StorageType::Known(d) => d,
        StorageType::Unsupported(class, _) => {
            return Err(bad(format!(
                "a tensor of torch.{class}: kiln reads f32, f64, f16, bf16, i64, i32, u8 and bool tensors"
            )))
        }
    };
    let e = dtype.size_in_bytes();
    let storage = s
        .view_offset
        .checked_add(s.numel)
        .and_then(|end| end.checked_mul(e))
        .filter(|&end| end <= bytes.len())
        .map(|end| &bytes[s.view_offset * e..end])
        .ok_or_else(|| {
            bad(format!(
                "storage '{}' holds {} bytes, fewer than its {} {dtype:?} elements at offset {}",
                s.key,
                bytes.len(),
                s.numel,
                s.view_offset
            ))
        })?;
    let numel = t
        .size
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| bad(format!("a tensor of shape {:?} overflows", t.size)))?;
    if numel == 0 {
        return Ok(Tensor::from_bytes(&[], dtype, &t.size)?);
    }
    let last = t
        .size
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |acc, (&n, &st)| {
            acc.checked_add((n - 1).checked_mul(st)?)
        });
    if last.is_none_or(|l| l >= s.numel) {
        return Err(bad(format!(
            "a tensor of shape {:?}, stride {:?} at offset {} reads past its storage '{}' of {} elements",
            t.size, t.stride, t.offset, s.key, s.numel
        )));
    }
    let out_bytes = numel.checked_mul(e);
    *budget = out_bytes.and_then(|n| budget.checked_sub(n)).ok_or_else(|| {
        bad(format!(
            "its tensors would take more memory than 4 times the file's size (a view of shape {:?} repeats its storage '{}')",
            t.size, s.key
        ))
    })?;
    let mut out = gather(storage, e, t);
    if dtype == DType::Bool {
        out.iter_mut().for_each(|b| *b = (*b != 0) as u8);
    }
    Ok(Tensor::from_bytes(&out, dtype, &t.size)?)
}

/// The view's elements in row-major order, copying whole rows where the last dim is dense.
/// Every index was checked against the storage by the caller.
fn gather(storage: &[u8], e: usize, t: &TensorRef) -> Vec<u8> {
    let rank = t.size.len();
    let numel: usize = t.size.iter().product();
    let mut out = Vec::with_capacity(numel * e);
    let (row, row_stride) = match rank {
        0 => (1, 1),
        _ => (t.size[rank - 1], t.stride[rank - 1]),
    };
    let outer = rank.saturating_sub(1);
    let mut idx = vec![0usize; outer];
    let mut pos = t.offset;
    for _ in 0..numel / row {
        if row_stride == 1 {
            out.extend_from_slice(&storage[pos * e..(pos + row) * e]);
        } else {
            for j in 0..row {
                let at = (pos + j * row_stride) * e;
                out.extend_from_slice(&storage[at..at + e]);
            }
        }
        // The next row: an odometer over the outer dims.
        for d in (0..outer).rev() {
            // Wrapping: past the last index of a dim of size 1 the position may overflow, and
            // comes back when the dim wraps.
            idx[d] += 1;
            pos = pos.wrapping_add(t.stride[d]);
            if idx[d] < t.size[d] {
                break;
            }
            pos = pos.wrapping_sub(t.stride[d].wrapping_mul(t.size[d]));
            idx[d] = 0;
        }
    }
    out
}
