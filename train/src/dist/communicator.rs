//! The collectives data-parallel training needs, over one process (local), the device threads of
//! one process, or MPI.

use super::group::ProcessGroup;
use super::threads::ThreadComm;
use crate::{Error, Result};
use std::sync::Arc;

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
    Copy + Default + Send + Sync + Wire + std::ops::Add<Output = Self> + PartialOrd + 'static
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

/// The ranks of a job and the collectives between them. Every collective must be called by
/// every rank in the same order (MPI's rule).
#[derive(Debug)]
pub enum Communicator {
    /// One process (world size 1): every collective is the identity.
    Local,
    /// One rank per device thread of this process (`--device cuda:0,1`), meeting in host memory.
    Threads(ThreadComm),
    /// CPU ranks over MPI (OpenMPI; feature `mpi`).
    #[cfg(feature = "mpi")]
    Mpi(super::mpi::MpiComm),
}

/// An all-reduce started by [`Communicator::start_all_reduce`], finished by `wait`.
pub struct PendingReduce {
    op: ReduceOp,
    world: usize,
    inner: Pending,
}

enum Pending {
    Done(Vec<f32>),
    #[cfg(feature = "mpi")]
    Mpi(super::mpi::MpiRequest),
}

impl PendingReduce {
    /// Lets MPI progress the transfer without blocking (called while backward still runs).
    pub fn poll(&mut self) {
        match &mut self.inner {
            Pending::Done(_) => {}
            #[cfg(feature = "mpi")]
            Pending::Mpi(r) => r.poll(),
        }
    }

    /// Waits for the reduction and returns the reduced buffer.
    #[cfg_attr(not(feature = "mpi"), allow(clippy::infallible_destructuring_match))]
    pub fn wait(self) -> Result<Vec<f32>> {
        // Without the `mpi` feature the one arm left is Done.
        #[allow(clippy::infallible_destructuring_match)]
        let mut buf = match self.inner {
            Pending::Done(buf) => buf,
            #[cfg(feature = "mpi")]
            Pending::Mpi(r) => r.wait()?,
        };
        if self.op == ReduceOp::Average {
            buf.iter_mut().for_each(|v| *v = v.div_by(self.world));
        }
        Ok(buf)
    }
}

impl Communicator {
    /// The communicator the launcher's environment asks for (see [`ProcessGroup::from_env`]):
    /// local for one process, MPI for several.
    pub fn from_env() -> Result<Arc<Communicator>> {
        Communicator::for_group(&ProcessGroup::from_env()?).map(Arc::new)
    }

    /// The communicator of `group`.
    pub fn for_group(group: &ProcessGroup) -> Result<Communicator> {
        if group.world_size == 1 {
            return Ok(Communicator::Local);
        }
        #[cfg(feature = "mpi")]
        {
            super::mpi::MpiComm::join(group).map(Communicator::Mpi)
        }
        #[cfg(not(feature = "mpi"))]
        Err(Error::Dist(format!(
            "the launcher asks for {} processes, but this kiln was built without MPI: rebuild \
             with `cargo build --release --features mpi` (needs Debian's libopenmpi-dev, \
             openmpi-bin and libclang-dev)",
            group.world_size
        )))
    }

    /// `world` communicators over the threads of this process, rank 0 first (one per thread).
    pub fn threads(world: usize) -> Vec<Communicator> {
        ThreadComm::group(world)
            .into_iter()
            .map(Communicator::Threads)
            .collect()
    }

    /// Tells the other ranks that this one failed, where the backend can (device threads): their
    /// collectives return an error instead of waiting for it.
    pub fn abort(&self) {
        if let Communicator::Threads(t) = self {
            t.abort();
        }
    }

    /// The rank that called [`Communicator::abort`] first (device threads only).
    pub fn failed_rank(&self) -> Option<usize> {
        match self {
            Communicator::Threads(t) => t.failed_rank(),
            _ => None,
        }
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        match self {
            Communicator::Local => 0,
            Communicator::Threads(t) => t.rank(),
            #[cfg(feature = "mpi")]
            Communicator::Mpi(m) => m.rank(),
        }
    }

    /// The number of ranks.
    pub fn world_size(&self) -> usize {
        match self {
            Communicator::Local => 1,
            Communicator::Threads(t) => t.world_size(),
            #[cfg(feature = "mpi")]
            Communicator::Mpi(m) => m.world_size(),
        }
    }

    /// Whether this is rank 0 (the rank that logs and saves).
    pub fn is_main(&self) -> bool {
        self.rank() == 0
    }

    /// Combines `buf` across ranks in place: every rank ends with the same values.
    pub fn all_reduce<T: Element>(&self, buf: &mut [T], op: ReduceOp) -> Result<()> {
        match self {
            Communicator::Local => {}
            Communicator::Threads(t) => t.all_reduce(buf, op)?,
            #[cfg(feature = "mpi")]
            Communicator::Mpi(m) => m.all_reduce(buf, op)?,
        }
        if op == ReduceOp::Average {
            let n = self.world_size();
            buf.iter_mut().for_each(|v| *v = v.div_by(n));
        }
        Ok(())
    }

    /// Starts an all-reduce of `buf` that runs while the caller goes on (DDP starts one per
    /// bucket from the autograd hook); [`PendingReduce::wait`] returns the result.
    /// (Device threads reduce before it returns: the meeting needs every rank there anyway.)
    pub fn start_all_reduce(&self, mut buf: Vec<f32>, op: ReduceOp) -> Result<PendingReduce> {
        let inner = match self {
            Communicator::Local => Pending::Done(buf),
            Communicator::Threads(t) => {
                t.all_reduce(&mut buf, op)?;
                Pending::Done(buf)
            }
            #[cfg(feature = "mpi")]
            Communicator::Mpi(m) => Pending::Mpi(m.start_all_reduce(buf, op)?),
        };
        Ok(PendingReduce {
            op,
            world: self.world_size(),
            inner,
        })
    }

    /// Copies rank `root`'s `buf` into every rank's `buf`.
    pub fn broadcast<T: Element>(&self, buf: &mut [T], root: usize) -> Result<()> {
        self.check_rank(root, "broadcast")?;
        match self {
            Communicator::Local => Ok(()),
            Communicator::Threads(t) => t.broadcast(buf, root),
            #[cfg(feature = "mpi")]
            Communicator::Mpi(m) => m.broadcast(buf, root),
        }
    }

    /// Concatenates every rank's `send` in rank order into `recv` (world_size × send.len()).
    pub fn all_gather<T: Element>(&self, send: &[T], recv: &mut [T]) -> Result<()> {
        self.check_len("all_gather", send.len() * self.world_size(), recv.len())?;
        match self {
            Communicator::Local => {
                recv.copy_from_slice(send);
                Ok(())
            }
            Communicator::Threads(t) => t.all_gather(send, recv),
            #[cfg(feature = "mpi")]
            Communicator::Mpi(m) => m.all_gather(send, recv),
        }
    }

    /// Reduces `send` (world_size blocks of recv.len()) across ranks and leaves block `rank`
    /// of the result in `recv`.
    pub fn reduce_scatter<T: Element>(
        &self,
        send: &[T],
        recv: &mut [T],
        op: ReduceOp,
    ) -> Result<()> {
        self.check_len("reduce_scatter", recv.len() * self.world_size(), send.len())?;
        match self {
            Communicator::Local => recv.copy_from_slice(send),
            Communicator::Threads(t) => t.reduce_scatter(send, recv, op)?,
            #[cfg(feature = "mpi")]
            Communicator::Mpi(m) => m.reduce_scatter(send, recv, op)?,
        }
        if op == ReduceOp::Average {
            let n = self.world_size();
            recv.iter_mut().for_each(|v| *v = v.div_by(n));
        }
        Ok(())
    }

    /// Waits until every rank reaches the barrier.
    pub fn barrier(&self) -> Result<()> {
        match self {
            Communicator::Local => Ok(()),
            Communicator::Threads(t) => t.barrier(),
            #[cfg(feature = "mpi")]
            Communicator::Mpi(m) => m.barrier(),
        }
    }

    fn check_rank(&self, root: usize, op: &str) -> Result<()> {
        if root >= self.world_size() {
            return Err(Error::Dist(format!(
                "{op} from rank {root} in a world of {}",
                self.world_size()
            )));
        }
        Ok(())
    }

    fn check_len(&self, op: &str, want: usize, got: usize) -> Result<()> {
        if want != got {
            return Err(Error::Dist(format!(
                "{op}: buffer of {got} elements, {want} expected for world size {}",
                self.world_size()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_collectives_are_the_identity() {
        let c = Communicator::Local;
        let mut v = vec![1.0f32, -2.0, 3.5];
        c.all_reduce(&mut v, ReduceOp::Average).unwrap();
        c.broadcast(&mut v, 0).unwrap();
        assert_eq!(v, [1.0, -2.0, 3.5]);
        let mut g = vec![0.0f64; 2];
        c.all_gather(&[4.0, 5.0], &mut g).unwrap();
        assert_eq!(g, [4.0, 5.0]);
        c.reduce_scatter(&[6.0, 7.0], &mut g, ReduceOp::Sum)
            .unwrap();
        assert_eq!(g, [6.0, 7.0]);
        let p = c
            .start_all_reduce(vec![2.0, 4.0], ReduceOp::Average)
            .unwrap();
        assert_eq!(p.wait().unwrap(), [2.0, 4.0]);
        assert!(c
            .broadcast(&mut v, 1)
            .unwrap_err()
            .to_string()
            .contains("rank 1"));
        let e = c.all_gather(&[1.0f32], &mut [0.0; 2]).unwrap_err();
        assert!(e.to_string().contains("all_gather"), "{e}");
        c.barrier().unwrap();
    }
}
