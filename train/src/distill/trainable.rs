//! The student with the distillation's own parameters, as one module (timm's
//! `FeatureDistillationTrainableModule`): what data-parallel training averages gradients over.

use super::Distillation;
use kiln_engine::Tensor;
use kiln_nn::{Model, Module, NamedTensor};

/// The student's tensors followed by the feature projection's (`projection.*`); its forward is
/// the student's.
pub struct Trainable<'a> {
    student: &'a dyn Model,
    distill: &'a Distillation,
}

impl<'a> Trainable<'a> {
    /// `student` together with `distill`'s parameters.
    pub fn new(student: &'a dyn Model, distill: &'a Distillation) -> Self {
        Trainable { student, distill }
    }
}

impl Module for Trainable<'_> {
    fn forward(&self, x: &Tensor) -> kiln_nn::Result<Tensor> {
        self.student.forward(x)
    }

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        self.student.collect(prefix, out);
        out.extend(self.distill.parameters().into_iter().map(|t| NamedTensor {
            name: match prefix {
                "" => t.name,
                p => format!("{p}.{}", t.name),
            },
            ..t
        }));
    }
}
