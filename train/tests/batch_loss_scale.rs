//! timm's `--variable-batch-loss-scale` under scheduled sizes: each batch's loss times (batch /
//! reference), or its square root, before backward. A factor of exactly 1/2 scales every gradient
//! by exactly 1/2, so SGD with momentum at lr ends on the bits of an unscaled run at lr / 2.

mod common;

use common::Patterns;
use kiln_nn::{create_model, ModelArgs};
use kiln_train::loader::{DataConfig, SizeScheduleConfig};
use kiln_train::optim::OptimizerConfig;
use kiln_train::sched::SchedulerConfig;
use kiln_train::trainer::{BatchLossScale, TrainConfig, Trainer};
use std::sync::Arc;

/// The model's tensors after one epoch of 3 batches of 8 at 16 pixels (scheduled, one size).
fn train(lr: f64, scale: Option<BatchLossScale>) -> Vec<(String, Vec<u32>)> {
    let args = ModelArgs {
        num_classes: 4,
        ..ModelArgs::default()
    };
    kiln_engine::manual_seed(0); // the same initial weights every run
    let model = create_model("resnet18", &args).unwrap();
    let data = DataConfig {
        batch_size: 8,
        workers: 0,
        sizes: SizeScheduleConfig::default().train_img_sizes(vec![16]),
        ..DataConfig::default()
    };
    let config = TrainConfig {
        variable_batch_loss_scale: scale,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::builder(model, Arc::new(Patterns { len: 24, side: 20 }))
        .data(data)
        .optimizer(OptimizerConfig::new("sgd").lr(lr).weight_decay(0.0))
        .scheduler(SchedulerConfig::new("step", 1).warmup_epochs(0))
        .config(config)
        .build()
        .unwrap();
    assert_eq!(trainer.state().batches_per_epoch, 3);
    trainer.fit().unwrap();
    (trainer.model().named_tensors().iter())
        .map(|t| {
            let values = t.tensor.to_vec_f32().unwrap();
            (t.name.clone(), values.iter().map(|v| v.to_bits()).collect())
        })
        .collect()
}

#[test]
fn a_half_scaled_loss_trains_as_half_the_lr() {
    let halved = train(0.05, None);
    let linear = BatchLossScale {
        reference: 16.0,
        sqrt: false,
    };
    let sqrt = BatchLossScale {
        reference: 32.0,
        sqrt: true,
    };
    assert_eq!((linear.factor(8), sqrt.factor(8)), (0.5, 0.5));
    assert!(train(0.1, Some(linear)) == halved, "linear");
    assert!(train(0.1, Some(sqrt)) == halved, "sqrt");
    assert!(train(0.1, None) != halved, "the lr matters");
}
