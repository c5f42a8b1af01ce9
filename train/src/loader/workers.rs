//! `Loader`: persistent worker threads filling batches, a bounded prefetch window, ordered output.
use super::fill::{Job, Shared, Variant};
use super::{Batch, BatchPlan, Sampler};
use crate::augment::Pipeline;
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

/// Yields batches of a dataset, epoch by epoch, from worker threads that live as long as it does.
/// The batches of an epoch depend only on (seed, epoch, rank), not on the worker count.
#[derive(Debug)]
pub struct Loader {
    shared: Arc<Shared>,
    sampler: Box<dyn Sampler>,
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
        if opts.batch_size == 0 {
            return Err(Error::config("batch_size", "0", "at least 1"));
        }
        let variant = Variant {
            pipeline,
            shape: opts.shape,
        };
        Self::start(dataset, vec![variant], sampler, None, opts)
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
        Self::start(dataset, variants, sampler, Some(plan), opts)
    }

    /// Starts the workers over `variants`.
    fn start(
        dataset: Arc<dyn Dataset>,
        variants: Vec<Variant>,
        sampler: Box<dyn Sampler>,
        plan: Option<BatchPlan>,
        opts: LoaderOptions,
    ) -> Result<Self> {
        let shared = Arc::new(Shared {
            dataset,
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
            sampler,
            plan,
            opts,
            jobs: Some(job_tx),
            done,
            done_tx,
            threads,
            generation: 0,
        })
    }

    /// Batches per epoch.
    pub fn len(&self) -> usize {
        if let Some(plan) = &self.plan {
            return plan.len();
        }
        let n = self.sampler.indices(0).len();
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
    pub fn epoch_from(&mut self, epoch: usize, first_batch: usize) -> EpochIter<'_> {
        self.generation += 1;
        let idx = self.sampler.indices(epoch);
        let mut jobs = match &self.plan {
            Some(plan) => planned_jobs(plan, &idx, epoch),
            None => self.fixed_jobs(&idx, epoch),
        };
        jobs.retain(|j| j.index >= first_batch);
        jobs.iter_mut().for_each(|j| j.generation = self.generation);
        let window = if self.opts.prefetch > 0 {
            self.opts.prefetch
        } else {
            2 * self.opts.workers.max(1)
        };
        EpochIter {
            loader: self,
            first_batch,
            jobs,
            sent: 0,
            yielded: 0,
            window,
            ready: BTreeMap::new(),
        }
    }
}

impl Loader {
    /// The epoch's batches of `opts.batch_size` in the sampler's order (training drops a short
    /// last one).
    fn fixed_jobs(&self, idx: &[usize], epoch: usize) -> Vec<Job> {
        let bs = self.opts.batch_size;
        idx.chunks(bs)
            .enumerate()
            .take_while(|(_, chunk)| !self.opts.drop_last || chunk.len() == bs)
            .map(|(index, chunk)| Job {
                generation: 0,
                epoch,
                index,
                first: index * bs,
                indices: chunk.to_vec(),
                choice: 0,
            })
            .collect()
    }
}

/// The epoch's batches as `plan` lays them out, taking consecutive sampler indices (cycled when
/// the batches need more than `idx` holds).
fn planned_jobs(plan: &BatchPlan, idx: &[usize], epoch: usize) -> Vec<Job> {
    let mut first = 0;
    let mut jobs = Vec::with_capacity(plan.len());
    for (index, b) in plan.epoch(epoch).into_iter().enumerate() {
        jobs.push(Job {
            generation: 0,
            epoch,
            index,
            first,
            indices: (first..first + b.size)
                .map(|p| idx[p % idx.len()])
                .collect(),
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
    jobs: Vec<Job>,
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

    /// Sends jobs until the window is full.
    fn top_up(&mut self) {
        while self.sent < self.jobs.len() && self.sent - self.yielded < self.window {
            let job = self.jobs[self.sent].clone();
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
        if self.yielded == self.jobs.len() {
            return None;
        }
        self.top_up();
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
        let left = self.jobs.len() - self.yielded;
        (left, Some(left))
    }
}
