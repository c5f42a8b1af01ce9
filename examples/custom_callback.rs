//! Training without the CLI: a `Trainer` assembled from parts, with a callback of its own that
//! records the loss of every update, prints a line every few updates and stops the run after a
//! set number of updates. Trains resnet18 on the Fashion-MNIST subset shipped in data/.
//!
//! ```sh
//! cargo run --release --example custom_callback -- [UPDATES]
//! ```

use kiln_engine::Device;
use kiln_nn::{create_model, ModelArgs};
use kiln_train::callbacks::LogLines;
use kiln_train::cli::TrainArgs;
use kiln_train::data::{Dataset, IdxDataset};
use kiln_train::loader::{DataConfig, Layout};
use kiln_train::loss::CrossEntropy;
use kiln_train::optim::{create_optimizer_for_model, OptimArgs};
use kiln_train::sched::{create_scheduler, SchedArgs};
use kiln_train::trainer::{
    BatchStages, Callback, Context, EvalOptions, Evaluator, TrainConfig, Trainer, TrainerParts,
};
use std::sync::{Arc, Mutex};

/// The callback: every update's loss (shared with the caller), a line every `every` updates, a
/// stop after `max_updates`.
struct LossCurve {
    every: usize,
    max_updates: usize,
    losses: Arc<Mutex<Vec<f64>>>,
}

impl Callback for LossCurve {
    fn name(&self) -> &str {
        "loss_curve"
    }

    fn batch_end(&mut self, ctx: &mut Context) -> kiln_train::Result<()> {
        let s = ctx.state;
        if !s.batch.updated {
            return Ok(());
        }
        self.losses.lock().unwrap().push(s.batch.loss);
        let n = s.position.num_updates;
        if n.is_multiple_of(self.every) {
            println!("update {n}: loss {:.4} at lr {:.4}", s.batch.loss, s.lr);
        }
        if n >= self.max_updates {
            ctx.request_stop(format!("{n} updates done"));
        }
        Ok(())
    }
}

/// Trains for `max_updates` updates (or one epoch) and returns the losses the callback saw.
fn run(max_updates: usize) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist");
    let train: Arc<dyn Dataset> = Arc::new(IdxDataset::open(&root, "train", 1)?);
    let val: Arc<dyn Dataset> = Arc::new(IdxDataset::open(&root, "t10k", 1)?);
    let model = create_model(
        "resnet18",
        &ModelArgs {
            num_classes: 10,
            in_chans: 1,
            ..Default::default()
        },
    )?;
    let cfg = DataConfig {
        img_size: 28,
        in_chans: 1,
        batch_size: 64,
        workers: 2,
        crop_pct: Some(1.0),
        ..DataConfig::default()
    };
    let stages = BatchStages {
        normalize: cfg.normalize(Layout::Nchw),
        erasing: None,
        mixup: None,
        seed: cfg.seed,
        device: Device::Cpu,
    };
    let train_loader = cfg.small_image_train_loader(train, 0, 1)?;
    // timm's flags and defaults drive the optimizer and the schedule: Nesterov SGD, one epoch of
    // cosine decay, no warmup.
    let flags = TrainArgs {
        epochs: 1,
        warmup_epochs: 0,
        weight_decay: 5e-4,
        ..TrainArgs::default()
    };
    let lr = 0.05;
    let optimizer =
        create_optimizer_for_model(&OptimArgs::from_train_args(&flags, lr), model.as_ref())?;
    let (scheduler, _) = create_scheduler(&SchedArgs::from(&flags), lr, train_loader.len())?;
    let mut trainer = Trainer::new(TrainerParts {
        model,
        arch: "resnet18".into(),
        optimizer,
        scheduler,
        loss: Box::new(CrossEntropy::default()),
        train_loader,
        evaluator: Some(Evaluator {
            loader: cfg.eval_loader(val, 256, 0, 1)?,
            stages: stages.clone(),
            options: EvalOptions {
                log_interval: 100,
                ..EvalOptions::default()
            },
        }),
        stages,
        config: TrainConfig::default(),
    })?;
    trainer.add_callback(Box::new(LogLines::new(50)));
    let losses = Arc::new(Mutex::new(Vec::new()));
    trainer.add_callback(Box::new(LossCurve {
        every: 5,
        max_updates,
        losses: losses.clone(),
    }));
    if let Some(reason) = trainer.fit()? {
        println!("stopped: {reason}");
    }
    let losses = losses.lock().unwrap().clone();
    Ok(losses)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let updates = std::env::args().nth(1).map_or(Ok(40), |s| s.parse())?;
    let losses = run(updates)?;
    println!(
        "{} updates, loss {:.4} -> {:.4}",
        losses.len(),
        losses[0],
        losses[losses.len() - 1]
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_callback_sees_every_update_and_stops_the_run() {
        let losses = super::run(20).unwrap();
        assert_eq!(losses.len(), 20, "the stop lands after the 20th update");
        let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
        assert!(
            mean(&losses[15..]) < mean(&losses[..5]) - 0.2,
            "the loss falls: {losses:?}"
        );
    }
}
