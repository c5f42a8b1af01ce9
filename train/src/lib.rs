//! kiln's training: datasets, augmentation, the loader, losses, optimizers, schedulers and the CLI.
#![warn(missing_docs)]

pub mod amp;
pub mod augment;
pub mod callbacks;
pub mod checkpoint;
pub mod cli;
pub mod clip;
pub mod data;
pub mod dist;
mod error;
pub mod loader;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod plot;
pub mod sched;
pub mod tensorboard;
pub mod trainer;

pub use error::{Error, Result};
