//! The Trainer: a loop over epochs and updates that fires events at callbacks
//! (docs/architecture.md §10).
//!
//! `Trainer::fit` owns forward under autocast, the loss, backward through the loss scaler,
//! gradient accumulation, clipping, the optimizer update and the schedule's steps, eagerly or
//! replayed from a CUDA graph (`graph.rs`, `--cuda-graph`). Everything
//! else a run does (log lines, summary.csv, checkpoints, EMA, early stopping, progress, plots)
//! is a [`Callback`]. [`Trainer::builder`] assembles a Trainer from config structs, as `kiln
//! train` does from its flags (see `examples/` for the same loop without the CLI).

mod batch;
mod builder;
mod callback;
mod eval;
mod fit;
mod graph;
mod nonfinite;
mod nonfinite_loss;
mod objective;
mod prune_step;
mod pruning;
mod resume;
mod state;
mod step;

pub use batch::{BatchStages, TensorBatch};
pub use builder::TrainerBuilder;
pub use callback::{Callback, CallbackState, Context};
pub use eval::{validate, validate_observed, EvalOptions, EvalStats, Evaluator, Observer};
pub use fit::{TrainConfig, Trainer, TrainerParts};
pub use graph::{CudaGraphMode, CudaGraphStats, WARMUP as CUDA_GRAPH_WARMUP};
pub use nonfinite::NanPolicy;
pub use nonfinite_loss::NonFinite;
pub use pruning::PruneSchedule;
pub use state::{BatchReport, Position, RunState, SizeCount, TrainStats};
pub use step::{BatchLossScale, Updater};
