//! timm's `DistillationTeacher`: a frozen model in eval mode, run without a tape on input
//! re-normalized from the student's mean/std to its own.

use crate::{Error, Result};
use kiln_engine::{no_grad, Device, MemoryFormat, Tensor};
use kiln_nn::Model;

/// A teacher model and the per-channel mean/std its input is normalized with.
pub struct Teacher {
    model: Box<dyn Model>,
    mean: [f64; 3],
    std: [f64; 3],
}

impl Teacher {
    /// The teacher `model`, switched to eval mode, normalizing with its pretrained config's
    /// mean/std (as timm reads them from `pretrained_cfg`).
    pub fn new(mut model: Box<dyn Model>) -> Teacher {
        model.set_training(false);
        let cfg = model.pretrained_cfg();
        let (mean, std) = (cfg.mean, cfg.std);
        Teacher { model, mean, std }
    }

    /// The same teacher normalizing with `mean`/`std` instead (a weights folder's config.json).
    #[must_use]
    pub fn with_normalization(self, mean: [f64; 3], std: [f64; 3]) -> Teacher {
        Teacher { mean, std, ..self }
    }

    /// The teacher model.
    pub fn model(&self) -> &dyn Model {
        self.model.as_ref()
    }

    /// The mean/std the teacher's input is normalized with.
    pub fn normalization(&self) -> ([f64; 3], [f64; 3]) {
        (self.mean, self.std)
    }

    /// Re-lays the teacher's 4-d weights out in `format` (the student's).
    pub fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        Ok(self.model.set_memory_format(format)?)
    }

    /// Moves the teacher's weights to `device`.
    pub fn to_device(&self, device: Device) -> Result<()> {
        Ok(self.model.to_device(device)?)
    }

    /// timm's `normalize_input`: `x` normalized with the student's `mean`/`std` re-normalized to
    /// the teacher's, `(x · std_s + mean_s − mean_t) / std_t`; unchanged where they are equal.
    pub fn normalize_input(&self, x: &Tensor, mean: [f64; 3], std: [f64; 3]) -> Result<Tensor> {
        if (mean, std) == (self.mean, self.std) {
            return Ok(x.clone());
        }
        if x.shape().get(1) != Some(&3) {
            return Err(Error::config(
                "kd_model_name",
                format!("input of shape {:?}", x.shape()),
                "3 channels to re-normalize from the student's mean/std to the teacher's \
                 (give both the same normalization for other channel counts)",
            ));
        }
        let channels = |v: [f64; 3]| -> Result<Tensor> {
            let v: Vec<f32> = v.iter().map(|&c| c as f32).collect();
            Ok(Tensor::from_vec(v, &[1, 3, 1, 1])?
                .to_dtype(x.dtype())?
                .to_device(x.device())?)
        };
        Ok(x.mul(&channels(std)?)?
            .add(&channels(mean)?)?
            .sub(&channels(self.mean)?)?
            .div(&channels(self.std)?)?)
    }

    /// The teacher's logits for `x` (already normalized for it), without a tape.
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let _tape_off = no_grad();
        Ok(self.model.forward(x)?)
    }

    /// The teacher's pooled pre-logits features for `x` (timm's `forward_head(pre_logits=True)`
    /// after `forward_features`), without a tape.
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let _tape_off = no_grad();
        let maps = self.model.forward_features(x)?;
        Ok(self.model.forward_head(&maps, true)?)
    }
}
