//! One process, many devices: one thread per CUDA device, the threads the ranks of an in-process
//! [`Communicator`] (the DP mode of `--device cuda:0,1,...`). DDP, SyncBN and the metric
//! reductions run over it as they do across processes. Gradient buckets go through one NCCL
//! communicator over the devices when NCCL serves them (feature `nccl`), else between the
//! devices by peer copies where peer access is on, else through host memory.

use super::communicator::Communicator;
use super::device_reduce::Path;
use super::threads::ThreadComm;
use crate::{Error, Result};
use kiln_engine::Device;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

/// Runs `run(device, comm)` on one thread per ordinal, rank r on `cuda:ordinals[r]`, and returns
/// the ranks' results in rank order. Every device is opened first (a missing one is an error
/// before any thread starts). A rank that fails or panics stops the others' collectives; the
/// error returned is that of the rank that failed first. A rank that does not come to a
/// collective within `timeout` is named and fails the others' collectives (its own thread must
/// still return before this does). (With NCCL, a rank that fails while the others wait inside an
/// NCCL collective is not detected: they wait for it.)
pub fn on_device_threads<T: Send>(
    ordinals: &[usize],
    timeout: Duration,
    run: impl Fn(Device, Arc<Communicator>) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    for &n in ordinals {
        kiln_engine::cuda::device(n)?;
    }
    let comms: Vec<Arc<Communicator>> = thread_comms(ordinals, timeout)?
        .into_iter()
        .map(|t| Arc::new(Communicator::Threads(t)))
        .collect();
    let results: Vec<Result<T>> = std::thread::scope(|s| {
        let handles: Vec<_> = ordinals
            .iter()
            .zip(&comms)
            .map(|(&n, comm)| {
                let run = &run;
                std::thread::Builder::new()
                    .name(format!("kiln-cuda:{n}"))
                    .spawn_scoped(s, move || rank_thread(Device::Cuda(n), comm, run))
            })
            .collect();
        handles
            .into_iter()
            .zip(ordinals)
            .map(|(h, n)| match h {
                Ok(h) => h.join().unwrap_or_else(|_| Err(died(*n))),
                Err(e) => Err(Error::Dist(format!(
                    "cannot start the thread of cuda:{n}: {e}"
                ))),
            })
            .collect()
    });
    match comms.first().and_then(|c| c.failed_rank()) {
        Some(r) => Err(results
            .into_iter()
            .nth(r)
            .and_then(Result::err)
            .unwrap_or_else(|| died(ordinals[r]))),
        None => results.into_iter().collect(),
    }
}

/// The ranks' ends of the device threads' communicator, with NCCL attached when it serves.
fn thread_comms(ordinals: &[usize], timeout: Duration) -> Result<Vec<ThreadComm>> {
    let path = Path::for_devices(ordinals)?;
    #[allow(unused_mut)]
    let mut comms = ThreadComm::group_over(ordinals.len(), path, timeout);
    #[cfg(feature = "nccl")]
    match super::nccl::for_devices(ordinals, timeout)? {
        Ok(nccl) => comms.iter_mut().zip(nccl).for_each(|(t, n)| t.use_nccl(n)),
        Err(reason) => super::nccl::fall_back(&reason, path.name()),
    }
    Ok(comms)
}

fn died(ordinal: usize) -> Error {
    Error::Dist(format!("the thread of cuda:{ordinal} died"))
}

/// One rank: runs `run`, and on an error or a panic tells the other ranks.
fn rank_thread<T>(
    device: Device,
    comm: &Arc<Communicator>,
    run: &(impl Fn(Device, Arc<Communicator>) -> Result<T> + Sync),
) -> Result<T> {
    let result =
        catch_unwind(AssertUnwindSafe(|| run(device, comm.clone()))).unwrap_or_else(|panic| {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(Error::Dist(format!(
                "the thread of {device} panicked: {why}"
            )))
        });
    if result.is_err() {
        comm.abort();
    }
    result
}
