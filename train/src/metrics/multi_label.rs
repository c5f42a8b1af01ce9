//! Multi-label metrics as scikit-learn computes them: average precision per class
//! (`average_precision_score(average=None)`), their macro mean (mAP,
//! `average_precision_score(average='macro')`) and micro F1 of the predictions at a threshold
//! (`f1_score(average='micro', zero_division=0)`).
//!
//! As in scikit-learn, equal scores form one threshold (tied samples enter the curve together),
//! and a class with no positive sample scores AP 0 and still counts in the mean (scikit-learn
//! warns; the mean is kept comparable with scikit-learn's rather than leaving the class out).

use crate::{Error, Result};

/// Per-class scores and dense 0/1 targets of every sample seen, for the metrics of a whole pass.
#[derive(Debug, Clone)]
pub struct MultiLabelMeter {
    classes: usize,
    /// Row-major `[samples, classes]` scores (probabilities or logits: AP only ranks them).
    scores: Vec<f32>,
    /// Row-major `[samples, classes]`: whether the sample has the class.
    positive: Vec<bool>,
}

/// What a multi-label pass measured, as fractions (logs and results show them times 100).
#[derive(Debug, Clone, PartialEq)]
pub struct MultiLabelScores {
    /// Mean over the classes of their average precision.
    pub map: f64,
    /// Micro F1 of the predictions whose probability reaches the threshold.
    pub f1: f64,
    /// Each class's average precision.
    pub class_ap: Vec<f64>,
}

impl MultiLabelMeter {
    /// An empty meter for `classes` classes.
    pub fn new(classes: usize) -> Self {
        MultiLabelMeter {
            classes,
            scores: Vec::new(),
            positive: Vec::new(),
        }
    }

    /// Samples recorded.
    pub fn len(&self) -> usize {
        self.scores.len() / self.classes.max(1)
    }

    /// Whether no sample was recorded.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// Records a batch: `scores` and `targets` row-major `[n, classes]`; a target above 0.5
    /// marks a positive. Fails when the lengths disagree with the class count.
    pub fn update(&mut self, scores: &[f32], targets: &[f32]) -> Result<()> {
        let k = self.classes.max(1);
        if scores.len() != targets.len() || !scores.len().is_multiple_of(k) {
            return Err(Error::config(
                "multi-label metrics",
                format!("{} scores, {} targets", scores.len(), targets.len()),
                format!("both [samples, {}] (the classes)", self.classes),
            ));
        }
        self.scores.extend_from_slice(scores);
        self.positive.extend(targets.iter().map(|&t| t > 0.5));
        Ok(())
    }

    /// Class `c`'s scores and targets.
    fn column(&self, c: usize) -> (Vec<f32>, Vec<bool>) {
        let rows = (0..self.len()).map(|r| r * self.classes + c);
        rows.map(|i| (self.scores[i], self.positive[i])).unzip()
    }

    /// Each class's average precision (0 for a class without positive, as scikit-learn).
    pub fn class_ap(&self) -> Vec<f64> {
        (0..self.classes)
            .map(|c| {
                let (s, p) = self.column(c);
                average_precision(&s, &p)
            })
            .collect()
    }

    /// Micro F1 of the predictions `score >= threshold` (0 when nothing is predicted nor true).
    pub fn f1(&self, threshold: f64) -> f64 {
        let (mut tp, mut predicted, mut actual) = (0usize, 0usize, 0usize);
        for (&s, &p) in self.scores.iter().zip(&self.positive) {
            let pred = f64::from(s) >= threshold;
            tp += usize::from(pred && p);
            predicted += usize::from(pred);
            actual += usize::from(p);
        }
        match predicted + actual {
            0 => 0.0,
            den => 2.0 * tp as f64 / den as f64,
        }
    }

    /// mAP, F1 at `threshold` and the per-class APs (NaN mAP and F1 for no sample).
    pub fn scores(&self, threshold: f64) -> MultiLabelScores {
        if self.is_empty() {
            return MultiLabelScores {
                map: f64::NAN,
                f1: f64::NAN,
                class_ap: vec![f64::NAN; self.classes],
            };
        }
        let class_ap = self.class_ap();
        MultiLabelScores {
            map: class_ap.iter().sum::<f64>() / class_ap.len().max(1) as f64,
            f1: self.f1(threshold),
            class_ap,
        }
    }
}

/// scikit-learn's `average_precision_score` of one class: over the distinct scores from the
/// highest, the sum of (recall gained) × (precision there); 0 without positives.
pub fn average_precision(scores: &[f32], positive: &[bool]) -> f64 {
    let total = positive.iter().filter(|&&p| p).count();
    if total == 0 {
        return 0.0;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut seen, mut ap, mut last_recall) = (0usize, 0usize, 0.0, 0.0);
    for (k, &i) in order.iter().enumerate() {
        tp += usize::from(positive[i]);
        seen += 1;
        // A threshold ends where the next score differs (tied samples enter together).
        let ends = order.get(k + 1).is_none_or(|&j| scores[j] != scores[i]);
        if ends {
            let recall = tp as f64 / total as f64;
            ap += (recall - last_recall) * (tp as f64 / seen as f64);
            last_recall = recall;
        }
    }
    ap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_ties_together() {
        // One positive tied with one negative at the top: precision 1/2 at recall 1.
        assert_eq!(
            average_precision(&[0.9, 0.9, 0.1], &[true, false, false]),
            0.5
        );
        assert_eq!(
            average_precision(&[0.9, 0.8, 0.1], &[true, false, false]),
            1.0
        );
        assert_eq!(average_precision(&[0.2, 0.3], &[false, false]), 0.0);
    }

    #[test]
    fn refuses_mismatched_batches() {
        let mut m = MultiLabelMeter::new(3);
        assert!(m.update(&[0.1; 6], &[0.0; 3]).is_err());
        assert!(m.update(&[0.1; 4], &[0.0; 4]).is_err());
        m.update(&[0.1; 6], &[1.0; 6]).unwrap();
        assert_eq!(m.len(), 2);
    }
}
