//! The `Dataset` trait (timm's Parser + Dataset): a length and a way to load sample `i`.
use super::Image;
use crate::Result;

/// One decoded sample: the image, its class index and the name of the file it came from.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The decoded image, converted to the dataset's channel count.
    pub image: Image,
    /// Class index.
    pub label: usize,
    /// The file (or tar member, or `file#index` for IDX) the sample came from.
    pub filename: String,
}

/// A random-access labelled image set. Implement it to feed your own data to the `Loader`.
pub trait Dataset: Send + Sync + std::fmt::Debug {
    /// Number of samples.
    fn len(&self) -> usize;

    /// Whether the dataset holds no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Class index of sample `i`, without decoding it (used by samplers and summaries).
    fn label(&self, i: usize) -> usize;

    /// All classes of sample `i` in a multi-label dataset (sorted, at least one), or `None` for
    /// a single-label dataset, whose class is [`Dataset::label`]. The loader turns these into
    /// dense multi-hot targets.
    fn label_set(&self, _i: usize) -> Option<Vec<usize>> {
        None
    }

    /// Name of the file sample `i` comes from.
    fn filename(&self, i: usize) -> String;

    /// Loads and decodes sample `i`. A corrupt file is an `Err` naming it; the loader skips
    /// and counts such samples.
    fn load(&self, i: usize) -> Result<Sample>;

    /// Number of classes.
    fn num_classes(&self) -> usize;
}
