//! DDP's MPI gradient thread: it all-reduces host buckets one after another, on a communicator
//! of its own (a duplicate of the job's, so its collectives never interleave with SyncBN's or
//! the metrics' on the job's communicator), while the training thread goes on with backward.
//! On a thread of their own, not on the training thread: OpenMPI's non-blocking collectives
//! (libnbc) progress only inside MPI calls, which this thread makes while it waits for each
//! bucket (MPI_Iallreduce tested against the timeout, see `mpi_timed`).

use super::element::ReduceOp;
use super::host_bucket::HostBucket;
use super::mpi_ops::reduce_bucket;
use super::mpi_timed::TimedComm;
use crate::{Error, Result};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

/// A bucket to reduce and where to send it back.
struct Job {
    bucket: HostBucket,
    op: ReduceOp,
    reply: SyncSender<Result<HostBucket>>,
}

/// The gradient thread; dropping it finishes the queued buckets and joins it.
pub struct GradThread {
    jobs: Option<Sender<Job>>,
    handle: Option<JoinHandle<()>>,
}

/// The thread's communicator.
struct OwnedComm(TimedComm);

// SAFETY: the communicator moves to the gradient thread, the only thread that uses it (MPI is
// initialized with MPI_THREAD_MULTIPLE whenever a gradient thread exists).
unsafe impl Send for OwnedComm {}

impl GradThread {
    /// Starts the thread on `comm` (every rank must create its thread, in the same order).
    pub fn spawn(comm: TimedComm) -> Result<GradThread> {
        let comm = OwnedComm(comm);
        let (jobs, queue) = mpsc::channel::<Job>();
        let handle = std::thread::Builder::new()
            .name("kiln-mpi-grads".into())
            .spawn(move || {
                let mut comm = comm;
                for mut job in queue {
                    let done = reduce_bucket(&mut comm.0, &mut job.bucket, job.op);
                    // The receiver is gone only when its round failed; nothing waits for it.
                    let _ = job.reply.send(done.map(|()| job.bucket));
                }
            })
            .map_err(|e| Error::Dist(format!("cannot start the MPI gradient thread: {e}")))?;
        Ok(GradThread {
            jobs: Some(jobs),
            handle: Some(handle),
        })
    }

    /// Queues `bucket`; the receiver yields it with `recv` filled.
    pub fn submit(&self, bucket: HostBucket, op: ReduceOp) -> Result<Receiver<Result<HostBucket>>> {
        let (reply, done) = mpsc::sync_channel(1);
        let stopped = || Error::Dist("the MPI gradient thread has stopped".into());
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        jobs.send(Job { bucket, op, reply })
            .map_err(|_| stopped())?;
        Ok(done)
    }
}

impl Drop for GradThread {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(handle) = self.handle.take() {
            // A panic on the thread has already been reported by the panic hook.
            let _ = handle.join();
        }
    }
}
