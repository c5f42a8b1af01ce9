//! Collectives over a list of tensors as one flat f64 buffer: the broadcast and the average that
//! DDP's buffers and SyncBN's statistics go through.

use super::communicator::Communicator;
use super::element::ReduceOp;
use crate::Result;
use kiln_engine::{no_grad, DType, Tensor};

/// Broadcasts `tensors` from rank 0 in one flat f32 buffer and copies them in on other ranks.
pub(super) fn broadcast_tensors(comm: &Communicator, tensors: &[Tensor]) -> Result<()> {
    collective_in_place(comm, tensors, |flat| comm.broadcast(flat, 0))
}

/// Replaces `tensors` by their average over ranks, in one flat f64 all-reduce.
pub(super) fn average_tensors(comm: &Communicator, tensors: &[Tensor]) -> Result<()> {
    collective_in_place(comm, tensors, |flat| {
        comm.all_reduce(flat, ReduceOp::Average)
    })
}

/// Runs `collective` on `tensors` flattened into one f64 buffer and copies the result back.
fn collective_in_place(
    comm: &Communicator,
    tensors: &[Tensor],
    collective: impl FnOnce(&mut [f64]) -> Result<()>,
) -> Result<()> {
    if comm.world_size() == 1 || tensors.is_empty() {
        return Ok(());
    }
    let mut flat = Vec::new();
    for t in tensors {
        flat.extend(t.to_dtype(DType::F64)?.to_vec::<f64>()?);
    }
    collective(&mut flat)?;
    let _no_grad = no_grad();
    let mut at = 0;
    for t in tensors {
        let n = t.numel();
        let src = Tensor::from_vec(flat[at..at + n].to_vec(), t.shape())?
            .to_dtype(t.dtype())?
            .to_device(t.device())?;
        t.copy_(&src)?;
        at += n;
    }
    Ok(())
}
