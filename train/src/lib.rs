//! kiln's training library: datasets, augmentation, the loader, losses, optimizers, schedules,
//! the Trainer and its callbacks, data-parallel training. Every piece is built from a plain
//! config struct with `Default` and builder-style setters; the `kiln` command line lives in the
//! root package and is never imported here.
#![warn(missing_docs)]

pub mod amp;
pub mod augment;
pub mod callbacks;
pub mod checkpoint;
pub mod clip;
pub mod data;
pub mod dist;
pub mod distill;
mod error;
pub mod flags;
pub mod loader;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod plot;
pub mod sched;
mod setters;
pub mod tensorboard;
pub mod trainer;

pub use error::{Error, Result};
