//! Early stopping on the eval metric (`--early-stop PATIENCE`, kiln's flag).

use crate::trainer::{Callback, CallbackState, Context};
use crate::Result;
use serde::{Deserialize, Serialize};

/// Stops the run after `patience` epochs in a row without a better eval metric.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    patience: usize,
    progress: Progress,
}

/// What a checkpoint keeps: the best metric and the epochs since it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    best: Option<f64>,
    epochs_without_gain: usize,
}

impl EarlyStopping {
    /// Stops after `patience` epochs without improvement.
    pub fn new(patience: usize) -> EarlyStopping {
        EarlyStopping {
            patience,
            progress: Progress::default(),
        }
    }
}

impl Callback for EarlyStopping {
    fn name(&self) -> &str {
        "early_stopping"
    }

    fn epoch_end(&mut self, ctx: &mut Context) -> Result<()> {
        let Some(metric) = ctx.state.metric() else {
            return Ok(());
        };
        let decreasing = ctx.state.metric_decreasing();
        let p = &mut self.progress;
        let gained = p
            .best
            .is_none_or(|b| if decreasing { metric < b } else { metric > b });
        if gained {
            p.best = Some(metric);
            p.epochs_without_gain = 0;
        } else {
            p.epochs_without_gain += 1;
        }
        if p.epochs_without_gain >= self.patience {
            ctx.request_stop(format!(
                "early stop: {} epochs without a better {} than {}",
                p.epochs_without_gain,
                ctx.state.eval_metric,
                p.best.unwrap_or(metric)
            ));
        }
        Ok(())
    }

    fn state(&self) -> Option<CallbackState> {
        CallbackState::from_meta(&self.progress)
    }

    fn load_state(&mut self, state: CallbackState) -> Result<()> {
        self.progress = state.meta_as("early stopping")?;
        Ok(())
    }
}
