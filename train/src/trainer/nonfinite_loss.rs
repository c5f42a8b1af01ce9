//! The report of a non-finite training loss that stopped a run (`--nan-policy stop`): where it
//! appeared, the last finite loss, and the recovery checkpoint kept.

use std::path::PathBuf;

/// Where a non-finite loss appeared and what was kept, for [`crate::Error::NonFiniteLoss`].
#[derive(Debug, Clone, PartialEq)]
pub struct NonFinite {
    /// This rank's loss (NaN or ±inf, or finite when another rank's was not).
    pub value: f64,
    /// The epoch.
    pub epoch: usize,
    /// The batch within the epoch.
    pub batch: usize,
    /// The optimizer update the batch belongs to (1-based, counted over the run).
    pub update: usize,
    /// The last finite loss and the batch's update it came from, if any.
    pub last_finite: Option<(f64, usize)>,
    /// The recovery checkpoint holding the state after the last good update.
    pub saved: Option<PathBuf>,
}

impl std::fmt::Display for NonFinite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.value.is_finite() {
            true => write!(
                f,
                "another rank's loss is not finite (this rank's is {})",
                self.value
            )?,
            false => write!(f, "loss is {}", self.value)?,
        }
        write!(
            f,
            " at epoch {}, batch {} (update {})",
            self.epoch, self.batch, self.update
        )?;
        match self.last_finite {
            Some((loss, update)) => {
                write!(f, "; the last finite loss was {loss:.6} (update {update})")?
            }
            None => write!(f, "; no finite loss came before it")?,
        }
        if let Some(path) = &self.saved {
            write!(f, "; the last good state is saved as {}", path.display())?;
        }
        write!(
            f,
            ": lower --lr, set --clip-grad, check the data, or pass --nan-policy skip"
        )
    }
}
