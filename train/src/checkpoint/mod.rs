//! Checkpoints as safetensors: the model's state dict (`state_dict.*`), the optimizer state
//! (`optimizer.*`), callbacks' tensors under their own prefix (`state_dict_ema.*`), and as string
//! metadata the epoch, metric, RNG position, loss scaler and the trainer's resume state (JSON).
//! Written to a temporary name, synced and renamed, so a crash leaves the previous file whole.
//!
//! Read back are also the files `torch.save` wrote: timm's checkpoints (`.pth.tar`: model, EMA,
//! torch's optimizer state, epoch, loss scaler; `timm.rs`) and plain state dicts. torch's
//! optimizer state maps onto kiln's where the layouts agree (`torch_optim.rs`).

mod load;
mod record;
mod timm;
mod torch_optim;

pub use record::{
    copy_atomic, is_checkpoint_name, newest_checkpoint, Checkpoint, CheckpointMeta,
    MODEL_CONFIG_KEY,
};
pub use torch_optim::torch_optimizer_state;
