//! Knowledge distillation as timm's train.py does it (`--kd-model-name`; timm/task/distillation.py
//! and token_distillation.py): a frozen teacher in eval mode, run without a tape on the student's
//! batch re-normalized to the teacher's own mean/std, and one of three losses added to the task
//! loss with timm's weighting rules:
//!
//! - **logit**: KL divergence between the temperature-softened distributions, times T²;
//! - **feature**: MSE between the pooled pre-logits features, the student's projected to the
//!   teacher's width by a trainable Linear when they differ (the optimizer trains it too);
//! - **token**: a distilled DeiT's distillation head against the teacher: soft (KL with T, times
//!   T²) or hard (cross-entropy on the teacher's argmax); its class head takes the task loss.
//!
//! Validation uses the student alone, as timm's `get_eval_model` does (a distilled DeiT averages
//! its two heads in eval). Build a [`Distillation`] from a [`DistillConfig`], the teacher and the
//! student, and hand it to [`TrainerBuilder::distillation`](crate::trainer::TrainerBuilder::distillation).

mod config;
mod feature;
mod logit;
mod task;
mod teacher;
mod token;
mod trainable;
mod weights;

pub use config::{DistillConfig, DistillKind, TokenTarget};
pub use feature::{mse_loss, pre_logits_dim, FeatureProjection};
pub use logit::kl_distill_loss;
pub use task::{DistillLosses, Distillation};
pub use teacher::Teacher;
pub use token::token_distill_loss;
pub use trainable::Trainable;
pub use weights::LossWeights;
