//! Filling one batch: load, augment (by its size choice's transforms) and pack its samples,
//! skipping (and counting) unreadable files.
//! In a training loader a sample that cannot be read is replaced by the next dataset index (timm's
//! `ImageDataset` retry), so training batches keep their size; a batch that still shrinks to a
//! single sample is dropped, since BatchNorm in training mode cannot normalize one value.
//! A streamed sample (webdataset) that cannot be decoded is skipped without a replacement: the
//! stream has moved on, so its batch is one smaller (timm's stream refills it from the next
//! sample; the skip is logged and counted either way).
use super::Batch;
use crate::augment::{derive_rng, AugRng, Pipeline};
use crate::data::wds::WdsSample;
use crate::data::{Dataset, Image, Sample};
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

/// What every worker shares: the transforms per size choice and the skip counters.
#[derive(Debug)]
pub struct Shared {
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

/// One loaded sample: its views, its label, its classes (multi-label data) and its file.
type Views = (Vec<Image>, usize, Option<Vec<usize>>, String);

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
    /// The samples to load.
    pub items: Items,
    /// Which of the loader's variants (size choices) transforms it.
    pub choice: usize,
}

/// A batch's samples: indices into a random-access dataset, or samples a stream gave.
#[derive(Debug, Clone)]
pub enum Items {
    /// Dataset indices.
    Indexed {
        /// The dataset.
        dataset: Arc<dyn Dataset>,
        /// Indices into it.
        indices: Vec<usize>,
    },
    /// Webdataset samples, decoded to `chans` channels.
    Streamed {
        /// The samples.
        samples: Vec<WdsSample>,
        /// Channels to decode to.
        chans: usize,
    },
}

impl Items {
    /// Samples in the batch.
    pub fn count(&self) -> usize {
        match self {
            Items::Indexed { indices, .. } => indices.len(),
            Items::Streamed { samples, .. } => samples.len(),
        }
    }
}

impl Shared {
    /// Loads, augments and packs the samples of `job`. Each sample's randomness is seeded by
    /// (seed, epoch, rank, position in epoch), so batches do not depend on the worker count.
    pub fn fill(&self, job: &Job) -> Batch {
        let mut views: Vec<Views> = Vec::with_capacity(job.items.count());
        let mut skipped = 0;
        let variant = &self.variants[job.choice];
        for k in 0..job.items.count() {
            let pos = (job.first + k) as u64;
            let mut rng = derive_rng(&[self.seed, job.epoch as u64, self.rank as u64, pos]);
            let (found, failed) = match &job.items {
                Items::Indexed { dataset, indices } => {
                    self.load_slot(dataset.as_ref(), indices[k], variant, &mut rng)
                }
                Items::Streamed { samples, chans } => {
                    let s = &samples[k];
                    let loaded = s.load(*chans);
                    let found = self.load_views(loaded, None, || s.filename(), variant, &mut rng);
                    let failed = usize::from(found.is_none());
                    (found, failed)
                }
            };
            skipped += failed;
            views.extend(found);
        }
        if self.refill && views.len() == 1 && job.items.count() > 1 {
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
    fn load_slot(
        &self,
        dataset: &dyn Dataset,
        i: usize,
        variant: &Variant,
        rng: &mut AugRng,
    ) -> (Option<Views>, usize) {
        let tries = if self.refill { MAX_RETRIES } else { 1 };
        let len = dataset.len().max(1);
        for t in 0..tries {
            let j = (i + t) % len;
            let (loaded, set) = (dataset.load(j), dataset.label_set(j));
            if let Some(v) = self.load_views(loaded, set, || dataset.filename(j), variant, rng) {
                return (Some(v), t);
            }
        }
        (None, tries)
    }

    /// A loaded sample augmented, or `None` (counted and logged under `name`) if it could not be
    /// loaded or transformed.
    fn load_views(
        &self,
        loaded: crate::Result<Sample>,
        label_set: Option<Vec<usize>>,
        name: impl FnOnce() -> String,
        variant: &Variant,
        rng: &mut AugRng,
    ) -> Option<Views> {
        match loaded {
            Ok(s) => match checked_views(variant, s.image, rng) {
                Ok(v) => Some((v, s.label, label_set, s.filename)),
                Err(why) => {
                    self.count_skip(&s.filename, &why);
                    None
                }
            },
            Err(e) => {
                self.count_skip(&name(), &e.to_string());
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
        let classes = match &job.items {
            Items::Indexed { dataset, .. } => dataset.num_classes(),
            Items::Streamed { .. } => 0,
        };
        let (mut targets, mut filenames, mut multi_hot) = (Vec::new(), Vec::new(), Vec::new());
        for s in 0..splits {
            for (v, label, set, name) in &views {
                images.extend_from_slice(&v[s].data);
                targets.push(*label);
                filenames.push(name.clone());
                if let Some(set) = set {
                    let row = multi_hot.len();
                    multi_hot.resize(row + classes, 0.0);
                    set.iter().for_each(|&c| multi_hot[row + c] = 1.0);
                }
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
            multi_hot,
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
