//! A deadline for the setup calls that block inside a library and cannot be polled: `MPI_Init`,
//! the connect and accept that join singleton MPI ranks, NCCL's `ncclCommInitRank`. A watchdog
//! thread waits for the call to return; when `--dist-timeout` passes first, it says which call
//! on which rank did not finish and ends the process at once, with exit status 1. A rank stuck
//! inside MPI or NCCL cannot unwind, and MPI's exit handlers would wait on the same missing
//! peers; ending the process lets mpirun, torchrun or `kiln launch` end or restart the job.

use crate::{Error, Result};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Watches one blocking setup call; dropping it (the call returned) stops the watch.
pub struct SetupDeadline {
    returned: Arc<(Mutex<bool>, Condvar)>,
    watcher: Option<JoinHandle<()>>,
}

impl SetupDeadline {
    /// Watches `call` on `rank` for `timeout`; past it, prints the error and ends the process.
    pub fn arm(call: &str, rank: usize, timeout: Duration) -> Result<SetupDeadline> {
        Self::arm_with(timeout, message(call, rank, timeout), end_process)
    }

    /// As [`arm`](Self::arm), running `expire(message)` on the watcher instead.
    fn arm_with(
        timeout: Duration,
        message: String,
        expire: impl FnOnce(&str) + Send + 'static,
    ) -> Result<SetupDeadline> {
        let returned = Arc::new((Mutex::new(false), Condvar::new()));
        let watched = Arc::clone(&returned);
        let watcher = std::thread::Builder::new()
            .name("kiln-setup-deadline".into())
            .spawn(move || {
                if !returns_within(&watched, timeout) {
                    expire(&message);
                }
            })
            .map_err(|e| Error::Dist(format!("cannot start the setup watchdog thread: {e}")))?;
        Ok(SetupDeadline {
            returned,
            watcher: Some(watcher),
        })
    }
}

impl Drop for SetupDeadline {
    fn drop(&mut self) {
        let (flag, wake) = &*self.returned;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_one();
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
    }
}

/// Whether the flag is set within `timeout` (spurious wake-ups wait again for the time left).
fn returns_within(returned: &(Mutex<bool>, Condvar), timeout: Duration) -> bool {
    let (flag, wake) = returned;
    let deadline = Instant::now() + timeout;
    let mut done = flag.lock().unwrap_or_else(|e| e.into_inner());
    while !*done {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        done = wake
            .wait_timeout(done, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    true
}

fn message(call: &str, rank: usize, timeout: Duration) -> String {
    format!(
        "{call} did not return within {timeout:?} (--dist-timeout) on rank {rank}: another rank \
         of the job did not start, stopped, or cannot be reached from this host; ending this rank"
    )
}

/// Prints the error line and ends the process without running exit handlers.
fn end_process(message: &str) {
    extern "C" {
        fn _exit(status: std::ffi::c_int) -> !;
    }
    eprintln!("error: {message}");
    // SAFETY: _exit (POSIX) ends the process and takes no pointers; skipping the exit handlers
    // is the point (MPI's would wait on the peers that are missing).
    unsafe { _exit(1) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_call_that_returns_in_time_is_not_reported() {
        let (tx, rx) = mpsc::channel();
        let watch = SetupDeadline::arm_with(Duration::from_secs(5), "late".into(), move |m| {
            tx.send(m.to_string()).unwrap()
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        drop(watch);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_call_past_the_timeout_is_reported_once_with_its_rank() {
        let (tx, rx) = mpsc::channel();
        let timeout = Duration::from_millis(50);
        let start = Instant::now();
        let watch = SetupDeadline::arm_with(timeout, message("MPI_Init", 3, timeout), move |m| {
            tx.send(m.to_string()).unwrap()
        })
        .unwrap();
        let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(start.elapsed() >= timeout);
        assert!(
            got.starts_with("MPI_Init did not return within 50ms (--dist-timeout) on rank 3"),
            "{got}"
        );
        drop(watch);
        assert!(rx.try_recv().is_err());
    }
}
