//! The student with the distillation's own parameters, as one module (timm's
//! `FeatureDistillationTrainableModule`): what data-parallel training averages gradients over.

use super::Distillation;
use kiln_engine::Tensor;
use kiln_nn::{Children, Model, Module, Visitor, VisitorMut};

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

/// The student, flattened, then the projection's parameters; a view to read only.
impl Children for Trainable<'_> {
    fn visit(&self, v: &mut dyn Visitor) {
        v.child("", self.student);
        for t in self.distill.parameters() {
            v.tensor(&t.name, &t.tensor, t.kind);
        }
    }

    fn visit_mut(&mut self, _v: &mut dyn VisitorMut) -> kiln_nn::Result<()> {
        Err(kiln_nn::Error::BadArgument {
            model: "distillation".into(),
            msg: "the student and projection are changed through their owners, not this view"
                .into(),
        })
    }
}

impl Module for Trainable<'_> {
    fn forward(&self, x: &Tensor) -> kiln_nn::Result<Tensor> {
        self.student.forward(x)
    }
}
