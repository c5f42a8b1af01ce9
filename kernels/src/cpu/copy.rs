//! Strided gathers into dense buffers, with an element conversion (casts, layout changes such as
//! NCHW <-> NHWC). Twin of `cuda/layout.cu`.

use super::elementwise::Strided;
use super::PAR_GRAIN;
use rayon::prelude::*;

/// Writes the elements of `src` (strided over `shape`) densely, row-major, into `dst`, converting each.
pub fn copy_strided<S: Copy + Sync, D: Copy + Send>(
    shape: &[usize],
    src: Strided<S>,
    dst: &mut [D],
    convert: impl Fn(S) -> D + Sync,
) {
    let (shape, strides) = merge_dims(shape, src.strides);
    let src = Strided {
        strides: &strides,
        ..src
    };
    let inner = shape.last().copied().unwrap_or(1).max(1);
    let step = src.strides.last().copied().unwrap_or(0);
    let rows_per_task = (PAR_GRAIN / inner).max(1);
    dst.par_chunks_mut(inner * rows_per_task)
        .enumerate()
        .for_each(|(task, chunk)| {
            for (i, row) in chunk.chunks_mut(inner).enumerate() {
                let mut r = task * rows_per_task + i;
                let mut start = src.offset;
                for d in (0..shape.len().saturating_sub(1)).rev() {
                    start += (r % shape[d]) * src.strides[d];
                    r /= shape[d];
                }
                if step == 1 {
                    for (o, &x) in row.iter_mut().zip(&src.data[start..start + inner]) {
                        *o = convert(x);
                    }
                } else if step == 0 {
                    row.fill(convert(src.data[start]));
                } else {
                    for (j, o) in row.iter_mut().enumerate() {
                        *o = convert(src.data[start + j * step]);
                    }
                }
            }
        });
}

/// `shape` and `strides` with size-1 dims dropped and each dim merged into the one inside it
/// where it steps over exactly that one (a broadcast scalar becomes one dim of stride 0), so
/// rows are long and the per-row index arithmetic rare. The innermost dim stays at most
/// [`PAR_GRAIN`] long unless it already was, so rows still split across threads.
fn merge_dims(shape: &[usize], strides: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut dims: Vec<(usize, usize)> = Vec::with_capacity(shape.len());
    for (&n, &stride) in shape.iter().zip(strides).rev().filter(|(&n, _)| n != 1) {
        let innermost = dims.len() == 1;
        match dims.last_mut() {
            Some((len, step)) if stride == *len * *step && !(innermost && *len * n > PAR_GRAIN) => {
                *len *= n
            }
            _ => dims.push((n, stride)),
        }
    }
    dims.reverse();
    dims.into_iter().unzip()
}

/// Converts a dense slice elementwise.
pub fn convert<S: Copy + Sync, D: Send>(src: &[S], dst: &mut [D], convert: impl Fn(S) -> D + Sync) {
    dst.par_chunks_mut(PAR_GRAIN)
        .zip(src.par_chunks(PAR_GRAIN))
        .for_each(|(d, s)| {
            for (o, &x) in d.iter_mut().zip(s) {
                *o = convert(x);
            }
        });
}
