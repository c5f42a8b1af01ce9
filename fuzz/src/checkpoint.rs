//! Checkpoints from other runs and tools: `Checkpoint::load` (safetensors header, dtypes, data
//! offsets, metadata), then what `--resume` restores from it: the model's state dict (strict and
//! not), the optimizer state of AdamW and SGD, and the trainer's JSON (position, loss meter,
//! cosine and plateau schedule state, a callback's state).
use kiln_nn::layers::{BatchNorm2d, Linear, Sequential};
use kiln_nn::{load_state_dict, Module};
use kiln_train::callbacks::EarlyStopping;
use kiln_train::checkpoint::Checkpoint;
use kiln_train::metrics::AverageMeter;
use kiln_train::optim::{create_optimizer, OptimizerConfig};
use kiln_train::sched::{create_scheduler, SchedulerConfig};
use kiln_train::trainer::{Callback, CallbackState, Position};
use serde_json::Value;

/// Reads `data` as a checkpoint file and restores everything it holds into a small model.
pub fn run(data: &[u8]) {
    let path = crate::scratch::write("fuzz.safetensors", data);
    let Ok(ck) = Checkpoint::load(&path) else {
        return;
    };
    let Ok(model) = model() else { return };
    for strict in [true, false] {
        let _ = load_state_dict(&model, &ck.model, strict);
    }
    for opt in ["adamw", "sgd"] {
        let args = OptimizerConfig {
            opt: opt.into(),
            ..OptimizerConfig::default()
        };
        if let Ok(mut o) = create_optimizer(&args, model.named_parameters()) {
            let _ = o.load_state_dict(&ck.optimizer);
        }
    }
    if let Some(trainer) = &ck.meta.trainer {
        restore_trainer_json(trainer);
    }
}

/// The model the seed checkpoints were written for: Linear(4, 3), then BatchNorm2d(3).
fn model() -> kiln_nn::Result<Sequential> {
    Ok(Sequential::new()
        .push(Linear::new(4, 3, true)?)
        .push(BatchNorm2d::new(3)?))
}

/// What `Run::restore` reads from the trainer's JSON.
fn restore_trainer_json(trainer: &Value) {
    let _ = serde_json::from_value::<Position>(trainer["position"].clone());
    let _ = serde_json::from_value::<AverageMeter>(trainer["train_loss"].clone());
    for sched in ["cosine", "plateau"] {
        if let Ok((mut s, _)) = create_scheduler(&sched_args(sched), 0.1, 2) {
            let _ = s.load_state(&trainer["scheduler"]);
            let _ = s.lr();
        }
    }
    let mut early = EarlyStopping::new(3);
    let _ = early.load_state(CallbackState {
        tensor_prefix: String::new(),
        tensors: Default::default(),
        meta: trainer["callbacks"]["early_stopping"].clone(),
    });
}

/// timm's schedule flags with `--sched name`, 10 epochs.
fn sched_args(name: &str) -> SchedulerConfig {
    SchedulerConfig::new(name, 10).warmup_epochs(0)
}
