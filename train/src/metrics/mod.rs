//! Running averages, top-k accuracy, ImageNet ReaL accuracy, averaged precision, recall and F1,
//! multi-label mAP and F1, and timm's number formats for log lines.

mod averaged;
mod multi_label;
mod real_labels;

pub use averaged::{ClassScores, MetricsAvg};
pub use multi_label::{average_precision, MultiLabelMeter, MultiLabelScores};
pub use real_labels::RealLabels;

use crate::Result;
use kiln_engine::Tensor;

/// timm's `AverageMeter`: the last value and the count-weighted mean.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AverageMeter {
    /// Last value.
    pub val: f64,
    /// Weighted sum.
    pub sum: f64,
    /// Total weight.
    pub count: f64,
}

impl AverageMeter {
    /// Records `val` with weight `n`.
    pub fn update(&mut self, val: f64, n: usize) {
        self.val = val;
        self.sum += val * n as f64;
        self.count += n as f64;
    }

    /// The mean so far.
    pub fn avg(&self) -> f64 {
        if self.count == 0.0 {
            0.0
        } else {
            self.sum / self.count
        }
    }
}

/// Top-k accuracies in percent of logits [N, K] against class indices, for each k.
pub fn accuracy(logits: &Tensor, targets: &[usize], ks: &[usize]) -> Result<Vec<f64>> {
    let (n, classes) = (logits.shape()[0], logits.shape()[1]);
    let v = logits.to_vec_f32()?;
    let mut hits = vec![0usize; ks.len()];
    for (r, &t) in targets.iter().enumerate().take(n) {
        let row = &v[r * classes..(r + 1) * classes];
        let rank = row.iter().filter(|&&x| x > row[t]).count();
        for (h, &k) in hits.iter_mut().zip(ks) {
            *h += usize::from(rank < k.min(classes));
        }
    }
    Ok(hits
        .iter()
        .map(|&h| 100.0 * h as f64 / n.max(1) as f64)
        .collect())
}

/// Python's `format(v, '.3e')`: `1.000e-05`, two exponent digits at least.
pub fn fmt_e3(v: f64) -> String {
    let s = format!("{v:.3e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// Python's `format(v, '#.3g')`: three significant digits, trailing zeros kept.
pub fn fmt_g3(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 {
            "0.00".into()
        } else {
            format!("{v}")
        };
    }
    let exp = v.abs().log10().floor() as i32;
    if !(-4..3).contains(&exp) {
        let mantissa = v / 10f64.powi(exp);
        return format!(
            "{mantissa:.2}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        );
    }
    let digits = (2 - exp).max(0) as usize;
    let s = format!("{v:.digits$}");
    if digits == 0 {
        s + "."
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g3_matches_python() {
        assert_eq!(fmt_g3(2.31111), "2.31");
        assert_eq!(fmt_g3(0.5123), "0.512");
        assert_eq!(fmt_g3(12.345), "12.3");
        assert_eq!(fmt_g3(123.4), "123.");
        assert_eq!(fmt_g3(0.0001234), "0.000123");
        assert_eq!(fmt_g3(1234.5), "1.23e+03");
        assert_eq!(fmt_e3(1e-5), "1.000e-05");
        assert_eq!(fmt_e3(0.08536), "8.536e-02");
        assert_eq!(fmt_e3(12.0), "1.200e+01");
    }

    #[test]
    fn topk_ranks_by_strictly_larger_logits() {
        let logits = Tensor::from_vec(vec![0.1f32, 0.7, 0.2, 0.9, 0.05, 0.05], &[2, 3]).unwrap();
        assert_eq!(
            accuracy(&logits, &[1, 1], &[1, 2]).unwrap(),
            vec![50.0, 100.0]
        );
    }
}
