//! Pure bfloat16 training (`--model-dtype bfloat16`: `Module::to_dtype`, the input cast too) is as
//! accurate as timm's: one train-mode step's logits, loss, classifier gradients and running
//! statistics, measured against the same step in float64 (fixtures from
//! scripts/fixtures/make_model_dtype_fixtures.py), are off by no more than twice timm's own
//! bfloat16 error. Two bfloat16 runs that sum in different orders round differently but by the
//! same amount, so timm's error is the scale of the bound. The loss, one number, is bounded by
//! the logits it comes from instead: mean cross-entropy moves by at most twice the largest change
//! of a logit (its gradient `(softmax - onehot) / N` has an L1 norm of at most 2 per sample).

mod common;

use common::{fill_model, first_classifier, max_rel_diff, parity_input, test_args};
use kiln_engine::{DType, Device, Tensor};
use kiln_nn::{create_model, load_safetensors};
use std::collections::HashMap;
use std::path::Path;

/// kiln's bfloat16 step on `device`: the quantities the fixture holds, under the fixture's names.
fn kiln_step_on(name: &str, device: Device) -> HashMap<String, Tensor> {
    let mut model = create_model(name, &test_args(name)).unwrap();
    fill_model(model.as_ref());
    model.to_device(device).unwrap();
    model.to_dtype(DType::BF16).unwrap();
    let x = parity_input()
        .to_dtype(DType::BF16)
        .unwrap()
        .to_device(device)
        .unwrap();
    model.set_training(true);
    let logits = model.forward(&x).unwrap();
    assert_eq!(logits.dtype(), DType::BF16, "{name}: logits");
    let target = Tensor::from_vec(vec![3i64, 8], &[2])
        .unwrap()
        .to_device(device)
        .unwrap();
    let loss = logits.cross_entropy(&target, 0.0).unwrap();
    loss.backward().unwrap();
    let mut out = HashMap::from([
        ("logits_train".to_string(), logits),
        ("loss".to_string(), loss.reshape(&[1]).unwrap()),
    ]);
    let head = first_classifier(model.as_ref());
    for t in model.named_tensors() {
        if t.tensor.dtype().is_float() {
            assert_eq!(t.tensor.dtype(), DType::BF16, "{name}: {}", t.name);
        }
        if let Some(g) = t.tensor.grad() {
            assert_eq!(g.dtype(), DType::BF16, "{name}: {}.grad", t.name);
        }
        if t.name.starts_with(&format!("{head}.")) {
            out.insert(format!("{}.grad", t.name), t.tensor.grad().unwrap());
        }
        if t.name == "bn1.running_mean" {
            out.insert("bn1.running_mean_after_train".into(), t.tensor.clone());
        }
    }
    out.into_iter()
        .map(|(k, v)| {
            (
                k,
                v.to_dtype(DType::F32)
                    .unwrap()
                    .to_device(Device::Cpu)
                    .unwrap(),
            )
        })
        .collect()
}

fn scalar(t: &Tensor) -> f32 {
    t.to_vec::<f32>().unwrap()[0]
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    let (a, b) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn check(name: &str) {
    check_on(name, Device::Cpu)
}

/// Bounds kiln's bfloat16 step on `device` by timm's error (see the file's doc).
fn check_on(name: &str, device: Device) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/model_dtype_{name}.safetensors"));
    let fixture = load_safetensors(&path).unwrap();
    let ours = kiln_step_on(name, device);
    let keys: Vec<&str> = fixture
        .keys()
        .filter_map(|k| k.strip_prefix("bf16."))
        .collect();
    assert!(keys.len() >= 4, "{name}: fixture holds {keys:?}");
    let loss_error = (scalar(&ours["loss"]) - scalar(&fixture["f64.loss"])).abs();
    let logit_error = max_abs_diff(&ours["logits_train"], &fixture["f64.logits_train"]);
    assert!(
        loss_error <= 2.0 * logit_error,
        "{name}: loss off by {loss_error:.2e}, its logits by at most {logit_error:.2e}"
    );
    for key in keys.into_iter().filter(|&k| k != "loss") {
        let (timm, exact) = (
            &fixture[&format!("bf16.{key}")],
            &fixture[&format!("f64.{key}")],
        );
        let theirs = max_rel_diff(timm, exact);
        let mine = max_rel_diff(&ours[key], exact);
        println!("{name} on {device}: {key}: kiln {mine:.2e}, timm {theirs:.2e}");
        assert!(
            mine <= 2.0 * theirs,
            "{name} {key}: kiln's bfloat16 error {mine:.2e} against float64, timm's {theirs:.2e}"
        );
    }
}

#[test]
fn resnet18_bf16_step_is_as_accurate_as_timms() {
    check("resnet18");
}

#[test]
fn efficientnet_b0_bf16_step_is_as_accurate_as_timms() {
    check("efficientnet_b0");
}

#[test]
fn convnext_atto_bf16_step_is_as_accurate_as_timms() {
    check("convnext_atto");
}

#[test]
fn convnextv2_atto_bf16_step_is_as_accurate_as_timms() {
    check("convnextv2_atto");
}

#[test]
fn vit_tiny_bf16_step_is_as_accurate_as_timms() {
    check("vit_tiny_patch16_224");
}

/// The CUDA backend (the emulator in CI) trains in bfloat16 as accurately as the CPU does.
#[test]
fn resnet18_bf16_step_on_cuda_is_as_accurate_as_timms() {
    check_on("resnet18", Device::Cuda(0));
}
