//! TensorBoard scalars and images in the run folder (`--log-tensorboard`).

use crate::loader::grid_png;
use crate::tensorboard::EventWriter;
use crate::trainer::{Callback, Context};
use crate::Result;
use std::path::{Path, PathBuf};

/// Writes an event file in the run folder: per update `train/loss`, `train/lr` and (f16 AMP)
/// `train/loss_scale`; per epoch `epoch/train_loss`, `epoch/eval_loss`, `epoch/eval_top1`,
/// `epoch/eval_top5` (and `epoch/ema_*`), `epoch/img_per_sec`; with `images`, the input batch
/// grid every `log_interval` batches as `train/batch`.
pub struct TensorBoard {
    dir: PathBuf,
    images: bool,
    log_interval: usize,
    writer: Option<EventWriter>,
}

impl TensorBoard {
    /// Logs into `dir`; `images` adds the batch grids (timm's `--save-images`).
    pub fn new(dir: &Path, images: bool, log_interval: usize) -> TensorBoard {
        TensorBoard {
            dir: dir.to_path_buf(),
            images,
            log_interval: log_interval.max(1),
            writer: None,
        }
    }

    fn writer(&mut self) -> Result<&mut EventWriter> {
        if self.writer.is_none() {
            self.writer = Some(EventWriter::create(&self.dir)?);
        }
        Ok(self.writer.as_mut().expect("created above"))
    }
}

impl Callback for TensorBoard {
    fn name(&self) -> &str {
        "tensorboard"
    }

    fn batch_begin(&mut self, ctx: &mut Context) -> Result<()> {
        let Some(batch) = ctx
            .batch
            .filter(|b| self.images && b.index % self.log_interval == 0)
        else {
            return Ok(());
        };
        let cols = (batch.n as f64).sqrt().ceil() as usize;
        let png = grid_png(batch, cols).map_err(|msg| crate::Error::Encode {
            path: self.dir.clone(),
            msg,
        })?;
        let step = ctx.state.position.num_updates as u64;
        self.writer()?.image("train/batch", &png, step)
    }

    fn batch_end(&mut self, ctx: &mut Context) -> Result<()> {
        let s = ctx.state;
        if !s.batch.updated {
            return Ok(());
        }
        let step = s.position.num_updates as u64;
        let scale = ctx.scaler.map(|sc| sc.scale);
        let w = self.writer()?;
        w.scalar("train/loss", s.batch.loss, step)?;
        w.scalar("train/lr", s.lr, step)?;
        if let Some(scale) = scale {
            w.scalar("train/loss_scale", scale, step)?;
        }
        Ok(())
    }

    fn epoch_end(&mut self, ctx: &mut Context) -> Result<()> {
        let s = ctx.state;
        let step = s.epoch as u64;
        let w = self.writer()?;
        if let Some(t) = s.train {
            w.scalar("epoch/train_loss", t.loss, step)?;
            w.scalar(
                "epoch/img_per_sec",
                t.samples as f64 / t.seconds.max(1e-9),
                step,
            )?;
        }
        w.scalar("epoch/lr", s.lr, step)?;
        for (prefix, eval) in [("epoch/eval", s.eval), ("epoch/ema_eval", s.ema_eval)] {
            if let Some(e) = eval {
                w.scalar(&format!("{prefix}_loss"), e.loss, step)?;
                w.scalar(&format!("{prefix}_top1"), e.top1, step)?;
                w.scalar(&format!("{prefix}_top5"), e.top5, step)?;
            }
        }
        w.flush()
    }

    fn train_end(&mut self, _ctx: &mut Context) -> Result<()> {
        match &mut self.writer {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}
