//! What `kiln validate` scores besides top-1, top-5 and the loss, as timm's validate.py does:
//! the logits restricted to `--valid-labels`, ImageNet ReaL accuracy (`--real-labels`) and
//! averaged precision, recall and F1 (`--metrics-avg`).

use super::args::ValidateArgs;
use kiln_engine::Tensor;
use kiln_train::metrics::{ClassScores, MetricsAvg, RealLabels};
use kiln_train::{Error, Result};
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::path::Path;

/// validate.py's `--valid-labels FILE`: one class index of the model a line (its output keeps
/// these logits, in this order), checked against the model's `model_classes` and the data's
/// `data_classes` (each data class picks one kept logit).
pub fn valid_labels(file: &Path, model_classes: usize, data_classes: usize) -> Result<Vec<usize>> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
    let bad = |msg: String| Error::flag("--valid-labels", format!("{}: {msg}", file.display()));
    let mut labels = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let label: usize = line
            .trim_end()
            .parse()
            .map_err(|_| bad(format!("line {}: {line:?} is not a class index", n + 1)))?;
        if label >= model_classes {
            return Err(bad(format!(
                "line {}: class {label}, but the model has {model_classes} classes",
                n + 1
            )));
        }
        labels.push(label);
    }
    if labels.len() < data_classes {
        return Err(bad(format!(
            "keeps {} logits, but the data has {data_classes} classes (each needs its logit)",
            labels.len()
        )));
    }
    Ok(labels)
}

/// The ReaL labels and the predictions `--metrics-avg` averages, filled batch by batch.
pub struct Scores {
    real: Option<RealLabels>,
    avg: Option<MetricsAvg>,
    targets: Vec<usize>,
    predictions: Vec<usize>,
}

impl Scores {
    /// What `a` asks to score over a dataset of `images` files.
    pub fn new(a: &ValidateArgs, images: usize) -> Result<Self> {
        let real = (a.real_labels.as_deref())
            .map(|f| RealLabels::load(f, images))
            .transpose()
            .map_err(|e| Error::flag("--real-labels", e.to_string()))?;
        Ok(Scores {
            real,
            avg: a.metrics_avg,
            targets: Vec::new(),
            predictions: Vec::new(),
        })
    }

    /// Scores one batch: its logits, labels and source files.
    pub fn observe(&mut self, logits: &Tensor, labels: &[usize], files: &[String]) -> Result<()> {
        if let Some(real) = &mut self.real {
            real.add_result(logits, files)
                .map_err(|e| Error::flag("--real-labels", e.to_string()))?;
        }
        if self.avg.is_some() {
            let argmax = logits.argmax(1, false)?.to_vec::<i64>()?;
            self.predictions.extend(argmax.iter().map(|&p| p as usize));
            self.targets.extend_from_slice(labels);
        }
        Ok(())
    }

    /// Top-1 and top-5 against the ReaL labels, which replace the plain ones in the results (as
    /// in validate.py), if scored.
    pub fn real_accuracy(&self) -> Option<[f64; 2]> {
        self.real.as_ref().map(RealLabels::accuracy)
    }

    /// The averaged precision, recall and F1, if asked.
    pub fn metrics(&self) -> Result<Option<Metrics>> {
        let Some(avg) = self.avg else {
            return Ok(None);
        };
        let scores = ClassScores::compute(&self.targets, &self.predictions, avg)?;
        Ok(Some(Metrics { avg, scores }))
    }
}

/// validate.py's `--metrics-avg` results: `<avg>_precision`, `<avg>_recall`, `<avg>_f1_score`,
/// in percent rounded to 4 decimals.
#[derive(Debug, Clone, Copy)]
pub struct Metrics {
    avg: MetricsAvg,
    scores: ClassScores,
}

impl Metrics {
    /// (key, value) in validate.py's order.
    pub fn entries(&self) -> [(String, f64); 3] {
        let s = &self.scores;
        let name = self.avg.name();
        [
            ("precision", s.precision),
            ("recall", s.recall),
            ("f1_score", s.f1),
        ]
        .map(|(k, v)| (format!("{name}_{k}"), round4(100.0 * v)))
    }

    /// validate.py's addition to its summary line.
    pub fn log_line(&self) -> String {
        let [p, r, f] = self.entries().map(|(_, v)| v);
        let avg = self.avg.name();
        format!(" | Precision({avg}) {p:.3} | Recall({avg}) {r:.3} | F1-score({avg}) {f:.3}")
    }
}

impl Serialize for Metrics {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        for (k, v) in self.entries() {
            map.serialize_entry(&k, &v)?;
        }
        map.end()
    }
}

/// Python's `round(v, 4)`: the nearest 4-decimal value to v's exact binary value, ties to even
/// (Rust's formatting rounds the same exact value the same way).
fn round4(v: f64) -> f64 {
    format!("{v:.4}").parse().unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_labels_are_checked_against_model_and_data() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("valid.txt");
        std::fs::write(&file, "2\n0\n1\n").unwrap();
        assert_eq!(valid_labels(&file, 4, 3).unwrap(), vec![2, 0, 1]);
        for (text, model, data, says) in [
            ("2\n0\n1\n", 4, 4, "keeps 3 logits"),
            ("2\n9\n", 4, 2, "line 2: class 9"),
            ("2\n\n1\n", 4, 2, "line 2: \"\""),
        ] {
            std::fs::write(&file, text).unwrap();
            let e = valid_labels(&file, model, data).unwrap_err().to_string();
            assert!(e.starts_with("--valid-labels: ") && e.contains(says), "{e}");
        }
    }

    #[test]
    fn rounds_as_python() {
        assert_eq!(round4(100.0 * 75.0 / 136.0), 55.1471);
        // Python: round(2.00005, 4) == 2.0 and round(1.00025, 4) == 1.0003, from the binary
        // values 2.0000499999... and 1.0002500000000001.
        assert_eq!(round4(2.00005), 2.0);
        assert_eq!(round4(1.00025), 1.0003);
        assert_eq!(round4(65.625), 65.625);
    }
}
