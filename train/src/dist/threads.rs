//! Ranks that are threads of one process (one per device, `--device cuda:0,1`): every collective
//! is a meeting in host memory. Each rank leaves its contribution on the table, waits for the
//! others, and computes the result from all of them in rank order, so every rank gets the same
//! bits. A rank that fails calls [`ThreadComm::abort`] and the others' collectives return an
//! error instead of waiting for it forever.

use super::communicator::{Element, ReduceOp};
use crate::{Error, Result};
use std::any::Any;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// One contribution: the collective's name and the rank's values (a `Vec<T>`).
type Part = (&'static str, Arc<dyn Any + Send + Sync>);

/// The table the ranks meet at.
#[derive(Default)]
struct Table {
    /// This round's contributions, by rank.
    parts: Vec<Option<Part>>,
    /// Ranks that have put their part this round.
    arrived: usize,
    /// Ranks that have taken the round's parts (the round closes when all have).
    taken: usize,
    /// The rank that failed, once one has.
    failed: Option<usize>,
}

/// What the threads share.
struct Meeting {
    world: usize,
    table: Mutex<Table>,
    turn: Condvar,
}

/// One thread's end of an in-process communicator.
#[derive(Clone)]
pub struct ThreadComm {
    rank: usize,
    meeting: Arc<Meeting>,
}

impl std::fmt::Debug for ThreadComm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ThreadComm(rank {} of {})",
            self.rank, self.meeting.world
        )
    }
}

impl ThreadComm {
    /// The `world` ends of one communicator, rank 0 first (one per thread).
    pub fn group(world: usize) -> Vec<ThreadComm> {
        let meeting = Arc::new(Meeting {
            world,
            table: Mutex::new(Table {
                parts: vec![None; world],
                ..Table::default()
            }),
            turn: Condvar::new(),
        });
        (0..world)
            .map(|rank| ThreadComm {
                rank,
                meeting: meeting.clone(),
            })
            .collect()
    }

    /// This thread's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of threads.
    pub fn world_size(&self) -> usize {
        self.meeting.world
    }

    /// The rank that failed first, if one has.
    pub fn failed_rank(&self) -> Option<usize> {
        self.lock().failed
    }

    /// Marks this rank failed: every collective waiting or to come returns an error naming it.
    pub fn abort(&self) {
        let mut t = self.lock();
        t.failed.get_or_insert(self.rank);
        self.meeting.turn.notify_all();
    }

    /// Combines `buf` over the ranks in place (Average sums; the caller divides).
    pub fn all_reduce<T: Element>(&self, buf: &mut [T], op: ReduceOp) -> Result<()> {
        let n = buf.len();
        let sum = self.meet("all_reduce", buf.to_vec(), |parts| combine(parts, n, op))??;
        buf.copy_from_slice(&sum);
        Ok(())
    }

    /// Copies rank `root`'s `buf` into every rank's `buf`.
    pub fn broadcast<T: Element>(&self, buf: &mut [T], root: usize) -> Result<()> {
        let mine = if self.rank == root {
            buf.to_vec()
        } else {
            Vec::new()
        };
        let n = buf.len();
        self.meet("broadcast", mine, |parts| {
            let src = parts[root];
            if src.len() != n {
                return Err(length_error("broadcast", root, src.len(), n));
            }
            buf.copy_from_slice(src);
            Ok(())
        })?
    }

    /// Concatenates every rank's `send` in rank order into `recv`.
    pub fn all_gather<T: Element>(&self, send: &[T], recv: &mut [T]) -> Result<()> {
        self.meet("all_gather", send.to_vec(), |parts| {
            let mut at = 0;
            for (r, p) in parts.iter().enumerate() {
                if p.len() != send.len() {
                    return Err(length_error("all_gather", r, p.len(), send.len()));
                }
                recv[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
            Ok(())
        })?
    }

    /// Reduces `send` over the ranks and keeps this rank's block in `recv`.
    pub fn reduce_scatter<T: Element>(
        &self,
        send: &[T],
        recv: &mut [T],
        op: ReduceOp,
    ) -> Result<()> {
        let block = self.rank * recv.len()..(self.rank + 1) * recv.len();
        let n = send.len();
        let sum = self.meet("reduce_scatter", send.to_vec(), |parts| {
            combine(parts, n, op)
        })??;
        recv.copy_from_slice(&sum[block]);
        Ok(())
    }

    /// Waits until every rank reaches the barrier.
    pub fn barrier(&self) -> Result<()> {
        self.meet("barrier", Vec::<f32>::new(), |_| ())
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.meeting.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits on the table while `busy` holds; Err once a rank has failed.
    fn wait_while<'a>(
        &self,
        mut t: MutexGuard<'a, Table>,
        busy: impl Fn(&Table) -> bool,
    ) -> Result<MutexGuard<'a, Table>> {
        while t.failed.is_none() && busy(&t) {
            t = self.meeting.turn.wait(t).unwrap_or_else(|e| e.into_inner());
        }
        match t.failed {
            Some(r) if r != self.rank => Err(Error::Dist(format!(
                "rank {r} of this process's {} device threads failed, so rank {} stops",
                self.meeting.world, self.rank
            ))),
            Some(_) => Err(Error::Dist(format!(
                "rank {} was aborted and cannot join a collective",
                self.rank
            ))),
            None => Ok(t),
        }
    }

    /// One collective: puts `mine` on the table, waits for every rank's part, runs `take` on all
    /// of them (in rank order) and closes the round once every rank has taken.
    fn meet<T: Element, R>(
        &self,
        name: &'static str,
        mine: Vec<T>,
        take: impl FnOnce(&[&[T]]) -> R,
    ) -> Result<R> {
        let world = self.meeting.world;
        // A round still being taken by slower ranks is not this one's.
        let mut t = self.wait_while(self.lock(), |t| t.arrived == world)?;
        t.parts[self.rank] = Some((name, Arc::new(mine)));
        t.arrived += 1;
        self.meeting.turn.notify_all();
        let t = self.wait_while(t, |t| t.arrived < world)?;
        let parts: Vec<Part> = t.parts.iter().flatten().cloned().collect();
        drop(t);
        let result = typed(&parts, name).map(|values| take(&values));
        let mut t = self.lock();
        t.taken += 1;
        if t.taken == world {
            t.parts.iter_mut().for_each(|p| *p = None);
            (t.arrived, t.taken) = (0, 0);
            self.meeting.turn.notify_all();
        }
        result
    }
}

/// The parts as slices of `T`; Err when a rank called another collective or another type.
fn typed<'a, T: Element>(parts: &'a [Part], name: &str) -> Result<Vec<&'a [T]>> {
    parts
        .iter()
        .enumerate()
        .map(
            |(r, (other, values))| match values.downcast_ref::<Vec<T>>() {
                Some(v) if *other == name => Ok(v.as_slice()),
                _ => Err(Error::Dist(format!(
                    "rank {r} called {other} while another rank called {name} with {}: every rank \
                 must call the same collectives in the same order",
                    std::any::type_name::<T>()
                ))),
            },
        )
        .collect()
}

/// The element-wise sum (Sum, Average) or maximum (Max) of the parts, in rank order.
fn combine<T: Element>(parts: &[&[T]], n: usize, op: ReduceOp) -> Result<Vec<T>> {
    let mut out = parts[0].to_vec();
    for (r, p) in parts.iter().enumerate() {
        if p.len() != n {
            return Err(length_error("all_reduce", r, p.len(), n));
        }
        if r == 0 {
            continue;
        }
        for (o, v) in out.iter_mut().zip(p.iter()) {
            *o = match op {
                ReduceOp::Sum | ReduceOp::Average => *o + *v,
                ReduceOp::Max if *v > *o => *v,
                ReduceOp::Max => *o,
            };
        }
    }
    Ok(out)
}

fn length_error(op: &str, rank: usize, got: usize, want: usize) -> Error {
    Error::Dist(format!(
        "{op}: rank {rank} gave {got} elements where this rank has {want}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on every rank of a fresh group of `world` threads and returns their results.
    fn on_threads<R: Send + 'static>(
        world: usize,
        f: impl Fn(ThreadComm) -> R + Send + Sync + 'static,
    ) -> Vec<R> {
        let f = Arc::new(f);
        let handles: Vec<_> = ThreadComm::group(world)
            .into_iter()
            .map(|c| {
                let f = f.clone();
                std::thread::spawn(move || f(c))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    #[test]
    fn collectives_agree_with_a_serial_reference() {
        let world = 3;
        let out = on_threads(world, move |c| {
            let r = c.rank();
            // Many rounds in a row: a fast rank must not overwrite a round others still read.
            let mut sums = Vec::new();
            for round in 0..50 {
                let mut v = vec![(r * 10 + round) as f64, -(r as f64)];
                c.all_reduce(&mut v, ReduceOp::Sum).unwrap();
                sums.push(v);
            }
            let mut m = [r as f32 - 1.0];
            c.all_reduce(&mut m, ReduceOp::Max).unwrap();
            let mut b = if r == 2 {
                vec![7.0f32, 8.0]
            } else {
                vec![0.0; 2]
            };
            c.broadcast(&mut b, 2).unwrap();
            let mut g = vec![0.0f32; 2 * world];
            c.all_gather(&[r as f32, 1.0], &mut g).unwrap();
            let send: Vec<f64> = (0..world).map(|k| (k * 100 + r) as f64).collect();
            let mut mine = [0.0f64];
            c.reduce_scatter(&send, &mut mine, ReduceOp::Sum).unwrap();
            c.barrier().unwrap();
            (sums, m[0], b, g, mine[0])
        });
        for (r, (sums, max, b, g, mine)) in out.into_iter().enumerate() {
            for (round, s) in sums.iter().enumerate() {
                let want: f64 = (0..world).map(|k| (k * 10 + round) as f64).sum();
                assert_eq!(s, &[want, -3.0], "rank {r} round {round}");
            }
            assert_eq!(max, 1.0);
            assert_eq!(b, [7.0, 8.0]);
            assert_eq!(g, [0.0, 1.0, 1.0, 1.0, 2.0, 1.0]);
            let want: f64 = (0..world).map(|k| (r * 100 + k) as f64).sum();
            assert_eq!(mine, want, "rank {r}'s block");
        }
    }

    #[test]
    fn a_failed_rank_stops_the_others_and_mismatches_are_errors() {
        let out = on_threads(2, |c| {
            if c.rank() == 1 {
                c.abort();
                return String::new();
            }
            c.barrier().unwrap_err().to_string()
        });
        assert!(out[0].contains("rank 1"), "{}", out[0]);
        let out = on_threads(2, |c| {
            let mut v = vec![1.0f32; 1 + c.rank()];
            let e = c.all_reduce(&mut v, ReduceOp::Sum).unwrap_err().to_string();
            let mut w = [1.0f64];
            let e2 = if c.rank() == 0 {
                c.all_reduce(&mut w, ReduceOp::Sum)
            } else {
                c.broadcast(&mut w, 0)
            };
            (e, e2.unwrap_err().to_string())
        });
        for (e, e2) in out {
            assert!(e.contains("elements"), "{e}");
            assert!(e2.contains("same collectives"), "{e2}");
        }
    }
}
