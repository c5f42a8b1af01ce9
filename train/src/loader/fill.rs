//! Filling one batch: load, augment (by its size choice's transforms) and pack its samples,
//! skipping (and counting) unreadable files.
//! In a training loader a sample that cannot be read is replaced by the next dataset index (timm's
//! `ImageDataset` retry), so training batches keep their size; a batch that still shrinks to a
//! single sample is dropped, since BatchNorm in training mode cannot normalize one value.
use super::Batch;
use crate::augment::{derive_rng, AugRng, Pipeline};
use crate::data::{Dataset, Image};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Consecutive unreadable samples tried for one batch slot before it is left empty (timm's
/// `_ERROR_RETRY` default).
pub const MAX_RETRIES: usize = 10;

/// A batch's transforms and the (h, w, c) of every view they give.
#[derive(Debug)]
pub struct Variant {
    /// Train or eval transforms.
    pub pipeline: Pipeline,
    /// Output (h, w, c) of every view.
    pub shape: (usize, usize, usize),
}

/// What every worker shares: the dataset, the transforms per size choice and the skip counters.
#[derive(Debug)]
pub struct Shared {
    /// Samples come from here.
    pub dataset: Arc<dyn Dataset>,
    /// Transforms and output shape of each size choice (one without scheduled sizes).
    pub variants: Vec<Variant>,
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
    /// Training mode: refill slots of unreadable samples, drop batches shrunk to one sample.
    pub refill: bool,
}

/// One loaded sample: its views, its label and its file.
type Views = (Vec<Image>, usize, String);

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
    /// Which of the loader's variants (size choices) transforms it.
    pub choice: usize,
}

impl Shared {
    /// Loads, augments and packs the samples of `job`. Each sample's randomness is seeded by
    /// (seed, epoch, rank, position in epoch), so batches do not depend on the worker count.
    pub fn fill(&self, job: &Job) -> Batch {
        let mut views: Vec<Views> = Vec::with_capacity(job.indices.len());
        let mut skipped = 0;
        for (k, &i) in job.indices.iter().enumerate() {
            let pos = (job.first + k) as u64;
            let mut rng = derive_rng(&[self.seed, job.epoch as u64, self.rank as u64, pos]);
            let (found, failed) = self.load_slot(i, &self.variants[job.choice], &mut rng);
            skipped += failed;
            views.extend(found);
        }
        if self.refill && views.len() == 1 && job.indices.len() > 1 {
            log::warn!(
                "dropping batch {} of epoch {}: one sample left after skipping unreadable files \
                 (BatchNorm in training needs more than one)",
                job.index,
                job.epoch
            );
            views.clear();
        }
        self.pack(job, views, skipped)
    }

    /// Sample `i`'s views, or in training the next readable sample's within `MAX_RETRIES`
    /// indices (wrapping), and how many unreadable files were skipped on the way.
    fn load_slot(&self, i: usize, variant: &Variant, rng: &mut AugRng) -> (Option<Views>, usize) {
        let tries = if self.refill { MAX_RETRIES } else { 1 };
        let len = self.dataset.len().max(1);
        for t in 0..tries {
            if let Some(v) = self.load_views((i + t) % len, variant, rng) {
                return (Some(v), t);
            }
        }
        (None, tries)
    }

    /// Sample `i` loaded and augmented, or `None` (counted and logged) if it cannot be.
    fn load_views(&self, i: usize, variant: &Variant, rng: &mut AugRng) -> Option<Views> {
        match self.dataset.load(i) {
            Ok(s) => match checked_views(variant, s.image, rng) {
                Ok(v) => Some((v, s.label, s.filename)),
                Err(why) => {
                    self.count_skip(&s.filename, &why);
                    None
                }
            },
            Err(e) => {
                self.count_skip(&self.dataset.filename(i), &e.to_string());
                None
            }
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
    fn pack(&self, job: &Job, views: Vec<Views>, skipped: usize) -> Batch {
        let variant = &self.variants[job.choice];
        let (h, w, c) = variant.shape;
        let splits = variant.pipeline.splits.max(1);
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

/// The variant's views of `img`, or why they do not fit its batch shape.
fn checked_views(v: &Variant, img: Image, rng: &mut AugRng) -> Result<Vec<Image>, String> {
    let (h, w, c) = v.shape;
    let views = v.pipeline.views(img, rng);
    match views.iter().find(|im| (im.h, im.w, im.c) != (h, w, c)) {
        Some(im) => Err(format!(
            "transforms gave {}x{}x{}, the batch needs {h}x{w}x{c}",
            im.h, im.w, im.c
        )),
        None => Ok(views),
    }
}
