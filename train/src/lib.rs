//! kiln's training: datasets, augmentation, the loader, losses, optimizers, schedulers and the CLI.
#![warn(missing_docs)]

pub mod augment;
pub mod data;
mod error;
pub mod loader;

pub use error::{Error, Result};
