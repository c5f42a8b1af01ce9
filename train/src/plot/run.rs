//! A run's plots from its `summary.csv` (epoch, train_loss, eval_loss, eval_top1, eval_top5, lr):
//! loss.png (train and eval loss), accuracy.png (top-1, top-5) and lr.png, per epoch.

use super::{write_png, LineChart, Series};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The columns of `summary.csv` the plots read, in `Summary`'s field order.
const COLUMNS: [&str; 6] = [
    "epoch",
    "train_loss",
    "eval_loss",
    "eval_top1",
    "eval_top5",
    "lr",
];

/// `summary.csv`'s columns, one value per row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Epoch of each row.
    pub epoch: Vec<f64>,
    /// Mean training loss.
    pub train_loss: Vec<f64>,
    /// Validation loss.
    pub eval_loss: Vec<f64>,
    /// Validation top-1 (%).
    pub eval_top1: Vec<f64>,
    /// Validation top-5 (%).
    pub eval_top5: Vec<f64>,
    /// The epoch's learning rate.
    pub lr: Vec<f64>,
}

impl Summary {
    /// (epoch, value) points named `name`.
    fn series(&self, name: &str, values: &[f64]) -> Series {
        Series {
            name: name.to_string(),
            points: self
                .epoch
                .iter()
                .copied()
                .zip(values.iter().copied())
                .collect(),
        }
    }
}

/// Reads a `summary.csv`; columns are found by their header names, so extra ones are fine.
pub fn read_summary(path: &Path) -> Result<Summary> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let csv_error = |line: usize, msg: String| Error::Csv {
        path: path.to_path_buf(),
        line,
        msg,
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .collect();
    let index: Vec<usize> = COLUMNS
        .iter()
        .map(|name| {
            header
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| csv_error(1, format!("no column '{name}' in header {header:?}")))
        })
        .collect::<Result<_>>()?;
    let mut columns: [Vec<f64>; 6] = Default::default();
    for (n, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        for (column, &i) in columns.iter_mut().zip(&index) {
            let field = fields.get(i).copied().unwrap_or("");
            let value = field.parse::<f64>().map_err(|_| {
                csv_error(
                    n + 2,
                    format!("'{field}' in column {} is not a number", i + 1),
                )
            })?;
            column.push(value);
        }
    }
    let [epoch, train_loss, eval_loss, eval_top1, eval_top5, lr] = columns;
    Ok(Summary {
        epoch,
        train_loss,
        eval_loss,
        eval_top1,
        eval_top5,
        lr,
    })
}

/// Draws RUN_DIR/summary.csv as loss.png, accuracy.png and lr.png in RUN_DIR; returns their paths.
pub fn plot_run(run_dir: &Path) -> Result<Vec<PathBuf>> {
    let summary = read_summary(&run_dir.join("summary.csv"))?;
    let chart = |title: &str, y_label: &str, series: Vec<Series>| LineChart {
        title: title.to_string(),
        x_label: "epoch".into(),
        y_label: y_label.to_string(),
        series,
    };
    let charts = [
        (
            "loss.png",
            chart(
                "Loss",
                "loss",
                vec![
                    summary.series("train", &summary.train_loss),
                    summary.series("eval", &summary.eval_loss),
                ],
            ),
        ),
        (
            "accuracy.png",
            chart(
                "Eval accuracy",
                "accuracy (%)",
                vec![
                    summary.series("top-1", &summary.eval_top1),
                    summary.series("top-5", &summary.eval_top5),
                ],
            ),
        ),
        (
            "lr.png",
            chart(
                "Learning rate",
                "lr",
                vec![summary.series("lr", &summary.lr)],
            ),
        ),
    ];
    charts
        .into_iter()
        .map(|(file, chart)| {
            let path = run_dir.join(file);
            write_png(&chart, &path).map(|()| path)
        })
        .collect()
}
