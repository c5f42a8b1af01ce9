//! What [`crate::Model`]'s head methods ask of a model's head: a [`super::ClassifierHead`]
//! (pooled feature maps) or a [`super::TokenHead`] (ViT, DeiT, EVA and Swin tokens).

use super::Linear;
use crate::{Module, Result};
use kiln_engine::Tensor;

/// timm's head surface: `forward_head`, `get_classifier`, `reset_classifier`, `num_classes`,
/// `num_features`.
pub trait Head {
    /// timm's `forward_head`: pool, norm, dropout and classifier; `pre_logits` stops before the
    /// classifier.
    fn forward_head(&self, x: &Tensor, pre_logits: bool) -> Result<Tensor>;
    /// The classifier, if there is one.
    fn classifier(&self) -> Option<&Linear>;
    /// timm's `reset_classifier`: `global_pool` if given, then a new classifier for
    /// `num_classes` (none for 0). `model` names the model in errors.
    fn reset(&mut self, num_classes: usize, global_pool: Option<&str>, model: &str) -> Result<()>;
    /// Classes of the classifier (0 without one).
    fn num_classes(&self) -> usize {
        self.classifier().map_or(0, Linear::out_features)
    }
    /// Channels of the features the head reads (timm's `num_features`).
    fn num_features(&self) -> usize;
    /// Width of the pre-logits features the classifier reads (timm's `head_hidden_size`).
    fn hidden_size(&self) -> usize {
        self.num_features()
    }
}

/// The tail of a head's forward: pooled features `x` through dropout `rate` (when `training`),
/// then through `fc` unless `pre_logits` or there is none.
pub(super) fn classify(
    x: &Tensor,
    rate: f64,
    training: bool,
    fc: Option<&Linear>,
    pre_logits: bool,
) -> Result<Tensor> {
    let x = x.dropout(rate, training)?;
    match (fc, pre_logits) {
        (Some(fc), false) => fc.forward(&x),
        _ => Ok(x),
    }
}
