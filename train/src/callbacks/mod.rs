//! The Trainer's built-in callbacks: timm's log lines, summary.csv, the checkpoint saver, model
//! EMA and early stopping.

mod early_stop;
mod ema;
mod log;
mod saver;
mod summary;

pub use early_stop::EarlyStopping;
pub use ema::{EmaDecay, ModelEma};
pub use log::LogLines;
pub use saver::CheckpointSaver;
pub use summary::SummaryCsv;
