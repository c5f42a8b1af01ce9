//! Collectives over TCP between processes, for ranks that `kiln launch` or torchrun starts in a
//! build without MPI (torch's gloo role). The ranks form a star around rank 0: every collective
//! sends each rank's part to rank 0, which combines the parts in rank order (so a run's bits do
//! not depend on arrival order) and sends the result back.
//!
//! Every read and write has a deadline, the job's timeout. When a rank stops answering or its
//! connection breaks, rank 0 fails naming it and first tells every other rank, whose collective
//! then fails with the same name. A rank that hears nothing from rank 0 waits a grace period
//! beyond the timeout (so rank 0's verdict arrives first) and then names rank 0.

use super::collectives::Collectives;
use super::deadline::verdict_grace;
use super::element::{combine, Element, ReduceOp};
use super::group::ProcessGroup;
use crate::{Error, Result};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The rendezvous key under which rank 0 publishes the port it accepts the other ranks on.
const PORT_KEY: &str = "kiln-tcp-port";
/// Rank 0 to a rank: the result of a collective follows.
const DATA: u8 = 0;
/// Rank 0 to a rank: the job failed; the reason (text) follows.
const ABORT: u8 = 1;

/// This rank's end of the star.
#[derive(Debug)]
pub struct TcpComm {
    rank: usize,
    world: usize,
    timeout: Duration,
    links: Mutex<Links>,
}

#[derive(Debug)]
enum Links {
    /// Rank 0: one connection per other rank (index r − 1 for rank r).
    Hub(Vec<TcpStream>),
    /// Any other rank: the connection to rank 0.
    Spoke(TcpStream),
    /// A collective failed (the reason): every later one fails with it.
    Failed(String),
}

impl TcpComm {
    /// Joins the ranks of `group` through its rendezvous: rank 0 accepts the others on a port it
    /// publishes there; each waits at most the group's timeout for the others.
    pub fn join(group: &ProcessGroup) -> Result<TcpComm> {
        let store = super::rendezvous::join(group)?;
        let deadline = Instant::now() + group.timeout;
        let links = if group.rank == 0 {
            let listener = TcpListener::bind(("0.0.0.0", 0))
                .map_err(|e| Error::Dist(format!("TCP collectives: cannot listen: {e}")))?;
            let port = listener.local_addr().map_err(io_err)?.port();
            store.set(PORT_KEY, &port.to_string())?;
            Links::Hub(accept_ranks(&listener, group.world_size, deadline)?)
        } else {
            let port = store.get(PORT_KEY)?;
            let port: u16 = port.parse().map_err(|_| {
                Error::Dist(format!("TCP collectives: rank 0 published port {port:?}"))
            })?;
            let addr = group
                .master
                .as_ref()
                .map_or("127.0.0.1", |(a, _)| a.as_str());
            let mut s = TcpStream::connect((addr, port)).map_err(|e| {
                Error::Dist(format!(
                    "TCP collectives: cannot reach rank 0 at {addr}:{port}: {e}"
                ))
            })?;
            s.set_nodelay(true).map_err(io_err)?;
            write_by(&mut s, &(group.rank as u64).to_le_bytes(), deadline)
                .map_err(|e| Error::Dist(format!("TCP collectives: rank 0: {e}")))?;
            Links::Spoke(s)
        };
        Ok(TcpComm {
            rank: group.rank,
            world: group.world_size,
            timeout: group.timeout,
            links: Mutex::new(links),
        })
    }

    /// One collective: rank 0 gathers every rank's part (rank r's of `want(r)` elements), joins
    /// them with `join` and sends the result, which every rank writes to `out`.
    fn exchange<T: Element>(
        &self,
        op: &str,
        mine: &[T],
        want: impl Fn(usize) -> usize,
        join: impl FnOnce(&[&[T]]) -> Result<Vec<T>>,
        out: &mut [T],
    ) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        let outcome = match &mut *links {
            Links::Failed(reason) => return Err(Error::Dist(reason.clone())),
            Links::Hub(peers) => hub(op, peers, mine, &want, join, out, (deadline, self.timeout)),
            Links::Spoke(s) => {
                let grace = verdict_grace(self.timeout);
                spoke(op, s, mine, out, deadline + grace, self.timeout + grace)
            }
        };
        if let Err(reason) = outcome {
            *links = Links::Failed(reason.clone());
            return Err(Error::Dist(reason));
        }
        Ok(())
    }
}

/// Every collective is one exchange through rank 0, which combines the parts in rank order;
/// all-gather, reduce-scatter and barrier are the trait's, over these.
impl Collectives for TcpComm {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.world
    }

    fn all_reduce<T: Element>(&self, buf: &mut [T], op: ReduceOp) -> Result<()> {
        let (n, mine) = (buf.len(), buf.to_vec());
        self.exchange(
            "all_reduce",
            &mine,
            |_| n,
            |parts| combine(parts, n, op),
            buf,
        )
    }

    fn broadcast<T: Element>(&self, buf: &mut [T], root: usize) -> Result<()> {
        let (n, rank) = (buf.len(), self.rank);
        let mine: Vec<T> = match rank == root {
            true => buf.to_vec(),
            false => Vec::new(),
        };
        let mut out = vec![T::default(); n];
        let want = move |r: usize| if r == root { n } else { 0 };
        self.exchange(
            "broadcast",
            &mine,
            want,
            |parts| Ok(parts[root].to_vec()),
            &mut out,
        )?;
        buf.copy_from_slice(&out);
        Ok(())
    }
}

/// Rank 0's side of a collective; on failure tells the other ranks why before returning it.
fn hub<T: Element>(
    op: &str,
    peers: &mut [TcpStream],
    mine: &[T],
    want: &impl Fn(usize) -> usize,
    join: impl FnOnce(&[&[T]]) -> Result<Vec<T>>,
    out: &mut [T],
    (deadline, timeout): (Instant, Duration),
) -> std::result::Result<(), String> {
    let mut parts = vec![mine.to_vec()];
    for (i, s) in peers.iter_mut().enumerate() {
        let rank = i + 1;
        match read_part(s, want(rank), deadline) {
            Ok(part) => parts.push(part),
            Err(e) => {
                let why = failure(&e, rank, timeout, op);
                return Err(abort_all(peers, why));
            }
        }
    }
    let views: Vec<&[T]> = parts.iter().map(Vec::as_slice).collect();
    let result = match join(&views) {
        Ok(r) if r.len() == out.len() => r,
        Ok(r) => {
            let msg = format!("{op}: {} elements for a buffer of {}", r.len(), out.len());
            return Err(abort_all(peers, msg));
        }
        Err(e) => return Err(abort_all(peers, e.to_string())),
    };
    let bytes: &[u8] = bytemuck::cast_slice(&result);
    for (i, s) in peers.iter_mut().enumerate() {
        let sent = write_by(s, &[DATA], deadline)
            .and_then(|()| write_by(s, &(bytes.len() as u64).to_le_bytes(), deadline))
            .and_then(|()| write_by(s, bytes, deadline));
        if let Err(e) = sent {
            let why = failure(&e, i + 1, timeout, op);
            return Err(abort_all(peers, why));
        }
    }
    out.copy_from_slice(&result);
    Ok(())
}

/// A rank's side of a collective: sends its part, then reads rank 0's result or verdict.
fn spoke<T: Element>(
    op: &str,
    s: &mut TcpStream,
    mine: &[T],
    out: &mut [T],
    deadline: Instant,
    waited: Duration,
) -> std::result::Result<(), String> {
    let bytes: &[u8] = bytemuck::cast_slice(mine);
    let failed = |e: std::io::Error| failure(&e, 0, waited, op);
    write_by(s, &(bytes.len() as u64).to_le_bytes(), deadline)
        .and_then(|()| write_by(s, bytes, deadline))
        .map_err(failed)?;
    let mut tag = [0u8; 1];
    read_by(s, &mut tag, deadline).map_err(failed)?;
    let len = read_len(s, deadline).map_err(failed)?;
    if tag[0] == ABORT {
        let mut text = vec![0u8; len.min(1 << 16)];
        read_by(s, &mut text, deadline).map_err(failed)?;
        return Err(String::from_utf8_lossy(&text).into_owned());
    }
    if len != std::mem::size_of_val(out) {
        return Err(format!(
            "{op}: rank 0 sent {len} bytes for a buffer of {}",
            std::mem::size_of_val(out)
        ));
    }
    read_by(s, bytemuck::cast_slice_mut(out), deadline).map_err(failed)
}

/// What went wrong with `rank`'s connection during `op`, naming the rank.
fn failure(e: &std::io::Error, rank: usize, waited: Duration, op: &str) -> String {
    match e.kind() {
        ErrorKind::TimedOut => format!("rank {rank} did not answer within {waited:?} ({op})"),
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => {
            format!("rank {rank} closed its connection during {op} (it exited or was killed)")
        }
        _ => format!("rank {rank}: {e} ({op})"),
    }
}

/// Tells every rank the job failed and why (briefly: a rank that does not read is not waited
/// for), and returns the reason.
fn abort_all(peers: &mut [TcpStream], reason: String) -> String {
    let deadline = Instant::now() + Duration::from_millis(500);
    for s in peers.iter_mut() {
        let sent = write_by(s, &[ABORT], deadline)
            .and_then(|()| write_by(s, &(reason.len() as u64).to_le_bytes(), deadline))
            .and_then(|()| write_by(s, reason.as_bytes(), deadline));
        // A rank that cannot be told learns of the failure when rank 0's connection closes.
        drop(sent);
    }
    reason
}

/// Accepts the other `world − 1` ranks, each introducing itself with its rank.
fn accept_ranks(listener: &TcpListener, world: usize, deadline: Instant) -> Result<Vec<TcpStream>> {
    listener.set_nonblocking(true).map_err(io_err)?;
    let mut peers: Vec<Option<TcpStream>> = (1..world).map(|_| None).collect();
    while peers.iter().any(Option::is_none) {
        match listener.accept() {
            Ok((mut s, _)) => {
                s.set_nonblocking(false).map_err(io_err)?;
                s.set_nodelay(true).map_err(io_err)?;
                let mut hello = [0u8; 8];
                if read_by(&mut s, &mut hello, deadline).is_err() {
                    continue;
                }
                let rank = u64::from_le_bytes(hello) as usize;
                match peers.get_mut(rank.wrapping_sub(1)) {
                    Some(slot @ None) => *slot = Some(s),
                    _ => {
                        return Err(Error::Dist(format!(
                            "TCP collectives: a process joined as rank {rank} (twice, or outside \
                             the world of {world})"
                        )))
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let missing: Vec<String> = (peers.iter().enumerate())
                    .filter(|(_, p)| p.is_none())
                    .map(|(i, _)| (i + 1).to_string())
                    .collect();
                return Err(Error::Dist(format!(
                    "TCP collectives: rank(s) {} did not join in time",
                    missing.join(", ")
                )));
            }
            Err(e) => return Err(io_err(e)),
        }
    }
    Ok(peers.into_iter().flatten().collect())
}

/// Reads a length-prefixed part of `n` elements.
fn read_part<T: Element>(
    s: &mut TcpStream,
    n: usize,
    deadline: Instant,
) -> std::io::Result<Vec<T>> {
    let len = read_len(s, deadline)?;
    let mut part = vec![T::default(); n];
    if len != std::mem::size_of_val(part.as_slice()) {
        return Err(std::io::Error::other(format!(
            "sent {len} bytes where {} were expected (the ranks' collectives differ)",
            std::mem::size_of_val(part.as_slice())
        )));
    }
    read_by(s, bytemuck::cast_slice_mut(&mut part), deadline)?;
    Ok(part)
}

fn read_len(s: &mut TcpStream, deadline: Instant) -> std::io::Result<usize> {
    let mut len = [0u8; 8];
    read_by(s, &mut len, deadline)?;
    Ok(u64::from_le_bytes(len) as usize)
}

/// `read_exact` that gives up at `deadline` (ErrorKind::TimedOut).
fn read_by(s: &mut TcpStream, mut buf: &mut [u8], deadline: Instant) -> std::io::Result<()> {
    while !buf.is_empty() {
        s.set_read_timeout(Some(left(deadline)?))?;
        match s.read(buf) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf = &mut buf[n..],
            Err(e) if retry(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `write_all` that gives up at `deadline` (ErrorKind::TimedOut).
fn write_by(s: &mut TcpStream, mut buf: &[u8], deadline: Instant) -> std::io::Result<()> {
    while !buf.is_empty() {
        s.set_write_timeout(Some(left(deadline)?))?;
        match s.write(buf) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if retry(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The time left before `deadline`, or TimedOut once it has passed.
fn left(deadline: Instant) -> std::io::Result<Duration> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(ErrorKind::TimedOut.into()),
    }
}

/// A socket timeout (checked against the deadline by the caller's loop) or an interruption.
fn retry(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

fn io_err(e: std::io::Error) -> Error {
    Error::Dist(format!("TCP collectives: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::Launcher;

    fn groups(world: usize, timeout: Duration) -> Vec<ProcessGroup> {
        let port = TcpListener::bind(("127.0.0.1", 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        (0..world)
            .map(|rank| ProcessGroup {
                rank,
                world_size: world,
                local_rank: rank,
                master: Some(("127.0.0.1".into(), port)),
                launcher: Launcher::Torchrun,
                timeout,
            })
            .collect()
    }

    #[test]
    fn collectives_agree_with_a_serial_reference() {
        let threads: Vec<_> = groups(3, Duration::from_secs(60))
            .into_iter()
            .map(|g| {
                std::thread::spawn(move || {
                    let c = TcpComm::join(&g).unwrap();
                    let r = c.rank() as f32;
                    let mut v = vec![r, 2.0 * r, 1.0];
                    c.all_reduce(&mut v, ReduceOp::Sum).unwrap();
                    assert_eq!(v, [3.0, 6.0, 3.0]);
                    let mut m = vec![r as f64];
                    c.all_reduce(&mut m, ReduceOp::Max).unwrap();
                    assert_eq!(m, [2.0]);
                    let mut b = vec![r; 2];
                    c.broadcast(&mut b, 2).unwrap();
                    assert_eq!(b, [2.0, 2.0]);
                    let mut g = vec![0.0f32; 6];
                    c.all_gather(&[r, -r], &mut g).unwrap();
                    assert_eq!(g, [0.0, -0.0, 1.0, -1.0, 2.0, -2.0]);
                    let send: Vec<f64> = (0..3).map(|k| (k * 100) as f64 + r as f64).collect();
                    let mut mine = [0.0f64];
                    c.reduce_scatter(&send, &mut mine, ReduceOp::Sum).unwrap();
                    assert_eq!(mine, [(c.rank() * 300 + 3) as f64]);
                    c.barrier().unwrap();
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
    }

    #[test]
    fn a_rank_that_stops_answering_is_named_on_every_other_rank() {
        let t = Duration::from_millis(800);
        let mut gs = groups(3, t).into_iter();
        let (g0, g1, g2) = (gs.next().unwrap(), gs.next().unwrap(), gs.next().unwrap());
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let silent = std::thread::spawn(move || {
            let c = TcpComm::join(&g2).unwrap();
            c.barrier().unwrap();
            // Joined, then silent (a stopped process) until the test ends.
            stop_rx.recv().ok();
        });
        let waiting = std::thread::spawn(move || {
            let c = TcpComm::join(&g1).unwrap();
            c.barrier().unwrap();
            let mut v = vec![1.0f32];
            c.all_reduce(&mut v, ReduceOp::Sum).unwrap_err().to_string()
        });
        let c = TcpComm::join(&g0).unwrap();
        c.barrier().unwrap();
        let started = Instant::now();
        let e = c.all_reduce(&mut [1.0f32], ReduceOp::Sum).unwrap_err();
        assert!(started.elapsed() < t * 5, "{:?}", started.elapsed());
        assert!(e.to_string().contains("rank 2 did not answer"), "{e}");
        let other = waiting.join().unwrap();
        assert!(other.contains("rank 2 did not answer"), "{other}");
        // Every later collective fails with the same reason, at once.
        let again = c.barrier().unwrap_err().to_string();
        assert!(again.contains("rank 2"), "{again}");
        stop_tx.send(()).unwrap();
        silent.join().unwrap();
    }

    #[test]
    fn a_silent_rank_0_is_named_after_the_grace() {
        let t = Duration::from_millis(500);
        let mut gs = groups(2, t).into_iter();
        let (g0, g1) = (gs.next().unwrap(), gs.next().unwrap());
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let hub = std::thread::spawn(move || {
            let c = TcpComm::join(&g0).unwrap();
            stop_rx.recv().ok();
            drop(c);
        });
        let c = TcpComm::join(&g1).unwrap();
        let e = c.barrier().unwrap_err().to_string();
        assert!(e.contains("rank 0 did not answer"), "{e}");
        stop_tx.send(()).unwrap();
        hub.join().unwrap();
    }
}
