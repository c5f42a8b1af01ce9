//! Precision, recall and F1 over the classes, averaged as scikit-learn's `precision_score`,
//! `recall_score` and `f1_score` average them with `zero_division=0` (validate.py's
//! `--metrics-avg`).

use crate::{Error, Result};
use std::collections::BTreeMap;

/// How the per-class scores are averaged (scikit-learn's `average`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum MetricsAvg {
    /// From the counts summed over the classes (for single-label data, each equals accuracy).
    Micro,
    /// The unweighted mean over the classes.
    Macro,
    /// The mean over the classes weighted by their true counts (support).
    Weighted,
}

impl MetricsAvg {
    /// The name validate.py gives it (`micro`, `macro`, `weighted`), the prefix of its result keys.
    pub fn name(self) -> &'static str {
        match self {
            MetricsAvg::Micro => "micro",
            MetricsAvg::Macro => "macro",
            MetricsAvg::Weighted => "weighted",
        }
    }
}

/// One class's counts: predicted right, predicted as it, and truly it.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    hits: usize,
    predicted: usize,
    actual: usize,
}

/// Averaged precision, recall and F1, as fractions (validate.py reports them times 100).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassScores {
    /// Precision: of the images predicted as a class, the fraction that are.
    pub precision: f64,
    /// Recall: of the images of a class, the fraction predicted as it.
    pub recall: f64,
    /// F1: 2 · hits / (predicted + actual) per class.
    pub f1: f64,
}

impl ClassScores {
    /// The scores of `predictions` against `targets` (one class index each), averaged by `avg`
    /// over the classes present in either (scikit-learn's `unique_labels`). A ratio with a zero
    /// denominator counts as 0. Fails when the two differ in length or are empty.
    pub fn compute(targets: &[usize], predictions: &[usize], avg: MetricsAvg) -> Result<Self> {
        if targets.len() != predictions.len() || targets.is_empty() {
            return Err(Error::Config {
                what: "metrics",
                value: format!(
                    "{} targets, {} predictions",
                    targets.len(),
                    predictions.len()
                ),
                hint: "one prediction per target, at least one".into(),
            });
        }
        let mut classes: BTreeMap<usize, Counts> = BTreeMap::new();
        for (&t, &p) in targets.iter().zip(predictions) {
            classes.entry(t).or_default().actual += 1;
            classes.entry(p).or_default().predicted += 1;
            if t == p {
                classes.entry(t).or_default().hits += 1;
            }
        }
        let counts: Vec<Counts> = classes.into_values().collect();
        Ok(match avg {
            MetricsAvg::Micro => {
                let sum = counts.iter().fold(Counts::default(), |a, c| Counts {
                    hits: a.hits + c.hits,
                    predicted: a.predicted + c.predicted,
                    actual: a.actual + c.actual,
                });
                Self::of(sum)
            }
            MetricsAvg::Macro => Self::mean(&counts, |_| 1.0),
            MetricsAvg::Weighted => Self::mean(&counts, |c| c.actual as f64),
        })
    }

    /// One set of counts' scores.
    fn of(c: Counts) -> Self {
        ClassScores {
            precision: ratio(c.hits, c.predicted),
            recall: ratio(c.hits, c.actual),
            f1: ratio(2 * c.hits, c.predicted + c.actual),
        }
    }

    /// The classes' scores averaged with weights `weight` (0 when they sum to 0).
    fn mean(counts: &[Counts], weight: impl Fn(&Counts) -> f64) -> Self {
        let total: f64 = counts.iter().map(&weight).sum();
        let avg = |score: fn(&ClassScores) -> f64| -> f64 {
            match total {
                0.0 => 0.0,
                _ => {
                    let sum: f64 = counts
                        .iter()
                        .map(|c| weight(c) * score(&Self::of(*c)))
                        .sum();
                    sum / total
                }
            }
        };
        ClassScores {
            precision: avg(|s| s.precision),
            recall: avg(|s| s.recall),
            f1: avg(|s| s.f1),
        }
    }
}

/// `num / den`, or 0 when `den` is 0 (scikit-learn's `zero_division=0`).
fn ratio(num: usize, den: usize) -> f64 {
    match den {
        0 => 0.0,
        _ => num as f64 / den as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scikit-learn 1.9 on y_true [0, 0, 1, 2, 2, 2], y_pred [0, 1, 1, 2, 0, 3] (class 3 only
    /// predicted): precision_score / recall_score / f1_score with zero_division=0.
    #[test]
    fn averages_as_scikit_learn() {
        let (t, p) = ([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 3]);
        let cases = [
            (MetricsAvg::Micro, [0.5, 0.5, 0.5]),
            (
                MetricsAvg::Macro,
                [0.5, 0.4583333333333333, 0.41666666666666663],
            ),
            (MetricsAvg::Weighted, [0.75, 0.5, 0.5277777777777778]),
        ];
        for (avg, [precision, recall, f1]) in cases {
            let s = ClassScores::compute(&t, &p, avg).unwrap();
            let close = |a: f64, b: f64| (a - b).abs() < 1e-15;
            assert!(
                close(s.precision, precision) && close(s.recall, recall) && close(s.f1, f1),
                "{avg:?}: {s:?}"
            );
        }
        assert!(ClassScores::compute(&[], &[], MetricsAvg::Micro).is_err());
    }
}
