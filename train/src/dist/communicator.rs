//! The collectives data-parallel training needs, over one process (local), the device threads of
//! one process, MPI, TCP, or NCCL.

use super::collectives::{Collectives, LocalComm};
use super::element::{Element, ReduceOp};
use super::group::ProcessGroup;
pub use super::host_bucket::HostBucket;
use super::tcp::TcpComm;
use super::threads::{ThreadComm, Ticket};
use crate::{Error, Result};
use kiln_engine::{Device, Tensor};
use std::sync::Arc;

/// How buckets travel between processes when they are reduced in host memory.
const HOST_PATH: &str = if cfg!(feature = "mpi") {
    "MPI through host memory"
} else {
    "TCP through host memory"
};

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
    /// Processes of a build without MPI, started by `kiln launch` or torchrun: TCP through rank 0.
    Tcp(TcpComm),
    /// One GPU per process over NCCL (feature `nccl`); host buffers are staged through it.
    #[cfg(feature = "nccl")]
    Nccl(super::nccl::NcclComm),
}

/// A flat f32 gradient bucket for [`Communicator::start_all_reduce`]: a tensor on the gradients'
/// device, or packed host buffers where the communicator reduces in host memory (MPI; see
/// [`Communicator::stages_on_host`]).
#[derive(Debug)]
pub enum Bucket {
    /// A flat f32 tensor on any device.
    Device(Tensor),
    /// Host buffers kept from step to step.
    Host(HostBucket),
}

impl Bucket {
    /// The bucket as a flat f32 tensor (host buckets: their packed values, on the host).
    fn into_tensor(self) -> Result<Tensor> {
        match self {
            Bucket::Device(t) => Ok(t),
            Bucket::Host(h) => {
                let n = h.send.len();
                Ok(Tensor::from_vec(h.send, &[n])?)
            }
        }
    }
}

/// Evaluates `$body` with `$b` bound to the backend of `$comm` (a `&impl Collectives`): the
/// one match through which the collectives reach the backends.
macro_rules! on_backend {
    ($comm:expr, $b:ident => $body:expr) => {
        match $comm {
            Communicator::Local => {
                let $b = &LocalComm;
                $body
            }
            Communicator::Threads($b) => $body,
            #[cfg(feature = "mpi")]
            Communicator::Mpi($b) => $body,
            Communicator::Tcp($b) => $body,
            #[cfg(feature = "nccl")]
            Communicator::Nccl($b) => $body,
        }
    };
}

/// An all-reduce started by [`Communicator::start_all_reduce`], finished by `wait`.
pub struct PendingReduce {
    inner: Pending,
}

enum Pending {
    /// Reduced (NCCL: queued on the tensor's stream; local: nothing to do), averaged if asked.
    Ready(Bucket),
    /// Posted to the device threads' table.
    Threads(Ticket),
    /// An MPI all-reduce of host buffers.
    #[cfg(feature = "mpi")]
    Mpi {
        request: super::mpi::MpiBucketReduce,
        average: Option<usize>,
    },
}

impl PendingReduce {
    /// Waits for the reduction and returns the bucket: a tensor on the input's device, or host
    /// buffers whose `recv` holds the sums and `divide_by` the average's divisor.
    pub fn wait(self, comm: &Communicator) -> Result<Bucket> {
        match (self.inner, comm) {
            (Pending::Ready(Bucket::Host(mut h)), _) => {
                std::mem::swap(&mut h.send, &mut h.recv);
                h.divide_by = 1;
                Ok(Bucket::Host(h))
            }
            (Pending::Ready(b), _) => Ok(b),
            (Pending::Threads(ticket), Communicator::Threads(t)) => {
                Ok(Bucket::Device(t.finish_reduce(ticket)?))
            }
            (Pending::Threads(_), _) => Err(Error::Dist(
                "a device-thread all-reduce waited on another communicator".into(),
            )),
            #[cfg(feature = "mpi")]
            (Pending::Mpi { request, average }, Communicator::Mpi(m)) => {
                let mut bucket = request.wait(m)?;
                bucket.divide_by = average.unwrap_or(1);
                Ok(Bucket::Host(bucket))
            }
            #[cfg(feature = "mpi")]
            (Pending::Mpi { .. }, _) => Err(Error::Dist(
                "an MPI all-reduce waited on another communicator".into(),
            )),
        }
    }
}

impl Communicator {
    /// The communicator the launcher's environment asks for (see [`ProcessGroup::from_env`]):
    /// local for one process, MPI for several.
    pub fn from_env() -> Result<Arc<Communicator>> {
        Communicator::for_group(&ProcessGroup::from_env()?).map(Arc::new)
    }

    /// The communicator of `group` for ranks that compute on `device`: NCCL for CUDA ranks when
    /// it loads (feature `nccl`; otherwise the reason is logged once), else as
    /// [`Communicator::for_group`].
    pub fn for_group_on(group: &ProcessGroup, device: Device) -> Result<Communicator> {
        #[cfg(feature = "nccl")]
        if let (Device::Cuda(ordinal), true) = (device, group.world_size > 1) {
            match super::nccl::for_process(group, ordinal)? {
                Ok(comm) => return Ok(Communicator::Nccl(comm)),
                Err(reason) => super::nccl::fall_back(&reason, HOST_PATH),
            }
        }
        let _ = device;
        Communicator::for_group(group)
    }

    /// The communicator of `group` through host memory: MPI between processes (feature `mpi`),
    /// else TCP through rank 0 for ranks that `kiln launch` or torchrun started.
    pub fn for_group(group: &ProcessGroup) -> Result<Communicator> {
        if group.world_size == 1 {
            return Ok(Communicator::Local);
        }
        #[cfg(feature = "mpi")]
        {
            super::mpi::MpiComm::join(group).map(Communicator::Mpi)
        }
        #[cfg(not(feature = "mpi"))]
        match group.launcher {
            super::Launcher::Torchrun => TcpComm::join(group).map(Communicator::Tcp),
            launcher => Err(Error::Dist(format!(
                "{launcher:?} asks for {} processes, which join through MPI, but this kiln was \
                 built without it: rebuild with `cargo build --release --features mpi` (needs \
                 Debian's libopenmpi-dev, openmpi-bin and libclang-dev), or start the ranks with \
                 `kiln launch` or torchrun (TCP)",
                group.world_size
            ))),
        }
    }

    /// `world` communicators over the threads of this process, rank 0 first (one per thread),
    /// whose collectives wait up to `timeout` for the other ranks.
    pub fn threads(world: usize, timeout: std::time::Duration) -> Vec<Communicator> {
        ThreadComm::group(world, timeout)
            .into_iter()
            .map(Communicator::Threads)
            .collect()
    }

    /// How CUDA buckets travel between the ranks: "NCCL", "device peer copies", "host memory"
    /// (device threads), "MPI through host memory", "TCP through host memory", or "none" for one
    /// rank.
    pub fn path_name(&self) -> &'static str {
        match self {
            Communicator::Local => "none",
            Communicator::Threads(t) => t.path_name(),
            #[cfg(feature = "mpi")]
            Communicator::Mpi(_) => HOST_PATH,
            Communicator::Tcp(_) => HOST_PATH,
            #[cfg(feature = "nccl")]
            Communicator::Nccl(_) => "NCCL",
        }
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
        on_backend!(self, b => b.rank())
    }

    /// The number of ranks.
    pub fn world_size(&self) -> usize {
        on_backend!(self, b => b.world_size())
    }

    /// Whether this is rank 0 (the rank that logs and saves).
    pub fn is_main(&self) -> bool {
        self.rank() == 0
    }

    /// Combines `buf` across ranks in place: every rank ends with the same values.
    pub fn all_reduce<T: Element>(&self, buf: &mut [T], op: ReduceOp) -> Result<()> {
        on_backend!(self, b => b.all_reduce(buf, op))?;
        self.finish_average(buf, op);
        Ok(())
    }

    /// Whether gradient buckets are reduced in host memory (MPI), so DDP packs them into
    /// [`HostBucket`]s it keeps, rather than flat tensors on their device.
    pub fn stages_on_host(&self) -> bool {
        match self {
            #[cfg(feature = "mpi")]
            Communicator::Mpi(_) => true,
            _ => false,
        }
    }

    /// Starts an all-reduce of a flat f32 bucket that runs while the caller goes on (DDP starts
    /// one per bucket from the autograd hook, before the other ranks reach it). NCCL reduces in
    /// place on the tensor's stream; device threads without NCCL post it (see
    /// `ThreadComm::start_reduce`); MPI reduces host buffers on its gradient thread.
    pub fn start_all_reduce(&self, bucket: Bucket, op: ReduceOp) -> Result<PendingReduce> {
        let inner = match self {
            Communicator::Local => Pending::Ready(bucket),
            Communicator::Threads(t) => {
                Pending::Threads(t.start_reduce(bucket.into_tensor()?, op)?)
            }
            #[cfg(feature = "mpi")]
            Communicator::Mpi(m) => {
                let host = match bucket {
                    Bucket::Host(h) => h,
                    Bucket::Device(t) => HostBucket::from_tensor(&t)?,
                };
                Pending::Mpi {
                    request: m.start_bucket(host, op)?,
                    average: (op == ReduceOp::Average).then(|| m.world_size()),
                }
            }
            Communicator::Tcp(_) => {
                let flat = bucket.into_tensor()?;
                let mut sums = flat.to_vec_f32()?;
                self.all_reduce(&mut sums, op)?;
                let reduced = Tensor::from_vec(sums, flat.shape())?.to_device(flat.device())?;
                Pending::Ready(Bucket::Device(reduced))
            }
            #[cfg(feature = "nccl")]
            Communicator::Nccl(n) => {
                let flat = bucket.into_tensor()?;
                n.all_reduce_tensor(&flat, op)?;
                Pending::Ready(Bucket::Device(flat))
            }
        };
        Ok(PendingReduce { inner })
    }

    /// Waits, up to the job's timeout, for the all-reduces [`Communicator::start_all_reduce`]
    /// queued on this rank's device stream (NCCL, which aborts its communicator on a timeout);
    /// the other backends wait in `PendingReduce::wait`.
    pub fn wait_queued(&self) -> Result<()> {
        match self {
            #[cfg(feature = "nccl")]
            Communicator::Nccl(n) => n.wait_queued("ncclAllReduce of the gradient buckets"),
            _ => Ok(()),
        }
    }

    /// Copies rank `root`'s `buf` into every rank's `buf`.
    pub fn broadcast<T: Element>(&self, buf: &mut [T], root: usize) -> Result<()> {
        self.check_rank(root, "broadcast")?;
        on_backend!(self, b => b.broadcast(buf, root))
    }

    /// Concatenates every rank's `send` in rank order into `recv` (world_size × send.len()).
    pub fn all_gather<T: Element>(&self, send: &[T], recv: &mut [T]) -> Result<()> {
        on_backend!(self, b => b.all_gather(send, recv))
    }

    /// Reduces `send` (world_size blocks of recv.len()) across ranks and leaves block `rank`
    /// of the result in `recv`.
    pub fn reduce_scatter<T: Element>(
        &self,
        send: &[T],
        recv: &mut [T],
        op: ReduceOp,
    ) -> Result<()> {
        on_backend!(self, b => b.reduce_scatter(send, recv, op))?;
        self.finish_average(recv, op);
        Ok(())
    }

    /// Waits until every rank reaches the barrier.
    pub fn barrier(&self) -> Result<()> {
        on_backend!(self, b => b.barrier())
    }

    /// Divides the sums a backend left in `buf` by the world size when `op` is
    /// [`ReduceOp::Average`].
    fn finish_average<T: Element>(&self, buf: &mut [T], op: ReduceOp) {
        if op == ReduceOp::Average {
            let n = self.world_size();
            buf.iter_mut().for_each(|v| *v = v.div_by(n));
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
        let flat = Tensor::from_vec(vec![2.0f32, 4.0], &[2]).unwrap();
        let p = c
            .start_all_reduce(Bucket::Device(flat), ReduceOp::Average)
            .unwrap();
        let Bucket::Device(t) = p.wait(&c).unwrap() else {
            panic!("a device bucket came back as host buffers")
        };
        assert_eq!(t.to_vec_f32().unwrap(), [2.0, 4.0]);
        let mut host = HostBucket::with_len(2);
        host.send = vec![3.0, 5.0];
        let p = c
            .start_all_reduce(Bucket::Host(host), ReduceOp::Average)
            .unwrap();
        let Bucket::Host(h) = p.wait(&c).unwrap() else {
            panic!("host buffers came back as a device bucket")
        };
        assert_eq!((h.recv.as_slice(), h.divide_by), ([3.0, 5.0].as_slice(), 1));
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
