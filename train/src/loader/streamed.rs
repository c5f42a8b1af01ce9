//! The batches of a streamed (webdataset) loader in one epoch, as torch's DataLoader makes them
//! from an iterable dataset: each loader worker batches its own stream (`WorkerStream`; training
//! drops a worker's short last batch), and batches are taken from the workers in turn, a worker
//! whose stream has ended leaving the rotation. Jobs are made as the epoch goes, holding only the
//! samples of the batches in flight.
use super::fill::{Items, Job};
use crate::data::wds::{WdsDataset, WorkerStream};
use crate::Result;
use std::sync::Arc;

/// Makes the jobs of one epoch of a streamed loader, in order.
#[derive(Debug)]
pub struct StreamJobs {
    /// One stream per loader worker (timm's `--workers`, at least one); `None` once ended.
    streams: Vec<Option<WorkerStream>>,
    /// The worker whose batch comes next.
    turn: usize,
    batch_size: usize,
    drop_last: bool,
    chans: usize,
    epoch: usize,
    /// The next batch's position in the epoch, and its first sample's.
    index: usize,
    first: usize,
}

impl StreamJobs {
    /// The epoch's batches of rank `rank` of `world`, read by `workers` loader workers.
    pub fn new(
        ds: &Arc<WdsDataset>,
        epoch: usize,
        (rank, world): (usize, usize),
        workers: usize,
        batch_size: usize,
        drop_last: bool,
    ) -> Result<Self> {
        let streams = (0..workers.max(1))
            .map(|w| WorkerStream::new(ds, epoch, rank, world, w, workers, batch_size).map(Some))
            .collect::<Result<_>>()?;
        Ok(StreamJobs {
            streams,
            turn: 0,
            batch_size,
            drop_last,
            chans: ds.options().chans,
            epoch,
            index: 0,
            first: 0,
        })
    }

    /// The next batch (its `generation` 0), an error that ends a worker's stream, or `None` once
    /// every stream has ended.
    pub fn next_job(&mut self) -> Option<Result<Job>> {
        while self.streams.iter().any(Option::is_some) {
            let turn = self.turn;
            self.turn = (self.turn + 1) % self.streams.len();
            let Some(stream) = &mut self.streams[turn] else {
                continue;
            };
            let mut samples = Vec::with_capacity(self.batch_size);
            while samples.len() < self.batch_size {
                match stream.next() {
                    Some(Ok(s)) => samples.push(s),
                    Some(Err(e)) => {
                        self.streams[turn] = None;
                        return Some(Err(e));
                    }
                    None => {
                        self.streams[turn] = None;
                        break;
                    }
                }
            }
            let short = samples.len() < self.batch_size;
            if samples.is_empty() || (short && self.drop_last) {
                continue;
            }
            let job = Job {
                generation: 0,
                epoch: self.epoch,
                index: self.index,
                first: self.first,
                choice: 0,
                items: Items::Streamed {
                    chans: self.chans,
                    samples,
                },
            };
            self.index += 1;
            self.first += job.items.count();
            return Some(Ok(job));
        }
        None
    }
}
