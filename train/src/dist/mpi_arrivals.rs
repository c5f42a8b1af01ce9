//! Which ranks reached a collective, and which went silent inside it: each rank other than 0
//! posts rank 0 a non-blocking note, on a duplicate communicator of their own, when it reaches
//! its n-th collective, now and then while it waits inside it (a heartbeat), and when it leaves
//! it; rank 0 posts every other rank its arrivals. One receive per peer stays posted and is
//! reposted as it completes, so the record costs a few 8-byte messages a collective and never
//! blocks. When a collective times out, rank 0 knows the ranks that did not reach it and those
//! that reached it but stopped answering (a stopped or hung process), and every other rank
//! whether rank 0 reached it.

use crate::{Error, Result};
use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::{Communicator as _, SimpleCommunicator};
use mpi::traits::Equivalence;
use std::ffi::c_int;
use std::time::{Duration, Instant};

/// The tag of arrival messages (alone on their communicator).
const TAG: c_int = 37;

/// What a note says about collective n (sent as 4n + the kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// The rank reached it.
    Arrived = 0,
    /// The rank still waits inside it.
    Waiting = 1,
    /// The rank left it, completed.
    Left = 2,
}
/// How long dropping the record waits for its last sends to leave (8-byte eager messages leave
/// at once; a send still there after this is freed without waiting for it).
const SEND_DRAIN: Duration = Duration::from_millis(200);

/// A posted receive of a peer's latest collective number.
struct Receive {
    from: usize,
    /// Boxed so its address stays put while MPI writes it.
    value: Box<u64>,
    request: ffi::MPI_Request,
}

/// A posted send of this rank's collective number.
struct Send {
    value: Box<u64>,
    request: ffi::MPI_Request,
}

/// The arrival record of one communicator's collectives.
pub struct Arrivals {
    comm: SimpleCommunicator,
    rank: usize,
    /// The number of the latest collective each rank is known to have reached (rank 0 learns
    /// every rank's; the others learn rank 0's).
    seen: Vec<u64>,
    /// The latest collective each rank is known to have left (rank 0 only).
    left: Vec<u64>,
    /// When a note of each rank last came in (rank 0 only).
    heard: Vec<Instant>,
    receives: Vec<Receive>,
    sends: Vec<Send>,
}

impl Arrivals {
    /// The record over the ranks of `comm`, on a duplicate of it (collective: every rank
    /// creates it, in the same order).
    pub fn new(comm: &SimpleCommunicator) -> Result<Arrivals> {
        let (rank, world) = (comm.rank() as usize, comm.size() as usize);
        let mut arrivals = Arrivals {
            comm: comm.duplicate(),
            rank,
            seen: vec![0; world],
            left: vec![0; world],
            heard: vec![Instant::now(); world],
            receives: Vec::new(),
            sends: Vec::new(),
        };
        for from in arrivals.peers() {
            let receive = arrivals.post_receive(from)?;
            arrivals.receives.push(receive);
        }
        Ok(arrivals)
    }

    /// The ranks this one exchanges arrivals with: every other rank for rank 0, else rank 0.
    fn peers(&self) -> Vec<usize> {
        match self.rank {
            0 => (1..self.seen.len()).collect(),
            _ => vec![0],
        }
    }

    fn post_receive(&self, from: usize) -> Result<Receive> {
        let mut value = Box::new(0u64);
        let mut request = null_request();
        // SAFETY: `value` is boxed and lives in the returned Receive until the request completes
        // or is cancelled and waited for (`drain`, Drop); the communicator is live.
        let code = unsafe {
            ffi::MPI_Irecv(
                (&mut *value as *mut u64).cast(),
                1,
                u64::equivalent_datatype().as_raw(),
                from as c_int,
                TAG,
                self.comm.as_raw(),
                &mut request,
            )
        };
        check(code, "MPI_Irecv of an arrival")?;
        Ok(Receive {
            from,
            value,
            request,
        })
    }

    /// Tells the peers that this rank reached collective `n` (numbered from 1).
    pub fn arrive(&mut self, n: u64) -> Result<()> {
        self.seen[self.rank] = n;
        self.drain()?;
        self.post(n, Note::Arrived)
    }

    /// Posts `note` about collective `n` to the peers (rank 0 posts only arrivals, which are
    /// all the other ranks need).
    pub fn post(&mut self, n: u64, note: Note) -> Result<()> {
        if self.rank == 0 && note != Note::Arrived {
            return Ok(());
        }
        for to in self.peers() {
            let value = Box::new(n * 4 + note as u64);
            let mut request = null_request();
            // SAFETY: `value` is boxed and kept in `sends` until the request completes (or, at
            // Drop, is freed); the communicator is live.
            let code = unsafe {
                ffi::MPI_Isend(
                    (&*value as *const u64).cast(),
                    1,
                    u64::equivalent_datatype().as_raw(),
                    to as c_int,
                    TAG,
                    self.comm.as_raw(),
                    &mut request,
                )
            };
            check(code, "MPI_Isend of an arrival")?;
            self.sends.push(Send { value, request });
        }
        Ok(())
    }

    /// Takes in the notes that came (reposting each receive) and forgets the sends that left.
    pub fn drain(&mut self) -> Result<()> {
        for i in 0..self.receives.len() {
            while test(&mut self.receives[i].request)? {
                let from = self.receives[i].from;
                let (n, kind) = (*self.receives[i].value / 4, *self.receives[i].value % 4);
                self.seen[from] = self.seen[from].max(n);
                if kind == Note::Left as u64 {
                    self.left[from] = self.left[from].max(n);
                }
                self.heard[from] = Instant::now();
                self.receives[i] = self.post_receive(from)?;
            }
        }
        let mut sends = std::mem::take(&mut self.sends);
        let mut kept = Vec::with_capacity(sends.len());
        for mut send in sends.drain(..) {
            if !test(&mut send.request)? {
                kept.push(send);
            }
        }
        self.sends = kept;
        Ok(())
    }

    /// The ranks not known to have reached collective `n` (from rank 0, every rank that did
    /// not report it; from another rank, rank 0 if it did not), and the ranks that reached it
    /// but neither left it nor were heard from for `silent` (rank 0 only).
    pub fn verdict(&mut self, n: u64, silent: Duration) -> Result<(Vec<usize>, Vec<usize>)> {
        self.drain()?;
        let peers = self.peers();
        let missing = peers
            .iter()
            .copied()
            .filter(|&r| self.seen[r] < n)
            .collect();
        let quiet = |r: usize| self.left[r] < n && self.heard[r].elapsed() >= silent;
        let stopped = match self.rank {
            0 => peers
                .into_iter()
                .filter(|&r| self.seen[r] >= n && quiet(r))
                .collect(),
            _ => Vec::new(),
        };
        Ok((missing, stopped))
    }
}

impl Drop for Arrivals {
    fn drop(&mut self) {
        for r in &mut self.receives {
            // SAFETY: the request is a posted receive into `r.value`, alive until the wait that
            // follows the cancel returns.
            unsafe {
                ffi::MPI_Cancel(&mut r.request);
                ffi::MPI_Wait(&mut r.request, ffi::RSMPI_STATUS_IGNORE);
            }
        }
        let deadline = Instant::now() + SEND_DRAIN;
        while !self.sends.is_empty() && Instant::now() < deadline && self.drain().is_ok() {
            std::thread::yield_now();
        }
        for mut s in std::mem::take(&mut self.sends) {
            // SAFETY: the request is a live send; once freed, MPI may still read its 8 bytes, so
            // the box is leaked rather than freed under it.
            unsafe { ffi::MPI_Request_free(&mut s.request) };
            std::mem::forget(s.value);
        }
    }
}

/// MPI_REQUEST_NULL, the handle a request gets before it is posted and after it completes.
pub fn null_request() -> ffi::MPI_Request {
    // SAFETY: reads a constant the MPI library defines and never changes.
    unsafe { ffi::RSMPI_REQUEST_NULL }
}

/// Whether `request` completed (it is then MPI_REQUEST_NULL).
pub fn test(request: &mut ffi::MPI_Request) -> Result<bool> {
    let mut done: c_int = 0;
    // SAFETY: `request` is a live request handle or MPI_REQUEST_NULL (which tests as done).
    let code = unsafe { ffi::MPI_Test(request, &mut done, ffi::RSMPI_STATUS_IGNORE) };
    check(code, "MPI_Test")?;
    Ok(done != 0)
}

/// An MPI return code as a Result.
pub fn check(code: c_int, what: &str) -> Result<()> {
    match code {
        0 => Ok(()),
        _ => Err(Error::Dist(format!("{what} failed with MPI error {code}"))),
    }
}
