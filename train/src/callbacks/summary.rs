//! timm's `summary.csv`: one row per epoch.

use crate::trainer::{Callback, Context};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

const HEADER: &str = "epoch,train_loss,eval_loss,eval_top1,eval_top5,lr";
/// The header of multi-label runs: mAP and F1 (`--eval-metric map` / `f1`) after top-1/top-5.
const MULTI_LABEL_HEADER: &str =
    "epoch,train_loss,eval_loss,eval_top1,eval_top5,eval_map,eval_f1,lr";

/// Writes `summary.csv` in the run folder: epoch, train loss, the eval loss and top-1/top-5 (of
/// the EMA model when one is validated, as timm), for multi-label data mAP and F1, and the lr. A resumed run replaces the rows of
/// epochs it trains again, so every epoch appears once.
#[derive(Debug)]
pub struct SummaryCsv {
    path: PathBuf,
}

impl SummaryCsv {
    /// A summary at `path`.
    pub fn new(path: &Path) -> SummaryCsv {
        SummaryCsv {
            path: path.to_path_buf(),
        }
    }

    /// The rows of epochs before `epoch` already in the file.
    fn rows_before(&self, epoch: usize) -> Result<Vec<String>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        Ok(text
            .lines()
            .skip(1)
            .filter(|row| {
                let first = row.split(',').next().and_then(|e| e.parse::<usize>().ok());
                first.is_some_and(|e| e < epoch)
            })
            .map(str::to_string)
            .collect())
    }
}

impl Callback for SummaryCsv {
    fn name(&self) -> &str {
        "summary"
    }

    fn epoch_end(&mut self, ctx: &mut Context) -> Result<()> {
        let s = ctx.state;
        if s.eval_skipped {
            return Ok(());
        }
        let train_loss = s.train.map_or(f64::NAN, |t| t.loss);
        let eval = s.ema_eval.or(s.eval);
        let (loss, top1, top5) =
            eval.map_or((f64::NAN, f64::NAN, f64::NAN), |e| (e.loss, e.top1, e.top5));
        let mut rows = self.rows_before(s.epoch)?;
        let (header, multi) = match eval.and_then(|e| e.map.zip(e.f1)) {
            Some((map, f1)) => (MULTI_LABEL_HEADER, format!("{map},{f1},")),
            None => (HEADER, String::new()),
        };
        rows.push(format!(
            "{},{train_loss},{loss},{top1},{top5},{multi}{}",
            s.epoch, s.lr
        ));
        let text = format!("{header}\n{}\n", rows.join("\n"));
        Ok(kiln_nn::write_durably(&self.path, text.as_bytes())?)
    }
}
