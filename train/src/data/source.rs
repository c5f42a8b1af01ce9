//! `Source`: what a loader reads, a random-access dataset or webdataset shards streamed.
use super::wds::WdsDataset;
use super::Dataset;
use std::sync::Arc;

/// A loader's samples: a random-access [`Dataset`] (read in a sampler's order) or a
/// [`WdsDataset`] (streamed, its shards split over ranks and loader workers).
#[derive(Debug, Clone)]
pub enum Source {
    /// A random-access dataset.
    Indexed(Arc<dyn Dataset>),
    /// Webdataset shards.
    Streamed(Arc<WdsDataset>),
}

impl Source {
    /// The samples of one pass: the dataset's length, or the split's sample count the
    /// webdataset info file (or `num_samples`) gives.
    pub fn num_samples(&self) -> usize {
        match self {
            Source::Indexed(d) => d.len(),
            Source::Streamed(w) => w.num_samples(),
        }
    }

    /// The class count the source knows: the dataset's, or the webdataset info file's
    /// `num_classes` (timm takes it from `--num-classes` for streamed datasets).
    pub fn num_classes(&self) -> Option<usize> {
        match self {
            Source::Indexed(d) => Some(d.num_classes()),
            Source::Streamed(w) => w.num_classes(),
        }
    }
}

impl From<Arc<dyn Dataset>> for Source {
    fn from(d: Arc<dyn Dataset>) -> Self {
        Source::Indexed(d)
    }
}

impl From<Arc<WdsDataset>> for Source {
    fn from(d: Arc<WdsDataset>) -> Self {
        Source::Streamed(d)
    }
}
