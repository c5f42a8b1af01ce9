//! The loader: samplers, worker threads filling uint8 NHWC batches (at one size, or at the sizes
//! a [`BatchPlan`] schedules), and the normalize stage.
//!
//! ```no_run
//! use kiln_train::data::{Dataset, IdxDataset};
//! use kiln_train::loader::{DataConfig, Dims, Layout, MixConfig};
//! use std::sync::Arc;
//!
//! let mix = MixConfig { mixup: 0.2, ..MixConfig::default() };
//! let cfg = DataConfig { img_size: 28, in_chans: 1, batch_size: 64, mix, ..DataConfig::default() };
//! let train: Arc<dyn Dataset> = Arc::new(IdxDataset::open("data/fashion-mnist".as_ref(), "train", 1)?);
//! let mut loader = cfg.train_loader(train.clone(), 0, 1)?;
//! let (norm, mixup) = (cfg.normalize(Layout::Nchw), cfg.mixup_fn(train.num_classes())?);
//! for epoch in 0..2 {
//!     let mut batches = loader.epoch(epoch);
//!     while let Some(batch) = batches.next() {
//!         let batch = batch?;
//!         let mut x = norm.apply(&batch); // f32 NCHW, (x / 255 - mean) / std
//!         let d = Dims { n: batch.n, c: batch.c, h: batch.h, w: batch.w, layout: Layout::Nchw };
//!         let mut rng = kiln_train::augment::derive_rng(&[cfg.seed, epoch as u64, batch.index as u64]);
//!         let soft = mixup.as_ref().map(|m| m.apply(&mut x, d, &batch.targets, epoch, &mut rng));
//!         // ... forward x (and soft targets, or batch.targets) ...
//!         batches.recycle(batch);
//!     }
//! }
//! # Ok::<(), kiln_train::Error>(())
//! ```
mod aug_config;
mod batch;
mod batch_plan;
mod config;
mod data_config;
mod fill;
mod mix_config;
mod multi_label_config;
mod normalize;
mod resolve;
mod sampler;
mod save;
mod size_schedule;
mod size_schedule_config;
mod streamed;
mod workers;

pub use crate::augment::Dims;
pub use aug_config::AugConfig;
pub use batch::Batch;
pub use batch_plan::{BatchPlan, PlannedBatch};
pub use data_config::DataConfig;
pub use mix_config::MixConfig;
pub use multi_label_config::MultiLabelConfig;
pub use normalize::{
    default_mean_std, Layout, Normalize, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD,
};
pub use resolve::{resolve_data_config, DataFlags, ResolvedData};
pub use sampler::{DistributedSampler, RepeatAugSampler, Sampler};
pub use save::{grid_png, save_images, Png};
pub use size_schedule::{Progressive, SizeSchedule};
pub use size_schedule_config::SizeScheduleConfig;
pub use workers::{EpochIter, Loader, LoaderOptions};
