//! [`Distillation`]: the student's training loss with a teacher, as timm's distillation tasks
//! compute it (`LogitDistillationTask`, `FeatureDistillationTask`, `TokenDistillationTask`).

use super::{
    kl_distill_loss, mse_loss, pre_logits_dim, token_distill_loss, DistillConfig, DistillKind,
    FeatureProjection, LossWeights, Teacher, TokenTarget,
};
use crate::loss::Loss;
use crate::{Error, Result};
use kiln_engine::{Device, MemoryFormat, Tensor};
use kiln_nn::{Model, NamedTensor};
use std::collections::BTreeMap;

/// The parts of one distillation step's loss.
pub struct DistillLosses {
    /// `task · task_loss + distill · distill_loss`, which backward runs from.
    pub loss: Tensor,
    /// The task loss (the training criterion on the student's, or its class head's, logits).
    pub task: Tensor,
    /// The distillation loss.
    pub distill: Tensor,
}

/// A teacher, the distillation loss and its weights (and, for feature distillation, the
/// trainable projection): everything a step adds to the student's own loss.
pub struct Distillation {
    kind: DistillKind,
    token: TokenTarget,
    teacher: Teacher,
    weights: LossWeights,
    temperature: f64,
    /// The student's pretrained-config mean/std, which its input batches are normalized with.
    student_norm: ([f64; 3], [f64; 3]),
    projection: Option<FeatureProjection>,
}

impl Distillation {
    /// Distillation of `student` from `teacher` as `config` says; the teacher (and a projection)
    /// move to the student's device and dtype. Token distillation needs a student with a distillation
    /// head; logit and token distillation need the teacher's classes to be the student's.
    pub fn new(config: &DistillConfig, teacher: Teacher, student: &dyn Model) -> Result<Self> {
        config.check()?;
        let device = student
            .named_parameters()
            .first()
            .map_or(Device::Cpu, |p| p.tensor.device());
        teacher.to_device(device)?;
        // timm's tasks move the teacher (and the projection) to the student's device and dtype.
        let dtype = student.param_dtype();
        teacher.model().to_dtype(dtype)?;
        check_pairing(config.kind, teacher.model(), student)?;
        let projection = match config.kind {
            DistillKind::Feature => {
                let s = config
                    .student_feature_dim
                    .unwrap_or_else(|| pre_logits_dim(student));
                let t = config
                    .teacher_feature_dim
                    .unwrap_or_else(|| pre_logits_dim(teacher.model()));
                (s != t)
                    .then(|| FeatureProjection::new(s, t, device, dtype))
                    .transpose()?
            }
            _ => None,
        };
        let cfg = student.pretrained_cfg();
        Ok(Distillation {
            kind: config.kind,
            token: config.token,
            teacher,
            weights: LossWeights::resolve(config.task_loss_weight, config.distill_loss_weight),
            temperature: config.temperature,
            student_norm: (cfg.mean, cfg.std),
            projection,
        })
    }

    /// The kind of distillation.
    pub fn kind(&self) -> DistillKind {
        self.kind
    }

    /// The resolved loss weights.
    pub fn weights(&self) -> LossWeights {
        self.weights
    }

    /// The teacher.
    pub fn teacher(&self) -> &Teacher {
        &self.teacher
    }

    /// Re-lays the teacher's weights out in `format`, the layout of the student's batches.
    pub fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        self.teacher.set_memory_format(format)
    }

    /// The student's loss on `images` against `targets`: the task loss by `criterion` plus the
    /// distillation loss against the teacher's output for the same images, weighted.
    pub fn losses(
        &self,
        student: &dyn Model,
        criterion: &dyn Loss,
        images: &Tensor,
        targets: &Tensor,
    ) -> Result<DistillLosses> {
        let (task, distill) = match self.kind {
            DistillKind::Logit => {
                let logits = student.forward(images)?;
                let task = criterion.forward(&logits, targets)?;
                let teacher = self.teacher.logits(&self.teacher_input(images)?)?;
                (task, kl_distill_loss(&logits, &teacher, self.temperature)?)
            }
            DistillKind::Feature => {
                let maps = student.forward_features(images)?;
                let task = criterion.forward(&student.forward_head(&maps, false)?, targets)?;
                let features = student.forward_head(&maps, true)?;
                let features = match &self.projection {
                    Some(p) => p.forward(&features)?,
                    None => features,
                };
                let teacher = self.teacher.features(&self.teacher_input(images)?)?;
                (task, mse_loss(&features, &teacher)?)
            }
            DistillKind::Token => {
                let (cls, dist) = student.forward_distilled(images)?;
                let task = criterion.forward(&cls, targets)?;
                let teacher = self.teacher.logits(&self.teacher_input(images)?)?;
                let t = self.temperature;
                (task, token_distill_loss(&dist, &teacher, self.token, t)?)
            }
        };
        let w = self.weights;
        let loss = task
            .mul_scalar(w.task)?
            .add(&distill.mul_scalar(w.distill)?)?;
        Ok(DistillLosses {
            loss,
            task,
            distill,
        })
    }

    /// The student's batch re-normalized for the teacher, off the tape.
    fn teacher_input(&self, images: &Tensor) -> Result<Tensor> {
        let (mean, std) = self.student_norm;
        self.teacher.normalize_input(&images.detach(), mean, std)
    }

    /// Parameters the optimizer trains besides the student's: the feature projection's.
    pub fn parameters(&self) -> Vec<NamedTensor> {
        self.projection
            .as_ref()
            .map(FeatureProjection::named_parameters)
            .unwrap_or_default()
    }

    /// The state a checkpoint keeps outside the student's (timm's `task_state`): the
    /// projection's tensors by name (`projection.weight`, ...), empty without one.
    pub fn state(&self) -> BTreeMap<String, Tensor> {
        self.parameters()
            .into_iter()
            .map(|t| (t.name, t.tensor))
            .collect()
    }

    /// Restores [`Distillation::state`] (timm's `load_task_state`, strict): every projection
    /// tensor must be there with its shape, and nothing else; an empty state (a checkpoint
    /// without one) changes nothing, as in timm.
    pub fn load_state(&self, state: &BTreeMap<String, Tensor>) -> Result<()> {
        if state.is_empty() {
            return Ok(());
        }
        let own = self.parameters();
        let unexpected: Vec<&String> = state
            .keys()
            .filter(|k| !own.iter().any(|t| &t.name == *k))
            .collect();
        if !unexpected.is_empty() {
            return Err(bad_state(format!(
                "has {unexpected:?}, which this distillation has no place for"
            )));
        }
        for t in own {
            let saved = state
                .get(&t.name)
                .ok_or_else(|| bad_state(format!("lacks {}", t.name)))?;
            if saved.shape() != t.tensor.shape() {
                return Err(bad_state(format!(
                    "{} is {:?}, the projection's {:?}",
                    t.name,
                    saved.shape(),
                    t.tensor.shape()
                )));
            }
            t.tensor.copy_(saved)?;
        }
        Ok(())
    }
}

/// A checkpoint's distillation state that does not fit.
fn bad_state(msg: String) -> Error {
    Error::config(
        "task_state",
        msg,
        "the feature projection's weight and bias",
    )
}

/// Token distillation needs a distillation head; logits compare only over the same classes.
fn check_pairing(kind: DistillKind, teacher: &dyn Model, student: &dyn Model) -> Result<()> {
    let name = |m: &dyn Model| m.pretrained_cfg().name.clone();
    if kind == DistillKind::Token && !student.has_distillation_head() {
        return Err(Error::config(
            "kd_distill_type",
            format!("token (student {})", name(student)),
            "a student with a distillation token and head, e.g. deit_tiny_distilled_patch16_224",
        ));
    }
    let (t, s) = (teacher.num_classes(), student.num_classes());
    if kind != DistillKind::Feature && t != s {
        return Err(Error::config(
            "kd_model_name",
            format!("{} with {t} classes", name(teacher)),
            format!("a teacher with the student's {s} classes"),
        ));
    }
    Ok(())
}
