//! Network slimming in the trainer (kiln's `--slim-lambda`): one plain-SGD step with λ ends where
//! the step without it does, less lr·λ·sign(γ₀) on every BatchNorm weight (zero where γ₀ is 0, as
//! on a block's last BatchNorm, which timm's ResNet zero-initializes), every other tensor alike.

mod common;

use common::Patterns;
use kiln_nn::{create_model, ModelArgs};
use kiln_train::loader::DataConfig;
use kiln_train::optim::OptimizerConfig;
use kiln_train::sched::SchedulerConfig;
use kiln_train::trainer::{TrainConfig, Trainer};
use std::collections::BTreeMap;
use std::sync::Arc;

const LR: f64 = 0.1;

/// Every model tensor before and after one SGD step (no momentum or decay) on one batch of 8.
fn one_step(slim_lambda: Option<f64>) -> [BTreeMap<String, Vec<f32>>; 2] {
    let args = ModelArgs {
        num_classes: 4,
        ..ModelArgs::default()
    };
    kiln_engine::manual_seed(0); // the same initial weights every run
    let model = create_model("resnet18", &args).unwrap();
    let tensors = |m: &dyn kiln_nn::Model| {
        (m.named_tensors().into_iter())
            .map(|t| (t.name, t.tensor.to_vec_f32().unwrap()))
            .collect()
    };
    let before = tensors(model.as_ref());
    let data = DataConfig {
        batch_size: 8,
        workers: 0,
        img_size: 16,
        ..DataConfig::default()
    };
    let config = TrainConfig {
        slim_lambda,
        ..TrainConfig::default()
    };
    let sgd = OptimizerConfig::new("sgd")
        .lr(LR)
        .momentum(0.0)
        .weight_decay(0.0);
    let mut trainer = Trainer::builder(model, Arc::new(Patterns { len: 8, side: 16 }))
        .data(data)
        .optimizer(sgd)
        .scheduler(SchedulerConfig::new("step", 1).warmup_epochs(0))
        .config(config)
        .build()
        .unwrap();
    assert_eq!(trainer.state().batches_per_epoch, 1);
    trainer.fit().unwrap();
    [before, tensors(trainer.model())]
}

#[test]
fn one_step_with_slimming_is_the_plain_step_less_lr_lambda_sign_gamma() {
    let lambda = 1e-2;
    let [init, plain] = one_step(None);
    let [_, slim] = one_step(Some(lambda));
    let mut gammas = 0;
    for (name, p) in &plain {
        let s = &slim[name];
        let module = name.strip_suffix(".weight");
        let is_gamma = module.is_some_and(|m| plain.contains_key(&format!("{m}.running_mean")));
        if !is_gamma {
            assert!(
                s == p,
                "{name} is not a BatchNorm weight: unchanged by slimming"
            );
            continue;
        }
        gammas += 1;
        for ((g0, p), s) in init[name].iter().zip(p).zip(s) {
            let sign = if *g0 == 0.0 { 0.0 } else { g0.signum() };
            let want = p - (LR * lambda) as f32 * sign;
            // One f32 rounding of the sum and one of the update.
            let tol = 2.0 * f32::EPSILON * (p.abs() + (LR * lambda) as f32);
            assert!((s - want).abs() <= tol, "{name}: {s} vs {want} (γ₀ {g0})");
        }
    }
    assert!(gammas >= 20, "resnet18's BatchNorm weights: {gammas}");
}
