//! Waiting on a collective that the library runs in the background (MPI's non-blocking
//! collectives, NCCL's kernels) against the job's timeout: its completion is queried until it
//! ends or the deadline passes, with short sleeps between queries rather than a busy spin that
//! would take a core from the training threads. What a backend does on a timeout (MPI names the
//! missing ranks and aborts the job; NCCL aborts its communicator) is the caller's.

use crate::{Error, Result};
use std::time::{Duration, Instant};

/// What a query of a running collective found.
// Only NCCL's waits query a running collective (the `nccl` feature) and the tests fake them.
#[cfg_attr(not(feature = "nccl"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// It completed.
    Done,
    /// It is still running.
    Running,
    /// It failed (the library's asynchronous error, in words).
    Failed(String),
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited {
    /// The collective completed.
    Done,
    /// The query reported an error.
    Failed(String),
    /// The deadline passed first.
    TimedOut,
}

/// Queries that answer at once before the wait starts sleeping: a collective between ranks
/// that are all there ends within microseconds to milliseconds, and each MPI query also drives
/// the library's progress.
const YIELDS: u32 = 64;
/// The longest sleep between two queries: what a completion may wait to be seen, at most.
const LONGEST_SLEEP: Duration = Duration::from_micros(500);

/// Queries `progress` until it reports the end of the collective or `deadline` passes: first
/// [`YIELDS`] times yielding the core in between, then sleeping 20 µs, doubled up to
/// [`LONGEST_SLEEP`].
pub fn wait_until(deadline: Instant, mut progress: impl FnMut() -> Progress) -> Waited {
    let mut polls = 0u32;
    let mut sleep = Duration::from_micros(20);
    loop {
        match progress() {
            Progress::Done => return Waited::Done,
            Progress::Failed(why) => return Waited::Failed(why),
            Progress::Running if Instant::now() >= deadline => return Waited::TimedOut,
            Progress::Running => {}
        }
        polls += 1;
        if polls <= YIELDS {
            std::thread::yield_now();
        } else {
            std::thread::sleep(sleep.min(deadline.saturating_duration_since(Instant::now())));
            sleep = (sleep * 2).min(LONGEST_SLEEP);
        }
    }
}

/// How much longer than the timeout a rank other than rank 0 waits: rank 0 judges which ranks
/// are missing, and its verdict (or MPI's abort of the job) should come first.
pub fn verdict_grace(timeout: Duration) -> Duration {
    Duration::from_secs(2) + timeout / 10
}

/// Waits up to `timeout` for the collective `what` of a communicator that can be aborted
/// (NCCL): on an error or the timeout, `abort` runs (so no kernel of it waits forever for a
/// peer) and the error names the collective and the timeout.
#[cfg_attr(not(feature = "nccl"), allow(dead_code))]
pub fn wait_or_abort(
    what: &str,
    timeout: Duration,
    progress: impl FnMut() -> Progress,
    abort: impl FnOnce(),
) -> Result<()> {
    match wait_until(Instant::now() + timeout, progress) {
        Waited::Done => Ok(()),
        Waited::Failed(why) => {
            abort();
            Err(Error::Dist(format!(
                "{what} failed ({why}); the communicator was aborted"
            )))
        }
        Waited::TimedOut => {
            abort();
            Err(Error::Dist(format!(
                "{what} did not complete within {timeout:?} (--dist-timeout): a rank is hung \
                 or gone; the communicator was aborted"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A query that reports `Running` `n` times, then `last`.
    fn after(n: u32, last: Progress) -> impl FnMut() -> Progress {
        let mut left = n;
        move || match left {
            0 => last.clone(),
            _ => {
                left -= 1;
                Progress::Running
            }
        }
    }

    #[test]
    fn a_collective_that_ends_is_done_without_waiting_for_the_deadline() {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(60);
        assert_eq!(
            wait_until(deadline, after(200, Progress::Done)),
            Waited::Done
        );
        // 64 yields and 136 sleeps of at most 500 µs: well under a second.
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn a_collective_that_never_ends_times_out_at_the_deadline_without_spinning() {
        let timeout = Duration::from_millis(300);
        let start = Instant::now();
        let queries = Cell::new(0u32);
        let waited = wait_until(start + timeout, || {
            queries.set(queries.get() + 1);
            Progress::Running
        });
        let took = start.elapsed();
        assert_eq!(waited, Waited::TimedOut);
        assert!(took >= timeout && took < timeout * 2, "{took:?}");
        // A spin would query millions of times; sleeps of up to 500 µs allow about 600 + 64.
        assert!(queries.get() < 2_000, "{} queries", queries.get());
    }

    #[test]
    fn an_error_or_a_timeout_aborts_and_names_the_collective() {
        let aborted = Cell::new(0);
        let abort = || aborted.set(aborted.get() + 1);
        let ok = wait_or_abort(
            "ncclAllReduce",
            Duration::from_secs(5),
            after(3, Progress::Done),
            abort,
        );
        assert!(ok.is_ok());
        assert_eq!(aborted.get(), 0, "a collective that ends is not aborted");

        let timeout = Duration::from_millis(50);
        let e = wait_or_abort("ncclAllReduce", timeout, || Progress::Running, abort).unwrap_err();
        assert_eq!(aborted.get(), 1);
        let e = e.to_string();
        assert!(
            e.contains("ncclAllReduce did not complete within 50ms"),
            "{e}"
        );
        assert!(e.contains("--dist-timeout") && e.contains("aborted"), "{e}");

        let failed = after(2, Progress::Failed("ncclRemoteError".into()));
        let e = wait_or_abort("ncclBroadcast", timeout, failed, abort).unwrap_err();
        assert_eq!(aborted.get(), 2);
        assert!(
            e.to_string()
                .contains("ncclBroadcast failed (ncclRemoteError)"),
            "{e}"
        );
    }
}
