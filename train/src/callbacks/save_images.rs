//! timm's `--save-images`: the input batch as a PNG grid every `log_interval` batches.

use crate::loader::save_images;
use crate::trainer::{Callback, Context};
use crate::Result;
use std::path::{Path, PathBuf};

/// Writes `train-batch-<index>.png` (the uint8 batch before normalization) into the run folder.
pub struct SaveImages {
    dir: PathBuf,
    log_interval: usize,
}

impl SaveImages {
    /// Saves into `dir` every `log_interval` batches.
    pub fn new(dir: &Path, log_interval: usize) -> SaveImages {
        SaveImages {
            dir: dir.to_path_buf(),
            log_interval: log_interval.max(1),
        }
    }
}

impl Callback for SaveImages {
    fn name(&self) -> &str {
        "save_images"
    }

    fn batch_begin(&mut self, ctx: &mut Context) -> Result<()> {
        match ctx.batch.filter(|b| b.index % self.log_interval == 0) {
            Some(b) => {
                let cols = (b.n as f64).sqrt().ceil() as usize;
                let path = self.dir.join(format!("train-batch-{}.png", b.index));
                save_images(b, &path, cols)
            }
            None => Ok(()),
        }
    }
}
