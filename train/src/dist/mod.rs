//! Data-parallel training: process groups from the launcher's environment, a [`Communicator`]
//! (MPI for CPU ranks behind the `mpi` feature, TCP through rank 0 between processes without it,
//! NCCL for GPU ranks behind the `nccl` feature, one rank per device thread of this process, or a
//! single local rank; each backend implements [`Collectives`], whose default methods hold the
//! algorithms the backends share), DDP's gradient buckets and SyncBN's statistics reduction. The TCP
//! [`rendezvous`] exchanges the names MPI, NCCL or the TCP collectives need to connect. Between
//! the device threads of one process, gradient buckets go through NCCL, or device peer copies, or
//! host memory; the other collectives meet in host memory.
//!
//! ```no_run
//! use kiln_train::dist::{Communicator, ReduceOp};
//! let comm = Communicator::from_env()?;
//! let mut grads = vec![1.0f32; 4];
//! comm.all_reduce(&mut grads, ReduceOp::Average)?;
//! # Ok::<(), kiln_train::Error>(())
//! ```
mod collectives;
mod communicator;
mod ddp;
mod deadline;
mod device_reduce;
mod device_threads;
mod element;
mod group;
mod host_bucket;
#[cfg(feature = "mpi")]
mod mpi;
#[cfg(feature = "mpi")]
mod mpi_arrivals;
#[cfg(feature = "mpi")]
mod mpi_grad_thread;
#[cfg(feature = "mpi")]
mod mpi_ops;
#[cfg(feature = "mpi")]
mod mpi_timed;
#[cfg(feature = "nccl")]
pub mod nccl;
#[cfg_attr(not(feature = "nccl"), allow(dead_code))]
mod nccl_id;
pub mod rendezvous;
// Only the MPI and NCCL setup calls block without a deadline of their own.
#[cfg_attr(not(any(feature = "mpi", feature = "nccl")), allow(dead_code))]
mod setup_deadline;
mod sync_bn;
mod tcp;
mod tensor_collectives;
mod threads;

pub use collectives::Collectives;
pub use communicator::{Bucket, Communicator, HostBucket, PendingReduce};
pub use ddp::{Ddp, DdpEvent, DdpOptions, ReduceTimes};
pub use device_threads::on_device_threads;
pub use element::{Element, ReduceOp, Wire};
pub use group::{Launcher, ProcessGroup, DEFAULT_TIMEOUT, OMPI_SERVER_VAR};
pub use sync_bn::{dist_bn, enable_sync_bn, DistBn};
