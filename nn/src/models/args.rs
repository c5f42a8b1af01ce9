//! `ModelArgs`: what `create_model` passes every family's constructor (timm's keyword
//! arguments of `create_model`, with timm's names and defaults).

use crate::pretrained::PretrainedSource;

/// Arguments of `create_model` (timm's names and defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelArgs {
    /// Classifier classes; 0 removes the head.
    pub num_classes: usize,
    /// Input channels.
    pub in_chans: usize,
    /// Global pool type: avg, max, avgmax, catavgmax, token (ViT), or '' (no pooling, needs
    /// num_classes 0); `None` keeps the model's default (avg; token for ViT).
    pub global_pool: Option<String>,
    /// Input size, for models whose parameters depend on it (ViT's position embedding); `None`
    /// keeps the model's default (224).
    pub img_size: Option<usize>,
    /// Dropout before the classifier.
    pub drop_rate: f64,
    /// Stochastic-depth rate of the last block (linearly increasing from 0); `None` keeps the
    /// model's default, as timm's `create_model` does for an unset `--drop-path` (0.1 for Swin,
    /// 0 for the others).
    pub drop_path_rate: Option<f64>,
    /// Zero-init the last norm (BN or GroupNorm) of each residual block.
    pub zero_init_last: bool,
    /// Weights to start from, adapted as timm's `load_pretrained` does (timm's `pretrained=True`
    /// is [`crate::ModelSpec::pretrained_source`]).
    pub pretrained: Option<PretrainedSource>,
    /// Model-specific constructor arguments (timm's `**kwargs`: `depth`, `window_size`, ...) as
    /// key and Python literal; each family takes its own ([`crate::KwargValue`]).
    pub kwargs: Vec<(String, String)>,
}

impl Default for ModelArgs {
    fn default() -> Self {
        ModelArgs {
            num_classes: 1000,
            in_chans: 3,
            global_pool: None,
            img_size: None,
            drop_rate: 0.0,
            drop_path_rate: None,
            zero_init_last: true,
            pretrained: None,
            kwargs: Vec::new(),
        }
    }
}

impl ModelArgs {
    /// The stochastic-depth rate asked for, else the model's `default`.
    pub fn drop_path_or(&self, default: f64) -> f64 {
        self.drop_path_rate.unwrap_or(default)
    }
}
