//! timm's `_init_weights` of mlp_mixer.py (its default, not `flax`): xavier-uniform linear
//! weights, N(0, 1e-6) biases inside the MLPs and zero ones elsewhere, a lecun-normal stem conv
//! with a zero bias. The head (zeros) and the gates' overrides are their modules'.

use crate::init;
use crate::layers::{Conv2d, Linear};
use crate::Result;
use kiln_engine::{Conv2dParams, DType, Tensor};

/// `t` as a trained parameter.
fn param(t: Tensor) -> Tensor {
    t.requires_grad_(true).clone()
}

/// A linear layer `in_f` → `out_f` as the mixers initialize one: a xavier-uniform weight; a
/// N(0, 1e-6) bias inside an MLP (`in_mlp`, timm's `'mlp' in name`), a zero one elsewhere.
pub(super) fn linear(in_f: usize, out_f: usize, in_mlp: bool) -> Result<Linear> {
    let bias = match in_mlp {
        true => param(init::normal(&[out_f], 1e-6)?),
        false => init::zeros(&[out_f])?,
    };
    Ok(Linear {
        weight: param(init::xavier_uniform(&[out_f, in_f])?),
        bias: Some(bias),
    })
}

/// `GluMlp`'s `fc1` `dim` → `hidden`: [`linear`]'s init of the whole layer, then
/// `GluMlp.init_weights` on the gate's (second) half: N(0, 1e-6) weights and a bias of one.
pub(super) fn glu_fc1(dim: usize, hidden: usize) -> Result<Linear> {
    let half = hidden / 2;
    let value = init::xavier_uniform(&[hidden, dim])?.narrow(0, 0, half)?;
    let weight = Tensor::cat(&[value, init::normal(&[half, dim], 1e-6)?], 0)?;
    let bias = [
        init::normal(&[half], 1e-6)?,
        Tensor::ones(&[half], DType::F32)?,
    ];
    Ok(Linear {
        weight: param(weight),
        bias: Some(param(Tensor::cat(&bias, 0)?)),
    })
}

/// The spatial gate's token projection over `seq_len` tokens, as `SpatialGatingUnit.init_weights`
/// leaves it: N(0, 1e-6) weights and a bias of one.
pub(super) fn gate_proj(seq_len: usize) -> Result<Linear> {
    Ok(Linear {
        weight: param(init::normal(&[seq_len, seq_len], 1e-6)?),
        bias: Some(param(Tensor::ones(&[seq_len], DType::F32)?)),
    })
}

/// The stem's `patch`×`patch` conv of stride `patch` (timm's `PatchEmbed.proj`) from `in_chans`
/// to `dim` channels: timm's `lecun_normal_` weight (a ±2σ-truncated normal of variance
/// 1/fan_in) and a zero bias.
pub(super) fn stem_conv(in_chans: usize, dim: usize, patch: usize) -> Result<Conv2d> {
    let fan_in = in_chans * patch * patch;
    // the standard deviation of a unit normal truncated to (−2, 2), as timm divides by
    let std = (1.0 / fan_in as f64).sqrt() / 0.879_625_661_034_239_8;
    Ok(Conv2d {
        weight: init::trunc_normal_tf(&[dim, in_chans, patch, patch], std)?,
        bias: Some(init::zeros(&[dim])?),
        params: Conv2dParams {
            stride: [patch; 2],
            ..Default::default()
        },
    })
}
