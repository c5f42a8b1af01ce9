//! The collectives behind every backend of a [`Communicator`](super::Communicator): what a
//! backend must provide (its rank, the world size, all-reduce and broadcast), and the
//! algorithms built on those, written once as default methods (all-gather, reduce-scatter,
//! barrier). A backend overrides a default only where it has a native path (MPI, NCCL).

use super::element::{Element, ReduceOp};
use crate::{Error, Result};

/// One rank's end of a communicator. Every collective must be called by every rank in the same
/// order, with the same lengths. All-gather and reduce-scatter, native or not, first check that
/// the larger buffer is world blocks of the smaller; the root of a broadcast is checked by
/// [`Communicator`](super::Communicator).
pub trait Collectives {
    /// This rank.
    fn rank(&self) -> usize;

    /// The number of ranks.
    fn world_size(&self) -> usize;

    /// Combines `buf` across ranks in place, in rank order; [`ReduceOp::Average`] sums (the
    /// caller divides).
    fn all_reduce<T: Element>(&self, buf: &mut [T], op: ReduceOp) -> Result<()>;

    /// Copies rank `root`'s `buf` into every rank's `buf`.
    fn broadcast<T: Element>(&self, buf: &mut [T], root: usize) -> Result<()>;

    /// Concatenates every rank's `send` in rank order into `recv` (world × send.len()): one
    /// broadcast per rank, of its block, so every element arrives exactly as it was sent.
    fn all_gather<T: Element>(&self, send: &[T], recv: &mut [T]) -> Result<()> {
        check_blocks("all_gather", send.len(), recv.len(), self.world_size())?;
        let n = send.len();
        for root in 0..self.world_size() {
            let block = &mut recv[root * n..(root + 1) * n];
            if root == self.rank() {
                block.copy_from_slice(send);
            }
            self.broadcast(block, root)?;
        }
        Ok(())
    }

    /// Reduces `send` (world blocks of recv.len()) across ranks and leaves block `rank` of the
    /// result in `recv` ([`ReduceOp::Average`] sums): an all-reduce of the whole, of which this
    /// rank keeps its block.
    fn reduce_scatter<T: Element>(&self, send: &[T], recv: &mut [T], op: ReduceOp) -> Result<()> {
        check_blocks("reduce_scatter", recv.len(), send.len(), self.world_size())?;
        let mut all = send.to_vec();
        self.all_reduce(&mut all, op)?;
        let at = self.rank() * recv.len();
        recv.copy_from_slice(&all[at..at + recv.len()]);
        Ok(())
    }

    /// Waits until every rank reaches the barrier: an all-reduce of one element.
    fn barrier(&self) -> Result<()> {
        self.all_reduce(&mut [0.0f32], ReduceOp::Sum)
    }
}

/// Err unless `whole` elements are `world` blocks of `block` (the buffers of an all-gather or a
/// reduce-scatter, where MPI and NCCL read or write that many).
pub(super) fn check_blocks(op: &str, block: usize, whole: usize, world: usize) -> Result<()> {
    let want = block * world;
    if whole != want {
        return Err(Error::Dist(format!(
            "{op}: buffer of {whole} elements, {want} expected for world size {world}"
        )));
    }
    Ok(())
}

/// The one rank of a single-process job: every collective is the identity.
#[derive(Debug)]
pub struct LocalComm;

impl Collectives for LocalComm {
    fn rank(&self) -> usize {
        0
    }

    fn world_size(&self) -> usize {
        1
    }

    fn all_reduce<T: Element>(&self, _buf: &mut [T], _op: ReduceOp) -> Result<()> {
        Ok(())
    }

    fn broadcast<T: Element>(&self, _buf: &mut [T], _root: usize) -> Result<()> {
        Ok(())
    }
}
