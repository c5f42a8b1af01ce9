//! Every training loss against timm: the loss and its gradient with respect to the logits, within
//! 1e-5, on the CPU and (when one is usable) on CUDA. Fixtures:
//! `scripts/fixtures/make_loss_fixtures.py` -> `tests/fixtures/loss/losses.json`.

use kiln_engine::{DType, Device, Tensor};
use kiln_train::loss::{
    BinaryCrossEntropy, CrossEntropy, JsdCrossEntropy, LabelSmoothingCrossEntropy, Loss, Reduction,
    SoftTargetCrossEntropy,
};
use serde::Deserialize;
use serde_json::Value;

const TOL: f64 = 1e-5;

#[derive(Deserialize)]
struct Case {
    name: String,
    kind: String,
    opts: Value,
    shape: Vec<usize>,
    logits: Vec<f64>,
    targets: Vec<f64>,
    soft: bool,
    loss: f64,
    grad: Vec<f64>,
}

fn cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/loss/losses.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn opt(c: &Case, key: &str) -> Option<f64> {
    c.opts.get(key).and_then(Value::as_f64)
}

/// The kiln loss a fixture case names, with its options.
fn loss_of(c: &Case) -> Box<dyn Loss> {
    let smoothing = opt(c, "smoothing");
    match c.kind.as_str() {
        "ce" => Box::new(CrossEntropy::default()),
        "label_smoothing" => Box::new(LabelSmoothingCrossEntropy {
            smoothing: smoothing.unwrap(),
        }),
        "soft_target" => Box::new(SoftTargetCrossEntropy),
        "bce" => Box::new(BinaryCrossEntropy {
            smoothing: smoothing.unwrap_or(BinaryCrossEntropy::default().smoothing),
            target_threshold: opt(c, "target_threshold"),
            pos_weight: opt(c, "pos_weight"),
            reduction: match c.opts.get("reduction").and_then(Value::as_str) {
                Some("sum") => Reduction::Sum,
                _ => Reduction::Mean,
            },
            sum_classes: c.opts.get("sum_classes") == Some(&Value::Bool(true)),
        }),
        "jsd" => Box::new(JsdCrossEntropy {
            num_splits: opt(c, "num_splits").unwrap() as usize,
            alpha: opt(c, "alpha").unwrap(),
            smoothing: smoothing.unwrap(),
        }),
        other => panic!("{}: unknown kind {other}", c.name),
    }
}

fn inputs(c: &Case, device: Device) -> (Tensor, Tensor) {
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
    let logits = Tensor::from_vec(f32s(&c.logits), &c.shape).unwrap();
    let targets = if c.soft {
        Tensor::from_vec(f32s(&c.targets), &c.shape).unwrap()
    } else {
        let idx: Vec<i64> = c.targets.iter().map(|&t| t as i64).collect();
        Tensor::from_vec(idx, &[c.shape[0]]).unwrap()
    };
    let logits = logits.to_device(device).unwrap().detach();
    logits.requires_grad_(true);
    (logits, targets.to_device(device).unwrap())
}

/// The largest |a - b| over max(1, max|b|) (an absolute bound scaled to the reference's size).
fn worst(a: &[f32], b: &[f64]) -> (f64, usize) {
    let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .enumerate()
        .map(|(i, (&x, &y))| ((x as f64 - y).abs() / scale, i))
        .fold((0.0, 0), |acc, e| if e.0 > acc.0 { e } else { acc })
}

fn check_case(c: &Case, device: Device) {
    let (logits, targets) = inputs(c, device);
    let loss = loss_of(c)
        .forward(&logits, &targets)
        .unwrap_or_else(|e| panic!("{} on {device}: {e}", c.name));
    assert_eq!(loss.dtype(), DType::F32, "{}", c.name);
    let value = loss.item().unwrap();
    let err = (value - c.loss).abs() / c.loss.abs().max(1.0);
    assert!(
        err <= TOL,
        "{} on {device}: loss {value} vs timm {} ({err:.2e})",
        c.name,
        c.loss
    );
    loss.backward().unwrap();
    let grad = logits
        .grad()
        .expect("logits gradient")
        .to_vec_f32()
        .unwrap();
    let (err, i) = worst(&grad, &c.grad);
    assert!(
        err <= TOL,
        "{} on {device}: grad[{i}] {} vs timm {} ({err:.2e})",
        c.name,
        grad[i],
        c.grad[i]
    );
}

#[test]
fn every_loss_matches_timm_on_the_cpu() {
    let all = cases();
    assert!(all.len() >= 16, "fixture holds {} cases", all.len());
    for c in &all {
        check_case(c, Device::Cpu);
    }
}

#[test]
fn every_loss_matches_timm_on_cuda() {
    if let Err(e) = kiln_engine::cuda::device(0) {
        eprintln!("skipped: {e}");
        return;
    }
    for c in &cases() {
        check_case(c, Device::Cuda(0));
    }
}

#[test]
fn half_logits_give_an_f32_loss_close_to_timm() {
    // On CUDA the fused losses read the bf16 logits as they are (f32 inside and out).
    let mut devices = vec![Device::Cpu];
    if kiln_engine::cuda::device(0).is_ok() {
        devices.push(Device::Cuda(0));
    }
    for device in devices {
        for c in cases()
            .iter()
            .filter(|c| c.name == "bce_1" || c.name == "jsd_smoothing_0.1")
        {
            let (logits, targets) = inputs(c, device);
            let half = logits.to_dtype(DType::BF16).unwrap();
            let loss = loss_of(c).forward(&half, &targets).unwrap();
            assert_eq!(loss.dtype(), DType::F32, "{} on {device}", c.name);
            let err = (loss.item().unwrap() - c.loss).abs() / c.loss.abs();
            assert!(
                err < 2e-2,
                "{} on {device}: bf16 logits off by {err:.2e}",
                c.name
            );
        }
    }
}

#[test]
fn losses_name_what_they_cannot_take() {
    let logits = Tensor::zeros(&[4, 3], DType::F32).unwrap();
    let soft = Tensor::zeros(&[4, 3], DType::F32).unwrap();
    let idx = Tensor::from_vec(vec![0i64, 1, 2, 0], &[4]).unwrap();
    let e = LabelSmoothingCrossEntropy { smoothing: 0.1 }
        .forward(&logits, &soft)
        .unwrap_err();
    assert!(e.to_string().contains("LabelSmoothingCrossEntropy"), "{e}");
    let e = SoftTargetCrossEntropy.forward(&logits, &idx).unwrap_err();
    assert!(e.to_string().contains("[4, 3]"), "{e}");
    let jsd = JsdCrossEntropy {
        num_splits: 3,
        alpha: 12.0,
        smoothing: 0.0,
    };
    let e = jsd.forward(&logits, &idx).unwrap_err();
    assert!(e.to_string().contains("--aug-splits"), "{e}");
    let bad = Tensor::from_vec(vec![0i64, 1, 7, 0], &[4]).unwrap();
    let e = BinaryCrossEntropy::default()
        .forward(&logits, &bad)
        .unwrap_err();
    assert!(e.to_string().contains("target 7"), "{e}");
}
