//! What a distillation run is configured by: timm's `--kd-*` flags and the two loss weights.

use crate::setters::setters;
use crate::{Error, Result};

/// What the student learns from the teacher (timm's `--kd-distill-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DistillKind {
    /// The teacher's logits (KL with temperature).
    #[default]
    Logit,
    /// The teacher's pooled pre-logits features (MSE).
    Feature,
    /// A distillation token's head against the teacher's logits (distilled DeiTs).
    Token,
}

impl DistillKind {
    /// timm's name: `logit`, `feature` or `token`.
    pub fn parse(name: &str) -> Result<DistillKind> {
        match name {
            "logit" => Ok(DistillKind::Logit),
            "feature" => Ok(DistillKind::Feature),
            "token" => Ok(DistillKind::Token),
            other => Err(Error::config(
                "kd_distill_type",
                other,
                "logit, feature or token",
            )),
        }
    }
}

/// What the distillation head of token distillation matches (timm's `--kd-token-distill-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenTarget {
    /// The teacher's temperature-softened distribution (KL, times T²).
    #[default]
    Soft,
    /// The teacher's argmax class (cross-entropy).
    Hard,
}

impl TokenTarget {
    /// timm's name: `soft` or `hard`.
    pub fn parse(name: &str) -> Result<TokenTarget> {
        match name {
            "soft" => Ok(TokenTarget::Soft),
            "hard" => Ok(TokenTarget::Hard),
            other => Err(Error::config(
                "kd_token_distill_type",
                other,
                "soft or hard",
            )),
        }
    }
}

/// A distillation run's settings, at timm's train.py defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct DistillConfig {
    /// Logit, feature or token distillation.
    pub kind: DistillKind,
    /// The logit loss (timm accepts `kl` only).
    pub loss_type: String,
    /// Softmax temperature of the logit and soft token losses.
    pub temperature: f64,
    /// Weight of the distillation loss (see [`LossWeights`](super::LossWeights)).
    pub distill_loss_weight: Option<f64>,
    /// Weight of the task loss (see [`LossWeights`](super::LossWeights)).
    pub task_loss_weight: Option<f64>,
    /// The student's pre-logits width, detected when unset (feature distillation).
    pub student_feature_dim: Option<usize>,
    /// The teacher's pre-logits width, detected when unset (feature distillation).
    pub teacher_feature_dim: Option<usize>,
    /// Soft or hard token distillation.
    pub token: TokenTarget,
}

impl Default for DistillConfig {
    fn default() -> Self {
        DistillConfig {
            kind: DistillKind::Logit,
            loss_type: "kl".into(),
            temperature: 4.0,
            distill_loss_weight: None,
            task_loss_weight: None,
            student_feature_dim: None,
            teacher_feature_dim: None,
            token: TokenTarget::Soft,
        }
    }
}

setters!(DistillConfig {
    kind: DistillKind,
    into loss_type: String,
    temperature: f64,
    distill_loss_weight?: f64,
    task_loss_weight?: f64,
    student_feature_dim?: usize,
    teacher_feature_dim?: usize,
    token: TokenTarget,
});

impl DistillConfig {
    /// Refuses what timm refuses: a logit loss other than `kl`, and a temperature that is not a
    /// positive number.
    pub fn check(&self) -> Result<()> {
        if self.kind == DistillKind::Logit && self.loss_type != "kl" {
            return Err(Error::config("kd_loss_type", &self.loss_type, "kl"));
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(Error::config(
                "kd_temperature",
                self.temperature.to_string(),
                "a positive number",
            ));
        }
        Ok(())
    }
}
