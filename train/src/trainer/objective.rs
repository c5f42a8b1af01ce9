//! What one training batch's loss is: the criterion on the model's logits (timm's
//! `ClassificationTask`), or a distillation's weighted task and distillation losses.

use crate::distill::Distillation;
use crate::loss::Loss;
use crate::Result;
use kiln_engine::Tensor;
use kiln_nn::Model;

/// The model, the criterion and the distillation, if any, one training forward reads.
#[derive(Clone, Copy)]
pub(super) struct Objective<'a> {
    pub model: &'a dyn Model,
    pub loss: &'a dyn Loss,
    pub distill: Option<&'a Distillation>,
}

impl Objective<'_> {
    /// The training loss of `images` against `targets`, on the tape.
    pub fn forward(&self, images: &Tensor, targets: &Tensor) -> Result<Tensor> {
        match self.distill {
            Some(d) => Ok(d.losses(self.model, self.loss, images, targets)?.loss),
            None => self.loss.forward(&self.model.forward(images)?, targets),
        }
    }
}
