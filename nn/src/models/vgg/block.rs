//! timm's VGG pieces: a 3×3 conv (bias) with an optional BN and ReLU, under its `features.N`
//! indices, and `ConvMlp`, the head's two convs standing in for torchvision's first two Linear
//! layers (`pre_logits.fc1` 7×7, `pre_logits.fc2` 1×1).

use crate::init;
use crate::layers::{BatchNorm2d, Conv2d};
use crate::module::{join, NamedTensor};
use crate::{Error, Module, Result};
use kiln_engine::{Conv2dParams, MemoryFormat, Tensor};

/// A biased conv with timm's VGG init: `kaiming_normal_(mode='fan_out')`, N(0, 2/fan_out), and a
/// zero bias.
pub(super) fn conv(in_c: usize, out_c: usize, k: usize, padding: usize) -> Result<Conv2d> {
    let weight = init::kaiming_normal_fan_out(&[out_c, in_c, k, k])?;
    Ok(Conv2d {
        weight: weight.requires_grad_(true).clone(),
        bias: Some(init::zeros(&[out_c])?),
        params: Conv2dParams {
            padding: [padding; 2],
            ..Default::default()
        },
    })
}

/// `features.index` (3×3 conv, padding 1), `features.index+1` (BN, the `_bn` names), then ReLU.
pub(super) struct ConvAct {
    pub(super) conv: Conv2d,
    pub(super) bn: Option<BatchNorm2d>,
    pub(super) index: usize,
}

impl ConvAct {
    pub(super) fn new(in_c: usize, out_c: usize, bn: bool, index: usize) -> Result<ConvAct> {
        Ok(ConvAct {
            conv: conv(in_c, out_c, 3, 1)?,
            bn: bn.then(|| BatchNorm2d::new(out_c)).transpose()?,
            index,
        })
    }

    /// The `nn.Sequential` entries it takes (conv, BN, ReLU).
    pub(super) fn len(&self) -> usize {
        if self.bn.is_some() {
            3
        } else {
            2
        }
    }
}

impl Module for ConvAct {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.bn {
            Some(bn) => bn.forward_conv(&self.conv, x, None, true),
            None => Ok(self.conv.forward(x)?.relu()?),
        }
    }

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        self.conv
            .collect(&join(prefix, &self.index.to_string()), out);
        if let Some(bn) = &self.bn {
            bn.collect(&join(prefix, &(self.index + 1).to_string()), out);
        }
    }

    fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        self.conv.set_memory_format(format)
    }

    fn set_training(&mut self, training: bool) {
        if let Some(bn) = &mut self.bn {
            bn.set_training(training);
        }
    }

    fn for_each_batch_norm(&mut self, f: &mut dyn FnMut(&mut BatchNorm2d)) {
        if let Some(bn) = &mut self.bn {
            bn.for_each_batch_norm(f);
        }
    }
}

/// timm's VGG `ConvMlp`: fc1 (k×k conv, no padding), ReLU, dropout, fc2 (1×1 conv), ReLU. A
/// feature map smaller than k×k is first average-pooled up to at least k×k (timm's
/// `F.adaptive_avg_pool2d` to (max(k, H), max(k, W))).
pub(super) struct ConvMlp {
    fc1: Conv2d,
    fc2: Conv2d,
    kernel: usize,
    drop_rate: f64,
    training: bool,
}

impl ConvMlp {
    pub(super) fn new(in_c: usize, out_c: usize, kernel: usize, drop_rate: f64) -> Result<ConvMlp> {
        Ok(ConvMlp {
            fc1: conv(in_c, out_c, kernel, 0)?,
            fc2: conv(out_c, out_c, 1, 0)?,
            kernel,
            drop_rate,
            training: true,
        })
    }
}

impl Module for ConvMlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let &[_, _, h, w] = x.shape() else {
            return Err(Error::BadArgument {
                model: "vgg pre_logits".into(),
                msg: format!("needs a [N, C, H, W] feature map, got {:?}", x.shape()),
            });
        };
        let k = self.kernel;
        let x = if h < k || w < k {
            x.adaptive_avg_pool2d([h.max(k), w.max(k)])?
        } else {
            x.clone()
        };
        let x = self.fc1.forward(&x)?.relu()?;
        let x = x.dropout(self.drop_rate, self.training)?;
        Ok(self.fc2.forward(&x)?.relu()?)
    }

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        self.fc1.collect(&join(prefix, "fc1"), out);
        self.fc2.collect(&join(prefix, "fc2"), out);
    }

    fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        self.fc1.set_memory_format(format)?;
        self.fc2.set_memory_format(format)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}
