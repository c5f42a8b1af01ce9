//! Ranks that are threads of one process (one per device, `--device cuda:0,1`): every collective
//! is a meeting in host memory. Each rank leaves its contribution on the table, waits for the
//! others, and computes the result from all of them in rank order, so every rank gets the same
//! bits. A rank that fails calls [`ThreadComm::abort`] and the others' collectives return an
//! error instead of waiting for it forever; a rank that does not come to a collective within the
//! communicator's timeout is named, and marked failed for the others.
//!
//! DDP's gradient buckets do not meet: each rank posts its flat bucket and goes on with backward
//! ([`ThreadComm::start_reduce`]); the last rank to post one reduces it (see [`super::device_reduce`])
//! and [`ThreadComm::finish_reduce`] hands every rank its copy once backward is over. With NCCL
//! (feature `nccl`, a communicator over the process's devices) the bucket goes to NCCL instead.

use super::collectives::Collectives;
use super::device_reduce::{reduce_parts, Path};
use super::element::{combine, length_error, Element, ReduceOp};
use crate::{Error, Result};
use kiln_engine::{Device, Tensor};
use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

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
    /// Buckets posted by [`ThreadComm::start_reduce`], by sequence number.
    buckets: HashMap<u64, Bucket>,
}

/// One bucket's all-reduce: the ranks' flat parts until the last arrives, then the result.
struct Bucket {
    parts: Vec<Option<Tensor>>,
    arrived: usize,
    /// The reduced bucket (on the reducing device, or the host), once computed.
    result: Option<std::result::Result<Tensor, String>>,
    /// Ranks that have taken the result (the bucket goes when all have).
    taken: usize,
}

/// A bucket all-reduce started by [`ThreadComm::start_reduce`].
pub enum Ticket {
    /// Reduced already (by NCCL, queued on the tensor's stream).
    Done(Tensor),
    /// Posted as bucket `seq`; this rank wants the result on `device`.
    Posted { seq: u64, device: Device },
}

/// What the threads share.
struct Meeting {
    world: usize,
    /// How long a rank waits for the others in a collective.
    timeout: Duration,
    table: Mutex<Table>,
    turn: Condvar,
}

/// One thread's end of an in-process communicator.
pub struct ThreadComm {
    rank: usize,
    meeting: Arc<Meeting>,
    /// How buckets travel between the devices.
    path: Path,
    /// The next bucket's sequence number (the same on every rank: buckets start in order).
    seq: AtomicU64,
    /// This rank's NCCL communicator, when NCCL serves the process's devices.
    #[cfg(feature = "nccl")]
    nccl: Option<super::nccl::NcclComm>,
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
    /// The `world` ends of one communicator, rank 0 first (one per thread), buckets staged
    /// through host memory; a collective waits up to `timeout` for the other ranks.
    pub fn group(world: usize, timeout: Duration) -> Vec<ThreadComm> {
        ThreadComm::group_over(world, Path::Host, timeout)
    }

    /// As [`ThreadComm::group`], buckets reduced over `path`.
    pub fn group_over(world: usize, path: Path, timeout: Duration) -> Vec<ThreadComm> {
        let meeting = Arc::new(Meeting {
            world,
            timeout,
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
                path,
                seq: AtomicU64::new(0),
                #[cfg(feature = "nccl")]
                nccl: None,
            })
            .collect()
    }

    /// Hands bucket reductions of CUDA tensors to this rank's NCCL communicator.
    #[cfg(feature = "nccl")]
    pub fn use_nccl(&mut self, comm: super::nccl::NcclComm) {
        self.nccl = Some(comm);
    }

    /// How buckets travel between the devices (NCCL when a communicator was given).
    pub fn path_name(&self) -> &'static str {
        #[cfg(feature = "nccl")]
        if self.nccl.is_some() {
            return "NCCL";
        }
        self.path.name()
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

    /// Starts the all-reduce of a flat bucket without waiting for the other ranks: posts it,
    /// and reduces it here if this rank is the last to post (in rank order, on this rank's
    /// device over peer copies, or through the host).
    pub fn start_reduce(&self, flat: Tensor, op: ReduceOp) -> Result<Ticket> {
        #[cfg(feature = "nccl")]
        if let (Some(nccl), Device::Cuda(_)) = (&self.nccl, flat.device()) {
            nccl.all_reduce_tensor(&flat, op)?;
            return Ok(Ticket::Done(flat));
        }
        let world = self.meeting.world;
        let device = flat.device();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut t = self.wait_while(self.lock(), |_| false, |_| None)?;
        let bucket = t.buckets.entry(seq).or_insert_with(|| Bucket {
            parts: vec![None; world],
            arrived: 0,
            result: None,
            taken: 0,
        });
        bucket.parts[self.rank] = Some(flat);
        bucket.arrived += 1;
        if bucket.arrived < world {
            return Ok(Ticket::Posted { seq, device });
        }
        let parts: Vec<Tensor> = bucket.parts.iter_mut().flat_map(Option::take).collect();
        drop(t);
        let result = reduce_parts(&parts, op, self.path, device).map_err(|e| e.to_string());
        let mut t = self.lock();
        if let Some(b) = t.buckets.get_mut(&seq) {
            b.result = Some(result);
        }
        self.meeting.turn.notify_all();
        Ok(Ticket::Posted { seq, device })
    }

    /// Waits for a bucket started by [`ThreadComm::start_reduce`] and returns this rank's copy
    /// of the result, on the device the bucket came from.
    pub fn finish_reduce(&self, ticket: Ticket) -> Result<Tensor> {
        let (seq, device) = match ticket {
            Ticket::Done(t) => return Ok(t),
            Ticket::Posted { seq, device } => (seq, device),
        };
        let busy = |t: &Table| t.buckets.get(&seq).is_some_and(|b| b.result.is_none());
        let late = |t: &Table| {
            let parts = &t.buckets.get(&seq)?.parts;
            (parts.iter().any(Option::is_some)).then(|| parts.iter().position(Option::is_none))?
        };
        let mut t = self.wait_while(self.lock(), busy, late)?;
        let world = self.meeting.world;
        let bucket = t
            .buckets
            .get_mut(&seq)
            .ok_or_else(|| Error::Dist(format!("bucket {seq} was never posted")))?;
        let result = bucket
            .result
            .clone()
            .unwrap_or_else(|| Err("no result".into()));
        bucket.taken += 1;
        if bucket.taken == world {
            t.buckets.remove(&seq);
        }
        drop(t);
        result
            .map_err(|e| Error::Dist(format!("bucket all-reduce: {e}")))?
            .to_device(device)
            .map_err(Error::from)
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.meeting.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits on the table while `busy` holds; Err once a rank has failed, or once the timeout
    /// is up, naming the rank `late` finds missing (and marking it failed for the others).
    fn wait_while<'a>(
        &self,
        mut t: MutexGuard<'a, Table>,
        busy: impl Fn(&Table) -> bool,
        late: impl Fn(&Table) -> Option<usize>,
    ) -> Result<MutexGuard<'a, Table>> {
        let timeout = self.meeting.timeout;
        let deadline = Instant::now() + timeout;
        while t.failed.is_none() && busy(&t) {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                let missing = late(&t);
                t.failed = Some(missing.unwrap_or(self.rank));
                self.meeting.turn.notify_all();
                return Err(Error::Dist(match missing {
                    Some(r) => format!(
                        "rank {r} of this process's device threads did not come to a collective \
                         within {timeout:?}"
                    ),
                    None => format!(
                        "a collective of this process's device threads did not end within \
                         {timeout:?}"
                    ),
                }));
            };
            t = (self.meeting.turn.wait_timeout(t, left))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        match t.failed {
            Some(r) if r != self.rank => Err(Error::Dist(format!(
                "rank {r} of this process's {} device threads failed or stopped answering, so \
                 rank {} stops",
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
        let mut t = self.wait_while(self.lock(), |t| t.arrived == world, |_| None)?;
        t.parts[self.rank] = Some((name, Arc::new(mine)));
        t.arrived += 1;
        self.meeting.turn.notify_all();
        let late = |t: &Table| t.parts.iter().position(Option::is_none);
        let t = self.wait_while(t, |t| t.arrived < world, late)?;
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

/// Every collective is a meeting at the table, whose parts each rank combines in rank order;
/// all-gather, reduce-scatter and barrier are the trait's, over these.
impl Collectives for ThreadComm {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.meeting.world
    }

    fn all_reduce<T: Element>(&self, buf: &mut [T], op: ReduceOp) -> Result<()> {
        let n = buf.len();
        let sum = self.meet("all_reduce", buf.to_vec(), |parts| combine(parts, n, op))??;
        buf.copy_from_slice(&sum);
        Ok(())
    }

    fn broadcast<T: Element>(&self, buf: &mut [T], root: usize) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on every rank of a fresh group of `world` threads and returns their results.
    fn on_threads<R: Send + 'static>(
        world: usize,
        f: impl Fn(ThreadComm) -> R + Send + Sync + 'static,
    ) -> Vec<R> {
        let f = Arc::new(f);
        let handles: Vec<_> = ThreadComm::group(world, Duration::from_secs(60))
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
    fn bucket_reductions_start_without_waiting_for_the_other_ranks() {
        for path in [Path::Peer, Path::Host] {
            let comms = ThreadComm::group_over(2, path, Duration::from_secs(60));
            let (posted, heard) = std::sync::mpsc::channel::<()>();
            let heard = Mutex::new(heard);
            let bucket = |r: usize, b: usize| {
                let v: Vec<f32> = (0..5).map(|i| (r * 100 + b * 10 + i) as f32).collect();
                Tensor::from_vec(v, &[5]).unwrap()
            };
            let run = |c: &ThreadComm| -> Vec<Vec<f32>> {
                // Rank 1 posts nothing until rank 0 has started all three: a start that waited
                // for the other rank would leave rank 1 waiting for the signal in vain.
                if c.rank() == 1 {
                    heard
                        .lock()
                        .unwrap()
                        .recv_timeout(std::time::Duration::from_secs(60))
                        .expect("rank 0's starts returned");
                }
                let op = |b| {
                    if b == 2 {
                        ReduceOp::Max
                    } else {
                        ReduceOp::Average
                    }
                };
                let tickets: Vec<Ticket> = (0..3)
                    .map(|b| c.start_reduce(bucket(c.rank(), b), op(b)).unwrap())
                    .collect();
                if c.rank() == 0 {
                    posted.clone().send(()).unwrap();
                }
                tickets
                    .into_iter()
                    .map(|t| c.finish_reduce(t).unwrap().to_vec_f32().unwrap())
                    .collect()
            };
            let out: Vec<Vec<Vec<f32>>> = std::thread::scope(|s| {
                let handles: Vec<_> = comms.iter().map(|c| s.spawn(move || run(c))).collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for (b, (on0, on1)) in out[0].iter().zip(&out[1]).enumerate() {
                let (x, y) = (
                    bucket(0, b).to_vec_f32().unwrap(),
                    bucket(1, b).to_vec_f32().unwrap(),
                );
                let want: Vec<f32> = x
                    .iter()
                    .zip(&y)
                    .map(|(a, c)| if b == 2 { a.max(*c) } else { (a + c) / 2.0 })
                    .collect();
                assert_eq!(on0, &want, "{path:?}: bucket {b}");
                assert_eq!(on1, &want, "{path:?}: bucket {b} on rank 1");
            }
        }
    }

    #[test]
    fn a_rank_that_does_not_come_is_named_after_the_timeout() {
        for bucket in [false, true] {
            let comms = ThreadComm::group(3, Duration::from_millis(300));
            let out: Vec<String> = std::thread::scope(|s| {
                let handles: Vec<_> = (comms.iter().take(2))
                    .map(|c| {
                        s.spawn(move || match bucket {
                            false => c.barrier().unwrap_err().to_string(),
                            true => {
                                let flat = Tensor::from_vec(vec![1.0f32], &[1]).unwrap();
                                let ticket = c.start_reduce(flat, ReduceOp::Sum).unwrap();
                                c.finish_reduce(ticket).unwrap_err().to_string()
                            }
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            // Rank 2 never comes: whichever rank times out first names it, the other hears of it.
            for e in &out {
                assert!(e.contains("rank 2"), "{e}");
            }
            assert!(out.iter().any(|e| e.contains("within 300ms")), "{out:?}");
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
