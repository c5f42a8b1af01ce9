//! Broadcast planning shared by the backends: where an elementwise op over several strided inputs
//! writes, and how each input is walked, with adjacent dimensions merged into long runs.

use crate::{Layout, Result};
use kiln_kernels::cpu::elementwise as k;

/// Where a broadcast op writes: the output layout, and each input's strides and the shape, both
/// permuted into the output's memory order and coalesced.
pub struct Plan {
    /// The output's layout.
    pub out: Layout,
    /// The iteration shape, in the output's memory order, coalesced.
    pub shape: Vec<usize>,
    /// Each input's strides over `shape`.
    pub strides: Vec<Vec<usize>>,
    /// Each input's offset.
    pub offsets: Vec<usize>,
}

/// Plans a broadcast op over `inputs` producing `shape`: the output takes the memory order of the
/// first dense input of that shape (so channels-last stays channels-last), else channels-last if
/// the first unbroadcast input of that shape walks memory in NHWC order (a channel slice of a
/// channels-last map), else row-major.
pub fn plan(shape: &[usize], inputs: &[&Layout]) -> Result<Plan> {
    let full = |l: &&&Layout| l.shape() == shape;
    let unbroadcast = |l: &&&Layout| {
        l.shape()
            .iter()
            .zip(l.strides())
            .all(|(&n, &s)| n == 1 || s > 0)
    };
    let out = match inputs.iter().filter(full).find(|l| l.is_dense()) {
        Some(l) => l.dense_like(),
        None => inputs
            .iter()
            .filter(full)
            .find(unbroadcast)
            .and_then(|l| l.channels_last_order())
            .unwrap_or_else(|| Layout::contiguous(shape)),
    };
    let order = out
        .dense_order()
        .unwrap_or_else(|| (0..shape.len()).collect());
    let views: Vec<Layout> = inputs
        .iter()
        .map(|l| l.broadcast_as(shape)?.permute(&order))
        .collect::<Result<_>>()?;
    let permuted: Vec<usize> = order.iter().map(|&d| shape[d]).collect();
    let stride_refs: Vec<&[usize]> = views.iter().map(|v| v.strides()).collect();
    let (shape, strides) = coalesce(&permuted, &stride_refs);
    Ok(Plan {
        out,
        shape,
        strides,
        offsets: views.iter().map(|v| v.offset()).collect(),
    })
}

impl Plan {
    /// Input `i` as a CPU strided operand over `v`.
    pub fn operand<'a, T>(&'a self, i: usize, v: &'a [T]) -> k::Strided<'a, T> {
        k::Strided {
            data: v,
            strides: &self.strides[i],
            offset: self.offsets[i],
        }
    }
}

/// Merges adjacent dimensions that every operand traverses as one run, so kernels get long rows.
pub fn coalesce(shape: &[usize], strides: &[&[usize]]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut out_shape: Vec<usize> = Vec::new();
    let mut out_strides: Vec<Vec<usize>> = vec![Vec::new(); strides.len()];
    for d in 0..shape.len() {
        if shape[d] == 1 && !out_shape.is_empty() {
            continue;
        }
        let mergeable = strides
            .iter()
            .zip(&out_strides)
            .all(|(s, o)| o.last().is_some_and(|&p| p == s[d] * shape[d]));
        if let (true, Some(last)) = (mergeable, out_shape.last_mut()) {
            *last *= shape[d];
            for (o, s) in out_strides.iter_mut().zip(strides) {
                if let Some(p) = o.last_mut() {
                    *p = s[d];
                }
            }
        } else {
            out_shape.push(shape[d]);
            for (o, s) in out_strides.iter_mut().zip(strides) {
                o.push(s[d]);
            }
        }
    }
    (out_shape, out_strides)
}
