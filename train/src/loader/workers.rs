//! `Loader`: persistent worker threads filling batches, a bounded prefetch window, ordered output.
use super::fill::{Items, Job, Shared, Variant};
use super::streamed::StreamJobs;
use super::{Batch, BatchPlan, Sampler};
use crate::augment::Pipeline;
use crate::data::wds::WdsDataset;
use crate::data::{panic_text, Dataset};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// How the loader batches and parallelizes.
#[derive(Debug, Clone)]
pub struct LoaderOptions {
    /// Samples per batch (per rank).
    pub batch_size: usize,
    /// Worker threads (0: fill batches on the calling thread).
    pub workers: usize,
    /// Training mode (timm's `drop_last`): drop the last, smaller batch, refill the slots of
    /// unreadable samples from the next ones, and drop a batch shrunk to one sample.
    pub drop_last: bool,
    /// Batches in flight at most (the prefetch queue's bound); 0 means `2 * workers`.
    pub prefetch: usize,
    /// Base seed for augmentation.
    pub seed: u64,
    /// This process's rank.
    pub rank: usize,
    /// Output (h, w, c) of every image (of the first size choice, with scheduled sizes).
    pub shape: (usize, usize, usize),
}

type Done = (u64, Result<Batch>);

/// Where a loader's samples come from.
#[derive(Debug)]
enum Feed {
    /// A random-access dataset read in a sampler's order.
    Indexed {
        dataset: Arc<dyn Dataset>,
        sampler: Box<dyn Sampler>,
    },
    /// Webdataset shards streamed by rank `rank` of `world`.
    Streamed {
        dataset: Arc<WdsDataset>,
        world: usize,
    },
}

/// Yields batches of a dataset, epoch by epoch, from worker threads that live as long as it does.
/// The batches of an epoch depend only on (seed, epoch, rank), not on the worker count, except
/// for a streamed dataset, whose shards are split over the loader workers as timm splits them.
#[derive(Debug)]
pub struct Loader {
    shared: Arc<Shared>,
    feed: Feed,
    /// Scheduled sizes: each epoch's batches (size choice and batch size); None: fixed batches
    /// of `opts.batch_size`.
    plan: Option<BatchPlan>,
    opts: LoaderOptions,
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    done_tx: Sender<Done>,
    threads: Vec<JoinHandle<()>>,
    generation: u64,
}

impl Loader {
    /// Starts `opts.workers` threads that load from `dataset` through `pipeline` in `sampler`'s order.
    pub fn new(
        dataset: Arc<dyn Dataset>,
        pipeline: Pipeline,
        sampler: Box<dyn Sampler>,
        opts: LoaderOptions,
    ) -> Result<Self> {
        let variant = one_variant(pipeline, &opts)?;
        Self::start(
            Feed::Indexed { dataset, sampler },
            vec![variant],
            None,
            opts,
        )
    }

    /// A loader of webdataset shards, streamed as timm's `ReaderWds` streams them for rank
    /// `opts.rank` of `world`, split over `opts.workers` loader workers (timm's `--workers`).
    pub fn streamed(
        dataset: Arc<WdsDataset>,
        pipeline: Pipeline,
        world: usize,
        opts: LoaderOptions,
    ) -> Result<Self> {
        let variant = one_variant(pipeline, &opts)?;
        // The split is checked now (more loader workers than shards), not at the first epoch.
        let o = &opts;
        StreamJobs::new(
            &dataset,
            0,
            (o.rank, world),
            o.workers,
            o.batch_size,
            o.drop_last,
        )?;
        let feed = Feed::Streamed { dataset, world };
        Self::start(feed, vec![variant], None, opts)
    }

    /// A loader of scheduled sizes (timm's `ScheduledBatchSampler` over `sampler`): each
    /// epoch's batches as `plan` lays them out, the batches of choice k transformed by
    /// `pipelines[k]` to `plan`'s size k; sampler indices are cycled when an epoch needs more.
    pub fn scheduled(
        dataset: Arc<dyn Dataset>,
        pipelines: Vec<Pipeline>,
        sampler: Box<dyn Sampler>,
        plan: BatchPlan,
        opts: LoaderOptions,
    ) -> Result<Self> {
        let sizes = &plan.schedule().sizes;
        if pipelines.len() != sizes.len() {
            return Err(Error::config(
                "pipelines",
                pipelines.len().to_string(),
                format!("one per scheduled size ({})", sizes.len()),
            ));
        }
        let c = opts.shape.2;
        let variants = (pipelines.into_iter().zip(sizes))
            .map(|(pipeline, &s)| Variant {
                pipeline,
                shape: (s, s, c),
            })
            .collect();
        Self::start(
            Feed::Indexed { dataset, sampler },
            variants,
            Some(plan),
            opts,
        )
    }

    /// Starts the workers over `variants`.
    fn start(
        feed: Feed,
        variants: Vec<Variant>,
        plan: Option<BatchPlan>,
        opts: LoaderOptions,
    ) -> Result<Self> {
        let shared = Arc::new(Shared {
            variants,
            seed: opts.seed,
            rank: opts.rank,
            skipped: Default::default(),
            logged: Default::default(),
            pool: Default::default(),
            refill: opts.drop_last,
        });
        let (job_tx, job_rx) = channel::<Job>();
        let (done_tx, done) = channel();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let threads = (0..opts.workers)
            .map(|k| spawn_worker(k, shared.clone(), job_rx.clone(), done_tx.clone()))
            .collect::<Result<_>>()?;
        Ok(Loader {
            shared,
            feed,
            plan,
            opts,
            jobs: Some(job_tx),
            done,
            done_tx,
            threads,
            generation: 0,
        })
    }

    /// Batches per epoch (for a streamed evaluation, whose workers read what their shards hold,
    /// timm's estimate).
    pub fn len(&self) -> usize {
        if let Some(plan) = &self.plan {
            return plan.len();
        }
        let n = match &self.feed {
            Feed::Indexed { sampler, .. } => sampler.indices(0).len(),
            Feed::Streamed { dataset, world } => {
                dataset.len(*world, self.opts.workers, self.opts.batch_size)
            }
        };
        if self.opts.drop_last {
            n / self.opts.batch_size
        } else {
            n.div_ceil(self.opts.batch_size)
        }
    }

    /// The scheduled-size plan, if the loader has one.
    pub fn plan(&self) -> Option<&BatchPlan> {
        self.plan.as_ref()
    }

    /// Whether an epoch yields no batch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Samples skipped (unreadable or corrupt files) since the loader started.
    pub fn skipped(&self) -> usize {
        self.shared.skipped.load(Ordering::Relaxed)
    }

    /// Hands a batch's image buffer back for reuse by the workers.
    pub fn recycle(&self, batch: Batch) {
        self.shared
            .pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(batch.images);
    }

    /// The batches of `epoch`, in order; the sampler's order for that epoch is fixed by its seed.
    pub fn epoch(&mut self, epoch: usize) -> EpochIter<'_> {
        self.epoch_from(epoch, 0)
    }

    /// The batches of `epoch` from batch `first_batch` on: the same batches `epoch` yields from there
    /// (a resumed run continues mid-epoch with them).
    /// A streamed loader reads the epoch's stream up to there without decoding, so it resumes on
    /// the same next sample.
    pub fn epoch_from(&mut self, epoch: usize, first_batch: usize) -> EpochIter<'_> {
        self.generation += 1;
        let mut queue = match &self.feed {
            Feed::Indexed { dataset, sampler } => {
                let idx = sampler.indices(epoch);
                let mut jobs = match &self.plan {
                    Some(plan) => planned_jobs(plan, dataset, &idx, epoch),
                    None => self.fixed_jobs(dataset, &idx, epoch),
                };
                jobs.retain(|j| j.index >= first_batch);
                JobQueue::Listed(jobs.into_iter())
            }
            Feed::Streamed { dataset, world } => {
                let (rank, o) = (self.opts.rank, &self.opts);
                match StreamJobs::new(
                    dataset,
                    epoch,
                    (rank, *world),
                    o.workers,
                    o.batch_size,
                    o.drop_last,
                ) {
                    Ok(jobs) => JobQueue::Streamed(jobs),
                    Err(e) => JobQueue::Failed(Some(e)),
                }
            }
        };
        let mut skip_error = None;
        for _ in 0..first_batch {
            if let JobQueue::Streamed(jobs) = &mut queue {
                match jobs.next_job() {
                    Some(Err(e)) => skip_error = Some(e),
                    Some(Ok(_)) => {}
                    None => break,
                }
            }
        }
        if let Some(e) = skip_error {
            queue = JobQueue::Failed(Some(e));
        }
        let window = if self.opts.prefetch > 0 {
            self.opts.prefetch
        } else {
            2 * self.opts.workers.max(1)
        };
        EpochIter {
            loader: self,
            first_batch,
            queue,
            ended: false,
            sent: 0,
            yielded: 0,
            window,
            ready: BTreeMap::new(),
        }
    }
}

/// The jobs of an epoch: listed up front (a sampler's order), or made as a stream is read.
#[derive(Debug)]
enum JobQueue {
    Listed(std::vec::IntoIter<Job>),
    Streamed(StreamJobs),
    /// The stream could not start: the error, given once.
    Failed(Option<Error>),
}

impl JobQueue {
    fn next_job(&mut self) -> Option<Result<Job>> {
        match self {
            JobQueue::Listed(jobs) => jobs.next().map(Ok),
            JobQueue::Streamed(jobs) => jobs.next_job(),
            JobQueue::Failed(e) => e.take().map(Err),
        }
    }
}

impl Loader {
    /// The epoch's batches of `opts.batch_size` in the sampler's order (training drops a short
    /// last one).
    fn fixed_jobs(&self, dataset: &Arc<dyn Dataset>, idx: &[usize], epoch: usize) -> Vec<Job> {
        let bs = self.opts.batch_size;
        idx.chunks(bs)
            .enumerate()
            .take_while(|(_, chunk)| !self.opts.drop_last || chunk.len() == bs)
            .map(|(index, chunk)| Job {
                generation: 0,
                epoch,
                index,
                first: index * bs,
                items: Items::Indexed {
                    dataset: dataset.clone(),
                    indices: chunk.to_vec(),
                },
                choice: 0,
            })
            .collect()
    }
}

/// The epoch's batches as `plan` lays them out, taking consecutive sampler indices (cycled when
/// the batches need more than `idx` holds).
fn planned_jobs(
    plan: &BatchPlan,
    dataset: &Arc<dyn Dataset>,
    idx: &[usize],
    epoch: usize,
) -> Vec<Job> {
    let mut first = 0;
    let mut jobs = Vec::with_capacity(plan.len());
    for (index, b) in plan.epoch(epoch).into_iter().enumerate() {
        jobs.push(Job {
            generation: 0,
            epoch,
            index,
            first,
            items: Items::Indexed {
                dataset: dataset.clone(),
                indices: (first..first + b.size)
                    .map(|p| idx[p % idx.len()])
                    .collect(),
            },
            choice: b.choice,
        });
        first += b.size;
    }
    jobs
}

fn spawn_worker(
    k: usize,
    shared: Arc<Shared>,
    jobs: Arc<Mutex<Receiver<Job>>>,
    done: Sender<Done>,
) -> Result<JoinHandle<()>> {
    let run = move || loop {
        let job = match jobs.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return, // the loader was dropped
        };
        if done
            .send((job.generation, fill_caught(&shared, &job)))
            .is_err()
        {
            return;
        }
    };
    std::thread::Builder::new()
        .name(format!("kiln-loader-{k}"))
        .spawn(run)
        .map_err(|e| Error::Worker(format!("cannot start worker {k}: {e}")))
}

/// `Shared::fill`, with a panic in a transform turned into an error instead of a hung epoch.
fn fill_caught(shared: &Shared, job: &Job) -> Result<Batch> {
    std::panic::catch_unwind(AssertUnwindSafe(|| shared.fill(job)))
        .map_err(|p| Error::Worker(format!("batch {} panicked: {}", job.index, panic_text(&p))))
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.jobs = None; // closes the job channel: workers return
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The batches of one epoch, in order, with at most `window` batches in flight.
#[derive(Debug)]
pub struct EpochIter<'a> {
    loader: &'a mut Loader,
    first_batch: usize,
    queue: JobQueue,
    /// Whether the queue has given its last job.
    ended: bool,
    sent: usize,
    yielded: usize,
    window: usize,
    ready: BTreeMap<usize, Result<Batch>>,
}

impl EpochIter<'_> {
    /// Hands a batch's image buffer back for reuse while the epoch runs (as `Loader::recycle`).
    pub fn recycle(&self, batch: Batch) {
        self.loader.recycle(batch);
    }

    /// Sends jobs until the window is full; an error making one takes its place in the order and
    /// ends the epoch.
    fn top_up(&mut self) {
        while !self.ended && self.sent - self.yielded < self.window {
            let mut job = match self.queue.next_job() {
                Some(Ok(job)) => job,
                Some(Err(e)) => {
                    let at = self.first_batch + self.sent;
                    self.ready.insert(at, Err(e));
                    self.sent += 1;
                    self.ended = true;
                    break;
                }
                None => {
                    self.ended = true;
                    break;
                }
            };
            job.generation = self.loader.generation;
            match &self.loader.jobs {
                Some(tx) if !self.loader.threads.is_empty() => {
                    let _ = tx.send(job);
                }
                _ => {
                    let out = fill_caught(&self.loader.shared, &job);
                    let _ = self.loader.done_tx.send((job.generation, out));
                }
            }
            self.sent += 1;
        }
    }
}

impl Iterator for EpochIter<'_> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        self.top_up();
        if self.ended && self.yielded == self.sent {
            return None;
        }
        let next = self.first_batch + self.yielded;
        while !self.ready.contains_key(&next) {
            let (generation, out) = match self.loader.done.recv() {
                Ok(d) => d,
                Err(e) => return Some(Err(Error::Worker(e.to_string()))),
            };
            if generation != self.loader.generation {
                continue; // left over from an epoch abandoned midway
            }
            let index = match &out {
                Ok(b) => b.index,
                Err(_) => next,
            };
            self.ready.insert(index, out);
        }
        let out = self.ready.remove(&next);
        self.yielded += 1;
        out
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let in_flight = self.sent - self.yielded;
        match &self.queue {
            JobQueue::Listed(jobs) => (in_flight + jobs.len(), Some(in_flight + jobs.len())),
            _ => (in_flight, None),
        }
    }
}

/// The one variant of an unscheduled loader: `opts.batch_size` images at `opts.shape` (a batch
/// size of 0 refused).
fn one_variant(pipeline: Pipeline, opts: &LoaderOptions) -> Result<Variant> {
    if opts.batch_size == 0 {
        return Err(Error::config("batch_size", "0", "at least 1"));
    }
    Ok(Variant {
        pipeline,
        shape: opts.shape,
    })
}
