//! timm's `ClassifierHead` (global pool, dropout, classifier) and its `NormMlpClassifierHead`
//! form without the hidden MLP (a LayerNorm of the pooled features before the dropout, as
//! ConvNeXt's head). [`crate::Model`]'s head methods default to a model's head.

use super::head::classify;
use super::{Head, LayerNorm, Linear, PoolType, SelectAdaptivePool2d};
use crate::module::map_children_tensors;
use crate::{Children, Error, Module, Result, TensorMap, Visitor, VisitorMut};
use kiln_engine::Tensor;

/// Builds a classifier `in_features` → `num_classes` (the family's init).
pub type NewClassifier = fn(usize, usize) -> Result<Linear>;

/// Pool, optional norm, dropout and classifier; the classifier is absent with 0 classes.
#[derive(Debug, Clone)]
pub struct ClassifierHead {
    /// The global pool (flattens to [N, C·mult]).
    pub pool: SelectAdaptivePool2d,
    /// The pooled features' LayerNorm (`NormMlpClassifierHead`'s `norm`), if any.
    pub norm: Option<LayerNorm>,
    /// Dropout rate before the classifier.
    pub drop_rate: f64,
    /// The classifier.
    pub fc: Option<Linear>,
    /// Channels of the feature map the head reads (timm's `num_features`).
    in_features: usize,
    /// The classifier's state-dict name in the head (`fc`, `classifier`).
    fc_name: &'static str,
    /// How the family builds a classifier (its init).
    new_classifier: NewClassifier,
    /// Dropout is active.
    training: bool,
}

/// timm's `_create_fc`: a biased Linear with PyTorch's default init.
fn default_classifier(in_features: usize, num_classes: usize) -> Result<Linear> {
    Linear::new(in_features, num_classes, true)
}

/// timm's `_create_fc` for a model without a [`ClassifierHead`]: the default classifier, or
/// none for `num_classes` 0.
pub fn new_classifier(in_features: usize, num_classes: usize) -> Result<Option<Linear>> {
    (num_classes > 0)
        .then(|| default_classifier(in_features, num_classes))
        .transpose()
}

/// The pooling half of timm's `reset_classifier`: sets `global_pool` if given and refuses no
/// pooling ('') with a classifier. `model` names the model in errors.
pub fn reset_pool(
    pool: &mut SelectAdaptivePool2d,
    global_pool: Option<&str>,
    num_classes: usize,
    model: &str,
) -> Result<()> {
    let pool_type = match global_pool {
        Some(p) => PoolType::parse(p)?,
        None => pool.pool_type,
    };
    if pool_type == PoolType::None && num_classes > 0 {
        return Err(Error::BadArgument {
            model: model.into(),
            msg: "global_pool '' needs num_classes 0 (pooling can only be disabled with the \
                  classifier removed)"
                .into(),
        });
    }
    pool.pool_type = pool_type;
    Ok(())
}

impl ClassifierHead {
    /// A head over `in_features` channels: `pool`, dropout `drop_rate`, and a classifier to
    /// `num_classes` named `fc` (none for 0 classes).
    pub fn new(
        in_features: usize,
        num_classes: usize,
        pool: PoolType,
        drop_rate: f64,
    ) -> Result<ClassifierHead> {
        let mut head = ClassifierHead {
            pool: SelectAdaptivePool2d { pool_type: pool },
            norm: None,
            drop_rate,
            fc: None,
            in_features,
            fc_name: "fc",
            new_classifier: default_classifier,
            training: true,
        };
        head.fc = head.new_fc(num_classes)?;
        Ok(head)
    }

    /// This head with its classifier named `name` in the state dict (`classifier`).
    pub fn named(self, name: &'static str) -> ClassifierHead {
        ClassifierHead {
            fc_name: name,
            ..self
        }
    }

    /// This head with its classifier built by `new_classifier` (now and on reset).
    pub fn with_classifier(mut self, new_classifier: NewClassifier) -> Result<ClassifierHead> {
        self.new_classifier = new_classifier;
        let classes = self.num_classes();
        self.fc = self.new_fc(classes)?;
        Ok(self)
    }

    /// This head with a LayerNorm of the pooled features (timm's `NormMlpClassifierHead`).
    pub fn with_norm(self, norm: LayerNorm) -> ClassifierHead {
        ClassifierHead {
            norm: Some(norm),
            ..self
        }
    }

    /// A classifier for `num_classes` over the pooled features, none for 0.
    fn new_fc(&self, num_classes: usize) -> Result<Option<Linear>> {
        let features = self.in_features * self.pool.pool_type.feat_mult();
        (num_classes > 0)
            .then(|| (self.new_classifier)(features, num_classes))
            .transpose()
    }
}

/// Pool, norm, dropout, classifier.
impl Head for ClassifierHead {
    /// timm's `forward_head`: pool, norm, dropout, and with `pre_logits` no classifier. Without
    /// pooling the normed map itself is returned (timm's `NormMlpClassifierHead` with pool '').
    fn forward_head(&self, x: &Tensor, pre_logits: bool) -> Result<Tensor> {
        if self.pool.pool_type == PoolType::None {
            return match &self.norm {
                Some(n) => Ok(x.layer_norm2d(Some(&n.weight), n.bias.as_ref(), n.eps)?),
                None => Ok(x.clone()),
            };
        }
        let mut h = self.pool.forward(x)?;
        if let Some(n) = &self.norm {
            h = n.forward(&h)?;
        }
        classify(
            &h,
            self.drop_rate,
            self.training,
            self.fc.as_ref(),
            pre_logits,
        )
    }

    fn classifier(&self) -> Option<&Linear> {
        self.fc.as_ref()
    }

    /// No pooling only without a classifier; a norm takes no doubled features.
    fn reset(&mut self, num_classes: usize, global_pool: Option<&str>, model: &str) -> Result<()> {
        let doubled = global_pool.filter(|p| PoolType::parse(p).is_ok_and(|t| t.feat_mult() != 1));
        if let (Some(p), Some(_)) = (doubled, &self.norm) {
            return Err(Error::BadArgument {
                model: model.into(),
                msg: format!(
                    "global_pool '{p}' doubles the features, which the head's LayerNorm does not \
                     take"
                ),
            });
        }
        reset_pool(&mut self.pool, global_pool, num_classes, model)?;
        self.fc = self.new_fc(num_classes)?;
        Ok(())
    }

    fn num_features(&self) -> usize {
        self.in_features
    }
}

/// The norm as `norm`, the classifier under its own name.
impl Children for ClassifierHead {
    fn visit(&self, v: &mut dyn Visitor) {
        if let Some(n) = &self.norm {
            v.child("norm", n);
        }
        if let Some(fc) = &self.fc {
            v.child(self.fc_name, fc);
        }
        v.training(self.training);
    }

    fn visit_mut(&mut self, v: &mut dyn VisitorMut) -> Result<()> {
        if let Some(n) = &mut self.norm {
            v.child("norm", n)?;
        }
        if let Some(fc) = &mut self.fc {
            v.child(self.fc_name, fc)?;
        }
        v.training(&mut self.training);
        Ok(())
    }
}

impl Module for ClassifierHead {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_head(x, false)
    }

    /// The features the head reads follow a pruned classifier's (or norm's) width.
    fn map_tensors(&mut self, prefix: &str, f: &mut TensorMap<'_>) -> Result<()> {
        map_children_tensors(self, prefix, f)?;
        if let Some(n) = &self.norm {
            self.in_features = n.weight.shape()[0];
        } else if let Some(fc) = &self.fc {
            self.in_features = fc.in_features() / self.pool.pool_type.feat_mult();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_engine::DType;

    #[test]
    fn the_classifier_follows_the_pool_and_its_name() {
        let mut head = ClassifierHead::new(8, 5, PoolType::Avg, 0.0)
            .unwrap()
            .named("classifier");
        let names: Vec<String> = head.named_tensors().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["classifier.weight", "classifier.bias"]);
        let x = Tensor::zeros(&[2, 8, 3, 3], DType::F32).unwrap();
        assert_eq!(head.forward(&x).unwrap().shape(), [2, 5]);
        head.reset(3, Some("catavgmax"), "m").unwrap();
        assert_eq!(head.fc.as_ref().unwrap().in_features(), 16);
        assert_eq!(head.forward_head(&x, true).unwrap().shape(), [2, 16]);
        assert!(head.reset(3, Some(""), "m").is_err());
        head.reset(0, Some(""), "m").unwrap();
        assert_eq!(head.forward(&x).unwrap().shape(), [2, 8, 3, 3]);
    }

    #[test]
    fn a_normed_head_refuses_doubled_features() {
        let norm = LayerNorm::new(8).unwrap();
        let mut head = ClassifierHead::new(8, 5, PoolType::Avg, 0.0)
            .unwrap()
            .with_norm(norm);
        let err = head.reset(5, Some("catavgmax"), "convnext").unwrap_err();
        assert!(err.to_string().contains("doubles the features"), "{err}");
        let names: Vec<String> = head.named_tensors().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["norm.weight", "norm.bias", "fc.weight", "fc.bias"]);
    }
}
