//! Model EMA: an exponential moving average of the model's weights and buffers, updated after
//! every optimizer update and validated after the model each epoch (timm's ModelEmaV2/V3).

use crate::trainer::{Callback, CallbackState, Context};
use crate::Result;
use kiln_engine::{ema_update_, no_grad, DType, Tensor};
use kiln_nn::prune::PrunePlan;
use kiln_nn::{load_state_dict, Model};
use std::collections::BTreeMap;

/// How the EMA's decay depends on the update count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EmaDecay {
    /// The same decay at every update (timm's ModelEmaV2).
    Constant(f64),
    /// timm's ModelEmaV3 with a step: the first update copies the model, later ones use `decay`,
    /// or with `warmup` `1 - (1 + step)^(-2/3)` capped at `decay`.
    Scheduled {
        /// The target decay.
        decay: f64,
        /// Ramp the decay up over the first updates.
        warmup: bool,
    },
}

impl EmaDecay {
    /// The decay of update number `num_updates` (1 for the first update).
    pub fn at(self, num_updates: usize) -> f64 {
        match self {
            EmaDecay::Constant(d) => d,
            EmaDecay::Scheduled { decay, warmup } => {
                let step = num_updates.saturating_sub(1);
                match (step, warmup) {
                    (0, _) => 0.0,
                    (_, false) => decay,
                    (_, true) => (1.0 - (1.0 + step as f64).powf(-2.0 / 3.0)).clamp(0.0, decay),
                }
            }
        }
    }
}

/// Keeps an EMA copy of the model (`--model-ema`). Its tensors are checkpointed as
/// `state_dict_ema.*`; its validation ranks the epoch when `validate` is on.
pub struct ModelEma {
    ema: Box<dyn Model>,
    decay: EmaDecay,
    validate: bool,
    initialized: bool,
}

impl ModelEma {
    /// An EMA kept in `ema`, a second instance of the trained model's architecture on the device
    /// the EMA should live on (the CPU for timm's `--model-ema-force-cpu`, which also turns
    /// `validate` off, as in timm). Its weights are copied from the model when training begins,
    /// unless a resumed checkpoint restores them.
    pub fn new(mut ema: Box<dyn Model>, decay: EmaDecay, validate: bool) -> ModelEma {
        ema.set_training(false);
        ModelEma {
            ema,
            decay,
            validate,
            initialized: false,
        }
    }

    /// The EMA model.
    pub fn model(&self) -> &dyn Model {
        self.ema.as_ref()
    }

    /// One EMA step towards `model` at `decay`.
    pub fn update(&self, model: &dyn Model, decay: f64) -> Result<()> {
        let ema: Vec<Tensor> = self
            .ema
            .named_tensors()
            .into_iter()
            .map(|t| t.tensor)
            .collect();
        let model: Vec<Tensor> = model
            .named_tensors()
            .into_iter()
            .map(|t| t.tensor)
            .collect();
        ema_step(&ema, &model, decay)
    }
}

/// `ema ← decay·ema + (1 − decay)·model` for every floating-point pair (f32 in one fused
/// multi-tensor pass), and integer buffers (BN's batch counts) copied: timm's ModelEmaV3 update.
/// `model` tensors on another device are read over first (a CPU-side EMA).
pub fn ema_step(ema: &[Tensor], model: &[Tensor], decay: f64) -> Result<()> {
    let _guard = no_grad();
    let (mut ema_f32, mut model_f32) = (Vec::new(), Vec::new());
    for (e, m) in ema.iter().zip(model) {
        let m = on_device_of(m, e)?;
        if e.dtype() == DType::F32 {
            ema_f32.push(e.clone());
            model_f32.push(m.to_dtype(DType::F32)?.contiguous()?);
        } else if e.dtype().is_float() {
            let mixed = e.mul_scalar(decay)?.add(&m.mul_scalar(1.0 - decay)?)?;
            e.copy_(&mixed)?;
        } else {
            e.copy_(&m)?;
        }
    }
    Ok(ema_update_(&ema_f32, &model_f32, decay as f32)?)
}

/// `t` on the device of `like` (the model's tensors, read onto a CPU-side EMA).
fn on_device_of(t: &Tensor, like: &Tensor) -> Result<Tensor> {
    Ok(if like.device() == t.device() {
        t.clone()
    } else {
        t.to_device(like.device())?
    })
}

impl Callback for ModelEma {
    fn name(&self) -> &str {
        "model_ema"
    }

    fn train_begin(&mut self, ctx: &mut Context) -> Result<()> {
        if !self.initialized {
            self.update(ctx.model, 0.0)?;
            self.initialized = true;
        }
        Ok(())
    }

    fn batch_end(&mut self, ctx: &mut Context) -> Result<()> {
        if ctx.state.batch.updated {
            let decay = self.decay.at(ctx.state.position.num_updates);
            self.update(ctx.model, decay)?;
        }
        Ok(())
    }

    fn validation_end(&mut self, ctx: &mut Context) -> Result<()> {
        if self.validate {
            if let Some(stats) = ctx.validate(self.ema.as_mut(), " (EMA)")? {
                self.ema.set_training(false);
                ctx.report_ema_eval(stats);
            }
        }
        Ok(())
    }

    fn model_pruned(&mut self, plan: &PrunePlan) -> Result<()> {
        let format = self.ema.weights_memory_format();
        plan.apply(self.ema.as_mut())?;
        self.ema.set_memory_format(format)?;
        Ok(())
    }

    fn state(&self) -> Option<CallbackState> {
        let tensors: BTreeMap<String, Tensor> = self
            .ema
            .named_tensors()
            .into_iter()
            .map(|t| (t.name, t.tensor))
            .collect();
        Some(CallbackState {
            tensor_prefix: "state_dict_ema".into(),
            tensors,
            meta: serde_json::Value::Null,
        })
    }

    fn load_state(&mut self, state: CallbackState) -> Result<()> {
        if !state.tensors.is_empty() {
            load_state_dict(self.ema.as_ref(), &state.tensors, true)?;
            self.initialized = true;
        }
        Ok(())
    }
}
