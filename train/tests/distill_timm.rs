//! Knowledge distillation against timm's tasks (timm/task/distillation.py and
//! token_distillation.py): for logit, feature and token (soft and hard) distillation, the task
//! loss, the distillation loss, their weighted total and the gradient of the total with respect
//! to the input (and to the feature projection) equal timm's on the same hashed weights and input.
//! Fixtures: `scripts/fixtures/make_distill_fixtures.py` -> `tests/fixtures/distill/`.

#[path = "../../nn/tests/common/mod.rs"]
mod common;

use common::{fill, hashed_uniform, max_rel_diff};
use kiln_engine::Tensor;
use kiln_nn::{create_model, load_safetensors, Model, ModelArgs};
use kiln_train::distill::{DistillConfig, DistillKind, Distillation, Teacher, TokenTarget};
use kiln_train::loss::CrossEntropy;
use std::collections::BTreeMap;

/// timm's float32 results differ from its float64 ones by at most 1.4e-6 in the losses and
/// 7.4e-6 in the gradients (`make_distill_fixtures.py --f64-spread`); kiln's float32 against
/// timm's float32 is bounded at about ten times that.
const LOSS_TOL: f32 = 2e-5;
const GRAD_TOL: f32 = 1e-4;

/// `name` for 10 classes (ViTs for the 64² input) with every tensor `fill`ed by `prefix` + name.
fn hashed(name: &str, prefix: &str) -> Box<dyn Model> {
    let args = ModelArgs {
        num_classes: 10,
        img_size: name.contains("_patch16_").then_some(64),
        ..Default::default()
    };
    let model = create_model(name, &args).unwrap();
    for t in model.named_tensors() {
        let name = format!("{prefix}{}", t.name);
        t.tensor.copy_(&fill(&name, t.tensor.shape())).unwrap();
    }
    model
}

fn fixture() -> BTreeMap<String, Tensor> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/distill/distill.safetensors"
    );
    load_safetensors(std::path::Path::new(path))
        .unwrap()
        .into_iter()
        .collect()
}

/// Runs one case of the fixture: `student` taught by the hashed vit_tiny teacher.
fn check(case: &str, student: &str, config: DistillConfig) {
    let want = fixture();
    let mut student = hashed(student, "");
    student.set_training(true);
    let teacher = Teacher::new(hashed("vit_tiny_patch16_224", "teacher."));
    let distill = Distillation::new(&config, teacher, student.as_ref()).unwrap();
    for t in distill.parameters() {
        t.tensor.copy_(&fill(&t.name, t.tensor.shape())).unwrap();
    }
    let x: Vec<f32> = hashed_uniform("input", 2 * 3 * 64 * 64)
        .iter()
        .map(|v| (v * 4.0 - 2.0) as f32)
        .collect();
    let x = Tensor::from_vec(x, &[2, 3, 64, 64]).unwrap();
    x.requires_grad_(true);
    let targets = Tensor::from_vec(vec![3i64, 8], &[2]).unwrap();
    let losses = distill
        .losses(student.as_ref(), &CrossEntropy::default(), &x, &targets)
        .unwrap();
    losses.loss.backward().unwrap();
    let scalar = |t: &Tensor| t.reshape(&[1]).unwrap();
    for (got, key) in [
        (&losses.task, "task_loss"),
        (&losses.distill, "kd_loss"),
        (&losses.loss, "loss"),
    ] {
        let diff = max_rel_diff(&scalar(got), &want[&format!("{case}.{key}")]);
        assert!(diff < LOSS_TOL, "{case} {key}: {diff}");
    }
    let mut grads = vec![(x.grad().unwrap(), format!("{case}.input_grad"))];
    for t in distill.parameters() {
        grads.push((t.tensor.grad().unwrap(), format!("{case}.{}.grad", t.name)));
    }
    assert_eq!(
        grads.len(),
        want.keys()
            .filter(|k| k.starts_with(&format!("{case}.")))
            .count()
            - 3,
        "{case}: the gradients timm stored"
    );
    for (got, key) in grads {
        let diff = max_rel_diff(&got, &want[&key]);
        assert!(diff < GRAD_TOL, "{key}: {diff}");
    }
}

#[test]
fn logit_distillation_matches_timm() {
    let config = DistillConfig::default()
        .task_loss_weight(0.3)
        .temperature(4.0);
    check("logit", "resnet18", config);
}

#[test]
fn feature_distillation_with_a_projection_matches_timm() {
    let config = DistillConfig::default()
        .kind(DistillKind::Feature)
        .distill_loss_weight(5.0);
    check("feature", "resnet18", config);
}

#[test]
fn soft_token_distillation_matches_timm() {
    let config = DistillConfig::default()
        .kind(DistillKind::Token)
        .task_loss_weight(0.5)
        .distill_loss_weight(2.0)
        .temperature(2.0);
    check("token_soft", "deit_tiny_distilled_patch16_224", config);
}

#[test]
fn hard_token_distillation_matches_timm() {
    let config = DistillConfig::default()
        .kind(DistillKind::Token)
        .token(TokenTarget::Hard);
    check("token_hard", "deit_tiny_distilled_patch16_224", config);
}

#[test]
fn token_distillation_needs_a_distilled_student_and_logits_the_same_classes() {
    let token = DistillConfig::default().kind(DistillKind::Token);
    let student = hashed("resnet18", "");
    let teacher = Teacher::new(hashed("resnet18", "teacher."));
    let err = Distillation::new(&token, teacher, student.as_ref())
        .err()
        .unwrap();
    assert!(err.to_string().contains("distillation token"), "{err}");
    let teacher = create_model("resnet18", &ModelArgs::default()).unwrap();
    let err = Distillation::new(
        &DistillConfig::default(),
        Teacher::new(teacher),
        student.as_ref(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("1000 classes"), "{err}");
    let bad_loss = DistillConfig::default().loss_type("mse");
    let teacher = Teacher::new(hashed("resnet18", "teacher."));
    let err = Distillation::new(&bad_loss, teacher, student.as_ref())
        .err()
        .unwrap();
    assert!(err.to_string().contains("kd_loss_type"), "{err}");
}
