//! A progress bar per epoch on a terminal (`indicatif`), in place of timm's per-batch lines.

use crate::trainer::{Callback, Context};
use crate::Result;
use indicatif::{ProgressBar as Bar, ProgressDrawTarget, ProgressStyle};

/// Draws one bar per epoch on stdout with the running loss, the lr, images/s and the ETA.
#[derive(Default)]
pub struct ProgressBar {
    bar: Option<Bar>,
    images: usize,
    seconds: f64,
}

impl ProgressBar {
    /// A bar that draws on stdout.
    pub fn new() -> ProgressBar {
        ProgressBar::default()
    }
}

impl Callback for ProgressBar {
    fn name(&self) -> &str {
        "progress"
    }

    fn epoch_begin(&mut self, ctx: &mut Context) -> Result<()> {
        let s = ctx.state;
        let style = ProgressStyle::with_template(
            "{prefix} [{wide_bar:.cyan/blue}] {pos}/{len} {msg} {elapsed}<{eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = Bar::with_draw_target(
            Some(s.batches_per_epoch as u64),
            ProgressDrawTarget::stdout(),
        )
        .with_style(style)
        .with_prefix(format!("Epoch {}/{}", s.epoch, s.epochs))
        .with_position(s.position.batch as u64);
        bar.reset_eta();
        self.bar = Some(bar);
        (self.images, self.seconds) = (0, 0.0);
        Ok(())
    }

    fn batch_end(&mut self, ctx: &mut Context) -> Result<()> {
        let s = ctx.state;
        self.images += s.batch.size;
        self.seconds += s.batch.seconds;
        if let Some(bar) = &self.bar {
            bar.set_position(s.position.batch as u64);
            bar.set_message(format!(
                "loss {:.4} lr {:.2e} {:.0} img/s",
                s.train_loss.avg(),
                s.lr,
                self.images as f64 / self.seconds.max(1e-9)
            ));
        }
        if s.position.batch >= s.batches_per_epoch {
            if let Some(bar) = self.bar.take() {
                bar.finish(); // left above validation's lines
            }
        }
        Ok(())
    }

    fn train_end(&mut self, _ctx: &mut Context) -> Result<()> {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
        Ok(())
    }
}
