//! The loader: samplers, worker threads filling uint8 NHWC batches, and the normalize stage.
mod batch;
mod config;
mod fill;
mod normalize;
mod sampler;
mod save;
mod workers;

pub use batch::Batch;
pub use config::DataConfig;
pub use normalize::{
    default_mean_std, Layout, Normalize, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD,
};
pub use sampler::{DistributedSampler, RepeatAugSampler, Sampler};
pub use save::save_images;
pub use workers::{EpochIter, Loader, LoaderOptions};
