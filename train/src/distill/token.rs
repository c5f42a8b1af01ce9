//! timm's token distillation loss (DeiT's distillation head against the teacher).

use super::{kl_distill_loss, TokenTarget};
use crate::Result;
use kiln_engine::{DType, Tensor};

/// The distillation head's loss against the teacher's logits: soft, the temperature-`t` KL of
/// [`kl_distill_loss`]; hard, cross-entropy on the teacher's argmax class.
pub fn token_distill_loss(
    dist_logits: &Tensor,
    teacher: &Tensor,
    target: TokenTarget,
    t: f64,
) -> Result<Tensor> {
    match target {
        TokenTarget::Soft => kl_distill_loss(dist_logits, teacher, t),
        TokenTarget::Hard => {
            let classes = teacher.argmax(-1, false)?;
            Ok(dist_logits
                .to_dtype(DType::F32)?
                .cross_entropy(&classes, 0.0)?)
        }
    }
}
