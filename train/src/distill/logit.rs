//! timm's logit distillation loss.

use crate::Result;
use kiln_engine::{DType, Tensor};

/// `KL(teacher ‖ student)` of the temperature-`t` softmaxes, summed over classes and averaged
/// over the batch, times t² (timm's `F.kl_div(log_softmax(s/t), log_softmax(t/t),
/// reduction='batchmean', log_target=True) · t²`), in float32.
pub fn kl_distill_loss(student: &Tensor, teacher: &Tensor, t: f64) -> Result<Tensor> {
    let log_probs = |x: &Tensor| -> Result<Tensor> {
        Ok(x.to_dtype(DType::F32)?
            .mul_scalar(1.0 / t)?
            .log_softmax(-1)?)
    };
    let (s, q) = (log_probs(student)?, log_probs(teacher)?);
    let rows = student.shape().first().copied().unwrap_or(1).max(1);
    Ok(q.exp()?
        .mul(&q.sub(&s)?)?
        .sum_all()?
        .mul_scalar(t * t / rows as f64)?)
}
