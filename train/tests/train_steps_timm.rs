//! A few training steps on timm's train.py defaults equal timm's: SGD with Nesterov momentum 0.9
//! and weight decay 2e-5 off biases and 1-d parameters (`create_optimizer_v2`), label smoothing
//! 0.1, train-mode BatchNorm; the same hashed weights and batch on both sides. Checked: every
//! step's loss, then the eval-mode logits after the last step (which read every weight and the
//! running statistics), the classifier bias, and how the steps changed every float tensor of the
//! state dict (parameters and running statistics). This is what `kiln train` runs each step, the
//! model and optimizer built by the library calls the command uses, in the model's own layout
//! and in channels-last, the one `kiln train` runs on the CPU.
//! Fixtures: `scripts/fixtures/make_train_steps_fixtures.py` -> `tests/fixtures/train_steps/`.

#[path = "../../nn/tests/common/mod.rs"]
mod common;

use common::{fill, hashed_uniform, max_rel_diff};
use kiln_engine::{DType, MemoryFormat, Tensor};
use kiln_nn::{create_model, load_safetensors_with_metadata, Model, ModelArgs};
use kiln_train::loss::{LabelSmoothingCrossEntropy, Loss};
use kiln_train::optim::{create_optimizer_for_model, OptimizerConfig};
use std::collections::BTreeMap;

const BATCH: [usize; 4] = [8, 3, 64, 64];
const TARGETS: [i64; 8] = [3, 8, 0, 5, 1, 9, 2, 7];
const STEPS: usize = 4;
const LR: f64 = 0.01;
/// How much larger Winograd F(4×4, 3×3)'s f32 error is than a direct sum's: 5.2e-5 against
/// 1.4e-6 of the outputs' RMS (`scripts/winograd_error.py`). kiln's CPU path takes it for 3×3
/// stride-1 convolutions in channels-last, so a ResNet run that way is allowed that much more.
const WINOGRAD_ERROR_RATIO: f32 = 37.0;

/// The fixture's float64 reference and timm's own float32 error against it, and the names of
/// the tensors its `updates` rows describe.
fn fixture(model: &str) -> (BTreeMap<String, Tensor>, Vec<String>) {
    let path = format!(
        "{}/tests/fixtures/train_steps/{model}.safetensors",
        env!("CARGO_MANIFEST_DIR")
    );
    let (tensors, meta) = load_safetensors_with_metadata(std::path::Path::new(&path)).unwrap();
    (
        tensors,
        serde_json::from_str(&meta["update_names"]).unwrap(),
    )
}

/// Every float tensor's change over the steps against timm's float64 run: its 2-norm and its dot
/// product with a hashed probe (`make_train_steps_fixtures.py`'s `update_stats`), off by at most
/// four times timm's own float32 error of them (times `rounding`) plus the float32 rounding of
/// the tensor's values, which bounds how well any change of them is known. timm's error of one
/// tensor is one draw of its rounding, sometimes lucky: it counts as at least the median over
/// the model's tensors.
fn check_updates(
    model: &dyn Model,
    want: &BTreeMap<String, Tensor>,
    names: &[String],
    rounding: f32,
) {
    let rows = want["updates"].to_vec::<f32>().unwrap();
    let timm_error = want["updates_f32_error"].to_vec::<f32>().unwrap();
    let mut sorted = timm_error.clone();
    sorted.sort_by(f32::total_cmp);
    let typical = sorted[sorted.len() / 2];
    let tensors: BTreeMap<String, Tensor> = model
        .named_tensors()
        .into_iter()
        .filter(|t| t.tensor.dtype() == DType::F32)
        .map(|t| (t.name, t.tensor))
        .collect();
    assert_eq!(tensors.len(), names.len(), "float tensors");
    let mut failures = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let now = tensors[name].contiguous().unwrap().to_vec_f32().unwrap();
        let start = fill(name, tensors[name].shape()).to_vec_f32().unwrap();
        let probe = hashed_uniform(&format!("{name}_probe"), now.len());
        let (mut norm2, mut dot, mut size2) = (0.0f64, 0.0f64, 0.0f64);
        for ((&a, &b), &h) in now.iter().zip(&start).zip(&probe) {
            let d = a as f64 - b as f64;
            (norm2, dot, size2) = (
                norm2 + d * d,
                dot + d * (h - 0.5),
                size2 + (a as f64).powi(2),
            );
        }
        let (want_norm, want_dot) = (rows[2 * i] as f64, rows[2 * i + 1] as f64);
        let tol = 4.0 * (timm_error[i].max(typical) * rounding) as f64 * want_norm
            + 2.0 * f32::EPSILON as f64 * size2.sqrt();
        for (what, got, want) in [("norm", norm2.sqrt(), want_norm), ("probe", dot, want_dot)] {
            if (got - want).abs() > tol {
                failures.push(format!(
                    "{name} {what}: kiln {got:e}, timm {want:e} (±{tol:.1e})"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "updates differ:\n{}",
        failures.join("\n")
    );
}

/// The steps of `name` with its weights and batch laid out in `format`: channels-last is how
/// `kiln train` runs on the CPU (the Trainer's preferred format there), contiguous how the model
/// is built. `rounding`: how much more f32 error than timm's the layout's algorithms make.
fn check(name: &str, format: MemoryFormat, rounding: f32) {
    let (want, update_names) = fixture(name);
    let args = ModelArgs {
        num_classes: 10,
        ..Default::default()
    };
    let mut model = create_model(name, &args).unwrap();
    for t in model.named_tensors() {
        t.tensor.copy_(&fill(&t.name, t.tensor.shape())).unwrap();
    }
    model.set_memory_format(format).unwrap();
    let x: Vec<f32> = hashed_uniform("train_steps_input", BATCH.iter().product())
        .iter()
        .map(|v| (v * 4.0 - 2.0) as f32)
        .collect();
    let x = Tensor::from_vec(x, &BATCH)
        .unwrap()
        .to_memory_format(format)
        .unwrap();
    let y = Tensor::from_vec(TARGETS.to_vec(), &[TARGETS.len()]).unwrap();
    let cfg = OptimizerConfig {
        lr: Some(LR),
        weight_decay: 2e-5,
        ..OptimizerConfig::new("sgd")
    };
    let mut optimizer = create_optimizer_for_model(&cfg, model.as_ref()).unwrap();
    let loss_fn = LabelSmoothingCrossEntropy { smoothing: 0.1 };
    model.set_training(true);
    let mut losses = Vec::new();
    for _ in 0..STEPS {
        let loss = loss_fn.forward(&model.forward(&x).unwrap(), &y).unwrap();
        optimizer.zero_grad();
        loss.backward().unwrap();
        optimizer.step(LR).unwrap();
        losses.push(loss.reshape(&[1]).unwrap());
    }
    model.set_training(false);
    let logits = {
        let _no_grad = kiln_engine::no_grad();
        model.forward(&x).unwrap()
    };
    let head = model
        .pretrained_cfg()
        .classifiers()
        .next()
        .unwrap()
        .to_string();
    let bias = model
        .named_tensors()
        .into_iter()
        .find(|t| t.name == format!("{head}.bias"))
        .unwrap()
        .tensor;
    check_updates(model.as_ref(), &want, &update_names, rounding);
    let losses = Tensor::cat(&losses, 0).unwrap();
    for (what, got) in [
        ("losses", losses),
        ("logits_eval", logits),
        ("classifier_bias", bias),
    ] {
        let reference = &want[what];
        let timm_error = want[&format!("{what}_f32_error")].to_vec::<f32>().unwrap()[0];
        // kiln's float32 sums run in another order than timm's: its error against the float64
        // reference is of the size of timm's own, allowed four times that, and never below
        // float32's rounding of a few hundred terms.
        let tol = (4.0 * timm_error * rounding).max(2e-6);
        let err = max_rel_diff(&got, reference);
        assert!(
            err <= tol,
            "{name} ({format:?}) {what}: {err:e} from timm's float64 run (timm's float32 run: {timm_error:e}); \
             kiln {:?}, timm {:?}",
            got.to_vec::<f32>().unwrap(),
            reference.to_vec::<f32>().unwrap()
        );
    }
}

#[test]
fn resnet18_steps_equal_timms() {
    check("resnet18", MemoryFormat::Contiguous, 1.0);
    check("resnet18", MemoryFormat::ChannelsLast, WINOGRAD_ERROR_RATIO);
}

#[test]
fn efficientnet_b0_steps_equal_timms() {
    check("efficientnet_b0", MemoryFormat::Contiguous, 1.0);
    check("efficientnet_b0", MemoryFormat::ChannelsLast, 1.0);
}

#[test]
fn convnext_atto_steps_equal_timms() {
    check("convnext_atto", MemoryFormat::Contiguous, 1.0);
    check("convnext_atto", MemoryFormat::ChannelsLast, 1.0);
}
