//! What the collectives carry: the element types (f32 gradient buckets, f64 statistics), how
//! all-reduce combines them, and the element-wise combination of the ranks' parts.

use crate::{Error, Result};
use kiln_engine::StorageElem;

/// How all-reduce combines the ranks' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// The sum over ranks.
    Sum,
    /// The sum divided by the world size (DDP's gradient average).
    Average,
    /// The largest value (flags agreed across ranks: any rank's overflow).
    Max,
}

/// What MPI needs to carry an element type (nothing without the `mpi` feature).
#[cfg(feature = "mpi")]
pub trait Wire: ::mpi::traits::Equivalence {}
#[cfg(feature = "mpi")]
impl<T: ::mpi::traits::Equivalence> Wire for T {}
/// What MPI needs to carry an element type (nothing without the `mpi` feature).
#[cfg(not(feature = "mpi"))]
pub trait Wire {}
#[cfg(not(feature = "mpi"))]
impl<T> Wire for T {}

/// An element the collectives carry: f32 (gradient buckets), f64 (SyncBN statistics, metrics).
pub trait Element:
    Copy
    + Default
    + Send
    + Sync
    + Wire
    + StorageElem
    + std::ops::Add<Output = Self>
    + PartialOrd
    + bytemuck::Pod
    + 'static
{
    /// `self / n` (for [`ReduceOp::Average`]).
    fn div_by(self, n: usize) -> Self;
}

impl Element for f32 {
    fn div_by(self, n: usize) -> Self {
        self / n as f32
    }
}

impl Element for f64 {
    fn div_by(self, n: usize) -> Self {
        self / n as f64
    }
}

/// The element-wise sum (Sum, Average) or maximum (Max) of the parts, in rank order.
pub(super) fn combine<T: Element>(parts: &[&[T]], n: usize, op: ReduceOp) -> Result<Vec<T>> {
    let mut out = parts[0].to_vec();
    for (r, p) in parts.iter().enumerate() {
        if p.len() != n {
            return Err(length_error("all_reduce", r, p.len(), n));
        }
        if r == 0 {
            continue;
        }
        for (o, v) in out.iter_mut().zip(p.iter()) {
            *o = match op {
                ReduceOp::Sum | ReduceOp::Average => *o + *v,
                ReduceOp::Max if *v > *o => *v,
                ReduceOp::Max => *o,
            };
        }
    }
    Ok(out)
}

/// The error of rank `rank` giving `got` elements to `op` where this rank has `want`.
pub(super) fn length_error(op: &str, rank: usize, got: usize, want: usize) -> Error {
    Error::Dist(format!(
        "{op}: rank {rank} gave {got} elements where this rank has {want}"
    ))
}
