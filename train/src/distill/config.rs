//! What a distillation run is configured by: timm's `--kd-*` flags and the two loss weights.

#[cfg(feature = "clap")]
use crate::flags::finite_f64;
use crate::flags::{first_outside, Range};
use crate::setters::setters;
use crate::{Error, Result};
use serde::Serialize;

/// What the student learns from the teacher (timm's `--kd-distill-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
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

/// A distillation run's settings, at timm's train.py defaults: the "Knowledge distillation"
/// flags after `--kd-model-name` (the `kiln` command flattens this struct, so each is declared
/// here once; timm reads them only with a teacher).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct DistillConfig {
    /// Distillation type: logit, feature or token.
    #[cfg_attr(
        feature = "clap",
        arg(id = "kd_distill_type", long = "kd-distill-type", value_enum, default_value_t = DistillKind::Logit)
    )]
    #[serde(rename = "kd_distill_type")]
    pub kind: DistillKind,
    /// Loss of logit distillation (timm accepts kl only).
    #[cfg_attr(
        feature = "clap",
        arg(id = "kd_loss_type", long = "kd-loss-type", default_value = "kl")
    )]
    #[serde(rename = "kd_loss_type")]
    pub loss_type: String,
    /// Weight of the distillation loss (see [`LossWeights`](super::LossWeights)).
    #[cfg_attr(feature = "clap", arg(long, value_parser = finite_f64))]
    pub distill_loss_weight: Option<f64>,
    /// Weight of the task (classification) loss (see [`LossWeights`](super::LossWeights)).
    #[cfg_attr(feature = "clap", arg(long, value_parser = finite_f64))]
    pub task_loss_weight: Option<f64>,
    /// Softmax temperature of the logit and soft token losses.
    #[cfg_attr(
        feature = "clap",
        arg(id = "kd_temperature", long = "kd-temperature", default_value_t = 4.0, value_parser = finite_f64)
    )]
    #[serde(rename = "kd_temperature")]
    pub temperature: f64,
    /// The student's pre-logits width, detected when unset (feature distillation).
    #[cfg_attr(
        feature = "clap",
        arg(id = "kd_student_feature_dim", long = "kd-student-feature-dim")
    )]
    #[serde(rename = "kd_student_feature_dim")]
    pub student_feature_dim: Option<usize>,
    /// The teacher's pre-logits width, detected when unset (feature distillation).
    #[cfg_attr(
        feature = "clap",
        arg(id = "kd_teacher_feature_dim", long = "kd-teacher-feature-dim")
    )]
    #[serde(rename = "kd_teacher_feature_dim")]
    pub teacher_feature_dim: Option<usize>,
    /// Token distillation type: soft or hard.
    #[cfg_attr(
        feature = "clap",
        arg(id = "kd_token_distill_type", long = "kd-token-distill-type", value_enum, default_value_t = TokenTarget::Soft)
    )]
    #[serde(rename = "kd_token_distill_type")]
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
    /// Refuses the first loss weight or temperature outside its flag's range.
    pub fn check_ranges(&self) -> Result<()> {
        use Range::*;
        first_outside([
            ("--kd-temperature", vec![self.temperature], Positive),
            (
                "--distill-loss-weight",
                self.distill_loss_weight.into_iter().collect(),
                NonNegative,
            ),
            (
                "--task-loss-weight",
                self.task_loss_weight.into_iter().collect(),
                NonNegative,
            ),
        ])
    }

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
