//! The efficient head of timm's MobileNetV3, LCNet, MobileNetV4 and GhostNet: global pool, a
//! 1×1 conv to the head width (`conv_head`), its norm and activation (`norm_head`, MobileNetV4)
//! or its activation alone, flatten, dropout and classifier, with the models' own state-dict
//! names (the model flattens it). [`crate::Model`]'s head methods default to it.

use super::head::classify;
use super::{new_classifier, reset_pool, Activation, BatchNormAct2d, Conv2d, Head, Linear};
use super::{PoolType, SelectAdaptivePool2d};
use crate::{Children, Error, Module, Result};
use kiln_engine::Tensor;

/// Pool, `conv_head`, norm or activation, dropout, classifier; no classifier with 0 classes.
#[derive(Children)]
pub struct ConvHead {
    /// The global pool before the conv (the conv reads one value a channel, or `feat_mult`).
    pub pool: SelectAdaptivePool2d,
    /// The 1×1 conv from the pooled features to the head width (timm's `head_hidden_size`).
    #[child]
    pub conv_head: Conv2d,
    /// The conv's BN and activation (MobileNetV4); without it, `act` follows the conv.
    #[child]
    pub norm_head: Option<BatchNormAct2d>,
    /// The activation after the conv when there is no `norm_head`.
    pub act: Activation,
    /// The classifier.
    #[child]
    pub classifier: Option<Linear>,
    /// Dropout rate before the classifier.
    pub drop_rate: f64,
    /// Dropout is active.
    #[training]
    training: bool,
}

impl ConvHead {
    /// A head whose `conv_head` reads what `pool` pools, then `act`, dropout `drop_rate` and no
    /// classifier until [`Head::reset`] makes one.
    pub fn new(pool: PoolType, conv_head: Conv2d, act: Activation, drop_rate: f64) -> ConvHead {
        ConvHead {
            pool: SelectAdaptivePool2d { pool_type: pool },
            conv_head,
            norm_head: None,
            act,
            classifier: None,
            drop_rate,
            training: true,
        }
    }

    /// This head with a BN (and its activation) after the conv instead of `act`.
    pub fn with_norm(self, norm_head: Option<BatchNormAct2d>) -> ConvHead {
        ConvHead { norm_head, ..self }
    }
}

impl Head for ConvHead {
    /// Pool, conv, norm or activation, flatten, dropout, and with `pre_logits` no classifier.
    /// Without pooling the conv runs on every position and the map is returned unflattened.
    fn forward_head(&self, x: &Tensor, pre_logits: bool) -> Result<Tensor> {
        let mut h = self.pool.forward(x)?;
        let pooled = self.pool.pool_type != PoolType::None;
        if pooled {
            h = h.reshape(&[h.shape()[0], h.shape()[1], 1, 1])?;
        }
        h = self.conv_head.forward(&h)?;
        h = match &self.norm_head {
            Some(n) => n.forward(&h)?,
            None => self.act.forward(&h)?,
        };
        if pooled {
            h = h.flatten_from(1)?;
        }
        let fc = self.classifier.as_ref();
        classify(&h, self.drop_rate, self.training, fc, pre_logits)
    }

    fn classifier(&self) -> Option<&Linear> {
        self.classifier.as_ref()
    }

    /// timm's `reset_classifier`; the conv is sized for the pooled width, so a pool that changes
    /// it (`catavgmax` for `avg`) is refused.
    fn reset(&mut self, num_classes: usize, global_pool: Option<&str>, model: &str) -> Result<()> {
        let mut pool = self.pool;
        reset_pool(&mut pool, global_pool, num_classes, model)?;
        if pool.pool_type.feat_mult() != self.pool.pool_type.feat_mult() {
            return Err(Error::BadArgument {
                model: model.into(),
                msg: "the head conv is sized for the pooled width, pooling can not change it"
                    .into(),
            });
        }
        self.pool = pool;
        self.classifier = new_classifier(self.hidden_size(), num_classes)?;
        Ok(())
    }

    fn num_features(&self) -> usize {
        self.conv_head.weight.shape()[1] / self.pool.pool_type.feat_mult()
    }

    fn hidden_size(&self) -> usize {
        self.conv_head.weight.shape()[0]
    }
}

impl Module for ConvHead {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_head(x, false)
    }
}
