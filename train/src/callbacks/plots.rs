//! PNG plots of the run at its end: loss, accuracy and lr per epoch from summary.csv.

use crate::plot::plot_run;
use crate::trainer::{Callback, Context};
use crate::Result;
use std::path::{Path, PathBuf};

/// Draws `loss.png`, `accuracy.png` and `lr.png` into the run folder when training ends (what
/// `kiln plot RUN_DIR` draws at any time). Runs after the summary callback.
pub struct Plots {
    dir: PathBuf,
}

impl Plots {
    /// Plots the run folder `dir`.
    pub fn new(dir: &Path) -> Plots {
        Plots {
            dir: dir.to_path_buf(),
        }
    }
}

impl Callback for Plots {
    fn name(&self) -> &str {
        "plots"
    }

    fn train_end(&mut self, _ctx: &mut Context) -> Result<()> {
        if self.dir.join("summary.csv").is_file() {
            plot_run(&self.dir)?;
        }
        Ok(())
    }
}
