//! MPI collectives that wait at most the job's timeout (`--dist-timeout`): each is started in
//! its non-blocking form (MPI_Iallreduce, MPI_Ibcast, …) after its arrival is recorded, then
//! tested until it completes or the deadline passes (a rank other than 0 tells rank 0 now and
//! then that it still waits). On a timeout, rank 0 names the ranks that did not reach the
//! collective and those that reached it but stopped answering (a rank other than 0, which waits
//! a grace period longer, names rank 0 if rank 0 did not reach it), prints it as one error line,
//! and aborts the job with MPI_Abort, so mpirun (or `kiln launch`) ends every rank rather than
//! leaving them waiting.

use super::deadline::{verdict_grace, wait_until, Progress, Waited};
use super::mpi_arrivals::{check, null_request, test, Arrivals, Note};
use crate::Result;
use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::{Communicator as _, SimpleCommunicator};
use std::ffi::c_int;
use std::time::{Duration, Instant};

/// The exit status MPI_Abort gives the job when a collective timed out.
const ABORT_CODE: c_int = 1;
/// How often rank 0 takes in the other ranks' notes while it waits.
const DRAIN_EVERY: Duration = Duration::from_millis(1);

/// A communicator whose collectives are numbered, recorded and timed.
pub struct TimedComm {
    comm: SimpleCommunicator,
    arrivals: Arrivals,
    /// How many collectives this communicator has started.
    count: u64,
    timeout: Duration,
    /// Where its collectives run, for the error ("" or " on the gradient thread").
    place: &'static str,
}

impl TimedComm {
    /// Times the collectives of `comm` (collective: every rank wraps its communicators in the
    /// same order).
    pub fn new(comm: SimpleCommunicator, timeout: Duration, place: &'static str) -> Result<Self> {
        Ok(TimedComm {
            arrivals: Arrivals::new(&comm)?,
            comm,
            count: 0,
            timeout,
            place,
        })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.comm.rank() as usize
    }

    /// A duplicate of the communicator (for a thread of its own).
    pub fn duplicate(&self) -> SimpleCommunicator {
        self.comm.duplicate()
    }

    /// Runs the collective `what`: records the arrival, lets `start` post it on the raw
    /// communicator (returning MPI's code and filling the request), and waits for it; a timeout
    /// or an error of the pending collective ends the job (see the module's doc).
    /// It returns only once the collective completed, so `start` may hand MPI buffers borrowed
    /// for the call.
    pub fn run(
        &mut self,
        what: &str,
        start: impl FnOnce(ffi::MPI_Comm, &mut ffi::MPI_Request) -> c_int,
    ) -> Result<()> {
        self.count += 1;
        let (n, rank) = (self.count, self.rank());
        self.arrivals.arrive(n)?;
        let mut request = null_request();
        check(start(self.comm.as_raw(), &mut request), what)?;
        let waited = match rank {
            0 => self.timeout,
            _ => self.timeout + verdict_grace(self.timeout),
        };
        // A waiting rank's heartbeat: twice within the silence that rank 0 holds against it.
        let beat = self.timeout / 4;
        let (mut next_beat, mut next_drain) = (Instant::now() + beat, Instant::now());
        let arrivals = &mut self.arrivals;
        let progress = || {
            match test(&mut request) {
                Ok(true) => return Progress::Done,
                Err(e) => return Progress::Failed(e.to_string()),
                Ok(false) => {}
            }
            let now = Instant::now();
            let kept = match rank {
                0 if now >= next_drain => {
                    next_drain = now + DRAIN_EVERY;
                    arrivals.drain()
                }
                r if r > 0 && now >= next_beat => {
                    next_beat = now + beat;
                    arrivals.post(n, Note::Waiting)
                }
                _ => Ok(()),
            };
            kept.map_or_else(|e| Progress::Failed(e.to_string()), |()| Progress::Running)
        };
        match wait_until(Instant::now() + waited, progress) {
            Waited::Done => self.arrivals.post(n, Note::Left),
            Waited::Failed(why) => self.end_job(format!("MPI {what}{}: {why}", self.place)),
            Waited::TimedOut => {
                let verdict = self.arrivals.verdict(n, self.timeout / 2);
                let (missing, stopped) = verdict.unwrap_or_default();
                let ranks = Ranks { missing, stopped };
                self.end_job(timeout_line(what, n, self.place, rank, waited, &ranks))
            }
        }
    }

    /// Prints `line` as the job's error and aborts the job. MPI_Abort does not return; were it
    /// to, the process aborts too, since the pending collective could still write into the
    /// caller's buffers.
    fn end_job(&self, line: String) -> ! {
        eprintln!("error: {line}");
        // SAFETY: the communicator is live; MPI_Abort ends the processes of the job.
        unsafe { ffi::MPI_Abort(self.comm.as_raw(), ABORT_CODE) };
        std::process::abort()
    }
}

/// The ranks rank 0 holds responsible for a collective that timed out.
#[derive(Debug, Default)]
struct Ranks {
    /// Those that did not reach it.
    missing: Vec<usize>,
    /// Those that reached it but stopped answering inside it.
    stopped: Vec<usize>,
}

/// "rank 3" or "ranks 2, 5".
fn named(ranks: &[usize]) -> String {
    let list: Vec<String> = ranks.iter().map(usize::to_string).collect();
    match ranks.len() {
        1 => format!("rank {}", list[0]),
        _ => format!("ranks {}", list.join(", ")),
    }
}

/// The error of collective #`n` that timed out on `rank`, naming the ranks at fault.
fn timeout_line(
    what: &str,
    n: u64,
    place: &str,
    rank: usize,
    waited: Duration,
    ranks: &Ranks,
) -> String {
    let mut faults = Vec::new();
    if !ranks.missing.is_empty() {
        faults.push(format!("{} did not reach it", named(&ranks.missing)));
    }
    if !ranks.stopped.is_empty() {
        faults.push(format!(
            "{} reached it but stopped answering",
            named(&ranks.stopped)
        ));
    }
    let verdict = match (faults.is_empty(), rank) {
        (false, _) => faults.join("; "),
        (true, 0) => "every rank reached it and answered (a rank died or the network failed \
                      inside it)"
            .to_string(),
        // Rank 0 reached it, yet its verdict did not come: it is hung inside it.
        (true, _) => "rank 0 reached it but neither completed it nor ended the job".to_string(),
    };
    format!(
        "MPI {what} (collective #{n}{place}) did not complete within {waited:?} \
         (--dist-timeout, seen from rank {rank}): {verdict}; aborting the job"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranks(missing: &[usize], stopped: &[usize]) -> Ranks {
        Ranks {
            missing: missing.to_vec(),
            stopped: stopped.to_vec(),
        }
    }

    #[test]
    fn the_timeout_line_names_the_ranks_at_fault_and_the_collective() {
        let s = Duration::from_secs(5);
        let line = timeout_line("all_reduce", 12, "", 0, s, &ranks(&[1], &[]));
        assert_eq!(
            line,
            "MPI all_reduce (collective #12) did not complete within 5s (--dist-timeout, seen \
             from rank 0): rank 1 did not reach it; aborting the job"
        );
        let place = " on the gradient thread";
        let line = timeout_line("bucket all_reduce", 3, place, 0, s, &ranks(&[2, 5], &[3]));
        assert!(
            line.starts_with("MPI bucket all_reduce (collective #3 on the gradient thread)")
                && line.contains(": ranks 2, 5 did not reach it; rank 3 reached it but stopped"),
            "{line}"
        );
        let line = timeout_line("barrier", 1, "", 0, s, &ranks(&[], &[]));
        assert!(line.contains("every rank reached it"), "{line}");
        let line = timeout_line(
            "broadcast",
            4,
            "",
            3,
            Duration::from_millis(7500),
            &ranks(&[0], &[]),
        );
        assert!(
            line.contains("within 7.5s") && line.contains("from rank 3): rank 0 did not reach it"),
            "{line}"
        );
    }
}
