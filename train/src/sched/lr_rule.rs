//! timm's learning-rate rule (train.py): `--lr` when given, else `--lr-base` scaled by the global
//! batch over `--lr-base-size`.

#[cfg(feature = "clap")]
use crate::flags::finite_f64;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The lr flags of timm's train.py; [`LrRule::resolve`] turns them into the run's one lr.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(default)]
pub struct LrRule {
    /// Learning rate (default, or 0: lr_base scaled by global batch / lr_base_size).
    #[cfg_attr(feature = "clap", arg(long, value_parser = finite_f64))]
    pub lr: Option<f64>,
    /// Base learning rate for batch size lr_base_size.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.1, value_parser = finite_f64))]
    pub lr_base: f64,
    /// Batch size lr_base refers to.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 256))]
    pub lr_base_size: usize,
    /// Scaling of lr_base: linear or sqrt (default: sqrt for adaptive optimizers, else linear).
    #[cfg_attr(feature = "clap", arg(long, default_value = ""))]
    pub lr_base_scale: String,
}

impl Default for LrRule {
    /// timm's train.py: lr_base 0.1 for a global batch of 256, scaled as the optimizer suits.
    fn default() -> Self {
        LrRule {
            lr: None,
            lr_base: 0.1,
            lr_base_size: 256,
            lr_base_scale: String::new(),
        }
    }
}

impl LrRule {
    /// Refuses a negative `--lr`, and an `--lr-base-size` of 0 where the lr comes from it.
    pub fn check(&self) -> Result<()> {
        if self.lr.is_some_and(|lr| lr < 0.0) {
            return Err(Error::flag(
                "--lr",
                "must be a positive number (0, as when not given: from --lr-base)",
            ));
        }
        if self.lr_base_size == 0 && self.given().is_none() {
            return Err(Error::flag("--lr-base-size", "must be at least 1"));
        }
        Ok(())
    }

    /// `--lr` when given and not 0.
    pub fn given(&self) -> Option<f64> {
        self.lr.filter(|&lr| lr != 0.0)
    }

    /// The run's learning rate: [`LrRule::given`], else `lr_base` scaled by `global_batch` (the
    /// batch reference × ranks × accumulation steps) / `lr_base_size`: by its square root when
    /// `lr_base_scale` is `sqrt`, or is empty and the optimizer `opt`'s name (in any case)
    /// contains `ada` or `lamb`; linearly otherwise.
    pub fn resolve(&self, opt: &str, global_batch: f64) -> f64 {
        if let Some(lr) = self.given() {
            return lr;
        }
        let ratio = global_batch / self.lr_base_size as f64;
        let opt = opt.to_lowercase();
        let scale = match self.lr_base_scale.as_str() {
            "" if ["ada", "lamb"].iter().any(|o| opt.contains(o)) => "sqrt",
            "" => "linear",
            given => given,
        };
        if scale == "sqrt" {
            self.lr_base * ratio.sqrt()
        } else {
            self.lr_base * ratio
        }
    }
}
