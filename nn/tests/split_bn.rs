//! timm's `--split-bn` (`convert_splitbn_model`, SplitBatchNorm2d) on resnet18 against timm: one
//! train step's logits, loss and gradients (main and auxiliary BN layers, the input), the running
//! statistics after it, and eval (main layers only). Fixture: scripts/fixtures/make_split_bn_fixtures.py.

mod common;

use common::{fill, max_rel_diff};
use kiln_engine::Tensor;
use kiln_nn::convert_splitbn_model;
use kiln_nn::{create_model, load_safetensors, Model, ModelArgs};
use std::path::Path;

/// Train-mode tolerance: timm's own float32 results differ from its float64 ones by at most
/// 9.2e-6 (relative to the largest magnitude) over these tensors (the script's --f64-spread);
/// kiln's float32 against timm's float32 may differ by both errors, bounded at 5e-5.
const TRAIN_TOL: f32 = 5e-5;
/// Running statistics and eval logits: timm's float32 spread is at most 4.5e-7.
const STATS_TOL: f32 = 1e-6;

fn split_resnet18() -> Box<dyn Model> {
    let args = ModelArgs {
        num_classes: 10,
        ..Default::default()
    };
    let mut model = create_model("resnet18", &args).unwrap();
    convert_splitbn_model(model.as_mut(), 3).unwrap();
    for t in model.named_tensors() {
        t.tensor.copy_(&fill(&t.name, t.tensor.shape())).unwrap();
    }
    model
}

fn close(what: &str, ours: &Tensor, theirs: &Tensor, tol: f32) {
    assert_eq!(ours.shape(), theirs.shape(), "{what}");
    let d = max_rel_diff(ours, theirs);
    assert!(d < tol, "{what}: relative difference {d} (bound {tol})");
}

#[test]
fn split_batchnorm_trains_and_evaluates_as_timms() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/split_bn_resnet18.safetensors");
    let want = load_safetensors(&path).unwrap();
    let mut model = split_resnet18();
    let named = model.named_tensors();
    let tensor = |name: &str| {
        named
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tensor {name}"))
            .tensor
            .clone()
    };
    let x = want["input"].detach().requires_grad_(true).clone();
    model.set_training(true);
    let logits = model.forward(&x).unwrap();
    close("train logits", &logits, &want["logits_train"], TRAIN_TOL);
    let target = Tensor::from_vec(vec![1i64, 4, 7, 0, 9, 2], &[6]).unwrap();
    let loss = logits.cross_entropy(&target, 0.0).unwrap();
    close(
        "loss",
        &loss.reshape(&[1]).unwrap(),
        &want["loss"],
        TRAIN_TOL,
    );
    loss.backward().unwrap();
    close(
        "input.grad",
        &x.grad().unwrap(),
        &want["input.grad"],
        TRAIN_TOL,
    );
    for name in [
        "conv1.weight",
        "bn1.weight",
        "bn1.aux_bn.0.weight",
        "bn1.aux_bn.1.bias",
        "layer4.1.bn2.aux_bn.1.weight",
        "layer4.1.bn2.bias",
        "fc.weight",
    ] {
        let grad = tensor(name).grad().unwrap();
        close(name, &grad, &want[&format!("{name}.grad")], TRAIN_TOL);
    }
    for name in [
        "bn1.running_mean",
        "bn1.aux_bn.0.running_mean",
        "bn1.aux_bn.1.running_var",
        "layer4.1.bn2.aux_bn.1.running_var",
    ] {
        close(
            name,
            &tensor(name),
            &want[&format!("{name}_after")],
            STATS_TOL,
        );
    }
    for name in [
        "bn1.num_batches_tracked",
        "bn1.aux_bn.1.num_batches_tracked",
    ] {
        assert_eq!(tensor(name).to_vec::<i64>().unwrap(), vec![1], "{name}");
    }
    model.set_training(false);
    let eval = model.forward(&x.detach()).unwrap();
    close("eval logits", &eval, &want["logits_eval"], STATS_TOL);
}

#[test]
fn conversion_copies_running_stats_and_starts_a_fresh_affine() {
    let mut model = create_model("resnet18", &ModelArgs::default()).unwrap();
    for t in model.named_tensors() {
        t.tensor.copy_(&fill(&t.name, t.tensor.shape())).unwrap();
    }
    convert_splitbn_model(model.as_mut(), 2).unwrap();
    let named = model.named_tensors();
    let get = |name: &str| {
        let t = &named.iter().find(|t| t.name == name).unwrap().tensor;
        t.to_vec::<f32>().unwrap()
    };
    assert_eq!(get("bn1.aux_bn.0.running_mean"), get("bn1.running_mean"));
    assert_eq!(get("bn1.aux_bn.0.running_var"), get("bn1.running_var"));
    assert!(get("bn1.aux_bn.0.weight").iter().all(|&w| w == 1.0));
    assert!(get("bn1.aux_bn.0.bias").iter().all(|&b| b == 0.0));
    assert!(named.iter().all(|t| !t.name.contains("aux_bn.0.aux_bn")));
    let again = convert_splitbn_model(model.as_mut(), 2)
        .unwrap_err()
        .to_string();
    assert!(again.contains("split already"), "{again}");
    let one = create_model("resnet18", &ModelArgs::default()).unwrap();
    let mut one = one;
    let e = convert_splitbn_model(one.as_mut(), 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least 2"), "{e}");
}

#[test]
fn a_batch_that_does_not_divide_into_the_splits_is_an_error() {
    let mut model = split_resnet18();
    model.set_training(true);
    let x = Tensor::zeros(&[4, 3, 32, 32], kiln_engine::DType::F32).unwrap();
    let e = model.forward(&x).unwrap_err().to_string();
    assert!(e.contains("does not divide into 3"), "{e}");
}
