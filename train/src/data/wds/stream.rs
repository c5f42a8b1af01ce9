//! `WorkerStream`: the samples one loader worker reads in an epoch, as timm's `ReaderWds`
//! pipeline gives them: the split's shards (shuffled in training by `detshuffle2`, seeded by
//! `seed + epoch`), every `world * workers`-th from the worker's global index, read in order and
//! (in training) passed through the sample shuffle buffer; training and distributed streams stop
//! at the worker's sample count, starting its shard list over when it runs out first
//! (webdataset's `with_epoch`: uneven shards are resampled, not padded).
//!
//! Where kiln's order differs from timm's: timm seeds each worker's sample buffer from the
//! DataLoader worker seed, `base_seed + worker_id` with a `base_seed` torch draws at random (with
//! no worker processes, `seed`), and that generator runs on from epoch to epoch in a persistent
//! worker. kiln seeds worker `k`'s buffer with `seed + k` at the start of every epoch: epoch `e`
//! is the order timm gives when its run is started or resumed at epoch `e` with those worker
//! seeds (exactly its order with no worker processes), and an epoch depends only on
//! (seed, epoch, rank, worker). Shard order and split, counts, labels and the set of samples are
//! timm's.
use super::shard::read_shard;
use super::shuffle::{shuffled, ShuffleBuffer};
use super::{WdsDataset, WdsSample};
use crate::sched::PyRandom;
use crate::{Error, Result};
use std::collections::VecDeque;
use std::sync::Arc;

/// timm's `shard_shuffle_size`: the shard-list shuffle buffer.
pub const SHARD_SHUFFLE_SIZE: usize = 500;
/// webdataset's `detshuffle` initial size for the shard list.
pub const SHARD_SHUFFLE_INITIAL: usize = 100;

/// One loader worker's samples in one epoch (an iterator of samples or of the error that ends it).
#[derive(Debug)]
pub struct WorkerStream {
    ds: Arc<WdsDataset>,
    /// The worker's shards (indices into the split), in reading order.
    shards: Vec<usize>,
    /// The next of `shards` to read in this pass.
    next_shard: usize,
    /// The samples of the shard being read, not yet taken.
    pending: VecDeque<WdsSample>,
    /// Whether this pass has read all its shards.
    source_done: bool,
    /// Training's sample buffer and its generator.
    shuffle: Option<(ShuffleBuffer<WdsSample>, PyRandom)>,
    /// The worker's sample count (training or distributed), after which the stream stops.
    limit: Option<usize>,
    /// Samples given so far, and in this pass.
    given: usize,
    given_in_pass: usize,
    failed: bool,
}

impl WorkerStream {
    /// The samples loader worker `worker` (of `workers`; 0 means one, the calling thread) on
    /// `rank` of `world` reads from `ds` in `epoch`. Training and distributed streams stop at
    /// `ds.samples_per_worker(world, workers, batch_size)`.
    pub fn new(
        ds: &Arc<WdsDataset>,
        epoch: usize,
        rank: usize,
        world: usize,
        worker: usize,
        workers: usize,
        batch_size: usize,
    ) -> Result<Self> {
        let opts = ds.options();
        let workers = workers.max(1);
        if rank >= world || worker >= workers {
            return Err(Error::config(
                "webdataset worker",
                format!("rank {rank} of {world}, worker {worker} of {workers}"),
                "a rank below the world size and a worker below the worker count",
            ));
        }
        let order: Vec<usize> = (0..ds.shards().len()).collect();
        let order = match opts.is_training {
            true => {
                let mut rng = PyRandom::new(opts.seed.wrapping_add(epoch as u64).into());
                shuffled(order, SHARD_SHUFFLE_SIZE, SHARD_SHUFFLE_INITIAL, &mut rng)
            }
            false => order,
        };
        let global = world * workers;
        let shards: Vec<usize> = order
            .into_iter()
            .skip(rank * workers + worker)
            .step_by(global)
            .collect();
        let limited = opts.is_training || world > 1;
        if limited && shards.is_empty() {
            return Err(Error::Wds {
                path: ds.root().to_path_buf(),
                msg: format!(
                    "{} shards cannot feed {global} loader workers ({world} ranks x {workers}): \
                     each needs at least one shard (use fewer --workers, or more shards)",
                    ds.shards().len()
                ),
            });
        }
        let shuffle = opts.is_training.then(|| {
            let seed = opts.seed.wrapping_add(worker as u64);
            (
                ShuffleBuffer::new(opts.sample_shuffle_size, opts.sample_initial_size),
                PyRandom::new(seed.into()),
            )
        });
        Ok(WorkerStream {
            ds: ds.clone(),
            shards,
            next_shard: 0,
            pending: VecDeque::new(),
            source_done: false,
            shuffle,
            limit: limited.then(|| ds.samples_per_worker(world, workers, batch_size)),
            given: 0,
            given_in_pass: 0,
            failed: false,
        })
    }

    /// The worker's shard files, in reading order.
    pub fn shard_files(&self) -> Vec<&std::path::Path> {
        let all = self.ds.shards();
        self.shards.iter().map(|&i| all[i].as_path()).collect()
    }

    /// The next sample of this pass over the worker's shards, before the sample buffer.
    fn source_next(&mut self) -> Option<Result<WdsSample>> {
        loop {
            if let Some(s) = self.pending.pop_front() {
                return Some(Ok(s));
            }
            let &k = self.shards.get(self.next_shard)?;
            self.next_shard += 1;
            match read_shard(&self.ds.shards()[k], self.ds.keys()) {
                Ok(samples) => self.pending = samples.into(),
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The next sample of this pass, through the sample buffer in training (`_shuffle`).
    fn pass_next(&mut self) -> Option<Result<WdsSample>> {
        if self.shuffle.is_none() {
            return self.source_next();
        }
        while !self.source_done {
            match self.source_next() {
                None => self.source_done = true,
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(s)) => {
                    let (buf, _) = self.shuffle.as_mut().expect("training shuffles");
                    buf.push(s);
                    if buf.wants_more() {
                        match self.source_next() {
                            None => self.source_done = true,
                            Some(Err(e)) => return Some(Err(e)),
                            Some(Ok(t)) => {
                                self.shuffle.as_mut().expect("training shuffles").0.push(t)
                            }
                        }
                    }
                    let (buf, rng) = self.shuffle.as_mut().expect("training shuffles");
                    if let Some(s) = buf.take(rng, false) {
                        return Some(Ok(s));
                    }
                }
            }
        }
        let (buf, rng) = self.shuffle.as_mut().expect("training shuffles");
        buf.take(rng, true).map(Ok)
    }
}

impl Iterator for WorkerStream {
    type Item = Result<WdsSample>;

    fn next(&mut self) -> Option<Result<WdsSample>> {
        if self.failed || self.limit.is_some_and(|n| self.given >= n) {
            return None;
        }
        loop {
            match self.pass_next() {
                Some(Ok(s)) => {
                    self.given += 1;
                    self.given_in_pass += 1;
                    return Some(Ok(s));
                }
                Some(Err(e)) => {
                    self.failed = true;
                    return Some(Err(e));
                }
                // A pass that gave nothing ends the stream (webdataset stops repeating an empty
                // pipeline); so does the end of an unlimited one.
                None if self.limit.is_none() || self.given_in_pass == 0 => return None,
                None => {
                    self.next_shard = 0;
                    self.source_done = false;
                    self.given_in_pass = 0;
                }
            }
        }
    }
}
