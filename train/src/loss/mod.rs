//! Training losses behind one trait, so the Trainer runs whichever timm would select.

mod binary_cross_entropy;
mod criterion;
mod factory;
mod jsd;
mod label_smoothing;
mod soft_target;

pub use binary_cross_entropy::{BinaryCrossEntropy, Reduction};
pub use criterion::{CrossEntropy, Loss};
pub use factory::{create_loss, create_multi_label_loss, create_val_loss, LossConfig};
pub use jsd::JsdCrossEntropy;
pub use label_smoothing::LabelSmoothingCrossEntropy;
pub use soft_target::SoftTargetCrossEntropy;
