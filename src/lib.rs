//! kiln: a deep-learning training engine in Rust. Re-exports the workspace crates.
#![warn(missing_docs)]

pub mod cli;

pub use kiln_engine as engine;
pub use kiln_nn as nn;
pub use kiln_train as train;
