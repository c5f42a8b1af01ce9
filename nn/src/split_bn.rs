//! timm's `convert_splitbn_model` (AdvProp's auxiliary BatchNorm, train.py's `--split-bn`): every
//! BatchNorm of a model gains `aux_bn` layers; in training the batch is cut into equal splits, the first
//! normalized by the layer itself and split i by `aux_bn[i - 1]`. Eval uses the layer alone, so
//! the auxiliary layers can be dropped after training.

use crate::layers::{for_each_batch_norm, BatchNorm2d};
use crate::{Error, Model, Result};

/// timm's `convert_splitbn_model`: every BatchNorm of `model` gains `num_splits - 1` auxiliary
/// layers with copies of its running statistics and a fresh affine (γ = 1, β = 0), as timm's
/// conversion leaves them. The activation a norm layer carries is kept (timm's conversion
/// replaces its `BatchNormAct2d` with a plain BN and so drops the activation of EfficientNet-
/// and MobileNet-style models; kiln does not copy that).
pub fn convert_splitbn_model(model: &mut dyn Model, num_splits: usize) -> Result<()> {
    let name = model.pretrained_cfg().name.clone();
    if num_splits < 2 {
        return Err(Error::BadArgument {
            model: name,
            msg: format!("split BatchNorm needs at least 2 splits, got {num_splits}"),
        });
    }
    let mut already_split = false;
    for_each_batch_norm(model, &mut |bn| already_split |= !bn.aux_bn.is_empty());
    if already_split {
        return Err(Error::BadArgument {
            model: name,
            msg: "its BatchNorm layers are split already".into(),
        });
    }
    let mut failure = None;
    for_each_batch_norm(model, &mut |bn| {
        if failure.is_none() {
            if let Err(e) = add_aux_layers(bn, num_splits - 1) {
                failure = Some(e);
            }
        }
    });
    failure.map_or(Ok(()), Err)
}

/// Gives `bn` `count` auxiliary layers on its device: fresh affine, its running statistics.
fn add_aux_layers(bn: &mut BatchNorm2d, count: usize) -> Result<()> {
    let device = bn.weight.device();
    for _ in 0..count {
        let mut aux = BatchNorm2d::new(bn.weight.shape()[0])?;
        aux.momentum = bn.momentum;
        aux.eps = bn.eps;
        aux.training = bn.training;
        aux.sync = bn.sync.clone();
        aux.weight = aux.weight.to_device(device)?.requires_grad_(true).clone();
        aux.bias = aux.bias.to_device(device)?.requires_grad_(true).clone();
        aux.running_mean = bn.running_mean.contiguous_copy()?;
        aux.running_var = bn.running_var.contiguous_copy()?;
        aux.num_batches_tracked = bn.num_batches_tracked.contiguous_copy()?;
        bn.aux_bn.push(aux);
    }
    Ok(())
}
