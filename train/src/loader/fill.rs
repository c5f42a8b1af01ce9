//! Filling one batch: load, augment and pack its samples, skipping (and counting) unreadable files.
use super::Batch;
use crate::augment::{derive_rng, AugRng, Pipeline};
use crate::data::{Dataset, Image};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What every worker shares: the dataset, the pipeline, the output shape and the skip counters.
#[derive(Debug)]
pub struct Shared {
    /// Samples come from here.
    pub dataset: Arc<dyn Dataset>,
    /// Train or eval transforms.
    pub pipeline: Pipeline,
    /// Output (h, w, c) of every view.
    pub shape: (usize, usize, usize),
    /// Base seed.
    pub seed: u64,
    /// This process's rank (part of every sample's seed).
    pub rank: usize,
    /// Samples skipped so far, all epochs.
    pub skipped: AtomicUsize,
    /// Files already logged, so each is logged once.
    pub logged: Mutex<HashSet<String>>,
    /// Spare image buffers, handed back by `Loader::recycle`.
    pub pool: Mutex<Vec<Vec<u8>>>,
}

/// One batch to make: its position in the epoch and the dataset indices it holds.
#[derive(Debug, Clone)]
pub struct Job {
    /// Loader run this job belongs to (stale results of an abandoned epoch are dropped).
    pub generation: u64,
    /// Epoch.
    pub epoch: usize,
    /// Batch position in the epoch.
    pub index: usize,
    /// Position of the first sample in the epoch's order (seeds are per position).
    pub first: usize,
    /// Dataset indices.
    pub indices: Vec<usize>,
}

impl Shared {
    /// Loads, augments and packs the samples of `job`. Each sample's randomness is seeded by
    /// (seed, epoch, rank, position in epoch), so batches do not depend on the worker count.
    pub fn fill(&self, job: &Job) -> Batch {
        let mut views: Vec<(Vec<Image>, usize, String)> = Vec::with_capacity(job.indices.len());
        for (k, &i) in job.indices.iter().enumerate() {
            let pos = (job.first + k) as u64;
            let mut rng = derive_rng(&[self.seed, job.epoch as u64, self.rank as u64, pos]);
            match self.dataset.load(i) {
                Ok(s) => match self.checked_views(s.image, &mut rng) {
                    Ok(v) => views.push((v, s.label, s.filename)),
                    Err(why) => self.count_skip(&s.filename, &why),
                },
                Err(e) => self.count_skip(&self.dataset.filename(i), &e.to_string()),
            }
        }
        self.pack(job, views)
    }

    /// The pipeline's views of `img`, or why they do not fit the batch shape.
    fn checked_views(&self, img: Image, rng: &mut AugRng) -> Result<Vec<Image>, String> {
        let (h, w, c) = self.shape;
        let views = self.pipeline.views(img, rng);
        match views.iter().find(|im| (im.h, im.w, im.c) != (h, w, c)) {
            Some(im) => Err(format!(
                "transforms gave {}x{}x{}, the batch needs {h}x{w}x{c}",
                im.h, im.w, im.c
            )),
            None => Ok(views),
        }
    }

    /// Logs a skipped file once (by name) and counts it every time.
    fn count_skip(&self, name: &str, why: &str) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        if logged.insert(name.to_string()) {
            log::warn!("skipping {name}: {why}");
        }
    }

    /// Packs per-sample views split-major into a (recycled) buffer.
    fn pack(&self, job: &Job, views: Vec<(Vec<Image>, usize, String)>) -> Batch {
        let (h, w, c) = self.shape;
        let splits = self.pipeline.splits.max(1);
        let mut images = self
            .pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default();
        images.clear();
        images.reserve(views.len() * splits * h * w * c);
        let (mut targets, mut filenames) = (Vec::new(), Vec::new());
        for s in 0..splits {
            for (v, label, name) in &views {
                images.extend_from_slice(&v[s].data);
                targets.push(*label);
                filenames.push(name.clone());
            }
        }
        let skipped = job.indices.len() - views.len();
        let n = targets.len();
        Batch {
            images,
            n,
            h,
            w,
            c,
            targets,
            filenames,
            splits,
            index: job.index,
            epoch: job.epoch,
            skipped,
        }
    }
}
