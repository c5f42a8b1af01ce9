//! timm's log lines: a training line every `log_interval` batches and an epoch line.

use crate::metrics::{fmt_e3, fmt_g3, AverageMeter};
use crate::trainer::{Callback, Context, SizeCount};
use crate::Result;

/// Prints timm's `Train: epoch [batch/batches (pct%)] Loss ... LR ... Data ...` lines and one
/// summary line per epoch.
#[derive(Debug, Default)]
pub struct LogLines {
    log_interval: usize,
    batch_lines: bool,
    step_time: AverageMeter,
    data_time: AverageMeter,
}

impl LogLines {
    /// Logs every `log_interval` batches (and the epoch's last).
    pub fn new(log_interval: usize) -> LogLines {
        LogLines {
            log_interval: log_interval.max(1),
            batch_lines: true,
            ..LogLines::default()
        }
    }

    /// Epoch lines only (a progress bar shows the batches).
    pub fn epochs_only() -> LogLines {
        LogLines::default()
    }
}

impl Callback for LogLines {
    fn name(&self) -> &str {
        "log"
    }

    fn epoch_begin(&mut self, _ctx: &mut Context) -> Result<()> {
        self.step_time = AverageMeter::default();
        self.data_time = AverageMeter::default();
        Ok(())
    }

    fn batch_end(&mut self, ctx: &mut Context) -> Result<()> {
        let (s, b) = (ctx.state, &ctx.state.batch);
        self.step_time.update(b.seconds, 1);
        self.data_time.update(b.data_seconds, 1);
        let steps = s.batches_per_epoch;
        let due = b.index.is_multiple_of(self.log_interval) || b.index + 1 == steps;
        if !self.batch_lines || !due {
            return Ok(());
        }
        let n = b.size as f64;
        println!(
            "Train: {} [{:>4}/{steps} ({:>3.0}%)]  Loss: {} ({})  Time: {:.3}s, {:>7.2}/s  ({:.3}s, {:>7.2}/s)  LR: {}  Data: {:.3} ({:.3})",
            s.epoch,
            b.index,
            100.0 * (b.index + 1) as f64 / steps.max(1) as f64,
            fmt_g3(b.loss),
            fmt_g3(s.train_loss.avg()),
            self.step_time.val,
            n / self.step_time.val,
            self.step_time.avg(),
            n / self.step_time.avg(),
            fmt_e3(s.lr),
            self.data_time.val,
            self.data_time.avg(),
        );
        Ok(())
    }

    fn epoch_end(&mut self, ctx: &mut Context) -> Result<()> {
        let s = ctx.state;
        let train = s.train.unwrap_or_default();
        let mut line = format!(
            "Epoch {}: train_loss {:.4}, {:.1} img/s, {:.1}s",
            s.epoch,
            train.loss,
            train.samples as f64 / train.seconds.max(1e-9),
            train.seconds
        );
        for (tag, eval) in [("", s.eval), (" ema", s.ema_eval)] {
            if let Some(e) = eval {
                line += &format!(
                    ",{tag} eval_loss {:.4}, top1 {:.2}%, top5 {:.2}%",
                    e.loss, e.top1, e.top5
                );
            }
        }
        line += &sizes_part(&s.epoch_sizes);
        let skipped = train.skipped + s.eval.map_or(0, |e| e.skipped);
        if train.nonfinite_updates > 0 {
            let n = train.nonfinite_updates;
            line += &format!(", {n} updates skipped for a non-finite loss");
        }
        if skipped > 0 {
            line += &format!(", {skipped} unreadable images skipped");
        }
        println!("{line}");
        if s.eval_skipped {
            println!("Skipping eval and checkpointing");
        }
        Ok(())
    }
}

/// `, batches by size: 24x24: 3 (96 images), ...` with scheduled sizes; empty otherwise.
fn sizes_part(sizes: &[SizeCount]) -> String {
    if sizes.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = (sizes.iter())
        .map(|c| {
            let (h, w) = c.size;
            format!("{h}x{w}: {} ({} images)", c.batches, c.images)
        })
        .collect();
    format!(", batches by size: {}", parts.join(", "))
}
