//! The MPI backend (the `mpi` crate over OpenMPI): ranks joined by mpirun or SLURM, or, when
//! `kiln launch` (torchrun's variables) started them as MPI singletons, joined here with
//! `MPI_Comm_accept` / `MPI_Comm_connect` and `MPI_Intercomm_merge`. OpenMPI 4 lets singletons
//! connect only through an `ompi-server`, which `kiln launch` starts; its address reaches each
//! rank in `OMPI_MCA_pmix_server_uri`, and the MPI port name over the TCP rendezvous.

use super::collectives::{check_blocks, Collectives};
use super::element::{Element, ReduceOp};
use super::group::{Launcher, ProcessGroup};
use super::host_bucket::HostBucket;
use super::mpi_grad_thread::GradThread;
use super::mpi_ops::{count, datatype, mpi_op, reduce_bucket};
use super::mpi_timed::TimedComm;
use super::rendezvous::Store;
use super::setup_deadline::SetupDeadline;
use crate::{Error, Result};
use mpi::environment::Universe;
use mpi::ffi;
use mpi::raw::FromRaw;
use mpi::topology::{Communicator as _, SimpleCommunicator};
use mpi::traits::Equivalence;
use mpi::Threading;
use std::ffi::{c_char, c_int, CStr};
use std::sync::mpsc::Receiver;
use std::sync::{Mutex, MutexGuard};

use super::group::OMPI_SERVER_VAR;
use super::mpi_arrivals::check;

/// An MPI communicator over the job's ranks, ordered by rank.
pub struct MpiComm {
    /// The job's communicator, its collectives timed; the lock serializes MPI calls on it (MPI
    /// is initialized with MPI_THREAD_SERIALIZED or better).
    /// Boxed: the record makes it large, and `Communicator` holds it inline.
    comm: Box<Mutex<TimedComm>>,
    rank: usize,
    world: usize,
    /// DDP's gradient thread, on a duplicate of `comm` (only under MPI_THREAD_MULTIPLE).
    /// Declared before `_universe` so it stops before MPI is finalized.
    grads: Option<GradThread>,
    /// Finalizes MPI when the communicator goes.
    _universe: Universe,
}

// SAFETY: the handles are only used under the mutex (one MPI call at a time), which
// MPI_THREAD_SERIALIZED, checked at initialization, allows from any thread.
unsafe impl Send for MpiComm {}
// SAFETY: as for Send: every use of the handles takes the mutex.
unsafe impl Sync for MpiComm {}

impl std::fmt::Debug for MpiComm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MpiComm(rank {} of {})", self.rank, self.world)
    }
}

/// Whether DDP may reduce on a gradient thread (`KILN_MPI_GRAD_THREAD=0` keeps every MPI call
/// on the training thread, for MPI builds whose MPI_THREAD_MULTIPLE misbehaves; every rank must
/// see the same setting, as `mpirun -x` passes it).
fn grad_thread_wanted() -> bool {
    std::env::var("KILN_MPI_GRAD_THREAD").map_or(true, |v| v != "0")
}

/// A host bucket's all-reduce: queued on the gradient thread (MPI_THREAD_MULTIPLE), or
/// deferred to [`MpiBucketReduce::wait`] where MPI grants only MPI_THREAD_SERIALIZED.
pub enum MpiBucketReduce {
    /// On the gradient thread; the bucket comes back on the channel.
    Queued(Receiver<Result<HostBucket>>),
    /// Reduced on the calling thread at `wait`.
    Deferred(HostBucket, ReduceOp),
}

impl MpiBucketReduce {
    /// Waits for the reduction; the bucket's `recv` holds the combined values.
    pub fn wait(self, comm: &MpiComm) -> Result<HostBucket> {
        match self {
            MpiBucketReduce::Queued(reply) => reply.recv().map_err(|_| {
                Error::Dist("the MPI gradient thread stopped before finishing a bucket".into())
            })?,
            MpiBucketReduce::Deferred(mut bucket, op) => {
                reduce_bucket(&mut comm.locked(), &mut bucket, op)?;
                Ok(bucket)
            }
        }
    }
}

impl MpiComm {
    /// Initializes MPI and joins the ranks of `group`; its collectives wait up to
    /// `group.timeout`.
    pub fn join(group: &ProcessGroup) -> Result<MpiComm> {
        let store = match group.launcher {
            Launcher::Torchrun => Some(rendezvous_store(group)?),
            _ => None,
        };
        let watch = SetupDeadline::arm("MPI_Init", group.rank, group.timeout)?;
        let (universe, threading) = mpi::initialize_with_threading(Threading::Multiple)
            .ok_or_else(|| Error::Dist("MPI is already initialized in this process".into()))?;
        drop(watch);
        if threading < Threading::Serialized {
            return Err(Error::Dist(format!(
                "this MPI library grants {threading:?} threading; kiln needs Serialized"
            )));
        }
        let world = universe.world();
        let comm = match store {
            Some(store) if world.size() == 1 => {
                let _watch = SetupDeadline::arm(
                    "joining the singleton MPI ranks (MPI_Comm_connect/accept)",
                    group.rank,
                    group.timeout,
                )?;
                join_singletons(group, &store)?
            }
            _ => world,
        };
        let size = comm.size() as usize;
        if size != group.world_size || comm.rank() as usize != group.rank {
            return Err(Error::Dist(format!(
                "MPI joined {size} processes (this one rank {}), but the launcher's variables \
                 say rank {} of {} (under SLURM, start with `srun --mpi=pmix`)",
                comm.rank(),
                group.rank,
                group.world_size
            )));
        }
        let comm = TimedComm::new(comm, group.timeout, "")?;
        let grads = if threading == Threading::Multiple && grad_thread_wanted() {
            let own = TimedComm::new(comm.duplicate(), group.timeout, " on the gradient thread")?;
            Some(GradThread::spawn(own)?)
        } else {
            None
        };
        Ok(MpiComm {
            comm: Box::new(Mutex::new(comm)),
            rank: group.rank,
            world: group.world_size,
            grads,
            _universe: universe,
        })
    }

    fn locked(&self) -> MutexGuard<'_, TimedComm> {
        self.comm.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the all-reduce of a host bucket: on the gradient thread, which runs it while the
    /// caller goes on, or (without MPI_THREAD_MULTIPLE) at `wait`.
    pub fn start_bucket(&self, bucket: HostBucket, op: ReduceOp) -> Result<MpiBucketReduce> {
        Ok(match &self.grads {
            Some(thread) => MpiBucketReduce::Queued(thread.submit(bucket, op)?),
            None => MpiBucketReduce::Deferred(bucket, op),
        })
    }

    /// Broadcast of raw bytes from `root` (NCCL's unique id).
    pub fn broadcast_bytes(&self, buf: &mut [u8], root: usize) -> Result<()> {
        self.broadcast_raw(buf, root)
    }

    fn broadcast_raw<T: Equivalence>(&self, buf: &mut [T], root: usize) -> Result<()> {
        let n = count(buf.len(), "broadcast")?;
        let ptr = buf.as_mut_ptr();
        self.locked().run("broadcast", |c, request| {
            // SAFETY: buf holds n elements and outlives the collective.
            unsafe { ffi::MPI_Ibcast(ptr.cast(), n, datatype::<T>(), root as c_int, c, request) }
        })
    }
}

/// Every collective is MPI's own (non-blocking, timed by [`TimedComm`]).
impl Collectives for MpiComm {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.world
    }

    fn all_reduce<T: Element>(&self, buf: &mut [T], op: ReduceOp) -> Result<()> {
        let n = count(buf.len(), "all_reduce")?;
        let send = buf.to_vec();
        let recv = buf.as_mut_ptr();
        self.locked().run("all_reduce", |c, request| {
            // SAFETY: send and buf hold n elements each and outlive the collective.
            unsafe {
                ffi::MPI_Iallreduce(
                    send.as_ptr().cast(),
                    recv.cast(),
                    n,
                    datatype::<T>(),
                    mpi_op(op),
                    c,
                    request,
                )
            }
        })
    }

    fn broadcast<T: Element>(&self, buf: &mut [T], root: usize) -> Result<()> {
        self.broadcast_raw(buf, root)
    }

    // Native: MPI_Iallgather, one collective instead of a broadcast per rank.
    fn all_gather<T: Element>(&self, send: &[T], recv: &mut [T]) -> Result<()> {
        check_blocks("all_gather", send.len(), recv.len(), self.world)?;
        let n = count(send.len(), "all_gather")?;
        let recv = recv.as_mut_ptr();
        self.locked().run("all_gather", |c, request| {
            let t = datatype::<T>();
            // SAFETY: send holds n elements, recv world × n (checked above), and both outlive
            // the collective.
            unsafe {
                ffi::MPI_Iallgather(send.as_ptr().cast(), n, t, recv.cast(), n, t, c, request)
            }
        })
    }

    // Native: MPI_Ireduce_scatter_block moves each rank only its block, not the whole sum.
    fn reduce_scatter<T: Element>(&self, send: &[T], recv: &mut [T], op: ReduceOp) -> Result<()> {
        check_blocks("reduce_scatter", recv.len(), send.len(), self.world)?;
        let n = count(recv.len(), "reduce_scatter")?;
        let recv = recv.as_mut_ptr();
        self.locked().run("reduce_scatter", |c, request| {
            // SAFETY: recv holds n elements, send world × n (checked above), and both outlive
            // the collective.
            unsafe {
                ffi::MPI_Ireduce_scatter_block(
                    send.as_ptr().cast(),
                    recv.cast(),
                    n,
                    datatype::<T>(),
                    mpi_op(op),
                    c,
                    request,
                )
            }
        })
    }

    // Native: MPI_Ibarrier carries no buffer.
    fn barrier(&self) -> Result<()> {
        self.locked().run("barrier", |c, request| {
            // SAFETY: a barrier reads and writes no buffer.
            unsafe { ffi::MPI_Ibarrier(c, request) }
        })
    }
}

/// The rendezvous of a torchrun-style job (hosted by rank 0 at MASTER_PORT; under torchrun
/// itself, whose own store holds MASTER_PORT, at MASTER_PORT + 1), with the ompi-server's
/// address shared through it so ranks on other nodes can reach it.
fn rendezvous_store(group: &ProcessGroup) -> Result<Store> {
    let store = super::rendezvous::join(group)?;
    let uri = std::env::var(OMPI_SERVER_VAR).ok();
    match (group.rank, uri) {
        (0, Some(uri)) => store.set("ompi-server", &uri)?,
        (0, None) => {
            return Err(Error::Dist(format!(
                "{} ranks started without mpirun need an ompi-server to connect (OpenMPI 4 \
                 singletons cannot MPI_Comm_connect otherwise): start them with `kiln launch`, \
                 which runs one, or set {OMPI_SERVER_VAR}",
                group.world_size
            )))
        }
        (_, Some(_)) => {}
        // Set before MPI_Init reads it, while no other thread reads the environment.
        (_, None) => std::env::set_var(OMPI_SERVER_VAR, store.get("ompi-server")?),
    }
    Ok(store)
}

/// Joins singleton ranks into one communicator: rank 0 opens an MPI port and publishes its
/// name; every rank connects once, and the ranks already joined accept each newcomer together
/// and merge it in, until all are there; a final split orders them by RANK.
fn join_singletons(group: &ProcessGroup, store: &Store) -> Result<SimpleCommunicator> {
    let mut port = vec![0 as c_char; ffi::MPI_MAX_PORT_NAME as usize + 1];
    // SAFETY: every call below gets valid handles and buffers of the sizes MPI documents
    // (port holds MPI_MAX_PORT_NAME characters and a NUL); the communicators it creates are
    // owned by the returned SimpleCommunicator or freed here.
    unsafe {
        let mut comm: ffi::MPI_Comm = ffi::RSMPI_COMM_SELF;
        if group.rank == 0 {
            check(
                ffi::MPI_Open_port(ffi::RSMPI_INFO_NULL, port.as_mut_ptr()),
                "MPI_Open_port",
            )?;
            let name = CStr::from_ptr(port.as_ptr()).to_string_lossy().into_owned();
            store.set("mpi-port", &name)?;
        } else {
            let name = store.get("mpi-port")?;
            for (dst, src) in port.iter_mut().zip(name.bytes()) {
                *dst = src as c_char;
            }
            let mut inter: ffi::MPI_Comm = ffi::RSMPI_COMM_NULL;
            let code = ffi::MPI_Comm_connect(
                port.as_ptr(),
                ffi::RSMPI_INFO_NULL,
                0,
                ffi::RSMPI_COMM_SELF,
                &mut inter,
            );
            check(code, "MPI_Comm_connect to rank 0's port")?;
            comm = merge(inter, true)?;
        }
        while size_of(comm) < group.world_size {
            let mut inter: ffi::MPI_Comm = ffi::RSMPI_COMM_NULL;
            let code =
                ffi::MPI_Comm_accept(port.as_ptr(), ffi::RSMPI_INFO_NULL, 0, comm, &mut inter);
            check(code, "MPI_Comm_accept")?;
            let merged = merge(inter, false)?;
            if comm != ffi::RSMPI_COMM_SELF {
                ffi::MPI_Comm_free(&mut comm);
            }
            comm = merged;
        }
        if group.rank == 0 {
            ffi::MPI_Close_port(port.as_ptr());
        }
        let mut ordered: ffi::MPI_Comm = ffi::RSMPI_COMM_NULL;
        check(
            ffi::MPI_Comm_split(comm, 0, group.rank as c_int, &mut ordered),
            "MPI_Comm_split",
        )?;
        if comm != ffi::RSMPI_COMM_SELF {
            ffi::MPI_Comm_free(&mut comm);
        }
        Ok(SimpleCommunicator::from_raw(ordered))
    }
}

/// Merges an inter-communicator into an intra-communicator (the newcomer's side `high`).
///
/// # Safety
/// `inter` must be a live inter-communicator; it is freed here.
unsafe fn merge(mut inter: ffi::MPI_Comm, high: bool) -> Result<ffi::MPI_Comm> {
    let mut intra: ffi::MPI_Comm = ffi::RSMPI_COMM_NULL;
    check(
        ffi::MPI_Intercomm_merge(inter, c_int::from(high), &mut intra),
        "MPI_Intercomm_merge",
    )?;
    ffi::MPI_Comm_free(&mut inter);
    Ok(intra)
}

/// The size of a live communicator.
///
/// # Safety
/// `comm` must be a live communicator.
unsafe fn size_of(comm: ffi::MPI_Comm) -> usize {
    let mut size: c_int = 0;
    ffi::MPI_Comm_size(comm, &mut size);
    size as usize
}
