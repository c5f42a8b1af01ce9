//! timm 1.0's learning-rate schedulers (`timm.scheduler`): cosine, tanh, poly, step, multistep,
//! constant, warmup-stable-decay (wsd, rsqrt) and plateau, with warmup, cycles, k-decay, noise and
//! cooldown, stepped per epoch or per optimizer update. Each is a pure function of t (epoch or
//! update) plus explicit state: the lr the next update uses, and plateau's counters. `create_scheduler` turns the flags into one as
//! timm's `create_scheduler_v2` does.

mod curve;
mod factory;
mod group_lr;
mod lr_rule;
mod mt19937;
mod noise;
mod plateau;
mod py_random;
mod scheduler;
mod torch_rng;
mod trace;

pub use curve::{floor_div, Anneal, Curve, Cycles, Decay, Shape, Stable, Warmup};
pub use factory::{create_scheduler, SchedulerConfig};
pub use group_lr::GroupLr;
pub use lr_rule::LrRule;
pub use mt19937::Mt19937;
pub use noise::Noise;
pub use plateau::{PlateauState, ReduceOnPlateau};
pub use py_random::PyRandom;
pub use scheduler::{Kind, Scheduler};
pub use torch_rng::TorchGenerator;
pub use trace::{trace, Trace, UpdateLr};
