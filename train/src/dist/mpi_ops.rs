//! MPI's side of the element types and reduce ops, counts that fit its ints, and the bucket
//! all-reduce that both the caller's thread and the gradient thread run.

use super::element::ReduceOp;
use super::host_bucket::HostBucket;
use super::mpi_timed::TimedComm;
use crate::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::traits::Equivalence;
use std::ffi::c_int;

/// MPI's reduce op of `op` (Average sums; the caller divides).
pub(super) fn mpi_op(op: ReduceOp) -> ffi::MPI_Op {
    match op {
        ReduceOp::Sum | ReduceOp::Average => SystemOperation::sum(),
        ReduceOp::Max => SystemOperation::max(),
    }
    .as_raw()
}

/// MPI's handle of the element type `T`.
pub(super) fn datatype<T: Equivalence>() -> ffi::MPI_Datatype {
    T::equivalent_datatype().as_raw()
}

/// `len` as MPI's element count.
pub(super) fn count(len: usize, what: &str) -> Result<c_int> {
    c_int::try_from(len).map_err(|_| {
        Error::Dist(format!(
            "an MPI {what} of {len} elements is more than MPI can count"
        ))
    })
}

/// Combines `bucket.send` over the ranks of `comm` into `bucket.recv` (MPI_Iallreduce, timed).
pub(super) fn reduce_bucket(
    comm: &mut TimedComm,
    bucket: &mut HostBucket,
    op: ReduceOp,
) -> Result<()> {
    let n = count(bucket.send.len(), "bucket all_reduce")?;
    let (send, recv) = (bucket.send.as_ptr(), bucket.recv.as_mut_ptr());
    comm.run("bucket all_reduce", |c, request| {
        // SAFETY: send and recv hold n floats each and outlive the collective (`run` returns
        // once it completed).
        unsafe {
            ffi::MPI_Iallreduce(
                send.cast(),
                recv.cast(),
                n,
                datatype::<f32>(),
                mpi_op(op),
                c,
                request,
            )
        }
    })
}
