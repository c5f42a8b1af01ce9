//! timm's MetaFormer head: the global pool, the `LayerNorm2d` of the pooled features
//! (`head.norm`), dropout, then a linear classifier (`head.fc`) or timm's `MlpHead`
//! (`head.fc.fc1`, squared ReLU, `head.fc.norm`, `head.fc.fc2`).

use crate::layers::{reset_pool, ClassifierHead, Head, LayerNorm, Linear, NewClassifier, PoolType};
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// timm's `MlpHead`: fc2(norm(relu(fc1(x))²)), the hidden width four times the features.
#[derive(Children)]
pub(super) struct MlpHead {
    #[child]
    fc1: Linear,
    #[child]
    norm: LayerNorm,
    #[child]
    fc2: Linear,
}

impl MlpHead {
    /// `features` to `num_classes`, its linear layers built by `linear`, the LayerNorm at eps 1e-6.
    fn new(features: usize, num_classes: usize, linear: NewClassifier) -> Result<MlpHead> {
        let hidden = 4 * features;
        Ok(MlpHead {
            fc1: linear(features, hidden)?,
            norm: LayerNorm::new(hidden)?,
            fc2: linear(hidden, num_classes)?,
        })
    }
}

impl Module for MlpHead {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.fc1.forward(x)?.relu()?.sqr()?;
        self.fc2.forward(&self.norm.forward(&h)?)
    }
}

/// The head: pool, norm and dropout (a [`ClassifierHead`] that holds the linear classifier
/// too), or those and the `MlpHead` named `fc`.
#[derive(Children)]
pub(super) struct MetaFormerHead {
    #[child(flatten)]
    base: ClassifierHead,
    #[child(name = "fc")]
    mlp: Option<MlpHead>,
    /// The classifier is an `MlpHead` (timm's `use_mlp_head`).
    use_mlp_head: bool,
}

/// A biased linear layer with PyTorch's default init (the classifiers timm's
/// `reset_classifier` builds).
fn torch_linear(in_f: usize, out_f: usize) -> Result<Linear> {
    Linear::new(in_f, out_f, true)
}

/// A linear layer with timm's MetaFormer init (trunc-normal .02 weight, zero bias).
fn timm_linear(in_f: usize, out_f: usize) -> Result<Linear> {
    Linear::trunc_normal(in_f, out_f, 0.02)
}

impl MetaFormerHead {
    /// The head over `features` channels for `num_classes` (none for 0) with `global_pool`,
    /// dropout `drop_rate`, the classifier an `MlpHead` with `use_mlp_head`; timm's init.
    /// `model` names the model in errors.
    pub(super) fn new(
        features: usize,
        num_classes: usize,
        global_pool: &str,
        use_mlp_head: bool,
        drop_rate: f64,
        model: &str,
    ) -> Result<MetaFormerHead> {
        let base = ClassifierHead::new(features, 0, PoolType::Avg, drop_rate)?
            .with_norm(LayerNorm::new(features)?);
        let mut head = MetaFormerHead {
            base,
            mlp: None,
            use_mlp_head,
        };
        head.set_pool(Some(global_pool), num_classes, model)?;
        head.set_classes(num_classes, timm_linear)?;
        Ok(head)
    }

    /// Sets `global_pool` (if given): no pooling ('') only without classes, no pool that
    /// doubles the features the norm reads.
    fn set_pool(
        &mut self,
        global_pool: Option<&str>,
        num_classes: usize,
        model: &str,
    ) -> Result<()> {
        let mut pool = self.base.pool;
        reset_pool(&mut pool, global_pool, num_classes, model)?;
        self.base.reset(0, global_pool, model)
    }

    /// A classifier for `num_classes` (none for 0), its linear layers built by `linear`.
    fn set_classes(&mut self, num_classes: usize, linear: NewClassifier) -> Result<()> {
        let features = self.base.num_features();
        let classes = (num_classes > 0).then_some(num_classes);
        (self.base.fc, self.mlp) = match (classes, self.use_mlp_head) {
            (None, _) => (None, None),
            (Some(n), false) => (Some(linear(features, n)?), None),
            (Some(n), true) => (None, Some(MlpHead::new(features, n, linear)?)),
        };
        Ok(())
    }
}

impl Head for MetaFormerHead {
    /// Pool, norm, dropout, then the classifier unless `pre_logits` (the `MlpHead`'s input
    /// then, as timm's).
    fn forward_head(&self, x: &Tensor, pre_logits: bool) -> Result<Tensor> {
        match &self.mlp {
            Some(mlp) if !pre_logits => mlp.forward(&self.base.forward_head(x, true)?),
            _ => self.base.forward_head(x, pre_logits),
        }
    }

    /// The linear classifier, or the `MlpHead`'s output layer (`head.fc.fc2`).
    fn classifier(&self) -> Option<&Linear> {
        match &self.mlp {
            Some(mlp) => Some(&mlp.fc2),
            None => self.base.fc.as_ref(),
        }
    }

    /// timm's `reset_classifier`: the new classifier with PyTorch's default init.
    fn reset(&mut self, num_classes: usize, global_pool: Option<&str>, model: &str) -> Result<()> {
        self.set_pool(global_pool, num_classes, model)?;
        self.set_classes(num_classes, torch_linear)
    }

    fn num_features(&self) -> usize {
        self.base.num_features()
    }
}

impl Module for MetaFormerHead {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_head(x, false)
    }
}
