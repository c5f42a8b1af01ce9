//! Pooling layers, including timm's SelectAdaptivePool2d.

use crate::{Children, Error, Module, Result};
use kiln_engine::{Pool2d, Tensor};

/// `nn.MaxPool2d`.
#[derive(Debug, Clone, Copy, Children)]
pub struct MaxPool2d(pub Pool2d);

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.max_pool2d(self.0)?)
    }
}

/// `nn.AvgPool2d`.
#[derive(Debug, Clone, Copy, Children)]
pub struct AvgPool2d(pub Pool2d);

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.avg_pool2d(self.0)?)
    }
}

/// timm's global pool types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolType {
    /// Average.
    Avg,
    /// Max.
    Max,
    /// (avg + max) / 2.
    AvgMax,
    /// concat(avg, max): doubles the features.
    CatAvgMax,
    /// No pooling ('' in timm): the head must be removed.
    None,
}

impl PoolType {
    /// Parses timm's `global_pool` string.
    pub fn parse(s: &str) -> Result<PoolType> {
        Ok(match s {
            "avg" => PoolType::Avg,
            "max" => PoolType::Max,
            "avgmax" => PoolType::AvgMax,
            "catavgmax" => PoolType::CatAvgMax,
            "" => PoolType::None,
            _ => {
                return Err(Error::BadArgument {
                    model: "global_pool".into(),
                    msg: format!(
                        "unknown pool type '{s}' (expected avg, max, avgmax, catavgmax or '')"
                    ),
                })
            }
        })
    }

    /// Output features per input channel.
    pub fn feat_mult(self) -> usize {
        if self == PoolType::CatAvgMax {
            2
        } else {
            1
        }
    }
}

/// timm's `SelectAdaptivePool2d` to 1×1, flattened to [N, C·mult].
#[derive(Debug, Clone, Copy, Children)]
pub struct SelectAdaptivePool2d {
    /// The pool type.
    pub pool_type: PoolType,
}

impl Module for SelectAdaptivePool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let avg = || x.adaptive_avg_pool2d([1, 1]);
        let max = || x.adaptive_max_pool2d([1, 1]);
        let pooled = match self.pool_type {
            PoolType::None => return Ok(x.clone()),
            PoolType::Avg => avg()?,
            PoolType::Max => max()?,
            PoolType::AvgMax => avg()?.add(&max()?)?.mul_scalar(0.5)?,
            PoolType::CatAvgMax => Tensor::cat(&[avg()?, max()?], 1)?,
        };
        Ok(pooled.flatten_from(1)?)
    }
}
