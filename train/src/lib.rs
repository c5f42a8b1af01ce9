//! kiln's training: datasets, augmentation, the loader, losses, optimizers, schedulers and the CLI.
#![warn(missing_docs)]
