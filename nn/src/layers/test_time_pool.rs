//! timm's `TestTimePoolHead` (validate.py's `--test-pool`, applied by `apply_test_time_pool` when
//! the input is larger than the one the weights were trained at): the feature map is
//! average-pooled with the trained pooling window at stride 1, classified at every position by
//! the model's classifier as a 1×1 convolution, and the class maps reduced by the mean of their
//! average and their maximum (`adaptive_avgmax_pool2d`).

use super::Linear;
use crate::{Children, Error, FeatureCfg, FeatureInfo, Model, Module, PretrainedCfg, Result};
use kiln_engine::{Pool2d, Tensor};

/// Test-time pooling of `features` [N, C, H, W]: average pool `window` (stride 1), `fc` at every
/// position, then `0.5 · (mean + max)` over the positions: logits [N, classes].
pub fn test_time_pool(features: &Tensor, fc: &Linear, window: [usize; 2]) -> Result<Tensor> {
    let pool = Pool2d {
        kernel: window,
        stride: [1, 1],
        ..Pool2d::new(1, 1, 0)
    };
    let pooled = features.avg_pool2d(pool)?;
    // A linear layer over the channels of every position: timm's fc as a 1×1 convolution.
    let maps = (pooled.permute(&[0, 2, 3, 1])?)
        .linear(&fc.weight_matrix()?, fc.bias.as_ref())?
        .permute(&[0, 3, 1, 2])?;
    let avg = maps.adaptive_avg_pool2d([1, 1])?;
    let max = maps.adaptive_max_pool2d([1, 1])?;
    Ok(avg.add(&max)?.mul_scalar(0.5)?.flatten_from(1)?)
}

/// A model whose head is replaced by [`test_time_pool`] over its feature map with its own
/// classifier; every other part of [`Model`] and [`Module`] is the wrapped model's (its tensors
/// keep their names).
#[derive(Children)]
pub struct TestTimePoolHead {
    #[child(flatten)]
    base: Box<dyn Model>,
    window: [usize; 2],
}

impl TestTimePoolHead {
    /// Wraps `base` with the pooling window `window` (its pretrained cfg's `pool_size`). Its
    /// classifier must read the feature map's channels, as timm folds it into a 1×1 convolution
    /// of them (timm fails there too).
    pub fn new(base: Box<dyn Model>, window: [usize; 2]) -> Result<Self> {
        let name = base.pretrained_cfg().name.clone();
        let refuse = |msg: String| Error::BadArgument {
            model: name.clone(),
            msg,
        };
        let fc = base
            .get_classifier()
            .ok_or_else(|| refuse("test-time pooling needs the model's classifier".into()))?;
        let (takes, has) = (fc.weight.shape()[1], base.num_features());
        if takes != has {
            return Err(refuse(format!(
                "test-time pooling applies the classifier at each position of the feature map, \
                 but it takes {takes} features and the feature map has {has} channels (a head \
                 layer sits between them; timm's TestTimePoolHead fails the same way)"
            )));
        }
        Ok(TestTimePoolHead { base, window })
    }

    fn head(&self, features: &Tensor) -> Result<Tensor> {
        if features.rank() != 4 {
            return Err(Error::BadArgument {
                model: self.base.pretrained_cfg().name.clone(),
                msg: format!(
                    "test-time pooling needs a feature map [N, C, H, W], the model gives {:?}",
                    features.shape()
                ),
            });
        }
        let fc = self
            .base
            .get_classifier()
            .ok_or_else(|| Error::BadArgument {
                model: self.base.pretrained_cfg().name.clone(),
                msg: "the classifier was removed".into(),
            })?;
        test_time_pool(features, fc, self.window)
    }
}

impl Module for TestTimePoolHead {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.head(&self.base.forward_features(x)?)
    }
}

impl Model for TestTimePoolHead {
    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        self.base.forward_features(x)
    }

    /// The test-time pooled logits; with `pre_logits`, the wrapped model's pooled features.
    fn forward_head(&self, x: &Tensor, pre_logits: bool) -> Result<Tensor> {
        match pre_logits {
            true => self.base.forward_head(x, true),
            false => self.head(x),
        }
    }

    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        self.base.forward_intermediates(x)
    }

    fn feature_info(&self) -> &[FeatureInfo] {
        self.base.feature_info()
    }

    fn feature_cfg(&self) -> FeatureCfg {
        self.base.feature_cfg()
    }

    fn get_classifier(&self) -> Option<&Linear> {
        self.base.get_classifier()
    }

    fn reset_classifier(&mut self, num_classes: usize, global_pool: Option<&str>) -> Result<()> {
        self.base.reset_classifier(num_classes, global_pool)
    }

    fn num_classes(&self) -> usize {
        self.base.num_classes()
    }

    fn num_features(&self) -> usize {
        self.base.num_features()
    }

    fn head_hidden_size(&self) -> usize {
        self.base.head_hidden_size()
    }

    fn pretrained_cfg(&self) -> &PretrainedCfg {
        self.base.pretrained_cfg()
    }
}
