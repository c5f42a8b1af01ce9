//! What a NaN or infinite training loss does to a run without loss scaling (kiln's
//! `--nan-policy`): stop after saving the last good state, or leave the update out and count it.

use super::Position;
use crate::metrics::AverageMeter;
use kiln_engine::{with_global_generator, Generator};
use serde::{Deserialize, Serialize};

/// kiln's `--nan-policy`. With an f16 loss scaler neither applies: the scaler skips the update
/// whose gradients overflow, as timm's does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum NanPolicy {
    /// Save the state of the last update as a recovery checkpoint and end the run with an error.
    #[default]
    Stop,
    /// Drop the gradients of the update the loss belongs to, skip its optimizer step (the
    /// schedule goes on, as after a loss-scaler overflow) and count it.
    Skip,
}

/// The run as it stood after its last update (or at the epoch's start): where a run stopped by
/// a non-finite loss resumes.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LastGood {
    /// The position after that update.
    pub position: Position,
    /// The epoch's loss meter then.
    pub train_loss: AverageMeter,
    /// The global RNG's offset then (dropout and drop-path draw from it).
    pub rng_offset: u64,
}

impl LastGood {
    /// Records the run at `position`.
    pub fn at(position: Position, train_loss: AverageMeter) -> LastGood {
        LastGood {
            position,
            train_loss,
            rng_offset: with_global_generator(|g| g.offset()),
        }
    }

    /// Puts the global RNG back where it was (model and optimizer have not moved since).
    pub fn rewind_rng(&self, seed: u64) {
        with_global_generator(|g| *g = Generator::resume(seed, self.rng_offset));
    }
}
