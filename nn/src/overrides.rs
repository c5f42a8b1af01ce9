//! Settings timm's `train.py` applies to a model after creating it: BatchNorm momentum and epsilon
//! on every BN layer (`--bn-momentum`, `--bn-eps`) and the classifier's init (`--head-init-scale`,
//! `--head-init-bias`).

use crate::layers::for_each_batch_norm;
use crate::{Error, Model, Module, Result};
use kiln_engine::{no_grad, DType, Tensor};

/// Sets momentum and/or epsilon of every BatchNorm layer; returns how many layers it changed.
pub fn set_batch_norm<M: Module + ?Sized>(
    model: &mut M,
    momentum: Option<f64>,
    eps: Option<f64>,
) -> usize {
    let mut count = 0;
    for_each_batch_norm(model, &mut |bn| {
        if let Some(m) = momentum {
            bn.momentum = m;
        }
        if let Some(e) = eps {
            bn.eps = e;
        }
        count += 1;
    });
    count
}

/// timm's head init: the classifier's weight and bias times `scale`, then its bias set to `bias`.
pub fn init_head<M: Model + ?Sized>(
    model: &M,
    scale: Option<f64>,
    bias: Option<f64>,
) -> Result<()> {
    if scale.is_none() && bias.is_none() {
        return Ok(());
    }
    let fc = model.get_classifier().ok_or_else(|| Error::BadArgument {
        model: model.pretrained_cfg().name.clone(),
        msg: "has no classifier to initialize (num_classes 0)".into(),
    })?;
    let _no_grad = no_grad();
    if let Some(s) = scale {
        fc.weight.copy_(&fc.weight.mul_scalar(s)?)?;
        if let Some(b) = &fc.bias {
            b.copy_(&b.mul_scalar(s)?)?;
        }
    }
    if let (Some(v), Some(b)) = (bias, &fc.bias) {
        b.copy_(&Tensor::full(b.shape(), v, DType::F32)?)?;
    }
    Ok(())
}
