//! A model built for training from scratch starts from timm's initial distributions: per tensor
//! the same constant, or draws of the same scale and family (normal, uniform, truncated normal)
//! as timm's. The truth is the statistics of timm's own initialization of the same models
//! (scripts/fixtures/make_init_fixtures.py). The draws come from different generators, so the
//! tolerances are the sampling errors of the statistics, at six standard errors.

use kiln_engine::{manual_seed, DType};
use kiln_nn::{create_model, state_dict, ModelArgs};
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/init_stats.json");

/// [numel, mean, std, min, max, kurtosis] of one tensor's elements, as the fixture stores them.
fn stats(x: &[f32]) -> [f64; 6] {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let moment = |p: i32| x.iter().map(|&v| (v as f64 - mean).powi(p)).sum::<f64>() / n;
    let std = moment(2).sqrt();
    let kurtosis = if std > 0.0 {
        moment(4) / std.powi(4)
    } else {
        0.0
    };
    let min = x.iter().fold(f64::INFINITY, |m, &v| m.min(v as f64));
    let max = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    [n, mean, std, min, max, kurtosis]
}

/// Where a tensor's kiln statistics `k` leave timm's `t` by more than sampling explains.
fn mismatch(k: &[f64; 6], t: &[f64; 6]) -> Option<String> {
    let [n, t_mean, t_std, _, _, t_kurt] = *t;
    if k[0] != n {
        return Some(format!("{} elements, timm {n}", k[0]));
    }
    if t_std == 0.0 {
        // A constant (BatchNorm's ones and zeros, zero biases, layer scales): exactly timm's
        // float32 value.
        let t_mean = t_mean as f32 as f64;
        return (k[3] != t_mean || k[4] != t_mean)
            .then(|| format!("ranges {}..{}, timm's constant {t_mean}", k[3], k[4]));
    }
    // Standard errors of two independent samples' difference: of the mean σ·√(2/n); of the
    // standard deviation's ratio √((κ−1)/(4n))·√2; of the kurtosis (normal's) √(24/n)·√2.
    let mean_tol = 6.0 * t_std * (2.0 / n).sqrt();
    let std_tol = 6.0 * ((t_kurt - 1.0).max(0.8) / (2.0 * n)).sqrt();
    let kurt_tol = 6.0 * (48.0 / n).sqrt();
    if (k[1] - t_mean).abs() > mean_tol {
        return Some(format!(
            "mean {:.3e}, timm {t_mean:.3e} (±{mean_tol:.1e})",
            k[1]
        ));
    }
    if (k[2] / t_std - 1.0).abs() > std_tol {
        return Some(format!(
            "std {:.4e}, timm {t_std:.4e} (±{std_tol:.1e} of it)",
            k[2]
        ));
    }
    // The family (normal 3, uniform 1.8), where the sample is large enough to tell them apart.
    if n >= 4096.0 && (k[5] - t_kurt).abs() > kurt_tol {
        return Some(format!(
            "kurtosis {:.2}, timm {t_kurt:.2} (±{kurt_tol:.2}); range {:.3e}..{:.3e}, timm's {:.3e}..{:.3e}",
            k[5], k[3], k[4], t[3], t[4]
        ));
    }
    None
}

#[test]
fn initial_weights_follow_timms_distributions() {
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    let num_classes = fixture["num_classes"].as_u64().unwrap() as usize;
    let mut failures = Vec::new();
    for (name, tensors) in fixture["models"].as_object().unwrap() {
        manual_seed(0);
        let args = ModelArgs {
            num_classes,
            ..Default::default()
        };
        let model = create_model(name, &args).unwrap();
        let ours = state_dict(model.as_ref());
        let floats: Vec<_> = ours
            .iter()
            .filter(|(_, t)| t.dtype() == DType::F32)
            .collect();
        let timm = tensors.as_object().unwrap();
        assert_eq!(floats.len(), timm.len(), "{name}: float tensors");
        for (key, t) in floats {
            let Some(want) = timm.get(key) else {
                failures.push(format!("{name}.{key}: not in timm's state dict"));
                continue;
            };
            let want: Vec<f64> = want
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let got = stats(&t.to_vec_f32().unwrap());
            if let Some(why) = mismatch(&got, &want.try_into().unwrap()) {
                failures.push(format!("{name}.{key}: {why}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
