//! timm's feature distillation: the student's pooled features projected to the teacher's width
//! (a trainable Linear where the widths differ) and their MSE against the teacher's.

use crate::Result;
use kiln_engine::{DType, Device, Tensor};
use kiln_nn::layers::Linear;
use kiln_nn::{Model, Module, NamedTensor};

/// The width of `model`'s pooled pre-logits features: its classifier's input, or without one
/// its `head_hidden_size` (timm's).
pub fn pre_logits_dim(model: &dyn Model) -> usize {
    model
        .get_classifier()
        .map_or(model.head_hidden_size(), Linear::in_features)
}

/// The trainable Linear from the student's feature width to the teacher's (timm's
/// `FeatureDistillationTrainableModule.projection`), with PyTorch's default init.
pub struct FeatureProjection {
    linear: Linear,
}

impl FeatureProjection {
    /// A `student_dim` → `teacher_dim` projection on `device`, in `dtype` (the student's).
    pub fn new(
        student_dim: usize,
        teacher_dim: usize,
        device: Device,
        dtype: DType,
    ) -> Result<Self> {
        let linear = Linear::new(student_dim, teacher_dim, true)?;
        linear.to_device(device)?;
        linear.to_dtype(dtype)?;
        Ok(FeatureProjection { linear })
    }

    /// The projected features.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.linear.forward(x)?)
    }

    /// Its weight and bias, named `projection.weight` and `projection.bias` (timm's task-state
    /// names).
    pub fn named_parameters(&self) -> Vec<NamedTensor> {
        let mut out = Vec::new();
        self.linear.collect("projection", &mut out);
        out
    }
}

/// The mean squared difference of `a` and `b` (timm's `F.mse_loss`), in float32.
pub fn mse_loss(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let d = a.to_dtype(DType::F32)?.sub(&b.to_dtype(DType::F32)?)?;
    Ok(d.mul(&d)?.mean_all()?)
}
