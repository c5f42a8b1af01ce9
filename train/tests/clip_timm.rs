//! Gradient clipping against timm's `dispatch_clip_grad` in each mode (norm, value, agc), within
//! 1e-5, on the CPU and (when one is usable) on CUDA. Fixtures:
//! `scripts/fixtures/make_loss_fixtures.py` -> `tests/fixtures/loss/clip.json`.

use kiln_engine::{Device, Tensor};
use kiln_train::clip::{clip_grads, ClipMode};
use kiln_train::optim::Param;
use serde::Deserialize;

const TOL: f64 = 1e-5;

#[derive(Deserialize)]
struct Fixture {
    shapes: Vec<Vec<usize>>,
    params: Vec<Vec<f64>>,
    grads: Vec<Vec<f64>>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    mode: ClipMode,
    value: f64,
    total_norm: Option<f64>,
    grads: Vec<Vec<f64>>,
}

fn fixture() -> Fixture {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/loss/clip.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn tensor(v: &[f64], shape: &[usize], device: Device) -> Tensor {
    let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    Tensor::from_vec(v, shape)
        .unwrap()
        .to_device(device)
        .unwrap()
}

/// A parameter without weight decay (the one place this test builds a `Param`).
fn param(name: String, tensor: Tensor) -> Param {
    Param {
        name,
        tensor,
        weight_decay: 0.0,
        lr_scale: 1.0,
        group: 0,
    }
}

/// The fixture's parameters on `device`, each holding its gradient.
fn params(f: &Fixture, device: Device) -> Vec<Param> {
    (0..f.shapes.len())
        .map(|i| {
            let p = tensor(&f.params[i], &f.shapes[i], device);
            p.requires_grad_(true);
            p.set_grad(Some(tensor(&f.grads[i], &f.shapes[i], device)));
            param(format!("p{i}"), p)
        })
        .collect()
}

fn check_modes(device: Device) {
    let f = fixture();
    for c in &f.cases {
        let what = format!("{:?} {} on {device}", c.mode, c.value);
        let ps = params(&f, device);
        let total = clip_grads(&ps, c.mode, c.value).unwrap_or_else(|e| panic!("{what}: {e}"));
        match (total, c.total_norm) {
            (Some(a), Some(b)) => assert!((a - b).abs() <= TOL * b, "{what}: norm {a} vs {b}"),
            (None, None) => {}
            (a, b) => panic!("{what}: total norm {a:?}, timm {b:?}"),
        }
        for (i, (p, want)) in ps.iter().zip(&c.grads).enumerate() {
            let got = p.tensor.grad().unwrap().to_vec_f32().unwrap();
            for (j, (&a, &b)) in got.iter().zip(want).enumerate() {
                let err = (a as f64 - b).abs();
                assert!(
                    err <= TOL * b.abs().max(1e-2),
                    "{what}: grad {i}[{j}] {a} vs {b}"
                );
            }
        }
    }
    assert!(f.cases.len() >= 5);
}

#[test]
fn clip_modes_match_timm_on_the_cpu() {
    check_modes(Device::Cpu);
}

#[test]
fn clip_modes_match_timm_on_cuda() {
    if let Err(e) = kiln_engine::cuda::device(0) {
        eprintln!("skipped: {e}");
        return;
    }
    check_modes(Device::Cuda(0));
}

#[test]
fn parameters_without_gradients_are_skipped() {
    let p = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
    let ps = [param("w".into(), p)];
    for mode in [ClipMode::Norm, ClipMode::Value, ClipMode::Agc] {
        let total = clip_grads(&ps, mode, 0.1).unwrap();
        assert_eq!(total, (mode == ClipMode::Norm).then_some(0.0));
        assert!(ps[0].tensor.grad().is_none());
    }
}
