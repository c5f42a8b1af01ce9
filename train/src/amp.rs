//! Mixed-precision training: the autocast dtype from `--amp-dtype`, and PyTorch's GradScaler
//! (dynamic loss scaling for f16: skip steps whose gradients overflow and halve the scale; double
//! it after 2000 clean steps).

use crate::optim::{densify_grads, Optimizer};
use crate::{Error, Result};
use kiln_engine::{unscale_grads_, DType, Tensor};

/// The autocast dtype for `--amp-dtype` (timm's names).
pub fn amp_dtype(name: &str) -> Result<DType> {
    match name {
        "float16" | "fp16" | "half" => Ok(DType::F16),
        "bfloat16" | "bf16" => Ok(DType::BF16),
        other => Err(Error::Flag {
            flag: "--amp-dtype".into(),
            msg: format!("'{other}' is not float16 or bfloat16"),
        }),
    }
}

/// The model dtype for `--model-dtype` (timm's pure low-precision training: the model cast with
/// `Module::to_dtype`, AMP off); `None` for float32 or no flag. With `amp` only float32 is
/// allowed, as timm's scripts assert: AMP keeps f32 weights and computes in `--amp-dtype`.
pub fn model_dtype(name: Option<&str>, amp: bool) -> Result<Option<DType>> {
    let flag_error = |msg: String| Error::Flag {
        flag: "--model-dtype".into(),
        msg,
    };
    let dtype = match name.unwrap_or("float32") {
        "float32" => None,
        "float16" => Some(DType::F16),
        "bfloat16" => Some(DType::BF16),
        other => {
            return Err(flag_error(format!(
                "'{other}' is not one of float32, float16, bfloat16"
            )))
        }
    };
    if dtype.is_some() && amp {
        return Err(flag_error(
            "float32 model dtype must be used with --amp (AMP keeps f32 weights and computes in --amp-dtype); drop one of the two".into(),
        ));
    }
    Ok(dtype)
}

/// Dynamic loss scaling, as `torch.amp.GradScaler` with its defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct GradScaler {
    /// The current scale.
    pub scale: f64,
    /// Clean steps since the last change of scale.
    pub growth_tracker: u32,
    /// Factor applied after `growth_interval` clean steps.
    pub growth_factor: f64,
    /// Factor applied after an overflow.
    pub backoff_factor: f64,
    /// Clean steps before the scale grows.
    pub growth_interval: u32,
}

impl Default for GradScaler {
    fn default() -> Self {
        GradScaler {
            scale: 65536.0,
            growth_tracker: 0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
        }
    }
}

impl GradScaler {
    /// loss · scale, what backward runs from.
    pub fn scale_loss(&self, loss: &Tensor) -> Result<Tensor> {
        Ok(loss.mul_scalar(self.scale)?)
    }

    /// Divides every gradient by the scale in one fused pass (gradients are made dense f32 in
    /// their parameter's layout first); returns whether any was inf or NaN.
    pub fn unscale(&self, optim: &dyn Optimizer) -> Result<bool> {
        let grads = densify_grads(optim)?;
        Ok(unscale_grads_(&grads, (1.0 / self.scale) as f32)?)
    }

    /// Backs off after an overflow, grows after `growth_interval` clean steps.
    pub fn update(&mut self, overflow: bool) {
        if overflow {
            self.scale *= self.backoff_factor;
            self.growth_tracker = 0;
        } else {
            self.growth_tracker += 1;
            if self.growth_tracker == self.growth_interval {
                self.scale *= self.growth_factor;
                self.growth_tracker = 0;
            }
        }
    }
}
