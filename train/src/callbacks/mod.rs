//! The Trainer's built-in callbacks: timm's log lines, summary.csv, the checkpoint saver, model
//! EMA, early stopping, TensorBoard, progress bars, batch images and plots.

mod early_stop;
mod ema;
mod log;
mod plots;
mod progress;
mod save_images;
mod saver;
mod summary;
mod tensorboard;

pub use early_stop::EarlyStopping;
pub use ema::{ema_step, EmaDecay, ModelEma};
pub use log::LogLines;
pub use plots::Plots;
pub use progress::ProgressBar;
pub use save_images::SaveImages;
pub use saver::CheckpointSaver;
pub use summary::SummaryCsv;
pub use tensorboard::TensorBoard;
